"""Pool: the sockets to one server, with their bookkeeping.

Theory of operation
-------------------
A pool owns every socket it opens. For each it keeps an entry (the generation the socket was
made in, when it was last given back, and under gevent the OS thread that made it); the
sockets themselves know nothing of the pool. Idle sockets sit in a LIFO list (the most
recently used socket is the warmest and the least likely to have been closed by the server);
the others are lent out, for one operation or for a whole request (request leases are kept
by ``wireclient.pooling.requests``, not here). ``open_count`` counts open sockets and connects in
progress; ``max_size`` bounds it.

Waiting is first come, first served. A caller that finds no idle socket and no room joins a
FIFO of waiters. A socket given back while others wait is handed straight to the first
waiter (so a thread that gives a socket back cannot take it straight back), and a slot freed
by a closed socket is granted to the first waiter, which then connects. A waiter gives up
after ``wait_queue_timeout`` seconds with ``PoolTimeout``. Connecting happens outside the
lock; a failed connect gives its slot back.

Generations. ``clear()`` bumps ``generation`` and closes the idle sockets; a socket of an
older generation that is lent out for one operation is closed when it comes back, never
under its user's feet. One bound to a request stays with it while it is alive (``usable()``
polls it before each use; the clear was for a fault on another socket) and is closed when
the request gives it back. ``outdate_all()`` (``close()``, new credentials) is a clear
whose outdated request sockets are replaced before their next use. A socket idle for longer than
``max_idle_time`` (``maxIdleTimeMS``) is closed instead of reused; one idle longer than
``check_interval`` is polled first (``selectors``, non-blocking) and dropped if the server
has closed it. ``fill_to_minimum`` opens sockets up to ``min_size`` (``minPoolSize``); the
owner calls it (the replica-set monitor after its checks, or a single-server connection
after an operation: the pool starts no thread of its own).

Dead callers. When a caller dies in a request, its socket comes back through
``checkin_from_callback``, which may run inside the gevent hub or inside a garbage
collection that interrupted this pool's own locked section: it takes the lock only if it is
free, and otherwise parks the socket in ``_orphans``, collected by whoever holds the lock
next (every locked section ends by collecting them), so no one polls for them.

Fork. The child of ``os.fork()`` must never use the parent's sockets: an at-fork hook and
a pid check on checkout reset the pool (new lock, no entries) in the child; a parent socket
that comes back there is closed locally (which sends nothing to the server).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional

from wireclient.errors import AutoReconnect, ConfigurationError, PoolTimeout, ProtocolError
from wireclient.pooling import forking
from wireclient.pooling.identity import gevent_seams
from wireclient.rules.uri import Address, format_address
from wireclient.transport.network import SocketInfo

if TYPE_CHECKING:
    from wireclient.monitoring import EventPublisher

Connector = Callable[[], SocketInfo]

_monotonic = time.monotonic
_REAP_POLL = 0.05  # waiters deliver deaths of finished-but-referenced greenlets this often
_GREENLET_POLL = 0.005


class _Entry:
    """The pool's record of one open socket."""

    __slots__ = ("generation", "last_checkin", "thread_ident")

    def __init__(self, generation: int, thread_ident: Optional[int]) -> None:
        self.generation = generation
        self.last_checkin = _monotonic()
        self.thread_ident = thread_ident


class _Waiter:
    """A caller waiting for a socket: handed one directly, or granted a slot to connect."""

    __slots__ = ("cond", "sock", "granted", "thread_ident")

    def __init__(self, lock: threading.Lock, thread_ident: Optional[int]) -> None:
        self.cond = threading.Condition(lock)
        self.sock: Optional[SocketInfo] = None
        self.granted = False
        self.thread_ident = thread_ident


class Pool:
    """Sockets to one server: bounded, fair to waiters, cleared by generation."""

    def __init__(
        self,
        address: Address,
        connect: Connector,
        max_size: int = 100,
        wait_queue_timeout: Optional[float] = None,
        check_interval: float = 1.0,
        max_idle_time: Optional[float] = None,
        min_size: int = 0,
    ) -> None:
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise ConfigurationError(f"max_pool_size must be a positive integer, not {max_size!r}")
        if wait_queue_timeout is not None and wait_queue_timeout < 0:
            raise ConfigurationError("waitQueueTimeoutMS must not be negative")
        self.address = address
        self.max_size = max_size
        self.wait_queue_timeout = wait_queue_timeout
        self.check_interval = check_interval
        self.max_idle_time = max_idle_time
        self.min_size = min(min_size, max_size)
        self.events: Optional[EventPublisher] = None  # set by the owner: pool events
        self._connect = connect
        self._thread_ident, self._cooperative_sleep = gevent_seams()
        # Set by the owner under gevent greenlets: delivers deaths of finished greenlets.
        self.reap: Optional[Callable[[], Any]] = None
        #: The oldest generation whose sockets a request may keep: ``outdate_all()`` raises
        #: it to the new generation, a clear for a fault does not (see ``usable``).
        self._request_floor = 0
        self._init_state()
        forking.reset_in_child(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._entries: Dict[SocketInfo, _Entry] = {}
        self._idle: List[SocketInfo] = []
        self._waiters: Deque[_Waiter] = deque()
        self._orphans: List[SocketInfo] = []  # given back by a death callback, lock busy
        self._last_reap = 0.0
        self._connecting = 0
        self.generation = 0
        self.pid = os.getpid()

    @property
    def open_count(self) -> int:
        """Open sockets, plus connects in progress."""
        return len(self._entries) + self._connecting

    @property
    def in_use(self) -> int:
        """Sockets lent out (for an operation or held by a request), plus connects."""
        return len(self._entries) + self._connecting - len(self._idle)

    # -- checkout -----------------------------------------------------------------------

    def get_socket(self) -> SocketInfo:
        """A socket for one operation (an idle one, a new one, or one handed over by a
        caller that gave it back while this one waited)."""
        sock = self._get_socket()
        if self.events is not None and self.events.pool is not None:
            with self._lock:
                if sock in self._entries:
                    self._publish("connection_checked_out", sock)
        return sock

    def _get_socket(self) -> SocketInfo:
        if self.pid != os.getpid():  # forked without the at-fork hook (e.g. a C extension)
            self._after_fork()
        lock = self._lock
        lock.acquire()
        try:
            sock = None if self._waiters else self._pop_idle_locked()
            if sock is not None:
                return sock
            if self._waiters or self.open_count >= self.max_size:
                sock = self._wait_locked()
                if sock is not None:
                    return sock
            else:
                self._connecting += 1
            generation = self.generation
        finally:
            if self._orphans:
                self._collect_orphans_locked()
            lock.release()
        return self._open(generation)

    def _open(self, generation: int) -> SocketInfo:
        """Connect in a slot already counted in ``_connecting``."""
        try:
            sock = self._connect()
        except BaseException as exc:
            with self._lock:
                self._connecting -= 1
                self._slot_freed_locked()
            if isinstance(exc, (AutoReconnect, ProtocolError)) and generation == self.generation:
                self.clear()  # the handshake failed on the network: so will older sockets
            raise
        thread = self._thread_ident() if self._thread_ident is not None else None
        with self._lock:
            self._connecting -= 1
            self._entries[sock] = _Entry(generation, thread)
            if self.events is not None and self.events.pool is not None:
                self._publish("connection_created", sock)
        return sock

    def _pop_idle_locked(self) -> Optional[SocketInfo]:
        """The most recently used healthy idle socket this caller may use, or None."""
        idle = self._idle
        thread = self._thread_ident() if self._thread_ident is not None else None
        now = _monotonic()
        i = len(idle) - 1
        while i >= 0:
            sock = idle[i]
            entry = self._entries[sock]
            if thread is not None and entry.thread_ident != thread:
                i -= 1  # a gevent socket must stay in the OS thread (hub) that made it
                continue
            del idle[i]
            i -= 1
            idle_for = now - entry.last_checkin
            if sock.closed:
                reason = "error"
            elif entry.generation != self.generation:
                reason = "stale"
            elif self.max_idle_time is not None and idle_for > self.max_idle_time:
                reason = "idle"
            elif idle_for > self.check_interval and sock.is_dead():
                reason = "dead"
            else:
                return sock
            self._drop_locked(sock, reason)
        return None

    def _wait_locked(self) -> Optional[SocketInfo]:
        """Queue behind earlier waiters; return a socket handed over, or None when granted
        a slot (already counted in ``_connecting``). Raises PoolTimeout."""
        thread = self._thread_ident() if self._thread_ident is not None else None
        waiter = _Waiter(self._lock, thread)
        self._waiters.append(waiter)
        timeout = self.wait_queue_timeout
        deadline = None if timeout is None else _monotonic() + timeout
        try:
            while waiter.sock is None and not waiter.granted:
                if self._orphans:  # parked by a death callback while we held the lock
                    self._collect_orphans_locked()
                    continue
                if self._waiters[0] is waiter and self._serve_first_waiter_locked():
                    continue
                remaining = None if deadline is None else deadline - _monotonic()
                if remaining is not None and remaining <= 0:
                    raise PoolTimeout(
                        f"no socket to {format_address(self.address)} became free in "
                        f"{self.wait_queue_timeout}s (max_pool_size={self.max_size})"
                    )
                self._sleep_locked(waiter, remaining)
                sock = waiter.sock
                if sock is not None and self._entries[sock].generation != self.generation:
                    # cleared between the hand-over and our waking: never hand out an old
                    # socket; keep our place and take the slot it frees
                    waiter.sock = None
                    self._waiters.appendleft(waiter)
                    self._drop_locked(sock, "stale")
                    self._slot_freed_locked()
        except BaseException:
            self._abandon_locked(waiter)
            raise
        return waiter.sock

    def _serve_first_waiter_locked(self) -> bool:
        """Serve the head waiter from what is there now (an idle socket, room, or a foreign
        gevent thread's idle socket to close); True if it was served."""
        waiter = self._waiters[0]
        sock = self._pop_idle_locked()
        if sock is None and self.open_count >= self.max_size and self._idle:
            # full of other OS threads' gevent sockets: make room
            self._drop_locked(self._idle.pop(0), "foreign thread")
        if sock is None and self.open_count >= self.max_size:
            return False
        self._waiters.popleft()
        if sock is None:
            self._connecting += 1
            waiter.granted = True
        waiter.sock = sock
        return True

    def _sleep_locked(self, waiter: _Waiter, remaining: Optional[float]) -> None:
        """Wait (lock held) for a hand-over, without blocking other greenlets."""
        if self.reap is not None:
            now = _monotonic()
            if now - self._last_reap > _REAP_POLL:
                self._last_reap = now
                self._lock.release()
                try:
                    self.reap()  # deliver deaths of finished greenlets still referenced
                finally:
                    self._lock.acquire()
                if self._orphans:
                    self._collect_orphans_locked()
                return
            remaining = _REAP_POLL if remaining is None else min(remaining, _REAP_POLL)
        if self._cooperative_sleep is None:
            waiter.cond.wait(remaining)
            return
        self._lock.release()
        try:
            pause = _GREENLET_POLL if remaining is None else min(remaining, _GREENLET_POLL)
            self._cooperative_sleep(pause)
        finally:
            self._lock.acquire()

    def _abandon_locked(self, waiter: _Waiter) -> None:
        """A waiter gave up (timeout, interrupt): pass on what it was given."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        if waiter.sock is not None:
            sock, waiter.sock = waiter.sock, None
            self._checkin_locked(sock)
        elif waiter.granted:
            waiter.granted = False
            self._connecting -= 1
            self._slot_freed_locked()

    def fill_to_minimum(self) -> None:
        """Open sockets until ``min_size`` are open (``minPoolSize``); they wait idle. Stops
        early when callers are waiting (they come first). Raises what connecting raises."""
        while True:
            with self._lock:
                if self.open_count >= self.min_size or self._waiters:
                    return
                self._connecting += 1
                generation = self.generation
            self.return_socket(self._open(generation))

    # -- checkin ------------------------------------------------------------------------

    def return_socket(self, sock: SocketInfo) -> None:
        """Give back a socket from ``get_socket``: reused, or dropped if it is closed, of an
        older generation, or the pool's process forked."""
        with self._lock:
            self._checkin_locked(sock)
            if self._orphans:
                self._collect_orphans_locked()

    def checkin_from_callback(self, sock: SocketInfo) -> None:
        """Give back a dead caller's socket without ever blocking (see the module notes)."""
        if self._lock.acquire(False):
            try:
                self._checkin_locked(sock)
                if self._orphans:
                    self._collect_orphans_locked()
            finally:
                self._lock.release()
        else:
            self._orphans.append(sock)

    def _checkin_locked(self, sock: SocketInfo) -> None:
        entry = self._entries.get(sock)
        if entry is None:  # not ours (a parent's socket after fork, or already dropped)
            sock.close()
            return
        if sock.closed or entry.generation != self.generation:
            self._drop_locked(sock, "error" if sock.closed else "stale")
            self._slot_freed_locked()
            return
        entry.last_checkin = _monotonic()
        if self.events is not None and self.events.pool is not None:
            self._publish("connection_checked_in", sock)
        for waiter in self._waiters:
            if waiter.thread_ident == entry.thread_ident:
                self._waiters.remove(waiter)
                waiter.sock = sock
                waiter.cond.notify()
                return
        self._idle.append(sock)
        if self._waiters:  # none of them may use this OS thread's gevent socket
            self._waiters[0].cond.notify()

    def _collect_orphans_locked(self) -> None:
        while self._orphans:
            self._checkin_locked(self._orphans.pop())

    def discard_socket(self, sock: SocketInfo) -> None:
        """Close ``sock`` (broken or abandoned) and free its slot."""
        with self._lock:
            self._drop_locked(sock, "error" if sock.closed else "discarded")
            self._slot_freed_locked()

    def _drop_locked(self, sock: SocketInfo, reason: str) -> None:
        """Close ``sock`` and forget it (the caller grants the freed slot)."""
        sock.close()
        entry = self._entries.pop(sock, None)
        if entry is not None and self.events is not None and self.events.pool is not None:
            self._publish("connection_closed", sock, entry, reason)

    def _publish(
        self, method: str, sock: SocketInfo, entry: Optional[_Entry] = None, reason: Any = None
    ) -> None:
        """A pool event. It runs with the pool's lock held: listeners must not run
        operations (they would wait for this very lock)."""
        from wireclient.monitoring import PoolEvent

        assert self.events is not None
        entry = entry or self._entries.get(sock)
        generation = entry.generation if entry is not None else None
        local = getattr(sock, "local_address", None)
        event = PoolEvent(self.address, sock.connection_id, local, generation, reason)
        self.events.publish(self.events.pool, method, event)

    def _slot_freed_locked(self) -> None:
        """Slots came free: grant them to the first waiters, which will connect."""
        while self._waiters and self.open_count < self.max_size:
            waiter = self._waiters.popleft()
            self._connecting += 1
            waiter.granted = True
            waiter.cond.notify()

    # -- sockets held in a request ------------------------------------------------------

    def usable(self, sock: SocketInfo) -> bool:
        """Whether a request's bound socket may be used for the next operation: it is
        still ours, open, not idle too long, and not closed by the server (polled when idle
        for a while, or always when it is of an older generation). An unusable one is
        dropped here.

        A socket of an older generation stays with its request while it is alive: the
        pool was cleared for a fault on another socket, and moving the request would
        lose read-your-writes for the unacknowledged writes still queued on this one. A
        dead one (a server restart) is replaced quietly. ``outdate_all()`` (``close()``, a
        change of credentials) is not a fault: the sockets it outdates are replaced."""
        entry = self._entries.get(sock)
        if entry is not None and not sock.closed:
            now = _monotonic()
            idle_for = now - entry.last_checkin
            if self.max_idle_time is None or idle_for <= self.max_idle_time:
                if entry.generation == self.generation:
                    alive = idle_for < self.check_interval or not sock.is_dead()
                else:
                    alive = entry.generation >= self._request_floor and not sock.is_dead()
                if alive:
                    entry.last_checkin = now
                    return True
        self.discard_socket(sock)
        return False

    def generation_of(self, sock: SocketInfo) -> Optional[int]:
        """The generation ``sock`` was made in (None if the pool no longer knows it)."""
        entry = self._entries.get(sock)
        return entry.generation if entry is not None else None

    # -- whole-pool operations ----------------------------------------------------------

    def idle_count(self) -> int:
        if self._orphans and self._lock.acquire(False):
            try:
                self._collect_orphans_locked()
            finally:
                self._lock.release()
        return len(self._idle)

    def clear(self, reason: str = "stale") -> int:
        """Start a new generation: idle sockets are closed now (their closed events carry
        ``reason``), lent ones when they come back. Returns the new generation."""
        with self._lock:
            self.generation += 1
            if self.events is not None and self.events.pool is not None:
                # CMAP's order: the pool is cleared, then its idle connections are closed
                from wireclient.monitoring import PoolEvent

                cleared = PoolEvent(self.address, generation=self.generation)
                self.events.publish(self.events.pool, "pool_cleared", cleared)
            idle, self._idle = self._idle, []
            for sock in idle:
                self._drop_locked(sock, reason)
            self._slot_freed_locked()
            return self.generation

    reset = clear

    def outdate_all(self, reason: str = "stale") -> int:
        """A clear that is not for a fault (``close()``, a change of credentials): no
        request keeps a socket it outdates, alive or not; each is replaced before its next
        use. Returns the new generation."""
        self._request_floor = self.clear(reason)
        return self._request_floor

    def close(self) -> None:
        """Close the idle sockets now and every lent one when it comes back (a new
        generation that requests do not keep). The pool stays usable: the next operation
        opens a new socket. The idle sockets' closed events say ``poolClosed``, as CMAP
        names that reason."""
        self.outdate_all("poolClosed")

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's sockets without touching their peers."""
        parent_sockets = list(self._entries)
        generation = self.generation
        self._init_state()
        self.generation = generation + 1
        for sock in parent_sockets:
            sock.close()  # closes the child's copy of the descriptor only; no FIN is sent

    def stats(self) -> Dict[str, Any]:
        return {
            "address": format_address(self.address),
            "open": self.open_count,
            "idle": len(self._idle),
            "waiting": len(self._waiters),
            "max_size": self.max_size,
            "generation": self.generation,
        }
