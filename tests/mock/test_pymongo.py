"""pymongo 4, sync and async, scripted through wireclient.mock: the issue's five
demonstrations (a zlib-compressed insert and its documents, error 11000 as
DuplicateKeyError, a hang-up as AutoReconnect, an exhaust stream, a replica-set
step-down), each seen by a client nobody here wrote."""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pymongo
import pytest
from bson import Int64
from pymongo import CursorType
from pymongo.errors import AutoReconnect, DuplicateKeyError, NotPrimaryError

from wireclient.mock import MockServer, ReplicaSet

TIMEOUT = 10


def client(uri: str, **options: Any) -> pymongo.MongoClient[Any]:
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, **options)


@pytest.fixture()
def zlib_server() -> Iterator[MockServer]:
    with MockServer(compression=["zlib"]) as server:
        yield server


def test_insert_received_zlib_compressed(zlib_server: MockServer) -> None:
    with client(zlib_server.uri, compressors="zlib") as pm:
        docs = [{"_id": 1, "x": "a" * 100}, {"_id": 2, "x": "b"}]
        future = zlib_server.go(pm.db.things.insert_many, docs)
        request = zlib_server.receives("insert")
        assert request.compressed_with == "zlib"
        assert request.frame[12:16] == (2012).to_bytes(4, "little")  # OP_COMPRESSED
        assert request.opcode == 2013  # the OP_MSG it carries
        assert request.database == "db"
        assert request.doc["insert"] == "things"
        assert request.doc["documents"] == docs
        request.ok(n=2)
        assert future.result(TIMEOUT).inserted_ids == [1, 2]
    # the handshake offered zlib, uncompressed (hello is never compressed)
    offers = [r for r in zlib_server.requests if "compression" in r.doc]
    assert offers and all(r.compressed_with is None for r in offers)
    assert all(r.command_name.lower() in ("hello", "ismaster") for r in offers)  # type: ignore[union-attr]
    assert "zlib" in offers[0].doc["compression"]


def test_scripted_11000_is_duplicate_key_error(mock_server: MockServer) -> None:
    with client(mock_server.uri) as pm:
        future = mock_server.go(pm.db.things.insert_one, {"_id": 1})
        mock_server.receives({"insert": "things"}).fail(11000, "E11000 duplicate key error")
        with pytest.raises(DuplicateKeyError) as info:
            future.result(TIMEOUT)
        assert info.value.code == 11000
        # and as a write error in an ok:1 reply, as MongoDB reports it
        future = mock_server.go(pm.db.things.insert_one, {"_id": 1})
        mock_server.receives("insert").ok(
            n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 dup"}]
        )
        with pytest.raises(DuplicateKeyError):
            future.result(TIMEOUT)


def test_hangup_is_auto_reconnect(mock_server: MockServer) -> None:
    with client(mock_server.uri, retryReads=False) as pm:  # else pymongo retries the find
        future = mock_server.go(pm.db.things.find_one)
        mock_server.receives("find").hangup()
        with pytest.raises(AutoReconnect):
            future.result(TIMEOUT)
        # the next operation opens a new connection and works
        future = mock_server.go(pm.db.things.find_one)
        mock_server.receives("find").ok(
            cursor={"id": Int64(0), "ns": "db.things", "firstBatch": []}
        )
        assert future.result(TIMEOUT) is None


def _find_reply(cursor_id: int, key: str, ids: List[int]) -> Any:
    return {
        "cursor": {"id": Int64(cursor_id), "ns": "db.things", key: [{"_id": i} for i in ids]},
        "ok": 1.0,
    }


def test_exhaust_stream(mock_server: MockServer) -> None:
    with client(mock_server.uri) as pm:
        cursor = pm.db.things.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        future = mock_server.go(list, cursor)
        mock_server.receives("find").reply(_find_reply(42, "firstBatch", [1, 2]))
        get_more = mock_server.receives("getMore")
        assert get_more.exhaust_allowed and get_more.doc["getMore"] == 42
        get_more.stream(
            [
                _find_reply(42, "nextBatch", [3, 4]),
                _find_reply(42, "nextBatch", [5]),
                _find_reply(0, "nextBatch", [6]),
            ]
        )
        assert future.result(TIMEOUT) == [{"_id": i} for i in range(1, 7)]
        # the stream was read as MongoDB sends it: no further getMore was sent
        with pytest.raises(AssertionError):
            mock_server.receives("getMore", timeout=0.2)


def test_replica_set_step_down() -> None:
    with ReplicaSet(3) as rs, client(rs.uri, retryWrites=False) as pm:
        future = rs.go(pm.db.things.insert_one, {"_id": 1})
        rs[0].receives("insert").ok(n=1)
        assert future.result(TIMEOUT).inserted_id == 1
        rs.elect(2)  # member 0 steps down, member 2 is the new primary
        future = rs.go(pm.db.things.insert_one, {"_id": 2})
        rs[0].receives("insert").fail(10107, "not primary")
        with pytest.raises(NotPrimaryError):  # an AutoReconnect
            future.result(TIMEOUT)
        future = rs.go(pm.db.things.insert_one, {"_id": 2})
        rs[2].receives("insert").ok(n=1)
        assert future.result(TIMEOUT).inserted_id == 2
        assert pm.primary == rs[2].address


# -- the same with pymongo's AsyncMongoClient ---------------------------------------------


def run_async(server: MockServer, script: Callable[[MockServer], None], coroutine: Any) -> Any:
    """Run ``coroutine`` (an async client's work) while ``script`` answers the server."""
    future = server.go_async(coroutine)
    try:
        script(server)
    finally:
        result = future.result(TIMEOUT)
    return result


def test_async_insert_received_zlib_compressed(zlib_server: MockServer) -> None:
    docs = [{"_id": 1, "x": "y" * 50}, {"_id": 2}]

    async def work() -> Any:
        pm = pymongo.AsyncMongoClient(
            zlib_server.uri, compressors="zlib", serverSelectionTimeoutMS=5000
        )
        try:
            return (await pm.db.things.insert_many(docs)).inserted_ids
        finally:
            await pm.close()

    def script(server: MockServer) -> None:
        request = server.receives("insert")
        assert request.compressed_with == "zlib" and request.doc["documents"] == docs
        request.ok(n=2)

    assert run_async(zlib_server, script, work) == [1, 2]


def test_async_errors_and_hangup(mock_server: MockServer) -> None:
    async def work() -> Any:
        pm = pymongo.AsyncMongoClient(mock_server.uri, serverSelectionTimeoutMS=5000)
        seen = []
        try:
            for _ in range(2):
                try:
                    await pm.db.things.insert_one({"_id": 1})
                except (DuplicateKeyError, AutoReconnect) as exc:
                    seen.append(type(exc))
        finally:
            await pm.close()
        return seen

    def script(server: MockServer) -> None:
        server.receives("insert").fail(11000, "E11000 duplicate key error")
        server.receives("insert").hangup()

    assert run_async(mock_server, script, work) == [DuplicateKeyError, AutoReconnect]


def test_async_exhaust_stream(mock_server: MockServer) -> None:
    async def work() -> Any:
        pm = pymongo.AsyncMongoClient(mock_server.uri, serverSelectionTimeoutMS=5000)
        try:
            cursor = pm.db.things.find({}, cursor_type=CursorType.EXHAUST, batch_size=1)
            return await cursor.to_list()
        finally:
            await pm.close()

    def script(server: MockServer) -> None:
        server.receives("find").reply(_find_reply(7, "firstBatch", [1]))
        server.receives("getMore").stream(
            [_find_reply(7, "nextBatch", [2]), _find_reply(0, "nextBatch", [3])]
        )

    assert run_async(mock_server, script, work) == [{"_id": 1}, {"_id": 2}, {"_id": 3}]


def test_async_replica_set_step_down() -> None:
    with ReplicaSet(2) as rs:

        async def work() -> Any:
            pm = pymongo.AsyncMongoClient(rs.uri, serverSelectionTimeoutMS=5000, retryWrites=False)
            try:
                await pm.db.things.insert_one({"_id": 1})
                try:
                    await pm.db.things.insert_one({"_id": 2})
                except NotPrimaryError:
                    pass
                else:
                    raise AssertionError("the old primary's error was not seen")
                await pm.db.things.insert_one({"_id": 2})
                return await pm.primary
            finally:
                await pm.close()

        def script(server: MockServer) -> None:
            rs[0].receives("insert").ok(n=1)
            rs.elect(1)
            rs[0].receives("insert").fail(10107, "not primary")
            rs[1].receives("insert").ok(n=1)

        assert run_async(rs[0], script, work) == rs[1].address
