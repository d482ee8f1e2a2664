"""Limits: what a server's advertised sizes allow, checked before anything is sent.

A server states its limits in the handshake (``maxBsonObjectSize``, ``maxMessageSizeBytes``,
``maxWriteBatchSize``, recorded on each ``SocketInfo``). ``check_frame`` refuses an encoded
frame the server would not take (longer than ``maxMessageSizeBytes``, or whose command
document is over ``maxBsonObjectSize`` plus the 16 KiB command allowance) with
``DocumentTooLarge``, between encoding and sending, so the socket stays intact and goes back
to its pool. ``batches`` encodes a write's documents, checks every one of them first, and
splits them into batches that fill a message without passing any limit. Pure: no I/O.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Sequence

import bson

from wireclient import protocol
from wireclient.errors import DocumentTooLarge, InvalidDocument
from wireclient.rules import command

if TYPE_CHECKING:
    from wireclient.transport.network import SocketInfo

Document = Mapping[str, Any]

# How much larger than maxBsonObjectSize a command document (or an update or delete
# statement) may be: the server's own allowance for the command around a user document.
COMMAND_OVERHEAD = 16 * 1024

# The write command field whose documents are stored as they are (insert's): each must fit
# maxBsonObjectSize itself. Update and delete statements wrap a filter and an update in a few
# fields of their own, so they get the command allowance on top.
_STORED_FIELD = "documents"
_INT32 = struct.Struct("<i")
_BYTES_ONLY = {bytes}


def check_frame(sock: SocketInfo, frame: bytes) -> None:
    """Refuse a frame the server would not take, before it is sent: one longer than its
    ``maxMessageSizeBytes``, or whose command document is larger than ``maxBsonObjectSize``
    plus the command allowance (a server resets the connection on either). Called by
    ``SocketInfo.send_and_receive`` between encoding and sending (the operation path passes
    it)."""
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
    sock: SocketInfo,
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
    in_command = sock.max_wire_version < command.OP_MSG_WIRE_VERSION
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
    stored = field == _STORED_FIELD
    each = max_bson if stored else max_bson + COMMAND_OVERHEAD
    sizes = list(map(len, encoded))
    largest = max(sizes, default=0)
    if largest > each or largest + (3 if in_command else 0) > room:
        _refuse_first(encoded, field, sock, stored, each, room, in_command)
    max_count = sock.max_write_batch_size
    if not in_command and len(encoded) <= max_count and sum(sizes) <= room:
        return [encoded] if encoded else []  # the usual case: all of them fit one message
    batches: List[List[bytes]] = []
    batch: List[bytes] = []
    used = 0
    for data in encoded:
        cost = len(data) + (2 + len(str(len(batch))) if in_command else 0)
        if batch and (len(batch) >= max_count or used + cost > room):
            batches.append(batch)
            batch, used = [], 0
            cost = len(data) + (3 if in_command else 0)
        batch.append(data)
        used += cost
    if batch:
        batches.append(batch)
    return batches


def _refuse_first(
    encoded: List[bytes],
    field: str,
    sock: SocketInfo,
    stored: bool,
    each: int,
    room: int,
    in_command: bool,
) -> None:
    """Raise ``DocumentTooLarge`` for the first document (in order) that is too large."""
    max_bson = sock.max_bson_size
    for data in encoded:
        size = len(data)
        if size > each:
            what = "document" if stored else f"{field.rstrip('s')} statement"
            extra = "" if stored else f" plus {COMMAND_OVERHEAD} for the command"
            raise DocumentTooLarge(
                f"{what} of {size} bytes is larger than the server's maxBsonObjectSize of "
                f"{max_bson} bytes{extra}",
                size,
                each,
            )
        if size + (3 if in_command else 0) > room:  # an array element: type, "0", NUL
            raise DocumentTooLarge(
                f"{field} entry of {size} bytes does not fit in a message: the server's "
                f"maxMessageSizeBytes of {sock.max_message_size} bytes leaves {room} for it",
                size,
                room,
            )


__all__ = ["COMMAND_OVERHEAD", "batches", "check_frame"]
