"""Bulk writes: pymongo 2.8's bulk API, and the engine ``bulk_write`` / ``insert_many`` share;
and the write statements every update and delete is made of.

Statements: an update (``update_statement``: operators or a pipeline), a replacement
(``replacement_statement``), 2.8's ``update`` (``legacy_update_statement``: either, with
``check_keys``) and a delete (``delete_statement``), each checked as it is built. A bulk
adds them to its operations; ``Collection``'s single writes (``update``, ``update_one``,
``update_many``, ``replace_one``, ``save``, ``remove``, ``delete_one``, ``delete_many``)
send one of them; ``find_and_modify`` and ``find_one_and_*`` check their update or
replacement with the same functions.

The 2.8 API::

    bulk = coll.initialize_ordered_bulk_op()      # or initialize_unordered_bulk_op()
    bulk.insert({'a': 1})
    bulk.find({'a': 1}).update_one({'$set': {'b': 1}})
    bulk.find({'a': 2}).upsert().replace_one({'a': 2, 'b': 2})
    bulk.find({'a': 3}).remove()
    result = bulk.execute()                       # or execute({'w': 'majority'})

``Bulk`` checks each operation as it is added (nothing is sent before ``execute``). At
``execute`` the operations go out as insert / update / delete write commands: an ordered
bulk sends runs of consecutive operations of one kind, in order, and stops at the first
write error; an unordered one sends all inserts, then all updates, then all deletes, and
goes on past errors. Each command is split by the server's limits (``maxWriteBatchSize``,
``maxMessageSizeBytes``; a document over ``maxBsonObjectSize`` is refused before anything
is sent), read from the primary's handshake (``Connection._server_hello``). Every batch goes through
``Executor.run`` with its documents in an OP_MSG kind-1 sequence, so the whole reply comes
back (``Executor.write`` raises the first write error instead, and a bulk must report all of
them with their indexes).

The result is 2.8's document: ``nInserted``, ``nUpserted``, ``nMatched``, ``nModified``,
``nRemoved``, ``upserted`` (``[{index, _id}]``), ``writeErrors`` (each with the ``index`` of
its operation in the bulk and the operation as ``op``) and ``writeConcernErrors``. Any error
raises ``BulkWriteError`` with that document as ``details``; an unacknowledged bulk
(``w=0``) returns None.

``Bulk.execute`` is a step (``transport/steps.py``), and so is the builder's ``execute``:
``BaseBulkOperationBuilder`` writes it once, and ``BulkOperationBuilder`` (blocking, what
``Collection`` hands out) and ``AsyncBulkOperationBuilder`` (``await bulk.execute()``, what
``AsyncCollection`` hands out) are its two flavours (``transport/flavours.py``). Adding
operations sends nothing, so ``BulkWriteOperation`` and ``BulkUpsertOperation`` serve both.
"""

from __future__ import annotations

from collections import abc
from itertools import repeat
from operator import itemgetter
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from wireclient import protocol
from wireclient.client.object_ids import id_stream, object_ids
from wireclient.errors import BulkWriteError, InvalidDocument, InvalidOperation
from wireclient.protocol._common import _DEFAULT_OPTS, _dict_to_bson
from wireclient.rules.arguments import (
    ENCODE_ERRORS,
    check_bool,
    check_document,
    check_mapping,
    encode,
    type_name,
)
from wireclient.rules.command import WriteConcern
from wireclient.rules.limits import check_size, split
from wireclient.rules.wire import (
    COMMAND_OVERHEAD,
    DEFAULT_MAX_BSON_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_WRITE_BATCH_SIZE,
)
from wireclient.transport.flavours import Asynchronous, Blocking, operation
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from wireclient.client.collection import BaseCollection

_COMMANDS = {"insert": "documents", "update": "updates", "delete": "deletes"}
_ORDER = ("insert", "update", "delete")
_KIND = itemgetter(0)  # of an operation (kind, what is sent, op)
_DATA = itemgetter(1)
_ID = itemgetter("_id")
_DICTS_ONLY = {dict}


def check_update_document(document: Any, name: str) -> Any:
    """An update: a document of operators (``{'$set': {...}}``) or a pipeline (a list of
    stages), never a replacement."""
    if isinstance(document, (list, tuple)):
        for i, stage in enumerate(document):
            check_document(stage, f"{name}[{i}]")
        return list(document)
    check_mapping(document, name)
    if not document:
        raise InvalidDocument(f"{name} must not be empty")
    for key in document:
        if not (isinstance(key, str) and key.startswith("$")):
            raise InvalidDocument(
                f"{name} must contain only update operators such as $set, not {key!r} "
                "(to replace a whole document use replace_one)"
            )
        check_mapping(document[key], f"{name}[{key!r}]")
    encode(document, name)
    return document


def check_replacement(document: Any, name: str) -> Mapping[str, Any]:
    """A replacement document: no operators; keys checked as an inserted document's."""
    check_mapping(document, name)
    for key in document:
        if isinstance(key, str) and key.startswith("$"):
            raise InvalidDocument(
                f"{name} must not contain update operators such as {key!r} (use update_one)"
            )
    encode(document, name, True)
    return document  # type: ignore[no-any-return]


def _optional(statement: Dict[str, Any], collation: Any, array_filters: Any, hint: Any) -> None:
    if collation is not None:
        statement["collation"] = check_document(collation, "collation")
    if array_filters is not None:
        if not isinstance(array_filters, (list, tuple)):
            raise InvalidDocument(f"array_filters must be a list, not {type_name(array_filters)}")
        statement["arrayFilters"] = [
            check_document(f, f"array_filters[{i}]") for i, f in enumerate(array_filters)
        ]
    if hint is not None:
        from wireclient.rules.arguments import index_document

        statement["hint"] = hint if isinstance(hint, str) else index_document(hint)


def update_statement(
    selector: Any,
    update: Any,
    multi: bool,
    upsert: bool = False,
    collation: Any = None,
    array_filters: Any = None,
    hint: Any = None,
) -> Dict[str, Any]:
    """An update statement: ``update`` is operators or a pipeline (pymongo 4's rule)."""
    statement = {
        "q": check_document(selector, "filter"),
        "u": check_update_document(update, "update"),
        "multi": check_bool(multi, "multi"),
        "upsert": check_bool(upsert, "upsert"),
    }
    _optional(statement, collation, array_filters, hint)
    return statement


def replacement_statement(
    selector: Any, replacement: Any, upsert: bool = False, collation: Any = None, hint: Any = None
) -> Dict[str, Any]:
    """A replacement statement: ``replacement`` is a whole document, no operators."""
    statement = {
        "q": check_document(selector, "filter"),
        "u": check_replacement(replacement, "replacement"),
        "multi": False,
        "upsert": check_bool(upsert, "upsert"),
    }
    _optional(statement, collation, None, hint)
    return statement


def legacy_update_statement(
    spec: Any, document: Any, upsert: bool, multi: bool, check_keys: bool
) -> Dict[str, Any]:
    """pymongo 2.8's ``update``: ``document`` is update operators (``$set``: a document
    each) or a replacement (no ``$`` key, keys checked as an inserted document's are,
    unless ``check_keys=False``); the server refuses a mix."""
    check_document(spec, "spec")
    check_mapping(document, "document")
    check_bool(upsert, "upsert")
    check_bool(multi, "multi")
    check_keys = check_bool(check_keys, "check_keys")
    keys = list(document)
    operators = [k for k in keys if isinstance(k, str) and k.startswith("$")]
    if not operators:
        encode(document, "document", check_keys)
    else:
        if len(operators) != len(keys):
            field = next(k for k in keys if k not in operators)
            raise InvalidDocument(
                f"document mixes update operators ({operators[0]!r}) with a field ({field!r}): "
                "use either operators such as $set, or a whole replacement document"
            )
        for operator in operators:
            check_mapping(document[operator], f"document[{operator!r}]")
        encode(document, "document")
    return {"q": spec, "u": document, "upsert": upsert, "multi": multi}


def delete_statement(
    selector: Any, limit: int, collation: Any = None, hint: Any = None
) -> Dict[str, Any]:
    statement = {"q": check_document(selector, "filter"), "limit": limit}
    _optional(statement, collation, None, hint)
    return statement


class Bulk:
    """The operations of one bulk write and their execution (see the module notes)."""

    def __init__(
        self, collection: BaseCollection[Any, Any], ordered: bool, bypass: bool = False
    ) -> None:
        self.collection = collection
        self.ordered = check_bool(ordered, "ordered")
        self.bypass = check_bool(bypass, "bypass_document_validation")
        # (kind, what is sent, the operation as BulkWriteError's `op` shows it)
        self.ops: List[Tuple[str, Any, Mapping[str, Any]]] = []
        self.executed = False
        self.inserted_ids: List[Any] = []

    # -- adding operations ----------------------------------------------------------------

    def add_insert(self, document: Any) -> None:
        self.add_inserts((document,))

    def add_inserts(self, documents: Iterable[Any]) -> None:
        """``add_insert`` for each document in turn (one loop, no call per document: the
        path of ``insert_many``). A document refused stops the loop; those before it stay
        added, with the ``_id`` each was given."""
        if documents.__class__ in (list, tuple) and documents:
            docs: Sequence[Any] = documents
            if set(map(type, docs)) == _DICTS_ONLY:  # the usual insert_many(list of dicts)
                self._add_dicts(docs)
                return
        append_op = self.ops.append
        append_id = self.inserted_ids.append
        new_ids = id_stream(len(documents) if isinstance(documents, abc.Sized) else 16)
        for document in documents:
            if document.__class__ is not dict:
                check_mapping(document, "document")
            if "_id" not in document:
                if document.__class__ is dict or isinstance(document, abc.MutableMapping):
                    document["_id"] = next(new_ids)
                else:  # read-only (a RawBSONDocument): send a copy with an _id
                    document = {"_id": next(new_ids), **document}
            try:
                data = _dict_to_bson(document, True, _DEFAULT_OPTS)
            except ENCODE_ERRORS:
                encode(document, "document", True)  # raises the error that names it
                raise
            append_op(("insert", data, document))
            append_id(document["_id"])

    def _add_dicts(self, docs: Sequence[Dict[str, Any]]) -> None:
        """``add_inserts`` for a list of plain dicts, a step at a time over all of them
        (``_id``s in one block, then one encoding loop) rather than a document at a time;
        a refused document leaves things as the loop would: those before it added, and no
        ``_id`` given to those after it."""
        missing = [doc for doc in docs if "_id" not in doc]
        for doc, new_id in zip(missing, object_ids(len(missing))):
            doc["_id"] = new_id
        try:
            encoded = [_dict_to_bson(doc, True, _DEFAULT_OPTS) for doc in docs]
        except ENCODE_ERRORS:
            self._add_dicts_until_refused(docs, missing)
            raise
        self.ops.extend(zip(repeat("insert"), encoded, docs))
        self.inserted_ids.extend(map(_ID, docs))

    def _add_dicts_until_refused(
        self, docs: Sequence[Dict[str, Any]], given: List[Dict[str, Any]]
    ) -> None:
        """Add the documents before the first one bson refuses, take back the ``_id`` given
        to those after it, and raise ``encode``'s error naming it."""
        for index, doc in enumerate(docs):
            try:
                data = _dict_to_bson(doc, True, _DEFAULT_OPTS)
            except ENCODE_ERRORS:
                reached = {id(seen) for seen in docs[: index + 1]}
                for later in given:
                    if id(later) not in reached:
                        later.pop("_id", None)
                encode(doc, "document", True)  # raises the error that names it
                raise
            self.ops.append(("insert", data, doc))
            self.inserted_ids.append(doc["_id"])

    def add_update(
        self,
        selector: Any,
        update: Any,
        multi: bool,
        upsert: bool = False,
        collation: Any = None,
        array_filters: Any = None,
        hint: Any = None,
    ) -> None:
        statement = update_statement(
            selector, update, multi, upsert, collation, array_filters, hint
        )
        self.ops.append(("update", encode(statement, "update"), statement))

    def add_replace(
        self,
        selector: Any,
        replacement: Any,
        upsert: bool = False,
        collation: Any = None,
        hint: Any = None,
    ) -> None:
        statement = replacement_statement(selector, replacement, upsert, collation, hint)
        self.ops.append(("update", encode(statement, "replacement"), statement))

    def add_delete(
        self, selector: Any, limit: int, collation: Any = None, hint: Any = None
    ) -> None:
        statement = delete_statement(selector, limit, collation, hint)
        self.ops.append(("delete", encode(statement, "filter"), statement))

    # -- execution ------------------------------------------------------------------------

    def execute(self, write_concern: WriteConcern) -> Steps[Optional[Dict[str, Any]]]:
        if self.executed:
            raise InvalidOperation("Bulk operations can only be executed once.")
        if not self.ops:
            raise InvalidOperation("No operations to execute")
        acknowledged, concern = write_concern.resolve(None, None)
        conn = self.collection.database.connection
        limits = yield from conn._server_hello()
        max_bson = int(limits.get("maxBsonObjectSize", DEFAULT_MAX_BSON_SIZE))
        sizes = list(map(len, map(_DATA, self.ops)))
        if max(sizes) > max_bson:  # nothing is sent if one is too large
            for (kind, _, _), size in zip(self.ops, sizes):
                check_size(size, _COMMANDS[kind], max_bson)
        self.executed = True
        result: Dict[str, Any] = {
            "writeErrors": [],
            "writeConcernErrors": [],
            "nInserted": 0,
            "nUpserted": 0,
            "nMatched": 0,
            "nModified": 0,
            "nRemoved": 0,
            "upserted": [],
        }
        max_count = int(limits.get("maxWriteBatchSize", DEFAULT_MAX_WRITE_BATCH_SIZE))
        max_bytes = int(limits.get("maxMessageSizeBytes", DEFAULT_MAX_MESSAGE_SIZE))
        for kind, indexes in self._groups():
            for batch in _split(indexes, sizes, max_count, max_bytes - COMMAND_OVERHEAD):
                reply = yield from self._send(kind, batch, acknowledged, concern)
                if reply is not None:
                    _merge(result, reply, kind, batch, self.ops)
                if self.ordered and result["writeErrors"]:
                    break
            if self.ordered and result["writeErrors"]:
                break
        if not acknowledged:
            return None
        if result["writeErrors"] or result["writeConcernErrors"]:
            raise BulkWriteError(result)
        return result

    def _groups(self) -> Iterable[Tuple[str, Sequence[int]]]:
        kinds = set(map(_KIND, self.ops))
        if len(kinds) == 1:  # one kind of operation (insert_many): one run of them all
            yield kinds.pop(), range(len(self.ops))
            return
        if self.ordered:
            run: List[int] = []
            for index, (kind, _, _) in enumerate(self.ops):
                if run and self.ops[run[0]][0] != kind:
                    yield self.ops[run[0]][0], run
                    run = []
                run.append(index)
            if run:
                yield self.ops[run[0]][0], run
        else:
            for kind in _ORDER:
                indexes = [i for i, op in enumerate(self.ops) if op[0] == kind]
                if indexes:
                    yield kind, indexes

    def _send(
        self, kind: str, batch: Sequence[int], acknowledged: bool, concern: Optional[Dict[str, Any]]
    ) -> Steps[Optional[Dict[str, Any]]]:
        coll = self.collection
        command: Dict[str, Any] = {kind: coll.name, "ordered": self.ordered}
        if concern is not None:
            command["writeConcern"] = concern
        if self.bypass:
            command["bypassDocumentValidation"] = True
        ops = self.ops
        chosen = (
            ops[batch.start : batch.stop]
            if isinstance(batch, range)
            else map(ops.__getitem__, batch)
        )
        sequence = protocol.encoded_sequence(_COMMANDS[kind], map(_DATA, chosen))
        return (
            yield from coll.database.connection._executor.run(
                coll.database.name, command, (sequence,), unacknowledged=not acknowledged
            )
        )


def _split(
    indexes: Sequence[int], sizes: List[int], max_count: int, max_bytes: int
) -> Iterable[Sequence[int]]:
    """``indexes`` in runs of at most ``max_count`` operations and ``max_bytes`` bytes, as
    ``limits.split`` cuts them (ranges stay ranges: the usual bulk is one run that fits one
    message)."""
    if isinstance(indexes, range) and indexes.step == 1:
        chosen = sizes[indexes.start : indexes.stop]
    else:
        chosen = list(map(sizes.__getitem__, indexes))
    for run in split(chosen, max_count, max_bytes):
        yield indexes[run.start : run.stop]


def _merge(
    result: Dict[str, Any],
    reply: Mapping[str, Any],
    kind: str,
    batch: Sequence[int],
    ops: List[Tuple[str, Any, Mapping[str, Any]]],
) -> None:
    """Add one batch's reply (fields checked on the path: ``replies.write``) to ``result``,
    with indexes mapped back to the operations' places in the bulk."""
    n = int(reply.get("n", 0))
    if kind == "insert":
        result["nInserted"] += n
    elif kind == "update":
        upserted = reply.get("upserted") or []
        for item in upserted:
            result["upserted"].append({"index": batch[int(item["index"])], "_id": item["_id"]})
        result["nUpserted"] += len(upserted)
        result["nMatched"] += n - len(upserted)
        modified = reply.get("nModified")
        if modified is None:
            result.pop("nModified", None)  # the server does not count modifications
        elif "nModified" in result:
            result["nModified"] += int(modified)
    else:
        result["nRemoved"] += n
    for error in reply.get("writeErrors") or []:
        position = int(error.get("index", 0))
        index = batch[position] if position < len(batch) else batch[-1]
        entry = {**error, "index": index, "op": ops[index][2]}
        result["writeErrors"].append(entry)
    wc_error = reply.get("writeConcernError")
    if wc_error:
        result["writeConcernErrors"].append(dict(wc_error))


class BaseBulkOperationBuilder:
    """What ``BulkOperationBuilder`` and ``AsyncBulkOperationBuilder`` share: all of it;
    ``execute`` is written once, as a step."""

    def __init__(self, collection: BaseCollection[Any, Any], ordered: bool = True) -> None:
        self._bulk = Bulk(collection, ordered)

    def find(self, selector: Mapping[str, Any]) -> BulkWriteOperation:
        """Start an update, replacement or removal of the documents matching ``selector``."""
        return BulkWriteOperation(check_document(selector, "selector"), self._bulk)

    def insert(self, document: Mapping[str, Any]) -> None:
        """Insert ``document`` (an ``_id`` is added to it when missing)."""
        self._bulk.add_insert(document)

    def _execute(
        self, write_concern: Optional[Mapping[str, Any]] = None
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Send every operation; the result document, or None when unacknowledged
        (``write_concern={'w': 0}``, or the collection's). ``BulkWriteError`` on errors."""
        if write_concern:
            concern = WriteConcern.from_document(write_concern)
        else:
            concern = self._bulk.collection._settings.effective_write_concern()
        return (yield from self._bulk.execute(concern))

    execute = operation(_execute)


class BulkOperationBuilder(BaseBulkOperationBuilder, Blocking):
    """pymongo 2.8's bulk builder: ``coll.initialize_ordered_bulk_op()`` /
    ``initialize_unordered_bulk_op()``."""


class AsyncBulkOperationBuilder(BaseBulkOperationBuilder, Asynchronous):
    """``BulkOperationBuilder`` for asyncio (``AsyncCollection.initialize_ordered_bulk_op()``
    / ``initialize_unordered_bulk_op()``): the same methods; ``await bulk.execute()``."""


class BulkWriteOperation:
    """The operations on the documents matching one selector."""

    def __init__(self, selector: Mapping[str, Any], bulk: Bulk, upsert: bool = False) -> None:
        self._selector = selector
        self._bulk = bulk
        self._upsert = upsert

    def update_one(self, update: Mapping[str, Any]) -> None:
        self._bulk.add_update(self._selector, update, multi=False, upsert=self._upsert)

    def update(self, update: Mapping[str, Any]) -> None:
        """Update every matching document."""
        self._bulk.add_update(self._selector, update, multi=True, upsert=self._upsert)

    def replace_one(self, replacement: Mapping[str, Any]) -> None:
        self._bulk.add_replace(self._selector, replacement, upsert=self._upsert)

    def remove_one(self) -> None:
        self._bulk.add_delete(self._selector, 1)

    def remove(self) -> None:
        """Remove every matching document."""
        self._bulk.add_delete(self._selector, 0)

    def upsert(self) -> BulkUpsertOperation:
        """The next update or replacement inserts a document when none matches."""
        return BulkUpsertOperation(self._selector, self._bulk, upsert=True)


class BulkUpsertOperation(BulkWriteOperation):
    """``find(selector).upsert()``: ``update_one``, ``update`` or ``replace_one``."""

    def remove_one(self) -> None:
        raise InvalidOperation("upsert() applies to updates and replacements, not removals")

    def remove(self) -> None:
        raise InvalidOperation("upsert() applies to updates and replacements, not removals")

    def upsert(self) -> BulkUpsertOperation:
        return self


__all__ = [
    "AsyncBulkOperationBuilder",
    "BaseBulkOperationBuilder",
    "Bulk",
    "BulkOperationBuilder",
    "BulkUpsertOperation",
    "BulkWriteOperation",
    "check_replacement",
    "check_update_document",
    "delete_statement",
    "legacy_update_statement",
    "replacement_statement",
    "update_statement",
]
