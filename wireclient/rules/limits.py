"""Limits: what a server's advertised sizes allow, checked before anything is sent.

A server states its limits in the handshake (``maxBsonObjectSize``, ``maxMessageSizeBytes``,
``maxWriteBatchSize``, recorded on each ``SocketInfo``). ``check_frame`` refuses an encoded
frame the server would not take (longer than ``maxMessageSizeBytes``, or whose command
document is over ``maxBsonObjectSize`` plus the 16 KiB command allowance) with
``DocumentTooLarge``, between encoding and sending, so the socket stays intact and goes back
to its pool. ``batches`` encodes a write's documents, checks every one of them first, and
splits them into batches that fill a message without passing any limit. Pure: no I/O.

The limits are read from anything that has them (``Limits``: a ``SocketInfo`` has them, so
has a test double), and the two rules under every write are plain functions of numbers, for
every caller: ``check_size`` (the largest document or statement a server takes) and
``split`` (the one batch splitter: runs of at most ``maxWriteBatchSize`` entries within the
room a message leaves). ``batches`` uses both for the operation path; the 2.8 bulk API
(``client/bulk.py``) uses them on its own operations, which it has encoded and indexed.
An oversized document is a ``DocumentTooLarge`` (an ``InvalidDocument``) on both paths.
"""

from __future__ import annotations

import struct
from typing import Any, List, Mapping, Optional, Protocol, Sequence

import bson

from wireclient import protocol
from wireclient.errors import DocumentTooLarge, InvalidDocument
from wireclient.rules import command
from wireclient.rules.wire import COMMAND_OVERHEAD, OP_MSG_WIRE_VERSION

Document = Mapping[str, Any]


class Limits(Protocol):
    """What the checks read of a socket: the limits its handshake recorded."""

    max_wire_version: int
    max_bson_size: int
    max_message_size: int
    max_write_batch_size: int


# The write command field whose documents are stored as they are (insert's): each must fit
# maxBsonObjectSize itself. Update and delete statements wrap a filter and an update in a few
# fields of their own, so they get the command allowance on top.
_STORED_FIELD = "documents"
_INT32 = struct.Struct("<i")
_BYTES_ONLY = {bytes}


def check_frame(sock: Limits, frame: bytes) -> None:
    """Refuse a frame the server would not take, before it is sent: one longer than its
    ``maxMessageSizeBytes``, or whose command document is larger than ``maxBsonObjectSize``
    plus the command allowance (a server resets the connection on either). Called by
    ``SocketInfo.send_and_receive`` between encoding and sending, when the operation path
    passes it: only for a frame longer than one of the limits, since a shorter one always
    passes."""
    size = len(frame)
    if size > sock.max_message_size:
        raise DocumentTooLarge(
            f"message of {size} bytes is larger than the server's maxMessageSizeBytes of "
            f"{sock.max_message_size} bytes",
            size,
            sock.max_message_size,
        )
    limit = sock.max_bson_size + COMMAND_OVERHEAD
    if size > limit:  # only then can the command document in it be too large
        body = _command_size(frame)
        if body > limit:
            raise DocumentTooLarge(
                f"command document of {body} bytes is larger than the server's "
                f"maxBsonObjectSize of {sock.max_bson_size} bytes plus {COMMAND_OVERHEAD} "
                "for the command",
                body,
                limit,
            )


def _command_size(frame: bytes) -> int:
    """The size of the command document in a frame this client encoded: the kind-0 section
    of an OP_MSG (the encoder writes it first), the query of an OP_QUERY."""
    (op_code,) = _INT32.unpack_from(frame, 12)
    if op_code == protocol.OP_MSG:
        return int(_INT32.unpack_from(frame, 21)[0])  # after the flags and the kind byte
    if op_code == protocol.OP_QUERY:  # after the namespace, numberToSkip, numberToReturn
        return int(_INT32.unpack_from(frame, frame.index(b"\x00", 20) + 9)[0])
    return 0


def _encode(document: Any) -> bytes:
    if isinstance(document, bytes):
        return document
    try:
        data: bytes = bson.encode(document)
    except (bson.errors.BSONError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidDocument(f"cannot encode a write statement: {exc}") from exc
    return data


def batches(
    dbname: str,
    spec: Document,
    field: str,
    documents: Sequence[Any],
    unacknowledged: bool,
    sock: Limits,
    frame: Optional[bytes] = None,
) -> List[List[bytes]]:
    """``documents``, encoded, in batches the server takes: at most ``maxWriteBatchSize``
    each, in a frame within ``maxMessageSizeBytes`` (for wire 4 and 5, where they travel as
    an array inside the command, in a command within ``maxBsonObjectSize`` plus the
    allowance too). Every document is checked first, so nothing is sent when one is too
    large (``DocumentTooLarge``): an inserted document over ``maxBsonObjectSize``, an
    update or delete statement over it plus the command allowance, or one no message can
    carry. The room is measured on the command really encoded without its documents
    (``frame``, when the caller has it already: the OP_MSG frame of the command alone)."""
    if documents and set(map(type, documents)) == _BYTES_ONLY:  # encoded by the caller
        encoded: List[bytes] = list(documents)
    else:
        encoded = [_encode(doc) for doc in documents]
    in_command = sock.max_wire_version < OP_MSG_WIRE_VERSION
    # OP_QUERY: the command with an empty array; OP_MSG: the command alone (the encoder's
    # quick path) plus the kind-1 section's framing (kind byte, int32 size, identifier, NUL).
    if frame is None or in_command:
        sequences = (protocol.DocumentSequence(field, ()),) if in_command else ()
        message, _ = command.build_message(
            dbname, spec, sequences, unacknowledged, None, sock.max_wire_version
        )
        frame = protocol.encode(message, 0)
    check_frame(sock, frame)  # the command alone must fit
    framing = 0 if in_command else 6 + len(field.encode("utf-8"))
    room = sock.max_message_size - len(frame) - framing
    if in_command:  # each document also grows the command document
        room = min(room, sock.max_bson_size + COMMAND_OVERHEAD - _command_size(frame))
    max_bson = sock.max_bson_size
    sizes = list(map(len, encoded))
    largest = max(sizes, default=0)
    if largest > max_bson or largest + (3 if in_command else 0) > room:
        for size in sizes:  # the first one (in order) that is too large raises
            check_size(size, field, max_bson)
            if size + (3 if in_command else 0) > room:  # an array element: type, "0", NUL
                raise DocumentTooLarge(
                    f"{field} entry of {size} bytes does not fit in a message: the server's "
                    f"maxMessageSizeBytes of {sock.max_message_size} bytes leaves {room} for it",
                    size,
                    room,
                )
    runs = split(sizes, sock.max_write_batch_size, room, in_command)
    if len(runs) == 1:
        return [encoded]  # the usual case: all of them fit one message
    return [encoded[run.start : run.stop] for run in runs]


def check_size(size: int, field: str, max_bson_size: int) -> None:
    """Raise ``DocumentTooLarge`` for an entry of a write command's ``field`` of ``size``
    bytes that the server would refuse: an inserted document (``documents``, stored as it
    is) over ``maxBsonObjectSize``, an update or delete statement over it plus the command
    allowance."""
    stored = field == _STORED_FIELD
    each = max_bson_size if stored else max_bson_size + COMMAND_OVERHEAD
    if size > each:
        what = "document" if stored else f"{field.rstrip('s')} statement"
        extra = "" if stored else f" plus {COMMAND_OVERHEAD} for the command"
        raise DocumentTooLarge(
            f"{what} of {size} bytes is larger than the server's maxBsonObjectSize of "
            f"{max_bson_size} bytes{extra}",
            size,
            each,
        )


def split(
    sizes: Sequence[int], max_write_batch_size: int, room: int, in_command: bool = False
) -> List[range]:
    """The one batch splitter: the entries of ``sizes`` (encoded sizes, in order) in runs
    (``range``s of their positions) of at most ``max_write_batch_size`` entries whose sizes
    add up to at most ``room`` bytes, filled greedily; an entry larger than ``room`` alone
    goes alone (``check_size`` and the caller refuse what no message can carry). With
    ``in_command`` (wire 4 and 5) the entries are array elements of the command, and each
    costs its key too (type byte, decimal index, NUL)."""
    count = len(sizes)
    if not in_command and count <= max_write_batch_size and sum(sizes) <= room:
        return [range(count)] if count else []  # the usual case: all of them fit one message
    runs: List[range] = []
    start = used = 0
    for index, size in enumerate(sizes):
        cost = size + (2 + len(str(index - start)) if in_command else 0)
        if index > start and (index - start >= max_write_batch_size or used + cost > room):
            runs.append(range(start, index))
            start, used = index, 0
            cost = size + (3 if in_command else 0)
        used += cost
    if start < count:
        runs.append(range(start, count))
    return runs


__all__ = ["Limits", "batches", "check_frame", "check_size", "split"]
