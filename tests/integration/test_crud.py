"""Connection, Database, Collection and Cursor against a real SecantusDB server.

The handshake's limits and the checks made before sending (bad and oversized documents,
batches split to fit) run on both clients (the ``flavour`` fixture, ``flavoured.py``)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from bson import ObjectId
from flavoured import FLAVOURS, Flavour, got

from wireclient import AsyncConnection, Connection
from wireclient.client.collection import Collection
from wireclient.errors import (
    ConfigurationError,
    ConnectionFailure,
    CursorNotFound,
    DocumentTooLarge,
    DuplicateKeyError,
    InvalidDocument,
    InvalidOperation,
    OperationFailure,
)
from wireclient.transport.network import SocketInfo


@pytest.fixture()
def coll(conn: Connection, request: Any) -> Collection:
    c = conn.test_crud[request.node.name[:60]]
    c.drop()
    return c


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def run_with_coll(flavour: Flavour, server: Any, name: str, body: Any) -> None:
    """``await body(conn, coll)``: a connection of the flavour (without auto_start_request)
    and an emptied collection of its own, closed after."""

    async def main() -> None:
        conn = await flavour.open(Connection, AsyncConnection, server.uri, auto_start_request=False)
        try:
            coll = conn.test_crud[f"{name[:50]}_{flavour}"]
            await got(coll.drop())
            await body(conn, coll)
        finally:
            await got(conn.close())

    flavour.run(main)


def open_cursors(conn: Connection) -> int:
    status = conn.admin.command("serverStatus")
    return int(status["metrics"]["cursor"]["open"]["total"])


def test_connect_forms(server: Any) -> None:
    for c in (
        Connection(server.host, server.port),
        Connection(f"{server.host}:{server.port}"),
        Connection(server.uri + "?maxPoolSize=7"),
    ):
        assert c.admin.command("ping")["ok"] == 1
        c.close()
    with Connection(server.uri + "?maxPoolSize=7") as c:
        assert c.max_pool_size == 7


def test_handshake_records_server_limits(server: Any, flavour: Flavour) -> None:
    async def body(conn: Any, coll: Any) -> None:
        sock = await flavour.steps(conn.pool.checkout())
        try:
            assert isinstance(sock, SocketInfo)
            assert sock.max_wire_version >= 6
            assert sock.max_bson_size == 16 * 1024 * 1024
            assert sock.max_message_size == 48_000_000
            assert sock.max_write_batch_size == 100_000
            assert sock.connection_id is not None
        finally:
            conn.pool.return_socket(sock)
        assert conn.max_bson_size == 16 * 1024 * 1024  # the connection reads the handshake

    run_with_coll(flavour, server, "limits", body)


def test_unreachable_server_fails_fast() -> None:
    from servers import free_port

    with pytest.raises(ConnectionFailure):
        Connection("127.0.0.1", free_port(), connectTimeoutMS=500)


def test_bad_options_fail_before_connecting() -> None:
    with pytest.raises(ConfigurationError):
        Connection("127.0.0.1", 1, auto_start_request="yes", _connect=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Connection("127.0.0.1", 1, max_pool_size=-1, _connect=False)
    with pytest.raises(ConfigurationError):
        Connection("mongodb://127.0.0.1:1/?bogusOption=1", _connect=False)
    with pytest.raises(ConfigurationError):
        Connection("mongodb://h1:1,h2:2/?replicaSet=rs", _connect=False)  # use ReplicaSetConnection
    with pytest.raises(ConfigurationError):
        Connection("127.0.0.1", "27017", _connect=False)  # type: ignore[arg-type]


def test_insert_find_update_remove(coll: Collection) -> None:
    _id = coll.insert({"a": 1})
    assert isinstance(_id, ObjectId)
    ids = coll.insert([{"a": 2}, {"a": 3}])
    assert len(ids) == 2
    assert coll.count() == 3
    assert coll.find_one({"a": 2})["_id"] == ids[0]
    assert coll.find_one(_id)["a"] == 1
    result = coll.update({"a": 1}, {"$set": {"b": 1}})
    assert result is not None and result["n"] == 1 and result["updatedExisting"]
    result = coll.update({"a": 99}, {"$set": {"b": 1}}, upsert=True)
    assert result is not None and result["upserted"] is not None
    assert not result["updatedExisting"]
    result = coll.update({}, {"$set": {"c": 1}}, multi=True)
    assert result is not None and result["n"] == 4
    result = coll.remove({"a": 99})
    assert result is not None and result["n"] == 1
    assert coll.count() == 3
    coll.remove()
    assert coll.count() == 0


def test_find_options_and_cursor(coll: Collection) -> None:
    coll.insert([{"i": i, "s": i % 3} for i in range(50)])
    assert [d["i"] for d in coll.find(sort=[("i", -1)], limit=3)] == [49, 48, 47]
    assert [d["i"] for d in coll.find().sort("i").skip(10).limit(2)] == [10, 11]
    docs = list(coll.find({"s": 0}, fields={"i": 1, "_id": 0}))
    assert docs[0] == {"i": 0} and len(docs) == 17
    assert coll.find({"s": 1}).count() == 17
    assert coll.find().limit(5).count(with_limit_and_skip=True) == 5
    cur = coll.find().batch_size(7)
    assert len(list(cur)) == 50  # several getMore round trips
    with pytest.raises(InvalidOperation):
        cur.sort("i")
    assert sorted(coll.distinct("s")) == [0, 1, 2]


def test_cursor_close_and_gc_kill_server_cursor(conn: Connection, coll: Collection) -> None:
    coll.insert([{"i": i} for i in range(20)])
    base = open_cursors(conn)
    cur = coll.find().batch_size(2)
    next(cur)
    cursor_id = cur.cursor_id
    assert cursor_id and open_cursors(conn) == base + 1
    cur.close()
    assert open_cursors(conn) == base
    with pytest.raises(CursorNotFound):
        conn.test_crud.command({"getMore": cursor_id, "collection": coll.name})
    cur2 = coll.find().batch_size(2)
    next(cur2)
    assert open_cursors(conn) == base + 1
    del cur2
    gc.collect()
    # The kill is sent by the next operation, not from __del__.
    assert open_cursors(conn) == base


def test_cursor_in_request_uses_request_socket(conn: Connection, coll: Collection) -> None:
    coll.insert([{"i": i} for i in range(10)])
    with conn.start_request():
        cur = coll.find().batch_size(3)
        next(cur)
        bound = conn.request_socket()
        assert bound is not None
        rest = list(cur)
        assert len(rest) == 9 and conn.request_socket() is bound


def test_aggregate(coll: Collection) -> None:
    coll.insert([{"k": i % 2, "v": i} for i in range(10)])
    pipeline = [{"$group": {"_id": "$k", "t": {"$sum": "$v"}}}, {"$sort": {"_id": 1}}]
    out = list(coll.aggregate(pipeline))
    assert out == [{"_id": 0, "t": 20}, {"_id": 1, "t": 25}]


def test_duplicate_key_and_command_errors(conn: Connection, coll: Collection) -> None:
    coll.create_index("u", unique=True)
    assert "u_1" in coll.index_information()
    coll.insert({"u": 1})
    with pytest.raises(DuplicateKeyError) as info:
        coll.insert({"u": 1})
    assert info.value.code == 11000
    with pytest.raises(DuplicateKeyError):
        coll.update({"u": 2}, {"$set": {"u": 1}}, upsert=True)
    with pytest.raises(OperationFailure) as info2:
        conn.test_crud.command("definitelyNotACommand")
    assert info2.value.code is not None
    assert conn.test_crud.command("definitelyNotACommand", check=False)["ok"] == 0


def test_bad_documents_rejected_before_sending(server: Any, flavour: Flavour) -> None:
    async def body(conn: Any, coll: Any) -> None:
        me = (await got(conn.admin.command("whatsmyuri")))["you"]
        for bad in ({"$a": 1}, {"a.b": 1}, {"a": {"$x": 1}}):
            with pytest.raises(InvalidDocument):
                await got(coll.insert(bad))
        with pytest.raises(InvalidDocument):
            await got(coll.insert([{"ok": 1}, "not a document"]))
        with pytest.raises(DocumentTooLarge):  # over maxBsonObjectSize
            await got(coll.insert({"big": "x" * (16 * 1024 * 1024)}))
        with pytest.raises(DocumentTooLarge):  # the second of a batch: none of it is sent
            await got(coll.insert([{"_id": 1}, {"big": "x" * (16 * 1024 * 1024)}]))
        with pytest.raises(InvalidDocument):
            await got(coll.insert([]))
        with pytest.raises(InvalidDocument):
            await got(coll.update({}, {"a.b": 1}))
        assert await got(coll.count()) == 0  # nothing of a rejected batch was sent
        # the socket was kept: the same one serves on
        assert (await got(conn.admin.command("whatsmyuri")))["you"] == me
        assert conn.pool.open_count == 1

    run_with_coll(flavour, server, "bad_documents", body)


def test_large_insert_is_split_into_batches(server: Any, flavour: Flavour) -> None:
    async def body(conn: Any, coll: Any) -> None:
        sock = await flavour.steps(conn.pool.checkout())
        conn.pool.return_socket(sock)
        sock.max_write_batch_size = 1000  # as a server with a small batch limit would say
        sock.max_message_size = 2 * 1024 * 1024 + 16 * 1024
        docs = [{"i": i, "pad": "x" * 100} for i in range(2500)]
        await got(coll.insert(docs))
        assert await got(coll.count()) == 2500
        big = [{"pad": "y" * 500_000} for _ in range(10)]  # 5 MB: over the 2 MB message limit
        await got(coll.insert(big))
        assert await got(coll.count()) == 2510

    run_with_coll(flavour, server, "large_insert", body)


def test_names_are_validated(conn: Connection) -> None:
    for bad in ("", "a b", "a.b", "a$"):
        with pytest.raises(ConfigurationError):
            conn[bad]
    for bad in ("", "a..b", ".a", "a$b"):
        with pytest.raises(ConfigurationError):
            conn.test[bad]
    assert conn.test.a.b.full_name == "test.a.b"


def test_database_helpers(conn: Connection, coll: Collection) -> None:
    coll.insert({"x": 1})
    assert coll.name in conn.test_crud.collection_names()
    assert "test_crud" in conn.database_names()
    coll.drop()
    coll.drop()  # dropping a missing collection is not an error
    assert coll.name not in conn.test_crud.collection_names()
