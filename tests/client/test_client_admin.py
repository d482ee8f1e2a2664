"""The connection's server-wide helpers (wireclient/client/connection.py): databases, fsync,
cursors by id against SecantusDB; ``fsync(lock=True)``, ``unlock()`` and ``is_locked``
against mockupdb, since SecantusDB refuses the lock and has no ``fsyncUnlock``."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from bson import Int64
from mock_server import MockServer

from wireclient import Connection
from wireclient.errors import (
    ConfigurationError,
    CursorNotFound,
    InvalidArgument,
    InvalidOperation,
    OperationFailure,
)

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


def open_cursors(conn: Connection) -> int:
    status = conn.admin.command("serverStatus")
    return int(status["metrics"]["cursor"]["open"]["total"])


def test_databases(conn: Connection) -> None:
    conn.test_client_admin.things.insert({"x": 1})
    assert "test_client_admin" in conn.database_names()
    assert conn.list_database_names() == conn.database_names()
    assert conn.server_info()["version"]
    conn.drop_database(conn.test_client_admin)
    assert "test_client_admin" not in conn.list_database_names()
    with pytest.raises(InvalidArgument):
        conn.drop_database(5)  # type: ignore[arg-type]


def test_fsync(conn: Connection) -> None:
    assert conn.fsync()["ok"] == 1
    with pytest.raises(OperationFailure, match="lock:true is not supported by SecantusDB"):
        conn.fsync(lock=True)


def test_fsync_lock_unlock_and_is_locked(mock: MockServer) -> None:
    conn = mock.connect()
    future = mock.run(conn.fsync, lock=True)
    cmd = mock.receives("fsync", db="admin")
    assert cmd.body == {"fsync": 1, "lock": True, "$db": "admin"}
    cmd.reply(lockCount=1, info="now locked against writes")
    assert future.result(TIMEOUT)["lockCount"] == 1
    future = mock.run(lambda: conn.is_locked)
    mock.receives("currentOp", db="admin").reply(inprog=[], fsyncLock=True)
    assert future.result(TIMEOUT) is True
    future = mock.run(conn.unlock)
    cmd = mock.receives("fsyncUnlock", db="admin")
    assert cmd.body == {"fsyncUnlock": 1, "$db": "admin"}
    cmd.reply(lockCount=0)
    future.result(TIMEOUT)
    future = mock.run(lambda: conn.is_locked)
    mock.receives("currentOp", db="admin").reply(inprog=[])
    assert future.result(TIMEOUT) is False


def test_close_cursor_by_id(conn: Connection) -> None:
    coll = conn.test_client_admin.cursors
    coll.drop()
    coll.insert([{"i": i} for i in range(10)])
    base = open_cursors(conn)
    cursor = coll.find().batch_size(2)
    next(cursor)
    cursor_id = cursor.cursor_id
    assert cursor_id and open_cursors(conn) == base + 1
    conn.close_cursor(cursor_id)
    assert open_cursors(conn) == base and not cursor.alive
    with pytest.raises(CursorNotFound):
        conn.test_client_admin.command({"getMore": Int64(cursor_id), "collection": "cursors"})


def test_kill_cursors_mine_and_by_namespace(conn: Connection) -> None:
    coll = conn.test_client_admin.kill
    coll.drop()
    coll.insert([{"i": i} for i in range(10)])
    base = open_cursors(conn)
    first, second = coll.find().batch_size(2), coll.find().batch_size(2)
    next(first), next(second)
    # an id the connection did not open: only with its namespace
    reply = conn.test_client_admin.command("find", "kill", batchSize=2)
    foreign = int(reply["cursor"]["id"])
    assert open_cursors(conn) == base + 3
    with pytest.raises(InvalidOperation, match="needs the cursor's collection"):
        conn.kill_cursors([first.cursor_id, foreign])
    assert open_cursors(conn) == base + 3  # refused as a whole: nothing was sent
    conn.kill_cursors(
        [first.cursor_id, second.cursor_id, foreign], namespace="test_client_admin.kill"
    )
    assert open_cursors(conn) == base
    with pytest.raises(InvalidOperation):
        conn.close_cursor(123456789)
    with pytest.raises(ConfigurationError):
        conn.kill_cursors([1], namespace="nodot")
    with pytest.raises(ConfigurationError, match="no server at"):
        conn.kill_cursors([1], address=("elsewhere", 1), namespace="a.b")
    with pytest.raises(InvalidArgument):
        conn.kill_cursors(5)  # type: ignore[arg-type]


def test_kill_cursors_at_an_address(mock: MockServer) -> None:
    conn = mock.connect()
    future = mock.run(conn.kill_cursors, [2**40], mock.address, "db.things")
    cmd = mock.receives("killCursors", db="db")
    assert cmd.body == {"killCursors": "things", "cursors": [2**40], "$db": "db"}
    cmd.reply(cursorsKilled=[2**40])
    future.result(TIMEOUT)


def test_server_helpers_are_refused_or_real(conn: Connection, server: Any) -> None:
    assert conn.nodes == frozenset({(server.host, server.port)})
    with pytest.raises(InvalidOperation, match="no pluggable cursor manager"):
        conn.set_cursor_manager(object)
