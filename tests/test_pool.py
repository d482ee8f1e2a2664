"""Pool unit tests through its factory seam: sockets here are stand-ins with the attributes
the pool uses; the server-facing behaviour is tested against SecantusDB in test_requests.py."""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any, List

import pytest

from wireclient.errors import ConfigurationError, PoolTimeout
from wireclient.pool import Pool


class StubSocket:
    """The parts of SocketInfo the pool touches."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.discarded = False
        self.generation = 0
        self.last_checkin = time.monotonic()
        self.pid = os.getpid()
        self.thread_ident = None
        self.dead = False

    def is_dead(self) -> bool:
        return self.dead or self.closed

    def close(self) -> None:
        self.closed = True


class Factory:
    def __init__(self) -> None:
        self.made: List[StubSocket] = []
        self.fail = False

    def __call__(self) -> Any:
        if self.fail:
            raise OSError("refused")
        sock = StubSocket(len(self.made))
        self.made.append(sock)
        return sock


def make_pool(**kwargs: Any) -> tuple[Pool, Factory]:
    factory = Factory()
    return Pool(("h", 1), factory, **kwargs), factory


def test_outside_request_sockets_are_reused_lifo() -> None:
    pool, factory = make_pool()
    a = pool.get_socket()
    b = pool.get_socket()
    assert a is not b
    pool.return_socket(a)
    pool.return_socket(b)
    assert pool.get_socket() is b  # last in, first out
    assert len(factory.made) == 2 and pool.open_count == 2


def test_request_binds_first_socket_and_keeps_it() -> None:
    pool, factory = make_pool()
    pool.start_request()
    assert pool.in_request() and pool.request_socket() is None  # no socket yet
    s = pool.get_socket()
    pool.return_socket(s)
    assert pool.request_socket() is s
    for _ in range(3):
        t = pool.get_socket()
        assert t is s
        pool.return_socket(t)
    pool.end_request()
    assert not pool.in_request()
    assert pool.idle_count() == 1 and pool.get_socket() is s


def test_requests_nest_by_count_and_extra_ends_are_harmless() -> None:
    pool, _ = make_pool()
    pool.start_request()
    pool.start_request()
    pool.end_request()
    assert pool.in_request()
    pool.end_request()
    assert not pool.in_request()
    pool.end_request()
    assert not pool.in_request()


def test_request_state_is_per_thread() -> None:
    pool, _ = make_pool()
    pool.start_request()
    seen = []
    t = threading.Thread(target=lambda: seen.append(pool.in_request()))
    t.start()
    t.join()
    assert seen == [False] and pool.in_request()
    pool.end_request()


def test_thread_dying_in_request_returns_its_socket() -> None:
    pool, _ = make_pool()
    held = []

    def work() -> None:
        pool.start_request()
        s = pool.get_socket()
        pool.return_socket(s)
        held.append(s)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    del t
    gc.collect()
    assert pool.request_count() == 0
    assert pool.idle_count() == 1 and pool.get_socket() is held[0]


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
    time.sleep(0.05)
    pool.return_socket(a)
    t.join(5)
    assert got == [a] and len(factory.made) == 1


def test_closed_socket_is_dropped_and_request_rebinds() -> None:
    pool, factory = make_pool()
    pool.start_request()
    s = pool.get_socket()
    s.close()  # the network layer closes a socket on any error mid-conversation
    pool.return_socket(s)
    assert pool.open_count == 0 and pool.in_request()
    t = pool.get_socket()
    assert t is not s and pool.request_socket() is t
    pool.end_request()


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


def test_close_while_lent_out_counts_each_socket_once() -> None:
    pool, _ = make_pool()
    pool.start_request()
    s = pool.get_socket()
    pool.close()
    pool.return_socket(s)
    assert pool.open_count == 0
    pool.end_request()
    assert pool.open_count == 0


def test_bad_sizes_are_configuration_errors() -> None:
    for bad in (0, -1, "4", True):
        with pytest.raises(ConfigurationError):
            Pool(("h", 1), Factory(), max_size=bad)  # type: ignore[arg-type]


def test_pool_is_not_kept_alive_by_identity_callbacks() -> None:
    import weakref

    pool, _ = make_pool()
    pool.start_request()
    pool.get_socket()
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None


def test_death_while_pool_lock_is_held_leaves_socket_for_next_checkout() -> None:
    """A death callback never blocks (it may run in the gevent hub or inside a GC that
    interrupted the pool's locked section): with the lock taken, the socket is parked."""
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    pool.start_request()
    sock = pool.get_socket()
    key = pool._current()
    with pool._lock:
        pool._forget(key)  # what the identity's callback calls
    assert pool.request_count() == 0 and pool._orphans == [sock]
    assert pool.get_socket() is sock  # collected by the next checkout
    assert len(factory.made) == 1


def test_waiter_collects_orphan_without_a_notify() -> None:
    pool, factory = make_pool(max_size=1, wait_queue_timeout=5)
    sock = pool.get_socket()
    got = []
    t = threading.Thread(target=lambda: got.append(pool.get_socket()))
    t.start()
    time.sleep(0.05)
    pool._orphans.append(sock)  # as _forget leaves it when the lock was busy
    t.join(5)
    assert got == [sock]


def test_thread_keys_are_never_reused() -> None:
    pool, _ = make_pool()
    keys = []
    for _ in range(20):
        t = threading.Thread(target=lambda: keys.append(pool._current()))
        t.start()
        t.join()
    assert len(set(keys)) == 20  # distinct objects, even when thread idents repeat
