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
statement through ``_update``, every delete (``remove``, ``delete_one``, ``delete_many``)
through ``_delete``, every findAndModify (``find_and_modify``, ``find_one_and_*``) through
``_find_and_modify``; the statements themselves are built and checked in ``bulk.py``, whose
``Bulk`` runs ``insert_many``, ``bulk_write`` and the 2.8 bulk API. As in pymongo 4,
``update_one`` and ``update_many`` take only update operators (or a pipeline) and
``replace_one`` only a replacement; 2.8's ``update`` takes either. Single writes raise
``DuplicateKeyError`` / ``OperationFailure`` for a write error, ``insert_many`` and
``bulk_write`` ``BulkWriteError``. ``session`` arguments are accepted only as None:
wireclient has no sessions.

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
"""

from __future__ import annotations

from collections import abc
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Union,
)

from bson import ObjectId
from bson.code import Code

from wireclient.client import settings
from wireclient.client.bulk import (
    Bulk,
    BulkOperationBuilder,
    check_replacement,
    check_update_document,
    delete_statement,
    legacy_update_statement,
    replacement_statement,
    update_statement,
)
from wireclient.client.cursor import AggregationCursor, Cursor, find_one_document
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
from wireclient.transport.blocking import run

if TYPE_CHECKING:
    from wireclient.client.database import Database

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


class Collection:
    """``db['name']`` or ``db.name``; ``coll.sub`` is the collection ``name.sub``.

    ``read_preference``, ``tag_sets`` and ``write_concern`` are inherited from the database
    until set (``settings.py``)."""

    __slots__ = ("database", "name", "full_name", "_settings")

    read_preference = settings.READ_PREFERENCE
    tag_sets = settings.TAG_SETS
    write_concern = settings.WRITE_CONCERN

    def __init__(self, database: Database, name: str, read_preference: Any = None) -> None:
        self.database = database
        self.name = check_collection_name(name)
        self.full_name = f"{database.name}.{name}"
        self._settings: Settings = Settings(database._settings, read_preference)

    def __getattr__(self, name: str) -> Collection:
        """``coll.sub``: the sub-collection ``name.sub``, unless ``sub`` is a pymongo 2.8
        name wireclient does not provide (``InvalidOperation``; see ``legacy.py``)."""
        if name.startswith("_") or hasattr(type(self), name):
            raise AttributeError(f"'Collection' object has no attribute {name!r}")
        refuse("Collection", name, "Collection")
        return self.database[f"{self.name}.{name}"]

    def __getitem__(self, name: str) -> Collection:
        return self.database[f"{self.name}.{name}"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parent, _, method = self.name.rpartition(".")
        raise not_callable("Collection", method, "Collection" if parent else "Database")

    def __iter__(self) -> Any:
        raise TypeError("'Collection' object is not iterable")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Collection):
            return self.database == other.database and self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.database, self.name))

    def __repr__(self) -> str:
        return f"Collection({self.database!r}, {self.name!r})"

    @property
    def connection(self) -> Any:
        return self.database.connection

    # -- writes -------------------------------------------------------------------------

    def insert(
        self,
        doc_or_docs: Union[Mapping[str, Any], Iterable[Mapping[str, Any]]],
        manipulate: bool = True,
        safe: Optional[bool] = None,
        check_keys: bool = True,
        continue_on_error: bool = False,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Any:
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
            self._write(command, "documents", encoded, safe, w, j, wtimeout)
        except (InvalidDocument, ConfigurationError):
            # Refused before anything was sent: the caller's documents are left as they were.
            for doc in added:
                doc.pop("_id", None)
            raise
        return ids[0] if single else ids

    def save(
        self,
        to_save: Mapping[str, Any],
        safe: Optional[bool] = None,
        manipulate: bool = True,
        check_keys: bool = True,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Any:
        """Insert a document without ``_id``, or replace (upsert) the one with its ``_id``.
        The options are ``insert``'s (``safe`` comes second, as it always has)."""
        check_mapping(to_save, "to_save")
        if "_id" not in to_save:
            return self.insert(to_save, manipulate, safe, check_keys, False, w, j, wtimeout)
        check_bool(manipulate, "manipulate")
        spec = {"_id": to_save["_id"]}
        self.update(spec, to_save, True, False, safe, w, j, wtimeout, check_keys)
        return to_save["_id"]

    def update(
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
    ) -> Optional[Dict[str, Any]]:
        """Update documents matching ``spec``; returns a result dict, None when unacknowledged.

        ``document`` is update operators (``{'$set': {...}}``) or a whole replacement, whose
        keys are checked (unless ``check_keys=False``) as an inserted document's are."""
        statement = legacy_update_statement(spec, document, upsert, multi, check_keys)
        return self._update(statement, False, safe, w, j, wtimeout)

    def remove(
        self,
        spec_or_id: Any = None,
        safe: Optional[bool] = None,
        multi: bool = True,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Optional[Dict[str, Any]]:
        """Remove matching documents (all with no spec); a result dict or None if unacknowledged."""
        check_bool(multi, "multi")
        if spec_or_id is None:
            spec: Mapping[str, Any] = {}
        elif isinstance(spec_or_id, abc.Mapping):
            spec = check_document(spec_or_id, "spec_or_id")
        else:
            spec = _id_spec(spec_or_id, "spec_or_id")
        statement = {"q": spec, "limit": 0 if multi else 1}
        return self._delete(statement, safe, w, j, wtimeout)

    def _write(
        self,
        command: Dict[str, Any],
        field: str,
        documents: Sequence[Any],
        safe: Optional[bool],
        w: Optional[Union[int, str]],
        j: Optional[bool],
        wtimeout: Optional[int],
    ) -> Optional[Dict[str, Any]]:
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
        return run(
            database.connection._executor.write(
                database.name, command, field, documents, not acknowledged
            )
        )

    def _update(
        self,
        statement: Any,
        bypass: bool,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Optional[Dict[str, Any]]:
        """Send one update statement (every update's last step); the result document,
        None when unacknowledged."""
        command: Dict[str, Any] = {"update": self.name, "ordered": True}
        if check_bool(bypass, "bypass_document_validation"):
            command["bypassDocumentValidation"] = True
        reply = self._write(command, "updates", [statement], safe, w, j, wtimeout)
        return None if reply is None else update_result_document(reply)

    def _delete(
        self,
        statement: Any,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Optional[Dict[str, Any]]:
        """Send one delete statement (every delete's last step); ``{'ok', 'n'}``, None when
        unacknowledged."""
        command = {"delete": self.name, "ordered": True}
        reply = self._write(command, "deletes", [statement], safe, w, j, wtimeout)
        if reply is None:
            return None
        return {"ok": reply.get("ok"), "n": int(reply.get("n", 0))}

    # -- pymongo 4 inserts ---------------------------------------------------------------------

    def insert_one(
        self,
        document: Mapping[str, Any],
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> InsertOneResult:
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
            reply = self._write(command, "documents", [data], None, None, None, None)
        except (InvalidDocument, ConfigurationError):
            if added:  # refused before anything was sent: the caller's document as it was
                document.pop("_id", None)  # type: ignore[union-attr]
            raise
        return InsertOneResult(document["_id"], reply is not None)

    def insert_many(
        self,
        documents: Iterable[Mapping[str, Any]],
        ordered: bool = True,
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> InsertManyResult:
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
        result = bulk.execute(self._settings.effective_write_concern())
        return InsertManyResult(bulk.inserted_ids, result is not None)

    # -- pymongo 4 updates and deletes ------------------------------------------------------

    def update_one(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        bypass_document_validation: bool = False,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> UpdateResult:
        """Update the first document matching ``filter`` (``update``: operators such as
        ``{'$set': ...}``, or a pipeline)."""
        _no_session(session)
        statement = update_statement(filter, update, False, upsert, collation, array_filters, hint)
        result = self._update(encode(statement, "update"), bypass_document_validation)
        return UpdateResult(result, result is not None)

    def update_many(
        self,
        filter: Mapping[str, Any],
        update: Any,
        upsert: bool = False,
        bypass_document_validation: bool = False,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> UpdateResult:
        """Update every document matching ``filter``."""
        _no_session(session)
        statement = update_statement(filter, update, True, upsert, collation, array_filters, hint)
        result = self._update(encode(statement, "update"), bypass_document_validation)
        return UpdateResult(result, result is not None)

    def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        bypass_document_validation: bool = False,
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> UpdateResult:
        """Replace the first document matching ``filter`` with ``replacement``."""
        _no_session(session)
        statement = replacement_statement(filter, replacement, upsert, collation, hint)
        result = self._update(encode(statement, "replacement"), bypass_document_validation)
        return UpdateResult(result, result is not None)

    def _delete_one_or_many(
        self, filter: Any, limit: int, collation: Any, hint: Any, session: Any
    ) -> DeleteResult:
        _no_session(session)
        statement = delete_statement(filter, limit, collation, hint)
        result = self._delete(encode(statement, "filter"))
        return DeleteResult(result, result is not None)

    def delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> DeleteResult:
        """Delete the first document matching ``filter``."""
        return self._delete_one_or_many(filter, 1, collation, hint, session)

    def delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> DeleteResult:
        """Delete every document matching ``filter``."""
        return self._delete_one_or_many(filter, 0, collation, hint, session)

    # -- reads --------------------------------------------------------------------------

    def find(self, *args: Any, **kwargs: Any) -> Cursor:
        """``find(spec=None, fields=None, skip=0, limit=0, sort=None, batch_size=0, ...)``."""
        return Cursor(self, *args, **kwargs)

    def find_one(
        self, spec_or_id: Any = None, *args: Any, **kwargs: Any
    ) -> Optional[Dict[str, Any]]:
        if spec_or_id is not None and not isinstance(spec_or_id, abc.Mapping):
            spec_or_id = _id_spec(spec_or_id, "spec_or_id")
        if not args and not kwargs:  # the usual find_one(spec): no cursor object needed
            return find_one_document(self, spec_or_id)
        for doc in self.find(spec_or_id, *args, **kwargs).limit(-1):
            return doc
        return None

    def count(self, spec: Optional[Mapping[str, Any]] = None) -> int:
        return self.find(spec).count()

    def distinct(self, key: str, spec: Optional[Mapping[str, Any]] = None) -> List[Any]:
        check_str(key, "key")
        if spec is not None:
            check_document(spec, "spec")
        command: Dict[str, Any] = {"distinct": self.name, "key": key}
        if spec:
            command["query"] = spec
        reply = self.database.command(
            command, read_preference=self._settings.operation_read_preference()
        )
        return list(reply["values"])  # an array, checked on the path (replies.check)

    # -- pymongo 4: counting and indexes -------------------------------------------------------

    def count_documents(self, filter: Mapping[str, Any], session: Any = None, **kwargs: Any) -> int:
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
        cursor = Cursor(self, _command=command)
        for doc in cursor:
            return int(doc["n"])
        return 0

    def estimated_document_count(self, **kwargs: Any) -> int:
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
        reply = self.database.command(
            command, read_preference=self._settings.operation_read_preference()
        )
        return int(reply["n"])

    def list_indexes(self, session: Any = None) -> Cursor:
        """A cursor over the collection's index documents (``listIndexes``)."""
        _no_session(session)
        return Cursor(self, _command={"listIndexes": self.name})

    # -- aggregate ------------------------------------------------------------------------

    def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], batch_size: int = 0, **kwargs: Any
    ) -> Any:
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
            return self.database.command(
                command, read_preference=self._settings.operation_read_preference()
            )
        writes = bool(stages) and next(iter(stages[-1])) in _WRITING_STAGES
        return AggregationCursor(
            self,
            batch_size=batch_size,
            read_preference="primary" if writes else None,
            _command=command,
        )

    # -- findAndModify --------------------------------------------------------------------

    def _find_and_modify(self, command: Dict[str, Any]) -> Dict[str, Any]:
        """Run a findAndModify command (with the collection's write concern); raise its
        write concern error; return the reply, its ``value`` checked."""
        acknowledged, concern = self._settings.effective_write_concern().resolve(None, None)
        if concern is not None and acknowledged and "writeConcern" not in command:
            command["writeConcern"] = concern
        reply = self.database.command(command)
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

    def find_and_modify(
        self,
        query: Optional[Mapping[str, Any]] = None,
        update: Optional[Mapping[str, Any]] = None,
        upsert: bool = False,
        sort: Any = None,
        full_response: bool = False,
        manipulate: bool = False,
        **kwargs: Any,
    ) -> Any:
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
        reply = self._find_and_modify(command)
        if full_response:
            return reply
        return self._shaped(reply.get("value"))

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
    ) -> Any:
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
        return self._shaped(self._find_and_modify(command).get("value"))

    def find_one_and_delete(
        self, filter: Mapping[str, Any], projection: Any = None, sort: Any = None, **kwargs: Any
    ) -> Any:
        """Delete the first document matching ``filter`` (by ``sort``) and return it."""
        return self._find_one_and(filter, {"remove": True}, projection, sort, None, None, kwargs)

    def find_one_and_replace(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Any:
        """Replace the first document matching ``filter``; the document before the change
        (``return_document=ReturnDocument.AFTER``: after it), or None."""
        change = {"update": check_replacement(replacement, "replacement")}
        return self._find_one_and(filter, change, projection, sort, return_document, upsert, kwargs)

    def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Any:
        """Update the first document matching ``filter``; the document before the change
        (``return_document=ReturnDocument.AFTER``: after it), or None."""
        change = {"update": check_update_document(update, "update")}
        return self._find_one_and(filter, change, projection, sort, return_document, upsert, kwargs)

    # -- map-reduce -----------------------------------------------------------------------

    def map_reduce(
        self, map: Any, reduce: Any, out: Any, full_response: bool = False, **kwargs: Any
    ) -> Any:
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
        response = self.database.command(command)
        result = response.get("result")
        if full_response or not result:
            return response
        if isinstance(result, Mapping):
            dbname = check_str(result.get("db"), "the reply's result.db")
            collection = check_str(result.get("collection"), "the reply's result.collection")
            return self.database.connection[dbname][collection]
        return self.database[check_str(result, "the reply's result")]

    def inline_map_reduce(
        self, map: Any, reduce: Any, full_response: bool = False, **kwargs: Any
    ) -> Any:
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
        response = self.database.command(
            command, read_preference=self._settings.operation_read_preference()
        )
        if full_response:
            return response
        results = response.get("results")
        if not isinstance(results, list):
            raise replies.fail(replies.describe("mapReduce", None), "results", "must be an array")
        return results

    # -- indexes and the collection itself ----------------------------------------------

    def create_index(
        self, key_or_list: Any, unique: bool = False, name: Optional[str] = None, **kwargs: Any
    ) -> str:
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
        self.database.command({"createIndexes": self.name, "indexes": [index]})
        return name

    ensure_index = create_index

    def drop_index(self, name: Any) -> None:
        """Drop the index named ``name`` (or the one a key list such as ``[('a', 1)]`` names)."""
        if isinstance(name, (list, tuple)):
            name = _index_name(index_document(name))
        check_str(name, "name")
        self.database.command({"dropIndexes": self.name, "index": name})

    def index_information(self) -> Dict[str, Any]:
        reply = self.database.command({"listIndexes": self.name})
        return {ix["name"]: ix for ix in reply["cursor"]["firstBatch"]}

    def drop(self) -> None:
        self.database.drop_collection(self.name)

    # -- the collection itself ------------------------------------------------------------

    def rename(self, new_name: str, **kwargs: Any) -> Dict[str, Any]:
        """Rename the collection (``renameCollection`` on ``admin``); ``dropTarget=True``
        replaces an existing one."""
        check_collection_name(new_name)
        command = {
            "renameCollection": self.full_name,
            "to": f"{self.database.name}.{new_name}",
            **kwargs,
        }
        return self.database.connection["admin"].command(command)

    def options(self) -> Dict[str, Any]:
        """The options the collection was created with (``{}`` for none, or if it does not
        exist): ``capped``, ``size``, ``max``, ``validator``..."""
        reply = self.database.command("listCollections", filter={"name": self.name})
        for info in reply["cursor"]["firstBatch"]:
            if info.get("name") == self.name:
                options = info.get("options", {})
                if not isinstance(options, Mapping):
                    where = replies.describe("listCollections", None)
                    raise replies.fail(where, "options", "must be a document")
                return dict(options)
        return {}

    def drop_indexes(self) -> None:
        """Drop every index but the one on ``_id``."""
        self.database.command({"dropIndexes": self.name, "index": "*"})

    def reindex(self) -> Dict[str, Any]:
        """Rebuild every index (``reIndex``; MongoDB removed it for replica-set members in
        4.2+ and entirely in 6.0)."""
        return self.database.command({"reIndex": self.name})

    # -- the bulk API ---------------------------------------------------------------------

    def initialize_ordered_bulk_op(self) -> BulkOperationBuilder:
        """A bulk of writes run in order, stopping at the first error (``bulk.py``)."""
        return BulkOperationBuilder(self, ordered=True)

    def initialize_unordered_bulk_op(self) -> BulkOperationBuilder:
        """A bulk of writes in any order, all attempted (``bulk.py``)."""
        return BulkOperationBuilder(self, ordered=False)

    # -- bulk_write -------------------------------------------------------------------------

    def bulk_write(
        self,
        requests: Iterable[Any],
        ordered: bool = True,
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> BulkWriteResult:
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
        result = bulk.execute(self._settings.effective_write_concern())
        return BulkWriteResult(result, result is not None)


__all__ = ["Collection", "check_collection_name", "raise_write_errors"]
