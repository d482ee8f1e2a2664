"""Collection's pymongo 4 names, on the same operation path as the 2.8 ones.

``insert_one``, ``insert_many``, ``update_one``, ``update_many``, ``replace_one``,
``delete_one``, ``delete_many`` (each returning its result object, ``results.py``),
``find_one_and_update`` / ``find_one_and_replace`` / ``find_one_and_delete`` (with
``ReturnDocument``), ``count_documents``, ``estimated_document_count``, ``bulk_write``
(with the request classes of ``operations.py``) and ``list_indexes``.

As in pymongo 4: ``update_one`` and ``update_many`` take only update operators (or a
pipeline) and ``replace_one`` only a replacement, each refused otherwise before anything is
sent; single writes raise ``DuplicateKeyError`` / ``OperationFailure`` for a write error,
``insert_many`` and ``bulk_write`` ``BulkWriteError``. Writes use the collection's write
concern (``write_concern``, inherited from the database and the connection). ``session``
arguments are accepted only as None: wireclient has no sessions.
"""

from __future__ import annotations

from collections import abc
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional

from bson import ObjectId

from wireclient.client.operations import ReturnDocument
from wireclient.client.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
    update_result_document,
)
from wireclient.errors import ConfigurationError, InvalidArgument, InvalidDocument, InvalidOperation
from wireclient.rules.arguments import (
    check_bool,
    check_document,
    check_int,
    check_mapping,
    encode,
    type_name,
)
from wireclient.rules.wire import INT32_MAX

if TYPE_CHECKING:
    from wireclient.client.collection import Collection
    from wireclient.client.cursor import Cursor
    from wireclient.client.database import Database
    from wireclient.rules.command import WriteConcern


def _no_session(session: Any) -> None:
    if session is not None:
        raise InvalidOperation("sessions are not supported by wireclient (session must be None)")


def _update_result(reply: Optional[Dict[str, Any]]) -> UpdateResult:
    if reply is None:
        return UpdateResult(None, False)
    return UpdateResult(update_result_document(reply), True)


class ModernCollection:
    """The pymongo 4 methods of ``Collection`` (see the module notes)."""

    __slots__ = ()

    if TYPE_CHECKING:
        database: Database
        name: str

        def _write(
            self,
            command: Dict[str, Any],
            field: str,
            documents: Any,
            safe: Optional[bool],
            w: Any,
            j: Optional[bool],
            wtimeout: Optional[int],
        ) -> Optional[Dict[str, Any]]: ...

        def _operation_read_preference(self) -> Any: ...

        def _effective_write_concern(self) -> WriteConcern: ...

        def _find_and_modify(self, command: Dict[str, Any]) -> Dict[str, Any]: ...

        def _shaped(self, value: Any) -> Any: ...

    def _self(self) -> Collection:
        return self  # type: ignore[return-value]

    def _command(self, name: str, bypass: bool) -> Dict[str, Any]:
        command: Dict[str, Any] = {name: self.name, "ordered": True}
        if check_bool(bypass, "bypass_document_validation"):
            command["bypassDocumentValidation"] = True
        return command

    # -- inserts --------------------------------------------------------------------------

    def insert_one(
        self,
        document: Mapping[str, Any],
        bypass_document_validation: bool = False,
        session: Any = None,
    ) -> InsertOneResult:
        """Insert ``document`` (an ``_id`` is added to it when missing)."""
        _no_session(session)
        check_mapping(document, "document")
        command = self._command("insert", bypass_document_validation)
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
        from wireclient.client.bulk import Bulk

        _no_session(session)
        if isinstance(documents, (abc.Mapping, str, bytes)) or not isinstance(documents, Iterable):
            raise InvalidArgument(
                f"documents must be a non-empty list of documents, not {type_name(documents)}"
            )
        bulk = Bulk(self._self(), ordered, bypass_document_validation)
        bulk.add_inserts(documents)
        if not bulk.ops:
            raise InvalidDocument("documents must be a non-empty list of documents")
        result = bulk.execute(self._effective_write_concern())
        return InsertManyResult(bulk.inserted_ids, result is not None)

    # -- updates and deletes ----------------------------------------------------------------

    def _update(
        self,
        filter: Any,
        update: Any,
        upsert: bool,
        multi: bool,
        replace: bool,
        bypass: bool,
        collation: Any,
        array_filters: Any,
        hint: Any,
        session: Any,
    ) -> UpdateResult:
        from wireclient.client.bulk import Bulk

        _no_session(session)
        probe = Bulk(self._self(), True)  # the checks and the statement of one operation
        if replace:
            probe.add_replace(filter, update, upsert, collation, hint)
        else:
            probe.add_update(filter, update, multi, upsert, collation, array_filters, hint)
        statement = probe.ops[0][2]
        command = self._command("update", bypass)
        reply = self._write(command, "updates", [statement], None, None, None, None)
        return _update_result(reply)

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
        return self._update(
            filter, update, upsert, False, False, bypass_document_validation,
            collation, array_filters, hint, session,
        )  # fmt: skip

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
        return self._update(
            filter, update, upsert, True, False, bypass_document_validation,
            collation, array_filters, hint, session,
        )  # fmt: skip

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
        return self._update(
            filter, replacement, upsert, False, True, bypass_document_validation,
            collation, None, hint, session,
        )  # fmt: skip

    def _delete(
        self, filter: Any, limit: int, collation: Any, hint: Any, session: Any
    ) -> DeleteResult:
        from wireclient.client.bulk import Bulk

        _no_session(session)
        probe = Bulk(self._self(), True)
        probe.add_delete(filter, limit, collation, hint)
        command = {"delete": self.name, "ordered": True}
        reply = self._write(command, "deletes", [probe.ops[0][2]], None, None, None, None)
        if reply is None:
            return DeleteResult(None, False)
        return DeleteResult({"ok": reply.get("ok"), "n": int(reply.get("n", 0))}, True)

    def delete_one(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> DeleteResult:
        """Delete the first document matching ``filter``."""
        return self._delete(filter, 1, collation, hint, session)

    def delete_many(
        self,
        filter: Mapping[str, Any],
        collation: Any = None,
        hint: Any = None,
        session: Any = None,
    ) -> DeleteResult:
        """Delete every document matching ``filter``."""
        return self._delete(filter, 0, collation, hint, session)

    # -- find one and modify it -------------------------------------------------------------

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
        from wireclient.client.find_options import projection_document
        from wireclient.rules.arguments import index_document

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
        from wireclient.client.bulk import check_replacement

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
        from wireclient.client.bulk import check_update_document

        change = {"update": check_update_document(update, "update")}
        return self._find_one_and(filter, change, projection, sort, return_document, upsert, kwargs)

    # -- counting and indexes ---------------------------------------------------------------

    def count_documents(self, filter: Mapping[str, Any], session: Any = None, **kwargs: Any) -> int:
        """How many documents match ``filter`` (an aggregation: exact, also in
        transactions). Keywords: ``skip``, ``limit``, ``maxTimeMS``, ``hint``,
        ``collation``, ``comment``."""
        from wireclient.client.cursor import Cursor

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
        cursor = Cursor(self._self(), _command=command)
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
        reply = self.database.command(command, read_preference=self._operation_read_preference())
        return int(reply["n"])

    def list_indexes(self, session: Any = None) -> Cursor:
        """A cursor over the collection's index documents (``listIndexes``)."""
        from wireclient.client.cursor import Cursor

        _no_session(session)
        return Cursor(self._self(), _command={"listIndexes": self.name})

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
        from wireclient.client.bulk import Bulk
        from wireclient.client.operations import _Request

        _no_session(session)
        if isinstance(requests, (abc.Mapping, str, bytes)) or not isinstance(requests, Iterable):
            raise InvalidArgument(f"requests must be a list of requests, not {type_name(requests)}")
        bulk = Bulk(self._self(), ordered, bypass_document_validation)
        for i, request in enumerate(requests):
            if not isinstance(request, _Request):
                raise InvalidArgument(
                    f"requests[{i}] must be InsertOne, UpdateOne, UpdateMany, ReplaceOne, "
                    f"DeleteOne or DeleteMany, not {type_name(request)}"
                )
            request._add_to(bulk)
        if not bulk.ops:
            raise InvalidOperation("bulk_write needs at least one request")
        result = bulk.execute(self._effective_write_concern())
        return BulkWriteResult(result, result is not None)


__all__ = ["ModernCollection"]
