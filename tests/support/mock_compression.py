"""mockupdb taught OP_COMPRESSED on the server's side, for the compression tests.

mockupdb 1.8.1 knows no OP_COMPRESSED: it refuses opcode 2012, and it never compresses a
reply. Importing this module teaches it both, as a peer would, with the compression
libraries themselves (zlib, python-snappy, zstandard), never wireclient's codec:

* a request that arrives as OP_COMPRESSED is decompressed and handed to mockupdb as the
  message it wraps; the request keeps ``compressor_id`` (None for a plain frame) and
  ``wire_frame`` (the bytes as they arrived), and ``frame`` becomes the plain frame, so
  ``mock_server.Received`` parses it as usual;
* the reply to a compressed request is compressed with the same compressor, unless the
  test says otherwise with ``answer_compressed(request, name)`` (any compressor, for a
  plain request too: a server may compress any reply once compression was negotiated).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Dict, Optional

import mock_server  # noqa: F401  (its frame-keeping wrapper must be installed first)
import mockupdb
import snappy
import zstandard

OP_COMPRESSED = 2012
COMPRESSOR_IDS: Dict[str, int] = {"noop": 0, "snappy": 1, "zlib": 2, "zstd": 3}


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
    """A whole frame wrapped in OP_COMPRESSED (the server's side)."""
    _, request_id, response_to, op_code = struct.unpack_from("<iiii", frame)
    body = frame[16:]
    packed = peer_compress(compressor_id, body)
    head = struct.pack("<iiB", op_code, len(body), compressor_id)
    total = 16 + len(head) + len(packed)
    return struct.pack("<iiii", total, request_id, response_to, OP_COMPRESSED) + head + packed


class CompressingClient:
    """The client socket as a request sees it: ``sendall`` compresses each reply frame."""

    def __init__(self, sock: Any, compressor_id: int) -> None:
        self._sock = sock
        self.compressor_id = compressor_id

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(compress_frame(data, self.compressor_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def answer_compressed(request: Any, name: Optional[str]) -> None:
    """Make ``request``'s reply go out compressed with ``name`` (None: uncompressed)."""
    raw = getattr(request._client, "_sock", request._client)
    request._client = raw if name is None else CompressingClient(raw, COMPRESSOR_IDS[name])


class _OpCompressed:
    """What mockupdb's OPCODES table needs: ``unpack`` for opcode 2012."""

    @classmethod
    def unpack(cls, msg: bytes, client: Any, server: Any, request_id: int) -> Any:
        original, size, compressor_id = struct.unpack_from("<iiB", msg)
        body = peer_decompress(compressor_id, bytes(msg[9:]), size)
        request = mockupdb.OPCODES[original].unpack(body, client, server, request_id)
        request.compressor_id = compressor_id
        request.original_opcode = original
        request.plain_body = body
        request._client = CompressingClient(client, compressor_id)  # answer in kind
        return request


mockupdb.OPCODES[OP_COMPRESSED] = _OpCompressed
_receive = mockupdb.mock_server_receive_request


def _receive_decompressed(client: Any, server: Any) -> Any:
    request = _receive(client, server)
    wire = getattr(request, "frame", None)
    request.wire_frame = wire
    if getattr(request, "compressor_id", None) is None:
        request.compressor_id = None
    elif wire is not None:
        _, request_id, response_to, _ = struct.unpack_from("<iiii", wire)
        body = request.plain_body
        header = struct.pack(
            "<iiii", 16 + len(body), request_id, response_to, request.original_opcode
        )
        request.frame = header + body
    return request


if getattr(mockupdb.mock_server_receive_request, "__name__", "") != "_receive_decompressed":
    mockupdb.mock_server_receive_request = _receive_decompressed
