"""Replies a mock server sends, as values, and the frames each one becomes.

A reply is a small frozen value (``ok``, ``reply``, ``fail``, ``hangup``, ``reply_frame``,
``stream``, ``op_reply``), so the same reply can be given to ``autoresponds`` once and
sent to many requests. ``delay`` (``reply.after(seconds)``) waits before anything is sent.

``frames_for(request, reply, ...)`` is where a reply meets the request it answers; the
rules are the server's:

* an OP_MSG request gets an OP_MSG reply, an OP_QUERY or OP_GET_MORE one an OP_REPLY; the
  legacy write opcodes and OP_KILL_CURSORS get none, nor does an OP_MSG with moreToCome:
  answering those raises ``AssertionError``, since the client would read the reply as the
  answer to its next request;
* ``responseTo`` is the request's ``requestID``; each frame of an exhaust ``stream``
  answers the frame before it (the first answers the request), as MongoDB chains them,
  and every frame but the last has moreToCome. A stream answers only a request that set
  exhaustAllowed;
* a reply to a compressed request is compressed with the same compressor (unless it
  carries a checksum, which would cover a header that is not sent);
* ``reply_frame`` bytes go out exactly as given: the test owns them, malformed or not.
"""

from __future__ import annotations

import dataclasses
from collections import abc
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Mapping, Tuple, Union

from wireclient import protocol
from wireclient.protocol import (
    OP_GET_MORE,
    OP_MSG,
    OP_QUERY,
    Message,
    MsgFlags,
    OpMsg,
    OpReply,
)

if TYPE_CHECKING:
    from wireclient.mock.requests import Request


class Reply:
    """What a request is answered with. ``delay``: seconds to wait before sending (each
    kind of reply is a frozen dataclass whose last field is ``delay``)."""

    delay: float

    def after(self, seconds: float) -> Reply:
        """This reply, sent ``seconds`` after it is given."""
        return dataclasses.replace(self, delay=seconds)  # type: ignore[type-var]


@dataclasses.dataclass(frozen=True)
class DocumentReply(Reply):
    """One document: an OP_MSG to an OP_MSG, an OP_REPLY to an OP_QUERY."""

    doc: Mapping[str, Any]
    delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class OpReplyReply(Reply):
    """An OP_REPLY with chosen fields, whatever the request (a legacy query's answer)."""

    documents: Tuple[Mapping[str, Any], ...]
    cursor_id: int = 0
    starting_from: int = 0
    response_flags: int = 0
    delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class StreamReply(Reply):
    """An exhaust stream: one OP_MSG per batch, moreToCome on all but the last."""

    batches: Tuple[Mapping[str, Any], ...]
    delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class FrameReply(Reply):
    """Bytes sent as they are."""

    frame: bytes
    delay: float = 0.0


@dataclasses.dataclass(frozen=True)
class HangUp(Reply):
    """The connection closed instead of an answer."""

    delay: float = 0.0


def ok(**fields: Any) -> DocumentReply:
    """``{"ok": 1.0, **fields}``."""
    return DocumentReply({"ok": 1.0, **fields})


def reply(doc: Mapping[str, Any]) -> DocumentReply:
    """``doc`` as it is (no ``ok`` added)."""
    return DocumentReply(doc)


def fail(code: int, errmsg: str = "mock failure", **fields: Any) -> DocumentReply:
    """A command error: ``{"ok": 0.0, "errmsg": errmsg, "code": code, **fields}``."""
    return DocumentReply({"ok": 0.0, "errmsg": errmsg, "code": code, **fields})


def hangup() -> HangUp:
    """Close the client's connection instead of answering."""
    return HangUp()


def reply_frame(frame: Union[bytes, bytearray, memoryview]) -> FrameReply:
    """Send ``frame`` as it is: any bytes, malformed frames included."""
    return FrameReply(bytes(frame))


def stream(batches: Iterable[Union[Mapping[str, Any], DocumentReply]]) -> StreamReply:
    """An exhaust stream answering an exhaustAllowed request, one reply per batch (a
    document, or an ``ok(...)`` / ``reply(...)``)."""
    docs = tuple(b.doc if isinstance(b, DocumentReply) else b for b in batches)
    if not docs:
        raise ValueError("a stream needs at least one reply")
    return StreamReply(docs)


def op_reply(
    documents: Iterable[Mapping[str, Any]],
    cursor_id: int = 0,
    starting_from: int = 0,
    response_flags: int = 0,
) -> OpReplyReply:
    """An OP_REPLY with these fields (a legacy OP_QUERY or OP_GET_MORE's answer)."""
    return OpReplyReply(tuple(documents), cursor_id, starting_from, response_flags)


ReplySpec = Union[Reply, Mapping[str, Any]]
#: What ``autoresponds`` takes: a reply, a document, or a function of the request that
#: returns either (or None to leave the request to the next responder).
Responder = Union[ReplySpec, Callable[["Request"], Union[ReplySpec, None]]]


def as_reply(spec: ReplySpec) -> Reply:
    if isinstance(spec, Reply):
        return spec
    if isinstance(spec, abc.Mapping):
        return DocumentReply(spec)
    raise TypeError(f"not a reply: {spec!r} (a Reply or a document)")


def _framed(message: Message, request: Request, request_id: int, response_to: int) -> bytes:
    compressor = request.compressed_with
    checksummed = isinstance(message, OpMsg) and message.flags & MsgFlags.checksumPresent
    if compressor is not None and not checksummed:
        return protocol.encode(protocol.compress(message, compressor), request_id, response_to)
    return protocol.encode(message, request_id, response_to)


def frames_for(
    request: Request,
    the_reply: Reply,
    request_ids: Callable[[], int],
    *,
    checksums: bool = False,
) -> List[bytes]:
    """The frames that send ``the_reply`` to ``request`` (none for a hang-up); see the
    module notes. ``request_ids()`` gives each frame its requestID; ``checksums`` puts a
    CRC-32C on OP_MSG replies."""
    if isinstance(the_reply, HangUp):
        return []
    if isinstance(the_reply, FrameReply):
        return [the_reply.frame]
    if request.more_to_come:
        raise AssertionError(f"{request!r} has moreToCome: the client reads no reply to it")
    if isinstance(the_reply, OpReplyReply):
        legacy = OpReply(
            the_reply.documents,
            the_reply.response_flags,
            the_reply.cursor_id,
            the_reply.starting_from,
        )
        return [_framed(legacy, request, request_ids(), request.request_id)]
    opcode = request.opcode
    flags = MsgFlags.checksumPresent if checksums else 0
    if isinstance(the_reply, StreamReply):
        if not request.exhaust_allowed:
            raise AssertionError(f"{request!r} did not set exhaustAllowed: it cannot be streamed")
        frames: List[bytes] = []
        response_to = request.request_id
        last = len(the_reply.batches) - 1
        for i, doc in enumerate(the_reply.batches):
            more = MsgFlags.moreToCome if i < last else 0
            request_id = request_ids()
            frames.append(_framed(OpMsg(doc, flags=flags | more), request, request_id, response_to))
            response_to = request_id
        return frames
    assert isinstance(the_reply, DocumentReply)
    if opcode == OP_MSG:
        message: Message = OpMsg(the_reply.doc, flags=flags)
    elif opcode in (OP_QUERY, OP_GET_MORE):
        message = OpReply([the_reply.doc])
    else:
        name = protocol.OPCODE_NAMES.get(opcode, str(opcode))
        raise AssertionError(f"{request!r}: {name} gets no reply")
    return [_framed(message, request, request_ids(), request.request_id)]


__all__ = [
    "DocumentReply",
    "FrameReply",
    "HangUp",
    "OpReplyReply",
    "Reply",
    "ReplySpec",
    "Responder",
    "StreamReply",
    "as_reply",
    "fail",
    "frames_for",
    "hangup",
    "ok",
    "op_reply",
    "reply",
    "reply_frame",
    "stream",
]
