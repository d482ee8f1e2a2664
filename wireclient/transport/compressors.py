"""Wire compression on a connection: what is offered, what is chosen, what is compressed.

Theory of operation
-------------------
The compression spec in four steps, each in one place:

1. ``Connection`` turns the ``compressors`` and ``zlibCompressionLevel`` options into one
   ``CompressionSettings`` (``settings_from_options``), once. That is where a compressor
   whose package is missing fails, with a ``ConfigurationError`` naming the pip package
   (snappy needs ``python-snappy``, zstd ``zstandard``; zlib is in the standard library),
   so no socket is ever opened for a client that could not compress. Unknown names were
   already dropped with a warning by the option's validator (``options.py``), as the
   connection-string spec asks.
2. ``SocketInfo.handshake`` offers the names, in the client's order, in the handshake's
   ``compression`` field, and from then on lets its reader decompress
   OP_COMPRESSED replies (the server may compress any reply, the handshake's included,
   with any compressor it names in the frame).
3. ``CompressionSettings.negotiate`` picks the first client compressor that the reply's
   ``compression`` array also lists; the socket keeps a ``Compressor`` for it (or None:
   nothing in common, which is not an error).
4. ``Compressor.frame`` wraps each outgoing frame just before it is written: OP_MSG and
   OP_QUERY only (the spec lets a client leave the legacy opcodes alone), never a frame
   with a checksum (it would cover a header that is no longer sent), and never a command
   the spec forbids (``hello``, legacy hello, the authentication and user-management
   commands of ``NEVER_COMPRESSED``): those go out as they are. The frame is compressed
   from the bytes already encoded (its body after the 16-byte header), so nothing is
   encoded twice; its requestID is kept. Size limits were checked on the uncompressed
   frame, and command events show the uncompressed command: both happen before this.
"""

from __future__ import annotations

import struct
from typing import Any, Mapping, Optional, Sequence, Tuple

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.protocol.compression import OPTIONAL_PACKAGES

# Commands the spec forbids compressing, lower-cased (``ismaster`` is legacy hello too).
NEVER_COMPRESSED = frozenset(
    name.lower()
    for name in (
        "hello",
        "isMaster",
        "saslStart",
        "saslContinue",
        "getnonce",
        "authenticate",
        "createUser",
        "updateUser",
        "copydbSaslStart",
        "copydbgetnonce",
        "copydb",
    )
)

_HEADER = struct.Struct("<iiii")
_COMPRESSED_HEAD = struct.Struct("<iiB")
_INT32 = struct.Struct("<i")
_COMPRESSIBLE_OPCODES = (protocol.OP_MSG, protocol.OP_QUERY)


class CompressionSettings:
    """The compressors a client offers, in its order of preference, and the zlib level."""

    __slots__ = ("compressors", "zlib_level")

    def __init__(self, compressors: Sequence[str], zlib_level: int = -1) -> None:
        self.compressors: Tuple[str, ...] = tuple(compressors)
        self.zlib_level = zlib_level

    def __repr__(self) -> str:
        return f"CompressionSettings({list(self.compressors)!r}, zlib_level={self.zlib_level})"

    def negotiate(self, reply: Mapping[str, Any], where: str) -> Optional[Compressor]:
        """The compressor for a socket whose handshake ``reply`` came from ``where``: the
        first of the client's that the server lists too; None when they share none (or the
        server sent no list). A ``compression`` field that is not an array of strings is a
        ``ProtocolError``."""
        listed = reply.get("compression")
        if listed is None:
            return None
        if not isinstance(listed, (list, tuple)) or not all(isinstance(n, str) for n in listed):
            raise ProtocolError(
                f"{where}: the handshake reply's 'compression' must be an array of compressor"
                f" names, not {listed!r}"
            )
        for name in self.compressors:
            if name in listed:
                return Compressor(name, self.zlib_level if name == "zlib" else -1)
        return None


def check_installed(name: str) -> None:
    """Raise ``ConfigurationError`` naming the pip package when ``name``'s is missing."""
    found = OPTIONAL_PACKAGES.get(name)
    if found is None:
        return
    module, package = found
    try:
        __import__(module)
    except ImportError:
        raise ConfigurationError(
            f"compressors={name}: the {name} compressor needs the {package!r} package, which"
            f" is not installed (pip install {package}, or pip install wireclient[compression])"
        ) from None


def settings_from_options(options: Mapping[str, Any]) -> Optional[CompressionSettings]:
    """The settings for validated connection ``options``; None when nothing is offered."""
    names = options.get("compressors") or ()
    if not names:
        return None
    for name in names:
        check_installed(name)
    return CompressionSettings(names, int(options.get("zlibCompressionLevel", -1)))


class Compressor:
    """Wraps the frames one socket sends in OP_COMPRESSED (see the module notes)."""

    __slots__ = ("name", "compressor_id", "level")

    def __init__(self, name: str, level: int = -1) -> None:
        self.name = name
        self.compressor_id = int(protocol.CompressorId[name])
        self.level = level

    def __repr__(self) -> str:
        return f"Compressor({self.name!r}, level={self.level})"

    def frame(self, data: bytes) -> bytes:
        """``data`` (one whole frame) as it goes on the wire: compressed, or as it is when
        the spec or its opcode keeps it uncompressed."""
        length, request_id, response_to, op_code = _HEADER.unpack_from(data)
        if op_code not in _COMPRESSIBLE_OPCODES:
            return data
        if op_code == protocol.OP_MSG and data[16] & protocol.MsgFlags.checksumPresent:
            return data
        name = command_name(data)
        if name is None or name.lower() in NEVER_COMPRESSED:
            return data
        body = data[16:]
        packed = protocol.compress_body(body, self.compressor_id, self.level)
        head = _COMPRESSED_HEAD.pack(op_code, len(body), self.compressor_id)
        total = 16 + len(head) + len(packed)
        return _HEADER.pack(total, request_id, response_to, protocol.OP_COMPRESSED) + head + packed


def command_name(frame: bytes) -> Optional[str]:
    """The command an OP_MSG or OP_QUERY frame this client encoded carries: the first key
    of the OP_MSG's kind-0 body (the encoder writes it first), or of the OP_QUERY's query
    (or of its ``$query``, when the query is wrapped for a read preference). None when
    there is no first key, or for another opcode."""
    (op_code,) = _INT32.unpack_from(frame, 12)
    if op_code == protocol.OP_MSG:
        if frame[20] != 0:  # not a kind-0 section first: not a command this client built
            return None
        return _first_key(frame, 21)
    if op_code == protocol.OP_QUERY:
        start = frame.index(b"\x00", 20) + 1 + 8  # fullCollectionName, skip, return
        name = _first_key(frame, start)
        if name == "$query" and frame[start + 4] == 0x03:  # an embedded document
            return _first_key(frame, start + 4 + 1 + len("$query") + 1)
        return name
    return None


def _first_key(frame: bytes, document: int) -> Optional[str]:
    """The name of the first element of the BSON document at offset ``document``."""
    if frame[document + 4] == 0:  # an empty document: just its terminating zero
        return None
    start = document + 5
    end = frame.index(b"\x00", start)
    return bytes(frame[start:end]).decode("utf-8", "replace")


__all__ = [
    "NEVER_COMPRESSED",
    "CompressionSettings",
    "Compressor",
    "check_installed",
    "command_name",
    "settings_from_options",
]
