"""Frames built and taken apart the way a peer would: ``struct``, ``bson`` (pymongo's), the
compression libraries themselves (zlib, python-snappy, zstandard) and a CRC-32C written
here, never wireclient's codec.

Tests that run against ``wireclient.mock.MockServer`` (which is built on wireclient's codec)
use these where they assert on bytes: they read ``request.frame`` (the bytes as they
arrived) with ``unwrap`` / ``wire_compressor`` / ``sent_doc``, and answer with
``request.reply_frame(...)`` of a frame made by ``op_msg_frame`` / ``op_reply_frame`` and
``compress_frame``, so what is checked does not go through the code under test.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, List, Mapping, Optional, Sequence

import bson
import snappy
import zstandard

OP_REPLY, OP_QUERY, OP_COMPRESSED, OP_MSG = 1, 2004, 2012, 2013
CHECKSUM_PRESENT, MORE_TO_COME, EXHAUST_ALLOWED = 1, 2, 1 << 16
COMPRESSOR_IDS: Dict[str, int] = {"noop": 0, "snappy": 1, "zlib": 2, "zstd": 3}
COMPRESSOR_NAMES: Dict[int, str] = {v: k for k, v in COMPRESSOR_IDS.items()}


def peer_compress(compressor_id: int, data: bytes) -> bytes:
    if compressor_id == 0:
        return data
    if compressor_id == 1:
        return bytes(snappy.compress(data))
    if compressor_id == 2:
        return zlib.compress(data)
    if compressor_id == 3:
        return bytes(zstandard.ZstdCompressor().compress(data))
    raise AssertionError(f"unknown compressor id {compressor_id}")


def peer_decompress(compressor_id: int, data: bytes, size: int) -> bytes:
    if compressor_id == 0:
        out = data
    elif compressor_id == 1:
        out = bytes(snappy.uncompress(data))
    elif compressor_id == 2:
        out = zlib.decompress(data)
    elif compressor_id == 3:
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    else:
        raise AssertionError(f"unknown compressor id {compressor_id}")
    assert len(out) == size, f"uncompressedSize {size}, got {len(out)} bytes"
    return out


def compress_frame(frame: bytes, compressor_id: int) -> bytes:
    """A whole frame wrapped in OP_COMPRESSED (the same requestID and responseTo)."""
    _, request_id, response_to, op_code = struct.unpack_from("<iiii", frame)
    body = frame[16:]
    packed = peer_compress(compressor_id, body)
    head = struct.pack("<iiB", op_code, len(body), compressor_id)
    total = 16 + len(head) + len(packed)
    return struct.pack("<iiii", total, request_id, response_to, OP_COMPRESSED) + head + packed


def opcode_of(frame: bytes) -> int:
    return int(struct.unpack_from("<i", frame, 12)[0])


def wire_compressor(frame: bytes) -> Optional[str]:
    """The compressor a frame went on the wire with, read from its bytes (None: plain)."""
    if opcode_of(frame) != OP_COMPRESSED:
        return None
    return COMPRESSOR_NAMES[frame[24]]


def unwrap(frame: bytes) -> bytes:
    """The plain frame a frame stands for: an OP_COMPRESSED one decompressed by the peer's
    libraries with its header rebuilt (same requestID and responseTo), a plain one as is."""
    length, request_id, response_to, op_code = struct.unpack_from("<iiii", frame)
    assert length == len(frame), f"messageLength {length}, frame of {len(frame)} bytes"
    if op_code != OP_COMPRESSED:
        return frame
    original, size, compressor_id = struct.unpack_from("<iiB", frame, 16)
    body = peer_decompress(compressor_id, frame[25:], size)
    return struct.pack("<iiii", 16 + size, request_id, response_to, original) + body


def sent_doc(frame: bytes) -> Dict[str, Any]:
    """The command document of a client's frame (OP_MSG body, or OP_QUERY query), read
    from the bytes by mock_server's parsers after ``unwrap``."""
    from mock_server import parse_op_msg, parse_op_query

    plain = unwrap(frame)
    if opcode_of(plain) == OP_MSG:
        return parse_op_msg(plain)[1]
    assert opcode_of(plain) == OP_QUERY, f"opcode {opcode_of(plain)}"
    query = parse_op_query(plain)[4]
    inner = query.get("$query")
    return dict(inner) if isinstance(inner, Mapping) else query


def msg_flags(frame: bytes) -> int:
    """flagBits of an OP_MSG (after ``unwrap``)."""
    plain = unwrap(frame)
    assert opcode_of(plain) == OP_MSG, f"opcode {opcode_of(plain)}"
    return int(struct.unpack_from("<I", plain, 16)[0])


# -- CRC-32C (Castagnoli), bit by bit: slow and obviously the definition -------------------


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the check value of CRC-32C (RFC 3720, B.4)


def checksum_verified(frame: bytes) -> bool:
    """True if an OP_MSG frame's trailing CRC-32C covers the rest of it (it must have one)."""
    assert opcode_of(frame) == OP_MSG and msg_flags(frame) & CHECKSUM_PRESENT, frame[:24]
    return crc32c(frame[:-4]) == struct.unpack("<I", frame[-4:])[0]


# -- replies -------------------------------------------------------------------------------


def op_msg_frame(
    doc: Mapping[str, Any],
    request_id: int,
    response_to: int,
    *,
    more_to_come: bool = False,
    checksum: bool = False,
    bad_checksum: bool = False,
) -> bytes:
    """An OP_MSG reply with one kind-0 section; ``checksum`` appends a CRC-32C (computed
    here), ``bad_checksum`` a wrong one."""
    flags = (MORE_TO_COME if more_to_come else 0) | (
        CHECKSUM_PRESENT if checksum or bad_checksum else 0
    )
    body = struct.pack("<I", flags) + b"\x00" + bson.encode(doc)
    length = 16 + len(body) + (4 if flags & CHECKSUM_PRESENT else 0)
    frame = struct.pack("<iiii", length, request_id, response_to, OP_MSG) + body
    if flags & CHECKSUM_PRESENT:
        crc = crc32c(frame) ^ (0xFFFFFFFF if bad_checksum else 0)
        frame += struct.pack("<I", crc)
    return frame


def op_reply_frame(docs: Sequence[Mapping[str, Any]], request_id: int, response_to: int) -> bytes:
    """An OP_REPLY (cursorID 0) carrying ``docs``."""
    encoded: List[bytes] = [bson.encode(doc) for doc in docs]
    body = struct.pack("<iqii", 0, 0, 0, len(encoded)) + b"".join(encoded)
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, OP_REPLY) + body
