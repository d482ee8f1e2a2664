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

import enum
import struct
import zlib
from operator import index as _index
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    Union,
)

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions

from wireclient._crc32c import crc32c
from wireclient.errors import ConfigurationError, InvalidDocument, ProtocolError

__all__ = [
    "OP_REPLY",
    "OP_UPDATE",
    "OP_INSERT",
    "OP_QUERY",
    "OP_GET_MORE",
    "OP_DELETE",
    "OP_KILL_CURSORS",
    "OP_COMPRESSED",
    "OP_MSG",
    "OPCODE_NAMES",
    "HEADER_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MsgFlags",
    "QueryFlags",
    "ReplyFlags",
    "InsertFlags",
    "UpdateFlags",
    "DeleteFlags",
    "CompressorId",
    "Header",
    "DocumentSequence",
    "OpMsg",
    "OpQuery",
    "OpReply",
    "OpGetMore",
    "OpKillCursors",
    "OpInsert",
    "OpUpdate",
    "OpDelete",
    "OpCompressed",
    "Message",
    "compress",
    "decompress",
    "encode",
    "unpack_header",
    "decode_body",
    "decode",
    "MessageReader",
]

# --------------------------------------------------------------------------- constants

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


# --------------------------------------------------------------------------- message classes

_object_new = object.__new__


class _Frozen:
    """Base of the message classes: slotted, immutable, compared and hashed by value."""

    __slots__ = ()
    _fields: ClassVar[Tuple[str, ...]] = ()
    _setters: ClassVar[Tuple[Callable[[Any, Any], None], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._setters = tuple(getattr(cls, name).__set__ for name in cls._fields)

    @classmethod
    def _build(cls, *values: Any) -> Any:
        """An instance from already-valid field values (the decoder's path: no checks)."""
        obj = _object_new(cls)
        for setter, value in zip(cls._setters, values):
            setter(obj, value)
        return obj

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self._values()))

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self._values()))
        return f"{self.__class__.__name__}({args})"

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (self.__class__, self._values())

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (validated like a new instance)."""
        values = dict(zip(self._fields, self._values()))
        values.update(changes)
        return self.__class__(**values)


def _int_field(name: str, value: Any, lo: int, hi: int) -> int:
    if value.__class__ is not int:
        try:
            value = int(_index(value))  # int(): Python 3.9 index() keeps IntFlag
        except TypeError:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if not lo <= value <= hi:
        raise ProtocolError(f"{name}={value} is out of range [{lo}, {hi}]", side="local")
    return value  # type: ignore[no-any-return]


def _cstring_field(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if "\x00" in value:
        raise ProtocolError(f"{name} {value!r} contains a NUL character", side="local")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ProtocolError(f"{name} {value!r} cannot be encoded as UTF-8", side="local") from exc
    return value


def _doc_field(name: str, doc: Any) -> DocumentIn:
    if doc.__class__ is dict or isinstance(doc, Mapping):
        return doc
    if isinstance(doc, (bytes, bytearray, memoryview)):
        return bytes(doc)
    raise InvalidDocument(
        f"{name} must be a mapping or encoded BSON bytes, not {type(doc).__name__}"
    )


def _docs_field(name: str, docs: Any) -> Tuple[DocumentIn, ...]:
    if isinstance(docs, (Mapping, bytes, bytearray, memoryview, str)):
        raise TypeError(
            f"{name} must be a sequence of documents, not a single {type(docs).__name__}"
        )
    return tuple(_doc_field(f"{name}[{i}]", doc) for i, doc in enumerate(docs))


class Header(NamedTuple):
    """The 16-byte message header: a named tuple, so ``length, rid, rto, op = header`` works.

    (A tuple rather than a slotted class like the messages because one is built per frame
    read, and a tuple is built in C.)
    """

    message_length: int
    request_id: int
    response_to: int
    op_code: int

    def replace(self, **changes: int) -> Header:
        """A copy with some fields changed."""
        return self._replace(**changes)


_tuple_new = tuple.__new__


class DocumentSequence(_Frozen):
    """An OP_MSG kind-1 section: an identifier and a run of documents."""

    __slots__ = ("identifier", "documents")
    _fields = __slots__
    identifier: str
    documents: Tuple[Document, ...]

    def __init__(self, identifier: str, documents: Iterable[DocumentIn]) -> None:
        _set_seq_id(self, _cstring_field("identifier", identifier))
        _set_seq_docs(self, _docs_field("documents", documents))


_set_seq_id, _set_seq_docs = DocumentSequence._setters


class OpMsg(_Frozen):
    """OP_MSG (2013): flagBits, a body document and any number of document sequences.

    ``body`` is a mapping or already-encoded BSON ``bytes`` (written verbatim). Any uint32
    ``flags`` can be encoded (so testers can send reserved bits); ``encode`` appends the
    CRC-32C when ``checksumPresent`` is set.
    """

    __slots__ = ("body", "sequences", "flags")
    _fields = __slots__
    op_code: ClassVar[int] = OP_MSG
    body: Document
    sequences: Tuple[DocumentSequence, ...]
    flags: int

    def __init__(
        self, body: DocumentIn, sequences: Iterable[DocumentSequence] = (), flags: int = 0
    ) -> None:
        if body.__class__ is not dict:
            body = _doc_field("body", body)
        if sequences.__class__ is not tuple or sequences:
            sequences = tuple(sequences)
            for seq in sequences:
                if not isinstance(seq, DocumentSequence):
                    raise TypeError(f"sequences must hold DocumentSequence, not {seq!r}")
        if flags.__class__ is not int or flags:
            flags = _int_field("flags", flags, 0, _UINT32_MAX)
        _set_msg_body(self, body)
        _set_msg_seqs(self, sequences)
        _set_msg_flags(self, flags)

    @property
    def more_to_come(self) -> bool:
        """True when moreToCome is set: the peer must not (or will not) answer this message."""
        return bool(self.flags & _MORE_TO_COME)


_set_msg_body, _set_msg_seqs, _set_msg_flags = OpMsg._setters


class OpQuery(_Frozen):
    """OP_QUERY (2004): a legacy query, still the first handshake (``db.$cmd``)."""

    __slots__ = (
        "full_collection_name",
        "query",
        "flags",
        "number_to_skip",
        "number_to_return",
        "return_fields_selector",
    )
    _fields = __slots__
    op_code: ClassVar[int] = OP_QUERY
    full_collection_name: str
    query: Document
    flags: int
    number_to_skip: int
    number_to_return: int
    return_fields_selector: Optional[Document]

    def __init__(
        self,
        full_collection_name: str,
        query: DocumentIn,
        flags: int = 0,
        number_to_skip: int = 0,
        number_to_return: int = -1,
        return_fields_selector: Optional[DocumentIn] = None,
    ) -> None:
        fields = return_fields_selector
        _init(
            self,
            _cstring_field("full_collection_name", full_collection_name),
            _doc_field("query", query),
            _int_field("flags", flags, 0, _UINT32_MAX),
            _int_field("number_to_skip", number_to_skip, _INT32_MIN, _INT32_MAX),
            _int_field("number_to_return", number_to_return, _INT32_MIN, _INT32_MAX),
            None if fields is None else _doc_field("return_fields_selector", fields),
        )


class OpReply(_Frozen):
    """OP_REPLY (1): documents, responseFlags, cursorID and startingFrom.

    numberReturned is not a field: it is ``len(documents)`` on encode and checked on decode.
    """

    __slots__ = ("documents", "response_flags", "cursor_id", "starting_from")
    _fields = __slots__
    op_code: ClassVar[int] = OP_REPLY
    documents: Tuple[Document, ...]
    response_flags: int
    cursor_id: int
    starting_from: int

    def __init__(
        self,
        documents: Iterable[DocumentIn],
        response_flags: int = 0,
        cursor_id: int = 0,
        starting_from: int = 0,
    ) -> None:
        _init(
            self,
            _docs_field("documents", documents),
            _int_field("response_flags", response_flags, 0, _UINT32_MAX),
            _int_field("cursor_id", cursor_id, _INT64_MIN, _INT64_MAX),
            _int_field("starting_from", starting_from, _INT32_MIN, _INT32_MAX),
        )

    @property
    def number_returned(self) -> int:
        return len(self.documents)


class OpGetMore(_Frozen):
    """OP_GET_MORE (2005)."""

    __slots__ = ("full_collection_name", "cursor_id", "number_to_return")
    _fields = __slots__
    op_code: ClassVar[int] = OP_GET_MORE
    full_collection_name: str
    cursor_id: int
    number_to_return: int

    def __init__(
        self, full_collection_name: str, cursor_id: int, number_to_return: int = 0
    ) -> None:
        _init(
            self,
            _cstring_field("full_collection_name", full_collection_name),
            _int_field("cursor_id", cursor_id, _INT64_MIN, _INT64_MAX),
            _int_field("number_to_return", number_to_return, _INT32_MIN, _INT32_MAX),
        )


class OpKillCursors(_Frozen):
    """OP_KILL_CURSORS (2007)."""

    __slots__ = ("cursor_ids",)
    _fields = __slots__
    op_code: ClassVar[int] = OP_KILL_CURSORS
    cursor_ids: Tuple[int, ...]

    def __init__(self, cursor_ids: Iterable[int]) -> None:
        ids = tuple(_int_field("cursor_id", c, _INT64_MIN, _INT64_MAX) for c in cursor_ids)
        _init(self, ids)


class OpInsert(_Frozen):
    """OP_INSERT (2002)."""

    __slots__ = ("full_collection_name", "documents", "flags")
    _fields = __slots__
    op_code: ClassVar[int] = OP_INSERT
    full_collection_name: str
    documents: Tuple[Document, ...]
    flags: int

    def __init__(
        self, full_collection_name: str, documents: Iterable[DocumentIn], flags: int = 0
    ) -> None:
        _init(
            self,
            _cstring_field("full_collection_name", full_collection_name),
            _docs_field("documents", documents),
            _int_field("flags", flags, 0, _UINT32_MAX),
        )


class OpUpdate(_Frozen):
    """OP_UPDATE (2001)."""

    __slots__ = ("full_collection_name", "selector", "update", "flags")
    _fields = __slots__
    op_code: ClassVar[int] = OP_UPDATE
    full_collection_name: str
    selector: Document
    update: Document
    flags: int

    def __init__(
        self, full_collection_name: str, selector: DocumentIn, update: DocumentIn, flags: int = 0
    ) -> None:
        _init(
            self,
            _cstring_field("full_collection_name", full_collection_name),
            _doc_field("selector", selector),
            _doc_field("update", update),
            _int_field("flags", flags, 0, _UINT32_MAX),
        )


class OpDelete(_Frozen):
    """OP_DELETE (2006)."""

    __slots__ = ("full_collection_name", "selector", "flags")
    _fields = __slots__
    op_code: ClassVar[int] = OP_DELETE
    full_collection_name: str
    selector: Document
    flags: int

    def __init__(self, full_collection_name: str, selector: DocumentIn, flags: int = 0) -> None:
        _init(
            self,
            _cstring_field("full_collection_name", full_collection_name),
            _doc_field("selector", selector),
            _int_field("flags", flags, 0, _UINT32_MAX),
        )


class OpCompressed(_Frozen):
    """OP_COMPRESSED (2012): another message's body, compressed. See ``compress``/``decompress``."""

    __slots__ = ("original_opcode", "uncompressed_size", "compressor_id", "compressed_message")
    _fields = __slots__
    op_code: ClassVar[int] = OP_COMPRESSED
    original_opcode: int
    uncompressed_size: int
    compressor_id: int
    compressed_message: bytes

    def __init__(
        self,
        original_opcode: int,
        uncompressed_size: int,
        compressor_id: int,
        compressed_message: bytes,
    ) -> None:
        if not isinstance(compressed_message, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"compressed_message must be bytes, not {type(compressed_message).__name__}"
            )
        _init(
            self,
            _int_field("original_opcode", original_opcode, _INT32_MIN, _INT32_MAX),
            _int_field("uncompressed_size", uncompressed_size, 0, _INT32_MAX),
            _int_field("compressor_id", compressor_id, 0, 255),
            bytes(compressed_message),
        )


def _init(obj: _Frozen, *values: Any) -> None:
    for setter, value in zip(obj._setters, values):
        setter(obj, value)


Message = Union[
    OpMsg, OpQuery, OpReply, OpGetMore, OpKillCursors, OpInsert, OpUpdate, OpDelete, OpCompressed
]

# --------------------------------------------------------------------------- encoding


def _sequence_bytes(seq: DocumentSequence, opts: CodecOptions[Any]) -> bytes:
    ident = seq.identifier.encode("utf-8") + b"\x00"
    docs = [_doc_bytes(doc, opts) for doc in seq.documents]
    size = 4 + len(ident) + sum(map(len, docs))
    return b"".join([_pack_kind1_size(1, size), ident, *docs])


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
    except (bson.errors.BSONError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, (InvalidDocument, ProtocolError, _NotAMessage)):
            raise
        raise InvalidDocument(
            f"cannot encode a document of {type(message).__name__}: {exc}"
        ) from exc


# --------------------------------------------------------------------------- decoding
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


# --------------------------------------------------------------------------- compression

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


def _import_optional(module: str, package: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {module} compressor needs the {package!r} package, which is not installed"
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
    try:
        data = _body_encoder(message)(message, opts)
    except (bson.errors.BSONError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, (InvalidDocument, ProtocolError, _NotAMessage)):
            raise
        raise InvalidDocument(
            f"cannot encode a document of {type(message).__name__}: {exc}"
        ) from exc
    if cid == CompressorId.noop:
        packed = data
    elif cid == CompressorId.zlib:
        packed = zlib.compress(data, level)
    elif cid == CompressorId.snappy:
        packed = _import_optional("snappy", "python-snappy").compress(data)
    else:
        zstandard = _import_optional("zstandard", "zstandard")
        packed = zstandard.ZstdCompressor(level=3 if level == -1 else level).compress(data)
    return OpCompressed(message.op_code, len(data), cid, packed)


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
        snappy = _import_optional("snappy", "python-snappy")
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
        zstandard = _import_optional("zstandard", "zstandard")
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


# --------------------------------------------------------------------------- incremental reader


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
