"""Constants, flag bits, struct formats and the bson boundary, shared by the codec."""

from __future__ import annotations

import enum
import struct
from typing import Any, Callable, Dict, List, Mapping, Union

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions

OP_REPLY = 1
OP_UPDATE = 2001
OP_INSERT = 2002
OP_QUERY = 2004
OP_GET_MORE = 2005
OP_DELETE = 2006
OP_KILL_CURSORS = 2007
OP_COMPRESSED = 2012
OP_MSG = 2013

OPCODE_NAMES: Dict[int, str] = {
    OP_REPLY: "OP_REPLY",
    OP_UPDATE: "OP_UPDATE",
    OP_INSERT: "OP_INSERT",
    OP_QUERY: "OP_QUERY",
    OP_GET_MORE: "OP_GET_MORE",
    OP_DELETE: "OP_DELETE",
    OP_KILL_CURSORS: "OP_KILL_CURSORS",
    OP_COMPRESSED: "OP_COMPRESSED",
    OP_MSG: "OP_MSG",
}

HEADER_SIZE = 16
DEFAULT_MAX_MESSAGE_SIZE = 48_000_000  # the servers' maxMessageSizeBytes

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT32_MAX = 2**32 - 1


class MsgFlags(enum.IntFlag):
    """OP_MSG flagBits. Bits 0-15 are required (unknown ones are an error), 16-31 optional."""

    checksumPresent = 1 << 0
    moreToCome = 1 << 1
    exhaustAllowed = 1 << 16


class QueryFlags(enum.IntFlag):
    """OP_QUERY flags (bit 0 is reserved)."""

    TailableCursor = 1 << 1
    SlaveOk = 1 << 2
    OplogReplay = 1 << 3
    NoCursorTimeout = 1 << 4
    AwaitData = 1 << 5
    Exhaust = 1 << 6
    Partial = 1 << 7


class ReplyFlags(enum.IntFlag):
    """OP_REPLY responseFlags."""

    CursorNotFound = 1 << 0
    QueryFailure = 1 << 1
    ShardConfigStale = 1 << 2
    AwaitCapable = 1 << 3


class InsertFlags(enum.IntFlag):
    """OP_INSERT flags."""

    ContinueOnError = 1 << 0


class UpdateFlags(enum.IntFlag):
    """OP_UPDATE flags."""

    Upsert = 1 << 0
    MultiUpdate = 1 << 1


class DeleteFlags(enum.IntFlag):
    """OP_DELETE flags."""

    SingleRemove = 1 << 0


class CompressorId(enum.IntEnum):
    """OP_COMPRESSED compressorId values."""

    noop = 0
    snappy = 1
    zlib = 2
    zstd = 3


_CHECKSUM_PRESENT = 1 << 0
_MORE_TO_COME = 1 << 1
# Required bits (0-15) this codec does not know: a peer setting one must be refused.
_MSG_UNKNOWN_REQUIRED = 0xFFFF & ~(_CHECKSUM_PRESENT | _MORE_TO_COME)
# Bits that take an OP_MSG off the decoders' fast path (checks to make, or errors to report).
_MSG_SLOW_FLAGS = _MSG_UNKNOWN_REQUIRED | _CHECKSUM_PRESENT

# --------------------------------------------------------------------------- struct formats

_HEADER = struct.Struct("<iiii")
_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from
_pack_msg_head = struct.Struct("<iiiiIB").pack  # header, flagBits, kind of the first section
_pack_msg_head_flags = struct.Struct("<iiiiI").pack  # header, flagBits
# header, flagBits, kind and length of the first section's document
_unpack_msg_prefix = struct.Struct("<iiiiIBi").unpack_from
_unpack_msg_first = struct.Struct("<IBi").unpack_from  # flagBits, kind, document length
_unpack_uint = struct.Struct("<I").unpack_from
_pack_uint = struct.Struct("<I").pack
_unpack_int = struct.Struct("<i").unpack_from
_pack_kind1_size = struct.Struct("<Bi").pack  # kind byte 1, section size
_iter_int64 = struct.Struct("<q").iter_unpack
_pack_int64 = struct.Struct("<q").pack
_pack_ii = struct.Struct("<ii").pack
_unpack_ii = struct.Struct("<ii").unpack_from
_pack_iq = struct.Struct("<iq").pack
_unpack_iq = struct.Struct("<iq").unpack_from
# OP_REPLY responseFlags, cursorID, startingFrom, numberReturned
_pack_reply_head = struct.Struct("<Iqii").pack
_unpack_reply_head = struct.Struct("<Iqii").unpack_from
_pack_compressed_head = struct.Struct("<iiB").pack
_unpack_compressed_head = struct.Struct("<iiB").unpack_from
_ZERO32 = b"\x00\x00\x00\x00"
_KIND0 = b"\x00"

# --------------------------------------------------------------------------- bson boundary

_DEFAULT_OPTS: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS
# bson.encode / bson.decode / bson.decode_all are thin Python wrappers that validate their
# codec_options argument on every call and then call these C functions; calling them directly
# saves that wrapper on the per-operation path. Fall back to the public names if a future
# bson drops the private ones.
_dict_to_bson: Callable[[Any, bool, CodecOptions[Any]], bytes] = getattr(
    bson, "_dict_to_bson", lambda doc, check_keys, opts: bson.encode(doc, check_keys, opts)
)
_bson_to_dict: Callable[[Any, CodecOptions[Any]], Any] = getattr(
    bson, "_bson_to_dict", lambda data, opts: bson.decode(data, opts)
)
_decode_all: Callable[[Any, CodecOptions[Any]], List[Any]] = getattr(
    bson, "_decode_all", lambda data, opts: bson.decode_all(data, opts)
)

Document = Mapping[str, Any]
#: A document to send: a mapping, or already-encoded BSON written verbatim.
DocumentIn = Union[Mapping[str, Any], bytes]
_Buf = Union[bytes, bytearray]


def _doc_bytes(doc: DocumentIn, opts: CodecOptions[Any]) -> bytes:
    if doc.__class__ is bytes:
        return doc
    return _dict_to_bson(doc, False, opts)


__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "HEADER_SIZE",
    "OP_COMPRESSED",
    "OP_DELETE",
    "OP_GET_MORE",
    "OP_INSERT",
    "OP_KILL_CURSORS",
    "OP_MSG",
    "OP_QUERY",
    "OP_REPLY",
    "OP_UPDATE",
    "OPCODE_NAMES",
    "CompressorId",
    "DeleteFlags",
    "InsertFlags",
    "MsgFlags",
    "QueryFlags",
    "ReplyFlags",
    "UpdateFlags",
]
