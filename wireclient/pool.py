"""Pool: the sockets to one server, and the request leases that pin a socket to a caller.

Theory of operation
-------------------
A pool owns every socket it opens, counted in ``open_count``: idle ones sit in a LIFO list
(the most recently used socket is the warmest and the least likely to have been closed by
the server), the rest are lent out, either for one operation or for a whole request.
``max_size`` bounds ``open_count``; a caller that finds no idle socket and no room waits on
a condition for ``wait_queue_timeout`` seconds, then gets ``PoolTimeout``. Connecting
happens outside the lock; a failed connect gives its slot back.

Requests. ``_requests`` maps a caller's identity key (a thread, or a greenlet; the strategy
is chosen once at construction) to a ``_Request``: a nesting count and the bound socket, or
None before the first operation ("no request" = no entry, "no socket yet" = entry with
``sock is None``, "bound" = entry with a socket). ``get_socket`` returns the bound socket
when there is one (no lock on this path), binds a newly checked-out one otherwise, and
``return_socket`` leaves a bound socket bound. ``end_request`` at count zero returns the
socket to the idle list, where any caller can take it. When a caller dies inside a request,
the identity strategy calls back (holding only a weak reference to the pool) and the socket
goes back to the pool, so dead threads never leak sockets or deadlock the bound.

Health. A socket that comes back closed (the network layer closes a socket on any error
mid-conversation) is dropped and its slot freed; a request keeps its lease and binds a new
socket on its next operation. A socket idle for longer than ``check_interval`` is polled
before reuse (``selectors``, non-blocking) and dropped if the server has closed it.
``reset()`` bumps ``generation``: older sockets are closed when next seen.

Fork. The child of ``os.fork()`` must never use the parent's sockets: an at-fork hook and
a pid check on checkout reset the pool (new lock, empty lists) in the child.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

from wireclient.errors import ConfigurationError, PoolTimeout
from wireclient.identity import Identity, ThreadIdentity
from wireclient.network import SocketInfo

Address = Tuple[str, int]
Connector = Callable[[], SocketInfo]

_all_pools: weakref.WeakSet[Pool] = weakref.WeakSet()
_monotonic = time.monotonic
_WAIT_POLL = 0.05  # waiters re-check this often for sockets freed by dead callers
_GREENLET_POLL = 0.005


def _gevent_seams() -> Tuple[Optional[Callable[[], int]], Optional[Callable[[float], None]]]:
    """What the pool must do differently when gevent has patched ``socket``.

    1. A gevent socket must stay in the OS thread (the hub) that made it: the real
       thread-ident function, so idle sockets are handed out only within their thread.
    2. With ``socket`` patched but ``threading`` not (``monkey.patch_socket()``), waiting on
       a real Condition would block every greenlet of the thread, including those that
       would give a socket back: waiters poll with ``gevent.sleep`` instead.
    Both are None without gevent. Decided once, when the pool is built.
    """
    if "gevent" not in getattr(socket.socket, "__module__", ""):
        return None, None
    import gevent  # imported already: it patched socket
    from gevent.monkey import get_original, is_module_patched

    thread_ident = get_original("_thread", "get_ident")
    sleep = None if is_module_patched("threading") else gevent.sleep
    return thread_ident, sleep


def _reset_pools_after_fork() -> None:
    for pool in list(_all_pools):
        pool._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pools_after_fork)


class _Request:
    __slots__ = ("count", "sock")

    def __init__(self) -> None:
        self.count = 1
        self.sock: Optional[SocketInfo] = None


def _death_callback(pool_ref: weakref.ReferenceType[Pool]) -> Callable[[Hashable], None]:
    def on_death(key: Hashable) -> None:
        pool = pool_ref()
        if pool is not None:
            pool._forget(key)

    return on_death


class Pool:
    """Sockets to one server, bounded, with per-caller request leases."""

    def __init__(
        self,
        address: Address,
        connect: Connector,
        max_size: int = 100,
        wait_queue_timeout: Optional[float] = None,
        identity: Optional[Identity] = None,
        check_interval: float = 1.0,
    ) -> None:
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise ConfigurationError(f"max_pool_size must be a positive integer, not {max_size!r}")
        if wait_queue_timeout is not None and wait_queue_timeout < 0:
            raise ConfigurationError("waitQueueTimeoutMS must not be negative")
        self.address = address
        self.max_size = max_size
        self.wait_queue_timeout = wait_queue_timeout
        self.check_interval = check_interval
        self._connect = connect
        self._identity: Identity = identity if identity is not None else ThreadIdentity()
        self._current = self._identity.current
        self._on_death = _death_callback(weakref.ref(self))
        # A greenlet strategy offers reap() for finished greenlets still referenced.
        self._reap: Optional[Callable[[], Any]] = getattr(self._identity, "reap", None)
        self._thread_ident, self._cooperative_sleep = _gevent_seams()
        self._init_state()
        _all_pools.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle: List[SocketInfo] = []
        self._orphans: List[SocketInfo] = []  # sockets of dead callers, left by _forget
        self._last_reap = 0.0
        self._requests: Dict[Hashable, _Request] = {}
        self.open_count = 0
        self.generation = 0
        self.pid = os.getpid()
        self.closed = False

    # -- the per-operation path ---------------------------------------------------------

    def get_socket(self, start_request: bool = False) -> SocketInfo:
        """A socket for one operation: the caller's request socket if it has one.

        With ``start_request=True`` a caller that is not in a request starts one (this is
        how ``auto_start_request`` works).
        """
        req = self._requests.get(self._current())
        if req is None:
            if not start_request:
                return self._checkout()
            req = self._begin_request()
        sock = req.sock
        if sock is not None:
            if not sock.closed and sock.generation == self.generation:
                now = _monotonic()
                if now - sock.last_checkin < self.check_interval or not sock.is_dead():
                    sock.last_checkin = now
                    return sock
            req.sock = None
            self._discard(sock)
        sock = self._checkout()
        req.sock = sock
        return sock

    def return_socket(self, sock: SocketInfo) -> None:
        """Give back a socket from ``get_socket``; a request's socket stays bound."""
        req = self._requests.get(self._current())
        if req is not None and req.sock is sock:
            if sock.closed:
                req.sock = None
                self._discard(sock)
            return
        self._checkin(sock)

    # -- requests -----------------------------------------------------------------------

    def start_request(self) -> None:
        req = self._requests.get(self._current())
        if req is None:
            self._begin_request()
        else:
            req.count += 1

    def _begin_request(self) -> _Request:
        req = _Request()
        self._requests[self._current()] = req
        self._identity.watch(self._on_death)
        return req

    def end_request(self) -> None:
        key = self._current()
        req = self._requests.get(key)
        if req is None:
            return
        req.count -= 1
        if req.count <= 0:
            del self._requests[key]
            if req.sock is not None:
                self._checkin(req.sock)

    def in_request(self) -> bool:
        return self._current() in self._requests

    def request_socket(self) -> Optional[SocketInfo]:
        """The caller's bound request socket, if any (for tests and diagnostics)."""
        req = self._requests.get(self._current())
        return req.sock if req is not None else None

    def request_count(self) -> int:
        """How many callers are in a request."""
        return len(self._requests)

    def _forget(self, key: Hashable) -> None:
        """The caller ``key`` died: end its request and give its socket back.

        Runs from a death callback, which may fire inside the gevent hub or in a garbage
        collection that interrupted this pool's own locked section: it must never block, so
        it takes the lock only if it is free and otherwise leaves the socket in
        ``_orphans`` for the next checkout (or a waiter's next poll) to collect.
        """
        req = self._requests.pop(key, None)
        if req is None or req.sock is None:
            return
        sock, req.sock = req.sock, None
        if self._lock.acquire(False):
            try:
                self._checkin_locked(sock)
            finally:
                self._lock.release()
        else:
            self._orphans.append(sock)

    # -- checkout / checkin -------------------------------------------------------------

    def _checkout(self) -> SocketInfo:
        if self.pid != os.getpid():  # forked without the at-fork hook (e.g. a C extension)
            self._after_fork()
        deadline: Optional[float] = None
        lock = self._lock
        lock.acquire()
        try:
            while True:
                if self._orphans:
                    self._collect_orphans_locked()
                sock = self._pop_idle_locked()
                if sock is not None:
                    return sock
                if self.open_count < self.max_size:
                    self.open_count += 1
                    generation = self.generation
                    break
                if self._thread_ident is not None and self._drop_foreign_idle_locked():
                    continue
                if deadline is None:
                    timeout = self.wait_queue_timeout
                    deadline = float("inf") if timeout is None else _monotonic() + timeout
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    raise PoolTimeout(
                        f"no socket to {self.address[0]}:{self.address[1]} became free in "
                        f"{self.wait_queue_timeout}s (max_pool_size={self.max_size})"
                    )
                self._wait_locked(min(remaining, _WAIT_POLL))
        finally:
            if self._orphans:
                self._collect_orphans_locked()
            lock.release()
        try:
            sock = self._connect()
        except BaseException:
            with lock:
                self.open_count -= 1
                self._cond.notify()
            raise
        sock.generation = generation
        if self._thread_ident is not None:
            sock.thread_ident = self._thread_ident()
        return sock

    def _pop_idle_locked(self) -> Optional[SocketInfo]:
        """The most recently used healthy idle socket this caller may use, or None."""
        idle = self._idle
        thread = self._thread_ident() if self._thread_ident is not None else None
        i = len(idle) - 1
        while i >= 0:
            sock = idle[i]
            if thread is not None and sock.thread_ident != thread:
                i -= 1  # a gevent socket must stay in the OS thread (hub) that made it
                continue
            del idle[i]
            i -= 1
            if sock.generation != self.generation or sock.closed:
                self._drop_locked(sock)
                continue
            if _monotonic() - sock.last_checkin > self.check_interval and sock.is_dead():
                self._drop_locked(sock)
                continue
            return sock
        return None

    def _drop_foreign_idle_locked(self) -> bool:
        """Pool full of other threads' idle gevent sockets: close one to make room."""
        if not self._idle:
            return False
        self._drop_locked(self._idle.pop(0))
        return True

    def _wait_locked(self, timeout: float) -> None:
        """Wait (lock held) for a socket to come back, without blocking other greenlets."""
        now = _monotonic()
        if self._reap is not None and now - self._last_reap > _WAIT_POLL:
            self._last_reap = now
            self._lock.release()
            try:
                self._reap()  # deliver deaths of finished greenlets still referenced
            finally:
                self._lock.acquire()
            if self._orphans or self._idle:
                return
        if self._cooperative_sleep is None:
            self._cond.wait(timeout)
            return
        self._lock.release()
        try:
            self._cooperative_sleep(min(timeout, _GREENLET_POLL))
        finally:
            self._lock.acquire()

    def _collect_orphans_locked(self) -> None:
        while self._orphans:
            self._checkin_locked(self._orphans.pop())

    def _checkin(self, sock: SocketInfo) -> None:
        with self._lock:
            self._checkin_locked(sock)
            if self._orphans:
                self._collect_orphans_locked()

    def _checkin_locked(self, sock: SocketInfo) -> None:
        if sock.closed or sock.generation != self.generation or sock.pid != self.pid or self.closed:
            if sock.pid == self.pid:
                self._drop_locked(sock)
        else:
            sock.last_checkin = _monotonic()
            self._idle.append(sock)
        self._cond.notify()

    def _discard(self, sock: SocketInfo) -> None:
        """Close a socket that must not be reused and free its slot."""
        with self._lock:
            if sock.pid == self.pid:
                self._drop_locked(sock)
            self._cond.notify()

    def discard_socket(self, sock: SocketInfo) -> None:
        """Close ``sock`` (broken or abandoned); a request bound to it binds a new one later."""
        req = self._requests.get(self._current())
        if req is not None and req.sock is sock:
            req.sock = None
        self._discard(sock)

    def _drop_locked(self, sock: SocketInfo) -> None:
        if sock.discarded:  # its slot was already freed (e.g. by close() while lent out)
            return
        sock.discarded = True
        sock.close()
        self.open_count -= 1

    # -- whole-pool operations ----------------------------------------------------------

    def idle_count(self) -> int:
        if self._orphans and self._lock.acquire(False):
            try:
                self._collect_orphans_locked()
            finally:
                self._lock.release()
        return len(self._idle)

    def reset(self) -> None:
        """Drop every idle socket; sockets lent out now are closed when next seen."""
        with self._lock:
            self.generation += 1
            idle, self._idle = self._idle, []
            for sock in idle:
                self._drop_locked(sock)
            self._cond.notify_all()

    def close(self) -> None:
        """Close every socket, including those bound to other callers' requests.

        The pool stays usable: the next operation opens a new socket.
        """
        with self._lock:
            self.generation += 1
            idle, self._idle = self._idle, []
            requests = list(self._requests.values())
            for sock in idle:
                self._drop_locked(sock)
            for req in requests:
                if req.sock is not None:
                    sock, req.sock = req.sock, None
                    self._drop_locked(sock)
            self._cond.notify_all()

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's sockets without touching their peers."""
        parent_idle = self._idle
        parent_requests = list(self._requests.values())
        generation = self.generation
        self._init_state()
        self.generation = generation + 1
        for sock in parent_idle:
            sock.close()  # closes the child's copy of the descriptor only; no FIN is sent
        for req in parent_requests:
            if req.sock is not None:
                req.sock.close()

    def stats(self) -> Dict[str, Any]:
        return {
            "address": f"{self.address[0]}:{self.address[1]}",
            "open": self.open_count,
            "idle": len(self._idle),
            "requests": len(self._requests),
            "max_size": self.max_size,
            "generation": self.generation,
        }
