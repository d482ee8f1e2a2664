"""Collection: CRUD as write commands (insert / update / delete) and cursors for reads.

A collection builds command documents and hands them to the connection's operation path
(``executor.py``); it never touches a pool or a socket. Writes are acknowledged unless the
caller says ``safe=False`` or ``w=0``: then the command goes out as an OP_MSG with
``moreToCome`` and no reply is read. Inserted documents are validated and encoded here
before anything is sent (keys); the path checks their size against the server's limits and
splits them into batches.

Every public method checks its arguments first (``wireclient.rules.arguments``): a bad one raises
a typed error naming it and nothing is sent. ``insert`` adds ``_id`` to the caller's
documents only once they pass; if the insert is refused before anything is sent (a bad
document, a bad write concern, a document over the server's size limit), the ``_id``s it
added are taken out again.
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

from wireclient.client.collection_helpers import CollectionHelpers
from wireclient.client.collection_modern import ModernCollection
from wireclient.client.cursor import Cursor, find_one_document
from wireclient.client.legacy import not_callable, refuse
from wireclient.client.object_ids import object_ids
from wireclient.client.results import update_result_document
from wireclient.client.settings import InheritedSettings
from wireclient.errors import (
    ConfigurationError,
    DocumentTypeError,
    InvalidArgument,
    InvalidDocument,
    InvalidOperation,
)
from wireclient.rules.arguments import (
    check_bool,
    check_document,
    check_mapping,
    check_str,
    encode,
    encode_many,
    index_document,
    type_name,
)
from wireclient.rules.command import raise_write_errors
from wireclient.sdam.read_preferences import check_read_preference

if TYPE_CHECKING:
    from wireclient.client.database import Database
    from wireclient.rules.command import WriteConcern


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


def _check_update(document: Mapping[str, Any], check_keys: bool) -> None:
    """An update document is all operators (``$set``: a document each) or a replacement
    (no ``$`` key, keys checked as an inserted document's are); the server refuses a mix."""
    keys = list(document)
    operators = [k for k in keys if isinstance(k, str) and k.startswith("$")]
    if not operators:
        encode(document, "document", check_keys)
        return
    if len(operators) != len(keys):
        field = next(k for k in keys if k not in operators)
        raise InvalidDocument(
            f"document mixes update operators ({operators[0]!r}) with a field ({field!r}): "
            "use either operators such as $set, or a whole replacement document"
        )
    for operator in operators:
        check_mapping(document[operator], f"document[{operator!r}]")
    encode(document, "document")


def _index_name(keys: Mapping[str, Any]) -> str:
    return "_".join(f"{k}_{v}" for k, v in keys.items())


__all__ = ["Collection", "check_collection_name", "raise_write_errors"]


class Collection(CollectionHelpers, ModernCollection, InheritedSettings):
    """``db['name']`` or ``db.name``; ``coll.sub`` is the collection ``name.sub``.

    The pymongo 2.8 helpers beyond CRUD are in ``collection_helpers.py``, the pymongo 4
    names in ``collection_modern.py``; ``read_preference``, ``tag_sets`` and
    ``write_concern`` are inherited from the database until set (``settings.py``)."""

    __slots__ = ("database", "name", "full_name", "_read_preference", "_write_concern")

    def __init__(self, database: Database, name: str, read_preference: Any = None) -> None:
        self.database = database
        self.name = check_collection_name(name)
        self.full_name = f"{database.name}.{name}"
        self._read_preference = check_read_preference(read_preference)
        self._write_concern: Optional[WriteConcern] = None

    def _settings_parent(self) -> Any:
        return self.database

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
        check_bool(manipulate, "manipulate")
        check_bool(check_keys, "check_keys")
        check_bool(continue_on_error, "continue_on_error")
        added: List[MutableMapping[str, Any]] = []  # the caller's documents given an _id here
        try:
            if manipulate:
                missing = [i for i, doc in enumerate(docs) if "_id" not in doc]
                for i, new_id in zip(missing, object_ids(len(missing))):
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
        check_document(spec, "spec")
        check_mapping(document, "document")
        check_bool(upsert, "upsert")
        check_bool(multi, "multi")
        _check_update(document, check_bool(check_keys, "check_keys"))
        statement = {"q": spec, "u": document, "upsert": bool(upsert), "multi": bool(multi)}
        command = {"update": self.name, "ordered": True}
        reply = self._write(command, "updates", [statement], safe, w, j, wtimeout)
        return None if reply is None else update_result_document(reply)

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
        command = {"delete": self.name, "ordered": True}
        reply = self._write(command, "deletes", [statement], safe, w, j, wtimeout)
        if reply is None:
            return None
        return {"ok": reply.get("ok"), "n": int(reply.get("n", 0))}

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
        conn = self.database.connection
        acknowledged, wc = self._effective_write_concern().resolve(safe, w, j, wtimeout)
        if wc is not None:
            command["writeConcern"] = wc
        reply: Optional[Dict[str, Any]] = conn._executor.write(
            self.database.name, command, field, documents, not acknowledged
        )
        return reply

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
        reply = self.database.command(command, read_preference=self._operation_read_preference())
        return list(reply["values"])  # an array, checked on the path (replies.check)

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
