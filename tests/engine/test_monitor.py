"""The Monitor against mockupdb replica sets (mock_replica_set.py): discovery, refresh,
wake-ups, lifetime, fork, gevent."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any, Callable, Generator, List, Mapping, Optional, Tuple

import pytest
from mock_replica_set import (
    Member,
    MockReplicaSet,
    as_step,
    hello_step,
    monitor_threads,
    raw_hello,
)
from waiting import PATIENCE, wait_until

from wireclient.engine.monitor import Monitor, choose_flavour
from wireclient.engine.topology_cell import Topology
from wireclient.errors import ConfigurationError
from wireclient.rules.uri import Address
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.topology import ServerDescription, TopologyView

pytestmark = pytest.mark.usefixtures("no_monitor_left")


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
    return topology, Monitor(topology, as_step(check), **kw)


# -- discovery and refresh ---------------------------------------------------------------


def test_discovers_the_set_from_one_seed(rs: MockReplicaSet) -> None:
    rs[2].role = "arbiter"
    rs[1].tags = {"dc": "ny"}
    topology, monitor = make_monitor(rs)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
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
        assert monitor.wait_for_check(PATIENCE)
        rs.elect(2)
        assert wait_until(lambda: topology.view.primary == rs[2].address)
        assert topology.view.members[rs[0].address].server_type is ServerType.SECONDARY
    finally:
        monitor.close()


def test_request_check_wakes_it_early(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
        rounds = monitor.rounds
        rs.elect(1)
        monitor.request_check()
        # The next heartbeat is 60 s away: a round within PATIENCE (30 s) was woken early.
        assert wait_until(lambda: monitor.rounds > rounds)
        assert topology.view.primary == rs[1].address
    finally:
        monitor.close()


def test_wake_ups_are_throttled(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60, min_heartbeat_frequency=0.3)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
        rounds = monitor.rounds
        started = time.monotonic()
        end = started + 1.0
        while time.monotonic() < end:
            monitor.request_check()
            time.sleep(0.005)
        window = time.monotonic() - started
        done = monitor.rounds - rounds
        # Rounds start at least 0.3 s apart: at most window / 0.3 of them start in the window,
        # plus the one in progress when it opened (unthrottled, it would be a hundred or more).
        # A slow machine makes the window longer or the rounds fewer, never the bound false.
        assert done <= window / 0.3 + 2, (done, window)
        assert wait_until(lambda: monitor.rounds > rounds)  # and the wake-ups were heard
    finally:
        monitor.close()


def test_wait_for_check_sees_a_round_started_after_the_call(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
        rs[0].hold()  # the next round hangs at the primary, checked first
        monitor.request_check()
        assert rs[0].held.wait(PATIENCE)  # a round is running now, with the old state
        before = monitor.rounds  # the held round will be round before + 1
        calling = threading.Event()
        results: List[Tuple[bool, int]] = []

        def wait() -> None:
            calling.set()
            results.append((monitor.wait_for_check(PATIENCE), monitor.rounds))

        waiter = threading.Thread(target=wait)
        waiter.start()
        assert calling.wait(PATIENCE)
        waiter.join(0.1)  # let it reach its wait (were it late, it would only wait the same)
        rs.elect(2)
        rs[0].release()
        waiter.join(PATIENCE)
        # it returned after the round that started after its call, not the held one
        assert results and results[0][0] and results[0][1] >= before + 2, (results, before)
        assert topology.view.primary == rs[2].address
    finally:
        rs[0].release()
        monitor.close()


def test_member_down_becomes_unknown_and_comes_back(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
        rs[0].up = False
        assert monitor.wait_for_check(PATIENCE)
        down = topology.view.members[rs[0].address]
        assert down.server_type is ServerType.UNKNOWN and down.error
        assert topology.view.primary is None
        rs[0].up = True
        assert monitor.wait_for_check(PATIENCE)
        assert topology.view.primary == rs[0].address
    finally:
        monitor.close()


def test_unreachable_seed_is_unknown(rs: MockReplicaSet) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead: Address = ("127.0.0.1", s.getsockname()[1])
    topology = Topology(TopologyView.from_seeds([dead, rs[1].address], "rs"))
    monitor = Monitor(topology, hello_step, heartbeat_frequency=60).start()
    try:
        assert monitor.wait_for_check(PATIENCE)
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
        assert monitor.wait_for_check(PATIENCE)
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
        assert monitor.wait_for_check(PATIENCE)
        view = topology.view
        assert view.primary is None and "standalone" in view.errors[-1]
        # the view never runs out of members: the seed is back, Unknown, with the reason
        seed = view.members[rs[1].address]
        assert len(view.members) == 1 and seed.server_type is ServerType.UNKNOWN
        assert "standalone" in (seed.error or "")
    finally:
        monitor.close()


def test_check_bug_does_not_kill_the_monitor(
    rs: MockReplicaSet, caplog: pytest.LogCaptureFixture
) -> None:
    calls: List[Address] = []

    def buggy(address: Address) -> Tuple[Mapping[str, Any], float]:
        calls.append(address)
        if len(calls) == 1:
            raise KeyError("bug")
        return raw_hello(address)

    topology, monitor = make_monitor(rs, check=buggy, heartbeat_frequency=60)
    applied: List[ServerDescription] = []  # every description the monitor hands over
    apply = topology.apply
    topology.apply = lambda d: (applied.append(d), apply(d))[1]  # type: ignore[method-assign]
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
        # The failed check became an Unknown description (a later round may already have
        # replaced it in the view, so look at what was applied, not at the view).
        assert "KeyError" in (applied[0].error or "") and applied[0].address == rs[1].address
        logged = [r for r in caplog.records if r.name == "wireclient.engine.monitor"]
        assert logged and logged[0].exc_info is not None  # the bug is logged with its traceback
        assert monitor.wait_for_check(PATIENCE)
        assert topology.view.primary == rs[0].address
        assert monitor.is_alive()
    finally:
        monitor.close()


def test_primary_is_checked_first(rs: MockReplicaSet) -> None:
    order: List[Tuple[int, Address]] = []  # (rounds completed before it, member checked)
    monitors: List[Monitor] = []

    def recording(address: Address) -> Tuple[Mapping[str, Any], float]:
        order.append((monitors[0].rounds, address))
        return raw_hello(address)

    topology, monitor = make_monitor(rs, check=recording, heartbeat_frequency=60)
    monitors.append(monitor)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)  # the first round discovers the primary
        assert monitor.wait_for_check(PATIENCE)
        # Every later round (whatever woke it) starts at the primary and checks each member
        # once; a round in progress now is not looked at.
        later = range(1, monitor.rounds)
        assert later
        for r in later:
            checked = [a for n, a in order if n == r]
            assert checked[0] == rs[0].address and len(checked) == 3, (r, order)
    finally:
        monitor.close()


# -- lifetime ----------------------------------------------------------------------------


def test_close_stops_and_joins(rs: MockReplicaSet) -> None:
    _, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    assert monitor.wait_for_check(PATIENCE)
    assert monitor_threads()
    # close() joins for up to 10 s; the monitor sleeps 60 s between heartbeats: if close()
    # did not wake it, it would still be alive afterwards. No clock needed.
    monitor.close()
    assert not monitor.is_alive() and monitor_threads() == []
    monitor.close()  # idempotent
    assert not monitor.wait_for_check(1)
    with pytest.raises(ConfigurationError):
        monitor.start()


def test_close_releases_waiters(rs: MockReplicaSet) -> None:
    """close() itself wakes a wait_for_check caller. The round in progress hangs (member 1
    holds its hello until the test releases it), so the end of the monitor's run, which also
    releases waiters, cannot be what releases it."""
    rs[1].hold()  # the seed: the first round hangs on it
    # a check that outlasts anything this test waits for (raw_hello's own timeout is 10 s)
    _, monitor = make_monitor(rs, check=lambda a: raw_hello(a, timeout=120), heartbeat_frequency=60)
    monitor.start()
    closer = threading.Thread(target=monitor.close)  # close() joins the hanging monitor
    try:
        assert rs[1].held.wait(PATIENCE)  # the first round has started, and hangs
        calling = threading.Event()
        results: List[bool] = []

        def wait() -> None:
            calling.set()
            results.append(monitor.wait_for_check(PATIENCE))

        waiter = threading.Thread(target=wait)
        waiter.start()
        assert calling.wait(PATIENCE)
        waiter.join(0.1)  # let it reach its wait (were it late, close() would refuse it too)
        assert waiter.is_alive()  # waiting for a round that cannot end
        closer.start()
        waiter.join(PATIENCE)
        assert not waiter.is_alive(), "close() did not release the waiter"
        assert monitor.is_alive()  # still in its check: close() released the waiter, not _run
        assert results == [False]
    finally:
        rs[1].release()
    if closer.ident is not None:
        closer.join(PATIENCE)
    monitor.close()
    assert not monitor.is_alive()


def test_close_releases_a_waiter_of_the_round_in_progress(rs: MockReplicaSet) -> None:
    """A wait_for_check caller that came before a round began waits for that round; the
    round hangs (member 1 holds its hello): close() must release that caller too, not only
    those waiting for the next round."""
    rs[1].hold()
    _, monitor = make_monitor(rs, check=lambda a: raw_hello(a, timeout=120), heartbeat_frequency=60)
    results: List[bool] = []
    waiter = threading.Thread(target=lambda: results.append(monitor.wait_for_check(PATIENCE)))
    closer = threading.Thread(target=monitor.close)  # close() joins the hanging monitor
    try:
        waiter.start()  # not started yet: it waits for the first round
        assert wait_until(lambda: monitor._wake.is_set())  # set once it holds that round
        monitor.start()
        assert rs[1].held.wait(PATIENCE)  # the first round has started, and hangs
        closer.start()
        waiter.join(PATIENCE)
        assert not waiter.is_alive(), "close() did not release the round's waiter"
        assert monitor.is_alive()  # still in its check: close() released the waiter
        assert results == [False]
    finally:
        rs[1].release()
    closer.join(PATIENCE)
    assert not monitor.is_alive()


def test_monitor_exits_when_its_topology_is_collected(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    assert monitor.wait_for_check(PATIENCE)
    del topology
    gc.collect()
    assert wait_until(lambda: not monitor.is_alive())
    assert monitor.closed


class Owner:
    """What ReplicaSetConnection looks like to the monitor: it owns the topology and the
    monitor, and its bound method is the check function."""

    def __init__(self, rs: MockReplicaSet) -> None:
        self.topology = Topology(TopologyView.from_seeds([rs[1].address], "rs"))
        self.monitor = Monitor(self.topology, self.check, heartbeat_frequency=60).start()

    def check(self, address: Address) -> Generator[Any, Any, Tuple[Mapping[str, Any], float]]:
        return raw_hello(address)
        yield  # a step


def test_monitor_holds_no_strong_reference_to_its_owner(rs: MockReplicaSet) -> None:
    owner = Owner(rs)
    monitor = owner.monitor
    assert monitor.wait_for_check(PATIENCE)
    owner_ref = weakref.ref(owner)
    del owner
    gc.collect()
    assert owner_ref() is None
    assert wait_until(lambda: not monitor.is_alive())


def test_invalid_options() -> None:
    topology = Topology(TopologyView.from_seeds([("a", 1)], "rs"))
    with pytest.raises(ConfigurationError):
        Monitor(topology, hello_step, heartbeat_frequency=0)
    with pytest.raises(ConfigurationError):
        Monitor(topology, hello_step, flavour="process")
    with pytest.raises(ConfigurationError):
        Monitor(topology, hello_step, flavour="asyncio")  # that is an AsyncMonitor


# -- fork --------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_monitor_restarts_in_forked_child(rs: MockReplicaSet) -> None:
    topology, monitor = make_monitor(rs, heartbeat_frequency=60)
    monitor.start()
    try:
        assert monitor.wait_for_check(PATIENCE)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, never return into pytest
            code = 1
            try:
                ok = monitor.is_alive() and monitor.wait_for_check(PATIENCE)
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
        assert monitor.wait_for_check(PATIENCE)  # waits on a gevent Event: the hub runs it
        assert topology.view.primary == rs[0].address
        rounds = monitor.rounds
        deadline = time.monotonic() + PATIENCE
        while monitor.rounds < rounds + 3 and time.monotonic() < deadline:
            gevent.sleep(0.05)  # heartbeats keep coming while this greenlet sleeps
        assert monitor.rounds >= rounds + 3
    finally:
        monitor.close()
    assert not monitor.is_alive()


GEVENT_CHILD = textwrap.dedent(
    """
    import sys, threading
    from gevent import monkey
    monkey.patch_socket()
    sys.path.insert(0, {tests!r})
    from mock_replica_set import hello_step
    from wireclient.engine.monitor import Monitor
    from wireclient.engine.topology_cell import Topology
    from wireclient.sdam.topology import TopologyView
    seed = ("127.0.0.1", {port})
    topology = Topology(TopologyView.from_seeds([seed], "rs"))
    threads = threading.active_count()
    monitor = Monitor(topology, hello_step, heartbeat_frequency=60, use_greenlets=True).start()
    assert monitor.flavour == "gevent", monitor.flavour
    assert threading.active_count() == threads
    assert monitor.wait_for_check(30)
    assert topology.view.primary == ("127.0.0.1", {primary}), topology.view.describe()
    monitor.close()
    assert not monitor.is_alive()
    print("OK", len(topology.view.members))
    """
)


def test_use_greenlets_under_gevent_patch_socket_uses_a_greenlet(rs: MockReplicaSet) -> None:
    pytest.importorskip("gevent")
    code = GEVENT_CHILD.format(
        tests=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"),
        port=rs[1].address[1],
        primary=rs[0].address[1],
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["OK", "3"]


# -- asyncio -----------------------------------------------------------------------------


def test_asyncio_monitor_is_one_task_and_close_ends_it(rs: MockReplicaSet) -> None:
    """The same loop and round as one asyncio Task, checking with the Checker's step (no
    thread anywhere): discovery, an awaited wait_for_check, a wake-up, close()."""
    import asyncio

    from wireclient.engine.checker import Checker
    from wireclient.engine.monitor import AsyncMonitor

    async def main() -> None:
        checker = Checker(10.0, None, None, lambda address, reply: None)
        topology = Topology(TopologyView.from_seeds([rs[1].address], "rs"))
        monitor = AsyncMonitor(topology, checker.check, heartbeat_frequency=60).start()
        try:
            tasks = [t for t in asyncio.all_tasks() if t.get_name() == monitor.name]
            assert len(tasks) == 1 and monitor_threads() == []
            assert await monitor.wait_for_check(PATIENCE)
            assert topology.view.primary == rs[0].address
            rounds = monitor.rounds
            rs.elect(2)
            monitor.request_check()  # the heartbeat is 60 s away
            assert await monitor.wait_for_check(PATIENCE)
            assert monitor.rounds > rounds and topology.view.primary == rs[2].address
        finally:
            monitor.close()
            checker.close()
        assert await monitor.wait_stopped()
        assert not monitor.is_alive()
        assert tasks[0].done()
        assert not await monitor.wait_for_check(1)  # closed: at once

    asyncio.run(asyncio.wait_for(main(), PATIENCE * 2))
