"""A Connection to several hosts: the mongos routers of a sharded cluster
(wireclient.engine.router_selector).

Against mockupdb routers (tests/support/mock_mongos.py): the host-list forms, the discovery round
and what it refuses (replica-set members, standalones), the latency window, failover on a
network error (one AutoReconnect, then another router), requests pinned to one router,
read preferences passed as $readPreference, the monitor's lifetime, and socket leaks.
"""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any, Iterator, List, Set

import pytest
from bson import Int64
from flavoured import FLAVOURS, Flavour, got, monitor_tasks
from leak_check import no_leaked_socket
from mock_mongos import MockRouters
from mock_replica_set import MockReplicaSet, monitor_threads
from waiting import PATIENCE

from wireclient import AsyncConnection, Connection, MongoClient, errors
from wireclient.engine.router_selector import MongosSelector
from wireclient.sdam.read_preferences import ReadPreference
from wireclient.sdam.routers import RouterView
from wireclient.sdam.server_rules import ServerType

pytestmark = pytest.mark.usefixtures("no_monitor_left")


@pytest.fixture()
def routers() -> Iterator[MockRouters]:
    mock = MockRouters(3)
    try:
        yield mock
    finally:
        mock.close()


def connect(seeds: Any, **kw: Any) -> Connection:
    kw.setdefault("auto_start_request", False)
    # generous: what must succeed must not race a busy machine (tests of a timeout set it)
    kw.setdefault("connectTimeoutMS", 10000)
    kw.setdefault("socketTimeoutMS", 30000)
    kw.setdefault("serverSelectionTimeoutMS", 30000)
    return Connection(seeds, **kw)


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


async def open_routers(flavour: Flavour, seeds: Any, **kw: Any) -> Any:
    """``connect`` for either client (``flavoured.py``): a ``Connection`` or a connected
    ``AsyncConnection``."""
    kw.setdefault("auto_start_request", False)
    kw.setdefault("connectTimeoutMS", 10000)
    kw.setdefault("socketTimeoutMS", 30000)
    kw.setdefault("serverSelectionTimeoutMS", 30000)
    return await flavour.open(Connection, AsyncConnection, seeds, **kw)


def monitors_running(flavour: Flavour) -> List[str]:
    """The names of the running monitors: threads, or asyncio Tasks."""
    if flavour.asynchronous:
        return [t.get_name() for t in monitor_tasks()]
    return [t.name for t in monitor_threads()]


def selector(c: Any) -> MongosSelector:
    sel = c._executor.selector
    assert isinstance(sel, MongosSelector)
    return sel


def served_by(c: Connection, n: int, **find: Any) -> List[int]:
    """The router index that answered each of ``n`` finds."""
    return [c.db.c.find_one(**find)["member"] for _ in range(n)]  # type: ignore[index]


def wait_until(condition: Any, timeout: float = PATIENCE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- connecting --------------------------------------------------------------------------


def test_uri_with_several_routers(routers: MockRouters, flavour: Flavour) -> None:
    async def main() -> None:
        c = await open_routers(flavour, routers.uri)
        try:
            assert c.is_mongos
            await got(c.db.things.insert({"x": 1}))
            assert await got(c.db.c.find_one()) is not None
            view = selector(c).view
            assert isinstance(view, RouterView)
            assert {sd.address for sd in view.routers} == {m.address for m in routers.members}
            assert all(sd.round_trip_time is not None for sd in view.routers)
            assert monitors_running(flavour) == ["wireclient-monitor-mongos"]
            assert c.address in {m.address for m in routers.members}
            assert repr(c) == f"{type(c).__name__}({routers.seeds!r})"
            assert "mongos routers" in view.describe()
        finally:
            await got(c.close())
        assert monitors_running(flavour) == []  # close() stops the monitor

    flavour.run(main)


@pytest.mark.parametrize("form", ["list", "tuple", "plain", "uri-list"])
def test_host_list_forms(routers: MockRouters, form: str) -> None:
    hosts = [m.host for m in routers.members]
    seeds: Any = {
        "list": hosts,
        "tuple": tuple(hosts),
        "plain": ",".join(hosts),
        "uri-list": [f"mongodb://{hosts[0]}", f"mongodb://{hosts[1]},{hosts[2]}/?maxPoolSize=7"],
    }[form]
    with connect(seeds) as c:
        assert c._parts.hosts == tuple(m.address for m in routers.members)
        assert c.db.c.find_one() is not None
        if form == "uri-list":
            assert c.max_pool_size == 7  # the URI's options apply


def test_mongo_client_takes_a_list_of_routers(routers: MockRouters) -> None:
    with MongoClient([m.host for m in routers.members], connectTimeoutMS=2000) as c:
        assert c.db.c.find_one() is not None
        assert repr(c) == f"MongoClient({routers.seeds!r})"


def test_replica_set_connection_takes_a_list_too(rs: MockReplicaSet) -> None:
    from wireclient import ReplicaSetConnection

    with ReplicaSetConnection([m.host for m in rs.members], replicaSet="rs") as c:
        assert c.primary == rs[0].address


def test_host_list_of_something_else_is_refused() -> None:
    with pytest.raises(errors.ConfigurationError, match="each host in a list must be a string"):
        Connection(["127.0.0.1:1", 2], _connect=False)
    with pytest.raises(errors.ConfigurationError, match="empty list"):
        Connection([], _connect=False)


def test_single_host_keeps_a_direct_connection(routers: MockRouters) -> None:
    with Connection(routers[0].host, connectTimeoutMS=2000) as c:
        assert c.is_mongos
        assert c._parts.routers is None
        assert monitor_threads() == []  # one server: no thread
        c.db.c.find_one()
        assert read_preferences_received(routers) == [None]
    with pytest.raises(errors.ConfigurationError, match="ReplicaSetConnection"):
        Connection(routers[0].host, localThresholdMS=5)  # still refused for one server


def test_unreachable_seeds() -> None:
    from servers import free_port

    seeds = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    with no_leaked_socket():
        with pytest.raises(errors.AutoReconnect, match="could not reach any seed") as info:
            connect(seeds, connectTimeoutMS=500)
        del info
    assert monitor_threads() == []


# -- what a list of routers refuses ------------------------------------------------------


def test_replica_set_members_without_replica_set_name(rs: MockReplicaSet) -> None:
    with no_leaked_socket():
        with pytest.raises(errors.ConfigurationError) as info:
            connect(rs.seeds)
        message = str(info.value)
        del info
    assert "member of replica set 'rs'" in message
    assert "ReplicaSetConnection(..., replicaSet='rs')" in message
    assert monitor_threads() == []


def test_replica_set_option_with_a_list_says_to_use_replica_set_connection(
    rs: MockReplicaSet,
) -> None:
    with pytest.raises(errors.ConfigurationError, match="use ReplicaSetConnection"):
        connect(rs.seeds, replicaSet="rs")
    with pytest.raises(errors.ConfigurationError, match="use ReplicaSetConnection"):
        connect(rs.uri)


def test_standalone_among_routers_is_removed(routers: MockRouters) -> None:
    routers.kinds[1] = "standalone"
    with connect(routers.seeds, localThresholdMS=1000) as c:
        view = selector(c).view
        assert routers[1].address not in view.members
        assert any("standalone" in e for e in view.errors)
        assert set(served_by(c, 30)) == {0, 2}
        assert routers[1].commands("find") == []


def test_min_pool_size_fills_the_routers_only(routers: MockRouters) -> None:
    routers.kinds[1] = "standalone"
    with connect(routers.seeds, minPoolSize=2, heartbeatFrequencyMS=100) as c:
        pools = selector(c).pools_by_address
        wait_until(
            lambda: all(
                m.address in pools() and pools()[m.address].open_count >= 2
                for m in (routers[0], routers[2])
            )
        )
        assert routers[1].address not in pools()


def test_replica_set_member_among_routers_is_removed(routers: MockRouters) -> None:
    routers.kinds[0] = "member"  # it answers first: the list is still a list of routers
    with connect(routers.seeds, localThresholdMS=1000) as c:
        view = selector(c).view
        assert routers[0].address not in view.members
        assert view.set_name == "rs"  # remembered, for the error message
        assert set(served_by(c, 30)) == {1, 2}


def test_only_standalones_are_refused(routers: MockRouters) -> None:
    for i in range(3):
        routers.kinds[i] = "standalone"
    with pytest.raises(errors.ConfigurationError, match="none was found.*standalone server"):
        connect(routers.seeds)


def test_routers_too_old_for_wireclient_are_refused() -> None:
    old = MockRouters(2, max_wire_version=3)
    try:
        # the monitor finds them (their hello says mongos) but outside our wire range:
        # server selection refuses, saying why, and nothing of the connection stays
        with pytest.raises(errors.ConfigurationError, match="wire versions 0 to 3"):
            connect(old.seeds)
        assert monitor_threads() == []
    finally:
        old.close()


def test_router_that_turns_into_something_else_is_removed(routers: MockRouters) -> None:
    with connect(routers.seeds, heartbeatFrequencyMS=100) as c:
        routers.kinds[2] = "standalone"
        wait_until(lambda: routers[2].address not in selector(c).view.members)
        assert 2 not in served_by(c, 20)


# -- choosing a router -------------------------------------------------------------------


def test_operations_spread_over_the_window(routers: MockRouters) -> None:
    with connect(routers.seeds, localThresholdMS=1000) as c:
        assert set(served_by(c, 60)) == {0, 1, 2}
        c.db.c.insert({"x": 1})
        assert sum(len(m.commands("insert")) for m in routers.members) == 1


def test_slow_router_is_outside_the_latency_window(routers: MockRouters) -> None:
    routers[2].delay = 0.08  # 80 ms hello round trips: outside the default 15 ms window
    with connect(routers.seeds) as c:
        assert c.secondary_acceptable_latency_ms == 15.0
        rtt = {sd.address: sd.round_trip_time for sd in selector(c).view.routers}
        assert rtt[routers[2].address] > 0.07  # type: ignore[operator]
        # (not "both 0 and 1": on a busy machine one fast router's measured round trip may
        # be late too, and out of the 15 ms window; the slow one always is)
        assert 2 not in set(served_by(c, 30))
        for _ in range(5):
            c.db.c.insert({"x": 1})
        assert routers[2].commands("insert") == []
        c.secondary_acceptable_latency_ms = 1000  # a wider window takes it in
        assert 2 in served_by(c, 60)
        assert selector(c).local_threshold_ms == 1000


def test_local_threshold_option(routers: MockRouters) -> None:
    routers[2].delay = 0.08
    with connect(f"{routers.uri}/?localThresholdMS=1000") as c:
        assert set(served_by(c, 60)) == {0, 1, 2}


# -- failover ----------------------------------------------------------------------------


def test_stopped_router_one_auto_reconnect_then_the_others(routers: MockRouters) -> None:
    with no_leaked_socket():
        c = connect(routers.seeds, localThresholdMS=1000, heartbeatFrequencyMS=60_000)
        assert set(served_by(c, 40)) == {0, 1, 2}  # every router has a pooled socket
        routers[0].stop()  # mid-run: its sockets are closed, its port refuses
        failures = 0
        answered: Set[int] = set()
        for _ in range(60):
            try:
                answered.add(c.db.c.find_one()["member"])  # type: ignore[index]
            except errors.AutoReconnect:
                failures += 1
        assert failures == 1
        assert answered == {1, 2}
        sd = selector(c).view.members[routers[0].address]
        assert sd.server_type is ServerType.UNKNOWN
        assert sd.error is not None
        for pool in selector(c).pools():
            assert pool.in_use == 0
        c.close()
        del c
        gc.collect()


def test_failed_router_is_rechecked_and_comes_back(routers: MockRouters) -> None:
    with connect(routers.seeds, localThresholdMS=1000, heartbeatFrequencyMS=200) as c:
        assert set(served_by(c, 40)) == {0, 1, 2}
        routers[1].up = False  # hangs up on everything, hello included
        failures = 0
        for _ in range(40):
            try:
                c.db.c.find_one()
            except errors.AutoReconnect:
                failures += 1
        # one, or none when the 200 ms heartbeat found it down before any find did
        assert failures <= 1
        assert selector(c).view.members[routers[1].address].server_type is ServerType.UNKNOWN
        routers[1].up = True
        wait_until(
            lambda: selector(c).view.members[routers[1].address].server_type is ServerType.MONGOS
        )
        assert 1 in served_by(c, 60)


def test_every_router_down_times_out(routers: MockRouters) -> None:
    with connect(
        routers.seeds, serverSelectionTimeoutMS=600, heartbeatFrequencyMS=100, localThresholdMS=1000
    ) as c:
        served_by(c, 30)
        for m in routers.members:
            m.up = False
        failures = 0
        started = time.monotonic()
        while True:
            try:
                c.db.c.find_one()
            except errors.ServerSelectionTimeout as exc:
                message = str(exc)
                break
            except errors.AutoReconnect:
                failures += 1  # at most once per router: then it is known to be down
            assert failures <= 3
        assert "no mongos router found within 0.6s" in message
        assert time.monotonic() - started >= 0.6  # not before serverSelectionTimeoutMS


def test_cursor_keeps_its_router_for_get_more(routers: MockRouters) -> None:
    first_batch = {"cursor": {"id": Int64(42), "ns": "db.c", "firstBatch": [{"_id": "a"}]}}
    with connect(routers.seeds, localThresholdMS=1000) as c:
        for _ in range(5):
            for m in routers.members:
                m.next_reply = {"ok": 1, **first_batch}
            docs = list(c.db.c.find().batch_size(1))
            assert [d["_id"] for d in docs] == ["a", docs[1]["_id"]]
            for m in routers.members:
                m.next_reply = None
        for m in routers.members:  # each getMore went where its find went
            assert len(m.commands("getMore")) == len(m.commands("find"))
        assert sum(len(m.commands("getMore")) for m in routers.members) == 5


def test_construction_without_connecting_finds_the_routers_later(routers: MockRouters) -> None:
    c = connect(routers.seeds, _connect=False)
    try:
        assert monitor_threads() == []
        assert c.db.c.find_one() is not None  # starts the monitor, waits for its round
        assert [t.name for t in monitor_threads()] == ["wireclient-monitor-mongos"]
    finally:
        c.close()


# -- requests ----------------------------------------------------------------------------


def test_request_pins_one_router_and_one_socket(routers: MockRouters) -> None:
    with connect(routers.seeds, localThresholdMS=1000) as c:
        with c.start_request():
            docs = [c.db.c.find_one() for _ in range(20)]
            c.db.c.insert({"x": 1})
            assert len({d["member"] for d in docs}) == 1  # type: ignore[index]
            assert len({d["port"] for d in docs}) == 1  # type: ignore[index]
            pinned = routers[docs[0]["member"]]  # type: ignore[index]
            assert len(pinned.commands("insert")) == 1
            assert pinned.ports("insert") == [docs[0]["port"]]  # type: ignore[index]
            assert c.request_socket() is not None
            assert c.pool.address == pinned.address
        assert len(set(served_by(c, 60))) == 3  # outside the request: the whole window


def test_auto_start_request_keeps_a_thread_on_one_router(routers: MockRouters) -> None:
    with connect(routers.seeds, localThresholdMS=1000, auto_start_request=True) as c:
        assert len(set(served_by(c, 20))) == 1
        c.end_request()
        seen: Set[int] = set()
        for _ in range(30):  # a new request (and a new choice) after each end_request
            seen.update(served_by(c, 1))
            c.end_request()
        assert len(seen) > 1


def test_request_moves_to_another_router_when_its_router_fails(
    routers: MockRouters, flavour: Flavour
) -> None:
    async def main() -> None:
        c = await open_routers(
            flavour, routers.seeds, localThresholdMS=1000, heartbeatFrequencyMS=60_000
        )
        try:
            c.start_request()
            first = (await got(c.db.c.find_one()))["member"]
            routers[first].up = False
            with pytest.raises(errors.AutoReconnect):
                await got(c.db.c.find_one())
            after = [(await got(c.db.c.find_one()))["member"] for _ in range(10)]
            assert len(set(after)) == 1 and first not in after
            assert c.in_request()
            c.end_request()
        finally:
            await got(c.close())

    flavour.run(main)


# -- read preferences ----------------------------------------------------------------------


def read_preferences_received(routers: MockRouters, name: str = "find") -> List[Any]:
    """The ``$readPreference`` of every ``name`` command (None: absent), router by router."""
    found = [doc.get("$readPreference") for m in routers.members for doc in m.commands(name)]
    return [None if rp is None else _plain(rp) for rp in found]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_primary_reads_and_writes_carry_no_read_preference(routers: MockRouters) -> None:
    with connect(routers.seeds) as c:
        c.db.c.find_one()
        c.db.c.insert({"x": 1})
        assert read_preferences_received(routers) == [None]
        assert read_preferences_received(routers, "insert") == [None]


def test_read_preference_is_passed_to_the_router(routers: MockRouters) -> None:
    with connect(routers.seeds, read_preference=ReadPreference.SECONDARY_PREFERRED) as c:
        assert c.read_preference == ReadPreference.SECONDARY_PREFERRED
        c.db.c.find_one()
        c.db.c.insert({"x": 1})  # a write: never a read preference
        nearest = ReadPreference.NEAREST.with_tag_sets([{"dc": "ny"}, {}])
        c.db.c.find_one(read_preference=nearest)
        c.read_preference = ReadPreference.SECONDARY
        c.db.c.find_one()
        c.read_preference = ReadPreference.PRIMARY
        c.db.c.find_one()
    expected = [
        {"mode": "secondaryPreferred"},
        {"mode": "nearest", "tags": [{"dc": "ny"}, {}]},
        {"mode": "secondary"},
        None,
    ]
    assert sorted(map(str, read_preferences_received(routers))) == sorted(map(str, expected))
    assert read_preferences_received(routers, "insert") == [None]


def test_read_preference_from_the_uri(routers: MockRouters) -> None:
    uri = f"{routers.uri}/?readPreference=nearest&readPreferenceTags=dc:ny"
    with connect(uri) as c:
        c.db.c.find_one()
    assert read_preferences_received(routers) == [{"mode": "nearest", "tags": [{"dc": "ny"}]}]


def test_max_staleness_is_left_to_the_router(routers: MockRouters) -> None:
    """The max-staleness spec checks the 90 s / heartbeat minimum for replica sets only: a
    router checks it itself (error 160), so the client passes even a small value on."""
    uri = f"{routers.uri}/?readPreference=secondary&maxStalenessSeconds=1"
    with connect(uri) as c:
        c.db.c.find_one()
        c.read_preference = ReadPreference.NEAREST.with_max_staleness(2)
        c.db.c.find_one()
        c.db.c.find_one(read_preference=ReadPreference.SECONDARY.with_max_staleness(3))
    expected = [
        {"mode": "secondary", "maxStalenessSeconds": 1},
        {"mode": "nearest", "maxStalenessSeconds": 2},
        {"mode": "secondary", "maxStalenessSeconds": 3},
    ]
    assert sorted(map(str, read_preferences_received(routers))) == sorted(map(str, expected))


def test_wire_5_routers_get_the_secondary_ok_flag() -> None:
    old = MockRouters(2, max_wire_version=5)  # OP_QUERY commands on db.$cmd
    seen: List[Any] = []

    def record(request: Any) -> bool:
        if request.command_name == "find":
            seen.append((request.slave_ok, "$readPreference" in request.doc))
        return False  # answered by the router's own responder

    try:
        for m in old.members:
            m.server.autoresponds(record)  # the newest responder runs first
        with connect(old.seeds, read_preference=ReadPreference.SECONDARY) as c:
            c.db.c.find_one()
            c.read_preference = ReadPreference.PRIMARY
            c.db.c.find_one()
        assert seen == [(True, False), (False, False)]
    finally:
        old.close()


# -- lifetime ----------------------------------------------------------------------------


def test_dropped_connection_is_collected_and_its_monitor_exits(routers: MockRouters) -> None:
    c = connect(routers.seeds, heartbeatFrequencyMS=100)
    c.db.c.find_one()
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None
    wait_until(lambda: monitor_threads() == [])


def test_close_then_reuse(routers: MockRouters) -> None:
    with no_leaked_socket():
        c = connect(routers.seeds, localThresholdMS=1000)
        served_by(c, 20)
        c.close()
        assert monitor_threads() == []
        assert all(pool.open_count == 0 for pool in selector(c).pools())
        assert c.db.c.find_one() is not None  # usable after close()
        c.close()
        del c
        gc.collect()


def test_no_socket_left_after_a_run_with_failover(routers: MockRouters) -> None:
    with no_leaked_socket():
        c = connect(routers.seeds, localThresholdMS=1000, heartbeatFrequencyMS=100)
        served_by(c, 30)
        routers[2].up = False
        for _ in range(20):
            try:
                c.db.c.insert({"x": 1})
            except errors.AutoReconnect:
                pass
        open_sockets = sum(pool.open_count for pool in selector(c).pools())
        assert open_sockets <= 3  # one per router used, one at a time: no pile-up
        assert all(pool.in_use == 0 for pool in selector(c).pools())
        c.close()
        del c
        gc.collect()
