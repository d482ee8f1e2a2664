"""The Monitor against mockupdb replica sets: discovery, refresh, wake-ups, lifetime, fork, gevent.

``MockReplicaSet`` (also used by the ReplicaSetConnection tests) runs one mockupdb server per
member; every server answers ``hello`` and ``isMaster`` from one shared, changeable
description of the set, so a test can elect a new primary, take a member down, or move one
to another set, and watch the client notice.
"""

from __future__ import annotations

import gc
import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import bson
import pytest
from bson import ObjectId
from mockupdb import OP_MSG_FLAGS, MockupDB, OpMsg

from wireclient.errors import AutoReconnect, ConfigurationError
from wireclient.monitor import Monitor, choose_flavour
from wireclient.topology import Address, ServerType, Topology, TopologyView, format_address

# -- a replica set of mockupdb servers ---------------------------------------------------


class Member:
    """One mockupdb server and what it says about itself."""

    def __init__(self, rs: MockReplicaSet, index: int) -> None:
        self.rs = rs
        self.index = index
        self.server = MockupDB(request_timeout=5)
        self.server.run()
        # mockupdb binds IPv4 only; "localhost" could reach someone else's server on ::1
        self.address: Address = ("127.0.0.1", self.server.port)
        self.role = "secondary"  # primary | secondary | arbiter | hidden | passive | other
        self.up = True
        self.tags: Dict[str, str] = {}
        self.set_name: Optional[str] = None  # None: the set's name; "" : a standalone
        self.delay = 0.0  # seconds before answering hello (to fake a round-trip time)
        self.hello_count = 0
        self.extra: Dict[str, Any] = {}
        self.log: List[Tuple[str, Dict[str, Any], int]] = []  # (command, doc, client port)
        self.next_reply: Optional[Dict[str, Any]] = None  # one-shot reply to the next command
        # Responders run most recent first: hello/isMaster before the catch-all.
        self.server.autoresponds(self._answer_command)
        for name in ("hello", "ismaster"):
            self.server.autoresponds(name, self._answer_hello)

    @property
    def host(self) -> str:
        return format_address(self.address)

    def _answer_hello(self, request: Any) -> bool:
        self.hello_count += 1
        if not self.up:
            return bool(request.hangup())
        if self.delay:
            time.sleep(self.delay)
        return bool(request.replies(self.rs.hello_for(self)))

    def _answer_command(self, request: Any) -> bool:
        """A tiny data member: writes on the primary only, reads where the read preference
        allows, ``whatsmyuri``, and ``ok`` for anything else. Every command is logged."""
        if not self.up:
            return bool(request.hangup())
        doc = dict(request.doc)
        name = str(request.command_name)
        self.log.append((name, doc, request.client_port))
        if self.next_reply is not None:
            reply, self.next_reply = self.next_reply, None
            return bool(request.replies(reply))
        if isinstance(request, OpMsg):
            secondary_ok = (doc.get("$readPreference") or {}).get("mode", "primary") != "primary"
        else:  # OP_QUERY (wire 4-5): the SlaveOk flag
            secondary_ok = bool(request.slave_ok)
        primary = self.role == "primary"
        if name in ("insert", "update", "delete", "findAndModify", "create", "drop"):
            if isinstance(request, OpMsg) and request.flags & OP_MSG_FLAGS["moreToCome"]:
                return True  # fire-and-forget: no reply
            if not primary:
                return bool(request.replies(ok=0, code=10107, errmsg="not primary"))
            return bool(request.replies(n=len(doc.get("documents", doc.get("updates", [])))))
        if name in ("find", "count", "aggregate", "distinct", "getMore"):
            if not primary and not secondary_ok:
                return bool(request.replies(
                    ok=0, code=13435, errmsg="not primary and secondaryOk=false"
                ))
            if name == "count":
                return bool(request.replies(n=self.index))
            batch = [{"_id": self.index, "member": self.index, "port": request.client_port}]
            key = "nextBatch" if name == "getMore" else "firstBatch"
            return bool(request.replies(cursor={"id": 0, "ns": "db.c", key: batch}))
        if name == "whatsmyuri":
            return bool(request.replies(you=f"127.0.0.1:{request.client_port}"))
        return bool(request.replies(ok=1))

    def commands(self, name: str) -> List[Dict[str, Any]]:
        return [doc for command, doc, _ in self.log if command == name]

    def ports(self, name: str) -> List[int]:
        return [port for command, _, port in self.log if command == name]

    def stop(self) -> None:
        self.server.stop()


class MockReplicaSet:
    """``n`` members; member 0 starts as primary, the rest as secondaries."""

    def __init__(self, n: int = 3, set_name: str = "rs", max_wire_version: int = 17) -> None:
        self.set_name = set_name
        self.max_wire_version = max_wire_version
        self.members: List[Member] = [Member(self, i) for i in range(n)]
        self.members[0].role = "primary"
        self.election_id = ObjectId()
        self.set_version = 1

    def __getitem__(self, index: int) -> Member:
        return self.members[index]

    @property
    def seeds(self) -> str:
        return ",".join(m.host for m in self.members)

    @property
    def uri(self) -> str:
        return f"mongodb://{self.seeds}/?replicaSet={self.set_name}"

    def by_address(self, address: Address) -> Member:
        return next(m for m in self.members if m.address == address)

    def elect(self, index: Optional[int]) -> None:
        """Make member ``index`` primary (None: no primary); the old primary steps down."""
        for m in self.members:
            if m.role == "primary":
                m.role = "secondary"
        if index is not None:
            self.members[index].role = "primary"
            self.election_id = ObjectId()

    def hello_for(self, member: Member) -> Dict[str, Any]:
        if member.set_name == "":  # a standalone
            return {"ok": 1, "isWritablePrimary": True, "ismaster": True,
                    "maxWireVersion": self.max_wire_version}
        listed = [m for m in self.members if m.role not in ("hidden",)]
        reply: Dict[str, Any] = {
            "ok": 1,
            "setName": member.set_name or self.set_name,
            "hosts": [m.host for m in listed if m.role not in ("arbiter", "passive")],
            "passives": [m.host for m in listed if m.role == "passive"],
            "arbiters": [m.host for m in listed if m.role == "arbiter"],
            "me": member.host,
            "setVersion": self.set_version,
            "isWritablePrimary": member.role == "primary",
            "ismaster": member.role == "primary",
            "secondary": member.role in ("secondary", "hidden", "passive"),
            "maxWireVersion": self.max_wire_version,
            "minWireVersion": 0,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48000000,
            "maxWriteBatchSize": 100000,
            "localTime": None,
        }
        del reply["localTime"]
        primary = next((m for m in self.members if m.role == "primary"), None)
        if primary is not None:
            reply["primary"] = primary.host
        if member.role == "primary":
            reply["electionId"] = self.election_id
        if member.role == "arbiter":
            reply["arbiterOnly"] = True
        if member.role == "hidden":
            reply["hidden"] = True
        if member.role == "passive":
            reply["passive"] = True
        if member.tags:
            reply["tags"] = dict(member.tags)
        reply.update(member.extra)
        return reply

    def close(self) -> None:
        # mockupdb's stop() waits for its polling threads; stop the members in parallel
        stoppers = [threading.Thread(target=m.stop) for m in self.members]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()


def raw_hello(address: Address, timeout: float = 3.0) -> Tuple[Mapping[str, Any], float]:
    """Send ``hello`` as OP_QUERY on ``admin.$cmd`` over a fresh socket (no wireclient code),
    return ``(reply, seconds)``; ``AutoReconnect`` on any socket error."""
    started = time.monotonic()
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1)
            body += bson.encode({"hello": 1})
            sock.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2004) + body)
            header = _recv_exactly(sock, 16)
            length, _, _, opcode = struct.unpack("<iiii", header)
            payload = _recv_exactly(sock, length - 16)
    except OSError as exc:
        raise AutoReconnect(f"{format_address(address)}: {exc}") from None
    if opcode != 1:
        raise AutoReconnect(f"unexpected opcode {opcode}")
    return bson.decode(payload[20:]), time.monotonic() - started


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed by server")
        chunks += chunk
    return chunks


def monitor_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wireclient-monitor")]


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture()
def rs() -> Iterator[MockReplicaSet]:
    replica_set = MockReplicaSet(3)
    try:
        yield replica_set
    finally:
        replica_set.close()


@pytest.fixture(autouse=True)
def no_monitor_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 5
    while monitor_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert monitor_threads() == [], "a monitor thread is still running"


def make_monitor(
    rs: MockReplicaSet,
    seeds: Optional[List[Member]] = None,
    set_name: Optional[str] = "rs",
    check: Callable[[Address], Tuple[Mapping[str, Any], float]] = raw_hello,
    **kw: Any,
) -> Tuple[Topology, Monitor]:
    seed_members = seeds if seeds is not None else [rs[1]]
    topology = Topology(TopologyView.from_seeds([m.address for m in seed_members], set_name))
    kw.setdefault("min_heartbeat_frequency", 0.05)
    return topology, Monitor(topology, check, **kw)


# -- discovery and refresh ---------------------------------------------------------------


def test_discovers_the_set_from_one_seed(rs: MockReplicaSet) -> None:
    rs[2].role = "arbiter"
    rs[1].tags = {"dc": "ny"}
    topology, monitor = make_monitor(rs)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        view = topology.view
        assert set(view.members) == {m.address for m in rs.members}
        assert view.primary == rs[0].address
        assert view.members[rs[1].address].server_type is ServerType.SECONDARY
        assert view.members[rs[1].address].tags == {"dc": "ny"}
        assert view.members[rs[2].address].server_type is ServerType.ARBITER
        assert all(m.round_trip_time is not None for m in view.members.values())
        # discovery happened within one round: every member was checked
        assert all(m.hello_count >= 1 for m in rs.members)
    finally:
        monitor.close()
    assert not monitor.is_alive()


def test_refreshes_every_heartbeat(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=0.1)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        rs.elect(2)
        deadline = time.monotonic() + 5
        while topology.view.primary != rs[2].address and time.monotonic() < deadline:
            time.sleep(0.02)
        assert topology.view.primary == rs[2].address
        assert topology.view.members[rs[0].address].server_type is ServerType.SECONDARY
    finally:
        monitor.close()


def test_request_check_wakes_it_early(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        rounds = monitor.rounds
        rs.elect(1)
        started = time.monotonic()
        monitor.request_check()
        while monitor.rounds == rounds and time.monotonic() - started < 5:
            time.sleep(0.01)
        assert time.monotonic() - started < 2
        assert topology.view.primary == rs[1].address
    finally:
        monitor.close()


def test_wake_ups_are_throttled(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60, min_heartbeat_frequency=0.3)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        rounds = monitor.rounds
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            monitor.request_check()
            time.sleep(0.005)
        assert 1 <= monitor.rounds - rounds <= 5
    finally:
        monitor.close()


def test_wait_for_check_sees_a_round_started_after_the_call(rs: MockReplicaSet) -> None:
    rs[1].delay = 0.2  # make rounds slow, so the call lands in the middle of one
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        monitor.request_check()
        time.sleep(0.05)  # a round is running now, with the old state
        rs.elect(2)
        assert monitor.wait_for_check(5)
        assert topology.view.primary == rs[2].address
    finally:
        monitor.close()


def test_member_down_becomes_unknown_and_comes_back(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        rs[0].up = False
        assert monitor.wait_for_check(5)
        down = topology.view.members[rs[0].address]
        assert down.server_type is ServerType.UNKNOWN and down.error
        assert topology.view.primary is None
        rs[0].up = True
        assert monitor.wait_for_check(5)
        assert topology.view.primary == rs[0].address
    finally:
        monitor.close()


def test_unreachable_seed_is_unknown(rs: MockReplicaSet) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead: Address = ("127.0.0.1", s.getsockname()[1])
    topology = Topology(TopologyView.from_seeds([dead, rs[1].address], "rs"))
    monitor = Monitor(topology, raw_hello, heartbeat_frequency=60).start()
    try:
        assert monitor.wait_for_check(5)
        view = topology.view
        assert dead not in view.members  # the primary does not list it
        assert view.primary == rs[0].address
    finally:
        monitor.close()


def test_member_of_another_set_is_refused(rs: MockReplicaSet) -> None:
    rs[2].set_name = "elsewhere"
    topology, monitor = make_monitor(rs, seeds=[rs[2], rs[1]])
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        view = topology.view
        # Refused each time it is checked; the primary lists it, so it comes back as Unknown
        # until its next check: it is never a usable member.
        member = view.members.get(rs[2].address)
        assert member is None or member.server_type is ServerType.UNKNOWN
        assert view.primary == rs[0].address
        assert any("'elsewhere', not 'rs'" in e for e in view.errors)
    finally:
        monitor.close()


def test_standalone_seed_is_refused(rs: MockReplicaSet) -> None:
    rs[1].set_name = ""
    topology, monitor = make_monitor(rs, seeds=[rs[1]])
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        view = topology.view
        assert not view.members and view.primary is None
        assert "standalone" in view.errors[-1]
    finally:
        monitor.close()


def test_check_bug_does_not_kill_the_monitor(rs: MockReplicaSet) -> None:
    calls: List[Address] = []

    def buggy(address: Address) -> Tuple[Mapping[str, Any], float]:
        calls.append(address)
        if len(calls) == 1:
            raise KeyError("bug")
        return raw_hello(address)

    topology, monitor = make_monitor(rs, check=buggy, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        assert "KeyError" in (topology.view.members[rs[1].address].error or "")
        assert monitor.wait_for_check(5)
        assert topology.view.primary == rs[0].address
        assert monitor.is_alive()
    finally:
        monitor.close()


def test_primary_is_checked_first(rs: MockReplicaSet) -> None:
    order: List[Address] = []

    def recording(address: Address) -> Tuple[Mapping[str, Any], float]:
        order.append(address)
        return raw_hello(address)

    topology, monitor = make_monitor(rs, check=recording, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        order.clear()
        assert monitor.wait_for_check(5)
        assert order[0] == rs[0].address and len(order) == 3
    finally:
        monitor.close()


# -- lifetime ----------------------------------------------------------------------------


def test_close_stops_and_joins(rs: MockReplicaSet) -> None:
    _, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    assert monitor.wait_for_check(5)
    assert monitor_threads()
    started = time.monotonic()
    monitor.close()
    assert time.monotonic() - started < 2
    assert not monitor.is_alive() and monitor_threads() == []
    monitor.close()  # idempotent
    assert not monitor.wait_for_check(1)
    with pytest.raises(ConfigurationError):
        monitor.start()


def test_close_releases_waiters(rs: MockReplicaSet) -> None:
    rs[1].delay = 1.0
    _, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    results: List[bool] = []
    waiter = threading.Thread(target=lambda: results.append(monitor.wait_for_check(30)))
    waiter.start()
    time.sleep(0.1)
    monitor.close()
    waiter.join(5)
    assert results == [False]


def test_monitor_exits_when_its_topology_is_collected(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    assert monitor.wait_for_check(5)
    del topology
    gc.collect()
    deadline = time.monotonic() + 3
    while monitor.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not monitor.is_alive() and monitor.closed


class Owner:
    """What ReplicaSetConnection looks like to the monitor: it owns the topology and the
    monitor, and its bound method is the check function."""

    def __init__(self, rs: MockReplicaSet) -> None:
        self.topology = Topology(TopologyView.from_seeds([rs[1].address], "rs"))
        self.monitor = Monitor(self.topology, self.check, heartbeat_frequency=60).start()

    def check(self, address: Address) -> Tuple[Mapping[str, Any], float]:
        return raw_hello(address)


def test_monitor_holds_no_strong_reference_to_its_owner(rs: MockReplicaSet) -> None:
    owner = Owner(rs)
    monitor = owner.monitor
    assert monitor.wait_for_check(5)
    owner_ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert owner_ref() is None
    deadline = time.monotonic() + 3
    while monitor.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not monitor.is_alive()


def test_invalid_options() -> None:
    topology = Topology(TopologyView.from_seeds([("a", 1)], "rs"))
    with pytest.raises(ConfigurationError):
        Monitor(topology, raw_hello, heartbeat_frequency=0)
    with pytest.raises(ConfigurationError):
        Monitor(topology, raw_hello, flavour="process")


# -- fork --------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_monitor_restarts_in_forked_child(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(5)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, never return into pytest
            code = 1
            try:
                ok = monitor.is_alive() and monitor.wait_for_check(5)
                names = [t.name for t in monitor_threads()]
                os.write(write_end, f"{ok} {len(names)} {monitor.rounds}".encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        report = os.read(read_end, 100).decode()
        os.close(read_end)
        assert os.WEXITSTATUS(status) == 0
        ok, threads, _ = report.split()
        assert ok == "True" and threads == "1"
        assert monitor.is_alive()  # the parent's monitor is untouched
    finally:
        monitor.close()


# -- gevent ------------------------------------------------------------------------------


def test_flavour_choice_without_gevent_patching() -> None:
    assert choose_flavour(False) == "thread"
    # gevent has not patched socket in this process: a greenlet would never be scheduled
    assert choose_flavour(True) == "thread"
    assert choose_flavour(False, "gevent") == "gevent"


def test_gevent_flavour_runs_as_a_greenlet(rs: MockReplicaSet) -> None:
    gevent = pytest.importorskip("gevent")
    threads_before = threading.active_count()
    topology, monitor = make_monitor(rs, heartbeat_frequency=0.05, flavour="gevent")
    monitor.start()
    try:
        assert monitor.flavour == "gevent"
        assert threading.active_count() == threads_before  # no thread was started
        assert monitor.wait_for_check(5)  # waits on a gevent Event: the hub runs the monitor
        assert topology.view.primary == rs[0].address
        gevent.sleep(0.3)  # heartbeats keep coming while this greenlet sleeps
        assert monitor.rounds >= 3
    finally:
        monitor.close()
    assert not monitor.is_alive()


GEVENT_CHILD = textwrap.dedent(
    """
    import sys, threading
    from gevent import monkey
    monkey.patch_socket()
    sys.path.insert(0, {tests!r})
    from test_monitor import raw_hello
    from wireclient.monitor import Monitor
    from wireclient.topology import Topology, TopologyView
    seed = ("127.0.0.1", {port})
    topology = Topology(TopologyView.from_seeds([seed], "rs"))
    threads = threading.active_count()
    monitor = Monitor(topology, raw_hello, heartbeat_frequency=60, use_greenlets=True).start()
    assert monitor.flavour == "gevent", monitor.flavour
    assert threading.active_count() == threads
    assert monitor.wait_for_check(5)
    assert topology.view.primary == ("127.0.0.1", {primary}), topology.view.describe()
    monitor.close()
    assert not monitor.is_alive()
    print("OK", len(topology.view.members))
    """
)


def test_use_greenlets_under_gevent_patch_socket_uses_a_greenlet(rs: MockReplicaSet) -> None:
    pytest.importorskip("gevent")
    code = GEVENT_CHILD.format(
        tests=os.path.dirname(__file__), port=rs[1].address[1], primary=rs[0].address[1]
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["OK", "3"]
