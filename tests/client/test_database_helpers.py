"""Database's pymongo 2.8 helpers (wireclient/client/database.py) against SecantusDB: users,
``current_op``, the profiler, ``validate_collection``, ``create_collection`` of an existing
collection, ``collection_names(include_system_collections=False)``, ``dereference``; and
the command documents of the user helpers, through mockupdb."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from bson.dbref import DBRef
from mock_server import MockServer

from wireclient import ALL, OFF, SLOW_ONLY, Connection, Database
from wireclient.errors import (
    CollectionInvalid,
    ConfigurationError,
    InvalidArgument,
    OperationFailure,
)

TIMEOUT = 5


@pytest.fixture()
def db(conn: Connection) -> Database:
    conn.drop_database("test_database_helpers")
    return conn.test_database_helpers


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


def users(db: Database) -> Any:
    return {u["user"]: u for u in db.command("usersInfo", 1)["users"]}


def test_add_update_and_remove_users(db: Database) -> None:
    db.add_user("reader", "pw1", read_only=True)
    db.add_user("owner", "pw2")
    db.add_user("custom", "pw3", roles=[{"role": "readWrite", "db": db.name}])
    found = users(db)
    assert [r["role"] for r in found["reader"]["roles"]] == ["read"]
    assert [r["role"] for r in found["owner"]["roles"]] == ["dbOwner"]
    assert [r["role"] for r in found["custom"]["roles"]] == ["readWrite"]
    db.add_user("reader", "new-password")  # exists: updateUser, roles kept
    assert [r["role"] for r in users(db)["reader"]["roles"]] == ["read"]
    db.add_user("reader", read_only=False)  # read_only given: the role changes
    assert [r["role"] for r in users(db)["reader"]["roles"]] == ["dbOwner"]
    db.remove_user("reader")
    assert "reader" not in users(db)
    with pytest.raises(OperationFailure):
        db.remove_user("reader")
    with pytest.raises(ConfigurationError, match="read_only and roles"):
        db.add_user("x", "pw", read_only=True, roles=["read"])
    with pytest.raises(InvalidArgument):
        db.add_user(5, "pw")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="digestPassword"):
        db.add_user("x", "pw", digestPassword=False)
    for user in ("owner", "custom"):
        db.remove_user(user)


def test_user_commands_on_the_wire(mock: MockServer) -> None:
    admin = mock.connect(w=2).admin
    future = mock.run(admin.add_user, "root-user", "pw")
    mock.receives("usersInfo", db="admin").reply(users=[])
    cmd = mock.receives("createUser", db="admin")
    assert cmd.body == {
        "createUser": "root-user",
        "roles": ["root"],
        "pwd": "pw",
        "writeConcern": {"w": 2},
        "$db": "admin",
    }
    cmd.reply()
    future.result(TIMEOUT)
    future = mock.run(admin.add_user, "watcher", "pw", read_only=True)
    mock.receives("usersInfo", db="admin").error(13, "not authorized")  # no right to look
    cmd = mock.receives("createUser", db="admin")
    assert cmd.body["roles"] == ["readAnyDatabase"]
    cmd.reply()
    future.result(TIMEOUT)
    future = mock.run(admin.add_user, "watcher", "pw")
    mock.receives("usersInfo", db="admin").reply(users=[{"user": "watcher", "roles": []}])
    cmd = mock.receives("updateUser", db="admin")
    assert cmd.body == {
        "updateUser": "watcher",
        "pwd": "pw",
        "writeConcern": {"w": 2},
        "$db": "admin",
    }
    cmd.reply()
    future.result(TIMEOUT)
    future = mock.run(admin.remove_user, "watcher")
    cmd = mock.receives("dropUser", db="admin")
    assert cmd.body == {"dropUser": "watcher", "writeConcern": {"w": 2}, "$db": "admin"}
    cmd.reply()
    future.result(TIMEOUT)


def test_current_op(db: Database) -> None:
    ops = db.current_op()
    assert isinstance(ops["inprog"], list) and ops["inprog"]
    assert any(op.get("op") == "currentOp" for op in ops["inprog"])
    assert isinstance(db.current_op(include_all=True)["inprog"], list)


def test_profiling(db: Database) -> None:
    db.things.insert({"x": 1})
    assert db.profiling_level() == OFF
    db.set_profiling_level(ALL)
    assert db.profiling_level() == ALL
    db.things.insert({"x": 2})
    records = db.profiling_info()
    assert any(r["op"] == "insert" and r["ns"] == f"{db.name}.things" for r in records)
    db.set_profiling_level(SLOW_ONLY, slow_ms=50)
    assert db.profiling_level() == SLOW_ONLY
    assert db.command("profile", -1)["slowms"] == 50
    db.set_profiling_level(OFF)
    assert db.profiling_level() == OFF
    with pytest.raises(ConfigurationError):
        db.set_profiling_level(3)
    with pytest.raises(InvalidArgument):
        db.set_profiling_level(ALL, slow_ms="fast")  # type: ignore[arg-type]


def test_validate_collection(db: Database) -> None:
    db.things.insert([{"i": i} for i in range(5)])
    result = db.validate_collection("things")
    assert result["valid"] is True and result["nrecords"] == 5
    assert db.validate_collection(db.things, scandata=True, full=True)["valid"] is True
    with pytest.raises(OperationFailure):
        db.validate_collection("missing")
    with pytest.raises(InvalidArgument):
        db.validate_collection(5)


def test_validate_collection_that_is_not_valid(mock: MockServer) -> None:
    db = mock.connect().test
    future = mock.run(db.validate_collection, "broken")
    cmd = mock.receives("validate")
    assert cmd.body == {"validate": "broken", "$db": "test"}
    cmd.reply(valid=False, errors=["index _id_ is corrupt"])
    with pytest.raises(CollectionInvalid, match="is corrupt"):
        future.result(TIMEOUT)


def test_create_collection_and_names(db: Database) -> None:
    capped = db.create_collection("capped", capped=True, size=4096)
    assert capped is db.capped
    with pytest.raises(CollectionInvalid) as info:
        db.create_collection("capped")
    assert isinstance(info.value, OperationFailure) and info.value.code == 48
    db.set_profiling_level(ALL)
    db.things.insert({"x": 1})
    db.set_profiling_level(OFF)
    names = db.collection_names()
    assert "capped" in names and "things" in names
    assert "system.profile" in names  # the profiler's records
    user_names = db.collection_names(include_system_collections=False)
    assert user_names == [name for name in names if name != "system.profile"]
    assert db.list_collection_names() == names


def test_dereference(db: Database) -> None:
    db.people.insert({"_id": 7, "name": "ada"})
    assert db.dereference(DBRef("people", 7)) == {"_id": 7, "name": "ada"}
    assert db.dereference(DBRef("people", 7, db.name)) == {"_id": 7, "name": "ada"}
    assert db.dereference(DBRef("people", 8)) is None
    assert db.dereference(DBRef("people", 7), fields=["name"]) == {"_id": 7, "name": "ada"}
    with pytest.raises(ConfigurationError, match="points to database 'other'"):
        db.dereference(DBRef("people", 7, "other"))
    with pytest.raises(InvalidArgument):
        db.dereference({"$ref": "people", "$id": 7})
