"""Collection's pymongo 2.8 helpers (wireclient/client/collection.py, bulk.py) against
SecantusDB: aggregate (a cursor that also answers 2.8's result document), find_and_modify,
inline_map_reduce, rename, options, drop_indexes, index_information, ensure_index, the 2.8
bulk API; and through mockupdb, where SecantusDB lacks the command or the option:
``reIndex`` and ``mapReduce`` into a collection (SecantusDB answers only ``out: {inline: 1}``
and only the counting map/reduce)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from bson import ObjectId
from bson.code import Code
from bson.son import SON
from mock_server import MockServer

from wireclient import Collection, Connection
from wireclient.client.cursor import AggregationCursor
from wireclient.errors import (
    BulkWriteError,
    ConfigurationError,
    DuplicateKeyError,
    InvalidArgument,
    InvalidDocument,
    InvalidOperation,
    OperationFailure,
)

TIMEOUT = 5
COUNT_MAP = "function() { emit(this.s, 1); }"
COUNT_REDUCE = "function(key, values) { return values.length; }"


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def coll(conn: Connection, request: Any) -> Collection:
    c = conn.test_collection_helpers[request.node.name[:60]]
    c.drop()
    c.insert([{"_id": i, "i": i, "s": i % 3} for i in range(9)])
    return c


# -- aggregate --------------------------------------------------------------------------------


def test_aggregate_is_a_cursor_and_2_8_result_document(coll: Collection) -> None:
    pipeline = [{"$group": {"_id": "$s", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
    result = coll.aggregate(pipeline)
    assert isinstance(result, AggregationCursor)
    assert result["result"] == [{"_id": 0, "n": 3}, {"_id": 1, "n": 3}, {"_id": 2, "n": 3}]
    assert result["ok"] == 1.0 and result.get("ok") == 1.0 and result.keys() == ["result", "ok"]
    assert result["result"] is result["result"]  # fetched once
    assert list(coll.aggregate(pipeline)) == result["result"]  # pymongo 3 / 4: iterate it
    with pytest.raises(KeyError):
        result["nope"]
    started = coll.aggregate(pipeline)
    next(started)
    with pytest.raises(InvalidOperation, match="iteration has begun"):
        started["result"]


def test_aggregate_options(coll: Collection, mock: MockServer) -> None:
    batched = coll.aggregate([{"$match": {}}], cursor={"batchSize": 2})
    assert len(list(batched)) == 9 and batched.retrieved == 9
    assert len(list(coll.aggregate([{"$match": {}}], batchSize=4, allowDiskUse=True))) == 9
    explained = coll.aggregate([{"$match": {"s": 1}}], explain=True)
    assert explained["ok"] == 1
    with pytest.raises(ConfigurationError, match="unknown option 'bogus'"):
        coll.aggregate([], bogus=1)
    with pytest.raises(InvalidOperation, match="command cursor"):
        coll.aggregate([]).sort("a")
    mcoll = mock.connect().test.things
    future = mock.run(list, mcoll.aggregate([{"$match": {}}], cursor={}, maxTimeMS=5, comment="c"))
    cmd = mock.receives("aggregate")
    assert cmd.body == {
        "aggregate": "things",
        "pipeline": [{"$match": {}}],
        "maxTimeMS": 5,
        "comment": "c",
        "cursor": {},
        "$db": "test",
    }
    cmd.reply(cursor={"id": 0, "ns": "test.things", "firstBatch": []})
    assert future.result(TIMEOUT) == []


def test_aggregate_out_writes(coll: Collection) -> None:
    target = coll.database[coll.name + "_out"]
    target.drop()
    assert list(coll.aggregate([{"$match": {"s": 0}}, {"$out": target.name}])) == []
    assert target.count() == 3


# -- find_and_modify ------------------------------------------------------------------------------


def test_find_and_modify(coll: Collection) -> None:
    before = coll.find_and_modify({"_id": 1}, {"$set": {"x": 1}})
    assert before == {"_id": 1, "i": 1, "s": 1}
    after = coll.find_and_modify({"_id": 1}, {"$inc": {"x": 1}}, new=True, fields=["x"])
    assert after == {"_id": 1, "x": 2}
    assert coll.find_and_modify({"_id": 99}, {"$set": {"x": 1}}) is None
    upserted = coll.find_and_modify({"_id": 99}, {"$set": {"x": 1}}, upsert=True, new=True)
    assert upserted == {"_id": 99, "x": 1}
    replaced = coll.find_and_modify({"_id": 99}, {"y": 2}, new=True)
    assert replaced == {"_id": 99, "y": 2}
    first = coll.find_and_modify({"s": 2}, sort=[("i", -1)], remove=True)
    assert first["_id"] == 8 and coll.find_one({"_id": 8}) is None
    full = coll.find_and_modify({"_id": 0}, {"$set": {"z": 1}}, full_response=True)
    assert full["ok"] == 1 and full["value"]["_id"] == 0 and "lastErrorObject" in full
    with pytest.raises(ConfigurationError, match="needs an update or remove"):
        coll.find_and_modify({"_id": 1})
    with pytest.raises(ConfigurationError, match="cannot both"):
        coll.find_and_modify({"_id": 1}, {"$set": {"a": 1}}, remove=True)
    with pytest.raises(InvalidDocument):
        coll.find_and_modify({"_id": 1}, {"$set": {"a": 1}, "b": 2})
    coll.create_index("x", unique=True, sparse=True)
    with pytest.raises(DuplicateKeyError):
        coll.find_and_modify({"_id": 2}, {"$set": {"x": 2}})


def test_find_and_modify_shapes_by_document_class(server: Any) -> None:
    with Connection(server.uri, document_class=SON) as c:
        coll = c.test_collection_helpers.shaped
        coll.drop()
        coll.insert({"_id": 1, "inner": {"a": 1}})
        doc = coll.find_and_modify({"_id": 1}, {"$set": {"b": 1}}, new=True)
        assert isinstance(doc, SON) and isinstance(doc["inner"], SON)


# -- map-reduce ------------------------------------------------------------------------------------


def test_inline_map_reduce(coll: Collection) -> None:
    results = coll.inline_map_reduce(COUNT_MAP, COUNT_REDUCE)
    assert sorted((r["_id"], r["value"]) for r in results) == [(0, 3.0), (1, 3.0), (2, 3.0)]
    full = coll.inline_map_reduce(Code(COUNT_MAP), Code(COUNT_REDUCE), full_response=True)
    assert full["ok"] == 1 and len(full["results"]) == 3
    inline = coll.map_reduce(COUNT_MAP, COUNT_REDUCE, {"inline": 1})
    assert len(inline["results"]) == 3  # out inline: the reply, as in 2.8
    with pytest.raises(InvalidArgument, match="out must be"):
        coll.map_reduce(COUNT_MAP, COUNT_REDUCE, 5)
    with pytest.raises(InvalidArgument):
        coll.inline_map_reduce(5, COUNT_REDUCE)


def test_map_reduce_into_a_collection(mock: MockServer) -> None:
    coll = mock.connect().test.things
    future = mock.run(coll.map_reduce, "function(){}", "function(){}", "counts", query={"a": 1})
    cmd = mock.receives("mapReduce")
    assert cmd.body == {
        "mapReduce": "things",
        "map": Code("function(){}"),
        "reduce": Code("function(){}"),
        "out": "counts",
        "query": {"a": 1},
        "$db": "test",
    }
    cmd.reply(result="counts", timeMillis=3)
    out = future.result(TIMEOUT)
    assert isinstance(out, Collection) and out is coll.database.counts
    future = mock.run(coll.map_reduce, "m", "r", SON([("replace", "counts"), ("db", "elsewhere")]))
    mock.receives("mapReduce").reply(result={"db": "elsewhere", "collection": "counts"})
    assert future.result(TIMEOUT) is coll.database.connection.elsewhere.counts
    future = mock.run(coll.map_reduce, "m", "r", "counts", full_response=True)
    mock.receives("mapReduce").reply(result="counts", timeMillis=3)
    assert future.result(TIMEOUT)["timeMillis"] == 3


# -- the collection itself ------------------------------------------------------------------


def test_rename_and_options(coll: Collection) -> None:
    db = coll.database
    db.drop_collection("renamed")
    reply = coll.rename("renamed")
    assert reply["ok"] == 1 and db.renamed.count() == 9 and coll.count() == 0
    db.other.insert({"_id": 1})
    with pytest.raises(OperationFailure):
        db.other.rename("renamed")  # the target exists
    db.other.rename("renamed", dropTarget=True)
    assert db.renamed.count() == 1
    with pytest.raises(ConfigurationError):
        db.renamed.rename("bad..name")
    db.drop_collection("capped")
    db.create_collection("capped", capped=True, size=4096)
    assert db.capped.options() == {"capped": True, "size": 4096}
    assert db.renamed.options() == {}
    assert db.no_such_collection.options() == {}


def test_indexes(coll: Collection) -> None:
    assert coll.ensure_index("i", cache_for=300) == "i_1"
    assert coll.ensure_index([("s", 1), ("i", -1)], ttl=10, background=True) == "s_1_i_-1"
    assert coll.create_index("s", bucket_size=5, name="by_s", sparse=True) == "by_s"
    info = coll.index_information()
    assert set(info) == {"_id_", "i_1", "s_1_i_-1", "by_s"} and info["by_s"]["sparse"]
    with pytest.raises(InvalidOperation, match="dropDups"):
        coll.create_index("i", drop_dups=True)
    coll.drop_indexes()
    assert set(coll.index_information()) == {"_id_"}
    with pytest.raises(OperationFailure, match="reIndex"):
        coll.reindex()  # SecantusDB has no reIndex


def test_reindex_on_the_wire(mock: MockServer) -> None:
    coll = mock.connect().test.things
    future = mock.run(coll.reindex)
    cmd = mock.receives("reIndex")
    assert cmd.body == {"reIndex": "things", "$db": "test"}
    cmd.reply(nIndexesWas=2, nIndexes=2)
    assert future.result(TIMEOUT)["nIndexes"] == 2


# -- the 2.8 bulk API -----------------------------------------------------------------------


def test_ordered_bulk(coll: Collection) -> None:
    coll.remove()
    bulk = coll.initialize_ordered_bulk_op()
    doc = {"a": 1}
    bulk.insert(doc)
    assert isinstance(doc["_id"], ObjectId)  # the _id is added, as insert() does
    bulk.insert({"_id": 2, "a": 2})
    bulk.find({"a": 1}).update_one({"$set": {"b": 1}})
    bulk.find({"a": {"$gt": 0}}).update({"$inc": {"n": 1}})
    bulk.find({"_id": 2}).replace_one({"a": 2, "replaced": True})
    bulk.find({"_id": 3}).upsert().update_one({"$set": {"a": 3}})
    bulk.find({"_id": 4}).upsert().replace_one({"a": 4})
    bulk.find({"_id": 5}).upsert().update({"$set": {"a": 5}})
    bulk.find({"a": 4}).remove_one()
    bulk.find({"a": {"$gte": 5}}).remove()
    result = bulk.execute()
    assert result == {
        "writeErrors": [],
        "writeConcernErrors": [],
        "nInserted": 2,
        "nUpserted": 3,
        "nMatched": 4,
        "nModified": 4,
        "nRemoved": 2,
        "upserted": [{"index": 5, "_id": 3}, {"index": 6, "_id": 4}, {"index": 7, "_id": 5}],
    }
    assert sorted(d["_id"] for d in coll.find({}, ["_id"]) if d["_id"] != doc["_id"]) == [2, 3]
    assert coll.find_one({"_id": 2}) == {"_id": 2, "a": 2, "replaced": True}
    with pytest.raises(InvalidOperation, match="only be executed once"):
        bulk.execute()
    with pytest.raises(InvalidOperation, match="No operations"):
        coll.initialize_ordered_bulk_op().execute()


def test_bulk_errors(coll: Collection) -> None:
    coll.remove()
    ordered = coll.initialize_ordered_bulk_op()
    ordered.insert({"_id": 1})
    ordered.insert({"_id": 1})  # duplicate: the ordered bulk stops here
    ordered.insert({"_id": 2})
    with pytest.raises(BulkWriteError) as info:
        ordered.execute()
    details = info.value.details
    assert details["nInserted"] == 1 and len(details["writeErrors"]) == 1
    error = details["writeErrors"][0]
    assert error["index"] == 1 and error["code"] == 11000 and error["op"]["_id"] == 1
    assert info.value.code == 11000 and coll.count() == 1
    unordered = coll.initialize_unordered_bulk_op()
    unordered.find({"_id": 1}).remove_one()
    unordered.insert({"_id": 2})
    unordered.insert({"_id": 2})
    unordered.insert({"_id": 3})
    with pytest.raises(BulkWriteError) as info:
        unordered.execute()
    details = info.value.details
    # inserts went first, all attempted; the error keeps its place in the bulk
    assert details["nInserted"] == 2 and details["nRemoved"] == 1
    assert [e["index"] for e in details["writeErrors"]] == [2]
    for bad, error_type in [
        (lambda b: b.find({}).update_one({"a": 1}), InvalidDocument),
        (lambda b: b.find({}).replace_one({"$set": {"a": 1}}), InvalidDocument),
        (lambda b: b.find({}).update({}), InvalidDocument),
        (lambda b: b.find("x"), InvalidArgument),
        (lambda b: b.insert({"$bad": 1}), InvalidDocument),
        (lambda b: b.find({}).upsert().remove(), InvalidOperation),
    ]:
        with pytest.raises(error_type):
            bad(coll.initialize_ordered_bulk_op())


def test_bulk_write_concern(coll: Collection, mock: MockServer) -> None:
    coll.remove()
    bulk = coll.initialize_unordered_bulk_op()
    bulk.insert({"_id": 1})
    assert bulk.execute({"w": 0}) is None  # unacknowledged
    assert coll.find_one({"_id": 1}) == {"_id": 1}
    mcoll = mock.connect(w=2).test.things
    bulk = mcoll.initialize_ordered_bulk_op()
    bulk.insert({"_id": 1})
    bulk.find({"_id": 1}).remove()
    future = mock.run(bulk.execute)
    insert = mock.receives("insert")
    assert insert.body == {
        "insert": "things",
        "ordered": True,
        "writeConcern": {"w": 2},
        "$db": "test",
    }
    assert insert.sequences == {"documents": [{"_id": 1}]}
    insert.reply(n=1)
    delete = mock.receives("delete")
    assert delete.sequences == {"deletes": [{"q": {"_id": 1}, "limit": 0}]}
    delete.reply(n=1, writeConcernError={"code": 64, "errmsg": "waiting for replication timed out"})
    with pytest.raises(BulkWriteError) as info:
        future.result(TIMEOUT)
    assert info.value.details["writeConcernErrors"][0]["code"] == 64
    assert info.value.details["nRemoved"] == 1


def test_bulk_batches_by_the_servers_limits() -> None:
    with MockServer(maxWriteBatchSize=2, maxMessageSizeBytes=40_000) as mock:
        coll = mock.connect().test.things
        bulk = coll.initialize_ordered_bulk_op()
        for i in range(5):
            bulk.insert({"_id": i})
        bulk.insert({"_id": "big", "pad": "x" * 30_000})
        future = mock.run(bulk.execute)
        sizes = []
        for _ in range(4):
            cmd = mock.receives("insert")
            sizes.append(len(cmd.sequences["documents"]))
            cmd.reply(n=sizes[-1])
        assert sizes == [2, 2, 1, 1]  # by count, then the big one alone (message size)
        assert future.result(TIMEOUT)["nInserted"] == 6
    with MockServer(maxBsonObjectSize=1000) as mock:
        bulk = mock.connect().test.things.initialize_ordered_bulk_op()
        bulk.insert({"_id": 1})
        bulk.insert({"pad": "x" * 2000})
        with pytest.raises(InvalidDocument, match="maxBsonObjectSize"):
            bulk.execute()
        mock.assert_nothing_received()  # not even the first, small one
