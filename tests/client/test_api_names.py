"""The names users reach for (wireclient/client/legacy.py, settings.py, the caches of connection.py
and database.py, MongoClient / MongoReplicaSetClient), against SecantusDB: a 2.8 name that
is not provided is refused with its reason instead of becoming a database or collection;
databases and collections are cached, so settings on them stick and inherit; the
``write_concern`` dict; ``document_class`` / ``tz_aware``; the 2.8 client classes' defaults.
"""

from __future__ import annotations

import datetime
from collections import OrderedDict
from typing import Any, Dict, Iterator

import pytest
from bson.son import SON
from mock_server import MockServer

import wireclient
from wireclient import (
    Collection,
    Connection,
    Database,
    MongoClient,
    MongoReplicaSetClient,
    ReadPreference,
    ReplicaSetConnection,
)
from wireclient.client.legacy import REFUSED
from wireclient.errors import ConfigurationError, InvalidArgument, InvalidOperation

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


# -- refused names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "owner, name",
    [(owner, name) for owner, names in sorted(REFUSED.items()) for name in sorted(names)],
)
def test_a_refused_2_8_name_says_why_and_sends_nothing(
    mock: MockServer, owner: str, name: str
) -> None:
    conn = mock.connect()
    target = {"Connection": conn, "Database": conn.db, "Collection": conn.db.coll}[owner]
    with pytest.raises(InvalidOperation) as info:
        getattr(target, name)
    assert f".{name} is not provided by wireclient: " in str(info.value)
    assert REFUSED[owner][name] in str(info.value)
    mock.assert_nothing_received(timeout=0.05)


def test_the_failures_of_the_issue_are_no_longer_silent(conn: Connection) -> None:
    assert conn.is_primary is True  # a bool from the handshake, not a Database
    assert conn.alive() is True
    with pytest.raises(InvalidOperation, match="eval command was removed in MongoDB 4.2"):
        conn.test.eval("1")
    with pytest.raises(InvalidOperation, match="group command was removed"):
        conn.test.things.group  # noqa: B018 - the attribute access is the test
    with pytest.raises(InvalidOperation, match="copydb command was removed"):
        conn.copy_database("a", "b")


def test_unknown_names_are_still_databases_and_collections(conn: Connection) -> None:
    db = conn.analytics
    assert isinstance(db, Database) and db.name == "analytics"
    assert isinstance(db.events, Collection) and db.events.full_name == "analytics.events"
    assert db.events.clicks.full_name == "analytics.events.clicks"


def test_calling_a_missing_method_names_the_object_that_lacks_it(conn: Connection) -> None:
    with pytest.raises(TypeError, match="'no_such' method on a 'Connection' object"):
        conn.no_such()
    with pytest.raises(TypeError, match="'no_such' method on a 'Database' object"):
        conn.db.no_such()
    with pytest.raises(TypeError, match="'no_such' method on a 'Collection' object"):
        conn.db.coll.no_such()
    for target in (conn, conn.db, conn.db.coll):
        with pytest.raises(TypeError, match="is not iterable"):
            iter(target)


def test_private_names_and_failing_properties_never_become_databases(mock: MockServer) -> None:
    conn = mock.connect()
    for target in (conn, conn.db, conn.db.coll):
        with pytest.raises(AttributeError):
            getattr(target, "_private")  # noqa: B009 - attribute access is the test

    class Broken(Connection):
        @property
        def boom(self) -> Any:
            raise AttributeError("inside the property")

    broken = Broken(mock.uri, auto_start_request=False)
    try:
        with pytest.raises(AttributeError):
            broken.boom  # noqa: B018 - a property whose getter fails is not a database
    finally:
        broken.close()


# -- caching and inherited settings ----------------------------------------------------------


def test_databases_and_collections_are_cached(conn: Connection) -> None:
    assert conn.db is conn.db is conn["db"]
    assert conn.db.coll is conn.db.coll is conn.db["coll"]
    assert conn.db.coll.sub is conn.db["coll.sub"] is conn.db.coll["sub"]
    assert conn.db is not conn.other


def test_settings_stick_and_inherit(mock: MockServer) -> None:
    conn = mock.connect(w=2)
    assert conn.write_concern == {"w": 2}
    conn.db.events.write_concern = {"w": 1, "j": True}
    assert conn.db.events.write_concern == {"w": 1, "j": True}  # stuck: the same object
    assert conn.db.other.write_concern == {"w": 2}  # inherited from the connection
    conn.write_concern = {"w": "majority"}
    assert conn.db.other.write_concern == {"w": "majority"}  # still inherited
    conn.db.write_concern = {"w": 3}
    assert conn.db.other.write_concern == {"w": 3}
    conn.db.write_concern = None  # inherit again
    assert conn.db.other.write_concern == {"w": "majority"}
    # and the write sends it
    future = mock.run(conn.db.events.insert, {"_id": 1})
    cmd = mock.receives("insert", db="db")
    assert cmd.body["writeConcern"] == {"w": 1, "j": True}
    cmd.reply(n=1)
    future.result(TIMEOUT)
    future = mock.run(conn.db.other.insert, {"_id": 1})
    cmd = mock.receives("insert", db="db")
    assert cmd.body["writeConcern"] == {"w": "majority"}
    cmd.reply(n=1)
    future.result(TIMEOUT)


def test_write_concern_dict_writes_through_and_checks(mock: MockServer) -> None:
    conn = mock.connect()
    assert conn.write_concern == {}  # acknowledged, the server's default
    wc = conn.write_concern
    wc["w"] = 2
    wc["wtimeout"] = 100
    assert conn.write_concern == {"w": 2, "wtimeout": 100}
    del wc["wtimeout"]
    assert conn.write_concern == {"w": 2}
    with pytest.raises(ConfigurationError, match="unknown option 'nope'"):
        wc["nope"] = 1
    with pytest.raises(InvalidArgument):
        conn.write_concern = {"w": 1.5}
    with pytest.raises(ConfigurationError):
        conn.write_concern = {"w": 0, "j": True}
    assert conn.write_concern == {"w": 2}  # a refused change changed nothing
    assert mock.connect(safe=False).write_concern == {"w": 0}
    assert conn.write_concern == {"w": 2} and repr(conn.write_concern) == "{'w': 2}"
    conn.db.coll.write_concern = {"fsync": True}  # 2.8's fsync is j on journaled servers
    assert conn.db.coll.write_concern == {"j": True}


def test_read_preference_and_tag_sets_of_one_server(conn: Connection) -> None:
    assert conn.read_preference == ReadPreference.PRIMARY
    assert conn.tag_sets == [{}]
    assert conn.db.read_preference == ReadPreference.PRIMARY
    conn.db.coll.read_preference = ReadPreference.SECONDARY_PREFERRED
    assert conn.db.coll.read_preference == ReadPreference.SECONDARY_PREFERRED
    conn.db.coll.tag_sets = [{"dc": "ny"}, {}]
    assert conn.db.coll.read_preference == ReadPreference.SECONDARY_PREFERRED.with_tag_sets(
        [{"dc": "ny"}, {}]
    )
    assert conn.db.read_preference == ReadPreference.PRIMARY  # the database is unchanged
    with pytest.raises(ConfigurationError, match="applies to a replica set"):
        conn.read_preference = ReadPreference.SECONDARY
    with pytest.raises(ConfigurationError):
        conn.db.read_preference = "no such mode"
    assert conn.secondary_acceptable_latency_ms == 15.0


@pytest.mark.parametrize("tag_sets", [[{}], [{}, {}]])
def test_a_one_server_connection_takes_the_default_tag_sets(server: Any, tag_sets: Any) -> None:
    """``tag_sets=[{}]`` (match any member) is the default: accepted, and it changes nothing."""
    with Connection(server.uri, tag_sets=tag_sets, auto_start_request=False) as c:
        assert c.tag_sets == [{}] and c.read_preference == ReadPreference.PRIMARY
        assert c.admin.command("ping")["ok"] == 1


@pytest.mark.parametrize(
    "options",
    [
        {"tag_sets": [{"dc": "ny"}]},
        {"tag_sets": [{"dc": "ny"}, {}]},
        {"read_preference": ReadPreference.SECONDARY},
        {"localThresholdMS": 20},
    ],
)
def test_a_one_server_connection_refuses_replica_set_settings(
    server: Any, options: Dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match="applies to a replica set"):
        Connection(server.uri, **options)


def test_the_replica_sets_doc_example_sticks(server: Any) -> None:
    """docs/replica_sets.md: ``db.events.read_preference = ...`` has an effect."""
    with ReplicaSetConnection(server.uri, replicaSet="secantus") as c:
        db = c.analytics
        db.read_preference = ReadPreference.SECONDARY
        db.events.read_preference = ReadPreference.SECONDARY_PREFERRED
        assert c.analytics.read_preference == ReadPreference.SECONDARY
        assert c.analytics.events.read_preference == ReadPreference.SECONDARY_PREFERRED
        c.analytics.events.drop()
        c.analytics.events.insert({"_id": 1})
        # no secondary: SECONDARY_PREFERRED reads the primary
        assert c.analytics.events.find_one() == {"_id": 1}
        c.read_preference = ReadPreference.NEAREST
        assert c.other.read_preference == ReadPreference.NEAREST
        c.secondary_acceptable_latency_ms = 40
        assert c.secondary_acceptable_latency_ms == 40.0 == c.local_threshold_ms
        with pytest.raises(ConfigurationError):
            c.secondary_acceptable_latency_ms = -1


# -- document_class and tz_aware -------------------------------------------------------------


def test_document_class_and_tz_aware(server: Any) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 30)
    with Connection(server.uri, document_class=SON, tz_aware=True) as c:
        coll = c.test_api_names.docs
        coll.drop()
        coll.insert({"_id": 1, "when": when, "inner": {"a": [{"b": 1}]}})
        doc = c.test_api_names.docs.find_one()
        assert isinstance(doc, SON) and isinstance(doc["inner"], SON)
        assert isinstance(doc["inner"]["a"][0], SON)
        assert doc["when"] == when.replace(tzinfo=datetime.timezone.utc)
        assert c.tz_aware is True and c.document_class is SON
        as_dict = coll.find_one(as_class=OrderedDict)
        assert type(as_dict) is OrderedDict
        c.document_class = dict
        plain = coll.find_one()
        assert type(plain) is dict and plain["when"].tzinfo is not None
        with pytest.raises(InvalidArgument):
            c.document_class = list
    with Connection(server.uri) as c:
        naive = c.test_api_names.docs.find_one()
        assert type(naive) is dict and naive["when"] == when and naive["when"].tzinfo is None
    with pytest.raises(InvalidArgument):
        Connection(server.uri, tz_aware="yes", _connect=False)


# -- the 2.8 client classes --------------------------------------------------------------------


def test_mongo_client_defaults(server: Any, mock: MockServer) -> None:
    with MongoClient(server.uri) as c:
        assert isinstance(c, Connection)
        assert c.auto_start_request is False
        assert c.write_concern == {}  # acknowledged
        c.test.command("ping")
        assert not c.in_request()
        assert repr(c).startswith("MongoClient(")
    with MongoClient(f"{server.uri}?autoStartRequest=true") as c:
        assert c.auto_start_request is True  # the URI still decides
    with Connection(server.uri) as c:
        assert c.auto_start_request is True  # Connection keeps its own default
    with MongoClient(server.host, server.port, 7, SON, True) as c:  # 2.8's positional order
        assert c.max_pool_size == 7 and c.document_class is SON and c.tz_aware is True
    # writes are acknowledged: a write error is raised
    client = MongoClient(mock.uri, socketTimeoutMS=5000)
    try:
        future = mock.run(client.test.things.insert, {"_id": 1})
        mock.receives("insert").reply(
            n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}]
        )
        with pytest.raises(wireclient.errors.DuplicateKeyError):
            future.result(TIMEOUT)
    finally:
        client.close()


def test_mongo_replica_set_client_defaults(server: Any) -> None:
    with MongoReplicaSetClient(server.uri) as c:
        assert isinstance(c, ReplicaSetConnection)
        assert c.auto_start_request is False and c.write_concern == {}
        assert c.replica_set_name == "secantus"  # learned from the set
        assert repr(c).startswith("MongoReplicaSetClient(")
    with MongoReplicaSetClient(host=server.uri, max_pool_size=3) as c:
        assert c.max_pool_size == 3


def test_the_new_names_are_exported_lazily() -> None:
    for name in (
        "MongoClient",
        "MongoReplicaSetClient",
        "InsertOne",
        "ReturnDocument",
        "BulkWriteResult",
        "GEOSPHERE",
        "SLOW_ONLY",
    ):
        assert name in wireclient.__all__ and getattr(wireclient, name) is not None
    assert wireclient.GEOSPHERE == "2dsphere" and wireclient.SLOW_ONLY == 1
