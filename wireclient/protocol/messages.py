"""One small frozen, slotted class per message, and the Header."""

from __future__ import annotations

from collections import abc
from operator import index as _index
from typing import Any, Callable, ClassVar, Iterable, NamedTuple, Optional, Tuple, Union

from wireclient.errors import InvalidDocument, ProtocolError
from wireclient.protocol._common import (
    _INT32_MAX,
    _INT32_MIN,
    _INT64_MAX,
    _INT64_MIN,
    _MORE_TO_COME,
    _UINT32_MAX,
    OP_COMPRESSED,
    OP_DELETE,
    OP_GET_MORE,
    OP_INSERT,
    OP_KILL_CURSORS,
    OP_MSG,
    OP_QUERY,
    OP_REPLY,
    OP_UPDATE,
    Document,
    DocumentIn,
)

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
    if doc.__class__ is dict or isinstance(doc, abc.Mapping):
        return doc
    if isinstance(doc, (bytes, bytearray, memoryview)):
        return bytes(doc)
    raise InvalidDocument(
        f"{name} must be a mapping or encoded BSON bytes, not {type(doc).__name__}"
    )


def _docs_field(name: str, docs: Any) -> Tuple[DocumentIn, ...]:
    if isinstance(docs, (abc.Mapping, bytes, bytearray, memoryview, str)):
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


def encoded_sequence(identifier: str, documents: Iterable[bytes]) -> DocumentSequence:
    """A ``DocumentSequence`` of documents the caller has already encoded as ``bytes``
    (the write path's batches): the constructor's per-document checks would only find
    ``bytes`` again, so they are skipped; the identifier is still checked."""
    seq: DocumentSequence = _object_new(DocumentSequence)
    _set_seq_id(seq, _cstring_field("identifier", identifier))
    _set_seq_docs(seq, tuple(documents))
    return seq


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

__all__ = [
    "DocumentSequence",
    "encoded_sequence",
    "Header",
    "Message",
    "OpCompressed",
    "OpDelete",
    "OpGetMore",
    "OpInsert",
    "OpKillCursors",
    "OpMsg",
    "OpQuery",
    "OpReply",
    "OpUpdate",
]
