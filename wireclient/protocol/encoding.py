"""Message objects to whole frames."""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, NoReturn, Optional

import bson
from bson.codec_options import CodecOptions

from wireclient.errors import InvalidDocument, ProtocolError
from wireclient.protocol._common import (
    _CHECKSUM_PRESENT,
    _DEFAULT_OPTS,
    _KIND0,
    _ZERO32,
    OP_MSG,
    _dict_to_bson,
    _doc_bytes,
    _pack_compressed_head,
    _pack_header,
    _pack_ii,
    _pack_int64,
    _pack_iq,
    _pack_kind1_size,
    _pack_msg_head,
    _pack_msg_head_flags,
    _pack_reply_head,
    _pack_uint,
)
from wireclient.protocol.messages import (
    DocumentSequence,
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
)


def _sequence_bytes(seq: DocumentSequence, opts: CodecOptions[Any]) -> bytes:
    ident = seq.identifier.encode("utf-8") + b"\x00"
    try:  # the write path's batches are all encoded already: one join, in C
        payload = b"".join(seq.documents)  # type: ignore[arg-type]
    except TypeError:  # some documents are mappings: encode those
        payload = b"".join([_doc_bytes(doc, opts) for doc in seq.documents])
    return b"".join([_pack_kind1_size(1, 4 + len(ident) + len(payload)), ident, payload])


def _body_msg(m: OpMsg, opts: CodecOptions[Any]) -> bytes:
    """flagBits and sections, without the header and without a checksum."""
    parts = [_pack_uint(m.flags), _KIND0, _doc_bytes(m.body, opts)]
    parts.extend(_sequence_bytes(seq, opts) for seq in m.sequences)
    return b"".join(parts)


def _frame_msg(m: OpMsg, request_id: int, response_to: int, opts: CodecOptions[Any]) -> bytes:
    flags = m.flags
    parts = [_KIND0, _doc_bytes(m.body, opts)]
    parts.extend(_sequence_bytes(seq, opts) for seq in m.sequences)
    sections = b"".join(parts)
    if flags & _CHECKSUM_PRESENT:
        frame = _pack_msg_head_flags(24 + len(sections), request_id, response_to, OP_MSG, flags)
        frame += sections
        from wireclient.protocol._crc32c import crc32c  # loaded by the first checksum

        return frame + _pack_uint(crc32c(frame))
    return (
        _pack_msg_head_flags(20 + len(sections), request_id, response_to, OP_MSG, flags) + sections
    )


def _body_query(m: OpQuery, opts: CodecOptions[Any]) -> bytes:
    parts = [
        _pack_uint(m.flags),
        m.full_collection_name.encode("utf-8"),
        b"\x00",
        _pack_ii(m.number_to_skip, m.number_to_return),
        _doc_bytes(m.query, opts),
    ]
    if m.return_fields_selector is not None:
        parts.append(_doc_bytes(m.return_fields_selector, opts))
    return b"".join(parts)


def _body_reply(m: OpReply, opts: CodecOptions[Any]) -> bytes:
    head = _pack_reply_head(m.response_flags, m.cursor_id, m.starting_from, len(m.documents))
    return b"".join([head, *[_doc_bytes(doc, opts) for doc in m.documents]])


def _body_get_more(m: OpGetMore, opts: CodecOptions[Any]) -> bytes:
    ns = m.full_collection_name.encode("utf-8")
    return b"".join([_ZERO32, ns, b"\x00", _pack_iq(m.number_to_return, m.cursor_id)])


def _body_kill_cursors(m: OpKillCursors, opts: CodecOptions[Any]) -> bytes:
    ids = m.cursor_ids
    return b"".join([_pack_ii(0, len(ids)), *map(_pack_int64, ids)])


def _body_insert(m: OpInsert, opts: CodecOptions[Any]) -> bytes:
    ns = m.full_collection_name.encode("utf-8")
    docs = [_doc_bytes(doc, opts) for doc in m.documents]
    return b"".join([_pack_uint(m.flags), ns, b"\x00", *docs])


def _body_update(m: OpUpdate, opts: CodecOptions[Any]) -> bytes:
    ns = m.full_collection_name.encode("utf-8")
    selector, update = _doc_bytes(m.selector, opts), _doc_bytes(m.update, opts)
    return b"".join([_ZERO32, ns, b"\x00", _pack_uint(m.flags), selector, update])


def _body_delete(m: OpDelete, opts: CodecOptions[Any]) -> bytes:
    ns = m.full_collection_name.encode("utf-8")
    return b"".join([_ZERO32, ns, b"\x00", _pack_uint(m.flags), _doc_bytes(m.selector, opts)])


def _body_compressed(m: OpCompressed, opts: CodecOptions[Any]) -> bytes:
    head = _pack_compressed_head(m.original_opcode, m.uncompressed_size, m.compressor_id)
    return head + m.compressed_message


_BODY_ENCODERS: Dict[type, Callable[[Any, CodecOptions[Any]], bytes]] = {
    OpMsg: _body_msg,
    OpQuery: _body_query,
    OpReply: _body_reply,
    OpGetMore: _body_get_more,
    OpKillCursors: _body_kill_cursors,
    OpInsert: _body_insert,
    OpUpdate: _body_update,
    OpDelete: _body_delete,
    OpCompressed: _body_compressed,
}


class _NotAMessage(TypeError):
    pass


def _body_encoder(message: Any) -> Callable[[Any, CodecOptions[Any]], bytes]:
    for cls in type(message).__mro__:
        enc = _BODY_ENCODERS.get(cls)
        if enc is not None:
            return enc
    raise _NotAMessage(f"not a wire protocol message: {type(message).__name__}")


def encode(
    message: Message,
    request_id: int,
    response_to: int = 0,
    *,
    codec_options: Optional[CodecOptions[Any]] = None,
) -> bytes:
    """The whole frame (header included) for ``message``.

    Raises ``InvalidDocument`` for a document bson cannot encode and
    ``ProtocolError(side="local")`` for a header field out of the int32 range.
    """
    opts = _DEFAULT_OPTS if codec_options is None else codec_options
    try:
        if (
            message.__class__ is OpMsg
            and not message.sequences
            and not message.flags & _CHECKSUM_PRESENT
        ):
            # The per-operation path: one pack, one concatenation.
            body: Any = message.body
            doc = body if body.__class__ is bytes else _dict_to_bson(body, False, opts)
            flags = message.flags
            return _pack_msg_head(21 + len(doc), request_id, response_to, OP_MSG, flags, 0) + doc
        if isinstance(message, OpMsg):
            return _frame_msg(message, request_id, response_to, opts)
        enc = _BODY_ENCODERS.get(message.__class__) or _body_encoder(message)
        data = enc(message, opts)
        return _pack_header(16 + len(data), request_id, response_to, message.op_code) + data
    except struct.error as exc:
        raise ProtocolError(
            f"cannot encode {type(message).__name__}: a header or length field is out of range"
            f" ({exc}; request_id={request_id!r}, response_to={response_to!r})",
            side="local",
        ) from exc
    except _BSON_ERRORS as exc:
        _raise_encode_error(message, exc)


def encode_msg(
    request_id: int,
    body: Any,
    flags: int = 0,
    identifier: Optional[str] = None,
    documents: Any = (),
    *,
    codec_options: Optional[CodecOptions[Any]] = None,
) -> bytes:
    """The whole OP_MSG frame of ``body`` (a mapping, or encoded BSON written verbatim) and,
    when ``identifier`` is given, one kind-1 sequence of ``documents`` (a sequence of
    mappings or encoded BSON): the frame ``encode(OpMsg(body, [DocumentSequence(identifier,
    documents)], flags), request_id)`` gives, built from the parts with no message object
    (a client's operation path: one command, or one batch of a write whose documents are
    encoded already). Raises what ``encode`` raises."""
    opts = _DEFAULT_OPTS if codec_options is None else codec_options
    if (
        flags.__class__ is not int
        or flags & _CHECKSUM_PRESENT
        or not 0 <= flags <= 0xFFFFFFFF
        or (identifier is not None and not _plain_identifier(identifier))
    ):  # the message objects' checks, and the checksum: through ``encode``
        sequences = () if identifier is None else (DocumentSequence(identifier, documents),)
        return encode(OpMsg(body, sequences, flags), request_id, codec_options=opts)
    ident = b"" if identifier is None else identifier.encode("ascii") + b"\x00"
    try:
        doc: bytes = body if body.__class__ is bytes else _dict_to_bson(body, False, opts)
        if identifier is None:
            return _pack_msg_head(21 + len(doc), request_id, 0, OP_MSG, flags, 0) + doc
        try:  # the write path's batches are all encoded already: one join, in C
            payload = b"".join(documents)
        except TypeError:  # some documents are mappings: encode those
            payload = b"".join([_doc_bytes(d, opts) for d in documents])
        section = 4 + len(ident) + len(payload)
        head = _pack_msg_head(22 + len(doc) + section, request_id, 0, OP_MSG, flags, 0)
        return b"".join([head, doc, _pack_kind1_size(1, section), ident, payload])
    except struct.error as exc:
        raise ProtocolError(
            f"cannot encode OpMsg: a header or length field is out of range ({exc}; "
            f"request_id={request_id!r})",
            side="local",
        ) from exc
    except _BSON_ERRORS as exc:
        if isinstance(exc, (InvalidDocument, ProtocolError)):
            raise
        raise InvalidDocument(f"cannot encode a document of OpMsg: {exc}") from exc


def _plain_identifier(identifier: Any) -> bool:
    """An identifier ``encode_msg`` may write as it is: an ASCII str without NUL."""
    return identifier.__class__ is str and identifier.isascii() and "\x00" not in identifier


def with_encoded_body(
    message: OpMsg, *, codec_options: Optional[CodecOptions[Any]] = None
) -> OpMsg:
    """``message`` with its body as encoded BSON (written verbatim by ``encode``), for a
    command sent several times with other sequences: a write encodes its command once for
    all its batches. Raises what ``encode`` raises for a body bson cannot encode."""
    body: Any = message.body
    if body.__class__ is bytes:
        return message
    try:
        data = _dict_to_bson(body, False, _DEFAULT_OPTS if codec_options is None else codec_options)
    except _BSON_ERRORS as exc:
        _raise_encode_error(message, exc)
    encoded: OpMsg = OpMsg._build(data, message.sequences, message.flags)
    return encoded


def encode_body(message: Message, opts: CodecOptions[Any]) -> bytes:
    """``message``'s body, without header or checksum (what OP_COMPRESSED compresses)."""
    try:
        return _body_encoder(message)(message, opts)
    except _BSON_ERRORS as exc:
        _raise_encode_error(message, exc)


# What bson (and our own field checks) raise for a document that cannot be encoded.
_BSON_ERRORS = (bson.errors.BSONError, TypeError, ValueError, OverflowError)


def _raise_encode_error(message: Any, exc: Exception) -> NoReturn:
    """Our own errors as they are; anything bson raised as ``InvalidDocument``."""
    if isinstance(exc, (InvalidDocument, ProtocolError, _NotAMessage)):
        raise exc
    raise InvalidDocument(f"cannot encode a document of {type(message).__name__}: {exc}") from exc


__all__ = [
    "encode",
    "encode_msg",
    "with_encoded_body",
]
