"""The pymongo 2.8 cursor (wireclient/client/cursor.py, find_options.py): the find command each
modifier, keyword and option bit builds (mockupdb records it), what is refused before
anything is sent, and against SecantusDB indexing and slicing, ``clone``, ``rewind``,
``distinct``, ``count``, ``explain``, ``hint``, ``min`` / ``max``, ``retrieved`` and a
tailable cursor on a capped collection. ``max_scan`` and ``where`` are checked on the wire
only: SecantusDB ignores ``maxScan`` and has no JavaScript for ``$where``."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
from bson import Int64
from bson.code import Code
from mock_server import MockServer, Received

from wireclient import Collection, Connection, Cursor, ReadPreference
from wireclient.errors import (
    ConfigurationError,
    InvalidArgument,
    InvalidOperation,
    OperationFailure,
)

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def mcoll(mock: MockServer) -> Collection:
    return mock.connect().test.things


@pytest.fixture()
def coll(conn: Connection, request: Any) -> Collection:
    c = conn.test_cursor_modifiers[request.node.name[:60]]
    c.drop()
    c.insert([{"_id": i, "i": i, "s": i % 3} for i in range(20)])
    c.create_index("i")
    return c


def first_batch(cmd: Received, docs: List[Dict[str, Any]], cursor_id: int = 0) -> None:
    cmd.reply(cursor={"id": Int64(cursor_id), "ns": "test.things", "firstBatch": docs})


def sent(mock: MockServer, cursor: Cursor, name: str = "find") -> Dict[str, Any]:
    future = mock.run(list, cursor)
    cmd = mock.receives(name)
    first_batch(cmd, [])
    future.result(TIMEOUT)
    body = dict(cmd.body)
    del body["$db"]
    return body


# -- on the wire ------------------------------------------------------------------------------


def test_find_keywords(mock: MockServer, mcoll: Collection) -> None:
    cursor = mcoll.find(
        {"a": 1},
        projection={"a": 1},
        hint="a_1",
        max_time_ms=100,
        comment="why",
        max_scan=10,
        max=[("a", 5)],
        min={"a": 1},
        tailable=True,
        await_data=True,
        timeout=False,
        partial=True,
        oplog_replay=True,
        manipulate=False,
    )
    assert sent(mock, cursor) == {
        "find": "things",
        "filter": {"a": 1},
        "projection": {"a": 1},
        "hint": "a_1",
        "maxTimeMS": 100,
        "comment": "why",
        "maxScan": 10,
        "max": {"a": 5},
        "min": {"a": 1},
        "tailable": True,
        "awaitData": True,
        "noCursorTimeout": True,
        "allowPartialResults": True,
        "oplogReplay": True,
    }
    pymongo4 = mcoll.find(no_cursor_timeout=True, allow_partial_results=True, hint=[("a", -1)])
    assert sent(mock, pymongo4) == {
        "find": "things",
        "filter": {},
        "noCursorTimeout": True,
        "allowPartialResults": True,
        "hint": {"a": -1},
    }


def test_chained_modifiers(mock: MockServer, mcoll: Collection) -> None:
    cursor = (
        mcoll.find()
        .hint([("a", 1), ("b", -1)])
        .max_time_ms(5)
        .comment({"by": "test"})
        .max_scan(3)
        .max([("a", 9)])
        .min([("a", 2)])
        .where("this.a > 1")
    )
    body = sent(mock, cursor)
    assert body == {
        "find": "things",
        "filter": {"$where": Code("this.a > 1")},
        "hint": {"a": 1, "b": -1},
        "maxTimeMS": 5,
        "comment": {"by": "test"},
        "maxScan": 3,
        "max": {"a": 9},
        "min": {"a": 2},
    }
    assert list(body["hint"]) == ["a", "b"]
    cleared = mcoll.find().hint("a_1").hint(None).max_time_ms(7).max_time_ms(None)
    assert sent(mock, cleared) == {"find": "things", "filter": {}}


def test_modifiers_document_and_option_bits(mock: MockServer, mcoll: Collection) -> None:
    modifiers = {
        "$orderby": [("a", -1)],
        "$hint": "a_1",
        "$comment": "c",
        "$maxTimeMS": 9,
        "$max": {"a": 3},
        "$min": {"a": 1},
        "$maxScan": 4,
        "$returnKey": True,
        "$showDiskLoc": True,
    }
    assert sent(mock, mcoll.find(modifiers=modifiers)) == {
        "find": "things",
        "filter": {},
        "sort": {"a": -1},
        "hint": "a_1",
        "comment": "c",
        "maxTimeMS": 9,
        "max": {"a": 3},
        "min": {"a": 1},
        "maxScan": 4,
        "returnKey": True,
        "showRecordId": True,
    }
    cursor = mcoll.find().add_option(2 | 8 | 16 | 32 | 128 | 4).remove_option(8)
    assert sent(mock, cursor) == {
        "find": "things",
        "filter": {},
        "tailable": True,
        "noCursorTimeout": True,
        "awaitData": True,
        "allowPartialResults": True,
    }  # 4 (slaveOk) is accepted and changes nothing


def test_refusals_send_nothing(mock: MockServer, mcoll: Collection) -> None:
    for call, error, text in [
        (lambda: mcoll.find(exhaust=True, limit=2), InvalidOperation, "limit and exhaust"),
        (lambda: mcoll.find(tailable=True).add_option(64), InvalidOperation, "tailable and"),
        (lambda: mcoll.find().add_option(1 << 12), ConfigurationError, "unknown cursor option"),
        (lambda: mcoll.find(snapshot=True), InvalidOperation, "removed in MongoDB 4.0"),
        (lambda: mcoll.find(slave_okay=True), InvalidOperation, "SECONDARY_PREFERRED"),
        (lambda: mcoll.find(compile_re=True), InvalidOperation, "bson.regex.Regex"),
        (lambda: mcoll.find(secondary_acceptable_latency_ms=5), InvalidOperation, "per connection"),
        (lambda: mcoll.find(modifiers={"$snapshot": True}), InvalidOperation, "4.0"),
        (lambda: mcoll.find(modifiers={"$explain": True}), InvalidOperation, "explain()"),
        (lambda: mcoll.find(modifiers={"$bogus": 1}), ConfigurationError, "unknown modifier"),
        (lambda: mcoll.find(fields=["a"], projection=["b"]), ConfigurationError, "not both"),
        (lambda: mcoll.find(max_time_ms=-1), ConfigurationError, "max_time_ms"),
        (lambda: mcoll.find(max_time_ms="1"), InvalidArgument, "max_time_ms"),
        (lambda: mcoll.find().max("a"), InvalidArgument, "max"),
        (lambda: mcoll.find().min([]), ConfigurationError, "min"),
        (lambda: mcoll.find().hint(""), ConfigurationError, "hint"),
        (lambda: mcoll.find().where(5), InvalidArgument, "code"),
        (lambda: mcoll.find(as_class=list), InvalidArgument, "as_class"),
        (lambda: mcoll.find(tailable="yes"), InvalidArgument, "tailable"),
        (lambda: mcoll.find()["a"], InvalidArgument, "index"),
    ]:
        with pytest.raises(error, match=text):
            call()
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        mcoll.find(nope=1)
    # the defaults of the refused 2.8 keywords are accepted
    mcoll.find(snapshot=False, slave_okay=False, compile_re=False, exhaust=False)
    mock.assert_nothing_received(timeout=0.05)


def test_modifiers_after_iteration_began_are_refused(mock: MockServer, mcoll: Collection) -> None:
    cursor = mcoll.find()
    future = mock.run(next, cursor)
    first_batch(mock.receives("find"), [{"_id": 1}, {"_id": 2}])
    future.result(TIMEOUT)
    for modify in (
        lambda: cursor.hint("a"),
        lambda: cursor.max_time_ms(1),
        lambda: cursor.max_scan(1),
        lambda: cursor.max([("a", 1)]),
        lambda: cursor.min([("a", 1)]),
        lambda: cursor.comment("x"),
        lambda: cursor.where("1"),
        lambda: cursor.add_option(2),
        lambda: cursor.remove_option(2),
        lambda: cursor[1:2],
    ):
        with pytest.raises(InvalidOperation):
            modify()
    assert list(cursor) == [{"_id": 2}]


def test_explain_and_count_options_on_the_wire(mock: MockServer, mcoll: Collection) -> None:
    cursor = mcoll.find({"a": 1}).limit(3).hint("a_1").max_time_ms(50)
    future = mock.run(cursor.explain)
    cmd = mock.receives("explain")
    assert cmd.body == {
        "explain": {
            "find": "things",
            "filter": {"a": 1},
            "limit": 3,
            "singleBatch": True,
            "hint": "a_1",
            "maxTimeMS": 50,
        },
        "$db": "test",
    }
    cmd.reply(queryPlanner={})
    assert future.result(TIMEOUT)["queryPlanner"] == {}
    future = mock.run(cursor.count)
    cmd = mock.receives("count")
    assert cmd.body == {
        "count": "things",
        "query": {"a": 1},
        "hint": "a_1",
        "maxTimeMS": 50,
        "$db": "test",
    }
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == 1


def test_tag_sets_in_find_join_the_read_preference(mcoll: Collection) -> None:
    cursor = mcoll.find(tag_sets=[{"dc": "ny"}], read_preference=ReadPreference.NEAREST)
    assert cursor._read_preference == ReadPreference.NEAREST.with_tag_sets([{"dc": "ny"}])
    with pytest.raises(ConfigurationError, match="PRIMARY cannot have tag sets"):
        mcoll.find(tag_sets=[{"dc": "ny"}])  # the collection's: primary, as in 2.8
    mcoll.read_preference = ReadPreference.SECONDARY
    joined = mcoll.find(tag_sets=[{"dc": "sf"}, {}])
    assert joined._read_preference == ReadPreference.SECONDARY.with_tag_sets([{"dc": "sf"}, {}])


# -- against SecantusDB -----------------------------------------------------------------------


def ids(cursor: Any) -> List[int]:
    return [doc["_id"] for doc in cursor]


def test_indexing_and_slicing(coll: Collection) -> None:
    assert coll.find().sort("i")[5] == {"_id": 5, "i": 5, "s": 2}
    assert coll.find({"s": 1}).sort("i")[2]["_id"] == 7
    assert coll.find().sort("i").skip(3)[1]["_id"] == 4  # an index counts from the skip
    with pytest.raises(IndexError, match="no such item"):
        coll.find()[20]
    with pytest.raises(IndexError, match="negative"):
        coll.find()[-1]
    assert ids(coll.find().sort("i")[10:13]) == [10, 11, 12]
    assert ids(coll.find().sort("i")[17:]) == [17, 18, 19]
    assert ids(coll.find().sort("i")[:2]) == [0, 1]
    assert ids(coll.find()[4:4]) == []
    with pytest.raises(IndexError, match="slice steps"):
        coll.find()[1:5:2]
    with pytest.raises(IndexError, match="greater than start"):
        coll.find()[5:3]
    with pytest.raises(IndexError):
        coll.find()[-3:]


def test_clone_rewind_retrieved_and_properties(coll: Collection, conn: Connection) -> None:
    cursor = coll.find({"s": 0}).sort("i", -1).batch_size(2)
    twin = cursor.clone()
    assert twin is not cursor and twin.collection is coll
    assert cursor.address is None and cursor.retrieved == 0
    first = next(cursor)
    assert first["_id"] == 18 and cursor.retrieved == 2
    assert cursor.address == conn.address == cursor.conn_id and cursor.alive
    assert ids(twin) == [18, 15, 12, 9, 6, 3, 0]  # the clone starts from the beginning
    assert ids(cursor) == [15, 12, 9, 6, 3, 0] and cursor.retrieved == 7
    assert not cursor.alive
    assert ids(cursor.rewind()) == [18, 15, 12, 9, 6, 3, 0] and cursor.retrieved == 7
    same = coll.find().limit(3).clone()
    assert len(list(same)) == 3


def test_cursor_distinct_count_and_explain(coll: Collection) -> None:
    assert sorted(coll.find({"i": {"$lt": 5}}).distinct("s")) == [0, 1, 2]
    assert coll.find({"s": 2}).distinct("s") == [2]
    cursor = coll.find({"s": 1}).skip(2).limit(3)
    assert cursor.count() == 7
    assert cursor.count(with_limit_and_skip=True) == 3
    plan = coll.find({"i": 3}).hint("i_1").explain()
    assert plan["queryPlanner"]["namespace"] == coll.full_name


def test_hint_min_max_comment_and_time_limit(coll: Collection) -> None:
    assert ids(coll.find().hint("i_1").min([("i", 15)])) == [15, 16, 17, 18, 19]
    assert ids(coll.find().hint([("i", 1)]).max([("i", 3)])) == [0, 1, 2]
    with pytest.raises(OperationFailure, match="hint"):
        list(coll.find().hint("no_such_index"))
    assert len(list(coll.find().comment("from a test").max_time_ms(10_000))) == 20
    assert len(list(coll.find(partial=True, no_cursor_timeout=True))) == 20
    top = coll.find(
        projection={"i": 1, "_id": 0},
        modifiers={"$orderby": [("i", -1)], "$maxTimeMS": 1000, "$comment": "m"},
        limit=2,
        manipulate=True,
    )
    assert list(top) == [{"i": 19}, {"i": 18}]
    flagged = coll.find({"s": 0}).add_option(16).add_option(128).remove_option(128)
    assert len(list(flagged)) == 7


def test_where_is_refused_by_a_server_without_javascript(coll: Collection) -> None:
    with pytest.raises(OperationFailure):
        list(coll.find().where("this.i > 10"))


def test_tailable_cursor_on_a_capped_collection(conn: Connection) -> None:
    db = conn.test_cursor_modifiers
    db.drop_collection("capped")
    capped = db.create_collection("capped", capped=True, size=100_000)
    capped.insert([{"i": i} for i in range(3)])
    cursor = capped.find(tailable=True, await_data=True)
    assert [d["i"] for d in cursor] == [0, 1, 2]
    assert cursor.alive and cursor.cursor_id  # the server keeps it open for more
    capped.insert({"i": 3})
    assert [d["i"] for d in cursor] == [3]
    cursor.close()
    with pytest.raises(OperationFailure, match="tailable"):
        list(db.not_capped.find(tailable=True))
