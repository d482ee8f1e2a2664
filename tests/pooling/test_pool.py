"""Pool unit tests through its factory seam: sockets here are stand-ins with the attributes
the pool uses; the server-facing behaviour is tested against SecantusDB in test_requests.py
and test_fair_waiting.py, and request leases (wireclient.pooling.requests) at the end of
test_requests.py.

The waiting tests run on both drivers (the ``flavour`` fixture, ``flavoured.py``): the
waiters are threads of the blocking driver, or Tasks of the asyncio one (whose pool waits on
the asyncio driver's latches); a cancelled Task gives its place to the next waiter."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest
from event_recorder import Recorder
from flavoured import FLAVOURS, Flavour, eventually
from stub_pool import Factory, FakeClock, StubSocket, make_pool, wait_for_waiters
from waiting import wait_until

from wireclient import monitoring
from wireclient.errors import (
    AuthenticationError,
    AutoReconnect,
    ConfigurationError,
    OperationFailure,
    PoolClearedError,
    PoolClosedError,
    PoolTimeout,
)
from wireclient.pooling import pool as pool_module
from wireclient.pooling.pool import Pool
from wireclient.transport import asynchronous
from wireclient.transport.blocking import run
from wireclient.transport.steps import Steps


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking driver, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def flavoured_pool(flavour: Flavour, **kwargs: Any) -> Tuple[Pool, Factory]:
    """``make_pool`` for the flavour's driver: the asyncio one's pool waits on its latches."""
    if flavour.asynchronous:
        kwargs["latch"] = asynchronous.latch
    return make_pool(**kwargs)


async def queued(pool: Pool, n: int) -> None:
    """``wait_for_waiters`` for a coroutine: until ``n`` callers wait in ``pool``'s queue."""
    assert await eventually(lambda: pool.stats()["waiting"] >= n), f"{n} waiters never queued"


def checkout_beside(flavour: Flavour, pool: Pool) -> asyncio.Future[Any]:
    """A checkout by another caller (a thread, or a Task): the future of its socket."""
    return flavour.go(flavour.steps, pool.checkout())


def test_outside_request_sockets_are_reused_lifo() -> None:
    pool, factory = make_pool()
    a = run(pool.checkout())
    b = run(pool.checkout())
    assert a is not b
    pool.return_socket(a)
    pool.return_socket(b)
    assert run(pool.checkout()) is b  # last in, first out
    assert len(factory.made) == 2 and pool.open_count == 2


def test_max_size_bounds_and_waiters_time_out(flavour: Flavour) -> None:
    pool, factory = flavoured_pool(flavour, max_size=2, wait_queue_timeout=0.1)

    async def main() -> None:
        a, _b = await flavour.steps(pool.checkout()), await flavour.steps(pool.checkout())
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            await flavour.steps(pool.checkout())
        assert time.monotonic() - started >= 0.1  # not before waitQueueTimeoutMS
        assert pool.stats()["waiting"] == 0
        pool.return_socket(a)
        assert await flavour.steps(pool.checkout()) is a

    flavour.run(main)
    assert len(factory.made) == 2


def test_waiter_gets_socket_released_by_another_thread(flavour: Flavour) -> None:
    pool, factory = flavoured_pool(flavour, max_size=1, wait_queue_timeout=5)

    async def main() -> None:
        a = await flavour.steps(pool.checkout())
        waiter = checkout_beside(flavour, pool)
        await queued(pool, 1)
        pool.return_socket(a)
        assert await waiter is a

    flavour.run(main)
    assert len(factory.made) == 1


def test_idle_dead_socket_is_detected_on_checkout() -> None:
    pool, factory = make_pool(check_interval=0.0)
    s = run(pool.checkout())
    pool.return_socket(s)
    s.dead = True
    t = run(pool.checkout())
    assert t is not s and s.closed and pool.open_count == 1


def test_failed_connect_frees_its_slot() -> None:
    pool, factory = make_pool(max_size=1, wait_queue_timeout=0.1)
    factory.fail = True
    with pytest.raises(OSError):
        run(pool.checkout())
    factory.fail = False
    assert pool.open_count == 0
    run(pool.checkout())


def test_reset_drops_old_generation() -> None:
    pool, _ = make_pool()
    s = run(pool.checkout())
    pool.reset()
    pool.return_socket(s)
    assert s.closed and pool.open_count == 0


def test_bad_sizes_are_configuration_errors() -> None:
    for bad in (0, -1, "4", True):
        with pytest.raises(ConfigurationError):
            Pool(("h", 1), Factory(), max_size=bad)  # type: ignore[arg-type]


def test_orphan_parked_while_lock_held_goes_to_the_waiter() -> None:
    """A death callback that finds the lock busy parks the socket; whoever holds the lock
    hands it on when it lets go, with no polling."""
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    sock = run(pool.checkout())
    got = []
    t = threading.Thread(target=lambda: got.append(run(pool.checkout())))
    t.start()
    wait_for_waiters(pool, 1)
    with pool._lock:
        pool.checkin_from_callback(sock)  # what a dead caller's request does
        assert pool._orphans == [sock]
    pool.return_socket(StubSocket(99))  # any locked section collects the orphans
    t.join(5)
    assert got == [sock] and len(factory.made) == 1


def test_fifo_waiters_are_served_in_arrival_order(flavour: Flavour) -> None:
    """A socket given back while others wait goes to the first of them: the giver cannot
    take it straight back, and later arrivals do not jump the queue."""
    pool, factory = flavoured_pool(flavour, max_size=1, wait_queue_timeout=5)
    order: List[int] = []

    async def wait(n: int) -> None:
        sock = await flavour.steps(pool.checkout())
        order.append(n)
        await asyncio.sleep(0.02)  # holds it a moment (a thread's own loop, or a Task)
        pool.return_socket(sock)

    async def main() -> None:
        held = await flavour.steps(pool.checkout())
        waiters = []
        for n in range(4):
            waiters.append(flavour.go(wait, n))
            await queued(pool, n + 1)  # arrive in order
        pool.return_socket(held)
        waiters.append(flavour.go(wait, 99))  # arrives after all of them
        await asyncio.gather(*waiters)

    flavour.run(main)
    assert order == [0, 1, 2, 3, 99] and len(factory.made) == 1


def test_returning_socket_cannot_take_it_straight_back_while_others_wait(
    flavour: Flavour,
) -> None:
    pool, _ = flavoured_pool(flavour, max_size=1, wait_queue_timeout=5)

    async def main() -> None:
        sock = await flavour.steps(pool.checkout())
        waiter = checkout_beside(flavour, pool)
        await queued(pool, 1)
        pool.return_socket(sock)  # handed to the waiter, not put back idle
        assert pool.idle_count() == 0
        assert await waiter is sock

    flavour.run(main)


def test_slot_freed_by_a_broken_socket_is_granted_to_the_first_waiter(flavour: Flavour) -> None:
    pool, factory = flavoured_pool(flavour, max_size=1, wait_queue_timeout=5)

    async def main() -> None:
        sock = await flavour.steps(pool.checkout())
        waiter = checkout_beside(flavour, pool)
        await queued(pool, 1)
        sock.close()
        pool.return_socket(sock)
        assert await waiter is not sock

    flavour.run(main)
    assert len(factory.made) == 2


# -- asyncio: a cancelled waiter ------------------------------------------------------------


def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    """Three Tasks wait in order; the first is cancelled while it waits: it leaves the
    queue at once (CancelledError), and the socket given back goes to the second."""
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5, latch=asynchronous.latch)
    order: List[str] = []

    async def wait(name: str) -> None:
        sock = await asynchronous.run(pool.checkout())
        order.append(name)
        pool.return_socket(sock)

    async def main() -> None:
        held = await asynchronous.run(pool.checkout())
        tasks = {}
        for n, name in enumerate(["first", "second", "third"]):
            tasks[name] = asyncio.create_task(wait(name))
            await queued(pool, n + 1)
        tasks["first"].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks["first"]
        assert pool.stats()["waiting"] == 2  # its place is gone
        pool.return_socket(held)
        await asyncio.gather(tasks["second"], tasks["third"])

    asyncio.run(main())
    assert order == ["second", "third"]
    assert len(factory.made) == 1 and pool.in_use == 0 and pool.idle_count() == 1


def test_a_socket_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    """The socket is handed to the first waiter, which is cancelled before it wakes: the
    socket goes on to the second waiter, not back idle nor lost."""
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5, latch=asynchronous.latch)

    async def main() -> None:
        held = await asynchronous.run(pool.checkout())
        first = asyncio.create_task(asynchronous.run(pool.checkout()))
        await queued(pool, 1)
        second = asyncio.create_task(asynchronous.run(pool.checkout()))
        await queued(pool, 2)
        pool.return_socket(held)  # handed to the first: its latch is set...
        first.cancel()  # ...and it is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second is held
        assert pool.in_use == 1 and pool.stats()["waiting"] == 0
        pool.return_socket(held)

    asyncio.run(main())
    assert len(factory.made) == 1 and pool.in_use == 0


def test_clear_closes_idle_now_and_lent_sockets_when_they_come_back() -> None:
    pool, _ = make_pool()
    idle, lent = run(pool.checkout()), run(pool.checkout())
    pool.return_socket(idle)
    generation = pool.clear()
    assert generation == pool.generation == 1
    assert idle.closed and not lent.closed  # never under its user's feet
    assert pool.generation_of(lent) == 0
    pool.return_socket(lent)
    assert lent.closed and pool.open_count == 0


def test_max_idle_time_closes_old_idle_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pool_module, "_monotonic", clock)
    pool, factory = make_pool(max_idle_time=0.05)
    s = run(pool.checkout())
    pool.return_socket(s)
    clock.advance(0.04)
    assert run(pool.checkout()) is s  # fresh enough (idle for less than max_idle_time)
    pool.return_socket(s)
    clock.advance(0.06)
    t = run(pool.checkout())
    assert t is not s and s.closed and len(factory.made) == 2


def test_fill_to_minimum_opens_idle_sockets_up_to_min_size() -> None:
    pool, factory = make_pool(min_size=3, max_size=5)
    assert pool.open_count == 0  # the pool starts nothing by itself
    run(pool.fill_to_minimum())
    assert pool.open_count == 3 and pool.idle_count() == 3
    run(pool.fill_to_minimum())
    assert len(factory.made) == 3


def test_in_use_counts_lent_sockets() -> None:
    pool, _ = make_pool()
    a, b = run(pool.checkout()), run(pool.checkout())
    assert pool.in_use == 2
    pool.return_socket(a)
    assert pool.in_use == 1
    pool.return_socket(b)
    assert pool.in_use == 0


def test_waiter_never_gets_a_socket_cleared_between_hand_over_and_waking(
    flavour: Flavour,
) -> None:
    pool, factory = flavoured_pool(flavour, max_size=1, wait_queue_timeout=5)

    async def main() -> None:
        sock = await flavour.steps(pool.checkout())
        waiter = checkout_beside(flavour, pool)
        await queued(pool, 1)
        with pool._lock:  # hand over, then clear, before the waiter can run
            pool._checkin_locked(sock)
            pool.generation += 1  # what clear() does to lent sockets
        got = await waiter
        assert got is not sock and sock.closed

    flavour.run(main)
    assert pool.open_count == 1 and len(factory.made) == 2


# -- CMAP: events, maxConnecting, paused pools ---------------------------------------------


def observed_pool(**kwargs: Any) -> Tuple[Pool, Factory, Recorder]:
    recorder = Recorder()
    factory = kwargs.pop("factory", None) or Factory()
    events = monitoring.EventPublisher([recorder])
    return Pool(("h", 1), factory, events=events, **kwargs), factory, recorder


def test_events_of_a_checkout_that_connects_and_its_checkin_in_cmap_order() -> None:
    pool, _, recorder = observed_pool()
    sock = run(pool.checkout())
    pool.return_socket(sock)
    assert run(pool.checkout()) is sock  # reused: no connect
    assert recorder.names() == [
        "pool_created",
        "pool_ready",
        "connection_check_out_started",
        "connection_created",
        "connection_ready",
        "connection_checked_out",
        "connection_checked_in",
        "connection_check_out_started",
        "connection_checked_out",
    ]
    created = recorder.of("pool_created")[0]
    assert created.options["maxPoolSize"] == 100 and created.options["maxConnecting"] == 2
    ready = recorder.of("connection_ready")[0]
    assert ready.driver_connection_id == 1 and ready.connection_id == sock.connection_id
    assert ready.local_address == sock.local_address and ready.generation == 0
    durations = [ready.duration_ms] + [e.duration_ms for e in recorder.of("connection_checked_out")]
    assert all(isinstance(d, float) and d >= 0.0 for d in durations)
    assert recorder.of("connection_created")[0].local_address is None  # not connected yet


def test_the_pool_numbers_its_sockets_one_two_three() -> None:
    pool, _, recorder = observed_pool()
    socks = [run(pool.checkout()) for _ in range(3)]
    ids = [e.driver_connection_id for e in recorder.of("connection_checked_out")]
    assert ids == [1, 2, 3]
    assert [pool.driver_connection_id_of(s) for s in socks] == [1, 2, 3]
    assert [e.connection_id for e in recorder.of("connection_checked_out")] == [
        s.connection_id for s in socks
    ]  # the server's numbers, beside the pool's


def test_a_stale_socket_is_checked_in_then_closed() -> None:
    pool, _, recorder = observed_pool()
    sock = run(pool.checkout())
    pool.clear()
    pool.return_socket(sock)
    names = recorder.names()
    assert names[-3:] == ["pool_cleared", "connection_checked_in", "connection_closed"]
    closed = recorder.of("connection_closed")[0]
    assert closed.reason == "stale" and closed.driver_connection_id == 1


def test_a_discarded_socket_is_checked_in_then_closed_for_an_error() -> None:
    pool, _, recorder = observed_pool()
    sock = run(pool.checkout())
    sock.close()  # the network layer closed it mid-conversation
    pool.discard_socket(sock)
    assert recorder.names()[-2:] == ["connection_checked_in", "connection_closed"]
    assert recorder.of("connection_closed")[0].reason == "error"


def test_an_idle_socket_closed_by_the_server_says_error_dead() -> None:
    pool, _, recorder = observed_pool(check_interval=0.0)
    sock = run(pool.checkout())
    pool.return_socket(sock)
    sock.dead = True
    pool.return_socket(run(pool.checkout()))
    closed = recorder.of("connection_closed")[0]
    assert (closed.reason, closed.detail) == ("error", "dead")


def test_check_out_failed_timeout() -> None:
    pool, _, recorder = observed_pool(max_size=1, wait_queue_timeout=0)
    run(pool.checkout())
    with pytest.raises(PoolTimeout):
        run(pool.checkout())
    assert recorder.names()[-2:] == ["connection_check_out_started", "connection_check_out_failed"]
    failed = recorder.of("connection_check_out_failed")[0]
    assert failed.reason == "timeout" and failed.duration_ms >= 0.0


def test_check_out_failed_connection_error_after_the_pending_socket_is_closed() -> None:
    class Refused(Factory):
        def __call__(self) -> Steps[Any]:
            raise AutoReconnect("refused")
            yield  # makes this a generator

    pool, _, recorder = observed_pool(factory=Refused())
    with pytest.raises(AutoReconnect):
        run(pool.checkout())
    assert recorder.names()[2:] == [
        "connection_check_out_started",
        "connection_created",
        "pool_cleared",  # the handshake failed on the network: the pool is cleared first
        "connection_closed",
        "connection_check_out_failed",
    ]
    closed = recorder.of("connection_closed")[0]
    assert closed.reason == "error" and closed.driver_connection_id == 1
    assert recorder.of("connection_check_out_failed")[0].reason == "connectionError"
    assert pool.open_count == 0


def test_closed_for_good_closes_idle_then_says_so_and_refuses_checkouts() -> None:
    pool, _, recorder = observed_pool()
    idle, lent = run(pool.checkout()), run(pool.checkout())
    pool.return_socket(idle)
    pool.close()
    assert pool.state == "closed"
    assert recorder.names()[-2:] == ["connection_closed", "pool_closed"]
    assert recorder.of("connection_closed")[0].reason == "poolClosed"
    with pytest.raises(PoolClosedError):
        run(pool.checkout())
    failed = recorder.of("connection_check_out_failed")[0]
    assert failed.reason == "poolClosed"
    pool.return_socket(lent)  # a lent socket is closed when it comes back
    assert lent.closed and recorder.of("connection_closed")[-1].reason == "poolClosed"
    assert recorder.names()[-2:] == ["connection_checked_in", "connection_closed"]


def test_closing_fails_waiters_at_once() -> None:
    pool, _, _ = observed_pool(max_size=1)  # no wait_queue_timeout: only close() ends it
    run(pool.checkout())
    errors: List[BaseException] = []

    def wait() -> None:
        try:
            run(pool.checkout())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    wait_for_waiters(pool, 1)
    pool.close()
    t.join(10)
    assert not t.is_alive() and len(errors) == 1 and isinstance(errors[0], PoolClosedError)


def test_a_connection_close_reopens_the_pool_on_the_next_checkout() -> None:
    pool, _, recorder = observed_pool()
    pool.return_socket(run(pool.checkout()))
    pool.close(reopen=True)
    sock = run(pool.checkout())
    names = recorder.names()
    closed_at = names.index("pool_closed")
    assert names[closed_at + 1 : closed_at + 4] == [
        "connection_check_out_started",
        "pool_created",
        "pool_ready",
    ]
    assert pool.state == "ready" and pool.driver_connection_id_of(sock) == 2  # ids go on


def test_a_monitored_pool_is_paused_by_an_error_clear_and_fails_fast() -> None:
    pool, _, recorder = observed_pool(max_size=1, monitored=True)  # waiters would wait forever
    held = run(pool.checkout())
    errors: List[BaseException] = []

    def wait() -> None:
        try:
            run(pool.checkout())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    wait_for_waiters(pool, 1)
    pool.clear(pause=True)
    t.join(10)
    assert not t.is_alive() and len(errors) == 1 and isinstance(errors[0], PoolClearedError)
    assert isinstance(errors[0], AutoReconnect)  # retryable, as the network error was
    assert pool.state == "paused"
    with pytest.raises(PoolClearedError):
        run(pool.checkout())  # a new checkout fails at once too
    assert recorder.of("connection_check_out_failed")[-1].reason == "connectionError"
    pool.clear(pause=True)  # a second clear of a paused pool says nothing
    assert len(recorder.of("pool_cleared")) == 1 and pool.generation == 2
    pool.ready()
    pool.ready()  # ready already: nothing to say
    assert len(recorder.of("pool_ready")) == 2  # at creation, and now
    pool.return_socket(held)  # stale: closed
    assert run(pool.checkout()) is not held and held.closed


def test_a_pool_with_no_monitor_is_never_paused() -> None:
    pool, factory, _ = observed_pool(max_size=1)
    held = run(pool.checkout())
    got: List[Any] = []
    t = threading.Thread(target=lambda: got.append(run(pool.checkout())))
    t.start()
    wait_for_waiters(pool, 1)
    pool.clear(pause=True)
    assert pool.state == "ready"
    pool.return_socket(held)  # stale: closed, and its slot granted to the waiter
    t.join(10)
    assert len(got) == 1 and got[0] is factory.made[-1] and held.closed


def test_fill_to_minimum_waits_for_ready() -> None:
    pool, factory, _ = observed_pool(min_size=2, monitored=True)
    pool.clear(pause=True)
    run(pool.fill_to_minimum())
    assert factory.made == []
    pool.ready()
    run(pool.fill_to_minimum())
    assert len(factory.made) == 2


class GatedFactory(Factory):
    """Connects that wait until the test lets one through; counts connects in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()
        self.in_flight = 0
        self.most_in_flight = 0
        self.passes = 0

    def let_through(self, n: int = 1) -> None:
        with self.cond:
            self.passes += n
            self.cond.notify_all()

    def __call__(self) -> Steps[Any]:
        with self.cond:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.cond.notify_all()
            assert self.cond.wait_for(lambda: self.passes > 0, timeout=10)
            self.passes -= 1
            self.in_flight -= 1
            return (yield from super().__call__())


def test_at_most_two_connects_at_once_and_a_returned_socket_serves_a_waiter() -> None:
    factory = GatedFactory()
    pool, _, _ = observed_pool(factory=factory, max_size=50)
    factory.let_through()
    returned = run(pool.checkout())
    got: Dict[int, Any] = {}

    def checkout(i: int) -> None:
        got[i] = run(pool.checkout())

    threads = [threading.Thread(target=checkout, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    with factory.cond:
        assert factory.cond.wait_for(lambda: factory.in_flight == 2, timeout=10)
    wait_for_waiters(pool, 18)
    pool.return_socket(returned)  # taken by the first waiter, with no connect
    assert wait_until(lambda: returned in got.values())
    assert factory.in_flight == 2 and pool.stats()["waiting"] == 17
    factory.let_through(19)
    for t in threads:
        t.join(10)
    assert len(got) == 20 and len(factory.made) == 1 + 19
    assert factory.most_in_flight == 2


# -- the CMAP specification's data, run against this pool, found these ----------------------


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("bad credentials", 18), OperationFailure("hello failed", 18)],
    ids=["AuthenticationError", "code 18"],
)
def test_a_failed_authentication_clears_and_pauses_the_pool(error: Exception) -> None:
    """SDAM: credentials refused on a new socket will be refused on every one: the pool is
    cleared (and paused, when a monitor will make it ready again), as for a network
    error."""

    class Refused(Factory):
        def __call__(self) -> Steps[Any]:
            raise error
            yield  # makes this a generator

    pool, _, recorder = observed_pool(factory=Refused(), monitored=True)
    with pytest.raises(type(error)):
        run(pool.checkout())
    assert "pool_cleared" in recorder.names() and pool.state == "paused"


def test_a_usage_error_while_connecting_leaves_the_pool_alone() -> None:
    class Misnamed(Factory):
        def __call__(self) -> Steps[Any]:
            raise ConfigurationError("not a member of replica set 'x'")
            yield  # makes this a generator

    pool, _, recorder = observed_pool(factory=Misnamed(), monitored=True)
    with pytest.raises(ConfigurationError):
        run(pool.checkout())
    assert "pool_cleared" not in recorder.names() and pool.state == "ready"


def test_a_waiter_granted_a_connect_slot_then_paused_does_not_connect() -> None:
    """A socket closed frees a slot, granted to the waiter; the pool is paused before the
    waiter wakes: it must fail with PoolClearedError, not connect to the server the error
    handler just marked Unknown. (Whether the waiter wakes before the pause is the
    scheduler's choice; what the test checks is that no connect ever starts while the pool
    is paused.)"""
    states: List[str] = []

    class Recording(Factory):
        def __call__(self) -> Steps[Any]:
            states.append(pool.state)
            return (yield from super().__call__())

    pool = Pool(("h", 1), Recording(), max_size=1, wait_queue_timeout=10, monitored=True)
    held = run(pool.checkout())
    outcome: Dict[str, Any] = {}

    def waiter() -> None:
        try:
            outcome["sock"] = run(pool.checkout())
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_for_waiters(pool, 1)
    pool.discard_socket(held)  # the slot goes to the waiter
    pool.clear(pause=True)
    thread.join(10)
    assert not thread.is_alive()
    assert states == ["ready"] * len(states), states  # no connect while paused
    if "error" in outcome:
        assert isinstance(outcome["error"], PoolClearedError)
    assert pool.open_count == len([s for s in [outcome.get("sock")] if s is not None])


def test_a_socket_the_minimum_fill_makes_goes_to_a_waiter_before_its_slot_is_freed() -> None:
    """maxConnecting 2: the fill and one checkout are connecting, a second checkout waits.
    When the fill's socket is made it is handed to the waiter, which opens no third
    socket (CMAP: no connect starts while an established socket is available)."""
    gates = [threading.Event(), threading.Event()]

    class Gated(Factory):
        def __call__(self) -> Steps[Any]:
            number = len(self.made)
            sock = yield from super().__call__()  # recorded at once: the order connects started
            if number < len(gates):
                assert gates[number].wait(10)
            return sock

    factory = Gated()
    pool = Pool(("h", 1), factory, max_size=3, min_size=1, wait_queue_timeout=10)
    filler = threading.Thread(target=lambda: run(pool.fill_to_minimum()))
    filler.start()
    assert wait_until(lambda: len(factory.made) == 1)
    got: List[Any] = []
    first = threading.Thread(target=lambda: got.append(run(pool.checkout())))
    first.start()
    assert wait_until(lambda: len(factory.made) == 2)
    second = threading.Thread(target=lambda: got.append(run(pool.checkout())))
    second.start()
    wait_for_waiters(pool, 1)
    gates[0].set()  # the fill's socket is made
    second.join(10)
    gates[1].set()
    for thread in (filler, first, second):
        thread.join(10)
    assert len(factory.made) == 2 and got[0] is factory.made[0]


def test_waiters_refused_by_a_pause_fail_in_the_clearing_threads_order() -> None:
    """CMAP's order: the clear, then each refused waiter's check-out failed, then what the
    clearing thread does next (here a socket given back: checked in, then closed)."""
    pool, _, recorder = observed_pool(max_size=1, wait_queue_timeout=10, monitored=True)
    held = run(pool.checkout())
    errors: List[BaseException] = []

    def waiter() -> None:
        try:
            run(pool.checkout())
        except PoolClearedError as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_for_waiters(pool, 1)
    pool.clear(pause=True)
    pool.return_socket(held)
    thread.join(10)
    assert len(errors) == 1
    assert recorder.names()[-4:] == [
        "pool_cleared",
        "connection_check_out_failed",
        "connection_checked_in",
        "connection_closed",
    ]
    assert recorder.names().count("connection_check_out_failed") == 1  # not twice
