"""Cursor: a ``find`` (or a command cursor: ``aggregate``, ``listIndexes``) on the
server, iterated batch by batch.

A cursor remembers the pool (so the server) that opened it; ``getMore`` and
``killCursors`` go there, and inside a request they go over the request's socket, because
the pool hands the caller its request socket. Closing a cursor before it is exhausted
kills it on the server; so does garbage collection, deferred to the connection's next
operation (no I/O runs inside ``__del__``). An open cursor is known (weakly) to its
connection by id, for ``Connection.close_cursor(id)``. An exhaust cursor (``exhaust=True``)
reads its getMore replies as a stream over a socket of its own (``wireclient.engine.exhaust``);
closing or collecting it mid-stream discards that socket.

What the find asks for (filter, projection, modifiers, flags) is a ``FindOptions``
(``find_options.py``), a collaborator the cursor owns; the pymongo 2.8 methods here set it
before iteration: ``sort``, ``skip``, ``limit``, ``batch_size``, ``hint``, ``max_time_ms``,
``max_scan``, ``max``, ``min``, ``comment``, ``where``, ``add_option`` /
``remove_option``, and slicing (``cursor[10:20]``). ``cursor[5]``, ``count``,
``distinct``, ``explain`` and ``clone`` run a query of their own. ``AggregationCursor``,
the cursor ``Collection.aggregate`` returns, also answers pymongo 2.8's result document
(``cursor['result']``, ``cursor['ok']``). Returned documents are shaped by ``as_class`` (or
the connection's ``document_class``) and ``tz_aware`` (``settings.shaper``).

Two flavours, one cursor: ``BaseCursor`` holds everything (the modifiers, the first batch,
getMore, the exhaust stream, close, the queries of their own), the I/O written once as steps
(``wireclient.transport.steps``): ``_next_document()`` is the next document, or ``END`` once
the cursor is exhausted. ``Cursor`` (``Blocking``) iterates with ``for`` and runs each step
with the blocking driver; ``AsyncCursor`` (``Asynchronous``) iterates with ``async for``,
and its operations (``close``, ``count``, ``to_list``...) are coroutines. Both take a
buffered document without entering a driver; only a batch to fetch runs one.
``BaseAggregationCursor`` adds 2.8's result document to both (``AggregationCursor``,
``AsyncAggregationCursor``). ``find_one_document`` is the step of ``find_one(spec)``.
"""

from __future__ import annotations

from collections import deque
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    ClassVar,
    Deque,
    Dict,
    Final,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
    cast,
)

from bson import Int64
from bson.code import Code

from wireclient.client.find_options import EXHAUST, FindOptions, build_options
from wireclient.client.settings import Shaper, check_document_class, shaper
from wireclient.engine.exhaust import ExhaustStream, refuse_in_request
from wireclient.errors import InvalidArgument, InvalidOperation
from wireclient.rules.arguments import ASCENDING as ASCENDING  # the 2.x homes of the constants
from wireclient.rules.arguments import DESCENDING as DESCENDING
from wireclient.rules.arguments import GEO2D as GEO2D
from wireclient.rules.arguments import GEOHAYSTACK as GEOHAYSTACK
from wireclient.rules.arguments import GEOSPHERE as GEOSPHERE
from wireclient.rules.arguments import HASHED as HASHED
from wireclient.rules.arguments import TEXT as TEXT
from wireclient.rules.arguments import (
    check_bool,
    check_document,
    check_int,
    check_str,
    index_document,
    type_name,
)
from wireclient.rules.wire import INT32_MAX
from wireclient.transport.blocking import run
from wireclient.transport.flavours import Asynchronous, Blocking, operation
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from wireclient.client.collection import BaseCollection
    from wireclient.pooling.pool import Pool

_C = TypeVar("_C", bound="BaseCursor")


class _End:
    """The type of ``END``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


#: What ``BaseCursor._next_document()`` returns once the cursor is exhausted (a step
#: cannot raise ``StopIteration``).
END: Final = _End()


def find_one_document(
    collection: BaseCollection[Any, Any], spec: Optional[Mapping[str, Any]]
) -> Steps[Optional[Dict[str, Any]]]:
    """``Cursor(collection, spec).limit(-1)``'s document (or None), without building the
    cursor: the usual ``find_one(spec)``. The same check of ``spec``, the same command, read
    preference and document shape, on the same path; a cursor the server left open (it
    should not, for a single batch) is killed as the dropped cursor's would be."""
    if spec is not None:
        spec = dict(check_document(spec, "spec"))
    inherited = collection._settings.operation_read_preference()
    conn = collection.database.connection
    connection_settings = conn._settings
    document_class, tz_aware = connection_settings.document_class, connection_settings.tz_aware
    shape = None
    if document_class is not dict or tz_aware:
        shape = shaper(check_document_class(document_class, "as_class"), tz_aware)
    command: Dict[str, Any] = {"find": collection.name, "filter": {} if spec is None else spec}
    command["limit"] = 1
    command["singleBatch"] = True
    executor = conn._executor
    pool, state = yield from executor.select_for_cursor(True, inherited)
    dbname = collection.database.name
    reply = yield from executor.run(
        dbname, command, pool=pool, for_read=True, read_preference=inherited, state=state
    )
    assert reply is not None
    cursor = reply["cursor"]  # its fields were checked on the path (replies.check)
    cursor_id = int(cursor["id"])
    if cursor_id:
        executor.defer_kill(pool, dbname, collection.name, cursor_id)
    batch = cursor["firstBatch"]
    if not batch:
        return None
    return batch[0] if shape is None else shape(batch[0])  # type: ignore[no-any-return]


class BaseCursor:
    """A cursor, shared by its two flavours (``Cursor``, ``AsyncCursor``: the arguments are
    ``Cursor``'s): everything but iterating and running the steps."""

    #: The class ``clone()`` makes: the flavour's find cursor.
    _cursor_class: ClassVar[Type[BaseCursor]]

    def __init__(
        self,
        collection: BaseCollection[Any, Any],
        spec: Optional[Mapping[str, Any]] = None,
        fields: Optional[Union[Mapping[str, Any], List[str]]] = None,
        skip: int = 0,
        limit: int = 0,
        sort: Any = None,
        batch_size: int = 0,
        read_preference: Any = None,
        *,
        projection: Any = None,
        timeout: bool = True,
        no_cursor_timeout: bool = False,
        tailable: bool = False,
        await_data: bool = False,
        partial: bool = False,
        allow_partial_results: bool = False,
        oplog_replay: bool = False,
        exhaust: bool = False,
        max_time_ms: Optional[int] = None,
        max_scan: Optional[int] = None,
        hint: Any = None,
        comment: Any = None,
        max: Any = None,
        min: Any = None,
        modifiers: Optional[Mapping[str, Any]] = None,
        tag_sets: Any = None,
        as_class: Optional[type] = None,
        manipulate: bool = True,
        _command: Optional[Dict[str, Any]] = None,
        _pipeline: Optional[List[Mapping[str, Any]]] = None,
        **refused: Any,
    ) -> None:
        inherited = collection._settings.operation_read_preference()
        options, read_preference = build_options(
            spec, fields, skip, limit, sort, batch_size, read_preference, projection,
            timeout, no_cursor_timeout, tailable, await_data, partial, allow_partial_results,
            oplog_replay, exhaust, max_time_ms, max_scan, hint, comment, max, min, modifiers,
            tag_sets, manipulate, refused, inherited,
        )  # fmt: skip
        conn = collection.database.connection
        if options.flags & EXHAUST:
            refuse_in_request(conn._executor.requests)
        self._stream: Optional[ExhaustStream] = None
        connection_settings = conn._settings
        tz_aware = connection_settings.tz_aware
        document_class = connection_settings.document_class if as_class is None else as_class
        self._shape: Optional[Shaper] = None  # dict and naive datetimes: nothing to reshape
        if document_class is not dict or tz_aware:
            self._shape = shaper(check_document_class(document_class, "as_class"), tz_aware)
        self._collection = collection
        self._options: FindOptions = options
        self._read_preference = read_preference if read_preference is not None else inherited
        if _pipeline is not None:  # an aggregate (Collection.aggregate)
            _command = {"aggregate": collection.name, "pipeline": _pipeline}
        self._command = _command
        self._buffer: Deque[Dict[str, Any]] = deque()
        self._id = 0
        self._pool: Optional[Pool] = None
        self._started = False
        self._empty = False  # cursor[n:n]: nothing to ask for
        self._retrieved = 0

    # -- modifiers ----------------------------------------------------------------------

    def _check_not_started(self) -> None:
        if self._started:
            raise InvalidOperation("cannot modify a cursor after iteration has begun")

    def _check_find(self, what: str) -> None:
        self._check_not_started()
        if self._command is not None:
            raise InvalidOperation(f"{what} applies to a find cursor, not to a command cursor")

    def sort(self: _C, key_or_list: Any, direction: Optional[int] = None) -> _C:
        self._check_find("sort")
        self._options.sort = index_document(key_or_list, direction)
        return self

    def skip(self: _C, skip: int) -> _C:
        self._check_find("skip")
        self._options.skip = check_int(skip, "skip", 0)
        return self

    def limit(self: _C, limit: int) -> _C:
        self._check_find("limit")
        self._options.set_limit(limit)
        return self

    def batch_size(self: _C, batch_size: int) -> _C:
        self._check_not_started()
        self._options.batch_size = check_int(batch_size, "batch_size", 0, INT32_MAX)
        return self

    def hint(self: _C, index: Any) -> _C:
        """Use the index named ``index`` (or given as a key list); None: let the server
        choose."""
        self._check_find("hint")
        self._options.set_hint(index)
        return self

    def max_time_ms(self: _C, max_time_ms: Optional[int]) -> _C:
        """Let the server work on this query for at most ``max_time_ms`` milliseconds."""
        self._check_find("max_time_ms")
        self._options.set_max_time_ms(max_time_ms)
        return self

    def max_scan(self: _C, max_scan: Optional[int]) -> _C:
        """Scan at most ``max_scan`` documents (servers before MongoDB 4.2 only)."""
        self._check_find("max_scan")
        self._options.set_max_scan(max_scan)
        return self

    def max(self: _C, spec: Any) -> _C:
        """Exclusive upper index bounds: ``[(field, value), ...]`` (use with ``hint``)."""
        self._check_find("max")
        self._options.set("max", spec)
        return self

    def min(self: _C, spec: Any) -> _C:
        """Inclusive lower index bounds: ``[(field, value), ...]`` (use with ``hint``)."""
        self._check_find("min")
        self._options.set("min", spec)
        return self

    def comment(self: _C, comment: Any) -> _C:
        """A comment the server logs and profiles with the query."""
        self._check_find("comment")
        self._options.set_comment(comment)
        return self

    def where(self: _C, code: Union[str, Code]) -> _C:
        """Add a ``$where`` JavaScript condition to the filter (servers with JavaScript)."""
        self._check_find("where")
        if not isinstance(code, Code):
            code = Code(check_str(code, "code"))
        self._options.spec["$where"] = code
        return self

    def add_option(self: _C, mask: int) -> _C:
        """Set OP_QUERY flag bits (2 tailable, 16 no timeout, 32 await data, 128 partial
        results, 8 oplog replay, 64 exhaust: getMores stream, see ``wireclient.engine.exhaust``;
        4 slaveOk is accepted and changes nothing)."""
        self._check_find("add_option")
        self._options.add_option(mask)
        return self

    def remove_option(self: _C, mask: int) -> _C:
        self._check_find("remove_option")
        self._options.remove_option(mask)
        return self

    def _position(self, index: Any) -> Optional[int]:
        """``cursor[index]`` checked: a slice is applied to this cursor (None); an int is
        the position of the document asked for (``_document_at``)."""
        self._check_find("indexing")
        if isinstance(index, slice):
            if index.step is not None:
                raise IndexError("Cursor instances do not support slice steps")
            start = 0 if index.start is None else index.start
            if not isinstance(start, int) or start < 0:
                raise IndexError("Cursor instances do not support negative indices")
            limit = 0
            if index.stop is not None:
                if not isinstance(index.stop, int) or index.stop < 0:
                    raise IndexError("Cursor instances do not support negative indices")
                limit = index.stop - start
                if limit < 0:
                    raise IndexError(f"stop index must be greater than start index ({index!r})")
                self._empty = limit == 0
            self._options.set_limit(limit)
            self._options.skip = start
            return None
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidArgument(f"index must be an int or a slice, not {type_name(index)}")
        if index < 0:
            raise IndexError("Cursor instances do not support negative indices")
        return index

    def _document_at(self, index: int) -> Steps[Any]:
        """The document at ``index`` (>= 0, ``_position``), by a query of its own."""
        one = self.clone()
        one._options.skip = self._options.skip + index
        one._options.set_limit(-1)
        doc = yield from one._next_document()
        if doc is END:
            raise IndexError("no such item for Cursor instance")
        return doc

    # -- iteration ----------------------------------------------------------------------

    def _next_document(self) -> Steps[Any]:
        """The next document, fetching a batch if none is buffered; ``END`` when there is
        none (the flavours take a buffered document themselves, without this step)."""
        buffer = self._buffer
        if not buffer:
            yield from self._fetch()
            if not buffer:
                return END
        shape = self._shape
        return buffer.popleft() if shape is None else shape(buffer.popleft())

    def _fetch(self) -> Steps[None]:
        """Fill the empty buffer with the next batch, if there is one: the first batch, or
        a getMore while the server holds the cursor open."""
        if not self._started:
            self._started = True
            if not self._empty:
                yield from self._first_batch()
        elif self._id:
            yield from self._get_more()

    def _to_list(self, length: Optional[int] = None) -> Steps[List[Any]]:
        """The documents left, as a list: all of them, or at most ``length`` (an int >= 1);
        an empty list when there are none (pymongo's ``to_list``)."""
        if length is not None:
            if check_int(length, "length") < 1:
                raise ValueError("to_list() length must be greater than 0")
        documents: List[Any] = []
        buffer = self._buffer
        shape = self._shape
        while True:
            if not buffer:
                yield from self._fetch()
                if not buffer:
                    return documents
            take = len(buffer) if length is None else min(len(buffer), length - len(documents))
            popleft = buffer.popleft
            if shape is None:
                documents.extend(popleft() for _ in range(take))
            else:
                documents.extend(shape(popleft()) for _ in range(take))
            if length is not None and len(documents) >= length:
                return documents

    @property
    def alive(self) -> bool:
        """Whether more documents may come: some are buffered, the query has not run yet,
        or the server holds the cursor open."""
        return bool(self._buffer) or (not self._started and not self._empty) or bool(self._id)

    @property
    def cursor_id(self) -> int:
        return self._id

    @property
    def retrieved(self) -> int:
        """How many documents the server has sent so far."""
        return self._retrieved

    @property
    def collection(self) -> BaseCollection[Any, Any]:
        return self._collection

    @property
    def address(self) -> Optional[Tuple[str, int]]:
        """The server that holds the cursor, once the query has run."""
        return self._pool.address if self._pool is not None else None

    conn_id = address  # pymongo 2.8's name

    def _find_command(self) -> Dict[str, Any]:
        if self._command is not None:
            command = dict(self._command)
            size = self._options.batch_size
            command.setdefault("cursor", {"batchSize": size} if size else {})
            return command
        return self._options.command(self._collection.name)

    def _first_batch(self) -> Steps[None]:
        coll = self._collection
        conn = coll.database.connection
        if self._options.flags & EXHAUST:  # before select(): it would start an automatic request
            refuse_in_request(conn._executor.requests)
        executor = conn._executor
        command = self._find_command()  # first: the path then leaves the cursor once
        self._pool, state = yield from executor.select_for_cursor(True, self._read_preference)
        reply = yield from executor.run(
            coll.database.name,
            command,
            pool=self._pool,
            for_read=True,
            read_preference=self._read_preference,
            state=state,
        )
        assert reply is not None
        cursor = reply["cursor"]  # its fields were checked on the path (replies.check)
        self._id = int(cursor["id"])
        self._buffer.extend(cursor["firstBatch"])
        self._retrieved += len(cursor["firstBatch"])
        if self._id:
            conn._cursors[self._id] = self

    def _get_more(self) -> Steps[None]:
        coll = self._collection
        conn = coll.database.connection
        command: Dict[str, Any] = {"getMore": Int64(self._id), "collection": coll.name}
        if self._options.batch_size:
            command["batchSize"] = self._options.batch_size
        reply: Optional[Dict[str, Any]]
        try:
            if self._options.flags & EXHAUST:
                reply = yield from self._streamed(command)
            else:
                reply = yield from conn._executor.run(
                    coll.database.name, command, pool=self._pool, for_read=True
                )
        except BaseException:
            self._forget()  # a failed getMore leaves nothing to kill that we can trust
            raise
        assert reply is not None
        cursor = reply["cursor"]  # checked on the path: the id is 0 or this cursor's
        if not int(cursor["id"]):
            self._forget()
        self._buffer.extend(cursor["nextBatch"])
        self._retrieved += len(cursor["nextBatch"])

    def _streamed(self, command: Dict[str, Any]) -> Steps[Dict[str, Any]]:
        """The next reply of this exhaust cursor's stream, the getMore opening one if none
        is flowing (the server may answer without streaming: then each getMore is one)."""
        stream = self._stream
        try:
            if stream is None or not stream.active:
                assert self._pool is not None
                executor = self._collection.database.connection._executor
                stream = self._stream = executor.exhaust_stream(
                    self._collection.database.name, command, self._pool
                )
                return (yield from stream.first())
            return (yield from stream.next())
        finally:
            if stream is not None and not stream.active:
                self._stream = None  # its socket is back in the pool, or gone

    def _abandon_stream(self, from_gc: bool = False) -> None:
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            stream.abandon(from_gc)

    def _forget(self) -> None:
        cursor_id, self._id = self._id, 0
        if cursor_id:
            self._collection.database.connection._cursors.pop(cursor_id, None)

    def _close(self) -> Steps[None]:
        """Kill the server-side cursor now, if it is still open."""
        cursor_id = self._id
        self._abandon_stream()  # replies in flight: its socket is discarded
        self._forget()
        self._buffer.clear()
        self._started = True
        if cursor_id and self._pool is not None:
            coll = self._collection
            yield from coll.database.connection._executor.run(
                coll.database.name,
                {"killCursors": coll.name, "cursors": [Int64(cursor_id)]},
                pool=self._pool,
                check=False,
            )

    close = operation(_close)

    def __del__(self) -> None:
        if getattr(self, "_stream", None) is not None:
            self._abandon_stream(from_gc=True)
        cursor_id = getattr(self, "_id", 0)
        if cursor_id and self._pool is not None:
            coll = self._collection
            coll.database.connection._executor.defer_kill(
                self._pool, coll.database.name, coll.name, cursor_id
            )

    # -- queries of their own -------------------------------------------------------------

    def _count(self, with_limit_and_skip: bool = False) -> Steps[int]:
        """How many documents match the filter (with ``with_limit_and_skip``: how many this
        cursor would return)."""
        self._check_command_cursor("count")
        coll = self._collection
        command: Dict[str, Any] = {"count": coll.name, "query": self._options.spec}
        if check_bool(with_limit_and_skip, "with_limit_and_skip"):
            if self._options.limit:
                command["limit"] = abs(self._options.limit)
            if self._options.skip:
                command["skip"] = self._options.skip
        if self._options.hint is not None:
            command["hint"] = self._options.hint
        if self._options.max_time_ms is not None:
            command["maxTimeMS"] = self._options.max_time_ms
        reply = yield from coll.database._command(command, read_preference=self._read_preference)
        return int(reply["n"])  # an integer >= 0, checked on the path (replies.check)

    count = operation(_count)

    def _distinct(self, key: str) -> Steps[List[Any]]:
        """The distinct values of ``key`` among the documents matching the filter."""
        self._check_command_cursor("distinct")
        coll = self._collection
        command: Dict[str, Any] = {"distinct": coll.name, "key": check_str(key, "key")}
        if self._options.spec:
            command["query"] = self._options.spec
        if self._options.max_time_ms is not None:
            command["maxTimeMS"] = self._options.max_time_ms
        reply = yield from coll.database._command(command, read_preference=self._read_preference)
        return list(reply["values"])

    distinct = operation(_distinct)

    def _explain(self) -> Steps[Dict[str, Any]]:
        """How the server runs this query (the ``explain`` command on it)."""
        self._check_command_cursor("explain")
        options = self._options.copy()
        if options.limit:
            options.limit = -abs(options.limit)
        coll = self._collection
        command = {"explain": options.command(coll.name)}
        return (yield from coll.database._command(command, read_preference=self._read_preference))

    explain = operation(_explain)

    def _check_command_cursor(self, what: str) -> None:
        if self._command is not None:
            raise InvalidOperation(f"{what}() applies to a find cursor, not to a command cursor")

    def clone(self: _C) -> _C:
        """A new, unstarted cursor with the same query and options."""
        self._check_command_cursor("clone")
        twin = self._cursor_class(self._collection, read_preference=self._read_preference)
        twin._options = self._options.copy()
        twin._shape = self._shape
        twin._empty = self._empty
        return cast(_C, twin)

    __copy__ = clone

    def _rewind(self: _C) -> Steps[_C]:
        """Forget the results so far; the next iteration runs the query again."""
        yield from self._close()
        self._started = False
        self._retrieved = 0
        return self

    rewind = operation(_rewind)


class Cursor(BaseCursor, Blocking):
    """Iterate with ``for doc in cursor``; chain ``.sort() .skip() .limit() .batch_size()``
    (and the other modifiers) before iterating.

    ``find(spec=None, fields=None, skip=0, limit=0, sort=None, batch_size=0,
    read_preference=None, **keywords)``. Keywords (pymongo 2.8 and 4 names): ``projection``
    (= ``fields``), ``timeout=False`` / ``no_cursor_timeout=True``, ``tailable``,
    ``await_data``, ``partial`` / ``allow_partial_results``, ``oplog_replay``,
    ``max_time_ms``, ``max_scan``, ``hint``, ``comment``, ``max``, ``min``, ``modifiers``
    (2.8's ``$``-names), ``tag_sets`` (with ``read_preference``), ``as_class``,
    ``manipulate`` (accepted; wireclient has no SON manipulators), ``exhaust=True`` (the
    server streams the batches after the first: ``wireclient.engine.exhaust``; not with ``limit``
    or ``tailable``, nor inside a request). Refused, each with the reason: ``snapshot``,
    ``slave_okay``, ``compile_re=True`` and a per-find latency window.
    """

    def __getitem__(self, index: Any) -> Any:
        """``cursor[5]``: that document (``IndexError`` if there is none), by a query of its
        own; ``cursor[10:20]``: this cursor, skipping 10 and limited to 10."""
        position = self._position(index)
        if position is None:
            return self
        return run(self._document_at(position))

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        buffer = self._buffer  # runs once per document: the buffered case comes first
        if buffer:
            shape = self._shape
            return buffer.popleft() if shape is None else shape(buffer.popleft())
        doc = run(self._next_document())
        if doc is END:
            raise StopIteration
        return doc  # type: ignore[no-any-return]

    next = __next__

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Cursor._cursor_class = Cursor


class AsyncCursor(BaseCursor, Asynchronous):
    """``Cursor`` for asyncio: iterate with ``async for doc in cursor`` (or
    ``await cursor.to_list()``); chain the same modifiers before iterating; ``close``,
    ``count``, ``distinct``, ``explain``, ``rewind`` and ``to_list`` are coroutines;
    ``async with cursor:`` closes it. Made by ``AsyncCollection.find`` with ``Cursor``'s
    arguments. ``cursor[10:20]`` slices as ``Cursor``'s does; ``cursor[5]`` raises
    ``TypeError`` (indexing cannot wait for the server): use ``skip(5).limit(-1)``."""

    to_list = operation(BaseCursor._to_list)

    def __getitem__(self, index: Any) -> Any:
        """``cursor[10:20]``: this cursor, skipping 10 and limited to 10; ``cursor[5]``:
        ``TypeError``, use ``cursor.clone().skip(5).limit(-1)`` and iterate."""
        if self._position(index) is None:
            return self
        raise TypeError(
            "an AsyncCursor cannot be indexed (that would run a query without await): "
            "use cursor.clone().skip(n).limit(-1) and iterate it"
        )

    def __aiter__(self) -> AsyncIterator[Dict[str, Any]]:
        return self

    async def __anext__(self) -> Dict[str, Any]:
        buffer = self._buffer  # runs once per document: the buffered case comes first
        if buffer:
            shape = self._shape
            return buffer.popleft() if shape is None else shape(buffer.popleft())
        from wireclient.transport import asynchronous

        doc = await asynchronous.run(self._next_document())
        if doc is END:
            raise StopAsyncIteration
        return doc  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


AsyncCursor._cursor_class = AsyncCursor


class BaseAggregationCursor(BaseCursor):
    """The cursor ``aggregate`` returns, shared by its two flavours: a cursor, and 2.8's
    result document (``'result'``: all the documents, fetched at once, before any
    iteration; ``'ok'``)."""

    _result: Optional[List[Dict[str, Any]]] = None

    def _result_item(self, key: str) -> Steps[Any]:
        """2.8's result document's ``key``; ``KeyError`` for any but 'result' and 'ok'."""
        if key == "result":
            if self._result is None:
                if self._started:
                    raise InvalidOperation(
                        "['result'] needs every document, but iteration has begun"
                    )
                self._result = yield from self._to_list()
            return self._result
        if key == "ok":
            yield from self._result_item("result")  # the aggregate ran and succeeded
            return 1.0
        raise KeyError(key)

    def _get(self, key: str, default: Any = None) -> Steps[Any]:
        if key in ("result", "ok"):
            return (yield from self._result_item(key))
        return default

    get = operation(_get)

    def keys(self) -> List[str]:
        return ["result", "ok"]


class AggregationCursor(BaseAggregationCursor, Cursor):
    """The cursor ``aggregate`` returns. Iterate it; or read 2.8's result document from
    it: ``cursor['result']`` (all the documents, fetched at once, before any iteration) and
    ``cursor['ok']``."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return run(self._result_item(key))
        return super().__getitem__(key)


class AsyncAggregationCursor(BaseAggregationCursor, AsyncCursor):
    """The cursor ``AsyncCollection.aggregate`` returns. Iterate it with ``async for`` (or
    ``await cursor.to_list()``); 2.8's result document is ``await cursor.get('result')``
    (all the documents, fetched at once, before any iteration) and
    ``await cursor.get('ok')``: ``cursor['result']`` raises ``TypeError``."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            raise TypeError(
                f"use await cursor.get({key!r}): an AsyncAggregationCursor's "
                "result document needs the server"
            )
        return super().__getitem__(key)


__all__ = [
    "ASCENDING",
    "DESCENDING",
    "END",
    "GEO2D",
    "GEOHAYSTACK",
    "GEOSPHERE",
    "HASHED",
    "TEXT",
    "AggregationCursor",
    "AsyncAggregationCursor",
    "AsyncCursor",
    "BaseAggregationCursor",
    "BaseCursor",
    "Cursor",
    "find_one_document",
]
