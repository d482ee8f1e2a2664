"""Collection: CRUD as write commands and cursors for reads; pymongo 2.8's names and 4's.

A collection builds command documents and hands them to the connection's operation path
(``wireclient.engine.executor``); it never touches a pool or a socket. Writes are
acknowledged unless the caller says ``safe=False`` or ``w=0`` (or the write concern,
inherited collection -> database -> connection through the collection's ``Settings``,
says ``w=0``): then the command goes out as an OP_MSG with ``moreToCome`` and no reply is
read. Inserted documents are validated and encoded here before anything is sent (keys);
the path checks their size against the server's limits and splits them into batches.

The 2.8 names and the pymongo 4 ones sit side by side and share their last step: every
update (``update``, ``save``, ``update_one``, ``update_many``, ``replace_one``) sends one
statement through ``_send_update``, every delete (``remove``, ``delete_one``,
``delete_many``) through ``_send_delete``, every findAndModify (``find_and_modify``,
``find_one_and_*``) through ``_send_find_and_modify``; the statements themselves are
built and checked in ``bulk.py``, whose ``Bulk`` runs ``insert_many``, ``bulk_write`` and
the 2.8 bulk API. As in pymongo 4, ``update_one`` and ``update_many`` take only update
operators (or a pipeline) and ``replace_one`` only a replacement; 2.8's ``update`` takes
either. Single writes raise ``DuplicateKeyError`` / ``OperationFailure`` for a write error,
``insert_many`` and ``bulk_write`` ``BulkWriteError``. ``session`` arguments are accepted
only as None: wireclient has no sessions.

Every public method checks its arguments first (``wireclient.rules.arguments``): a bad one
raises a typed error naming it and nothing is sent. ``insert`` adds ``_id`` to the caller's
documents only once they pass; if the insert is refused before anything is sent (a bad
document, a bad write concern, a document over the server's size limit), the ``_id``s it
added are taken out again.

``aggregate``: pymongo 2.8 returned the result document (``{'result': [...], 'ok': 1.0}``)
unless ``cursor={}`` was given, pymongo 3 and 4 return a cursor, and current servers answer
an aggregate only with a cursor. ``aggregate`` therefore returns an ``AggregationCursor``
(``cursor.py``): a cursor, which also answers 2.8's ``result['result']`` and
``result['ok']``.

Two flavours share one class: ``BaseCollection`` holds all of the above, and writes each
method that talks to the server once, as a step (``transport/steps.py``: ``_insert_one``,
whose I/O is ``yield from`` the executor's or the database's steps) declared with
``operation`` (``insert_one = operation(_insert_one)``, ``transport/flavours.py``).
``Collection`` (blocking: ``coll.insert_one(doc)`` returns the result) and
``AsyncCollection`` (``await coll.insert_one(doc)``) derive from it and add only their
sibling classes: the cursors ``find``, ``list_indexes`` and ``aggregate`` make and the bulk
builder (``_cursor_class``, ``_aggregation_cursor_class``, ``_bulk_builder_class``). Methods
that send nothing (``find``, ``list_indexes``, ``initialize_*_bulk_op``) are plain methods
of both; ``aggregate`` is an operation because ``explain=True`` runs the command (the
asyncio flavour: ``cursor = await coll.aggregate(pipeline)``, as pymongo's
``AsyncCollection``).
"""

from __future__ import annotations

from collections import abc
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    Generic,
    Iterable,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
    cast,
)

from bson import ObjectId
from bson.code import Code

from wireclient.client import settings
from wireclient.client.bulk import (
    AsyncBulkOperationBuilder,
    BaseBulkOperationBuilder,
    Bulk,
    BulkOperationBuilder,
    check_replacement,
    check_update_document,
    delete_statement,
    legacy_update_statement,
    replacement_statement,
    update_statement,
)
from wireclient.client.cursor import (
    END,
    AggregationCursor,
    AsyncAggregationCursor,
    AsyncCursor,
    BaseAggregationCursor,
    BaseCursor,
    Cursor,
    find_one_document,
)
from wireclient.client.find_options import projection_document
from wireclient.client.legacy import not_callable, refuse
from wireclient.client.object_ids import object_ids
from wireclient.client.operations import ReturnDocument, _Request
from wireclient.client.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
    update_result_document,
)
from wireclient.client.settings import Settings, shaper
from wireclient.errors import (
    ConfigurationError,
    DocumentTypeError,
    InvalidArgument,
    InvalidDocument,
    InvalidOperation,
)
from wireclient.rules import replies
from wireclient.rules.arguments import (
    check_bool,
    check_document,
    check_int,
    check_mapping,
    check_str,
    encode,
    encode_many,
    index_document,
    type_name,
)
from wireclient.rules.command import raise_write_errors
from wireclient.rules.wire import INT32_MAX
from wireclient.transport.flavours import Asynchronous, Blocking, operation
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from typing import Self

    from wireclient.client.database import BaseDatabase

_WRITING_STAGES = ("$out", "$merge")
_AGGREGATE_OPTIONS = (
    "allowDiskUse",
    "maxTimeMS",
    "collation",
    "hint",
    "comment",
    "let",
    "bypassDocumentValidation",
)


def check_collection_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(f"collection name must be a string, not {type(name).__name__}")
    if not name or ".." in name or name.startswith(".") or name.endswith("."):
        raise ConfigurationError(f"invalid collection name {name!r}")
    if "$" in name and not name.startswith("oplog.$main") and not name.startswith("$cmd"):
        raise ConfigurationError(f"collection names must not contain '$': {name!r}")
    if "\x00" in name:
        raise ConfigurationError("collection names must not contain the null character")
    return name


def _document_list(doc_or_docs: Any) -> List[Any]:
    """The documents of ``insert(doc_or_docs)``: a mapping, or an iterable of mappings."""
    if isinstance(doc_or_docs, (str, bytes, bytearray, memoryview)) or not isinstance(
        doc_or_docs, Iterable
    ):
        raise DocumentTypeError(
            "doc_or_docs must be a document (a mapping) or a list of documents, "
            f"not {type_name(doc_or_docs)}"
        )
    docs = list(doc_or_docs)
    if not docs:
        raise InvalidDocument("cannot insert an empty list of documents")
    for i, doc in enumerate(docs):
        if doc.__class__ is not dict:
            check_mapping(doc, f"doc_or_docs[{i}]")
    return docs


def _doc_name(index: int) -> str:
    return f"doc_or_docs[{index}]"


def _single_name(index: int) -> str:
    return "doc_or_docs"


def _id_spec(value: Any, name: str) -> Dict[str, Any]:
    """``{'_id': value}`` for a ``spec_or_id`` that is not a mapping."""
    if isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidArgument(
            f"{name} must be a document or an _id value, not a {type_name(value)}: an _id "
            "cannot be an array (to match several, use {'_id': {'$in': [...]}})"
        )
    spec = {"_id": value}
    encode(spec, name)
    return spec


def _index_name(keys: Mapping[str, Any]) -> str:
    return "_".join(f"{k}_{v}" for k, v in keys.items())


def _no_session(session: Any) -> None:
    if session is not None:
        raise InvalidOperation("sessions are not supported by wireclient (session must be None)")


def _code(value: Any, name: str) -> Code:
    if isinstance(value, Code):
        return value
    return Code(check_str(value, name))


def _check_pipeline(pipeline: Any) -> List[Mapping[str, Any]]:
    if isinstance(pipeline, Mapping):
        pipeline = [pipeline]
    elif not isinstance(pipeline, (list, tuple)):
        raise InvalidArgument(
            f"pipeline must be a list of stages (documents), not {type_name(pipeline)}"
        )
    for i, stage in enumerate(pipeline):
        check_document(stage, f"pipeline[{i}]")
        if len(stage) != 1 or not str(next(iter(stage))).startswith("$"):
            raise InvalidDocument(
                f"pipeline[{i}] must have exactly one field, the stage name such as '$match'"
            )
    return list(pipeline)


def _flags_checked(manipulate: Any, check_keys: Any, continue_on_error: Any) -> None:
    """``insert``'s three flags: real bools (one test for the usual call)."""
    if manipulate.__class__ is bool and check_keys.__class__ is bool:
        if continue_on_error.__class__ is bool:
            return
    check_bool(manipulate, "manipulate")
    check_bool(check_keys, "check_keys")
    check_bool(continue_on_error, "continue_on_error")


Cur = TypeVar("Cur", bound=BaseCursor)  # the flavour's cursor class
Agg = TypeVar("Agg", bound=BaseAggregationCursor)  # and its aggregation cursor class


class BaseCollection(Generic[Cur, Agg]):
    """What ``Collection`` and ``AsyncCollection`` share: every decision and every command
    they build. Each operation that talks to the server is written once, as a step, and
    declared with ``operation`` (``transport/flavours.py``); the flavour classes below run
    it with their driver. Generic in the flavour's cursor classes, so a type checker sees
    ``Cursor`` from ``Collection.find`` and ``AsyncCursor`` from ``AsyncCollection.find``."""

    __slots__ = ("database", "name", "full_name", "_settings")

    read_preference = settings.READ_PREFERENCE
    tag_sets = settings.TAG_SETS
    write_concern = settings.WRITE_CONCERN

    # the flavour's sibling classes, set by Collection and AsyncCollection
    _cursor_class: Type[Cur]
    _aggregation_cursor_class: Type[Agg]
    _bulk_builder_class: ClassVar[Type[BaseBulkOperationBuilder]]

    def __init__(self, database: BaseDatabase[Any], name: str, read_preference: Any = None) -> None:
        self.database = database
        self.name = check_collection_name(name)
        self.full_name = f"{database.name}.{name}"
        self._settings: Settings = Settings(database._settings, read_preference)

    def __getattr__(self, name: str) -> Self:
        """``coll.sub``: the sub-collection ``name.sub``, unless ``sub`` is a pymongo 2.8
        name wireclient does not provide (``InvalidOperation``; see ``legacy.py``)."""
        shown_as = type(self).__name__
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(f"'{shown_as}' object has no attribute {name!r}")
        refuse("Collection", name, shown_as)
        return self[name]

    def __getitem__(self, name: str) -> Self:
        # the database hands out collections of its own flavour, which is this one's
        return cast("Self", self.database[f"{self.name}.{name}"])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parent, _, method = self.name.rpartition(".")
        shown_as = type(self).__name__
        raise not_callable(shown_as, method, shown_as if parent else type(self.database).__name__)

    def __iter__(self) -> Any:
        raise TypeError(f"'{type(self).__name__}' object is not iterable")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BaseCollection):
            return self.database == other.database and self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.database, self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.database!r}, {self.name!r})"

    @property
    def connection(self) -> Any:
        return self.database.connection

    # -- writes -------------------------------------------------------------------------

    def _insert(
        self,
        doc_or_docs: Union[Mapping[str, Any], Iterable[Mapping[str, Any]]],
        manipulate: bool = True,
        safe: Optional[bool] = None,
        check_keys: bool = True,
        continue_on_error: bool = False,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Steps[Any]:
        """Insert one document (returns its ``_id``) or many (returns the list of ``_id``s)."""
        single = doc_or_docs.__class__ is dict or isinstance(doc_or_docs, abc.Mapping)
        docs: List[Any] = [doc_or_docs] if single else _document_list(doc_or_docs)
        _flags_checked(manipulate, check_keys, continue_on_error)
        added: List[MutableMapping[str, Any]] = []  # the caller's documents given an _id here
        try:
            if manipulate:
                missing = [i for i, doc in enumerate(docs) if "_id" not in doc]
                # one id (the usual insert): bson's ObjectId(), as fast as object_ids(1)
                new_ids = [ObjectId()] if len(missing) == 1 else object_ids(len(missing))
                for i, new_id in zip(missing, new_ids):
                    doc = docs[i]
                    if doc.__class__ is dict or isinstance(doc, abc.MutableMapping):
                        doc["_id"] = new_id
                        added.append(doc)
                    else:  # read-only (a RawBSONDocument): send a copy with the _id
                        docs[i] = {"_id": new_id, **doc}
            ids = [doc.get("_id") for doc in docs]
            encoded = encode_many(docs, _doc_name if not single else _single_name, check_keys)
            command: Dict[str, Any] = {"insert": self.name, "ordered": not continue_on_error}
            yield from self._write(command, "documents", encoded, safe, w, j, wtimeout)
        except (InvalidDocument, ConfigurationError):
            # Refused before anything was sent: the caller's documents are left as they were.
            for doc in added:
                doc.pop("_id", None)
            raise
        return ids[0] if single else ids

    insert = operation(_insert)

    def _save(
        self,
        to_save: Mapping[str, Any],
        safe: Optional[bool] = None,
        manipulate: bool = True,
        check_keys: bool = True,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Steps[Any]:
        """Insert a document without ``_id``, or replace (upsert) the one with its ``_id``.
        The options are ``insert``'s (``safe`` comes second, as it always has)."""
        check_mapping(to_save, "to_save")
        if "_id" not in to_save:
            return (
                yield from self._insert(
                    to_save, manipulate, safe, check_keys, False, w, j, wtimeout
                )
            )
        check_bool(manipulate, "manipulate")
        spec = {"_id": to_save["_id"]}
        yield from self._update(spec, to_save, True, False, safe, w, j, wtimeout, check_keys)
        return to_save["_id"]

    save = operation(_save)

    def _update(
        self,
        spec: Mapping[str, Any],
        document: Mapping[str, Any],
        upsert: bool = False,
        multi: bool = False,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
        check_keys: bool = True,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Update documents matching ``spec``; returns a result dict, None when unacknowledged.

        ``document`` is update operators (``{'$set': {...}}``) or a whole replacement, whose
        keys are checked (unless ``check_keys=False``) as an inserted document's are."""
        statement = legacy_update_statement(spec, document, upsert, multi, check_keys)
        return (yield from self._send_update(statement, False, safe, w, j, wtimeout))

    update = operation(_update)

    def _remove(
        self,
        spec_or_id: Any = None,
        safe: Optional[bool] = None,
        multi: bool = True,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Remove matching documents (all with no spec); a result dict or None if unacknowledged."""
        check_bool(multi, "multi")
        if spec_or_id is None:
            spec: Mapping[str, Any] = {}
        elif isinstance(spec_or_id, abc.Mapping):
            spec = check_document(spec_or_id, "spec_or_id")
        else:
            spec = _id_spec(spec_or_id, "spec_or_id")
        statement = {"q": spec, "limit": 0 if multi else 1}
        return (yield from self._send_delete(statement, safe, w, j, wtimeout))

    remove = operation(_remove)

    def _write(
        self,
        command: Dict[str, Any],
        field: str,
        documents: Sequence[Any],
        safe: Optional[bool],
        w: Optional[Union[int, str]],
        j: Optional[bool],
        wtimeout: Optional[int],
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Send a write command with the collection's write concern (as ``safe``, ``w``,
        ``j`` and ``wtimeout`` change it); the last reply, None when unacknowledged."""
        database = self.database
        concern = self._settings.effective_write_concern()
        if safe is None and w is None and j is None and wtimeout is None:
            acknowledged, wc = concern.default  # resolved once, when the concern was made
        else:
            acknowledged, wc = concern.resolve(safe, w, j, wtimeout)
        if wc is not None:
            command["writeConcern"] = dict(wc)
        return (
            yield from database.connection._executor.write(
                database.name, command, field, documents, not acknowledged
            )
        )

    def _send_update(
        self,
        statement: Any,
        bypass: bool,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Send one update statement (every update's last step); the result document,
        None when unacknowledged."""
        command: Dict[str, Any] = {"update": self.name, "ordered": True}
        if check_bool(bypass, "bypass_document_validation"):
            command["bypassDocumentValidation"] = True
        reply = yield from self._write(command, "updates", [statement], safe, w, j, wtimeout)
        return None if reply is None else update_result_document(reply)

    def _send_delete(
        self,
        statement: Any,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Send one delete statement (every delete's last step); ``{'ok', 'n'}``, None when
        unacknowledged."""
        command = {"delete": self.name, "ordered": True}
        reply = yield from self._write(command, "deletes", [statement], safe, w, j, wtimeout)
        if reply is None:
            return None
        return {"ok": reply.get("ok"), "n": int(reply.get("n", 0))}

    # -- pymongo 4 inserts ---------------------------------------------------------------------

    def _insert_one(
        self,
        document: Mapping[str, Any],
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> Steps[InsertOneResult]:
        """Insert ``document`` (an ``_id`` is added to it when missing)."""
        _no_session(session)
        check_mapping(document, "document")
        command: Dict[str, Any] = {"insert": self.name, "ordered": True}
        if check_bool(bypass_document_validation, "bypass_document_validation"):
            command["bypassDocumentValidation"] = True
        added = False
        if "_id" not in document:
            if isinstance(document, abc.MutableMapping):
                document["_id"] = ObjectId()
                added = True
            else:  # read-only (a RawBSONDocument): send a copy with an _id
                document = {"_id": ObjectId(), **document}
        try:
            data = encode(document, "document", True)
            reply = yield from self._write(command, "documents", [data], None, None, None, None)
        except (InvalidDocument, ConfigurationError):
            if added:  # refused before anything was sent: the caller's document as it was
                document.pop("_id", None)  # type: ignore[union-attr]
            raise
        return InsertOneResult(document["_id"], reply is not None)

    insert_one = operation(_insert_one)

    def _insert_many(
        self,
        documents: Iterable[Mapping[str, Any]],
        ordered: bool = True,
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> Steps[InsertManyResult]:
        """Insert every document (``_id``s added when missing); ``BulkWriteError`` when
        some fail (an ordered insert stops at the first)."""
        _no_session(session)
        if isinstance(documents, (abc.Mapping, str, bytes)) or not isinstance(documents, Iterable):
            raise InvalidArgument(
                f"documents must be a non-empty list of documents, not {type_name(documents)}"
            )
        bulk = Bulk(self, ordered, bypass_document_validation)
        bulk.add_inserts(documents)
        if not bulk.ops:
            raise InvalidDocument("documents must be a non-empty list of documents")
        result = yield from bulk.execute(self._settings.effective_write_concern())
        return InsertManyResult(bulk.inserted_ids, result is not None)

    insert_many = operation(_insert_many)

    # -- pymongo 4 updates and deletes ------------------------------------------------------

    def _update_one(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        bypass_document_validation: bool = False,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> Steps[UpdateResult]:
        """Update the first document matching ``filter`` (``update``: operators such as
        ``{'$set': ...}``, or a pipeline)."""
        _no_session(session)
        statement = update_statement(filter, update, False, upsert, collation, array_filters, hint)
        result = yield from self._send_update(
            encode(statement, "update"), bypass_document_validation
        )
        return UpdateResult(result, result is not None)

    update_one = operation(_update_one)

    def _update_many(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        bypass_document_validation: bool = False,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> Steps[UpdateResult]:
        """Update every document matching ``filter``."""
        _no_session(session)
        statement = update_statement(filter, update, True, upsert, collation, array_filters, hint)
        result = yield from self._send_update(
            encode(statement, "update"), bypass_document_validation
        )
        return UpdateResult(result, result is not None)

    update_many = operation(_update_many)

    def _replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        bypass_document_validation: bool = False,
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> Steps[UpdateResult]:
        """Replace the first document matching ``filter`` with ``replacement``."""
        _no_session(session)
        statement = replacement_statement(filter, replacement, upsert, collation, hint)
        result = yield from self._send_update(
            encode(statement, "replacement"), bypass_document_validation
        )
        return UpdateResult(result, result is not None)

    replace_one = operation(_replace_one)

    def _delete_one_or_many(
        self, filter: Any, limit: int, collation: Any, hint: Any, session: Any
    ) -> Steps[DeleteResult]:
        _no_session(session)
        statement = delete_statement(filter, limit, collation, hint)
        result = yield from self._send_delete(encode(statement, "filter"))
        return DeleteResult(result, result is not None)

    def _delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> Steps[DeleteResult]:
        """Delete the first document matching ``filter``."""
        return (yield from self._delete_one_or_many(filter, 1, collation, hint, session))

    delete_one = operation(_delete_one)

    def _delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> Steps[DeleteResult]:
        """Delete every document matching ``filter``."""
        return (yield from self._delete_one_or_many(filter, 0, collation, hint, session))

    delete_many = operation(_delete_many)

    # -- reads --------------------------------------------------------------------------

    def find(self, *args: Any, **kwargs: Any) -> Cur:
        """``find(spec=None, fields=None, skip=0, limit=0, sort=None, batch_size=0, ...)``."""
        return self._cursor_class(self, *args, **kwargs)

    def _find_one(
        self, spec_or_id: Any = None, *args: Any, **kwargs: Any
    ) -> Steps[Optional[Dict[str, Any]]]:
        if spec_or_id is not None and not isinstance(spec_or_id, abc.Mapping):
            spec_or_id = _id_spec(spec_or_id, "spec_or_id")
        if not args and not kwargs:  # the usual find_one(spec): no cursor object needed
            return (yield from find_one_document(self, spec_or_id))
        cursor = self.find(spec_or_id, *args, **kwargs).limit(-1)
        doc = yield from cursor._next_document()
        return None if doc is END else cast(Dict[str, Any], doc)

    find_one = operation(_find_one)

    def _count(self, spec: Optional[Mapping[str, Any]] = None) -> Steps[int]:
        return (yield from self.find(spec)._count())

    count = operation(_count)

    def _distinct(self, key: str, spec: Optional[Mapping[str, Any]] = None) -> Steps[List[Any]]:
        check_str(key, "key")
        if spec is not None:
            check_document(spec, "spec")
        command: Dict[str, Any] = {"distinct": self.name, "key": key}
        if spec:
            command["query"] = spec
        reply = yield from self.database._command(
            command, read_preference=self._settings.operation_read_preference()
        )
        return list(reply["values"])  # an array, checked on the path (replies.check)

    distinct = operation(_distinct)

    # -- pymongo 4: counting and indexes -------------------------------------------------------

    def _count_documents(
        self, /, filter: Mapping[str, Any], session: Any = None, **kwargs: Any
    ) -> Steps[int]:
        """How many documents match ``filter`` (an aggregation: exact, also in
        transactions). Keywords: ``skip``, ``limit``, ``maxTimeMS``, ``hint``,
        ``collation``, ``comment``."""
        _no_session(session)
        pipeline: List[Dict[str, Any]] = [{"$match": check_document(filter, "filter")}]
        if "skip" in kwargs:
            pipeline.append({"$skip": check_int(kwargs.pop("skip"), "skip", 0)})
        if "limit" in kwargs:
            pipeline.append({"$limit": check_int(kwargs.pop("limit"), "limit", 1)})
        pipeline.append({"$group": {"_id": 1, "n": {"$sum": 1}}})
        command: Dict[str, Any] = {"aggregate": self.name, "pipeline": pipeline}
        for key in ("maxTimeMS", "hint", "collation", "comment"):
            if key in kwargs:
                command[key] = kwargs.pop(key)
        if kwargs:
            raise ConfigurationError(f"count_documents: unknown option {next(iter(kwargs))!r}")
        cursor = self._cursor_class(self, _command=command)
        doc = yield from cursor._next_document()
        return 0 if doc is END else int(doc["n"])

    count_documents = operation(_count_documents)

    def _estimated_document_count(self, /, **kwargs: Any) -> Steps[int]:
        """The collection's document count from its metadata (the ``count`` command, no
        filter). Keywords: ``maxTimeMS``, ``comment``."""
        command: Dict[str, Any] = {"count": self.name}
        for key in ("maxTimeMS", "comment"):
            if key in kwargs:
                command[key] = kwargs.pop(key)
        if kwargs:
            raise ConfigurationError(
                f"estimated_document_count: unknown option {next(iter(kwargs))!r}"
            )
        if "maxTimeMS" in command:
            check_int(command["maxTimeMS"], "maxTimeMS", 0, INT32_MAX)
        reply = yield from self.database._command(
            command, read_preference=self._settings.operation_read_preference()
        )
        return int(reply["n"])

    estimated_document_count = operation(_estimated_document_count)

    def list_indexes(self, session: Any = None) -> Cur:
        """A cursor over the collection's index documents (``listIndexes``)."""
        _no_session(session)
        return self._cursor_class(self, _command={"listIndexes": self.name})

    # -- aggregate ------------------------------------------------------------------------

    def _aggregate(
        self, /, pipeline: Sequence[Mapping[str, Any]], batch_size: int = 0, **kwargs: Any
    ) -> Steps[Any]:
        """Run an aggregation pipeline (a list of stages, or one stage); an
        ``AggregationCursor`` (see the module notes). Keywords: ``cursor={'batchSize': n}``
        (2.8), ``batchSize`` (4), ``allowDiskUse``, ``maxTimeMS``, ``collation``, ``hint``,
        ``comment``, ``let``, ``bypassDocumentValidation``; ``explain=True`` returns the
        server's explanation instead. A pipeline ending in ``$out`` / ``$merge`` runs on the
        primary."""
        stages = _check_pipeline(pipeline)
        check_int(batch_size, "batch_size", 0, INT32_MAX)
        cursor_options = kwargs.pop("cursor", None)
        if cursor_options is not None:
            check_document(cursor_options, "cursor")
            if "batchSize" in cursor_options:
                batch_size = check_int(
                    cursor_options["batchSize"], "cursor.batchSize", 0, INT32_MAX
                )
        if "batchSize" in kwargs:
            batch_size = check_int(kwargs.pop("batchSize"), "batchSize", 0, INT32_MAX)
        explain = check_bool(kwargs.pop("explain", False), "explain")
        if kwargs.pop("session", None) is not None:
            raise InvalidOperation("sessions are not supported by wireclient")
        for key in kwargs:
            if key not in _AGGREGATE_OPTIONS:
                raise ConfigurationError(
                    f"aggregate: unknown option {key!r} (known: {', '.join(_AGGREGATE_OPTIONS)})"
                )
        command: Dict[str, Any] = {"aggregate": self.name, "pipeline": stages, **kwargs}
        if explain:
            command["explain"] = True
            return (
                yield from self.database._command(
                    command, read_preference=self._settings.operation_read_preference()
                )
            )
        writes = bool(stages) and next(iter(stages[-1])) in _WRITING_STAGES
        return self._aggregation_cursor_class(
            self,
            batch_size=batch_size,
            read_preference="primary" if writes else None,
            _command=command,
        )

    aggregate = operation(_aggregate)

    # -- findAndModify --------------------------------------------------------------------

    def _send_find_and_modify(self, command: Dict[str, Any]) -> Steps[Dict[str, Any]]:
        """Run a findAndModify command (with the collection's write concern); raise its
        write concern error; return the reply, its ``value`` checked."""
        acknowledged, concern = self._settings.effective_write_concern().resolve(None, None)
        if concern is not None and acknowledged and "writeConcern" not in command:
            command["writeConcern"] = concern
        reply = yield from self.database._command(command)
        value = reply.get("value")
        if value is not None and not isinstance(value, Mapping):
            raise replies.fail(
                replies.describe("findAndModify", None), "value", "must be a document"
            )
        raise_write_errors(reply)
        return reply

    def _shaped(self, value: Optional[Dict[str, Any]]) -> Any:
        if value is None:
            return None
        conn = self.database.connection
        shape = shaper(conn.document_class, conn.tz_aware)
        return value if shape is None else shape(value)

    def _find_and_modify(
        self,
        /,
        query: Optional[Mapping[str, Any]] = None,
        update: Optional[Mapping[str, Any]] = None,
        upsert: bool = False,
        sort: Any = None,
        full_response: bool = False,
        manipulate: bool = False,
        **kwargs: Any,
    ) -> Steps[Any]:
        """Update (or, with ``remove=True``, remove) one document matching ``query`` and
        return it: as it was, or with ``new=True`` as it is after the update (None when
        nothing matched). ``fields`` projects it, ``sort`` chooses which one;
        ``full_response=True`` returns the server's whole reply."""
        remove = check_bool(kwargs.get("remove", False), "remove")
        if not update and not remove:
            raise ConfigurationError("find_and_modify needs an update or remove=True")
        if update and remove:
            raise ConfigurationError("find_and_modify cannot both update and remove")
        check_bool(upsert, "upsert")
        check_bool(full_response, "full_response")
        check_bool(manipulate, "manipulate")
        command: Dict[str, Any] = {"findAndModify": self.name}
        if query:
            command["query"] = check_document(query, "query")
        if update:
            operators = any(str(k).startswith("$") for k in check_document(update, "update"))
            command["update"] = (
                check_update_document(update, "update")
                if operators
                else check_replacement(update, "update")
            )
        if upsert:
            command["upsert"] = True
        if sort:
            command["sort"] = index_document(sort)
        fields = kwargs.pop("fields", None)
        if fields is not None:
            command["fields"] = projection_document(fields)
        for key in ("new", "remove"):
            if key in kwargs:
                command[key] = check_bool(kwargs.pop(key), key)
        command.update(kwargs)
        reply = yield from self._send_find_and_modify(command)
        if full_response:
            return reply
        return self._shaped(reply.get("value"))

    find_and_modify = operation(_find_and_modify)

    # -- pymongo 4: find one and modify it -----------------------------------------------------

    def _find_one_and(
        self,
        filter: Any,
        change: Dict[str, Any],
        projection: Any,
        sort: Any,
        return_document: Any,
        upsert: Optional[bool],
        kwargs: Dict[str, Any],
    ) -> Steps[Any]:
        _no_session(kwargs.pop("session", None))
        command: Dict[str, Any] = {
            "findAndModify": self.name,
            "query": check_document(filter, "filter"),
        }
        command.update(change)
        if projection is not None:
            command["fields"] = projection_document(projection)
        if sort is not None:
            command["sort"] = index_document(sort)
        if upsert is not None:
            command["upsert"] = check_bool(upsert, "upsert")
        if return_document is not None:
            command["new"] = check_bool(return_document, "return_document")
        hint = kwargs.pop("hint", None)
        if hint is not None:
            command["hint"] = hint if isinstance(hint, str) else index_document(hint)
        array_filters = kwargs.pop("array_filters", None)
        if array_filters is not None:
            command["arrayFilters"] = [check_document(f, "array_filters[]") for f in array_filters]
        for key, field in (
            ("max_time_ms", "maxTimeMS"),
            ("collation", "collation"),
            ("let", "let"),
        ):
            if key in kwargs:
                command[field] = kwargs.pop(key)
        if check_bool(
            kwargs.pop("bypass_document_validation", False), "bypass_document_validation"
        ):
            command["bypassDocumentValidation"] = True
        if kwargs:
            raise TypeError(f"unexpected keyword argument {next(iter(kwargs))!r}")
        reply = yield from self._send_find_and_modify(command)
        return self._shaped(reply.get("value"))

    def _find_one_and_delete(
        self, /, filter: Mapping[str, Any], projection: Any = None, sort: Any = None, **kwargs: Any
    ) -> Steps[Any]:
        """Delete the first document matching ``filter`` (by ``sort``) and return it."""
        return (
            yield from self._find_one_and(
                filter, {"remove": True}, projection, sort, None, None, kwargs
            )
        )

    find_one_and_delete = operation(_find_one_and_delete)

    def _find_one_and_replace(
        self,
        /,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Steps[Any]:
        """Replace the first document matching ``filter``; the document before the change
        (``return_document=ReturnDocument.AFTER``: after it), or None."""
        change = {"update": check_replacement(replacement, "replacement")}
        return (
            yield from self._find_one_and(
                filter, change, projection, sort, return_document, upsert, kwargs
            )
        )

    find_one_and_replace = operation(_find_one_and_replace)

    def _find_one_and_update(
        self,
        /,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Steps[Any]:
        """Update the first document matching ``filter``; the document before the change
        (``return_document=ReturnDocument.AFTER``: after it), or None."""
        change = {"update": check_update_document(update, "update")}
        return (
            yield from self._find_one_and(
                filter, change, projection, sort, return_document, upsert, kwargs
            )
        )

    find_one_and_update = operation(_find_one_and_update)

    # -- map-reduce -----------------------------------------------------------------------

    def _map_reduce(
        self, /, map: Any, reduce: Any, out: Any, full_response: bool = False, **kwargs: Any
    ) -> Steps[Any]:
        """Run ``mapReduce`` into ``out`` (a collection name, or ``{'replace' | 'merge' |
        'reduce': name[, 'db': name]}``); the output ``Collection`` (the whole reply with
        ``full_response=True``, or when ``out`` is ``{'inline': 1}``)."""
        if not isinstance(out, (str, Mapping)):
            raise InvalidArgument(
                f"out must be a collection name or a mapping, not {type_name(out)}"
            )
        check_bool(full_response, "full_response")
        command = {
            "mapReduce": self.name,
            "map": _code(map, "map"),
            "reduce": _code(reduce, "reduce"),
            "out": out,
            **kwargs,
        }
        response = yield from self.database._command(command)
        result = response.get("result")
        if full_response or not result:
            return response
        if isinstance(result, Mapping):
            dbname = check_str(result.get("db"), "the reply's result.db")
            collection = check_str(result.get("collection"), "the reply's result.collection")
            return self.database.connection[dbname][collection]
        return self.database[check_str(result, "the reply's result")]

    map_reduce = operation(_map_reduce)

    def _inline_map_reduce(
        self, /, map: Any, reduce: Any, full_response: bool = False, **kwargs: Any
    ) -> Steps[Any]:
        """Run ``mapReduce`` with ``out: {inline: 1}`` (where the read preference says);
        its ``results`` (the whole reply with ``full_response=True``)."""
        check_bool(full_response, "full_response")
        command = {
            "mapReduce": self.name,
            "map": _code(map, "map"),
            "reduce": _code(reduce, "reduce"),
            "out": {"inline": 1},
            **kwargs,
        }
        response = yield from self.database._command(
            command, read_preference=self._settings.operation_read_preference()
        )
        if full_response:
            return response
        results = response.get("results")
        if not isinstance(results, list):
            raise replies.fail(replies.describe("mapReduce", None), "results", "must be an array")
        return results

    inline_map_reduce = operation(_inline_map_reduce)

    # -- indexes and the collection itself ----------------------------------------------

    def _create_index(
        self, /, key_or_list: Any, unique: bool = False, name: Optional[str] = None, **kwargs: Any
    ) -> Steps[str]:
        """Create an index (``createIndexes``); its name. Keywords are index options
        (``sparse``, ``background``, ``expireAfterSeconds``, ``partialFilterExpression``...;
        2.8's ``bucket_size`` is ``bucketSize``). 2.8's ``cache_for`` / ``ttl`` (how long
        ``ensure_index`` remembered an index) are accepted and ignored: the command is
        idempotent, and it is always sent."""
        keys = index_document(key_or_list)
        check_bool(unique, "unique")
        kwargs.pop("cache_for", None)
        kwargs.pop("ttl", None)
        for removed in ("drop_dups", "dropDups"):
            if removed in kwargs:
                raise InvalidOperation(f"{removed}: dropDups was removed in MongoDB 3.0")
        if "bucket_size" in kwargs:
            kwargs["bucketSize"] = kwargs.pop("bucket_size")
        if name is None:
            name = _index_name(keys)
        check_str(name, "name")
        index: Dict[str, Any] = {"key": keys, "name": name}
        if unique:
            index["unique"] = True
        index.update(kwargs)
        yield from self.database._command({"createIndexes": self.name, "indexes": [index]})
        return name

    create_index = operation(_create_index)
    ensure_index = create_index

    def _drop_index(self, name: Any) -> Steps[None]:
        """Drop the index named ``name`` (or the one a key list such as ``[('a', 1)]`` names)."""
        if isinstance(name, (list, tuple)):
            name = _index_name(index_document(name))
        check_str(name, "name")
        yield from self.database._command({"dropIndexes": self.name, "index": name})

    drop_index = operation(_drop_index)

    def _index_information(self) -> Steps[Dict[str, Any]]:
        reply = yield from self.database._command({"listIndexes": self.name})
        return {ix["name"]: ix for ix in reply["cursor"]["firstBatch"]}

    index_information = operation(_index_information)

    def _drop(self) -> Steps[None]:
        yield from self.database._drop_collection(self.name)

    drop = operation(_drop)

    # -- the collection itself ------------------------------------------------------------

    def _rename(self, /, new_name: str, **kwargs: Any) -> Steps[Dict[str, Any]]:
        """Rename the collection (``renameCollection`` on ``admin``); ``dropTarget=True``
        replaces an existing one."""
        check_collection_name(new_name)
        command = {
            "renameCollection": self.full_name,
            "to": f"{self.database.name}.{new_name}",
            **kwargs,
        }
        reply: Dict[str, Any] = yield from self.database.connection["admin"]._command(command)
        return reply

    rename = operation(_rename)

    def _options(self) -> Steps[Dict[str, Any]]:
        """The options the collection was created with (``{}`` for none, or if it does not
        exist): ``capped``, ``size``, ``max``, ``validator``..."""
        reply = yield from self.database._command("listCollections", filter={"name": self.name})
        for info in reply["cursor"]["firstBatch"]:
            if info.get("name") == self.name:
                options = info.get("options", {})
                if not isinstance(options, Mapping):
                    where = replies.describe("listCollections", None)
                    raise replies.fail(where, "options", "must be a document")
                return dict(options)
        return {}

    options = operation(_options)

    def _drop_indexes(self) -> Steps[None]:
        """Drop every index but the one on ``_id``."""
        yield from self.database._command({"dropIndexes": self.name, "index": "*"})

    drop_indexes = operation(_drop_indexes)

    def _reindex(self) -> Steps[Dict[str, Any]]:
        """Rebuild every index (``reIndex``; MongoDB removed it for replica-set members in
        4.2+ and entirely in 6.0)."""
        return (yield from self.database._command({"reIndex": self.name}))

    reindex = operation(_reindex)

    # -- the bulk API ---------------------------------------------------------------------

    def initialize_ordered_bulk_op(self) -> BaseBulkOperationBuilder:
        """A bulk of writes run in order, stopping at the first error (``bulk.py``)."""
        return self._bulk_builder_class(self, ordered=True)

    def initialize_unordered_bulk_op(self) -> BaseBulkOperationBuilder:
        """A bulk of writes in any order, all attempted (``bulk.py``)."""
        return self._bulk_builder_class(self, ordered=False)

    # -- bulk_write -------------------------------------------------------------------------

    def _bulk_write(
        self,
        requests: Iterable[Any],
        ordered: bool = True,
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> Steps[BulkWriteResult]:
        """Run ``InsertOne``, ``UpdateOne``, ``UpdateMany``, ``ReplaceOne``, ``DeleteOne``
        and ``DeleteMany`` requests as one bulk (``bulk.py``); ``BulkWriteError`` when some
        fail."""
        _no_session(session)
        if isinstance(requests, (abc.Mapping, str, bytes)) or not isinstance(requests, Iterable):
            raise InvalidArgument(f"requests must be a list of requests, not {type_name(requests)}")
        bulk = Bulk(self, ordered, bypass_document_validation)
        for i, request in enumerate(requests):
            if not isinstance(request, _Request):
                raise InvalidArgument(
                    f"requests[{i}] must be InsertOne, UpdateOne, UpdateMany, ReplaceOne, "
                    f"DeleteOne or DeleteMany, not {type_name(request)}"
                )
            request._add_to(bulk)
        if not bulk.ops:
            raise InvalidOperation("bulk_write needs at least one request")
        result = yield from bulk.execute(self._settings.effective_write_concern())
        return BulkWriteResult(result, result is not None)

    bulk_write = operation(_bulk_write)


class Collection(BaseCollection[Cursor, AggregationCursor], Blocking):
    """``db['name']`` or ``db.name``; ``coll.sub`` is the collection ``name.sub``.

    ``read_preference``, ``tag_sets`` and ``write_concern`` are inherited from the database
    until set (``settings.py``)."""

    __slots__ = ()

    _cursor_class = Cursor
    _aggregation_cursor_class = AggregationCursor
    _bulk_builder_class = BulkOperationBuilder


class AsyncCollection(BaseCollection[AsyncCursor, AsyncAggregationCursor], Asynchronous):
    """``Collection`` for asyncio: the same methods, and those that talk to the server are
    coroutines (``await coll.insert_one(doc)``); ``find`` returns an ``AsyncCursor``
    (``async for doc in coll.find()``), ``aggregate`` a coroutine giving an
    ``AsyncAggregationCursor``."""

    __slots__ = ()

    _cursor_class = AsyncCursor
    _aggregation_cursor_class = AsyncAggregationCursor
    _bulk_builder_class = AsyncBulkOperationBuilder


__all__ = [
    "AsyncCollection",
    "BaseCollection",
    "Collection",
    "check_collection_name",
    "raise_write_errors",
]
