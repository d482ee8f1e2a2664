"""ReplicaSetConnection against replica sets of mockupdb servers (see test_monitor.MockReplicaSet).

Discovery, refusals, read preferences (modes, tags, latency window, per connection / database /
collection / find), requests across members, failover, the monitor's lifetime, gevent, fork.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any, List

import bson
import pytest
from flavoured import FLAVOURS, Flavour, got, monitor_tasks
from mock_replica_set import Member, MockReplicaSet, monitor_threads
from waiting import PATIENCE, wait_until

from wireclient import errors, monitoring
from wireclient.client.replica_set import AsyncReplicaSetConnection, ReplicaSetConnection
from wireclient.sdam.read_preferences import ReadPreference
from wireclient.sdam.server_rules import ServerType
from wireclient.transport.blocking import run

SECONDARY = ReadPreference.SECONDARY


pytestmark = pytest.mark.usefixtures("no_monitor_left")


def connect(rs: MockReplicaSet, seeds: Any = None, **kw: Any) -> ReplicaSetConnection:
    kw.setdefault("replicaSet", "rs")
    # generous: what must succeed must not race a busy machine (tests of a timeout set it)
    kw.setdefault("connectTimeoutMS", 10000)
    kw.setdefault("serverSelectionTimeoutMS", 30000)
    return ReplicaSetConnection(seeds or rs[1].host, **kw)


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


async def open_set(flavour: Flavour, rs: MockReplicaSet, seeds: Any = None, **kw: Any) -> Any:
    """``connect`` for either client (``flavoured.py``): a ``ReplicaSetConnection`` or a
    connected ``AsyncReplicaSetConnection``."""
    kw.setdefault("replicaSet", "rs")
    kw.setdefault("connectTimeoutMS", 10000)
    kw.setdefault("serverSelectionTimeoutMS", 30000)
    return await flavour.open(
        ReplicaSetConnection, AsyncReplicaSetConnection, seeds or rs[1].host, **kw
    )


def member_of(rs: MockReplicaSet, doc: Any) -> Member:
    return rs[doc["member"]]


# -- discovery ---------------------------------------------------------------------------


def test_discovers_set_from_one_secondary_seed(rs: MockReplicaSet, flavour: Flavour) -> None:
    rs[2].role = "arbiter"

    async def main() -> None:
        c = await open_set(flavour, rs)
        try:
            assert c.primary == rs[0].address
            assert c.secondaries == [rs[1].address]
            assert c.arbiters == [rs[2].address]
            assert c.address == rs[0].address and c.host == "127.0.0.1"
            assert c.view.set_name == "rs"
            assert c.pools() == {}  # pools open on first use
            await got(c.db.things.insert({"x": 1}))
            assert list(c.pools()) == [rs[0].address]
            assert c.monitor.is_alive()
            assert "rs" in repr(c)
        finally:
            await got(c.close())

    flavour.run(main)


def test_uri_with_replica_set_option(rs: MockReplicaSet) -> None:
    with ReplicaSetConnection(rs.uri, connectTimeoutMS=2000) as c:
        assert c.replica_set_name == "rs"
        assert c.primary == rs[0].address


def test_set_name_learned_when_not_given(rs: MockReplicaSet) -> None:
    with ReplicaSetConnection(rs[2].host, connectTimeoutMS=2000) as c:
        assert c.view.set_name == "rs" and c.primary == rs[0].address


def test_wrong_set_name_is_refused(rs: MockReplicaSet) -> None:
    with pytest.raises(errors.ConfigurationError, match="member of replica set 'rs', not 'other'"):
        connect(rs, replicaSet="other")


def test_standalone_seed_is_refused(rs: MockReplicaSet) -> None:
    rs[1].set_name = ""
    with pytest.raises(errors.ConfigurationError, match="standalone"):
        connect(rs)


def test_member_of_another_set_among_seeds_is_skipped(rs: MockReplicaSet) -> None:
    rs[2].set_name = "elsewhere"
    with connect(rs, seeds=f"{rs[2].host},{rs[1].host}") as c:
        assert c.primary == rs[0].address
        member = c.view.members.get(rs[2].address)
        assert member is None or member.server_type is ServerType.UNKNOWN
        assert any("'elsewhere'" in e for e in c.view.errors)


@pytest.mark.parametrize(
    "role, wire_range, kind",
    [
        ("secondary", {"minWireVersion": 99, "maxWireVersion": 100}, ServerType.SECONDARY),
        ("arbiter", {"minWireVersion": 0, "maxWireVersion": 3}, ServerType.ARBITER),
        ("other", {"minWireVersion": 0, "maxWireVersion": 1}, ServerType.OTHER),
    ],
)
def test_member_outside_our_wire_range_keeps_its_type_and_selection_says_why(
    rs: MockReplicaSet, role: str, wire_range: Any, kind: ServerType
) -> None:
    rs[1].role = role
    rs[1].extra = dict(wire_range)
    with connect(rs, seeds=rs[0].host) as c:
        member = c.view.members[rs[1].address]
        assert member.server_type is kind and member.set_name == "rs"
        assert member.max_wire_version == wire_range["maxWireVersion"]
        assert c.view.members[rs[0].address].server_type is ServerType.PRIMARY
        assert not c.view.compatible
        with pytest.raises(errors.ConfigurationError, match=f"server at {rs[1].host} .*wire"):
            c.db.command("ping")
        rs[1].extra = {}  # upgraded: the next check makes the set usable again
        c.refresh()
        assert c.view.compatible
        c.db.command("ping")


def test_unreachable_seeds(rs: MockReplicaSet) -> None:
    from servers import free_port

    with pytest.raises(errors.AutoReconnect, match="could not reach any seed"):
        ReplicaSetConnection(f"127.0.0.1:{free_port()}", replicaSet="rs", connectTimeoutMS=500)
    assert monitor_threads() == []


def test_members_added_and_removed_follow_the_primary(rs: MockReplicaSet) -> None:
    extra = MockReplicaSet(1)  # a fourth server, joined to rs below
    try:
        newcomer = extra[0]
        newcomer.rs = rs
        rs.members.append(newcomer)
        with connect(rs, heartbeatFrequencyMS=100) as c:
            assert newcomer.address in c.view.members
            c.db.c.find_one(read_preference=ReadPreference.NEAREST)
            rs.members.remove(newcomer)  # the primary no longer lists it
            assert wait_until(lambda: newcomer.address not in c.view.members)
            assert newcomer.address not in c.pools()
    finally:
        extra.close()


# -- reads and writes --------------------------------------------------------------------


def test_writes_and_commands_go_to_the_primary(rs: MockReplicaSet, flavour: Flavour) -> None:
    async def main() -> None:
        c = await open_set(flavour, rs, read_preference=SECONDARY)
        try:
            await got(c.db.things.insert({"x": 1}))
            await got(c.db.things.update({"x": 1}, {"$set": {"y": 2}}))
            await got(c.db.command("ping"))
            # reads follow the read preference
            assert member_of(rs, await got(c.db.c.find_one())).role == "secondary"
        finally:
            await got(c.close())

    flavour.run(main)
    assert len(rs[0].commands("insert")) == 1 and len(rs[0].commands("update")) == 1
    assert rs[0].commands("ping")
    assert not rs[1].commands("insert") and not rs[1].commands("ping")
    assert "$readPreference" not in rs[0].commands("insert")[0]


def test_primary_reads_carry_no_read_preference(rs: MockReplicaSet) -> None:
    with connect(rs) as c:
        doc = c.db.c.find_one()
        assert doc is not None and member_of(rs, doc) is rs[0]
        assert "$readPreference" not in rs[0].commands("find")[0]


def test_secondary_reads_carry_read_preference(rs: MockReplicaSet) -> None:
    with connect(
        rs, read_preference=SECONDARY, auto_start_request=False, localThresholdMS=1000
    ) as c:  # a wide window: robust on a loaded machine
        seen = set()
        for _ in range(30):
            doc = c.db.c.find_one()
            assert doc is not None
            seen.add(doc["member"])
        assert seen == {1, 2}  # spread over the latency window outside a request
        sent = rs[1].commands("find") + rs[2].commands("find")
        assert all(d["$readPreference"] == {"mode": "secondary"} for d in sent)
        assert c.db.c.count() in (1, 2)
        assert rs[1].commands("count") or rs[2].commands("count")


def test_read_preference_per_database_collection_and_find(rs: MockReplicaSet) -> None:
    with connect(rs, auto_start_request=False) as c:
        assert c.read_preference == ReadPreference.PRIMARY
        assert c.db.c.find_one()["member"] == 0  # type: ignore[index]
        assert c.db.c.find_one(read_preference=SECONDARY)["member"] in (1, 2)  # type: ignore[index]
        db = c.db
        db.read_preference = SECONDARY
        assert db.c.find_one()["member"] in (1, 2)  # type: ignore[index]
        coll = c.other.c
        coll.read_preference = ReadPreference.NEAREST.with_tag_sets([{"dc": "sf"}])
        rs[2].tags = {"dc": "sf"}
        c.monitor.wait_for_check(PATIENCE)
        assert coll.find_one()["member"] == 2  # type: ignore[index]
        assert rs[2].commands("find")[-1]["$readPreference"] == {
            "mode": "nearest",
            "tags": [{"dc": "sf"}],
        }
        assert c.db.c.find_one(read_preference="secondaryPreferred")["member"] in (1, 2)  # type: ignore[index]


def test_tag_sets_first_match_wins(rs: MockReplicaSet) -> None:
    rs[1].tags = {"dc": "ny"}
    rs[2].tags = {"dc": "sf"}
    pref = SECONDARY.with_tag_sets([{"dc": "tokyo"}, {"dc": "sf"}, {}])
    with connect(rs, read_preference=pref, auto_start_request=False) as c:
        assert {c.db.c.find_one()["member"] for _ in range(10)} == {2}  # type: ignore[index]


def test_tag_sets_given_as_options(rs: MockReplicaSet) -> None:
    rs[1].tags = {"dc": "ny"}
    with connect(rs, read_preference="secondary", tag_sets=[{"dc": "ny"}]) as c:
        assert c.read_preference == SECONDARY.with_tag_sets([{"dc": "ny"}])
        assert c.db.c.find_one()["member"] == 1  # type: ignore[index]


def test_latency_window(rs: MockReplicaSet) -> None:
    rs[2].delay = 0.08  # 80 ms round trips: outside a 15 ms window
    with connect(rs, read_preference=SECONDARY, auto_start_request=False) as c:
        assert {c.db.c.find_one()["member"] for _ in range(10)} == {1}  # type: ignore[index]
    with connect(
        rs, read_preference=SECONDARY, auto_start_request=False, localThresholdMS=500
    ) as c:
        assert {c.db.c.find_one()["member"] for _ in range(40)} == {1, 2}  # type: ignore[index]


def test_hidden_members_and_arbiters_are_never_read_from(rs: MockReplicaSet) -> None:
    rs[1].role = "hidden"
    rs[2].role = "arbiter"
    with connect(
        rs,
        seeds=f"{rs[1].host},{rs[0].host}",
        read_preference=ReadPreference.NEAREST,
        auto_start_request=False,
        localThresholdMS=10_000,
    ) as c:
        assert rs[1].address not in c.view.members  # not listed by the primary
        assert {c.db.c.find_one()["member"] for _ in range(10)} == {0}  # type: ignore[index]
        assert not rs[2].commands("find")


def test_secondary_reads_on_wire_5_use_the_secondary_ok_flag() -> None:
    old = MockReplicaSet(3, max_wire_version=5)  # commands over OP_QUERY, no OP_MSG
    try:
        with connect(
            old, read_preference=SECONDARY, auto_start_request=False, localThresholdMS=1000
        ) as c:
            assert {c.db.c.find_one()["member"] for _ in range(20)} == {1, 2}  # type: ignore[index]
            assert all("$readPreference" not in d for d in old[1].commands("find"))
            c.db.c.insert({"x": 1})
            assert len(old[0].commands("insert")) == 1
    finally:
        old.close()


def test_secondary_preferred_without_secondaries_reads_the_primary(rs: MockReplicaSet) -> None:
    rs[1].up = rs[2].up = False
    with connect(rs, seeds=rs[0].host, read_preference=ReadPreference.SECONDARY_PREFERRED) as c:
        assert c.db.c.find_one()["member"] == 0  # type: ignore[index]
        assert rs[0].commands("find")[0]["$readPreference"] == {"mode": "secondaryPreferred"}


def test_secondary_without_secondaries_times_out(rs: MockReplicaSet) -> None:
    rs[1].up = rs[2].up = False
    with connect(
        rs, seeds=rs[0].host, read_preference=SECONDARY, serverSelectionTimeoutMS=300
    ) as c:
        started = time.monotonic()
        with pytest.raises(errors.ServerSelectionTimeout, match="ReadPreference.SECONDARY"):
            c.db.c.find_one()
        assert time.monotonic() - started >= 0.3  # not before serverSelectionTimeoutMS
        c.db.c.insert({"x": 1})  # the primary still takes writes


# -- requests ----------------------------------------------------------------------------


def test_request_pins_reads_to_one_member(rs: MockReplicaSet) -> None:
    with connect(rs, read_preference=SECONDARY, auto_start_request=False) as c:
        with c.start_request():
            members = {c.db.c.find_one()["member"] for _ in range(20)}  # type: ignore[index]
            assert len(members) == 1
            pinned = rs[members.pop()]
            assert c.pinned_member() == pinned.address
            assert len(set(pinned.ports("find"))) == 1  # and to one socket on it
        assert not c.in_request() and c.pinned_member() is None


def test_request_repins_when_preference_changes(rs: MockReplicaSet) -> None:
    rs[1].tags = {"dc": "ny"}
    rs[2].tags = {"dc": "sf"}
    with connect(rs, auto_start_request=False) as c:
        c.start_request()
        ny = SECONDARY.with_tag_sets([{"dc": "ny"}])
        sf = SECONDARY.with_tag_sets([{"dc": "sf"}])
        assert c.db.c.find_one(read_preference=ny)["member"] == 1  # type: ignore[index]
        assert c.pinned_member() == rs[1].address
        assert c.db.c.find_one(read_preference=sf)["member"] == 2  # type: ignore[index]
        assert c.pinned_member() == rs[2].address
        assert c.db.c.find_one()["member"] == 0  # type: ignore[index]  # PRIMARY: the primary
        c.end_request()


def test_primary_reads_in_request_use_the_primary_request_socket(rs: MockReplicaSet) -> None:
    with connect(rs, auto_start_request=False) as c:
        with c.start_request():
            c.db.c.insert({"x": 1}, safe=False)
            c.db.c.find_one()
            c.db.c.insert({"x": 2})
            c.db.c.find_one()
            you = c.admin.command("whatsmyuri")["you"]
        ports = set(rs[0].ports("insert") + rs[0].ports("find") + rs[0].ports("whatsmyuri"))
        assert len(ports) == 1 and you.endswith(f":{ports.pop()}")


def test_requests_are_per_thread(rs: MockReplicaSet) -> None:
    with connect(rs, auto_start_request=False) as c:
        c.start_request()
        inside: List[bool] = []
        t = threading.Thread(target=lambda: inside.append(c.in_request()))
        t.start()
        t.join()
        assert inside == [False] and c.in_request()
        c.start_request()  # nesting
        c.end_request()
        assert c.in_request()
        c.end_request()
        c.end_request()  # extra: harmless
        assert not c.in_request()


def test_auto_start_request_covers_every_member(rs: MockReplicaSet) -> None:
    with connect(rs) as c:
        assert not c.in_request()
        c.db.c.find_one(read_preference=SECONDARY)
        assert c.in_request()
        pinned = c.pinned_member()
        bound = c._requests.bound_socket
        assert pinned is not None and bound(c.pools()[pinned]) is not None
        c.db.c.insert({"x": 1})
        assert bound(c.pools()[rs[0].address]) is not None
        c.end_request()
        assert all(p.idle_count() == p.open_count for p in c.pools().values())  # all given back


def test_dead_thread_in_request_releases_its_sockets(rs: MockReplicaSet) -> None:
    with connect(rs) as c:

        def work() -> None:
            c.db.c.insert({"x": 1})
            c.db.c.find_one(read_preference=SECONDARY)

        t = threading.Thread(target=work)
        t.start()
        t.join()
        del t
        gc.collect()
        assert c.request_count() == 0  # the dead thread's request is forgotten
        assert all(p.idle_count() == p.open_count for p in c.pools().values())  # sockets back


def test_pin_survives_latency_changes_but_not_a_change_of_primary(rs: MockReplicaSet) -> None:
    with connect(rs, read_preference=SECONDARY, heartbeatFrequencyMS=60_000) as c:
        c.monitor.min_heartbeat_frequency = 0.0  # the rounds asked for below need no pause
        c.start_request()
        first = c.db.c.find_one()["member"]  # type: ignore[index]
        other = 2 if first == 1 else 1
        rs[first].delay = 0.1  # the pinned member drifts out of the latency window
        for _ in range(3):
            assert c.monitor.wait_for_check(PATIENCE)
        assert c.view.members[rs[first].address].round_trip_time > 0.03  # type: ignore[operator]
        assert c.db.c.find_one()["member"] == first  # type: ignore[index]  # still pinned
        rs.elect(other)  # new primary: secondaries are now 0 (fast) and first (slow)
        assert c.monitor.wait_for_check(PATIENCE)
        assert c.primary == rs[other].address
        assert c.db.c.find_one()["member"] == 0  # type: ignore[index]  # unpinned, re-chosen
        assert c.pinned_member() == rs[0].address
        c.end_request()


# -- failover ----------------------------------------------------------------------------


def test_dead_primary_one_auto_reconnect_then_new_primary(
    rs: MockReplicaSet, flavour: Flavour
) -> None:
    async def main() -> None:
        c = await open_set(flavour, rs, heartbeatFrequencyMS=60_000)
        try:
            c.start_request()
            await got(c.db.c.insert({"x": 1}))
            rs[0].up = False  # hangs up on everything
            rs.elect(1)
            with pytest.raises(errors.AutoReconnect):
                await got(c.db.c.insert({"x": 2}))
            failed_at = time.monotonic()
            await got(c.db.c.insert({"x": 3}))  # waits for the monitor to find member 1
            took = time.monotonic() - failed_at
            assert c.primary == rs[1].address
            assert len(rs[1].commands("insert")) == 1
            assert c.in_request()  # the request survived the failover
            # (the monitor sleeps 60 s between heartbeats: the write succeeding at all,
            # within serverSelectionTimeoutMS, says the error woke it)
            print(f"\nmockupdb dead primary ({flavour}): first error -> first write {took:.3f}s")
            c.end_request()
        finally:
            await got(c.close())

    flavour.run(main)


def test_not_primary_reply_raises_once_and_refreshes(rs: MockReplicaSet, flavour: Flavour) -> None:
    """The primary steps down: one NotPrimaryError, then the writes go to the new one."""

    async def main() -> None:
        c = await open_set(flavour, rs, heartbeatFrequencyMS=60_000)
        try:
            await got(c.db.c.insert({"x": 1}))
            rs.elect(2)  # the client still believes member 0 is primary
            with pytest.raises(errors.NotPrimaryError) as info:
                await got(c.db.c.insert({"x": 2}))
            assert isinstance(info.value, errors.AutoReconnect)
            await got(c.db.c.insert({"x": 3}))
            assert c.primary == rs[2].address
            assert len(rs[2].commands("insert")) == 1
        finally:
            await got(c.close())

    flavour.run(main)


def test_not_primary_on_commands_and_reads(rs: MockReplicaSet) -> None:
    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        rs[0].next_reply = {"ok": 0, "code": 189, "errmsg": "PrimarySteppedDown"}
        with pytest.raises(errors.NotPrimaryError):
            c.db.command("ping")
        assert c.view.members[rs[0].address].server_type in (ServerType.UNKNOWN, ServerType.PRIMARY)
        c.db.command("ping")  # the monitor confirms member 0 is still primary


class ServerChanges(monitoring.ServerListener):
    def __init__(self) -> None:
        self.changes: List[Any] = []

    def description_changed(self, event: monitoring.ServerDescriptionChangedEvent) -> None:
        self.changes.append(event)


def test_handshake_failing_on_the_network_marks_the_member_unknown(rs: MockReplicaSet) -> None:
    def hang_up_on_new_sockets(request: Any) -> bool:
        if request.command_name != "hello" or "client" not in request.doc:
            return False  # the monitor's checks on its open socket
        return bool(request.hangup())

    listener = ServerChanges()
    with connect(rs, heartbeatFrequencyMS=60_000, event_listeners=[listener]) as c:
        rs[0].server.autoresponds(hang_up_on_new_sockets)
        del listener.changes[:]
        with pytest.raises(errors.AutoReconnect):
            c.db.command("ping")  # no pooled socket yet: a new one, whose handshake fails
        marked = [
            e.new
            for e in listener.changes
            if e.address == rs[0].address and e.new.server_type is ServerType.UNKNOWN
        ]
        assert marked and "could not connect" in (marked[0].error or "")
        assert c.pools()[rs[0].address].generation == 1


def test_handshake_failing_after_the_pool_was_cleared_changes_nothing(rs: MockReplicaSet) -> None:
    """A new socket's handshake begins; meanwhile another socket's network error clears the
    pool (the member is marked Unknown) and the monitor finds the member primary again. When
    the old handshake then fails, it is stale: the member stays primary, the pool is not
    cleared again."""
    handshake_arrived = threading.Event()
    held: List[Any] = []

    def hold_first_new_socket(request: Any) -> bool:
        # a new socket's handshake hello carries the client metadata; monitor checks do not
        if request.command_name != "hello" or "client" not in request.doc or held:
            return False
        held.append(request)  # unanswered: the test hangs up on it later
        handshake_arrived.set()
        return True

    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        c.db.command("ping")
        pool = c.pool
        lent = run(pool.checkout())  # the pool's one socket: the next operation connects
        rs[0].server.autoresponds(hold_first_new_socket)
        failures: List[BaseException] = []

        def ping() -> None:
            try:
                c.db.command("ping")
            except errors.AutoReconnect as exc:
                failures.append(exc)

        connecting = threading.Thread(target=ping)
        connecting.start()
        assert handshake_arrived.wait(10)  # that socket's handshake is under way, generation 0
        pool.return_socket(lent)
        rs[0].up = False  # the lent socket's next operation meets a hang-up
        with pytest.raises(errors.AutoReconnect):
            c.db.command("ping")
        rs[0].up = True
        assert pool.generation == 1
        c.refresh()  # the monitor finds member 0 primary again
        view = c.view
        assert view.members[rs[0].address].server_type is ServerType.PRIMARY

        held[0].hangup()  # the generation-0 handshake now fails
        connecting.join(10)
        assert len(failures) == 1
        assert c.view is view, "member 0 was marked Unknown by a stale handshake error"
        assert pool.generation == 1  # nor its pool cleared again
        c.db.command("ping")


def test_stale_not_primary_error_is_ignored_a_newer_one_is_not(rs: MockReplicaSet) -> None:
    """An error whose topologyVersion is no newer than the member's last hello is stale: it
    still fails the operation, but neither marks the member Unknown nor wakes the monitor."""
    process = bson.ObjectId()
    rs[0].extra = {"topologyVersion": {"processId": process, "counter": 5}}
    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        c.db.c.insert({"x": 1})
        assert c.view.members[rs[0].address].topology_version == (process, 5)
        assert c.monitor.wait_for_check(PATIENCE)  # a whole round done: the monitor now sleeps
        view = c.view
        hellos = rs[0].hello_count
        requested = c.monitor.checks_requested
        rs[0].next_reply = {
            "ok": 0,
            "code": 10107,
            "errmsg": "not primary",
            "topologyVersion": {"processId": process, "counter": 4},
        }
        with pytest.raises(errors.NotPrimaryError):
            c.db.c.insert({"x": 2})
        assert c.view is view  # not marked Unknown
        assert c.monitor.checks_requested == requested  # and no check was asked for
        c.db.c.insert({"x": 3})

        rs[0].next_reply = {
            "ok": 0,
            "code": 10107,
            "errmsg": "not primary",
            "topologyVersion": {"processId": process, "counter": 6},
        }
        rs[0].extra = {"topologyVersion": {"processId": process, "counter": 6}}
        with pytest.raises(errors.NotPrimaryError):
            c.db.c.insert({"x": 4})
        assert c.view is not view
        assert c.monitor.checks_requested > requested  # this one asks for a check
        c.db.c.insert({"x": 5})  # after the monitor's check, member 0 is primary again
        assert c.view.members[rs[0].address].topology_version == (process, 6)
        assert rs[0].hello_count > hellos


@pytest.mark.parametrize("operation", ["insert", "update", "command"])
def test_write_concern_error_saying_not_primary_refreshes(
    rs: MockReplicaSet, operation: str
) -> None:
    """A write that succeeded but whose write concern failed because the primary stepped down
    raises WriteConcernError (the write did happen: no AutoReconnect), and wakes the monitor,
    so the next write finds the new primary instead of meeting "not primary" first."""
    writes = {
        "insert": lambda c: c.db.c.insert({"x": 2}),
        "update": lambda c: c.db.c.update({"x": 1}, {"$set": {"x": 2}}),
        "command": lambda c: c.db.command("insert", "c", documents=[{"x": 2}]),
    }
    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        c.db.c.insert({"x": 1})
        rs.elect(2)  # the client still believes member 0 is primary
        rs[0].next_reply = {
            "ok": 1,
            "n": 1,
            "writeConcernError": {"code": 189, "errmsg": "PrimarySteppedDown"},
        }
        if operation == "command":  # a raw command returns the reply; nothing is raised
            assert writes[operation](c)["writeConcernError"]["code"] == 189
        else:
            with pytest.raises(errors.WriteConcernError) as info:
                writes[operation](c)
            assert not isinstance(info.value, errors.AutoReconnect)
        c.db.c.insert({"x": 3})  # no NotPrimaryError from member 0: the view was refreshed
        assert c.primary == rs[2].address
        assert len(rs[2].commands("insert")) == 1


def test_write_concern_error_for_another_reason_keeps_the_primary(rs: MockReplicaSet) -> None:
    with connect(rs, heartbeatFrequencyMS=60_000) as c:
        c.db.c.insert({"x": 1})
        rs[0].next_reply = {
            "ok": 1,
            "n": 1,
            "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"},
        }
        with pytest.raises(errors.WriteConcernError, match="timed out"):
            c.db.c.insert({"x": 2}, w=3, wtimeout=10)
        assert c.view.members[rs[0].address].server_type is ServerType.PRIMARY


def test_no_primary_waits_then_times_out(rs: MockReplicaSet, flavour: Flavour) -> None:
    rs.elect(None)

    async def main() -> None:
        c = await open_set(flavour, rs, serverSelectionTimeoutMS=400)
        try:
            with pytest.raises(errors.ServerSelectionTimeout, match="no primary"):
                await got(c.db.c.insert({"x": 1}))
            found = await got(c.db.c.find_one(read_preference=ReadPreference.PRIMARY_PREFERRED))
            assert found is not None
        finally:
            await got(c.close())

    flavour.run(main)


def test_write_waits_for_an_election(rs: MockReplicaSet) -> None:
    rs.elect(None)
    with connect(rs) as c:
        timer = threading.Timer(0.5, rs.elect, args=(1,))
        started = time.monotonic()
        timer.start()
        c.db.c.insert({"x": 1})  # within serverSelectionTimeoutMS (30 s), not at once
        assert time.monotonic() - started >= 0.5
        assert len(rs[1].commands("insert")) == 1
        timer.join()


# -- lifetime ----------------------------------------------------------------------------


def test_close_stops_the_monitor_and_a_later_operation_restarts_it(rs: MockReplicaSet) -> None:
    c = connect(rs)
    c.db.c.insert({"x": 1})
    monitor = c.monitor
    c.close()
    assert not monitor.is_alive() and monitor_threads() == []
    c.db.c.insert({"x": 2})  # the view is still known; no monitor needed for this
    rs.elect(1)
    rs[0].up = False
    with pytest.raises(errors.AutoReconnect):
        c.db.c.insert({"x": 3})
    c.db.c.insert({"x": 4})  # needed the monitor: a new one was started
    assert c.monitor is not monitor and c.monitor.is_alive()
    c.close()
    assert monitor_threads() == []


def test_only_member_answering_as_standalone_is_rechecked() -> None:
    """A one-member set whose member briefly answers as a standalone (SecantusDB does, while
    it shuts down): the view falls back to the seed, and the connection recovers when the
    member is a set member again, rather than having nobody left to check."""
    one = MockReplicaSet(1)
    try:
        with connect(one, seeds=one[0].host, serverSelectionTimeoutMS=3000) as c:
            c.db.c.insert({"x": 1})
            one[0].set_name = ""  # a standalone now
            assert c.monitor.wait_for_check(PATIENCE)
            assert c.primary is None and "standalone" in c.view.errors[-1]
            assert list(c.view.members) == [one[0].address]  # the seed, Unknown
            one[0].set_name = None  # back in the set
            c.db.c.insert({"x": 2})  # waits for the monitor to find it again
            assert c.primary == one[0].address
            assert len(one[0].commands("insert")) == 2
    finally:
        one.close()


def test_dropped_connection_is_collected_and_its_monitor_exits(rs: MockReplicaSet) -> None:
    c = connect(rs)
    c.db.c.insert({"x": 1})
    c.db.c.find_one(read_preference=SECONDARY)
    monitor = c.monitor
    ref = weakref.ref(c)
    del c
    gc.collect()
    assert ref() is None
    assert wait_until(lambda: not monitor.is_alive())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_its_own_monitor_and_sockets(rs: MockReplicaSet) -> None:
    with connect(rs) as c:
        c.db.c.insert({"x": 1})
        parent_ports = set(rs[0].ports("insert"))
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                c.db.c.insert({"x": 2})
                ok = c.monitor.is_alive() and c.monitor.wait_for_check(PATIENCE)
                os.write(write_end, f"{ok} {len(monitor_threads())}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        report = os.read(read_end, 100).decode()
        os.close(read_end)
        assert os.WEXITSTATUS(status) == 0 and report == "True 1"
        child_ports = set(rs[0].ports("insert")) - parent_ports
        assert child_ports and not child_ports & parent_ports  # the child used its own socket


GEVENT_CHILD = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import gevent, threading
    from wireclient.client.replica_set import ReplicaSetConnection
    from wireclient.sdam.read_preferences import ReadPreference
    c = ReplicaSetConnection({seed!r}, replicaSet="rs", use_greenlets=True,
                             read_preference=ReadPreference.SECONDARY)
    assert c.monitor.flavour == "gevent", c.monitor.flavour
    def work(i):
        c.db.c.insert({{"i": i}})
        return c.db.c.find_one()["member"], c.in_request()
    jobs = [gevent.spawn(work, i) for i in range(10)]
    gevent.joinall(jobs, raise_error=True)
    results = [j.value for j in jobs]
    assert all(member in (1, 2) and in_request for member, in_request in results), results
    c.close()
    assert not c.monitor.is_alive()
    print("OK", len(results))
    """
)


def test_gevent_greenlets_and_greenlet_monitor(rs: MockReplicaSet) -> None:
    pytest.importorskip("gevent")
    code = GEVENT_CHILD.format(seed=rs[1].host)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["OK", "10"]


# -- pool options and load-based selection ------------------------------------------------


def test_min_pool_size_is_filled_by_the_monitor(rs: MockReplicaSet) -> None:
    with connect(rs, minPoolSize=2, heartbeatFrequencyMS=100, auto_start_request=False) as c:
        assert wait_until(
            lambda: len(c.pools()) == 3 and all(p.open_count >= 2 for p in c.pools().values())
        )
        pools = c.pools()  # no operation ran: the monitor opened them in the background
        assert sorted(pools) == sorted(m.address for m in rs.members)
        assert all(p.open_count == 2 and p.idle_count() == 2 for p in pools.values())


def test_latency_window_prefers_the_less_busy_of_two(rs: MockReplicaSet) -> None:
    """Power of two choices: a member with many operations in progress is never picked
    while two others in the window are idle (of any two, the busier one loses)."""
    with connect(
        rs,
        read_preference=ReadPreference.NEAREST,
        auto_start_request=False,
        localThresholdMS=10_000,
    ) as c:
        c.db.c.find_one()
        busy = c._selector._pool_for(rs[2].address)
        held = [run(busy.checkout()) for _ in range(3)]  # three operations "in progress"
        try:
            seen = {c.db.c.find_one()["member"] for _ in range(40)}  # type: ignore[index]
        finally:
            for sock in held:
                busy.return_socket(sock)
        assert seen == {0, 1}


# -- the asyncio client (flavoured.py runs the tests above on both) ---------------------


def test_async_monitor_is_one_task_per_client_stopped_by_close(rs: MockReplicaSet) -> None:
    from wireclient import AsyncMongoReplicaSetClient

    async def main() -> None:
        c = await open_set(Flavour("asyncio"), rs)
        other = AsyncMongoReplicaSetClient(rs[2].host, replicaSet="rs")
        try:
            assert monitor_threads() == []  # no thread: a Task on this loop
            assert len(monitor_tasks()) == 1 and c.monitor.is_alive()
            await other.connect()
            assert len(monitor_tasks()) == 2  # one per client
            assert repr(other).startswith("AsyncMongoReplicaSetClient(")
            await other.db.c.insert({"x": 0})
            assert await c.refresh() is None  # awaited: a round of checks
            monitor = c.monitor
            await c.close()
            assert not monitor.is_alive()
            assert len(monitor_tasks()) == 1  # the other client's only
            await c.db.c.insert({"x": 1})  # the view is still known: no monitor needed
            rs.elect(1)
            rs[0].up = False
            with pytest.raises(errors.AutoReconnect):
                await c.db.c.insert({"x": 2})
            await c.db.c.insert({"x": 3})  # needed the monitor: a new Task was started
            assert c.monitor is not monitor and c.monitor.is_alive()
            assert len(monitor_tasks()) == 2
        finally:
            await c.close()
            await other.close()
        assert monitor_tasks() == []

    Flavour("asyncio").run(main)


def test_async_write_waits_for_an_election_without_blocking_the_loop(rs: MockReplicaSet) -> None:
    """No primary: the write awaits the monitor's rounds while this Task keeps running, then
    goes to the member elected meanwhile."""
    import asyncio

    rs.elect(None)

    async def main() -> None:
        c = await open_set(Flavour("asyncio"), rs)
        try:
            rounds = c.monitor.rounds
            write = asyncio.ensure_future(c.db.c.insert({"x": 1}))
            # the write waits for the monitor's rounds (it woke it: the heartbeat is 10 s
            # away), and this Task runs meanwhile
            while c.monitor.rounds <= rounds + 1 and not write.done():
                await asyncio.sleep(0.005)
            assert not write.done()
            rs.elect(1)
            await write
            assert c.primary == rs[1].address
            assert len(rs[1].commands("insert")) == 1
        finally:
            await c.close()

    Flavour("asyncio").run(main)


def test_async_plain_property_cannot_wait_for_a_primary(rs: MockReplicaSet) -> None:
    rs.elect(None)

    async def main() -> None:
        c = await open_set(Flavour("asyncio"), rs, serverSelectionTimeoutMS=400)
        try:
            with pytest.raises(errors.AutoReconnect, match="cannot wait"):
                _ = c.address
        finally:
            await c.close()

    Flavour("asyncio").run(main)


def test_async_replica_set_connection_to_secantus(server: Any) -> None:
    """SecantusDB is a one-member replica set 'secantus': discovered, written and read."""

    async def main() -> None:
        async with AsyncReplicaSetConnection(server.uri, replicaSet="secantus") as c:
            assert c.replica_set_name == "secantus" and c.primary is not None
            assert len(monitor_tasks()) == 1
            coll = c.test_async_rs.things
            await coll.drop()
            await coll.insert({"_id": 1, "x": 1})
            assert (await coll.find_one({"_id": 1}))["x"] == 1
            assert (await c.test_async_rs.command("ping"))["ok"] == 1
        assert monitor_tasks() == []

    Flavour("asyncio").run(main)
