"""The pymongo 4 names (wireclient/client/collection.py, results.py, operations.py) against
SecantusDB: each write and its result object (acknowledged and not), find_one_and_*,
count_documents, estimated_document_count, list_indexes, bulk_write; the command documents
and what is refused before anything is sent, through mockupdb."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List

import pytest
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from mock_server import MockServer

from wireclient import (
    BulkWriteResult,
    Collection,
    Connection,
    DeleteMany,
    DeleteOne,
    DeleteResult,
    InsertManyResult,
    InsertOne,
    InsertOneResult,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
    UpdateResult,
)
from wireclient.errors import (
    BulkWriteError,
    DuplicateKeyError,
    InvalidArgument,
    InvalidDocument,
    InvalidOperation,
)

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def coll(conn: Connection, request: Any) -> Collection:
    c = conn.test_collection_modern[request.node.name[:60]]
    c.drop()
    return c


def test_insert_one_and_many(coll: Collection) -> None:
    doc: dict = {"a": 1}
    result = coll.insert_one(doc)
    assert isinstance(result, InsertOneResult) and result.acknowledged
    assert isinstance(result.inserted_id, ObjectId) and doc["_id"] == result.inserted_id
    assert coll.insert_one(RawBSONDocument(b"\x0c\x00\x00\x00\x10b\x00\x02\x00\x00\x00\x00"))
    many = coll.insert_many([{"_id": 1}, {"_id": 2}, {"c": 3}])
    assert isinstance(many, InsertManyResult) and many.inserted_ids[:2] == [1, 2]
    assert coll.count_documents({}) == 5
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as info:
        coll.insert_many([{"_id": 10}, {"_id": 1}, {"_id": 11}])
    assert info.value.details["nInserted"] == 1  # ordered: stops at the duplicate
    with pytest.raises(BulkWriteError) as info:
        coll.insert_many([{"_id": 20}, {"_id": 1}, {"_id": 21}], ordered=False)
    assert info.value.details["nInserted"] == 2
    refused = {"$bad": 1}
    with pytest.raises(InvalidDocument):
        coll.insert_one(refused)
    assert "_id" not in refused  # refused before sending: the caller's document unchanged
    for bad in ([], {"a": 1}, "abc", 5):
        with pytest.raises((InvalidArgument, InvalidDocument)):
            coll.insert_many(bad)  # type: ignore[arg-type]


def test_updates_and_their_results(coll: Collection) -> None:
    coll.insert_many([{"_id": i, "s": i % 2} for i in range(6)])
    one = coll.update_one({"s": 0}, {"$set": {"x": 1}})
    assert isinstance(one, UpdateResult)
    assert (one.matched_count, one.modified_count, one.upserted_id) == (1, 1, None)
    assert one.raw_result["n"] == 1 and one.raw_result["updatedExisting"] is True
    many = coll.update_many({"s": 0}, {"$set": {"x": 1}})
    assert (many.matched_count, many.modified_count) == (3, 2)  # one already had x: 1
    up = coll.update_one({"_id": 99}, {"$set": {"x": 2}}, upsert=True)
    assert up.upserted_id == 99 and up.matched_count == 0
    replaced = coll.replace_one({"_id": 99}, {"y": 3})
    assert replaced.modified_count == 1 and coll.find_one({"_id": 99}) == {"_id": 99, "y": 3}
    piped = coll.update_many({"s": 1}, [{"$set": {"z": {"$add": ["$_id", 100]}}}])
    assert piped.modified_count == 3 and coll.find_one({"_id": 3})["z"] == 103
    with pytest.raises(InvalidDocument, match="only update operators"):
        coll.update_one({}, {"x": 1})
    with pytest.raises(InvalidDocument, match="must not contain update operators"):
        coll.replace_one({}, {"$set": {"x": 1}})
    with pytest.raises(InvalidDocument):
        coll.update_many({}, {})


def test_deletes(coll: Collection) -> None:
    coll.insert_many([{"_id": i, "s": i % 2} for i in range(6)])
    one = coll.delete_one({"s": 0})
    assert isinstance(one, DeleteResult) and one.deleted_count == 1
    assert one.raw_result == {"ok": 1.0, "n": 1}
    assert coll.delete_many({"s": 1}).deleted_count == 3
    assert coll.delete_many({}).deleted_count == 2
    assert coll.estimated_document_count() == 0


def test_unacknowledged_results(server: Any) -> None:
    with Connection(server.uri, w=0) as c:
        coll = c.test_collection_modern.unack
        result = coll.insert_one({"_id": 1})
        assert result.acknowledged is False and result.inserted_id == 1
        updated = coll.update_one({"_id": 1}, {"$set": {"a": 1}})
        assert updated.acknowledged is False
        with pytest.raises(InvalidOperation, match="unacknowledged"):
            _ = updated.matched_count
        deleted = coll.delete_one({"_id": 2})
        with pytest.raises(InvalidOperation):
            _ = deleted.deleted_count
        bulk = coll.bulk_write([InsertOne({"_id": 3})])
        assert not bulk.acknowledged
        with pytest.raises(InvalidOperation):
            _ = bulk.inserted_count
        assert not coll.insert_many([{"_id": 4}]).acknowledged
        assert "acknowledged=False" in repr(result)
        # auto_start_request (Connection's default): one socket, so the read sees them all
        assert c.in_request()
        assert sorted(d["_id"] for d in coll.find()) == [1, 3, 4]
        coll.drop()


def test_find_one_and(coll: Collection) -> None:
    coll.insert_many([{"_id": i, "n": i} for i in range(5)])
    before = coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 10}})
    assert before == {"_id": 1, "n": 1}
    after = coll.find_one_and_update(
        {"_id": 1}, {"$inc": {"n": 1}}, projection={"_id": 0}, return_document=ReturnDocument.AFTER
    )
    assert after == {"n": 12}
    assert coll.find_one_and_update({"_id": 50}, {"$set": {"n": 0}}) is None
    made = coll.find_one_and_update(
        {"_id": 50}, {"$set": {"n": 0}}, upsert=True, return_document=ReturnDocument.AFTER
    )
    assert made == {"_id": 50, "n": 0}
    old = coll.find_one_and_replace({"_id": 2}, {"n": 20}, return_document=ReturnDocument.BEFORE)
    assert old == {"_id": 2, "n": 2} and coll.find_one({"_id": 2}) == {"_id": 2, "n": 20}
    top = coll.find_one_and_delete({"n": {"$lt": 100}}, sort=[("n", -1)])
    assert top == {"_id": 2, "n": 20} and coll.find_one({"_id": 2}) is None
    with pytest.raises(InvalidDocument):
        coll.find_one_and_update({}, {"n": 1})
    with pytest.raises(InvalidDocument):
        coll.find_one_and_replace({}, {"$set": {"n": 1}})
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        coll.find_one_and_delete({}, nope=1)
    with pytest.raises(InvalidOperation, match="sessions"):
        coll.find_one_and_delete({}, session=object())


def test_counts_and_list_indexes(coll: Collection) -> None:
    coll.insert_many([{"_id": i, "s": i % 3} for i in range(10)])
    assert coll.count_documents({}) == 10
    assert coll.count_documents({"s": 1}) == 3
    assert coll.count_documents({"s": 1}, skip=1) == 2
    assert coll.count_documents({}, limit=4) == 4
    assert coll.count_documents({"s": 7}) == 0
    assert coll.estimated_document_count() == 10
    assert coll.estimated_document_count(maxTimeMS=1000) == 10
    coll.create_index("s")
    indexes = list(coll.list_indexes())
    assert [ix["name"] for ix in indexes] == ["_id_", "s_1"]
    with pytest.raises(InvalidOperation):
        coll.list_indexes().sort("a")
    assert coll.database.list_collection_names() == coll.database.collection_names()
    assert coll.database.connection.list_database_names()


def test_bulk_write(coll: Collection) -> None:
    coll.insert_many([{"_id": i, "s": i % 2} for i in range(4)])
    result = coll.bulk_write(
        [
            InsertOne({"_id": 10}),
            UpdateOne({"_id": 0}, {"$set": {"x": 1}}),
            UpdateMany({"s": 1}, {"$set": {"x": 2}}),
            ReplaceOne({"_id": 20}, {"r": 1}, upsert=True),
            DeleteOne({"_id": 2}),
            DeleteMany({"x": 2}),
        ]
    )
    assert isinstance(result, BulkWriteResult) and result.acknowledged
    assert (
        result.inserted_count,
        result.matched_count,
        result.modified_count,
        result.deleted_count,
        result.upserted_count,
    ) == (1, 3, 3, 3, 1)
    assert result.upserted_ids == {3: 20}
    assert result.bulk_api_result["nInserted"] == 1
    assert sorted(d["_id"] for d in coll.find()) == [0, 10, 20]
    with pytest.raises(BulkWriteError) as info:
        coll.bulk_write([InsertOne({"_id": 0}), DeleteOne({"_id": 10})], ordered=False)
    assert (
        info.value.details["nRemoved"] == 1 and info.value.details["writeErrors"][0]["index"] == 0
    )
    with pytest.raises(InvalidArgument, match="requests\\[0\\]"):
        coll.bulk_write([{"insertOne": {}}])
    with pytest.raises(InvalidOperation):
        coll.bulk_write([])
    assert InsertOne({"a": 1}) == InsertOne({"a": 1}) != InsertOne({"a": 2})
    assert repr(DeleteOne({"a": 1})) == "DeleteOne({'a': 1}, None, None)"


def test_commands_on_the_wire(mock: MockServer) -> None:
    coll = mock.connect(w=2).test.things
    future = mock.run(
        coll.update_one,
        {"a": 1},
        {"$set": {"b": 1}},
        upsert=True,
        array_filters=[{"e.x": 1}],
        hint="a_1",
        bypass_document_validation=True,
    )
    cmd = mock.receives("update")
    assert cmd.body == {
        "update": "things",
        "ordered": True,
        "bypassDocumentValidation": True,
        "writeConcern": {"w": 2},
        "$db": "test",
    }
    assert cmd.sequences == {
        "updates": [
            {
                "q": {"a": 1},
                "u": {"$set": {"b": 1}},
                "multi": False,
                "upsert": True,
                "arrayFilters": [{"e.x": 1}],
                "hint": "a_1",
            }
        ]
    }
    cmd.reply(n=1, nModified=0, upserted=[{"index": 0, "_id": 5}])
    assert future.result(TIMEOUT).upserted_id == 5
    future = mock.run(
        coll.find_one_and_update,
        {"a": 1},
        {"$set": {"b": 1}},
        sort=[("a", 1)],
        return_document=ReturnDocument.AFTER,
        max_time_ms=9,
    )
    cmd = mock.receives("findAndModify")
    assert cmd.body == {
        "findAndModify": "things",
        "query": {"a": 1},
        "update": {"$set": {"b": 1}},
        "sort": {"a": 1},
        "new": True,
        "upsert": False,
        "maxTimeMS": 9,
        "writeConcern": {"w": 2},
        "$db": "test",
    }
    cmd.reply(value={"_id": 1, "a": 1, "b": 1})
    assert future.result(TIMEOUT) == {"_id": 1, "a": 1, "b": 1}
    future = mock.run(coll.count_documents, {"a": 1}, skip=1, limit=2, hint="a_1")
    cmd = mock.receives("aggregate")
    assert cmd.body == {
        "aggregate": "things",
        "pipeline": [
            {"$match": {"a": 1}},
            {"$skip": 1},
            {"$limit": 2},
            {"$group": {"_id": 1, "n": {"$sum": 1}}},
        ],
        "hint": "a_1",
        "cursor": {},
        "$db": "test",
    }
    cmd.reply(cursor={"id": 0, "ns": "test.things", "firstBatch": [{"_id": 1, "n": 2}]})
    assert future.result(TIMEOUT) == 2
    with pytest.raises(InvalidOperation, match="sessions"):
        coll.insert_one({}, session=object())
    mock.assert_nothing_received(timeout=0.05)


def test_insert_many_of_dicts_refused_midway_leaves_documents_as_the_loop_would(
    coll: Collection,
) -> None:
    """A list of dicts takes the stepwise path (ids in one block, one encoding loop); a
    document bson refuses stops it as the per-document loop did: the documents before it
    have their _id, those after it none, and nothing is sent."""
    docs: List[Dict[str, Any]] = [{"n": 0}, {"n": 1}, {"$bad": 2}, {"n": 3}]
    with pytest.raises(InvalidDocument, match="document"):
        coll.insert_many(docs)
    assert "_id" in docs[0] and "_id" in docs[1] and "_id" in docs[2]
    assert "_id" not in docs[3]
    assert coll.count() == 0
    ids = coll.insert_many([{"n": i} for i in range(5)]).inserted_ids
    assert len(set(ids)) == 5 and coll.count() == 5
