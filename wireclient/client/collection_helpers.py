"""Collection's pymongo 2.8 helpers beyond insert / update / remove / find.

``aggregate`` (and the cursor it returns), ``find_and_modify``, ``map_reduce`` /
``inline_map_reduce``, ``rename``, ``options``, ``drop_indexes``, ``reindex`` and the
entry points of the bulk API (``initialize_ordered_bulk_op`` /
``initialize_unordered_bulk_op``; the API itself is ``bulk.py``). Like the rest of
``Collection`` they build command documents and run them on the operation path.

``aggregate``: pymongo 2.8 returned the result document (``{'result': [...], 'ok': 1.0}``)
unless ``cursor={}`` was given, pymongo 3 and 4 return a cursor, and current servers answer
an aggregate only with a cursor. ``aggregate`` therefore returns an ``AggregationCursor``:
a cursor (iterate it), which also answers 2.8's ``result['result']`` (every document,
fetched at once) and ``result['ok']``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

from bson.code import Code

from wireclient.client.cursor import Cursor
from wireclient.client.find_options import projection_document
from wireclient.errors import ConfigurationError, InvalidArgument, InvalidDocument, InvalidOperation
from wireclient.rules import replies
from wireclient.rules.arguments import (
    check_bool,
    check_document,
    check_int,
    check_str,
    index_document,
    type_name,
)
from wireclient.rules.command import raise_write_errors
from wireclient.rules.wire import INT32_MAX

if TYPE_CHECKING:
    from wireclient.client.bulk import BulkOperationBuilder
    from wireclient.client.collection import Collection
    from wireclient.client.database import Database
    from wireclient.rules.command import WriteConcern

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


class AggregationCursor(Cursor):
    """The cursor ``aggregate`` returns. Iterate it; or read 2.8's result document from
    it: ``cursor['result']`` (all the documents, fetched at once, before any iteration) and
    ``cursor['ok']``."""

    _result: Optional[List[Dict[str, Any]]] = None

    def __getitem__(self, key: Any) -> Any:
        if key == "result":
            if self._result is None:
                if self._started:
                    raise InvalidOperation(
                        "['result'] needs every document, but iteration has begun"
                    )
                self._result = list(self)
            return self._result
        if key == "ok":
            self["result"]  # the aggregate ran and succeeded
            return 1.0
        if isinstance(key, str):
            raise KeyError(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in ("result", "ok") else default

    def keys(self) -> List[str]:
        return ["result", "ok"]


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


class CollectionHelpers:
    """The pymongo 2.8 helpers of ``Collection`` (see the module notes)."""

    __slots__ = ()

    if TYPE_CHECKING:
        database: Database
        name: str
        full_name: str

        def _operation_read_preference(self) -> Any: ...

        def _effective_write_concern(self) -> WriteConcern: ...

        def __getitem__(self, name: str) -> Collection: ...

    def _self(self) -> Collection:
        return self  # type: ignore[return-value]

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
            return self.database.command(command, read_preference=self._operation_read_preference())
        writes = bool(stages) and next(iter(stages[-1])) in _WRITING_STAGES
        return AggregationCursor(
            self._self(),
            batch_size=batch_size,
            read_preference="primary" if writes else None,
            _command=command,
        )

    # -- findAndModify --------------------------------------------------------------------

    def _find_and_modify(self, command: Dict[str, Any]) -> Dict[str, Any]:
        """Run a findAndModify command (with the collection's write concern); raise its
        write concern error; return the reply, its ``value`` checked."""
        acknowledged, concern = self._effective_write_concern().resolve(None, None)
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
        from wireclient.client.settings import shaper

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
            from wireclient.client.bulk import check_replacement, check_update_document

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
        response = self.database.command(command, read_preference=self._operation_read_preference())
        if full_response:
            return response
        results = response.get("results")
        if not isinstance(results, list):
            raise replies.fail(replies.describe("mapReduce", None), "results", "must be an array")
        return results

    # -- the collection itself ------------------------------------------------------------

    def rename(self, new_name: str, **kwargs: Any) -> Dict[str, Any]:
        """Rename the collection (``renameCollection`` on ``admin``); ``dropTarget=True``
        replaces an existing one."""
        from wireclient.client.collection import check_collection_name

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
        from wireclient.client.bulk import BulkOperationBuilder

        return BulkOperationBuilder(self._self(), ordered=True)

    def initialize_unordered_bulk_op(self) -> BulkOperationBuilder:
        """A bulk of writes in any order, all attempted (``bulk.py``)."""
        from wireclient.client.bulk import BulkOperationBuilder

        return BulkOperationBuilder(self._self(), ordered=False)


__all__ = ["AggregationCursor", "CollectionHelpers"]
