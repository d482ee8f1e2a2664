"""OP_COMPRESSED: wrapping a message and unwrapping it."""

from __future__ import annotations

from typing import Any, List, Optional, Union

from bson.codec_options import CodecOptions

from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.protocol._common import (
    _CHECKSUM_PRESENT,
    _DEFAULT_OPTS,
    DEFAULT_MAX_MESSAGE_SIZE,
    OP_COMPRESSED,
    CompressorId,
)
from wireclient.protocol.decoding import _DECODERS
from wireclient.protocol.encoding import encode_body
from wireclient.protocol.messages import Header, Message, OpCompressed, OpMsg

_COMPRESSOR_NAMES = {c.name: c for c in CompressorId}


def _compressor_id(compressor: Union[str, int]) -> CompressorId:
    try:
        if isinstance(compressor, str):
            return _COMPRESSOR_NAMES[compressor]
        return CompressorId(compressor)
    except (KeyError, ValueError):
        raise ConfigurationError(
            f"unknown compressor {compressor!r}: choose one of {', '.join(_COMPRESSOR_NAMES)}"
        ) from None


# Compressor name -> (the module it needs, the pip package that provides it); zlib is in
# the standard library. ``compressors.check_installed`` reads the same table.
OPTIONAL_PACKAGES = {"snappy": ("snappy", "python-snappy"), "zstd": ("zstandard", "zstandard")}


def _import_optional(name: str) -> Any:
    module, package = OPTIONAL_PACKAGES[name]
    try:
        return __import__(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {name} compressor needs the {package!r} package, which is not installed"
            f" (pip install {package})"
        ) from exc


def compress(
    message: Message,
    compressor: Union[str, int] = "zlib",
    level: int = -1,
    *,
    codec_options: Optional[CodecOptions[Any]] = None,
) -> OpCompressed:
    """``message`` wrapped in an OP_COMPRESSED: "noop", "zlib", "snappy" or "zstd".

    ``level`` is the zlib / zstd level (-1: the library's default). Which messages may be
    compressed (not hello, saslStart ...) is the caller's policy, not this function's.
    """
    cid = _compressor_id(compressor)
    if isinstance(message, OpCompressed):
        raise ProtocolError("an OP_COMPRESSED cannot be compressed again", side="local")
    if isinstance(message, OpMsg) and message.flags & _CHECKSUM_PRESENT:
        raise ProtocolError(
            "cannot compress an OP_MSG with checksumPresent: its checksum covers the header"
            " of a frame that compress() does not build",
            side="local",
        )
    opts = _DEFAULT_OPTS if codec_options is None else codec_options
    data = encode_body(message, opts)
    return OpCompressed(message.op_code, len(data), cid, compress_body(data, cid, level))


def compress_body(data: bytes, compressor: Union[str, int] = "zlib", level: int = -1) -> bytes:
    """The bytes of an OP_COMPRESSED's compressedMessage for the message body ``data``
    (a frame without its 16-byte header): what ``compress`` wraps, for callers that have
    already encoded the frame. ``level`` as for ``compress``."""
    cid = _compressor_id(compressor)
    if cid == CompressorId.noop:
        return bytes(data)
    if cid == CompressorId.zlib:
        import zlib  # loaded on first use: most clients never compress

        return zlib.compress(data, level)
    if cid == CompressorId.snappy:
        return bytes(_import_optional("snappy").compress(data))
    zstandard = _import_optional("zstd")
    return bytes(zstandard.ZstdCompressor(level=3 if level == -1 else level).compress(data))


def _snappy_length(data: bytes) -> int:
    """The uncompressed length a raw snappy stream announces (its varint preamble)."""
    result = shift = 0
    for i, byte in enumerate(data[:5]):
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
        if i == 4:
            break
    return -1


def _inflate(compressor_id: int, data: bytes, size: int) -> bytes:
    """Decompress ``data`` into exactly ``size`` bytes, never producing more than size + 1."""
    if compressor_id == CompressorId.noop:
        out = data
    elif compressor_id == CompressorId.zlib:
        import zlib

        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, size + 1)
        except zlib.error as exc:
            raise ProtocolError(f"OP_COMPRESSED zlib data is corrupt: {exc}", offset=25) from exc
        if len(out) == size and (not inflater.eof or inflater.unused_data):
            raise ProtocolError(
                "OP_COMPRESSED zlib stream is truncated or has data after its end", offset=25
            )
    elif compressor_id == CompressorId.snappy:
        snappy = _import_optional("snappy")
        announced = _snappy_length(data)
        if announced != size:
            raise ProtocolError(
                f"OP_COMPRESSED snappy stream announces {announced} bytes, uncompressedSize"
                f" is {size}",
                offset=25,
            )
        try:
            out = snappy.uncompress(data)
        except Exception as exc:  # python-snappy's error classes vary between versions
            raise ProtocolError(f"OP_COMPRESSED snappy data is corrupt: {exc}", offset=25) from exc
    elif compressor_id == CompressorId.zstd:
        zstandard = _import_optional("zstd")
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(data)
            chunks: List[bytes] = []
            got = 0
            while got <= size:
                chunk = reader.read(size + 1 - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            out = b"".join(chunks)
        except zstandard.ZstdError as exc:
            raise ProtocolError(f"OP_COMPRESSED zstd data is corrupt: {exc}", offset=25) from exc
    else:
        raise ProtocolError(f"unknown OP_COMPRESSED compressorId {compressor_id}", offset=24)
    if len(out) != size:
        raise ProtocolError(
            f"OP_COMPRESSED data decompresses to {'more than ' if len(out) > size else ''}"
            f"{len(out)} bytes, uncompressedSize says {size}",
            offset=20,
        )
    return out


def decompress(
    op_compressed: OpCompressed,
    header: Optional[Header] = None,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    codec_options: Optional[CodecOptions[Any]] = None,
) -> Message:
    """The message an OP_COMPRESSED carries.

    Pass the OP_COMPRESSED frame's ``header`` to verify the checksum of an inner OP_MSG that
    has checksumPresent (the checksum covers a header rebuilt from the outer requestID and
    responseTo); without it that checksum is not checked. Offsets in errors about the inner
    message are offsets in that rebuilt, uncompressed frame.
    """
    original = op_compressed.original_opcode
    dec = _DECODERS.get(original)
    if dec is None or original == OP_COMPRESSED:
        raise ProtocolError(
            f"OP_COMPRESSED originalOpcode {original} is not a compressible opCode", offset=16
        )
    size = op_compressed.uncompressed_size
    if size + 16 > max_message_size:
        raise ProtocolError(
            f"OP_COMPRESSED uncompressedSize {size} exceeds the maximum message size"
            f" {max_message_size} (16-byte header included)",
            offset=20,
        )
    data = _inflate(op_compressed.compressor_id, op_compressed.compressed_message, size)
    inner = None
    if header is not None:
        inner = Header(size + 16, header.request_id, header.response_to, original)
    opts = _DEFAULT_OPTS if codec_options is None else codec_options
    return dec(data, 0, size, inner, opts)


__all__ = [
    "compress",
    "compress_body",
    "decompress",
]
