"""Database (wireclient/client/database.py) through the public API, against a mockupdb server that
records exactly what arrives (tests/support/mock_server.py): ``command`` in its three forms,
``check``, the typed errors of ``ok: 0`` replies, the collection helpers, and the OP_QUERY
form for wire 4-5 servers."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import mockupdb
import pytest
from bson import SON
from mock_server import MockServer

from wireclient import Collection, Database, errors

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def db(mock: MockServer) -> Database:
    return mock.connect().test


# -- command --------------------------------------------------------------------------------


def test_command_by_name(mock: MockServer, db: Database) -> None:
    future = mock.run(db.command, "ping")
    cmd = mock.receives("ping")
    assert cmd.body == {"ping": 1, "$db": "test"}
    assert cmd.sequences == {} and not cmd.more_to_come
    cmd.reply(extra="x")
    assert future.result(TIMEOUT) == {"ok": 1, "extra": "x"}


def test_command_with_a_value_and_keywords(mock: MockServer, db: Database) -> None:
    future = mock.run(db.command, "count", "x", query={"a": 1}, limit=2)
    cmd = mock.receives("count")
    assert cmd.body == {"count": "x", "query": {"a": 1}, "limit": 2, "$db": "test"}
    assert list(cmd.body)[:3] == ["count", "query", "limit"]
    cmd.reply(n=2)
    assert future.result(TIMEOUT) == {"ok": 1, "n": 2}


@pytest.mark.parametrize("mapping", [dict, SON, OrderedDict], ids=["dict", "SON", "OrderedDict"])
def test_command_mapping_keeps_its_order(mock: MockServer, db: Database, mapping: Any) -> None:
    spec = mapping([("findAndModify", "x"), ("query", {"a": 1}), ("update", {"$inc": {"n": 1}})])
    future = mock.run(db.command, spec, new=True)
    cmd = mock.receives("findAndModify")
    assert list(cmd.body.items()) == [
        ("findAndModify", "x"),
        ("query", {"a": 1}),
        ("update", {"$inc": {"n": 1}}),
        ("new", True),
        ("$db", "test"),
    ]
    cmd.reply(value={"a": 1, "n": 1})
    assert future.result(TIMEOUT)["value"] == {"a": 1, "n": 1}
    assert list(spec) == ["findAndModify", "query", "update"]  # the caller's is unchanged


def test_commands_carry_their_own_database(mock: MockServer) -> None:
    conn = mock.connect()
    for name in ("admin", "test", "other_db"):
        future = mock.run(conn[name].command, "ping")
        mock.receives("ping", db=name).reply(db=name)  # receives checks $db
        assert future.result(TIMEOUT) == {"ok": 1, "db": name}


def test_ok_0_is_an_operation_failure_with_code_and_details(mock: MockServer, db: Database) -> None:
    future = mock.run(db.command, "frobnicate")
    mock.receives("frobnicate").error(
        59, "no such command: 'frobnicate'", codeName="CommandNotFound"
    )
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 59
    assert info.value.details == {
        "ok": 0,
        "code": 59,
        "errmsg": "no such command: 'frobnicate'",
        "codeName": "CommandNotFound",
    }
    assert "no such command" in str(info.value)


def test_ok_0_without_a_code(mock: MockServer, db: Database) -> None:
    future = mock.run(db.command, "ping")
    mock.receives("ping").reply(ok=0, errmsg="something broke")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code is None


@pytest.mark.parametrize(
    "code, error",
    [
        (11000, errors.DuplicateKeyError),
        (43, errors.CursorNotFound),
        (10107, errors.NotPrimaryError),
        (13435, errors.NotPrimaryError),
    ],
)
def test_ok_0_codes_become_typed_errors(
    mock: MockServer, db: Database, code: int, error: type
) -> None:
    future = mock.run(db.command, "ping")
    mock.receives("ping").error(code, "typed")
    with pytest.raises(error):
        future.result(TIMEOUT)


def test_check_false_returns_the_failed_reply(mock: MockServer, db: Database) -> None:
    future = mock.run(db.command, "frobnicate", check=False)
    mock.receives("frobnicate").error(59, "no such command")
    assert future.result(TIMEOUT) == {"ok": 0, "code": 59, "errmsg": "no such command"}


def test_a_failed_command_leaves_the_socket_in_step(mock: MockServer, db: Database) -> None:
    future = mock.run(db.command, "ping")
    first = mock.receives("ping")
    first.error(2, "bad")
    with pytest.raises(errors.OperationFailure):
        future.result(TIMEOUT)
    future = mock.run(db.command, "ping")
    second = mock.receives("ping")
    assert second.port == first.port  # the same socket, not closed
    second.reply(n=2)
    assert future.result(TIMEOUT) == {"ok": 1, "n": 2}


def test_bad_commands_are_refused_before_sending(mock: MockServer, db: Database) -> None:
    with pytest.raises(errors.InvalidOperation):
        db.command({})
    with pytest.raises(errors.ConfigurationError):
        db.command(42)  # type: ignore[arg-type]
    mock.assert_nothing_received()


# -- collections ----------------------------------------------------------------------------


def test_collection_names(mock: MockServer, db: Database) -> None:
    for method in (db.collection_names, db.list_collection_names):
        future = mock.run(method)
        cmd = mock.receives("listCollections")
        assert cmd.body == {"listCollections": 1, "nameOnly": True, "$db": "test"}
        batch = [{"name": "b", "type": "collection"}, {"name": "a", "type": "collection"}]
        cmd.reply(cursor={"id": 0, "ns": "test.$cmd.listCollections", "firstBatch": batch})
        assert future.result(TIMEOUT) == ["a", "b"]


@pytest.mark.parametrize("by", ["name", "collection"])
def test_drop_collection(mock: MockServer, db: Database, by: str) -> None:
    future = mock.run(db.drop_collection, "things" if by == "name" else db.things)
    cmd = mock.receives("drop")
    assert cmd.body == {"drop": "things", "$db": "test"}
    cmd.reply(nIndexesWas=1, ns="test.things")
    assert future.result(TIMEOUT) is None


def test_drop_collection_ignores_namespace_not_found_only(mock: MockServer, db: Database) -> None:
    future = mock.run(db.drop_collection, "gone")
    mock.receives("drop").error(26, "ns not found")
    assert future.result(TIMEOUT) is None
    future = mock.run(db.drop_collection, "locked")
    mock.receives("drop").error(13, "not authorized")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 13


def test_create_collection(mock: MockServer, db: Database) -> None:
    future = mock.run(db.create_collection, "capped", capped=True, size=4096)
    cmd = mock.receives("create")
    assert cmd.body == {"create": "capped", "capped": True, "size": 4096, "$db": "test"}
    cmd.reply()
    created = future.result(TIMEOUT)
    assert isinstance(created, Collection) and created == db.capped
    future = mock.run(db.create_collection, "capped")
    mock.receives("create").error(48, "collection already exists")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 48


def test_names_and_equality(mock: MockServer) -> None:
    conn = mock.connect()
    db = conn.test
    assert db == conn["test"] == Database(conn, "test")
    assert db.name == "test" and db.connection is conn
    assert db.things == db["things"] and isinstance(db.things, Collection)
    assert db != conn.other and db != mock.connect().test  # another connection
    for bad in ("", "a.b", "a b", "a$b", "a/b", "a\\b", 'a"b', "a\x00b"):
        with pytest.raises(errors.ConfigurationError):
            conn[bad]
    with pytest.raises(AttributeError):
        getattr(db, "_private")  # noqa: B009 - attribute access is the test
    mock.assert_nothing_received(timeout=0.05)


# -- wire 4 and 5: OP_QUERY on db.$cmd --------------------------------------------------------


@pytest.mark.parametrize("max_wire", [4, 5])
def test_old_servers_get_commands_as_op_query_on_db_cmd(max_wire: int) -> None:
    with MockServer(max_wire=max_wire) as mock:
        conn = mock.connect()
        future = mock.run(conn.test.command, "count", "x", query={"a": 1})
        cmd = mock.receives("count")  # OP_QUERY on test.$cmd, numberToReturn -1, no $db
        assert cmd.body == {"count": "x", "query": {"a": 1}}
        assert cmd.flags == 0
        cmd.reply(n=4)
        assert future.result(TIMEOUT) == {"ok": 1, "n": 4}
        future = mock.run(conn.admin.command, "ping")
        mock.receives("ping", db="admin").error(13, "unauthorized")
        with pytest.raises(errors.OperationFailure) as info:
            future.result(TIMEOUT)
        assert info.value.code == 13


def test_old_servers_query_failure_replies_are_operation_failures() -> None:
    """A wire 4-5 server may answer a command with an OP_REPLY whose QueryFailure flag is
    set and an ``$err`` document."""
    with MockServer(max_wire=5) as mock:
        conn = mock.connect()
        future = mock.run(conn.test.command, "ping")
        request = mock.receives("ping").request
        # (mockupdb's own fail() adds ok: 1 to a command's reply; old servers sent none)
        failure = mockupdb.OpReply(
            {"$err": "bad query", "code": 17287}, flags=mockupdb.REPLY_FLAGS["QueryFailure"]
        )
        request._client.sendall(failure.reply_bytes(request))
        with pytest.raises(errors.OperationFailure) as info:
            future.result(TIMEOUT)
        assert info.value.code == 17287
