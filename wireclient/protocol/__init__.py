"""The MongoDB wire protocol as a sans-IO codec: bytes <-> message objects, no I/O at all.

Layout (all integers little-endian)::

    frame    = header body
    header   = int32 messageLength   (whole frame, header included)
               int32 requestID
               int32 responseTo
               int32 opCode
    OP_MSG          (2013) uint32 flagBits, section+, [uint32 CRC-32C if checksumPresent]
        section     kind 0: byte 0, document                      (exactly one: the body)
                    kind 1: byte 1, int32 size, cstring identifier, document*   (size counts
                            itself, the identifier and the documents)
    OP_QUERY        (2004) int32 flags, cstring fullCollectionName, int32 numberToSkip,
                           int32 numberToReturn, document query, [document returnFieldsSelector]
    OP_REPLY           (1) int32 responseFlags, int64 cursorID, int32 startingFrom,
                           int32 numberReturned, document*
    OP_GET_MORE     (2005) int32 ZERO, cstring fullCollectionName, int32 numberToReturn,
                           int64 cursorID
    OP_KILL_CURSORS (2007) int32 ZERO, int32 numberOfCursorIDs, int64* cursorIDs
    OP_INSERT       (2002) int32 flags, cstring fullCollectionName, document*
    OP_UPDATE       (2001) int32 ZERO, cstring fullCollectionName, int32 flags, document selector,
                           document update
    OP_DELETE       (2006) int32 ZERO, cstring fullCollectionName, int32 flags, document selector
    OP_COMPRESSED   (2012) int32 originalOpcode, int32 uncompressedSize, uint8 compressorId,
                           bytes compressedMessage (the original frame's body, compressed)

Theory of operation. One small frozen, slotted class per message (``OpMsg``, ``OpQuery`` ...)
and one for the ``Header``. ``encode(message, request_id, response_to)`` returns a whole frame;
``decode(frame)`` / ``decode_body(header, body)`` parse one, and ``MessageReader`` cuts a byte
stream fed in any chunking into frames. Encoding and decoding both cover every opcode, requests
and replies alike, so the module serves a client, a mock server or a proxy. Documents are
encoded and decoded by ``bson`` (the module of the pymongo distribution); decoded documents
are dicts and document lists are tuples, so ``decode(encode(m, rid)) == (header, m)``. Any
document field may also be given as already-encoded BSON ``bytes``, written verbatim (so
testers can send broken documents); the fields are typed ``Mapping`` because that is what
decoding produces and what readers of a reply rely on.

Decoding trusts nothing: every length is checked against the bytes that are really there
before it is used, nothing is read past the declared messageLength, and every defect raises
``ProtocolError`` (``side="remote"``) naming what was wrong and the offset in the frame.
Encoding refuses out-of-range fields with ``ProtocolError(side="local")`` and documents
``bson`` cannot encode with ``InvalidDocument``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List

from wireclient.protocol import _common, decoding, encoding, messages, reader
from wireclient.protocol._common import *  # noqa: F403
from wireclient.protocol.decoding import *  # noqa: F403
from wireclient.protocol.encoding import *  # noqa: F403
from wireclient.protocol.messages import *  # noqa: F403
from wireclient.protocol.reader import *  # noqa: F403

# Each module says what it contributes (its __all__); the package re-exports exactly that.
__all__ = [
    *_common.__all__,
    *messages.__all__,
    *encoding.__all__,
    *decoding.__all__,
    *reader.__all__,
]

# OP_COMPRESSED's functions load on first use: a program that never compresses (a plain
# Connection: compression is negotiated only when asked for) never imports the module.
_COMPRESSION = ("compress", "compress_body", "decompress")
__all__ += _COMPRESSION
# checksum_ok (a frame's CRC-32C judged without decoding it) loads on first use too.
__all__ += ["checksum_ok"]

if TYPE_CHECKING:
    from wireclient.protocol.checksums import checksum_ok as checksum_ok
    from wireclient.protocol.compression import compress as compress
    from wireclient.protocol.compression import compress_body as compress_body
    from wireclient.protocol.compression import decompress as decompress


def __getattr__(name: str) -> Any:
    if name in _COMPRESSION:
        from wireclient.protocol import compression

        return getattr(compression, name)
    if name == "checksum_ok":
        from wireclient.protocol.checksums import checksum_ok

        return checksum_ok
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_COMPRESSION) | {"checksum_ok"})
