"""Cursor (wireclient/client/cursor.py) through the public API, against a mockupdb server that
records exactly what arrives (tests/support/mock_server.py): the find command and its options,
getMore, killCursors (on close, on leaving a ``with`` block, after garbage collection),
count, and the OP_QUERY form for wire 4-5 servers."""

from __future__ import annotations

import gc
from typing import Any, Dict, Iterator, List

import pytest
from bson import Int64
from mock_server import MockServer, Received

from wireclient import ASCENDING, DESCENDING, Collection, Cursor, errors

TIMEOUT = 5
BIG_ID = 2**40 + 7  # a realistic cursor id: it needs 64 bits


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def coll(mock: MockServer) -> Collection:
    return mock.connect().test.things


def first_batch(cmd: Received, docs: List[Dict[str, Any]], cursor_id: int = 0) -> None:
    cmd.reply(cursor={"id": Int64(cursor_id), "ns": "test.things", "firstBatch": docs})


def next_batch(cmd: Received, docs: List[Dict[str, Any]], cursor_id: int = 0) -> None:
    cmd.reply(cursor={"id": Int64(cursor_id), "ns": "test.things", "nextBatch": docs})


# -- the find command -----------------------------------------------------------------------


def test_find_sends_the_collection_and_an_empty_filter(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find()
    assert isinstance(cursor, Cursor)
    mock.assert_nothing_received(timeout=0.05)  # nothing is sent until iteration
    future = mock.run(list, cursor)
    cmd = mock.receives("find")
    assert cmd.body == {"find": "things", "filter": {}, "$db": "test"}
    first_batch(cmd, [{"_id": 1}, {"_id": 2}])
    assert future.result(TIMEOUT) == [{"_id": 1}, {"_id": 2}]
    mock.assert_nothing_received()  # cursor id 0: no getMore, no killCursors


@pytest.mark.parametrize(
    "fields, projection",
    [
        (["a", "b"], {"a": 1, "b": 1}),
        (("a",), {"a": 1}),
        ({"a": 0, "b.c": 1}, {"a": 0, "b.c": 1}),
        ({"_id": False}, {"_id": False}),
    ],
    ids=["list", "tuple", "dict", "dict false"],
)
def test_find_projection(
    mock: MockServer, coll: Collection, fields: Any, projection: Dict[str, Any]
) -> None:
    future = mock.run(list, coll.find({"x": {"$gt": 1}}, fields))
    cmd = mock.receives("find")
    assert cmd.body == {
        "find": "things",
        "filter": {"x": {"$gt": 1}},
        "projection": projection,
        "$db": "test",
    }
    first_batch(cmd, [])
    assert future.result(TIMEOUT) == []


@pytest.mark.parametrize(
    "make, sort",
    [
        (lambda c: c.find(sort=[("a", ASCENDING), ("b", DESCENDING)]), {"a": 1, "b": -1}),
        (lambda c: c.find().sort("a", DESCENDING), {"a": -1}),
        (lambda c: c.find().sort("a"), {"a": 1}),
        (lambda c: c.find().sort([("b", 1), ("a", -1)]), {"b": 1, "a": -1}),
        (lambda c: c.find().sort([("z", 1), "y"]), {"z": 1, "y": 1}),
        (lambda c: c.find(sort="a").sort("b"), {"b": 1}),  # the last sort wins
    ],
    ids=["kwarg list", "key direction", "key", "list", "list with bare key", "replaced"],
)
def test_find_sort_keeps_key_order(
    mock: MockServer, coll: Collection, make: Any, sort: Dict[str, Any]
) -> None:
    future = mock.run(list, make(coll))
    cmd = mock.receives("find")
    assert cmd.body == {"find": "things", "filter": {}, "sort": sort, "$db": "test"}
    assert list(cmd.body["sort"].items()) == list(sort.items())
    first_batch(cmd, [])
    future.result(TIMEOUT)


@pytest.mark.parametrize(
    "kwargs, fields",
    [
        ({"skip": 5}, {"skip": 5}),
        ({"limit": 3}, {"limit": 3}),
        ({"limit": -3}, {"limit": 3, "singleBatch": True}),
        ({"batch_size": 2}, {"batchSize": 2}),
        ({"limit": 2, "batch_size": 5}, {"limit": 2, "batchSize": 2}),
        ({"limit": 5, "batch_size": 2}, {"limit": 5, "batchSize": 2}),
        ({"limit": -2, "batch_size": 5}, {"limit": 2, "singleBatch": True, "batchSize": 2}),
        ({"skip": 0, "limit": 0, "batch_size": 0}, {}),
        ({"skip": 1, "limit": 4, "batch_size": 3}, {"skip": 1, "limit": 4, "batchSize": 3}),
    ],
)
def test_find_skip_limit_batch_size(
    mock: MockServer, coll: Collection, kwargs: Dict[str, int], fields: Dict[str, Any]
) -> None:
    expected = {"find": "things", "filter": {}, **fields, "$db": "test"}
    as_kwargs = coll.find(**kwargs)  # type: ignore[arg-type]
    chained = coll.find()
    if "skip" in kwargs:
        chained.skip(kwargs["skip"])
    if "limit" in kwargs:
        chained.limit(kwargs["limit"])
    if "batch_size" in kwargs:
        chained.batch_size(kwargs["batch_size"])
    for cursor in (as_kwargs, chained):
        future = mock.run(list, cursor)
        cmd = mock.receives("find")
        assert cmd.body == expected
        first_batch(cmd, [{"_id": 1}])
        assert future.result(TIMEOUT) == [{"_id": 1}]


def test_find_errors_are_operation_failures(mock: MockServer, coll: Collection) -> None:
    future = mock.run(list, coll.find({"$where": 1}))
    mock.receives("find").error(2, "$where got bad type")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 2
    assert info.value.details["errmsg"] == "$where got bad type"


def test_bad_arguments_are_refused(coll: Collection) -> None:
    with pytest.raises(errors.ConfigurationError):
        coll.find("not a mapping")
    with pytest.raises(errors.ConfigurationError):
        coll.find(skip=-1)
    with pytest.raises(errors.ConfigurationError):
        coll.find(limit=True)
    with pytest.raises(errors.ConfigurationError):
        coll.find(fields="a")
    with pytest.raises(errors.ConfigurationError):
        coll.find().batch_size(-1)
    with pytest.raises(errors.ConfigurationError):
        coll.find().sort([("a", 1, 2)])


def test_modifiers_after_iteration_began_are_refused(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find()
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}, {"_id": 2}])
    assert future.result(TIMEOUT) == {"_id": 1}
    for modify in (
        lambda: cursor.sort("a"),
        lambda: cursor.skip(1),
        lambda: cursor.limit(1),
        lambda: cursor.batch_size(1),
    ):
        with pytest.raises(errors.InvalidOperation):
            modify()
    assert list(cursor) == [{"_id": 2}]


# -- getMore ---------------------------------------------------------------------------------


def test_get_more_asks_the_same_server_for_the_next_batch(
    mock: MockServer, coll: Collection
) -> None:
    future = mock.run(list, coll.find({"a": 1}, batch_size=2))
    find = mock.receives("find")
    assert find.body["batchSize"] == 2
    first_batch(find, [{"_id": 1}, {"_id": 2}], BIG_ID)
    more = mock.receives("getMore")
    assert more.body == {"getMore": BIG_ID, "collection": "things", "batchSize": 2, "$db": "test"}
    assert type(more.body["getMore"]) is Int64
    assert more.port == find.port
    next_batch(more, [{"_id": 3}, {"_id": 4}], BIG_ID)
    last = mock.receives("getMore")
    assert last.body["getMore"] == BIG_ID
    next_batch(last, [{"_id": 5}])
    assert future.result(TIMEOUT) == [{"_id": i} for i in range(1, 6)]
    mock.assert_nothing_received()  # exhausted: no killCursors


def test_get_more_without_batch_size(mock: MockServer, coll: Collection) -> None:
    future = mock.run(list, coll.find())
    first_batch(mock.receives("find"), [{"_id": 1}], BIG_ID)
    more = mock.receives("getMore")
    assert more.body == {"getMore": BIG_ID, "collection": "things", "$db": "test"}
    next_batch(more, [])
    assert future.result(TIMEOUT) == [{"_id": 1}]


def test_get_more_in_a_sub_collection_names_it(mock: MockServer, coll: Collection) -> None:
    future = mock.run(list, coll.sub.find())
    find = mock.receives("find")
    assert find.body["find"] == "things.sub"
    first_batch(find, [{"_id": 1}], BIG_ID)
    more = mock.receives("getMore")
    assert more.body["collection"] == "things.sub"
    next_batch(more, [])
    assert future.result(TIMEOUT) == [{"_id": 1}]


def test_cursor_ids_are_sent_as_64_bit_integers_even_when_small(
    mock: MockServer, coll: Collection
) -> None:
    cursor = coll.find(batch_size=1)
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}], 42)
    future.result(TIMEOUT)
    future = mock.run(next, cursor)
    more = mock.receives("getMore")
    next_batch(more, [{"_id": 2}], 42)
    future.result(TIMEOUT)
    future = mock.run(cursor.close)
    kill = mock.receives("killCursors")
    kill.reply(cursorsKilled=[42])
    future.result(TIMEOUT)
    assert (type(more.body["getMore"]), type(kill.body["cursors"][0])) == (Int64, Int64)


def test_a_failed_get_more_raises_and_leaves_nothing_to_kill(
    mock: MockServer, coll: Collection
) -> None:
    cursor = coll.find()
    future = mock.run(list, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}], BIG_ID)
    mock.receives("getMore").error(43, f"cursor id {BIG_ID} not found")
    with pytest.raises(errors.CursorNotFound) as info:
        future.result(TIMEOUT)
    assert info.value.code == 43
    assert not cursor.alive
    cursor.close()
    mock.assert_nothing_received()


def test_alive_and_cursor_id(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find()
    assert cursor.alive and cursor.cursor_id == 0
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}], BIG_ID)
    assert future.result(TIMEOUT) == {"_id": 1}
    assert cursor.alive and cursor.cursor_id == BIG_ID
    future = mock.run(list, cursor)
    next_batch(mock.receives("getMore"), [{"_id": 2}])
    assert future.result(TIMEOUT) == [{"_id": 2}]
    assert not cursor.alive and cursor.cursor_id == 0


# -- killCursors -----------------------------------------------------------------------------


def test_close_kills_the_cursor_on_the_server(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find(batch_size=2)
    future = mock.run(next, cursor)
    find = mock.receives("find")
    first_batch(find, [{"_id": 1}, {"_id": 2}], BIG_ID)
    assert future.result(TIMEOUT) == {"_id": 1}
    future = mock.run(cursor.close)
    kill = mock.receives("killCursors")
    assert kill.body == {"killCursors": "things", "cursors": [BIG_ID], "$db": "test"}
    assert kill.port == find.port
    kill.reply(cursorsKilled=[BIG_ID])
    assert future.result(TIMEOUT) is None
    assert list(cursor) == []  # the buffered document is dropped, and nothing is sent
    cursor.close()  # a second close sends nothing either
    mock.assert_nothing_received()


def test_close_ignores_a_failed_kill_cursors(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find()
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}], BIG_ID)
    future.result(TIMEOUT)
    future = mock.run(cursor.close)
    mock.receives("killCursors").error(43, "cursor not found")
    assert future.result(TIMEOUT) is None  # check=False: no error


def test_closing_a_cursor_the_server_has_finished_sends_nothing(
    mock: MockServer, coll: Collection
) -> None:
    cursor = coll.find()
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}, {"_id": 2}])  # id 0: server is done
    future.result(TIMEOUT)
    cursor.close()
    coll.find().close()  # never started
    mock.assert_nothing_received()


def test_leaving_a_with_block_closes_the_cursor(mock: MockServer, coll: Collection) -> None:
    def read_one() -> Any:
        with coll.find() as cursor:
            return next(cursor)

    future = mock.run(read_one)
    first_batch(mock.receives("find"), [{"_id": 1}, {"_id": 2}], BIG_ID)
    kill = mock.receives("killCursors")
    assert kill.body == {"killCursors": "things", "cursors": [BIG_ID], "$db": "test"}
    kill.reply()
    assert future.result(TIMEOUT) == {"_id": 1}


def test_a_collected_cursor_is_killed_before_the_next_operation(
    mock: MockServer, coll: Collection
) -> None:
    cursor = coll.find()
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}, {"_id": 2}], BIG_ID)
    future.result(TIMEOUT)
    del cursor, future
    gc.collect()
    mock.assert_nothing_received()  # no I/O from the garbage collector
    future = mock.run(coll.database.command, "ping")
    kill = mock.receives("killCursors")
    assert kill.body == {"killCursors": "things", "cursors": [BIG_ID], "$db": "test"}
    kill.reply()
    mock.receives("ping").reply()
    assert future.result(TIMEOUT) == {"ok": 1}


def test_rewind_runs_the_query_again(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find({"a": 1}).limit(2)
    future = mock.run(list, cursor)
    first = mock.receives("find")
    first_batch(first, [{"_id": 1}])
    assert future.result(TIMEOUT) == [{"_id": 1}]
    future = mock.run(list, cursor.rewind())
    again = mock.receives("find")
    assert (
        again.body
        == first.body
        == {"find": "things", "filter": {"a": 1}, "limit": 2, "$db": "test"}
    )
    first_batch(again, [{"_id": 1}])
    assert future.result(TIMEOUT) == [{"_id": 1}]


# -- count -------------------------------------------------------------------------------------


def test_count_sends_the_filter(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.find({"a": 1}).skip(2).limit(-3).count)
    cmd = mock.receives("count")
    assert cmd.body == {"count": "things", "query": {"a": 1}, "$db": "test"}
    cmd.reply(n=10)
    assert future.result(TIMEOUT) == 10


def test_count_with_limit_and_skip(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.find({"a": 1}).skip(2).limit(-3).count, True)
    cmd = mock.receives("count")
    assert cmd.body == {"count": "things", "query": {"a": 1}, "limit": 3, "skip": 2, "$db": "test"}
    cmd.reply(n=3)
    assert future.result(TIMEOUT) == 3
    future = mock.run(coll.find().count, with_limit_and_skip=True)
    cmd = mock.receives("count")
    assert cmd.body == {"count": "things", "query": {}, "$db": "test"}
    cmd.reply(n=0)
    assert future.result(TIMEOUT) == 0


def test_count_failure(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.find().count)
    mock.receives("count").error(13, "unauthorized")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 13


# -- wire 4 and 5 --------------------------------------------------------------------------------


@pytest.mark.parametrize("max_wire", [4, 5])
def test_old_servers_get_find_get_more_and_kill_cursors_as_op_query(max_wire: int) -> None:
    with MockServer(max_wire=max_wire) as mock:
        coll = mock.connect().test.things
        cursor = coll.find({"a": 1}, ["b"], batch_size=1)
        future = mock.run(next, cursor)
        find = mock.receives("find")
        assert find.body == {
            "find": "things",
            "filter": {"a": 1},
            "projection": {"b": 1},
            "batchSize": 1,
        }
        assert find.flags == 0  # one server: no SlaveOk
        first_batch(find, [{"_id": 1}], BIG_ID)
        assert future.result(TIMEOUT) == {"_id": 1}
        future = mock.run(next, cursor)
        more = mock.receives("getMore")
        assert more.body == {"getMore": BIG_ID, "collection": "things", "batchSize": 1}
        next_batch(more, [{"_id": 2}], BIG_ID)
        assert future.result(TIMEOUT) == {"_id": 2}
        future = mock.run(cursor.close)
        kill = mock.receives("killCursors")
        assert kill.body == {"killCursors": "things", "cursors": [BIG_ID]}
        kill.reply()
        assert future.result(TIMEOUT) is None
