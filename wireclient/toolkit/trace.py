"""Frames as a protocol tester reads them: cut from a byte stream, described, hex-dumped.

Theory of operation
-------------------
``FrameStream`` is one direction of one connection. It feeds every byte it is given to the
codec's ``MessageReader`` (the one framer) and keeps a copy of the raw bytes beside it, so
each ``Frame`` it returns carries the exact bytes of the frame as well as the decoded
header and message. A frame that does not decode is returned too, with the error and its
bytes. When its header was sound (a messageLength within bounds) the stream goes on after
it with a fresh reader, skipping the frame by its length; a bad header breaks the stream
for good (nothing says where the next frame starts), and later bytes come back as
unframed chunks. The concatenation of every ``Frame.raw`` returned is exactly the stream
fed, which is what lets the proxy forward frames rather than chunks. ``flush()`` at the
end of a stream returns a partial frame left in the buffer.

``describe()`` turns a frame into the lines ``--trace``, ``decode`` and the proxy print:
the header fields, flags by name, OP_MSG sections (kind 0 body, kind 1 identifier, count
and documents), the fields of every legacy opcode, documents as relaxed Extended JSON, and
a hex dump on request (always for a frame that does not decode).

``TracingSocket`` wraps a socket object for ``network.SocketInfo``: every ``sendall`` and
``recv`` goes to a ``Tracer``, which runs one ``FrameStream`` per direction and prints each
frame as it completes. This module does no I/O of its own (it imports no ``socket``).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterable, List, NamedTuple, Optional, TextIO, Type

from bson import json_util

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError

_peek = struct.Struct("<iiii").unpack_from
_JSON_OPTIONS = json_util.RELAXED_JSON_OPTIONS
_HEX_LIMIT = 4096  # bytes shown of a bad frame without --hex

CLIENT_TO_SERVER = "client -> server"
SERVER_TO_CLIENT = "server -> client"


def to_json(document: Any, indent: Optional[int] = None) -> str:
    """A document (or list of them) as relaxed Extended JSON."""
    return str(json_util.dumps(document, json_options=_JSON_OPTIONS, indent=indent))


class Frame(NamedTuple):
    """One frame of a stream: its raw bytes, and the decoded header and message (or why not).

    ``header`` is None only when fewer than 16 bytes are there; for a frame that does not
    decode it is the header as read, unchecked.
    """

    header: Optional[protocol.Header]
    message: Optional[protocol.Message]
    raw: bytes
    error: Optional[str] = None


def peek_header(raw: bytes) -> Optional[protocol.Header]:
    """The first 16 bytes as a header, unchecked (None when there are fewer)."""
    if len(raw) < protocol.HEADER_SIZE:
        return None
    return protocol.Header(*_peek(raw, 0))


class FrameStream:
    """One direction of a connection, cut into ``Frame``s (see the module docstring)."""

    __slots__ = ("_reader", "_raw", "broken")

    def __init__(self, max_message_size: int = protocol.DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._reader = protocol.MessageReader(max_message_size)
        self._raw = bytearray()
        self.broken = False

    @property
    def buffered(self) -> int:
        """Bytes of a partial frame held back."""
        return len(self._raw)

    def feed(self, data: bytes) -> List[Frame]:
        """The frames completed by ``data`` (possibly none)."""
        if self.broken:
            if not data:
                return []
            return [Frame(None, None, bytes(data), "unframed bytes (after a bad header)")]
        self._raw += data
        frames: List[Frame] = []
        while True:
            try:
                self._reader.feed(data)
                for header, message in self._reader:
                    length = header.message_length
                    frames.append(Frame(header, message, bytes(self._raw[:length])))
                    del self._raw[:length]
                return frames
            except ProtocolError as exc:
                head = peek_header(bytes(self._raw[:16]))
                length = head.message_length if head is not None else 0
                if 16 <= length <= self._reader.max_message_size and len(self._raw) >= length:
                    # A sound header around a bad body: skip the frame by its length and
                    # go on with a new reader, so one bad frame does not hide the rest.
                    frames.append(Frame(head, None, bytes(self._raw[:length]), str(exc)))
                    del self._raw[:length]
                    self._reader = protocol.MessageReader(self._reader.max_message_size)
                    data = bytes(self._raw)
                    continue
                self.broken = True
                raw = bytes(self._raw)
                self._raw.clear()
                frames.append(Frame(head, None, raw, str(exc)))
                return frames

    def flush(self) -> List[Frame]:
        """At the end of the stream: the partial frame left over, if any."""
        if not self._raw:
            return []
        raw = bytes(self._raw)
        self._raw.clear()
        self._reader = protocol.MessageReader(self._reader.max_message_size)  # start afresh
        header = peek_header(raw)
        wanted = header.message_length if header is not None else protocol.HEADER_SIZE
        return [Frame(header, None, raw, f"incomplete frame: {len(raw)} of {wanted} bytes")]


def frames_of(data: bytes) -> List[Frame]:
    """Every frame of a byte string of concatenated frames, a partial last one included."""
    stream = FrameStream()
    return stream.feed(data) + stream.flush()


# --------------------------------------------------------------------------- describing


def flag_names(value: int, flags: Type[Any]) -> str:
    """``0x00000003 checksumPresent|moreToCome``; unknown bits are shown as hex."""
    names = [member.name for member in flags if value & member.value]
    rest = value
    for member in flags:
        rest &= ~member.value
    if rest:
        names.append(f"unknown(0x{rest:x})")
    return f"0x{value:08x} {'|'.join(names) if names else '(none)'}"


def opcode_name(op_code: int) -> str:
    return f"{protocol.OPCODE_NAMES.get(op_code, 'unknown opCode')}({op_code})"


def hexdump(data: bytes, indent: str = "    ") -> List[str]:
    """Offset, 16 bytes in hex, and their printable ASCII, per line."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = (
            " ".join(f"{b:02x}" for b in chunk[:8]) + "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        )
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{indent}{offset:08x}  {hexes:<49} |{text}|")
    return lines


def _documents(name: str, documents: Iterable[Any], indent: str) -> List[str]:
    docs = list(documents)
    lines = [f"{indent}{name} ({len(docs)} document{'' if len(docs) == 1 else 's'}):"]
    lines += [f"{indent}  {to_json(doc)}" for doc in docs]
    return lines


def describe_message(message: Any, raw: bytes = b"", indent: str = "  ") -> List[str]:
    """The fields of a decoded message, one per line."""
    p = protocol
    lines: List[str] = []
    add = lines.append
    if isinstance(message, p.OpMsg):
        add(f"{indent}flagBits: {flag_names(message.flags, p.MsgFlags)}")
        add(f"{indent}section kind 0 body: {to_json(message.body)}")
        for seq in message.sequences:
            lines += _documents(f"section kind 1 {seq.identifier!r}", seq.documents, indent)
        if message.flags & p.MsgFlags.checksumPresent and len(raw) >= 4:
            add(f"{indent}checksum: 0x{int.from_bytes(raw[-4:], 'little'):08x} (verified)")
    elif isinstance(message, p.OpQuery):
        add(f"{indent}flags: {flag_names(message.flags, p.QueryFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}numberToSkip: {message.number_to_skip}")
        add(f"{indent}numberToReturn: {message.number_to_return}")
        add(f"{indent}query: {to_json(message.query)}")
        if message.return_fields_selector is not None:
            add(f"{indent}returnFieldsSelector: {to_json(message.return_fields_selector)}")
    elif isinstance(message, p.OpReply):
        add(f"{indent}responseFlags: {flag_names(message.response_flags, p.ReplyFlags)}")
        add(f"{indent}cursorID: {message.cursor_id}")
        add(f"{indent}startingFrom: {message.starting_from}")
        lines += _documents("documents", message.documents, indent)
    elif isinstance(message, p.OpGetMore):
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}numberToReturn: {message.number_to_return}")
        add(f"{indent}cursorID: {message.cursor_id}")
    elif isinstance(message, p.OpKillCursors):
        ids = ", ".join(str(c) for c in message.cursor_ids)
        add(f"{indent}cursorIDs ({len(message.cursor_ids)}): [{ids}]")
    elif isinstance(message, p.OpInsert):
        add(f"{indent}flags: {flag_names(message.flags, p.InsertFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        lines += _documents("documents", message.documents, indent)
    elif isinstance(message, p.OpUpdate):
        add(f"{indent}flags: {flag_names(message.flags, p.UpdateFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}selector: {to_json(message.selector)}")
        add(f"{indent}update: {to_json(message.update)}")
    elif isinstance(message, p.OpDelete):
        add(f"{indent}flags: {flag_names(message.flags, p.DeleteFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}selector: {to_json(message.selector)}")
    elif isinstance(message, p.OpCompressed):
        lines += _describe_compressed(message, indent)
    return lines


def _describe_compressed(message: protocol.OpCompressed, indent: str) -> List[str]:
    try:
        compressor = protocol.CompressorId(message.compressor_id).name
    except ValueError:
        compressor = "unknown"
    lines = [
        f"{indent}originalOpcode: {opcode_name(message.original_opcode)}",
        f"{indent}uncompressedSize: {message.uncompressed_size}",
        f"{indent}compressorId: {compressor}({message.compressor_id})",
        f"{indent}compressedMessage: {len(message.compressed_message)} bytes",
    ]
    try:
        inner = protocol.decompress(message)
    except (ProtocolError, ConfigurationError) as exc:
        return lines + [f"{indent}cannot decompress: {exc}"]
    return lines + [f"{indent}decompressed:"] + describe_message(inner, indent=indent + "  ")


def describe(frame: Frame, label: str, hex_dump: bool = False) -> str:
    """The lines printed for one frame, headed by ``label`` (direction, connection)."""
    header = frame.header
    if header is None:
        head = f"{label}  {len(frame.raw)} bytes"
    else:
        head = (
            f"{label}  {protocol.OPCODE_NAMES.get(header.op_code, 'unknown opCode')}"
            f"  messageLength={header.message_length} requestID={header.request_id}"
            f" responseTo={header.response_to} opCode={header.op_code}"
        )
    lines = [head]
    if frame.error is not None:
        lines.append(f"  does not decode: {frame.error}")
        shown = frame.raw if hex_dump else frame.raw[:_HEX_LIMIT]
        lines += hexdump(shown)
        if len(shown) < len(frame.raw):
            lines.append(f"    ... {len(frame.raw) - len(shown)} more bytes (--hex shows all)")
        return "\n".join(lines)
    lines += describe_message(frame.message, frame.raw)
    if hex_dump:
        lines += hexdump(frame.raw)
    return "\n".join(lines)


# --------------------------------------------------------------------------- tracing a socket


class Tracer:
    """Prints every frame sent and received on one connection (see ``TracingSocket``)."""

    def __init__(self, write: Callable[[str], None], hex_dump: bool = False) -> None:
        self.write = write
        self.hex_dump = hex_dump
        self.sent_stream = FrameStream()
        self.received_stream = FrameStream()

    def sent(self, data: bytes) -> None:
        for frame in self.sent_stream.feed(data):
            self.write(describe(frame, CLIENT_TO_SERVER, self.hex_dump))

    def received(self, data: bytes) -> None:
        for frame in self.received_stream.feed(data):
            self.write(describe(frame, SERVER_TO_CLIENT, self.hex_dump))

    def finish(self) -> None:
        """Print what is left of partial frames (the connection is over)."""
        for frame in self.sent_stream.flush():
            self.write(describe(frame, CLIENT_TO_SERVER, self.hex_dump))
        for frame in self.received_stream.flush():
            self.write(describe(frame, SERVER_TO_CLIENT, self.hex_dump))


class TracingSocket:
    """A socket object whose ``sendall`` and ``recv`` also go to a ``Tracer``; everything
    else (``settimeout``, ``close``, ``fileno`` ...) is the wrapped socket's."""

    def __init__(self, sock: Any, tracer: Tracer) -> None:
        self._sock = sock
        self.tracer = tracer

    def sendall(self, data: bytes) -> None:
        self.tracer.sent(bytes(data))  # shown even if sending then fails
        self._sock.sendall(data)

    def recv(self, bufsize: int) -> bytes:
        data: bytes = self._sock.recv(bufsize)
        if data:
            self.tracer.received(data)
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        n: int = self._sock.recv_into(buffer, nbytes)
        if n:
            self.tracer.received(bytes(memoryview(buffer)[:n]))
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def write_to(stream: TextIO) -> Callable[[str], None]:
    """A ``write`` for ``Tracer`` that prints one block per frame and flushes."""

    def write(text: str) -> None:
        stream.write(text + "\n")
        stream.flush()

    return write


__all__ = [
    "CLIENT_TO_SERVER",
    "SERVER_TO_CLIENT",
    "Frame",
    "FrameStream",
    "Tracer",
    "TracingSocket",
    "describe",
    "describe_message",
    "flag_names",
    "frames_of",
    "hexdump",
    "opcode_name",
    "peek_header",
    "to_json",
    "write_to",
]
