"""Pool unit tests through its factory seam: sockets here are stand-ins with the attributes
the pool uses; the server-facing behaviour is tested against SecantusDB in test_requests.py,
and request leases (wireclient.pooling.requests) at the end of test_requests.py."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest
from stub_pool import Factory, FakeClock, StubSocket, make_pool, wait_for_waiters

from wireclient.errors import ConfigurationError, PoolTimeout
from wireclient.pooling import pool as pool_module
from wireclient.pooling.pool import Pool


def test_outside_request_sockets_are_reused_lifo() -> None:
    pool, factory = make_pool()
    a = pool.get_socket()
    b = pool.get_socket()
    assert a is not b
    pool.return_socket(a)
    pool.return_socket(b)
    assert pool.get_socket() is b  # last in, first out
    assert len(factory.made) == 2 and pool.open_count == 2


def test_max_size_bounds_and_waiters_time_out() -> None:
    pool, factory = make_pool(max_size=2, wait_queue_timeout=0.1)
    a, _b = pool.get_socket(), pool.get_socket()
    with pytest.raises(PoolTimeout):
        pool.get_socket()
    pool.return_socket(a)
    assert pool.get_socket() is a
    assert len(factory.made) == 2


def test_waiter_gets_socket_released_by_another_thread() -> None:
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    a = pool.get_socket()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get_socket()))
    t.start()
    wait_for_waiters(pool, 1)
    pool.return_socket(a)
    t.join(5)
    assert got == [a] and len(factory.made) == 1


def test_idle_dead_socket_is_detected_on_checkout() -> None:
    pool, factory = make_pool(check_interval=0.0)
    s = pool.get_socket()
    pool.return_socket(s)
    s.dead = True
    t = pool.get_socket()
    assert t is not s and s.closed and pool.open_count == 1


def test_failed_connect_frees_its_slot() -> None:
    pool, factory = make_pool(max_size=1, wait_queue_timeout=0.1)
    factory.fail = True
    with pytest.raises(OSError):
        pool.get_socket()
    factory.fail = False
    assert pool.open_count == 0
    pool.get_socket()


def test_reset_drops_old_generation() -> None:
    pool, _ = make_pool()
    s = pool.get_socket()
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
    sock = pool.get_socket()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get_socket()))
    t.start()
    wait_for_waiters(pool, 1)
    with pool._lock:
        pool.checkin_from_callback(sock)  # what a dead caller's request does
        assert pool._orphans == [sock]
    pool.return_socket(StubSocket(99))  # any locked section collects the orphans
    t.join(5)
    assert got == [sock] and len(factory.made) == 1


def test_fifo_waiters_are_served_in_arrival_order() -> None:
    """A socket given back while others wait goes to the first of them: the giver cannot
    take it straight back, and later arrivals do not jump the queue."""
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    held = pool.get_socket()
    order: List[int] = []

    def wait(n: int) -> None:
        sock = pool.get_socket()
        order.append(n)
        time.sleep(0.02)
        pool.return_socket(sock)

    threads = []
    for n in range(4):
        t = threading.Thread(target=wait, args=(n,))
        t.start()
        threads.append(t)
        wait_for_waiters(pool, n + 1)  # arrive in order
    pool.return_socket(held)
    again = threading.Thread(target=wait, args=(99,))  # arrives after all of them
    again.start()
    for t in threads + [again]:
        t.join(5)
    assert order == [0, 1, 2, 3, 99] and len(factory.made) == 1


def test_returning_socket_cannot_take_it_straight_back_while_others_wait() -> None:
    pool, _ = make_pool(max_size=1, wait_queue_timeout=5)
    sock = pool.get_socket()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get_socket()))
    t.start()
    wait_for_waiters(pool, 1)
    pool.return_socket(sock)  # handed to the waiter, not put back idle
    assert pool.idle_count() == 0
    t.join(5)
    assert got == [sock]


def test_slot_freed_by_a_broken_socket_is_granted_to_the_first_waiter() -> None:
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    sock = pool.get_socket()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get_socket()))
    t.start()
    wait_for_waiters(pool, 1)
    sock.close()
    pool.return_socket(sock)
    t.join(5)
    assert len(got) == 1 and got[0] is not sock and len(factory.made) == 2


def test_clear_closes_idle_now_and_lent_sockets_when_they_come_back() -> None:
    pool, _ = make_pool()
    idle, lent = pool.get_socket(), pool.get_socket()
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
    s = pool.get_socket()
    pool.return_socket(s)
    clock.advance(0.04)
    assert pool.get_socket() is s  # fresh enough (idle for less than max_idle_time)
    pool.return_socket(s)
    clock.advance(0.06)
    t = pool.get_socket()
    assert t is not s and s.closed and len(factory.made) == 2


def test_fill_to_minimum_opens_idle_sockets_up_to_min_size() -> None:
    pool, factory = make_pool(min_size=3, max_size=5)
    assert pool.open_count == 0  # the pool starts nothing by itself
    pool.fill_to_minimum()
    assert pool.open_count == 3 and pool.idle_count() == 3
    pool.fill_to_minimum()
    assert len(factory.made) == 3


def test_in_use_counts_lent_sockets() -> None:
    pool, _ = make_pool()
    a, b = pool.get_socket(), pool.get_socket()
    assert pool.in_use == 2
    pool.return_socket(a)
    assert pool.in_use == 1
    pool.return_socket(b)
    assert pool.in_use == 0


def test_waiter_never_gets_a_socket_cleared_between_hand_over_and_waking() -> None:
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    sock = pool.get_socket()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get_socket()))
    t.start()
    wait_for_waiters(pool, 1)
    with pool._lock:  # hand over, then clear, before the waiter can run
        pool._checkin_locked(sock)
        pool.generation += 1  # what clear() does to lent sockets
    t.join(5)
    assert len(got) == 1 and got[0] is not sock and sock.closed
    assert pool.open_count == 1 and len(factory.made) == 2
