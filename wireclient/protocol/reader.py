"""MessageReader: a byte stream fed in any chunking, cut into messages."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple, Union

from bson.codec_options import CodecOptions

from wireclient.errors import ProtocolError
from wireclient.protocol._common import (
    _DEFAULT_OPTS,
    _MSG_SLOW_FLAGS,
    DEFAULT_MAX_MESSAGE_SIZE,
    OP_COMPRESSED,
    OP_MSG,
    _bson_to_dict,
    _unpack_header,
    _unpack_msg_first,
)
from wireclient.protocol.decoding import _DECODERS, _check_length, _unknown_opcode
from wireclient.protocol.messages import (
    Header,
    Message,
    OpMsg,
    _object_new,
    _set_msg_body,
    _set_msg_flags,
    _set_msg_seqs,
    _tuple_new,
)

#: The buffer's size between frames: room for a small reply in one ``recv_into``.
INITIAL_BUFFER_SIZE = 64 * 1024
#: The most the buffer grows by at once, so that it stays close to what has arrived.
MAX_GROWTH = 4 * 1024 * 1024
#: A buffer grown past this for a large frame is given back once the frame is decoded.
_KEEP_AT_MOST = 1024 * 1024

_ZEROS_SIZE = 1024 * 1024
_zeros: Optional[memoryview] = None


def _zero_bytes(n: int) -> memoryview:
    """``n`` (<= 1 MiB) zero bytes to grow a bytearray with, without a temporary object per
    growth. The one ``bytes`` behind them is calloc'ed and only ever read, so it costs
    address space, not memory."""
    global _zeros
    if _zeros is None:
        _zeros = memoryview(bytes(_ZEROS_SIZE))
    return _zeros[:n]


class MessageReader:
    """Cuts a byte stream into messages, fed in any chunking.

    Theory of operation: the reader owns one ``bytearray``; the unread bytes are
    ``_buf[_pos:_end]`` and the room after ``_end`` is free. Bytes come in either way:

    * ``feed(data)`` copies bytes the caller already has into the buffer;
    * ``get_buffer()`` / ``buffer_updated(n)`` (the shape of ``asyncio.BufferedProtocol``)
      let a caller ``recv_into`` the buffer itself, so received bytes are never copied.

    Once 16 bytes of a frame are in, its header is checked at once (messageLength between
    16 and ``max_message_size``), so a hostile length is refused before any of its body is
    waited for; an unknown opCode is refused by the next ``next_message()``, without
    waiting for the body either. Memory follows what arrives, not what a header claims:
    ``get_buffer`` grows the buffer by at most what is already buffered (and at most
    ``MAX_GROWTH``) beyond ``INITIAL_BUFFER_SIZE``, never past the end of the frame, so a
    header claiming a gigabyte costs nothing until the bytes come. ``next_message()``
    returns ``(header, message)`` when a whole frame is buffered, else ``None`` ("need more
    data"); iterating yields every message available now. The usual reply (an OP_MSG with
    one kind-0 section) is decoded from a memoryview of the buffer, not from a copy; other
    opcodes go through the general decoders. A buffer grown for a large frame is dropped
    once that frame is decoded. With ``inflate`` set (a client that offered compression),
    an OP_COMPRESSED frame comes out as the message it carries (``decompress``, whichever
    compressor its header names), the header still the outer frame's; otherwise as an
    ``OpCompressed``. With ``verify_checksums`` unset (a mock server that records a bad
    checksum instead of refusing it), an OP_MSG's CRC-32C is stripped but not compared;
    ``checksum_ok(frame)`` judges it on the side.

    After a ``ProtocolError`` the stream cannot be resynchronised: the reader stays failed
    and every later call raises a ``ProtocolError`` again.
    """

    __slots__ = (
        "max_message_size",
        "inflate",
        "verify_checksums",
        "_opts",
        "_buf",
        "_view",
        "_pos",
        "_end",
        "_header",
        "_error",
    )

    def __init__(
        self,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        codec_options: Optional[CodecOptions[Any]] = None,
        verify_checksums: bool = True,
    ) -> None:
        if max_message_size < 16:
            raise ValueError(f"max_message_size must be at least 16, not {max_message_size}")
        self.max_message_size = max_message_size
        self.inflate = False  # OP_COMPRESSED frames come out decompressed when True
        self.verify_checksums = verify_checksums  # False: checksums stripped, not compared
        self._opts = _DEFAULT_OPTS if codec_options is None else codec_options
        self._buf = bytearray()  # allocated on first use: a reader that never reads costs nothing
        self._view = memoryview(self._buf)
        self._pos = 0
        self._end = 0
        self._header: Optional[Header] = None
        self._error: Optional[ProtocolError] = None

    @property
    def buffered(self) -> int:
        """How many bytes are buffered (0 means the stream is at a frame boundary)."""
        return self._end - self._pos

    @property
    def bytes_needed(self) -> int:
        """How many more bytes complete the next frame (0: a whole frame is buffered)."""
        have = self._end - self._pos
        if self._header is None:
            return max(16 - have, 0)
        return max(self._header.message_length - have, 0)

    @property
    def header(self) -> Optional[Header]:
        """The header of the frame being read, once its 16 bytes are in (else None)."""
        return self._header

    def peek(self, n: int = 16) -> bytes:
        """A copy of (at most) the first ``n`` buffered bytes, for error messages."""
        return bytes(self._view[self._pos : min(self._end, self._pos + max(n, 0))])

    def foreign_start(self) -> str:
        """Why the buffered bytes, the start of a frame that never completed, cannot begin a
        MongoDB message ('' when they can): for telling a foreign peer from a slow one."""
        start = self.peek(4)
        if len(start) >= 3 and 0x14 <= start[0] <= 0x17 and start[1] == 3 and start[2] <= 4:
            return "a TLS record"
        if len(start) == 4:
            length = int.from_bytes(start, "little", signed=True)
            if not 16 <= length <= self.max_message_size:
                return f"messageLength {length} out of range"
        return ""

    def _failed(self) -> ProtocolError:
        assert self._error is not None
        error = ProtocolError(f"the stream broke the protocol earlier: {self._error}")
        error.offset = self._error.offset
        return error

    def _read_header(self) -> Header:
        length, request_id, response_to, op_code = _unpack_header(self._buf, self._pos)
        if not 16 <= length <= self.max_message_size:
            try:
                _check_length(length, self.max_message_size)
            except ProtocolError as exc:
                self._error = exc
                raise
        header: Header = _tuple_new(Header, (length, request_id, response_to, op_code))
        self._header = header
        return header

    # -- buffer management --------------------------------------------------------------

    def _reshape(self, capacity: int) -> None:
        """Move the unread bytes to the front and make the buffer ``capacity`` long."""
        pos, end = self._pos, self._end
        have = end - pos
        assert capacity >= have
        buf, view = self._buf, self._view
        if pos:
            view[:have] = view[pos:end]  # memoryview assignment: a memmove, no temporary
            self._pos, self._end = 0, have
        grow = capacity - len(buf)
        if grow == 0:
            return
        view.release()
        try:
            if grow > 0:
                while grow > 0:
                    step = min(grow, _ZEROS_SIZE)
                    buf += _zero_bytes(step)
                    grow -= step
            else:
                del buf[capacity:]
        except BufferError:  # a caller kept a view of the old buffer: leave it to them
            new = bytearray(capacity)
            new[:have] = buf[:have]
            self._buf = buf = new
        self._view = memoryview(buf)

    def get_buffer(self) -> memoryview:
        """Writable free space at the end of the buffer for ``sock.recv_into``; then call
        ``buffer_updated(n)`` with the number of bytes written. Drop the view before the
        next call (a view kept alive makes the next growth copy the buffer)."""
        if self._end == 0 and len(self._buf) >= INITIAL_BUFFER_SIZE and self._error is None:
            return self._view  # at a frame boundary, all of it is free: the usual case
        if self._error is not None:
            raise self._failed()
        have = self._end - self._pos
        header = self._header
        need = (16 if header is None else header.message_length) - have
        # The room to offer: the rest of the frame, but at most what is already buffered
        # (INITIAL_BUFFER_SIZE at least, MAX_GROWTH at most), so memory follows the bytes.
        want = max(min(need, max(have, INITIAL_BUFFER_SIZE), MAX_GROWTH), 1)
        capacity = len(self._buf)
        if capacity - self._end < want or capacity < INITIAL_BUFFER_SIZE:
            if capacity - have >= want and capacity >= INITIAL_BUFFER_SIZE:
                self._reshape(capacity)  # moving the unread bytes to the front makes room
            else:
                self._reshape(max(have + want, INITIAL_BUFFER_SIZE))
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` bytes were written at the start of the last ``get_buffer()`` view."""
        if not 0 <= nbytes <= len(self._buf) - self._end:
            raise ValueError(f"buffer_updated({nbytes}): more than the free space")
        self._end += nbytes
        if self._header is None and self._end - self._pos >= 16:
            self._read_header()

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Add bytes received from the peer (copied into the buffer)."""
        if self._error is not None:
            raise self._failed()
        n = len(data) if data.__class__ is bytes or data.__class__ is bytearray else -1
        if n < 0:
            data = memoryview(data).cast("B")
            n = len(data)
        if not n:
            return
        end = self._end
        if len(self._buf) - end < n:
            have = end - self._pos
            self._reshape(max(have + n, INITIAL_BUFFER_SIZE))
            end = self._end
        self._view[end : end + n] = data
        self._end = end + n
        if self._header is None and self._end - self._pos >= 16:
            self._read_header()

    # -- messages -----------------------------------------------------------------------

    def peek_frame(self) -> Optional[bytes]:
        """The bytes of the next frame if all of it is buffered (what ``next_message`` would
        decode next), else None; nothing is consumed. For tracers and frame events."""
        header = self._header
        if self._error is not None or header is None:
            return None
        length = header.message_length
        if self._end - self._pos < length:
            return None
        return bytes(self._view[self._pos : self._pos + length])

    def next_message(self) -> Optional[Tuple[Header, Message]]:
        """The next whole message, or None when more data is needed."""
        if self._error is not None:
            raise self._failed()
        pos = self._pos
        header = self._header
        if header is None:
            if self._end - pos < 16:
                return None
            header = self._read_header()
        length = header.message_length
        op_code = header.op_code
        if self._end - pos < length:
            if op_code not in _DECODERS:  # no need to wait for the body to refuse it
                self._error = _unknown_opcode(op_code)
                raise self._error
            return None
        buf = self._buf
        stop = pos + length
        message: Optional[Message] = None
        try:
            if op_code == OP_MSG and length >= 26:
                # The usual reply, one kind-0 section filling the message: decoded in place.
                flags, kind, doc_length = _unpack_msg_first(buf, pos + 16)
                if kind == 0 and doc_length == length - 21 and not flags & _MSG_SLOW_FLAGS:
                    try:
                        body = _bson_to_dict(self._view[pos + 21 : stop], self._opts)
                    except Exception:  # the general decoder reports it with its offset
                        pass
                    else:
                        msg: OpMsg = _object_new(OpMsg)
                        _set_msg_body(msg, body)
                        _set_msg_seqs(msg, ())
                        _set_msg_flags(msg, flags)
                        message = msg
            if message is None:
                dec = _DECODERS.get(op_code)
                if dec is None:
                    raise _unknown_opcode(op_code)
                # The header is what a checksum is compared against; none: not compared.
                checked = header if self.verify_checksums else None
                message = dec(buf, pos + 16, stop, checked, self._opts)
                if op_code == OP_COMPRESSED and self.inflate:
                    from wireclient.protocol.compression import decompress

                    message = decompress(
                        message,  # type: ignore[arg-type]
                        checked,
                        max_message_size=self.max_message_size,
                        codec_options=self._opts,
                    )
        except ProtocolError as exc:
            self._error = exc
            raise
        self._header = None
        if stop == self._end:
            self._pos = self._end = 0
        else:
            self._pos = stop
        if len(buf) > _KEEP_AT_MOST and self._end - self._pos <= INITIAL_BUFFER_SIZE:
            self._reshape(INITIAL_BUFFER_SIZE)  # give back what a large frame took
        if self._end - self._pos >= 16:
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
    "INITIAL_BUFFER_SIZE",
    "MAX_GROWTH",
    "MessageReader",
]
