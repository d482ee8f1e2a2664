"""Events (wireclient.monitoring): what listeners hear, checked against what the server saw;
listeners that raise; registration. Command and frame events are at the end of this module."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any, Dict, List, Tuple

import pytest
from event_recorder import Recorder
from flavoured import FLAVOURS, Flavour, got
from mock_replica_set import MockReplicaSet
from waiting import PATIENCE, wait_until

from wireclient import AsyncMongoClient, Connection, MongoClient, ReplicaSetConnection, monitoring
from wireclient.transport.blocking import run

SDAM = (
    "topology_opened",
    "topology_changed",
    "topology_closed",
    "server_opened",
    "server_changed",
    "server_closed",
)


def sdam_events(recorder: Recorder) -> List[Tuple[str, Any]]:
    """The topology and server events so far, as (name, address or None)."""
    with recorder.lock:
        return [(n, getattr(e, "address", None)) for n, e in recorder.events if n in SDAM]


def whoami(conn: Connection) -> str:
    return str(conn.admin.command("whatsmyuri")["you"])


def total_created(server: Any) -> int:
    with Connection(server.uri, auto_start_request=False) as probe:
        return int(probe.admin.command("serverStatus")["connections"]["totalCreated"])


def test_pool_events_match_what_the_server_saw(server: Any) -> None:
    recorder = Recorder()
    before = total_created(server)
    with Connection(server.uri, event_listeners=[recorder], auto_start_request=False) as c:
        barrier = threading.Barrier(3)

        def work() -> None:
            with c.start_request():
                whoami(c)
                barrier.wait(PATIENCE)  # three sockets at once
                whoami(c)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PATIENCE)
        created = recorder.of("connection_created")
        assert len(created) == 3
        assert total_created(server) - before == 3 + 1  # + the probe itself
        assert all(e.address == c.address and e.generation == 0 for e in created)
        # created comes before the connect (CMAP): the socket's ends are known once ready
        ready = recorder.of("connection_ready")
        assert sorted(e.driver_connection_id for e in created) == [1, 2, 3]
        assert sorted(e.driver_connection_id for e in ready) == [1, 2, 3]
        local = {f"{e.local_address[0]}:{e.local_address[1]}" for e in ready}
        assert len(local) == 3
        assert all(e.connection_id is not None for e in ready)  # the server's number too
        assert len(recorder.of("connection_checked_out")) >= 3
        assert len(recorder.of("connection_checked_in")) >= 3
        started, ended = recorder.of("request_started"), recorder.of("request_ended")
        assert len(started) == len(ended) == 3
        assert len({e.identity for e in started}) == 3  # one per thread
        assert {e.caller.thread_name for e in started} == {t.name for t in threads}
        c.pool.clear()
        cleared = recorder.of("pool_cleared")
        assert [e.generation for e in cleared] == [1]
        closed = recorder.of("connection_closed")
        assert len(closed) == 3 and {e.reason for e in closed} == {"stale"}
        # CMAP's order: pool cleared first, then the idle connections' closed events
        names = [n for n, _ in recorder.events if n in ("pool_cleared", "connection_closed")]
        assert names == ["pool_cleared"] + ["connection_closed"] * 3


def test_closing_the_connection_says_pool_closed(server: Any) -> None:
    """The idle sockets ``Connection.close()`` closes carry CMAP's reason, poolClosed."""
    recorder = Recorder()
    c = Connection(server.uri, auto_start_request=False, event_listeners=[recorder])
    c.admin.command("ping")
    c.close()
    closed = recorder.of("connection_closed")
    assert len(closed) == 1 and closed[0].reason == "poolClosed"


def test_a_dead_thread_ends_its_request_in_the_events(server: Any) -> None:
    recorder = Recorder()
    with Connection(server.uri, event_listeners=[recorder]) as c:  # auto_start_request

        def work() -> None:
            whoami(c)

        t = threading.Thread(target=work)
        t.start()
        t.join(5)
        del t
        import gc

        gc.collect()
        assert c.request_count() == 0
        ended = recorder.of("request_ended")
        assert len(ended) == 1 and ended[0].caller is None  # it died: no caller to name


def test_a_listener_that_raises_never_breaks_the_operation(server: Any) -> None:
    class Broken(monitoring.PoolListener):
        calls = 0

        def connection_checked_out(self, event: Any) -> None:
            Broken.calls += 1
            raise RuntimeError("listener bug")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Connection(server.uri, event_listeners=[Broken()], auto_start_request=False) as c:
            for _ in range(3):
                assert c.admin.command("ping")["ok"] == 1
    assert Broken.calls >= 3
    reports = [w for w in caught if "listener bug" in str(w.message)]
    assert len(reports) == 1  # reported once


def test_global_registration_applies_to_connections_made_afterwards(server: Any) -> None:
    recorder = Recorder()
    monitoring.register(recorder)
    try:
        with Connection(server.uri, auto_start_request=False) as c:
            c.admin.command("ping")
    finally:
        monitoring.unregister(recorder)
    assert recorder.of("connection_created")
    with Connection(server.uri, auto_start_request=False) as c:
        count = len(recorder.events)
        c.admin.command("ping")
    assert len(recorder.events) == count  # unregistered: nothing more


def test_only_listeners_are_accepted() -> None:
    with pytest.raises(TypeError):
        monitoring.register(object())
    from wireclient.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Connection("mongodb://h/", _connect=False, event_listeners=[object()])


def test_replica_set_events(rs: MockReplicaSet) -> None:
    recorder = Recorder()
    with ReplicaSetConnection(
        rs[1].host,
        replicaSet="rs",
        serverSelectionTimeoutMS=5000,
        heartbeatFrequencyMS=100,
        event_listeners=[recorder],
    ) as c:
        c.db.c.insert({"x": 1})
        assert recorder.of("heartbeat_started") and recorder.of("heartbeat_succeeded")
        addresses = {e.address for e in recorder.of("heartbeat_succeeded")}
        assert addresses == {m.address for m in rs.members}
        changed = recorder.of("server_changed")
        assert {e.address for e in changed} >= {m.address for m in rs.members}
        topology = recorder.of("topology_changed")
        assert topology and topology[-1].new.primary == rs[0].address
        rs[2].up = False  # a member stops answering: its heartbeats fail
        assert wait_until(lambda: recorder.of("heartbeat_failed"))
        failed = recorder.of("heartbeat_failed")
        assert failed and failed[0].address == rs[2].address and failed[0].failure is not None


def test_one_server_connection_opens_describes_and_closes_its_topology(server: Any) -> None:
    recorder = Recorder()
    c = Connection(server.uri, event_listeners=[recorder], auto_start_request=False)
    address = c.address
    # the constructor's first socket describes the server (its handshake)
    assert sdam_events(recorder) == [
        ("topology_opened", None),
        ("topology_changed", None),
        ("server_opened", address),
        ("server_changed", address),
        ("topology_changed", None),
    ]
    described = recorder.of("server_changed")[0]
    assert described.previous.server_type.value == "Unknown"
    assert described.new.server_type.value != "Unknown" and described.new.error is None
    first_view = recorder.of("topology_changed")[0]
    assert dict(first_view.previous.members) == {}
    assert list(first_view.new.members) == [address]
    c.admin.command("ping")
    assert len(sdam_events(recorder)) == 5  # nothing new to tell
    del recorder.events[:]
    c.close()
    assert sdam_events(recorder) == [
        ("server_closed", address),
        ("topology_changed", None),
        ("topology_closed", None),
    ]
    ids = {e.topology_id for n, e in recorder.events if n in SDAM}
    assert len(ids) == 1 and None not in ids
    del recorder.events[:]
    c.admin.command("ping")  # closed, then used again: the topology opens again
    assert [n for n, _ in sdam_events(recorder)][:3] == [
        "topology_opened",
        "topology_changed",
        "server_opened",
    ]
    c.close()


def test_replica_set_topology_events_in_the_specification_order(rs: MockReplicaSet) -> None:
    recorder = Recorder()
    a = rs[0].address
    b, c_ = sorted([rs[1].address, rs[2].address])  # members found are added in this order
    conn = ReplicaSetConnection(
        rs[0].host,
        replicaSet="rs",
        serverSelectionTimeoutMS=5000,
        heartbeatFrequencyMS=60_000,
        event_listeners=[recorder],
    )
    # discovery from the primary's seed: it lists the two others, then each is checked
    assert sdam_events(recorder) == [
        ("topology_opened", None),
        ("topology_changed", None),
        ("server_opened", a),
        ("server_changed", a),
        ("server_opened", b),
        ("server_opened", c_),
        ("topology_changed", None),
        ("server_changed", b),
        ("topology_changed", None),
        ("server_changed", c_),
        ("topology_changed", None),
    ]
    assert recorder.of("topology_changed")[-1].new.primary == a
    del recorder.events[:]
    conn.close()
    assert sdam_events(recorder) == [
        ("server_closed", a),
        ("server_closed", b),
        ("server_closed", c_),
        ("topology_changed", None),
        ("topology_closed", None),
    ]


# -- command and frame events -------------------------------------------------------------


def test_command_events_match_the_wire_and_the_server(server: Any) -> None:
    recorder = Recorder()
    with Connection(server.uri, event_listeners=[recorder], auto_start_request=False) as c:
        coll = c.test_monitoring.commands
        coll.drop()
        with c.start_request():
            you = whoami(c)
            coll.insert({"_id": 1})
            assert coll.find_one(1) == {"_id": 1}
        started = {e.request_id: e for e in recorder.of("command_started")}
        succeeded = {e.request_id: e for e in recorder.of("command_succeeded")}
        by_name = {e.command_name: e for e in started.values()}
        assert {"whatsmyuri", "insert", "find"} <= set(by_name)
        for name in ("whatsmyuri", "insert", "find"):
            event = by_name[name]
            assert event.request_id in succeeded  # a matching succeeded event
            assert succeeded[event.request_id].reply["ok"] == 1
            assert succeeded[event.request_id].duration_micros >= 0
            assert f"{event.local_address[0]}:{event.local_address[1]}" == you  # the socket
            assert event.caller.in_request and event.caller.thread_name == "MainThread"
            assert event.address == c.address and event.connection_id is not None
        assert by_name["insert"].database_name == "test_monitoring"
        assert by_name["insert"].command["documents"] == [{"_id": 1}]
        assert by_name["find"].command["filter"] == {"_id": 1}
        assert by_name["find"].command["$db"] == "test_monitoring"
        # the frames: every command's request id went out in a frame with that requestID
        sent_ids = {e.header.request_id for e in recorder.of("sent")}
        assert set(started) <= sent_ids
        received = {e.header.response_to for e in recorder.of("received")}
        assert set(succeeded) <= received


def test_frame_events_include_the_handshake(server: Any) -> None:
    recorder = Recorder()
    with Connection(server.uri, event_listeners=[recorder], auto_start_request=False):
        pass
    first_sent, first_received = recorder.of("sent")[0], recorder.of("received")[0]
    assert first_sent.header.op_code == 2004  # the handshake's OP_QUERY hello
    assert first_received.header.op_code == 1  # its OP_REPLY
    assert first_received.header.response_to == first_sent.header.request_id
    assert len(first_sent.data) == first_sent.header.message_length
    assert recorder.of("command_started") == []  # the handshake is not a command event


def test_failed_command_events(server: Any) -> None:
    from wireclient.errors import OperationFailure

    recorder = Recorder()
    with Connection(server.uri, event_listeners=[recorder], auto_start_request=False) as c:
        with pytest.raises(OperationFailure):
            c.admin.command("noSuchCommandAtAll")
    failed = recorder.of("command_failed")
    assert len(failed) == 1 and failed[0].command_name == "noSuchCommandAtAll"
    assert failed[0].failure["ok"] == 0 and recorder.of("command_succeeded") == []


def test_network_failure_is_a_failed_event(fresh_server: Any) -> None:
    from wireclient.errors import AutoReconnect

    recorder = Recorder()
    with Connection(fresh_server.uri, event_listeners=[recorder], auto_start_request=False) as c:
        c.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {"failCommands": ["ping"], "closeConnection": True},
            }
        )
        with pytest.raises(AutoReconnect):
            c.admin.command("ping")
        failed = recorder.of("command_failed")
        assert len(failed) == 1 and isinstance(failed[0].failure, AutoReconnect)
        closed = recorder.of("connection_closed")
        assert closed and closed[-1].reason == "error"
        assert [e.generation for e in recorder.of("pool_cleared")] == [1]


def test_authentication_commands_are_redacted(server: Any) -> None:
    recorder = Recorder()
    with Connection(server.uri, event_listeners=[recorder], auto_start_request=False) as c:
        c.admin.command(
            {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"n,,n=u,r=secret"},
            check=False,
        )
        c.admin.command({"hello": 1, "speculativeAuthenticate": {"payload": b"secret"}})
    started = {e.command_name: e for e in recorder.of("command_started")}
    assert started["saslStart"].command == {} and started["hello"].command == {}
    for event in recorder.of("command_succeeded") + recorder.of("command_failed"):
        if event.command_name in ("saslStart", "hello"):
            shown = event.reply if hasattr(event, "reply") else event.failure
            assert shown == {}


def test_greenlet_identity_in_command_events(server: Any) -> None:
    """After patch_all, each greenlet is its own caller in the events."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import gevent, json, sys\n"
        "from wireclient import Connection, monitoring\n"
        "seen = []\n"
        "class L(monitoring.CommandListener):\n"
        "    def started(self, e):\n"
        "        seen.append((e.caller.greenlet_id, e.caller.in_request,\n"
        "                     '%s:%s' % tuple(e.local_address[:2])))\n"
        "c = Connection(sys.argv[1], event_listeners=[L()])\n"
        "def work():\n"
        "    you = c.admin.command('whatsmyuri')['you']\n"
        "    gevent.sleep(0.05)\n"
        "    return you\n"
        "jobs = [gevent.spawn(work) for _ in range(4)]\n"
        "gevent.joinall(jobs, timeout=20)\n"
        "print(json.dumps({'seen': seen, 'yous': [j.value for j in jobs]}))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", script, server.uri],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    seen = result["seen"]
    assert len(seen) == 4 and len({g for g, _, _ in seen}) == 4  # four greenlets
    assert all(in_request for _, in_request, _ in seen)  # auto_start_request
    assert sorted(addr for _, _, addr in seen) == sorted(result["yous"])


def test_a_members_pool_is_paused_until_its_monitor_reaches_it_again(rs: MockReplicaSet) -> None:
    """CMAP with SDAM: the error handler marks the primary Unknown and pauses its pool
    (checkouts fail at once with PoolClearedError, a retryable error); the monitor's next
    successful check of it marks the pool ready (pool ready), and operations go on."""
    from wireclient.errors import AutoReconnect, PoolClearedError

    recorder = Recorder()
    with ReplicaSetConnection(
        rs[1].host,
        replicaSet="rs",
        serverSelectionTimeoutMS=30000,  # what must succeed, however busy
        heartbeatFrequencyMS=60_000,  # the monitor checks when woken only
        event_listeners=[recorder],
    ) as c:
        c.db.c.insert({"x": 1})
        selector = c._executor.selector
        pool = selector.pools_by_address()[rs[0].address]
        assert run(selector.refresh())  # a whole round done: none is in flight below
        rs[0].up = False  # the primary hangs up
        with pytest.raises(AutoReconnect):
            c.db.c.insert({"x": 2})
        assert pool.state == "paused"
        with pytest.raises(PoolClearedError):
            run(pool.checkout())
        failed = [
            e for e in recorder.of("connection_check_out_failed") if e.address == pool.address
        ]
        assert failed[-1].reason == "connectionError"
        rs[0].up = True
        c.db.c.insert({"x": 3})  # selection waits for a check: it finds the primary again
        assert pool.state == "ready"
        mine = [
            name
            for name, event in recorder.events
            if name.startswith("pool_") and event.address == pool.address
        ]
        assert mine == ["pool_created", "pool_ready", "pool_cleared", "pool_ready"]


def test_a_members_pool_is_paused_when_its_monitor_cannot_reach_it(rs: MockReplicaSet) -> None:
    """SDAM: a check that fails on the network, after its one retry, marks the member
    Unknown and clears its pool, which CMAP pauses until a check succeeds. No operation
    failed: the monitor found the fault first."""
    recorder = Recorder()
    with ReplicaSetConnection(
        rs[1].host,
        replicaSet="rs",
        serverSelectionTimeoutMS=30000,
        heartbeatFrequencyMS=60_000,  # the monitor checks when woken only
        event_listeners=[recorder],
    ) as c:
        c.db.c.insert({"x": 1})
        selector = c._executor.selector
        pool = selector.pools_by_address()[rs[0].address]
        assert run(selector.refresh())
        rs[0].up = False  # the primary hangs up on everything, its monitoring socket included
        run(selector.refresh())  # one round: the check fails, and its retry too
        assert pool.state == "paused"
        member = selector.topology.view.members[rs[0].address]
        assert member.server_type.value == "Unknown"
        rs[0].up = True
        c.db.c.insert({"x": 2})  # selection waits for a check: it finds the primary again
        assert pool.state == "ready"


def test_a_one_server_connection_is_cleared_but_never_paused(fresh_server: Any) -> None:
    """No monitor would mark it ready again: the pool is cleared and the next operation
    connects at once."""
    from wireclient.errors import AutoReconnect

    recorder = Recorder()
    with Connection(fresh_server.uri, event_listeners=[recorder], auto_start_request=False) as c:
        c.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {"failCommands": ["ping"], "closeConnection": True},
            }
        )
        with pytest.raises(AutoReconnect):
            c.admin.command("ping")
        assert c.pool.state == "ready" and len(recorder.of("pool_cleared")) == 1
        c.admin.command("ping")
        assert recorder.of("pool_ready") and len(recorder.of("pool_ready")) == 1  # creation only


# -- the caller of an operation: the thread, or the asyncio Task ----------------------------


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def test_command_events_name_the_caller_s_task(server: Any, flavour: Flavour) -> None:
    """Three callers each run a ping (with a comment naming the caller) and a request: the
    command events' and request events' ``caller`` names the asyncio Task that ran it
    (``task_name``, ``task_id``: the Task's name and id) for the asyncio client, and its
    thread, with no Task (None, None), for the blocking client's threads."""
    recorder = Recorder()
    tasks: Dict[str, int] = {}  # the asyncio callers: name -> id(task)

    async def main() -> None:
        conn = await flavour.open(
            MongoClient, AsyncMongoClient, server.uri, event_listeners=[recorder]
        )
        try:

            async def work(name: str) -> None:
                with conn.start_request():
                    await got(conn.admin.command({"ping": 1, "comment": name}))

            names = [f"worker-{n}" for n in range(3)]
            if flavour.asynchronous:
                started = [asyncio.create_task(work(name), name=name) for name in names]
                tasks.update((task.get_name(), id(task)) for task in started)
                await asyncio.gather(*started)
            else:  # plain threads (no loop, no Task), named as the Tasks are

                def blocking_work(name: str) -> None:
                    with conn.start_request():
                        conn.admin.command({"ping": 1, "comment": name})

                threads = [threading.Thread(target=blocking_work, args=(n,), name=n) for n in names]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(PATIENCE)
        finally:
            await got(conn.close())

    flavour.run(main)
    pings = [e for e in recorder.of("command_started") if e.command_name == "ping"]
    assert sorted(e.command["comment"] for e in pings) == ["worker-0", "worker-1", "worker-2"]
    requests = recorder.of("request_started")
    assert len(requests) == 3
    for event in pings + requests:
        caller = event.caller
        assert caller.in_request
        if flavour.asynchronous:
            assert caller.task_name in tasks and caller.task_id == tasks[caller.task_name]
            assert caller.thread_name == "MainThread"  # the loop's thread, for every Task
        else:
            assert caller.thread_name.startswith("worker-")
            assert (caller.task_name, caller.task_id) == (None, None)
    by_comment = {e.command["comment"]: e.caller for e in pings}
    for name, caller in by_comment.items():
        assert (caller.task_name if flavour.asynchronous else caller.thread_name) == name


def test_a_blocking_call_made_inside_a_coroutine_names_no_task(server: Any) -> None:
    """The blocking client's caller is its thread even when a coroutine calls it (its
    requests are the thread's): ``task_name`` and ``task_id`` stay None."""
    recorder = Recorder()
    conn = Connection(server.uri, auto_start_request=False, event_listeners=[recorder])

    async def main() -> None:
        conn.admin.command("ping")

    try:
        asyncio.run(main())
    finally:
        conn.close()
    (ping,) = [e for e in recorder.of("command_started") if e.command_name == "ping"]
    assert (ping.caller.task_name, ping.caller.task_id) == (None, None)
