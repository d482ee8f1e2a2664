"""Cursor: a ``find`` (or ``aggregate``) on the server, iterated batch by batch.

A cursor remembers the pool (so the server) that opened it; ``getMore`` and
``killCursors`` go there, and inside a request they go over the request's socket, because
the pool hands the caller its request socket. Closing a cursor before it is exhausted
kills it on the server; so does garbage collection, deferred to the connection's next
operation (no I/O runs inside ``__del__``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterator, List, Mapping, Optional, Union

from bson import Int64

from wireclient.arguments import (
    INT32_MAX,
    check_bool,
    check_document,
    check_int,
    check_read_preference,
    encode,
    type_name,
)
from wireclient.errors import ConfigurationError, InvalidArgument, InvalidOperation

if TYPE_CHECKING:
    from wireclient.collection import Collection
    from wireclient.pool import Pool

ASCENDING = 1
DESCENDING = -1


def _check_key(key: Any, direction: Any) -> None:
    """A field name, and a direction: a number (1, -1), an index type ('2dsphere', 'text',
    'hashed') or a document (``{'$meta': 'textScore'}`` in a sort)."""
    if not isinstance(key, str):
        raise InvalidArgument(f"sort/index key names must be strings, not {type_name(key)}")
    if not key:
        raise ConfigurationError("sort/index key names must not be empty")
    if isinstance(direction, bool) or not isinstance(direction, (int, float, str, Mapping)):
        raise InvalidArgument(
            f"the direction of key {key!r} must be 1, -1, an index type such as '2dsphere' "
            f"or a document, not {type_name(direction)}"
        )
    if isinstance(direction, str) and not direction:
        raise ConfigurationError(f"the direction of key {key!r} must not be empty")


def index_document(key_or_list: Any, direction: Optional[Any] = None) -> Dict[str, Any]:
    """``'a'`` / ``('a', 1)`` lists / a mapping -> an ordered ``{key: direction}`` document."""
    out: Dict[str, Any] = {}
    if isinstance(key_or_list, str):
        out[key_or_list] = ASCENDING if direction is None else direction
    elif isinstance(key_or_list, Mapping):
        out = dict(key_or_list)
    elif isinstance(key_or_list, (list, tuple)):
        for item in key_or_list:
            if isinstance(item, str):
                out[item] = ASCENDING
            elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
                out[item[0]] = item[1]
            else:
                raise ConfigurationError(
                    f"bad sort/index key of type {type_name(item)}: use 'key' or (key, direction)"
                )
    else:
        raise InvalidArgument(
            "a sort/index specification must be a key name, a list of (key, direction) "
            f"pairs or a mapping, not {type_name(key_or_list)}"
        )
    if not out:
        raise ConfigurationError("empty sort/index key list")
    for key, value in out.items():
        _check_key(key, value)
    encode(out, "the sort/index specification")  # a direction may be a document
    return out


class Cursor:
    """Iterate with ``for doc in cursor``; chain ``.sort() .skip() .limit() .batch_size()``
    before iterating."""

    def __init__(
        self,
        collection: Collection,
        spec: Optional[Mapping[str, Any]] = None,
        fields: Optional[Union[Mapping[str, Any], List[str]]] = None,
        skip: int = 0,
        limit: int = 0,
        sort: Any = None,
        batch_size: int = 0,
        read_preference: Any = None,
        _pipeline: Optional[List[Mapping[str, Any]]] = None,
    ) -> None:
        if spec is not None:
            check_document(spec, "spec")
        check_int(skip, "skip", 0)
        check_int(limit, "limit")
        check_int(batch_size, "batch_size", 0, INT32_MAX)
        check_read_preference(read_preference)
        self._collection = collection
        self._spec: Dict[str, Any] = dict(spec or {})
        self._fields = self._projection(fields)
        self._skip = skip
        self._limit = limit
        self._sort: Optional[Dict[str, Any]] = index_document(sort) if sort is not None else None
        self._batch_size = batch_size
        self._read_preference = (
            read_preference if read_preference is not None else collection.read_preference
        )
        self._pipeline = _pipeline
        self._buffer: Deque[Dict[str, Any]] = deque()
        self._id = 0
        self._pool: Optional[Pool] = None
        self._started = False
        self._returned = 0

    @staticmethod
    def _projection(fields: Any) -> Optional[Dict[str, Any]]:
        if fields is None:
            return None
        if isinstance(fields, Mapping):
            return dict(check_document(fields, "fields"))
        if isinstance(fields, (list, tuple)):
            for name in fields:
                if not isinstance(name, str):
                    raise InvalidArgument(
                        f"fields must name fields as strings, not {type_name(name)}"
                    )
            return {name: 1 for name in fields}
        raise InvalidArgument(
            f"fields must be a mapping or a list of field names, not {type_name(fields)}"
        )

    # -- modifiers ----------------------------------------------------------------------

    def _check_not_started(self) -> None:
        if self._started:
            raise InvalidOperation("cannot modify a cursor after iteration has begun")

    def sort(self, key_or_list: Any, direction: Optional[int] = None) -> Cursor:
        self._check_not_started()
        self._sort = index_document(key_or_list, direction)
        return self

    def skip(self, skip: int) -> Cursor:
        self._check_not_started()
        self._skip = check_int(skip, "skip", 0)
        return self

    def limit(self, limit: int) -> Cursor:
        self._check_not_started()
        self._limit = check_int(limit, "limit")
        return self

    def batch_size(self, batch_size: int) -> Cursor:
        self._check_not_started()
        self._batch_size = check_int(batch_size, "batch_size", 0, INT32_MAX)
        return self

    # -- iteration ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return self

    def __next__(self) -> Dict[str, Any]:
        if not self._buffer:
            if not self._started:
                self._started = True
                self._first_batch()
            elif self._id:
                self._get_more()
        if self._buffer:
            self._returned += 1
            return self._buffer.popleft()
        raise StopIteration

    next = __next__

    @property
    def alive(self) -> bool:
        return bool(self._buffer) or not self._started or bool(self._id)

    @property
    def cursor_id(self) -> int:
        return self._id

    def _first_batch(self) -> None:
        coll = self._collection
        conn = coll.database.connection
        self._pool = conn._executor.select(True, self._read_preference, operation=True)
        command: Dict[str, Any]
        if self._pipeline is not None:
            cursor_opts = {"batchSize": self._batch_size} if self._batch_size else {}
            command = {"aggregate": coll.name, "pipeline": self._pipeline, "cursor": cursor_opts}
        else:
            command = {"find": coll.name, "filter": self._spec}
            if self._fields is not None:
                command["projection"] = self._fields
            if self._sort:
                command["sort"] = self._sort
            if self._skip:
                command["skip"] = self._skip
            if self._limit:
                command["limit"] = abs(self._limit)
                if self._limit < 0:
                    command["singleBatch"] = True
            if self._batch_size:
                size = self._batch_size
                if self._limit:
                    size = min(size, abs(self._limit))
                command["batchSize"] = size
        reply = conn._executor.run(
            coll.database.name,
            command,
            pool=self._pool,
            for_read=True,
            read_preference=self._read_preference,
        )
        assert reply is not None
        cursor = reply["cursor"]  # its fields were checked on the path (replies.check)
        self._id = int(cursor["id"])
        self._buffer.extend(cursor["firstBatch"])

    def _get_more(self) -> None:
        coll = self._collection
        conn = coll.database.connection
        command: Dict[str, Any] = {"getMore": Int64(self._id), "collection": coll.name}
        if self._batch_size:
            command["batchSize"] = self._batch_size
        try:
            reply = conn._executor.run(coll.database.name, command, pool=self._pool, for_read=True)
        except BaseException:
            self._id = 0  # a failed getMore leaves nothing to kill that we can trust
            raise
        assert reply is not None
        cursor = reply["cursor"]  # checked on the path: the id is 0 or this cursor's
        self._id = int(cursor["id"])
        self._buffer.extend(cursor["nextBatch"])

    def close(self) -> None:
        """Kill the server-side cursor now, if it is still open."""
        cursor_id, self._id = self._id, 0
        self._buffer.clear()
        self._started = True
        if cursor_id and self._pool is not None:
            coll = self._collection
            coll.database.connection._executor.run(
                coll.database.name,
                {"killCursors": coll.name, "cursors": [Int64(cursor_id)]},
                pool=self._pool,
                check=False,
            )

    def __del__(self) -> None:
        cursor_id = getattr(self, "_id", 0)
        if cursor_id and self._pool is not None:
            coll = self._collection
            coll.database.connection._executor.defer_kill(
                self._pool, coll.database.name, coll.name, cursor_id
            )

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, with_limit_and_skip: bool = False) -> int:
        coll = self._collection
        command: Dict[str, Any] = {"count": coll.name, "query": self._spec}
        if check_bool(with_limit_and_skip, "with_limit_and_skip"):
            if self._limit:
                command["limit"] = abs(self._limit)
            if self._skip:
                command["skip"] = self._skip
        reply = coll.database.command(command, read_preference=self._read_preference)
        return int(reply["n"])  # an integer >= 0, checked on the path (replies.check)

    def rewind(self) -> Cursor:
        """Forget the results so far; the next iteration runs the query again."""
        self.close()
        self._started = False
        self._returned = 0
        return self
