"""Events (wireclient.monitoring): what listeners hear, checked against what the server saw;
listeners that raise; registration. Command and frame events: see the end of this module."""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any, List, Tuple

import pytest
from mock_replica_set import MockReplicaSet

from wireclient import Connection, ReplicaSetConnection, monitoring


class Recorder(
    monitoring.CommandListener,
    monitoring.FrameListener,
    monitoring.PoolListener,
    monitoring.ServerListener,
    monitoring.TopologyListener,
    monitoring.HeartbeatListener,
):
    """Records (method, event) for every event of every kind."""

    def __init__(self) -> None:
        self.events: List[Tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _add(self, name: str, event: Any) -> None:
        with self.lock:
            self.events.append((name, event))

    def of(self, name: str) -> List[Any]:
        with self.lock:
            return [e for n, e in self.events if n == name]


for _name in (
    "connection_created",
    "connection_checked_out",
    "connection_checked_in",
    "connection_closed",
    "pool_cleared",
    "request_started",
    "request_ended",
    "sent",
    "received",
):
    setattr(Recorder, _name, lambda self, event, _n=_name: self._add(_n, event))

# The command and heartbeat listeners share method names: record them by kind.
Recorder.started = lambda self, e: self._add(  # type: ignore[method-assign]
    "heartbeat_started" if isinstance(e, monitoring.HeartbeatEvent) else "command_started", e
)
Recorder.succeeded = lambda self, e: self._add(  # type: ignore[method-assign]
    "heartbeat_succeeded" if isinstance(e, monitoring.HeartbeatEvent) else "command_succeeded",
    e,
)
Recorder.failed = lambda self, e: self._add(  # type: ignore[method-assign]
    "heartbeat_failed" if isinstance(e, monitoring.HeartbeatEvent) else "command_failed", e
)
Recorder.description_changed = lambda self, e: self._add(  # type: ignore[method-assign]
    "topology_changed"
    if isinstance(e, monitoring.TopologyDescriptionChangedEvent)
    else "server_changed",
    e,
)


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
                barrier.wait(5)  # three sockets at once
                whoami(c)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        created = recorder.of("connection_created")
        assert len(created) == 3
        assert total_created(server) - before == 3 + 1  # + the probe itself
        assert all(e.address == c.address and e.generation == 0 for e in created)
        local = {f"{e.local_address[0]}:{e.local_address[1]}" for e in created}
        assert len(local) == 3
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
        deadline = time.monotonic() + 5
        while not recorder.of("heartbeat_failed") and time.monotonic() < deadline:
            time.sleep(0.02)
        failed = recorder.of("heartbeat_failed")
        assert failed and failed[0].address == rs[2].address and failed[0].failure is not None
