"""Pool unit tests through its factory seam: sockets here are stand-ins with the attributes
the pool uses; the server-facing behaviour is tested against SecantusDB in test_requests.py,
and request leases (wireclient.requests) at the end of test_requests.py."""

from __future__ import annotations

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
    time.sleep(0.05)
    with pool._lock:
        pool.checkin_from_callback(sock)  # what a dead caller's request does
        assert pool._orphans == [sock]
    pool.return_socket(StubSocket(99))  # any locked section collects the orphans
    t.join(5)
    assert got == [sock] and len(factory.made) == 1
