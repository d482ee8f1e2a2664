"""What a connection tells about its server (wireclient/client/connection.py, replica_set.py):
the values of the latest handshake of the server's (the primary's) pool, ``alive()``,
``nodes``, and the replica-set names (``primary``, ``hosts``, ``seeds``, ``refresh()``,
``replica_set_name`` learned), against SecantusDB, mockupdb and a mockupdb replica set."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from mock_replica_set import MockReplicaSet
from mock_server import MockServer

from wireclient import Connection, ReplicaSetConnection
from wireclient.errors import AutoReconnect

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer(
        max_wire=13,
        maxBsonObjectSize=1_000_000,
        maxMessageSizeBytes=3_000_000,
        maxWriteBatchSize=500,
        minWireVersion=2,
    ) as server:
        yield server


def test_values_from_secantus_handshake(conn: Connection, server: Any) -> None:
    assert conn.is_primary is True
    assert conn.is_mongos is False
    assert conn.max_bson_size == 16 * 1024 * 1024
    assert conn.max_message_size == 48_000_000
    assert conn.max_write_batch_size == 100_000
    assert conn.min_wire_version == 0 and conn.max_wire_version >= 6
    assert conn.nodes == frozenset({(server.host, server.port)})
    assert (conn.host, conn.port) == (server.host, server.port)
    assert conn.alive() is True
    # pymongo 4's names: a connection to one server is not a replica-set connection
    assert (conn.primary, conn.secondaries, conn.arbiters) == (None, [], [])


def test_values_come_from_the_handshake_and_cost_no_command(mock: MockServer) -> None:
    conn = mock.connect()
    assert (conn.max_bson_size, conn.max_message_size, conn.max_write_batch_size) == (
        1_000_000,
        3_000_000,
        500,
    )
    assert (conn.min_wire_version, conn.max_wire_version) == (2, 13)
    assert conn.is_primary and not conn.is_mongos
    mock.assert_nothing_received(timeout=0.05)  # read from the construction's handshake


def test_the_latest_handshake_wins(mock: MockServer) -> None:
    conn = mock.connect()
    assert conn.is_primary
    mock.hello.update(
        isWritablePrimary=False, ismaster=False, secondary=True, maxBsonObjectSize=2_000
    )
    assert conn.is_primary  # the pool's sockets were made before the change
    conn.close()  # the next operation opens a new socket, with a new handshake
    future = mock.run(conn.test.command, "ping")
    mock.receives("ping").reply()
    future.result(TIMEOUT)
    assert conn.is_primary is False and conn.max_bson_size == 2_000
    mock.hello.update(msg="isdbgrid", isWritablePrimary=True)
    conn.close()
    future = mock.run(conn.test.command, "ping")
    mock.receives("ping").reply()
    future.result(TIMEOUT)
    assert conn.is_mongos is True


def test_alive_pings_and_is_false_when_the_server_is_gone(mock: MockServer) -> None:
    conn = mock.connect()
    future = mock.run(conn.alive)
    ping = mock.receives("ping", db="admin")
    ping.reply()
    assert future.result(TIMEOUT) is True
    future = mock.run(conn.alive)
    mock.receives("ping", db="admin").request.hangup()
    assert future.result(TIMEOUT) is False


def test_alive_after_the_server_stopped(fresh_server: Any) -> None:
    conn = Connection(fresh_server.uri, auto_start_request=False, connectTimeoutMS=1000)
    try:
        assert conn.alive()
        fresh_server.kill()
        assert conn.alive() is False
    finally:
        conn.close()


# -- replica sets --------------------------------------------------------------------------


def connect(rs: MockReplicaSet, **kw: Any) -> ReplicaSetConnection:
    kw.setdefault("connectTimeoutMS", 2000)
    kw.setdefault("serverSelectionTimeoutMS", 3000)
    return ReplicaSetConnection(rs[1].host, **kw)


@pytest.mark.usefixtures("no_monitor_left")
def test_replica_set_names(rs: MockReplicaSet) -> None:
    rs[2].role = "passive"
    with connect(rs) as c:  # no replicaSet given: learned
        assert c.replica_set_name == "rs"
        assert c.seeds == frozenset({rs[1].address})
        assert c.hosts == frozenset(m.address for m in rs.members)  # hosts and passives
        assert c.nodes == frozenset(m.address for m in rs.members)
        assert c.primary == rs[0].address == c.address
        assert set(c.secondaries) == {rs[1].address, rs[2].address}
        assert c.is_primary is True and c.is_mongos is False
        assert c.max_wire_version == rs.max_wire_version
        assert c.max_write_batch_size == 100_000
        assert c.alive() is True
        assert rs[0].commands("ping")  # alive() and the first read ran on the primary


@pytest.mark.usefixtures("no_monitor_left")
def test_replica_set_refresh_and_no_primary(rs: MockReplicaSet) -> None:
    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        assert c.primary == rs[0].address
        rs.elect(2)
        assert c.primary == rs[0].address  # the monitor has not looked yet
        checks = rs[1].hello_count
        c.refresh()
        assert rs[1].hello_count > checks
        assert c.primary == rs[2].address
        rs.elect(None)
        c.refresh()
        assert c.primary is None
        # no primary: 2.8's defaults at once, and not alive; nothing waits for a primary
        assert c.is_primary is False
        assert c.max_bson_size == 16 * 1024 * 1024 and c.max_wire_version == 0
        assert c.alive() is False


@pytest.mark.usefixtures("no_monitor_left")
def test_replica_set_values_follow_the_primary(rs: MockReplicaSet) -> None:
    rs[0].extra = {"maxBsonObjectSize": 5_000}
    rs[2].extra = {"maxBsonObjectSize": 7_000}
    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        assert c.max_bson_size == 5_000
        rs.elect(2)
        c.refresh()
        assert c.max_bson_size == 7_000  # the new primary's pool, its first handshake


def test_connection_refused_by_a_dead_server_raises_not_alive(mock: MockServer) -> None:
    conn = mock.connect()
    mock.server.stop()
    assert conn.alive() is False
    with pytest.raises(AutoReconnect):
        conn.test.command("ping")


@pytest.mark.usefixtures("no_monitor_left")
def test_replica_set_names_against_secantus(server: Any) -> None:
    with ReplicaSetConnection(server.uri) as c:  # SecantusDB: the one-member set 'secantus'
        assert c.replica_set_name == "secantus"  # learned: not given
        assert c.seeds == frozenset({(server.host, server.port)})
        c.refresh()
        assert c.primary is not None and c.primary in c.hosts and c.primary in c.nodes
        assert c.secondaries == [] and c.arbiters == []
        assert c.is_primary is True and c.is_mongos is False
        assert c.max_bson_size == 16 * 1024 * 1024 and c.max_wire_version >= 6
        assert c.alive() is True
