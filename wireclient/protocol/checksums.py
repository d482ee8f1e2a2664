"""The OP_MSG checksum of a whole frame, judged without decoding it (plain or compressed)."""

from __future__ import annotations

from typing import Optional, Union

from wireclient.errors import ProtocolError
from wireclient.protocol._common import (
    _CHECKSUM_PRESENT,
    OP_COMPRESSED,
    OP_MSG,
    _pack_header,
    _unpack_compressed_head,
    _unpack_header,
    _unpack_uint,
)
from wireclient.protocol._crc32c import crc32c


def checksum_ok(frame: Union[bytes, bytearray, memoryview]) -> Optional[bool]:
    """Whether the CRC-32C an OP_MSG frame carries matches its bytes; None when the frame
    carries none (checksumPresent unset, or not an OP_MSG).

    An OP_COMPRESSED frame that wraps an OP_MSG is judged on the frame it stands for: the
    inner message decompressed under a header rebuilt from the outer requestID and
    responseTo, as ``decompress`` checks it. This reads only the header, the flagBits and
    the trailing four bytes (after decompression for OP_COMPRESSED), so a frame whose
    checksum is wrong can still be decoded with ``MessageReader(verify_checksums=False)``
    and its verdict kept beside it. The frame must be whole (``MessageReader.peek_frame``);
    a frame too short to hold what it claims raises ``ProtocolError``.
    """
    data = bytes(frame)
    if len(data) < 16:
        raise ProtocolError(f"truncated header: {len(data)} of 16 bytes", offset=len(data))
    length, request_id, response_to, op_code = _unpack_header(data, 0)
    if op_code == OP_COMPRESSED and len(data) >= 25:
        original, size, compressor_id = _unpack_compressed_head(data, 16)
        if original != OP_MSG:
            return None
        from wireclient.protocol.compression import _inflate

        data = _pack_header(size + 16, request_id, response_to, OP_MSG) + _inflate(
            compressor_id, data[25:length], size
        )
    elif op_code != OP_MSG:
        return None
    if len(data) < 20:
        return None
    (flags,) = _unpack_uint(data, 16)
    if not flags & _CHECKSUM_PRESENT:
        return None
    if len(data) < 24:
        return False
    (expected,) = _unpack_uint(data, len(data) - 4)
    return bool(crc32c(memoryview(data)[:-4]) == expected)


__all__ = ["checksum_ok"]
