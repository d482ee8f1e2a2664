"""Whole frames (or a header and a body) to message objects; trusts nothing."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from bson.codec_options import CodecOptions

from wireclient.errors import ProtocolError
from wireclient.protocol._common import (
    _CHECKSUM_PRESENT,
    _DEFAULT_OPTS,
    _MSG_SLOW_FLAGS,
    _MSG_UNKNOWN_REQUIRED,
    DEFAULT_MAX_MESSAGE_SIZE,
    OP_COMPRESSED,
    OP_DELETE,
    OP_GET_MORE,
    OP_INSERT,
    OP_KILL_CURSORS,
    OP_MSG,
    OP_QUERY,
    OP_REPLY,
    OP_UPDATE,
    _bson_to_dict,
    _Buf,
    _decode_all,
    _iter_int64,
    _pack_header,
    _unpack_compressed_head,
    _unpack_header,
    _unpack_ii,
    _unpack_int,
    _unpack_iq,
    _unpack_msg_first,
    _unpack_msg_prefix,
    _unpack_reply_head,
    _unpack_uint,
)
from wireclient.protocol.messages import (
    DocumentSequence,
    Header,
    Message,
    OpCompressed,
    OpDelete,
    OpGetMore,
    OpInsert,
    OpKillCursors,
    OpMsg,
    OpQuery,
    OpReply,
    OpUpdate,
    _object_new,
    _set_msg_body,
    _set_msg_flags,
    _set_msg_seqs,
    _tuple_new,
)

#
# Every decoder takes (buf, start, end, header, opts): the message body is buf[start:end]
# (buf may hold more, e.g. the whole frame or the reader's buffer; nothing outside
# [start, end) is ever read). Offsets in errors are offsets in the frame, so a body that
# starts at `start` in `buf` is reported with base = start - 16.


def _err(message: str, pos: int, base: int) -> ProtocolError:
    return ProtocolError(message, offset=pos - base)


def _need(pos: int, n: int, end: int, base: int, what: str) -> None:
    if end - pos < n:
        raise _err(
            f"truncated {what}: needs {n} bytes, only {max(end - pos, 0)} left in the message",
            pos,
            base,
        )


def _read_cstring(buf: _Buf, pos: int, end: int, base: int, what: str) -> Tuple[str, int]:
    nul = buf.find(b"\x00", pos, end)
    if nul < 0:
        raise _err(f"unterminated {what}: no NUL byte before the end of its space", pos, base)
    try:
        return buf[pos:nul].decode("utf-8"), nul + 1
    except UnicodeDecodeError as exc:
        raise _err(f"{what} is not valid UTF-8 ({exc.reason})", pos + exc.start, base) from None


def _decode_doc(data: _Buf, pos: int, base: int, what: str, opts: CodecOptions[Any]) -> Any:
    try:
        return _bson_to_dict(data, opts)
    # bson raises InvalidBSON for most defects, but hostile bytes can also surface as
    # ValueError, OverflowError, UnicodeDecodeError or RecursionError (deep nesting) from
    # the types it builds. All of them mean "not a valid document": turn them into one error.
    except Exception as exc:
        raise _err(f"invalid BSON in {what}: {exc}", pos, base) from exc


def _doc_length(buf: _Buf, pos: int, end: int, base: int, what: str) -> int:
    _need(pos, 4, end, base, f"{what} length")
    (n,) = _unpack_int(buf, pos)
    if n < 5:
        raise _err(f"{what} length {n} is less than the minimum of 5", pos, base)
    if n > end - pos:
        raise _err(
            f"{what} length {n} runs past the end of its space ({end - pos} bytes left)", pos, base
        )
    return n  # type: ignore[no-any-return]


def _read_doc(
    buf: _Buf, pos: int, end: int, base: int, what: str, opts: CodecOptions[Any]
) -> Tuple[Any, int]:
    n = _doc_length(buf, pos, end, base, what)
    return _decode_doc(buf[pos : pos + n], pos, base, what, opts), pos + n


def _read_docs(
    buf: _Buf, pos: int, end: int, base: int, what: str, opts: CodecOptions[Any]
) -> Tuple[Any, ...]:
    """Documents filling buf[pos:end] exactly."""
    p = pos
    while p < end:
        p += _doc_length(buf, p, end, base, what)
    if p == pos:
        return ()
    try:
        return tuple(_decode_all(buf[pos:end], opts))
    except Exception:  # find the culprit to report its offset (see _decode_doc)
        p = pos
        while p < end:
            _, p = _read_doc(buf, p, end, base, what, opts)
        raise _err(f"invalid BSON in {what}", pos, base) from None


def _check_msg_checksum(
    buf: _Buf, start: int, stop: int, header: Optional[Header], base: int
) -> None:
    if header is None:  # decompress() without the outer header: nothing to check against
        return
    from wireclient.protocol._crc32c import crc32c  # loaded by the first checksum

    (expected,) = _unpack_uint(buf, stop)
    head = _pack_header(
        header.message_length, header.request_id, header.response_to, header.op_code
    )
    actual = crc32c(buf[start:stop], crc32c(head))
    if actual != expected:
        raise _err(
            f"OP_MSG checksum mismatch: the message says 0x{expected:08x},"
            f" its bytes give 0x{actual:08x}",
            stop,
            base,
        )


def _dec_msg(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpMsg:
    base = start - 16
    _need(start, 5, end, base, "OP_MSG (flagBits and a section)")
    (flags,) = _unpack_uint(buf, start)
    if flags & _MSG_UNKNOWN_REQUIRED:
        raise _err(
            f"OP_MSG flagBits 0x{flags:08x} set unknown required bits"
            f" 0x{flags & _MSG_UNKNOWN_REQUIRED:04x}",
            start,
            base,
        )
    stop = end
    if flags & _CHECKSUM_PRESENT:
        stop = end - 4
        _need(start + 4, 5, stop, base, "OP_MSG (a section and the checksumPresent checksum)")
        _check_msg_checksum(buf, start, stop, header, base)
    pos = start + 4
    # Fast path, the usual reply: one kind-0 section filling the message.
    if buf[pos] == 0 and stop - pos >= 5 and _unpack_int(buf, pos + 1)[0] == stop - pos - 1:
        body = _decode_doc(buf[pos + 1 : stop], pos + 1, base, "the OP_MSG body", opts)
        msg: OpMsg = _object_new(OpMsg)
        _set_msg_body(msg, body)
        _set_msg_seqs(msg, ())
        _set_msg_flags(msg, flags)
        return msg
    body = None
    seqs: List[DocumentSequence] = []
    while pos < stop:
        kind = buf[pos]
        if kind == 0:
            if body is not None:
                raise _err("a second kind-0 (body) section: OP_MSG has exactly one", pos, base)
            body, pos = _read_doc(buf, pos + 1, stop, base, "the OP_MSG body", opts)
        elif kind == 1:
            p = pos + 1
            _need(p, 4, stop, base, "kind-1 section size")
            (size,) = _unpack_int(buf, p)
            if size < 5:
                raise _err(f"kind-1 section size {size} is less than the minimum of 5", p, base)
            if size > stop - p:
                raise _err(
                    f"kind-1 section size {size} runs past the end of the sections"
                    f" ({stop - p} bytes left)",
                    p,
                    base,
                )
            sec_end = p + size
            ident, q = _read_cstring(buf, p + 4, sec_end, base, "document sequence identifier")
            docs = _read_docs(buf, q, sec_end, base, f"a document of sequence {ident!r}", opts)
            seqs.append(DocumentSequence._build(ident, docs))
            pos = sec_end
        else:
            raise _err(f"unknown OP_MSG section kind {kind} (only 0 and 1 exist)", pos, base)
    if body is None:
        raise _err("OP_MSG has no kind-0 (body) section", start + 4, base)
    return OpMsg._build(body, tuple(seqs), flags)  # type: ignore[no-any-return]


def _check_end(pos: int, end: int, base: int, what: str) -> None:
    if pos != end:
        raise _err(f"{end - pos} trailing bytes after the {what}", pos, base)


def _dec_query(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpQuery:
    base = start - 16
    _need(start, 4, end, base, "OP_QUERY flags")
    (flags,) = _unpack_uint(buf, start)
    ns, pos = _read_cstring(buf, start + 4, end, base, "OP_QUERY fullCollectionName")
    _need(pos, 8, end, base, "OP_QUERY numberToSkip and numberToReturn")
    skip, limit = _unpack_ii(buf, pos)
    query, pos = _read_doc(buf, pos + 8, end, base, "the OP_QUERY query", opts)
    fields = None
    if pos < end:
        fields, pos = _read_doc(buf, pos, end, base, "the OP_QUERY returnFieldsSelector", opts)
    _check_end(pos, end, base, "OP_QUERY returnFieldsSelector")
    return OpQuery._build(ns, query, flags, skip, limit, fields)  # type: ignore[no-any-return]


def _dec_reply(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpReply:
    base = start - 16
    _need(start, 20, end, base, "OP_REPLY fields")
    flags, cursor_id, starting_from, number_returned = _unpack_reply_head(buf, start)
    docs = _read_docs(buf, start + 20, end, base, "an OP_REPLY document", opts)
    if number_returned != len(docs):
        raise _err(
            f"OP_REPLY numberReturned is {number_returned} but the message holds"
            f" {len(docs)} documents",
            start + 16,
            base,
        )
    return OpReply._build(docs, flags, cursor_id, starting_from)  # type: ignore[no-any-return]


def _dec_get_more(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpGetMore:
    base = start - 16
    _need(start, 4, end, base, "OP_GET_MORE ZERO field")
    ns, pos = _read_cstring(buf, start + 4, end, base, "OP_GET_MORE fullCollectionName")
    _need(pos, 12, end, base, "OP_GET_MORE numberToReturn and cursorID")
    number_to_return, cursor_id = _unpack_iq(buf, pos)
    _check_end(pos + 12, end, base, "OP_GET_MORE cursorID")
    return OpGetMore._build(ns, cursor_id, number_to_return)  # type: ignore[no-any-return]


def _dec_kill_cursors(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpKillCursors:
    base = start - 16
    _need(start, 8, end, base, "OP_KILL_CURSORS ZERO and numberOfCursorIDs")
    (count,) = _unpack_int(buf, start + 4)
    pos = start + 8
    if count < 0 or count * 8 != end - pos:
        raise _err(
            f"OP_KILL_CURSORS numberOfCursorIDs is {count} but {end - pos} bytes of cursor ids"
            " follow (8 per id)",
            start + 4,
            base,
        )
    ids = tuple(cursor_id for (cursor_id,) in _iter_int64(buf[pos:end]))
    return OpKillCursors._build(ids)  # type: ignore[no-any-return]


def _dec_insert(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpInsert:
    base = start - 16
    _need(start, 4, end, base, "OP_INSERT flags")
    (flags,) = _unpack_uint(buf, start)
    ns, pos = _read_cstring(buf, start + 4, end, base, "OP_INSERT fullCollectionName")
    docs = _read_docs(buf, pos, end, base, "an OP_INSERT document", opts)
    return OpInsert._build(ns, docs, flags)  # type: ignore[no-any-return]


def _dec_update(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpUpdate:
    base = start - 16
    _need(start, 4, end, base, "OP_UPDATE ZERO field")
    ns, pos = _read_cstring(buf, start + 4, end, base, "OP_UPDATE fullCollectionName")
    _need(pos, 4, end, base, "OP_UPDATE flags")
    (flags,) = _unpack_uint(buf, pos)
    selector, pos = _read_doc(buf, pos + 4, end, base, "the OP_UPDATE selector", opts)
    update, pos = _read_doc(buf, pos, end, base, "the OP_UPDATE update", opts)
    _check_end(pos, end, base, "OP_UPDATE update document")
    return OpUpdate._build(ns, selector, update, flags)  # type: ignore[no-any-return]


def _dec_delete(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpDelete:
    base = start - 16
    _need(start, 4, end, base, "OP_DELETE ZERO field")
    ns, pos = _read_cstring(buf, start + 4, end, base, "OP_DELETE fullCollectionName")
    _need(pos, 4, end, base, "OP_DELETE flags")
    (flags,) = _unpack_uint(buf, pos)
    selector, pos = _read_doc(buf, pos + 4, end, base, "the OP_DELETE selector", opts)
    _check_end(pos, end, base, "OP_DELETE selector document")
    return OpDelete._build(ns, selector, flags)  # type: ignore[no-any-return]


def _dec_compressed(
    buf: _Buf, start: int, end: int, header: Optional[Header], opts: CodecOptions[Any]
) -> OpCompressed:
    base = start - 16
    _need(start, 9, end, base, "OP_COMPRESSED originalOpcode, uncompressedSize and compressorId")
    original, size, compressor_id = _unpack_compressed_head(buf, start)
    if size < 0:
        raise _err(f"OP_COMPRESSED uncompressedSize {size} is negative", start + 4, base)
    data = bytes(buf[start + 9 : end])
    return OpCompressed._build(original, size, compressor_id, data)  # type: ignore[no-any-return]


_Decoder = Callable[[_Buf, int, int, Optional[Header], CodecOptions[Any]], Message]
_DECODERS: Dict[int, _Decoder] = {
    OP_MSG: _dec_msg,
    OP_QUERY: _dec_query,
    OP_REPLY: _dec_reply,
    OP_GET_MORE: _dec_get_more,
    OP_KILL_CURSORS: _dec_kill_cursors,
    OP_INSERT: _dec_insert,
    OP_UPDATE: _dec_update,
    OP_DELETE: _dec_delete,
    OP_COMPRESSED: _dec_compressed,
}


def _unknown_opcode(op_code: int) -> ProtocolError:
    return ProtocolError(f"unknown opCode {op_code}", offset=12)


def _check_length(length: int, max_message_size: int) -> None:
    if length < 16:
        raise ProtocolError(f"messageLength {length} is less than the 16-byte header", offset=0)
    if length > max_message_size:
        raise ProtocolError(
            f"messageLength {length} exceeds the maximum message size {max_message_size}",
            offset=0,
        )


def unpack_header(
    data: Union[bytes, bytearray, memoryview], max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Header:
    """The header in the first 16 bytes of ``data``; checks 16 <= messageLength <= max."""
    if len(data) < 16:
        raise ProtocolError(f"truncated header: {len(data)} of 16 bytes", offset=len(data))
    length, request_id, response_to, op_code = _unpack_header(data, 0)
    if not 16 <= length <= max_message_size:
        _check_length(length, max_message_size)
    return _tuple_new(Header, (length, request_id, response_to, op_code))


def decode_body(
    header: Header,
    body: Union[bytes, bytearray, memoryview],
    *,
    codec_options: Optional[CodecOptions[Any]] = None,
) -> Message:
    """The message whose ``header`` was read, from the frame's bytes after the header."""
    if body.__class__ is not bytes and body.__class__ is not bytearray:
        body = bytes(body)
    n = len(body)
    opts = _DEFAULT_OPTS if codec_options is None else codec_options
    if header.op_code == OP_MSG and n >= 10:
        # Fast path for the usual reply: one kind-0 section filling the body.
        flags, kind, doc_length = _unpack_msg_first(body, 0)
        if (
            kind == 0
            and doc_length == n - 5
            and n == header.message_length - 16
            and not flags & _MSG_SLOW_FLAGS
        ):
            try:
                doc = _bson_to_dict(body[5:], opts)
            except Exception:  # report it as the general path does (see _decode_doc)
                doc = _decode_doc(body[5:], 5, -16, "the OP_MSG body", opts)
            msg: OpMsg = _object_new(OpMsg)
            _set_msg_body(msg, doc)
            _set_msg_seqs(msg, ())
            _set_msg_flags(msg, flags)
            return msg
    expected = header.message_length - 16
    if n != expected:
        raise ProtocolError(
            f"the body is {n} bytes but messageLength {header.message_length} calls for {expected}",
            offset=16 + min(n, max(expected, 0)),
        )
    dec = _DECODERS.get(header.op_code)
    if dec is None:
        raise _unknown_opcode(header.op_code)
    return dec(body, 0, n, header, opts)


def decode(
    frame: Union[bytes, bytearray, memoryview],
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    *,
    codec_options: Optional[CodecOptions[Any]] = None,
) -> Tuple[Header, Message]:
    """``(header, message)`` from exactly one whole frame (no more, no less)."""
    if frame.__class__ is not bytes and frame.__class__ is not bytearray:
        frame = bytes(frame)
    n = len(frame)
    opts = _DEFAULT_OPTS if codec_options is None else codec_options
    if 26 <= n <= max_message_size:
        # Fast path for the usual reply: an OP_MSG whose one kind-0 section fills the frame.
        length, request_id, response_to, op_code, flags, kind, doc_length = _unpack_msg_prefix(
            frame, 0
        )
        if (
            op_code == OP_MSG
            and length == n
            and kind == 0
            and doc_length == n - 21
            and not flags & _MSG_SLOW_FLAGS
        ):
            try:
                doc = _bson_to_dict(frame[21:], opts)
            except Exception:  # report it as the general path does (see _decode_doc)
                doc = _decode_doc(frame[21:], 21, 0, "the OP_MSG body", opts)
            msg: OpMsg = _object_new(OpMsg)
            _set_msg_body(msg, doc)
            _set_msg_seqs(msg, ())
            _set_msg_flags(msg, flags)
            return _tuple_new(Header, (length, request_id, response_to, op_code)), msg
    if n < 16:
        raise ProtocolError(f"truncated header: {n} of 16 bytes", offset=n)
    length, request_id, response_to, op_code = _unpack_header(frame, 0)
    if not 16 <= length <= max_message_size:
        _check_length(length, max_message_size)
    if n != length:
        if n < length:
            raise ProtocolError(
                f"truncated frame: messageLength is {length}, got {n} bytes", offset=n
            )
        raise ProtocolError(
            f"{n - length} trailing bytes after the {length}-byte frame", offset=length
        )
    dec = _DECODERS.get(op_code)
    if dec is None:
        raise _unknown_opcode(op_code)
    header = _tuple_new(Header, (length, request_id, response_to, op_code))
    return header, dec(frame, 16, length, header, opts)


__all__ = [
    "decode",
    "decode_body",
    "unpack_header",
]
