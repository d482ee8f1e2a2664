"""Collection (wireclient/client/collection.py) through the public API, against a mockupdb server
that records exactly what arrives (tests/support/mock_server.py): the write commands, their
statements, write concerns, batches and unacknowledged sends; the read and index helpers;
the errors a reply turns into; and the OP_QUERY form for wire 4-5 servers."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator

import pytest
from bson import ObjectId
from mock_server import MockServer

from wireclient import Collection, Connection, errors

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def coll(mock: MockServer) -> Collection:
    return mock.connect().test.things


# -- insert -----------------------------------------------------------------------------


def test_insert_one_sends_its_document_in_a_documents_sequence(
    mock: MockServer, coll: Collection
) -> None:
    doc: Dict[str, Any] = {"a": 1, "s": "x"}
    future = mock.run(coll.insert, doc)
    cmd = mock.receives("insert")
    assert cmd.body == {"insert": "things", "ordered": True, "$db": "test"}
    assert not cmd.more_to_come
    assert isinstance(doc["_id"], ObjectId)  # added to the caller's document
    assert cmd.sequences == {"documents": [{"_id": doc["_id"], "a": 1, "s": "x"}]}
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == doc["_id"]


def test_insert_many_returns_the_ids_and_keeps_given_ones(
    mock: MockServer, coll: Collection
) -> None:
    docs = [{"_id": 7, "a": 1}, {"a": 2}, {"_id": "x"}]
    future = mock.run(coll.insert, docs)
    cmd = mock.receives("insert")
    assert cmd.body == {"insert": "things", "ordered": True, "$db": "test"}
    sent = cmd.sequences["documents"]
    assert [d["_id"] for d in sent] == [7, docs[1]["_id"], "x"]
    assert isinstance(docs[1]["_id"], ObjectId)
    assert sent[1] == {"_id": docs[1]["_id"], "a": 2}
    cmd.reply(n=3)
    assert future.result(TIMEOUT) == [7, docs[1]["_id"], "x"]


def test_insert_without_manipulate_adds_no_id(mock: MockServer, coll: Collection) -> None:
    doc = {"a": 1}
    future = mock.run(coll.insert, doc, manipulate=False)
    cmd = mock.receives("insert")
    assert cmd.sequences == {"documents": [{"a": 1}]}
    assert doc == {"a": 1}
    cmd.reply(n=1)
    assert future.result(TIMEOUT) is None


def test_insert_continue_on_error_is_unordered(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.insert, [{"_id": 1}, {"_id": 2}], continue_on_error=True)
    cmd = mock.receives("insert")
    assert cmd.body == {"insert": "things", "ordered": False, "$db": "test"}
    cmd.reply(n=2)
    assert future.result(TIMEOUT) == [1, 2]


def test_insert_into_a_sub_collection(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.sub.insert, {"_id": 1})
    cmd = mock.receives("insert")
    assert cmd.body == {"insert": "things.sub", "ordered": True, "$db": "test"}
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == 1


@pytest.mark.parametrize(
    "kwargs, write_concern",
    [
        ({}, None),
        ({"safe": True}, None),
        ({"w": 1}, {"w": 1}),
        ({"w": 2}, {"w": 2}),
        ({"w": "majority", "wtimeout": 250}, {"w": "majority", "wtimeout": 250}),
        ({"j": True}, {"j": True}),
        ({"safe": True, "w": 3, "j": False}, {"w": 3, "j": False}),
    ],
)
def test_write_concern_is_sent_only_when_set(
    mock: MockServer, coll: Collection, kwargs: Dict[str, Any], write_concern: Any
) -> None:
    for operation in ("insert", "update", "delete"):
        call: Callable[..., Any] = {
            "insert": lambda: coll.insert({"_id": 1}, **kwargs),
            "update": lambda: coll.update({"_id": 1}, {"$set": {"a": 1}}, **kwargs),
            "delete": lambda: coll.remove({"_id": 1}, **kwargs),
        }[operation]
        future = mock.run(call)
        cmd = mock.receives(operation)
        assert cmd.body.get("writeConcern") == write_concern, operation
        assert ("writeConcern" in cmd.body) is (write_concern is not None)
        assert not cmd.more_to_come
        cmd.reply(n=1)
        assert future.result(TIMEOUT) is not None


def test_batches_follow_max_write_batch_size() -> None:
    with MockServer(maxWriteBatchSize=2) as mock:
        coll = mock.connect().test.things
        docs = [{"_id": i} for i in range(5)]
        future = mock.run(coll.insert, docs)
        batches = []
        for _ in range(3):
            cmd = mock.receives("insert")
            assert cmd.body == {"insert": "things", "ordered": True, "$db": "test"}
            batches.append([d["_id"] for d in cmd.sequences["documents"]])
            cmd.reply(n=len(cmd.sequences["documents"]))
        assert batches == [[0, 1], [2, 3], [4]]
        assert future.result(TIMEOUT) == [0, 1, 2, 3, 4]
        mock.assert_nothing_received()


def test_batches_fit_in_max_message_size_bytes() -> None:
    limit = 48_000
    with MockServer(maxMessageSizeBytes=limit) as mock:
        coll = mock.connect().test.things
        docs = [{"_id": i, "pad": "x" * 9000} for i in range(12)]  # ~108 kB in all
        future = mock.run(coll.insert, docs)
        received = []
        while len(received) < len(docs):
            cmd = mock.receives("insert")
            assert len(cmd.request.frame) <= limit
            batch = [d["_id"] for d in cmd.sequences["documents"]]
            assert batch
            received.extend(batch)
            cmd.reply(n=len(batch))
        assert received == list(range(12))  # in order, each once, in 3 or more messages
        assert future.result(TIMEOUT) == list(range(12))
        mock.assert_nothing_received()


def test_a_document_over_max_bson_object_size_is_refused_before_sending() -> None:
    with MockServer(maxBsonObjectSize=1000) as mock:
        coll = mock.connect().test.things
        with pytest.raises(errors.InvalidDocument, match="1000"):
            coll.insert([{"_id": 1}, {"_id": 2, "pad": "x" * 1000}])
        mock.assert_nothing_received()  # not even the first, small, document


@pytest.mark.parametrize(
    "docs",
    [[], [{"$bad": 1}], [{"a.b": 1}], [{"_id": 1}, "not a document"]],
    ids=["empty", "dollar key", "dotted key", "not a mapping"],
)
def test_invalid_documents_are_refused_before_sending(
    mock: MockServer, coll: Collection, docs: Any
) -> None:
    with pytest.raises(errors.InvalidDocument):
        coll.insert(docs)
    mock.assert_nothing_received()


def test_check_keys_false_sends_dollar_keys(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.insert, {"_id": 1, "$x": 1}, check_keys=False)
    cmd = mock.receives("insert")
    assert cmd.sequences["documents"] == [{"_id": 1, "$x": 1}]
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == 1


# -- unacknowledged writes ----------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"safe": False}, {"w": 0}])
@pytest.mark.parametrize("operation", ["insert", "update", "delete"])
def test_unacknowledged_writes_set_more_to_come_and_return_at_once(
    mock: MockServer, kwargs: Dict[str, Any], operation: str
) -> None:
    conn = mock.connect(socketTimeoutMS=2000)
    coll = conn.test.things
    result = {
        "insert": lambda: coll.insert({"_id": 1}, **kwargs),
        "update": lambda: coll.update({"_id": 1}, {"$set": {"a": 1}}, **kwargs),
        "delete": lambda: coll.remove({"_id": 1}, **kwargs),
    }[operation]()
    # No reply was waited for: the mock never answers a moreToCome write, so waiting for one
    # would have raised NetworkTimeout after socketTimeoutMS (no clock needed).
    assert result == (1 if operation == "insert" else None)
    cmd = mock.receives(operation)
    assert cmd.more_to_come
    assert cmd.body["writeConcern"] == {"w": 0}
    # the socket is still in step: the next command gets its own reply
    future = mock.run(conn.test.command, "ping")
    ping = mock.receives("ping")
    assert ping.port == cmd.port
    ping.reply(pong=1)
    assert future.result(TIMEOUT)["pong"] == 1


def test_unacknowledged_batches_all_go_out() -> None:
    with MockServer(maxWriteBatchSize=2) as mock:
        coll = mock.connect().test.things
        assert coll.insert([{"_id": i} for i in range(3)], safe=False) == [0, 1, 2]
        first, second = mock.receives("insert"), mock.receives("insert")
        assert first.more_to_come and second.more_to_come
        assert [d["_id"] for d in first.sequences["documents"] + second.sequences["documents"]] == [
            0,
            1,
            2,
        ]


def test_safe_true_contradicting_w_0_is_refused(mock: MockServer, coll: Collection) -> None:
    with pytest.raises(errors.ConfigurationError):
        coll.insert({"_id": 1}, safe=True, w=0)
    with pytest.raises(errors.ConfigurationError):
        coll.update({"_id": 1}, {"$set": {"a": 1}}, w=0, j=True)
    mock.assert_nothing_received()


# -- update / remove / save ---------------------------------------------------------------


@pytest.mark.parametrize("upsert", [False, True])
@pytest.mark.parametrize("multi", [False, True])
def test_update_statement(mock: MockServer, coll: Collection, upsert: bool, multi: bool) -> None:
    future = mock.run(coll.update, {"a": 1}, {"$set": {"b": 2}}, upsert=upsert, multi=multi)
    cmd = mock.receives("update")
    assert cmd.body == {"update": "things", "ordered": True, "$db": "test"}
    assert cmd.sequences == {
        "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 2}}, "upsert": upsert, "multi": multi}]
    }
    cmd.reply(n=1, nModified=1)
    assert future.result(TIMEOUT) == {"ok": 1, "n": 1, "nModified": 1, "updatedExisting": True}


def test_update_result_reports_an_upsert(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.update, {"k": 1}, {"k": 1, "v": 2}, upsert=True)
    cmd = mock.receives("update")
    assert cmd.sequences["updates"] == [
        {"q": {"k": 1}, "u": {"k": 1, "v": 2}, "upsert": True, "multi": False}
    ]
    cmd.reply(n=1, nModified=0, upserted=[{"index": 0, "_id": 42}])
    assert future.result(TIMEOUT) == {
        "ok": 1,
        "n": 1,
        "nModified": 0,
        "updatedExisting": False,
        "upserted": 42,
    }


def test_update_matching_nothing(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.update, {"k": 1}, {"$inc": {"n": 1}})
    mock.receives("update").reply(n=0, nModified=0)
    assert future.result(TIMEOUT) == {"ok": 1, "n": 0, "nModified": 0, "updatedExisting": False}


def test_update_replacement_keys_are_checked_before_sending(
    mock: MockServer, coll: Collection
) -> None:
    with pytest.raises(errors.InvalidDocument):
        coll.update({"a": 1}, {"b": {"$bad": 1}})
    mock.assert_nothing_received()


@pytest.mark.parametrize(
    "args, kwargs, statement",
    [
        ((), {}, {"q": {}, "limit": 0}),
        (({"a": 1},), {}, {"q": {"a": 1}, "limit": 0}),
        (({"a": 1},), {"multi": False}, {"q": {"a": 1}, "limit": 1}),
        ((5,), {}, {"q": {"_id": 5}, "limit": 0}),
        ((ObjectId("0123456789ab0123456789ab"),), {}, None),
    ],
    ids=["all", "spec", "one", "by id", "by ObjectId"],
)
def test_remove_statement(
    mock: MockServer, coll: Collection, args: Any, kwargs: Dict[str, Any], statement: Any
) -> None:
    if statement is None:
        statement = {"q": {"_id": args[0]}, "limit": 0}
    future = mock.run(coll.remove, *args, **kwargs)
    cmd = mock.receives("delete")
    assert cmd.body == {"delete": "things", "ordered": True, "$db": "test"}
    assert cmd.sequences == {"deletes": [statement]}
    cmd.reply(n=3)
    assert future.result(TIMEOUT) == {"ok": 1, "n": 3}


def test_save_inserts_a_new_document_and_upserts_one_with_an_id(
    mock: MockServer, coll: Collection
) -> None:
    doc: Dict[str, Any] = {"a": 1}
    future = mock.run(coll.save, doc)
    cmd = mock.receives("insert")
    assert cmd.sequences == {"documents": [doc]}
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == doc["_id"]

    future = mock.run(coll.save, {"_id": 9, "a": 2})
    cmd = mock.receives("update")
    assert cmd.sequences == {
        "updates": [{"q": {"_id": 9}, "u": {"_id": 9, "a": 2}, "upsert": True, "multi": False}]
    }
    cmd.reply(n=1, upserted=[{"index": 0, "_id": 9}])
    assert future.result(TIMEOUT) == 9


# -- errors in replies -------------------------------------------------------------------

WRITES: Dict[str, Callable[[Collection], Any]] = {
    "insert": lambda c: c.insert({"_id": 1}),
    "update": lambda c: c.update({"_id": 1}, {"$set": {"a": 1}}),
    "delete": lambda c: c.remove({"_id": 1}),
}


@pytest.mark.parametrize("operation", list(WRITES))
def test_write_error_11000_is_a_duplicate_key_error(
    mock: MockServer, coll: Collection, operation: str
) -> None:
    future = mock.run(WRITES[operation], coll)
    mock.receives(operation).reply(
        n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}]
    )
    with pytest.raises(errors.DuplicateKeyError) as info:
        future.result(TIMEOUT)
    assert info.value.code == 11000
    assert "E11000" in str(info.value)


@pytest.mark.parametrize("operation", list(WRITES))
def test_other_write_errors_are_operation_failures(
    mock: MockServer, coll: Collection, operation: str
) -> None:
    future = mock.run(WRITES[operation], coll)
    mock.receives(operation).reply(
        n=0, writeErrors=[{"index": 0, "code": 121, "errmsg": "Document failed validation"}]
    )
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert not isinstance(info.value, errors.DuplicateKeyError)
    assert info.value.code == 121
    assert info.value.details["errmsg"] == "Document failed validation"


@pytest.mark.parametrize("operation", list(WRITES))
def test_write_concern_errors(mock: MockServer, coll: Collection, operation: str) -> None:
    future = mock.run(WRITES[operation], coll)
    mock.receives(operation).reply(
        n=1, writeConcernError={"code": 64, "errmsg": "waiting for replication timed out"}
    )
    with pytest.raises(errors.WriteConcernError) as info:
        future.result(TIMEOUT)
    assert info.value.code == 64


@pytest.mark.parametrize("operation", list(WRITES))
def test_ok_0_replies_to_writes_are_operation_failures(
    mock: MockServer, coll: Collection, operation: str
) -> None:
    future = mock.run(WRITES[operation], coll)
    mock.receives(operation).error(13, "not authorized on test to execute command")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 13
    # the socket stays usable (and in step) after a command error
    future = mock.run(coll.database.command, "ping")
    mock.receives("ping").reply()
    assert future.result(TIMEOUT) == {"ok": 1}


def test_a_failed_batch_stops_the_insert() -> None:
    with MockServer(maxWriteBatchSize=1) as small:
        coll = small.connect().test.things
        future = small.run(coll.insert, [{"_id": 1}, {"_id": 2}])
        small.receives("insert").reply(
            n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "dup"}]
        )
        with pytest.raises(errors.DuplicateKeyError):
            future.result(TIMEOUT)
        small.assert_nothing_received()  # the second batch was not sent


# -- reads, helpers, indexes ----------------------------------------------------------------


def test_find_one_by_id(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.find_one, 5)
    cmd = mock.receives("find")
    assert cmd.body == {
        "find": "things",
        "filter": {"_id": 5},
        "limit": 1,
        "singleBatch": True,
        "$db": "test",
    }
    cmd.reply(cursor={"id": 0, "ns": "test.things", "firstBatch": [{"_id": 5}]})
    assert future.result(TIMEOUT) == {"_id": 5}


def test_find_one_with_a_spec_and_no_match(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.find_one, {"a": 1})
    cmd = mock.receives("find")
    assert cmd.body["filter"] == {"a": 1}
    cmd.reply(cursor={"id": 0, "ns": "test.things", "firstBatch": []})
    assert future.result(TIMEOUT) is None


def test_count(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.count)
    cmd = mock.receives("count")
    assert cmd.body == {"count": "things", "query": {}, "$db": "test"}
    cmd.reply(n=17)
    assert future.result(TIMEOUT) == 17
    future = mock.run(coll.count, {"a": {"$gt": 1}})
    cmd = mock.receives("count")
    assert cmd.body == {"count": "things", "query": {"a": {"$gt": 1}}, "$db": "test"}
    cmd.reply(n=2)
    assert future.result(TIMEOUT) == 2


def test_distinct(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.distinct, "k")
    cmd = mock.receives("distinct")
    assert cmd.body == {"distinct": "things", "key": "k", "$db": "test"}
    cmd.reply(values=[1, "two", None])
    assert future.result(TIMEOUT) == [1, "two", None]
    future = mock.run(coll.distinct, "k", {"a": 1})
    cmd = mock.receives("distinct")
    assert cmd.body == {"distinct": "things", "key": "k", "query": {"a": 1}, "$db": "test"}
    cmd.reply(values=[])
    assert future.result(TIMEOUT) == []


def test_aggregate(mock: MockServer, coll: Collection) -> None:
    pipeline = [{"$match": {"a": 1}}, {"$group": {"_id": "$b", "n": {"$sum": 1}}}]
    cursor = coll.aggregate(pipeline)
    future = mock.run(list, cursor)
    cmd = mock.receives("aggregate")
    assert cmd.body == {"aggregate": "things", "pipeline": pipeline, "cursor": {}, "$db": "test"}
    cmd.reply(cursor={"id": 0, "ns": "test.things", "firstBatch": [{"_id": 1, "n": 2}]})
    assert future.result(TIMEOUT) == [{"_id": 1, "n": 2}]


def test_aggregate_batch_size_and_get_more(mock: MockServer, coll: Collection) -> None:
    future = mock.run(list, coll.aggregate([{"$match": {}}], batch_size=1))
    cmd = mock.receives("aggregate")
    assert cmd.body["cursor"] == {"batchSize": 1}
    cmd.reply(cursor={"id": 2**40, "ns": "test.things", "firstBatch": [{"_id": 1}]})
    more = mock.receives("getMore")
    assert more.body == {"getMore": 2**40, "collection": "things", "batchSize": 1, "$db": "test"}
    more.reply(cursor={"id": 0, "ns": "test.things", "nextBatch": [{"_id": 2}]})
    assert future.result(TIMEOUT) == [{"_id": 1}, {"_id": 2}]


@pytest.mark.parametrize(
    "args, kwargs, index",
    [
        (("a",), {}, {"key": {"a": 1}, "name": "a_1"}),
        (([("a", 1), ("b", -1)],), {}, {"key": {"a": 1, "b": -1}, "name": "a_1_b_-1"}),
        (
            ([("a", 1)],),
            {"unique": True},
            {"key": {"a": 1}, "name": "a_1", "unique": True},
        ),
        (
            ([("loc", "2dsphere")],),
            {"name": "where", "sparse": True},
            {"key": {"loc": "2dsphere"}, "name": "where", "sparse": True},
        ),
    ],
    ids=["one key", "compound", "unique", "named with options"],
)
def test_create_index(
    mock: MockServer, coll: Collection, args: Any, kwargs: Dict[str, Any], index: Any
) -> None:
    future = mock.run(coll.create_index, *args, **kwargs)
    cmd = mock.receives("createIndexes")
    assert cmd.body == {"createIndexes": "things", "indexes": [index], "$db": "test"}
    assert list(cmd.body["indexes"][0]["key"]) == list(index["key"])  # key order matters
    cmd.reply(numIndexesBefore=1, numIndexesAfter=2)
    assert future.result(TIMEOUT) == index["name"]


def test_ensure_index_is_create_index(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.ensure_index, "a")
    mock.receives("createIndexes").reply()
    assert future.result(TIMEOUT) == "a_1"


def test_create_index_failure(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.create_index, "a", unique=True)
    mock.receives("createIndexes").error(11000, "E11000 duplicate key error")
    with pytest.raises(errors.DuplicateKeyError):
        future.result(TIMEOUT)


def test_drop_index(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.drop_index, "a_1")
    cmd = mock.receives("dropIndexes")
    assert cmd.body == {"dropIndexes": "things", "index": "a_1", "$db": "test"}
    cmd.reply(nIndexesWas=2)
    assert future.result(TIMEOUT) is None
    future = mock.run(coll.drop_index, "nope")
    mock.receives("dropIndexes").error(27, "index not found with name [nope]")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 27


def test_index_information(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.index_information)
    cmd = mock.receives("listIndexes")
    assert cmd.body == {"listIndexes": "things", "$db": "test"}
    indexes = [
        {"v": 2, "key": {"_id": 1}, "name": "_id_"},
        {"v": 2, "key": {"a": 1}, "name": "a_1", "unique": True},
    ]
    cmd.reply(cursor={"id": 0, "ns": "test.things", "firstBatch": indexes})
    assert future.result(TIMEOUT) == {"_id_": indexes[0], "a_1": indexes[1]}


def test_drop(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.drop)
    cmd = mock.receives("drop")
    assert cmd.body == {"drop": "things", "$db": "test"}
    cmd.reply(ns="test.things", nIndexesWas=1)
    assert future.result(TIMEOUT) is None


def test_drop_of_a_missing_collection_is_no_error(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.drop)
    mock.receives("drop").error(26, "ns not found")
    assert future.result(TIMEOUT) is None
    future = mock.run(coll.drop)
    mock.receives("drop").error(13, "unauthorized")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 13


# -- names ----------------------------------------------------------------------------------


def test_collection_names_and_equality(mock: MockServer) -> None:
    conn = mock.connect()
    db = conn.test
    assert db.things == db["things"] == Collection(db, "things")
    assert db.things.full_name == "test.things"
    assert db.things.sub.name == "things.sub" and db.things["sub"].full_name == "test.things.sub"
    assert db.things != db.other
    for bad in ("", "a..b", ".a", "a.", "a$b", "a\x00b"):
        with pytest.raises(errors.ConfigurationError):
            db[bad]
    mock.assert_nothing_received(timeout=0.05)


# -- wire 4 and 5: OP_QUERY on db.$cmd --------------------------------------------------------


@pytest.mark.parametrize("max_wire", [4, 5])
def test_old_servers_get_writes_as_op_query_with_arrays(max_wire: int) -> None:
    with MockServer(max_wire=max_wire, maxWriteBatchSize=2) as mock:
        coll = mock.connect().test.things
        future = mock.run(coll.insert, [{"_id": 1, "a": 1}, {"_id": 2}, {"_id": 3}])
        first = mock.receives("insert")
        assert first.body == {
            "insert": "things",
            "ordered": True,
            "documents": [{"_id": 1, "a": 1}, {"_id": 2}],
        }
        first.reply(n=2)
        second = mock.receives("insert")
        assert second.body["documents"] == [{"_id": 3}]
        second.reply(n=1)
        assert future.result(TIMEOUT) == [1, 2, 3]

        future = mock.run(coll.update, {"a": 1}, {"$set": {"b": 1}}, multi=True, w=2)
        cmd = mock.receives("update")
        assert cmd.body == {
            "update": "things",
            "ordered": True,
            "writeConcern": {"w": 2},
            "updates": [{"q": {"a": 1}, "u": {"$set": {"b": 1}}, "upsert": False, "multi": True}],
        }
        cmd.reply(n=1, nModified=1)
        assert future.result(TIMEOUT)["n"] == 1

        future = mock.run(coll.remove, {"a": 1})
        cmd = mock.receives("delete")
        assert cmd.body == {
            "delete": "things",
            "ordered": True,
            "deletes": [{"q": {"a": 1}, "limit": 0}],
        }
        cmd.error(11000, "E11000 duplicate key")
        with pytest.raises(errors.DuplicateKeyError):
            future.result(TIMEOUT)


def test_old_servers_get_unacknowledged_writes_as_w_0_commands_with_a_reply() -> None:
    """Wire 4-5 has no moreToCome: the w:0 command's reply is read (and the socket stays in
    step for the next command)."""
    with MockServer(max_wire=5) as mock:
        conn = mock.connect()
        future = mock.run(conn.test.things.insert, {"_id": 1}, safe=False)
        cmd = mock.receives("insert")
        assert cmd.body["writeConcern"] == {"w": 0}
        cmd.reply()
        assert future.result(TIMEOUT) == 1
        future = mock.run(conn.test.command, "ping")
        mock.receives("ping").reply(pong=True)
        assert future.result(TIMEOUT)["pong"] is True


def test_connection_level_write_concern(mock: MockServer) -> None:
    for kwargs, expected in (
        ({"w": 2}, {"w": 2}),
        ({"safe": True}, None),
    ):
        coll = mock.connect(**kwargs).test.things
        future = mock.run(coll.insert, {"_id": 1})
        cmd = mock.receives("insert")
        assert cmd.body.get("writeConcern") == expected
        assert not cmd.more_to_come
        cmd.reply(n=1)
        future.result(TIMEOUT)


def test_connection_uri_write_concern() -> None:
    with MockServer() as mock:
        conn = Connection(
            f"{mock.uri}/?w=majority&wTimeoutMS=500&journal=true",
            auto_start_request=False,
            socketTimeoutMS=5000,
        )
        try:
            future = mock.run(conn.test.things.update, {"a": 1}, {"$set": {"a": 2}})
            cmd = mock.receives("update")
            assert cmd.body["writeConcern"] == {"w": "majority", "j": True, "wtimeout": 500}
            cmd.reply(n=1)
            future.result(TIMEOUT)
            # a per-call option replaces the connection's whole write concern
            future = mock.run(conn.test.things.update, {"a": 1}, {"$set": {"a": 2}}, w=1)
            cmd = mock.receives("update")
            assert cmd.body["writeConcern"] == {"w": 1}
            cmd.reply(n=1)
            future.result(TIMEOUT)
        finally:
            conn.close()


def test_unacknowledged_connection(mock: MockServer) -> None:
    coll = mock.connect(safe=False).test.things
    assert coll.insert({"_id": 1}) == 1
    cmd = mock.receives("insert")
    assert cmd.more_to_come and cmd.body["writeConcern"] == {"w": 0}
    # safe=True on the call asks for an acknowledgement after all
    future = mock.run(coll.insert, {"_id": 2}, safe=True)
    cmd = mock.receives("insert")
    assert not cmd.more_to_come and "writeConcern" not in cmd.body
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == 2
    coll = mock.connect(w=0).test.things
    assert coll.remove({"_id": 1}) is None
    cmd = mock.receives("delete")
    assert cmd.more_to_come and cmd.body["writeConcern"] == {"w": 0}
