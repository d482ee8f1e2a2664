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
and documents), the fields of every legacy opcode, documents as Extended JSON (relaxed by
default, canonical on request, which keeps every BSON type), and a hex dump on request
(always for a frame that does not decode). ``frame_fields()`` gives the same content as one
JSON-ready dict, for ``decode --jsonl``.

Secrets: the SCRAM conversation (``saslStart``, ``saslContinue``, ``authenticate``, a
``speculativeAuthenticate`` in a hello, and the replies that carry a ``conversationId``)
holds the client's proof, from which a password can be attacked offline. Unless asked with
``show_secrets=True``, their ``payload`` (or ``key``) is replaced by a note giving its
size, and such a frame's hex dump is withheld.

``TracingSocket`` wraps a socket object for ``network.SocketInfo``: every ``sendall`` and
``recv`` goes to a ``Tracer``, which runs one ``FrameStream`` per direction and prints each
frame as it completes. This module does no I/O of its own (it imports no ``socket``).
"""

from __future__ import annotations

import re
import string
import struct
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    TextIO,
    Type,
)

from bson import json_util
from bson.int64 import Int64

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError

_peek = struct.Struct("<iiii").unpack_from
_HEX_LIMIT = 4096  # bytes shown of a bad frame without --dump

JSON_MODES = {
    "relaxed": json_util.RELAXED_JSON_OPTIONS,
    "canonical": json_util.CANONICAL_JSON_OPTIONS,
}
DEFAULT_JSON_MODE = "relaxed"

# The commands whose fields carry SCRAM material (the command monitoring specification's
# list of sensitive commands, the authentication ones), and the fields holding it.
_AUTH_COMMANDS = frozenset({"saslstart", "saslcontinue", "authenticate"})
_SECRET_FIELDS = ("payload", "key")

CLIENT_TO_SERVER = "client -> server"
SERVER_TO_CLIENT = "server -> client"


def to_json(document: Any, indent: Optional[int] = None, mode: str = DEFAULT_JSON_MODE) -> str:
    """A document (or list of them) as Extended JSON, ``mode`` "relaxed" or "canonical"."""
    return str(json_util.dumps(document, json_options=JSON_MODES[mode], indent=indent))


def _withheld(value: Any) -> str:
    size = len(value) if isinstance(value, (bytes, str)) else None
    what = f"{size} bytes" if size is not None else type(value).__name__
    return f"<redacted: {what}; --show-secrets shows it>"


def _redact_fields(document: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: _withheld(v) if k in _SECRET_FIELDS else v for k, v in document.items()}


def redact(document: Any) -> Any:
    """``document`` with its SCRAM secrets replaced by a note (the same object when it
    holds none): an authentication command's payload, a hello's
    ``speculativeAuthenticate`` payload, and a reply's payload beside a ``conversationId``."""
    if not isinstance(document, Mapping) or not document:
        return document
    first = str(next(iter(document))).lower()
    changed: Optional[Dict[str, Any]] = None
    if first in _AUTH_COMMANDS or "conversationId" in document:
        if any(k in document for k in _SECRET_FIELDS):
            changed = _redact_fields(document)
    speculative = document.get("speculativeAuthenticate")
    if isinstance(speculative, Mapping) and any(k in speculative for k in _SECRET_FIELDS):
        changed = dict(changed if changed is not None else document)
        changed["speculativeAuthenticate"] = _redact_fields(speculative)
    return document if changed is None else changed


def command_name(message: Any) -> Optional[str]:
    """The command a request runs: the first key of an OP_MSG body, or of an OP_QUERY on
    ``DB.$cmd`` (unwrapping ``$query``), OP_COMPRESSED unwrapped; None for anything else."""
    p = protocol
    if isinstance(message, p.OpCompressed):
        try:
            message = p.decompress(message)
        except (ProtocolError, ConfigurationError):
            return None
    if isinstance(message, p.OpMsg):
        document: Any = message.body
    elif isinstance(message, p.OpQuery) and message.full_collection_name.endswith(".$cmd"):
        document = message.query
        if "$query" in document and isinstance(document["$query"], Mapping):
            document = document["$query"]
    else:
        return None
    return str(next(iter(document))) if document else None


def is_authentication(message: Any) -> bool:
    """Whether a request is a step of an authentication conversation."""
    name = command_name(message)
    return name is not None and name.lower() in _AUTH_COMMANDS


def carries_secrets(message: Any) -> bool:
    """Whether a decoded message holds SCRAM material that ``redact`` would hide."""
    return any(redact(doc) is not doc for doc in message_documents(message))


def message_documents(message: Any) -> List[Any]:
    """The documents of a message that a command or reply lives in (bodies, queries,
    OP_REPLY documents; not kind-1 sequences), OP_COMPRESSED unwrapped when it can be."""
    p = protocol
    if isinstance(message, p.OpCompressed):
        try:
            message = p.decompress(message)
        except (ProtocolError, ConfigurationError):
            return []
    if isinstance(message, p.OpMsg):
        return [message.body]
    if isinstance(message, p.OpQuery):
        return [message.query]
    if isinstance(message, p.OpReply):
        return list(message.documents)
    return []


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


# A line of ``hexdump``: offset, up to 16 bytes in two groups, ``|ascii|``.
_DUMP_LINE = re.compile(
    r"^\s*[0-9a-fA-F]{8}  ((?:[0-9a-fA-F]{2} {1,2}){0,15}[0-9a-fA-F]{2})\s+\|.*\|$"
)
# A line of ``xxd`` (any -g grouping): ``00000010: 4d6f 6e67 ...  MongoD...``.
_XXD_LINE = re.compile(
    r"^([0-9a-fA-F]{6,}): ((?:[0-9a-fA-F]{2})+(?: (?:[0-9a-fA-F]{2})+)*)(?:  |$)"
)
_HEX_PREFIX = re.compile(r"0[xX]|\\x")


def parse_hex_text(text: str) -> bytes:
    """The bytes written as hex in ``text``; ``ValueError`` (saying where) if it is not.

    Understood: hex digits with any whitespace, commas, and ``0x`` or ``\\x`` before each
    byte or group (``0x33 0x00``, ``\\x33\\x00``, ``0x3300``); ``xxd`` output (the offset
    and the text column are skipped); and ``hexdump()``'s own lines, as ``--dump`` prints
    them (every other line of that output, the frame descriptions, is skipped).
    """
    lines = text.splitlines()
    dumped = [m.group(1) for m in map(_DUMP_LINE.match, lines) if m]
    if dumped:
        return bytes.fromhex(" ".join(dumped))
    xxd = [m.group(2) for m in map(_XXD_LINE.match, lines) if m]
    if xxd and len(xxd) == sum(1 for line in lines if line.strip()):
        return bytes.fromhex(" ".join(xxd))
    digits = []
    for number, line in enumerate(lines, 1):
        for token in line.replace(",", " ").split():
            groups = [g for g in _HEX_PREFIX.split(token) if g]
            for group in groups:
                if len(group) % 2 or any(c not in string.hexdigits for c in group):
                    raise ValueError(f"line {number}: {token!r} is not hex bytes")
            digits += groups
    return bytes.fromhex("".join(digits))


def _documents(name: str, documents: Iterable[Any], indent: str, show: _Show) -> List[str]:
    docs = list(documents)
    lines = [f"{indent}{name} ({len(docs)} document{'' if len(docs) == 1 else 's'}):"]
    lines += [f"{indent}  {show(doc)}" for doc in docs]
    return lines


_Show = Callable[[Any], str]


def _shower(json_mode: str, show_secrets: bool) -> _Show:
    if json_mode not in JSON_MODES:
        raise ValueError(f"json_mode must be one of {sorted(JSON_MODES)}, not {json_mode!r}")

    def show(document: Any) -> str:
        return to_json(document if show_secrets else redact(document), mode=json_mode)

    return show


def describe_message(
    message: Any,
    raw: bytes = b"",
    indent: str = "  ",
    *,
    json_mode: str = DEFAULT_JSON_MODE,
    show_secrets: bool = False,
) -> List[str]:
    """The fields of a decoded message, one per line (SCRAM secrets redacted unless
    ``show_secrets``)."""
    p = protocol
    show = _shower(json_mode, show_secrets)
    lines: List[str] = []
    add = lines.append
    if isinstance(message, p.OpMsg):
        add(f"{indent}flagBits: {flag_names(message.flags, p.MsgFlags)}")
        add(f"{indent}section kind 0 body: {show(message.body)}")
        for seq in message.sequences:
            lines += _documents(f"section kind 1 {seq.identifier!r}", seq.documents, indent, show)
        if message.flags & p.MsgFlags.checksumPresent and len(raw) >= 4:
            add(f"{indent}checksum: 0x{int.from_bytes(raw[-4:], 'little'):08x} (verified)")
    elif isinstance(message, p.OpQuery):
        add(f"{indent}flags: {flag_names(message.flags, p.QueryFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}numberToSkip: {message.number_to_skip}")
        add(f"{indent}numberToReturn: {message.number_to_return}")
        add(f"{indent}query: {show(message.query)}")
        if message.return_fields_selector is not None:
            add(f"{indent}returnFieldsSelector: {show(message.return_fields_selector)}")
    elif isinstance(message, p.OpReply):
        add(f"{indent}responseFlags: {flag_names(message.response_flags, p.ReplyFlags)}")
        add(f"{indent}cursorID: {message.cursor_id}")
        add(f"{indent}startingFrom: {message.starting_from}")
        lines += _documents("documents", message.documents, indent, show)
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
        lines += _documents("documents", message.documents, indent, show)
    elif isinstance(message, p.OpUpdate):
        add(f"{indent}flags: {flag_names(message.flags, p.UpdateFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}selector: {show(message.selector)}")
        add(f"{indent}update: {show(message.update)}")
    elif isinstance(message, p.OpDelete):
        add(f"{indent}flags: {flag_names(message.flags, p.DeleteFlags)}")
        add(f"{indent}fullCollectionName: {message.full_collection_name}")
        add(f"{indent}selector: {show(message.selector)}")
    elif isinstance(message, p.OpCompressed):
        lines += _describe_compressed(message, indent, json_mode, show_secrets)
    return lines


def _describe_compressed(
    message: protocol.OpCompressed, indent: str, json_mode: str, show_secrets: bool
) -> List[str]:
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
    inner_lines = describe_message(
        inner, indent=indent + "  ", json_mode=json_mode, show_secrets=show_secrets
    )
    return lines + [f"{indent}decompressed:"] + inner_lines


def describe(
    frame: Frame,
    label: str,
    hex_dump: bool = False,
    *,
    json_mode: str = DEFAULT_JSON_MODE,
    show_secrets: bool = False,
) -> str:
    """The lines printed for one frame, headed by ``label`` (direction, connection).

    ``hex_dump`` adds the frame's bytes (withheld for a frame that carries SCRAM secrets,
    unless ``show_secrets``); ``json_mode`` is "relaxed" or "canonical" Extended JSON.
    """
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
            lines.append(f"    ... {len(frame.raw) - len(shown)} more bytes (--dump shows all)")
        return "\n".join(lines)
    lines += describe_message(
        frame.message, frame.raw, json_mode=json_mode, show_secrets=show_secrets
    )
    if hex_dump:
        if not show_secrets and carries_secrets(frame.message):
            lines.append("  hex dump withheld: the frame carries SCRAM secrets (--show-secrets)")
        else:
            lines += hexdump(frame.raw)
    return "\n".join(lines)


def message_fields(message: Any, *, show_secrets: bool = False) -> Dict[str, Any]:
    """A decoded message's fields as a dict (documents left as BSON values), named as in
    the wire protocol's specification; ``describe_message``'s content, for JSON output."""
    p = protocol
    hide: Callable[[Any], Any] = (lambda doc: doc) if show_secrets else redact
    if isinstance(message, p.OpMsg):
        fields: Dict[str, Any] = {
            "flagBits": message.flags,
            "flagNames": _names(message.flags, p.MsgFlags),
            "body": hide(message.body),
        }
        if message.sequences:
            fields["sequences"] = [
                {"identifier": seq.identifier, "documents": list(seq.documents)}
                for seq in message.sequences
            ]
        return fields
    if isinstance(message, p.OpQuery):
        fields = {
            "flags": message.flags,
            "flagNames": _names(message.flags, p.QueryFlags),
            "fullCollectionName": message.full_collection_name,
            "numberToSkip": message.number_to_skip,
            "numberToReturn": message.number_to_return,
            "query": hide(message.query),
        }
        if message.return_fields_selector is not None:
            fields["returnFieldsSelector"] = message.return_fields_selector
        return fields
    if isinstance(message, p.OpReply):
        return {
            "responseFlags": message.response_flags,
            "flagNames": _names(message.response_flags, p.ReplyFlags),
            "cursorID": Int64(message.cursor_id),
            "startingFrom": message.starting_from,
            "documents": [hide(doc) for doc in message.documents],
        }
    if isinstance(message, p.OpGetMore):
        return {
            "fullCollectionName": message.full_collection_name,
            "numberToReturn": message.number_to_return,
            "cursorID": Int64(message.cursor_id),
        }
    if isinstance(message, p.OpKillCursors):
        return {"cursorIDs": [Int64(c) for c in message.cursor_ids]}
    if isinstance(message, p.OpInsert):
        return {
            "flags": message.flags,
            "fullCollectionName": message.full_collection_name,
            "documents": list(message.documents),
        }
    if isinstance(message, p.OpUpdate):
        return {
            "flags": message.flags,
            "fullCollectionName": message.full_collection_name,
            "selector": message.selector,
            "update": message.update,
        }
    if isinstance(message, p.OpDelete):
        return {
            "flags": message.flags,
            "fullCollectionName": message.full_collection_name,
            "selector": message.selector,
        }
    if isinstance(message, p.OpCompressed):
        fields = {
            "originalOpcode": message.original_opcode,
            "uncompressedSize": message.uncompressed_size,
            "compressorId": message.compressor_id,
        }
        try:
            inner = protocol.decompress(message)
        except (ProtocolError, ConfigurationError) as exc:
            fields["error"] = f"cannot decompress: {exc}"
            return fields
        fields["decompressed"] = {
            "opCode": inner.op_code,
            "opName": protocol.OPCODE_NAMES.get(inner.op_code, "unknown opCode"),
            **message_fields(inner, show_secrets=show_secrets),
        }
        return fields
    return {}


def _names(value: int, flags: Type[Any]) -> List[str]:
    return [member.name for member in flags if value & member.value]


def frame_fields(frame: Frame, *, show_secrets: bool = False) -> Dict[str, Any]:
    """One frame as a JSON-ready dict: its header, opcode name and fields, or its error
    and bytes (hex) when it does not decode."""
    fields: Dict[str, Any] = {"length": len(frame.raw)}
    header = frame.header
    if header is not None:
        fields.update(
            messageLength=header.message_length,
            requestID=header.request_id,
            responseTo=header.response_to,
            opCode=header.op_code,
            opName=protocol.OPCODE_NAMES.get(header.op_code, "unknown opCode"),
        )
    if frame.error is not None:
        fields["error"] = frame.error
        fields["hex"] = frame.raw.hex()
        return fields
    fields.update(message_fields(frame.message, show_secrets=show_secrets))
    return fields


# --------------------------------------------------------------------------- tracing a socket


class Tracer:
    """Prints every frame sent and received on one connection (see ``TracingSocket``)."""

    def __init__(
        self,
        write: Callable[[str], None],
        hex_dump: bool = False,
        *,
        json_mode: str = DEFAULT_JSON_MODE,
        show_secrets: bool = False,
    ) -> None:
        self.write = write
        self.hex_dump = hex_dump
        self.json_mode = json_mode
        self.show_secrets = show_secrets
        self.sent_stream = FrameStream()
        self.received_stream = FrameStream()

    def _show(self, frame: Frame, label: str) -> None:
        self.write(
            describe(
                frame,
                label,
                self.hex_dump,
                json_mode=self.json_mode,
                show_secrets=self.show_secrets,
            )
        )

    def sent(self, data: bytes) -> None:
        for frame in self.sent_stream.feed(data):
            self._show(frame, CLIENT_TO_SERVER)

    def received(self, data: bytes) -> None:
        for frame in self.received_stream.feed(data):
            self._show(frame, SERVER_TO_CLIENT)

    def finish(self) -> None:
        """Print what is left of partial frames (the connection is over)."""
        for frame in self.sent_stream.flush():
            self._show(frame, CLIENT_TO_SERVER)
        for frame in self.received_stream.flush():
            self._show(frame, SERVER_TO_CLIENT)


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
    "DEFAULT_JSON_MODE",
    "JSON_MODES",
    "SERVER_TO_CLIENT",
    "Frame",
    "FrameStream",
    "Tracer",
    "TracingSocket",
    "carries_secrets",
    "command_name",
    "describe",
    "describe_message",
    "flag_names",
    "frame_fields",
    "frames_of",
    "hexdump",
    "is_authentication",
    "message_documents",
    "message_fields",
    "parse_hex_text",
    "opcode_name",
    "peek_header",
    "redact",
    "to_json",
    "write_to",
]
