"""MessageReader: a byte stream fed in any chunking, cut into messages."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple, Union

from bson.codec_options import CodecOptions

from wireclient.errors import ProtocolError
from wireclient.protocol._common import _DEFAULT_OPTS, DEFAULT_MAX_MESSAGE_SIZE
from wireclient.protocol.decoding import _DECODERS, _unknown_opcode, unpack_header
from wireclient.protocol.messages import Header, Message


class MessageReader:
    """Cuts a byte stream into messages, fed in any chunking.

    Theory of operation: ``feed()`` appends to one buffer; once 16 bytes of a frame are in,
    its header is checked at once (messageLength between 16 and ``max_message_size``), so a
    hostile length is refused before any of its body is waited for. ``next_message()``
    returns ``(header, message)`` when a whole frame is buffered, else ``None`` ("need more
    data"); iterating yields every message available now. The buffer only ever holds bytes
    the caller fed: nothing is allocated from a length read off the wire.

    After a ``ProtocolError`` the stream cannot be resynchronised: the reader stays failed
    and every later call raises a ``ProtocolError`` again.
    """

    __slots__ = ("max_message_size", "_opts", "_buf", "_header", "_error")

    def __init__(
        self,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        codec_options: Optional[CodecOptions[Any]] = None,
    ) -> None:
        if max_message_size < 16:
            raise ValueError(f"max_message_size must be at least 16, not {max_message_size}")
        self.max_message_size = max_message_size
        self._opts = _DEFAULT_OPTS if codec_options is None else codec_options
        self._buf = bytearray()
        self._header: Optional[Header] = None
        self._error: Optional[ProtocolError] = None

    @property
    def buffered(self) -> int:
        """How many bytes are buffered (0 means the stream is at a frame boundary)."""
        return len(self._buf)

    @property
    def bytes_needed(self) -> int:
        """How many more bytes complete the next frame (0: a whole frame is buffered)."""
        have = len(self._buf)
        if self._header is None:
            return max(16 - have, 0)
        return max(self._header.message_length - have, 0)

    def _failed(self) -> ProtocolError:
        assert self._error is not None
        error = ProtocolError(f"the stream broke the protocol earlier: {self._error}")
        error.offset = self._error.offset
        return error

    def _read_header(self) -> Header:
        try:
            header = unpack_header(self._buf, self.max_message_size)
        except ProtocolError as exc:
            self._error = exc
            raise
        self._header = header
        return header

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Add bytes received from the peer."""
        if self._error is not None:
            raise self._failed()
        self._buf += data
        if self._header is None and len(self._buf) >= 16:
            self._read_header()

    def next_message(self) -> Optional[Tuple[Header, Message]]:
        """The next whole message, or None when more data is needed."""
        if self._error is not None:
            raise self._failed()
        buf = self._buf
        header = self._header
        if header is None:
            if len(buf) < 16:
                return None
            header = self._read_header()
        length = header.message_length
        if len(buf) < length:
            return None
        dec = _DECODERS.get(header.op_code)
        try:
            if dec is None:
                raise _unknown_opcode(header.op_code)
            message = dec(buf, 16, length, header, self._opts)
        except ProtocolError as exc:
            self._error = exc
            raise
        del buf[:length]
        self._header = None
        if len(buf) >= 16:
            try:  # check the next header now; its error is raised by the next call
                self._read_header()
            except ProtocolError:
                pass
        return header, message

    def __iter__(self) -> Iterator[Tuple[Header, Message]]:
        while True:
            item = self.next_message()
            if item is None:
                return
            yield item


__all__ = [
    "MessageReader",
]
