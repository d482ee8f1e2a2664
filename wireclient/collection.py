"""Collection: CRUD as write commands (insert / update / delete) and cursors for reads.

A collection builds command documents and hands them to the connection's operation path
(``executor.py``); it never touches a pool or a socket. Writes are acknowledged unless the
caller says ``safe=False`` or ``w=0``: then the command goes out as an OP_MSG with
``moreToCome`` and no reply is read. Inserted documents are validated and encoded here
before anything is sent (keys); the path checks their size against the server's limits and
splits them into batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import bson
from bson import ObjectId
from bson.errors import BSONError

from wireclient.command import raise_write_errors
from wireclient.cursor import Cursor, index_document
from wireclient.errors import ConfigurationError, InvalidDocument

if TYPE_CHECKING:
    from wireclient.database import Database


def check_collection_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ConfigurationError(f"collection name must be a string, not {type(name).__name__}")
    if not name or ".." in name or name.startswith(".") or name.endswith("."):
        raise ConfigurationError(f"invalid collection name {name!r}")
    if "$" in name and not name.startswith("oplog.$main") and not name.startswith("$cmd"):
        raise ConfigurationError(f"collection names must not contain '$': {name!r}")
    if "\x00" in name:
        raise ConfigurationError("collection names must not contain the null character")
    return name


__all__ = ["Collection", "check_collection_name", "raise_write_errors"]


class Collection:
    """``db['name']`` or ``db.name``; ``coll.sub`` is the collection ``name.sub``."""

    __slots__ = ("database", "name", "full_name", "read_preference")

    def __init__(self, database: Database, name: str, read_preference: Any = None) -> None:
        self.database = database
        self.name = check_collection_name(name)
        self.full_name = f"{database.name}.{name}"
        self.read_preference = (
            read_preference if read_preference is not None else database.read_preference
        )

    def __getattr__(self, name: str) -> Collection:
        if name.startswith("_"):
            raise AttributeError(name)
        return Collection(self.database, f"{self.name}.{name}")

    def __getitem__(self, name: str) -> Collection:
        return Collection(self.database, f"{self.name}.{name}")

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
        single = isinstance(doc_or_docs, Mapping)
        docs: List[Any] = [doc_or_docs] if single else list(doc_or_docs)
        if not docs:
            raise InvalidDocument("cannot insert an empty list of documents")
        for doc in docs:
            if not isinstance(doc, Mapping):
                raise InvalidDocument(f"documents must be mappings, not {type(doc).__name__}")
            if manipulate and "_id" not in doc:
                doc["_id"] = ObjectId()  # type: ignore[index]
        encoded = [self._encode(doc, check_keys) for doc in docs]
        command: Dict[str, Any] = {"insert": self.name, "ordered": not continue_on_error}
        self._write(command, "documents", encoded, safe, w, j, wtimeout)
        ids = [doc.get("_id") for doc in docs]
        return ids[0] if single else ids

    def save(self, to_save: Mapping[str, Any], safe: Optional[bool] = None, **kwargs: Any) -> Any:
        """Insert a document without ``_id``, or replace (upsert) the one with its ``_id``."""
        if "_id" not in to_save:
            return self.insert(to_save, safe=safe, **kwargs)
        self.update({"_id": to_save["_id"]}, to_save, upsert=True, safe=safe, **kwargs)
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
    ) -> Optional[Dict[str, Any]]:
        """Update documents matching ``spec``; returns a result dict, None when unacknowledged."""
        if not isinstance(spec, Mapping):
            raise InvalidDocument("spec must be a mapping")
        if not isinstance(document, Mapping):
            raise InvalidDocument("document must be a mapping")
        first = next(iter(document), None)
        if first is not None and not str(first).startswith("$"):
            self._encode(document, True)  # a replacement: its keys are checked
        statement = {"q": spec, "u": document, "upsert": bool(upsert), "multi": bool(multi)}
        command = {"update": self.name, "ordered": True}
        reply = self._write(command, "updates", [statement], safe, w, j, wtimeout)
        if reply is None:
            return None
        n = int(reply.get("n", 0))
        result: Dict[str, Any] = {
            "ok": reply.get("ok"),
            "n": n,
            "nModified": reply.get("nModified", 0),
            "updatedExisting": n > 0 and not reply.get("upserted"),
        }
        upserted = reply.get("upserted")
        if upserted:
            result["upserted"] = upserted[0].get("_id")
        return result

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
        if spec_or_id is None:
            spec: Mapping[str, Any] = {}
        elif isinstance(spec_or_id, Mapping):
            spec = spec_or_id
        else:
            spec = {"_id": spec_or_id}
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
        acknowledged, wc = conn._write_concern.resolve(safe, w, j, wtimeout)
        if wc is not None:
            command["writeConcern"] = wc
        reply: Optional[Dict[str, Any]] = conn._executor.write(
            self.database.name, command, field, documents, not acknowledged
        )
        return reply

    @staticmethod
    def _encode(doc: Mapping[str, Any], check_keys: bool) -> bytes:
        try:
            data: bytes = bson.encode(doc, check_keys)
        except (BSONError, TypeError, ValueError, OverflowError) as exc:
            raise InvalidDocument(str(exc)) from exc
        return data

    # -- reads --------------------------------------------------------------------------

    def find(self, *args: Any, **kwargs: Any) -> Cursor:
        """``find(spec=None, fields=None, skip=0, limit=0, sort=None, batch_size=0, ...)``."""
        return Cursor(self, *args, **kwargs)

    def find_one(
        self, spec_or_id: Any = None, *args: Any, **kwargs: Any
    ) -> Optional[Dict[str, Any]]:
        if spec_or_id is not None and not isinstance(spec_or_id, Mapping):
            spec_or_id = {"_id": spec_or_id}
        for doc in self.find(spec_or_id, *args, **kwargs).limit(-1):
            return doc
        return None

    def count(self, spec: Optional[Mapping[str, Any]] = None) -> int:
        return self.find(spec).count()

    def distinct(self, key: str, spec: Optional[Mapping[str, Any]] = None) -> List[Any]:
        command: Dict[str, Any] = {"distinct": self.name, "key": key}
        if spec:
            command["query"] = spec
        reply = self.database.command(command, read_preference=self.read_preference)
        return list(reply["values"])  # an array, checked on the path (replies.check)

    def aggregate(self, pipeline: Sequence[Mapping[str, Any]], batch_size: int = 0) -> Cursor:
        """Run an aggregation pipeline; returns a cursor over the results."""
        return Cursor(self, _pipeline=list(pipeline), batch_size=batch_size)

    # -- indexes and the collection itself ----------------------------------------------

    def create_index(
        self, key_or_list: Any, unique: bool = False, name: Optional[str] = None, **kwargs: Any
    ) -> str:
        keys = index_document(key_or_list)
        if name is None:
            name = "_".join(f"{k}_{v}" for k, v in keys.items())
        index: Dict[str, Any] = {"key": keys, "name": name}
        if unique:
            index["unique"] = True
        index.update(kwargs)
        self.database.command({"createIndexes": self.name, "indexes": [index]})
        return name

    ensure_index = create_index

    def drop_index(self, name: str) -> None:
        self.database.command({"dropIndexes": self.name, "index": name})

    def index_information(self) -> Dict[str, Any]:
        reply = self.database.command({"listIndexes": self.name})
        return {ix["name"]: ix for ix in reply["cursor"]["firstBatch"]}

    def drop(self) -> None:
        self.database.drop_collection(self.name)
