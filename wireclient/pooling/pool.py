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

Rate of connects (CMAP's ``maxConnecting``). At most ``max_connecting`` (2) connects are in
progress at once (``_connecting``). A caller that would open a socket while that many are
in progress waits in the same FIFO, and is served by whatever comes first: a socket given
back (handed over) or a finished connect (a connect slot granted). So a thousand callers
arriving at once on an empty pool open sockets two at a time, and reuse the ones already
made as soon as they come back, rather than opening a thousand.

States (CMAP's). A pool is ``ready`` from its construction: its owner makes it for a server
it knows to be up (the one server of a ``Connection``; a member or router that selection
chose, or that a check just reached). A pool with a monitor (``monitored``: a replica set's
members, routers) is ``paused`` by ``clear(pause=True)``, which the error handler asks for
when it marks the server Unknown: every waiter and every later checkout fails at once with
``PoolClearedError`` (retryable) until the monitor's next successful check calls
``ready()``. A pool with no monitor is never paused (nothing would make it ready again):
``clear(pause=True)`` only clears it, its waiters keep their place, and the next checkout
connects. ``close()`` closes the pool for good (its server left the view): checkouts raise
``PoolClosedError``; ``close(reopen=True)`` is a ``Connection``'s ``close()``, which the
next checkout undoes (a ``Connection`` reconnects after ``close()``, as pymongo 2.8's did).

Events (``wireclient.monitoring``, only when a pool listener exists: otherwise a checkout
pays one ``is None`` test and builds nothing). The pool numbers its sockets 1, 2, 3... in
the order it starts opening them (``driver_connection_id``); the server's own number, from
the handshake, is ``connection_id``. The order is CMAP's: pool created, pool ready; for a
checkout, check-out started, then connection created and ready (when it connects), then
checked out, or check-out failed (reason ``timeout``, ``connectionError`` or
``poolClosed``); a socket given back is checked in, then closed if it must not be kept
(reason ``stale``, ``error`` or ``poolClosed``); a cleared pool publishes pool cleared, then
its idle sockets' closed events. Durations are in milliseconds (``duration_ms``, a float).

Generations. ``clear()`` bumps ``generation`` and closes the idle sockets; a socket of an
older generation that is lent out for one operation is closed when it comes back, never
under its user's feet. One bound to a request stays with it while it is alive (``usable()``
polls it before each use; the clear was for a fault on another socket) and is closed when
the request gives it back. ``outdate_all()`` (new credentials) and ``close()`` start a new
generation whose outdated request sockets are replaced before their next use. A socket idle
for longer than ``max_idle_time`` (``maxIdleTimeMS``) is closed instead of reused; one idle
longer than ``check_interval`` is polled first (``selectors``, non-blocking) and dropped if
the server has closed it. ``fill_to_minimum`` opens sockets up to ``min_size``
(``minPoolSize``) while the pool is ready, within ``max_connecting``; the owner calls it
(the replica-set monitor after its checks, or a single-server connection after an
operation: the pool starts no thread of its own).

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
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Set

from wireclient.errors import (
    AuthenticationError,
    AutoReconnect,
    ConfigurationError,
    OperationFailure,
    PoolClearedError,
    PoolClosedError,
    PoolTimeout,
    ProtocolError,
)
from wireclient.pooling import forking
from wireclient.pooling.identity import gevent_seams
from wireclient.rules.command import AUTHENTICATION_FAILED_CODE
from wireclient.rules.options import DEFAULT_MAX_CONNECTING
from wireclient.rules.uri import Address, format_address
from wireclient.transport.network import SocketInfo
from wireclient.transport.steps import Latch, Steps, Wait

if TYPE_CHECKING:
    from wireclient.monitoring import EventPublisher, PoolEvent

Connector = Callable[[], Steps[SocketInfo]]

_monotonic = time.monotonic
_REAP_POLL = 0.05  # waiters deliver deaths of finished-but-referenced greenlets this often
_GREENLET_POLL = 0.005

# The pool's states (CMAP's): a truth test of ``_state`` is "refuses checkouts".
READY, PAUSED, CLOSED = 0, 1, 2
_STATE_NAMES = ("ready", "paused", "closed")


def establishment_fault(exc: BaseException) -> bool:
    """Whether a failure to open a socket says something of the server, so that the pool is
    cleared (and the server marked Unknown): a network error or a protocol error while
    connecting or in the handshake, or a failed authentication (SDAM: the credentials will
    fail on every new socket alike). A usage error (a bad option, the wrong replica set) or
    an interrupt says nothing of the server."""
    if isinstance(exc, (AutoReconnect, ProtocolError, AuthenticationError)):
        return True
    return isinstance(exc, OperationFailure) and exc.code == AUTHENTICATION_FAILED_CODE


class _Entry:
    """The pool's record of one open socket."""

    __slots__ = ("generation", "last_checkin", "thread_ident", "driver_connection_id")

    def __init__(
        self, generation: int, thread_ident: Optional[int], driver_connection_id: int
    ) -> None:
        self.generation = generation
        self.last_checkin = _monotonic()
        self.thread_ident = thread_ident
        self.driver_connection_id = driver_connection_id


class _Waiter:
    """A caller waiting for a socket: handed one directly, granted a slot to connect, or
    turned away because the pool was paused or closed (``refused``: the error to raise)."""

    __slots__ = ("latch", "sock", "granted", "refused", "thread_ident", "since")

    def __init__(self, latch: Latch, thread_ident: Optional[int]) -> None:
        self.since = _monotonic()  # for check-out failed's duration, when it is refused
        self.latch = latch  # set (with the pool's lock held) when any of the below changes
        self.sock: Optional[SocketInfo] = None
        self.granted = False
        self.refused: Optional[BaseException] = None
        self.thread_ident = thread_ident


class Pool:
    """Sockets to one server: bounded, fair to waiters, rate-limited connects, cleared by
    generation, paused while its monitor has lost the server."""

    def __init__(
        self,
        address: Address,
        connect: Connector,
        max_size: int = 100,
        wait_queue_timeout: Optional[float] = None,
        check_interval: float = 1.0,
        max_idle_time: Optional[float] = None,
        min_size: int = 0,
        max_connecting: int = DEFAULT_MAX_CONNECTING,
        monitored: bool = False,
        events: Optional[EventPublisher] = None,
        latch: Optional[Callable[[], Latch]] = None,
    ) -> None:
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 1:
            raise ConfigurationError(f"max_pool_size must be a positive integer, not {max_size!r}")
        if wait_queue_timeout is not None and wait_queue_timeout < 0:
            raise ConfigurationError("waitQueueTimeoutMS must not be negative")
        if not isinstance(max_connecting, int) or max_connecting < 1:
            raise ConfigurationError(
                f"maxConnecting must be a positive integer, not {max_connecting!r}"
            )
        self.address = address
        self.max_size = max_size
        self.wait_queue_timeout = wait_queue_timeout
        self.check_interval = check_interval
        self.max_idle_time = max_idle_time
        self.min_size = min(min_size, max_size)
        self.max_connecting = max_connecting
        # A monitor marks this pool ready after each successful check, so it may be paused.
        self.monitored = monitored
        self.events = events  # pool events, when listened to (the owner may set it later)
        self._connect = connect
        # The gevent seams belong to the blocking client, whose waiters wait on a
        # threading.Event (the default); an asyncio pool is given its driver's latch.
        self._thread_ident, self._cooperative_sleep = (
            gevent_seams() if latch is None else (None, None)
        )
        if latch is None:
            from wireclient.transport import blocking

            latch = blocking.latch
        self._latch: Callable[[], Latch] = latch
        # Set by the owner under gevent greenlets: delivers deaths of finished greenlets.
        self.reap: Optional[Callable[[], Any]] = None
        #: The oldest generation whose sockets a request may keep: ``outdate_all()`` raises
        #: it to the new generation, a clear for a fault does not (see ``usable``).
        self._request_floor = 0
        self._state = READY
        self._reopens = False  # closed by close(reopen=True): the next checkout reopens it
        self._last_driver_connection_id = 0  # never reset: ids are unique in the pool
        self._init_state()
        forking.reset_in_child(self)
        if events is not None and events.pool is not None:
            self._publish_pool_opened()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._entries: Dict[SocketInfo, _Entry] = {}
        self._idle: List[SocketInfo] = []
        self._waiters: Deque[_Waiter] = deque()
        self._orphans: List[SocketInfo] = []  # given back by a death callback, lock busy
        # refusals whose check-out failed the refusing thread published (see _refuse_...)
        self._failures_published: Set[BaseException] = set()
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

    @property
    def state(self) -> str:
        """``"ready"``, ``"paused"`` or ``"closed"`` (CMAP's names)."""
        return _STATE_NAMES[self._state]

    # -- checkout -----------------------------------------------------------------------

    def checkout(self) -> Steps[SocketInfo]:
        """A socket for one operation (an idle one, a new one, or one handed over by a
        caller that gave it back while this one waited)."""
        events = self.events
        if events is None or events.pool is None:
            return (yield from self._checkout())
        return (yield from self._checkout_observed())

    def _checkout_observed(self) -> Steps[SocketInfo]:
        """``_get_socket`` between check-out started and checked out (or failed)."""
        from wireclient.monitoring import PoolEvent

        started = _monotonic()
        self._emit("connection_check_out_started", PoolEvent(self.address))
        try:
            sock = yield from self._checkout()
        except BaseException as exc:
            if exc in self._failures_published:  # refused: published by the refusing thread
                self._failures_published.discard(exc)
            else:
                self._publish_check_out_failed(exc, started)
            raise
        entry = self._entries.get(sock)
        if entry is not None:
            event = self._event_for(sock, entry, duration_ms=(_monotonic() - started) * 1000.0)
            self._emit("connection_checked_out", event)
        return sock

    def _publish_check_out_failed(self, exc: BaseException, started: float) -> None:
        """Check-out failed for ``exc``, a checkout begun at ``started``. A waiter the pool
        refuses has it published by the refusing thread (``_refuse_waiters_locked``), which
        notes the error in ``_failures_published`` so the waiter does not publish it again."""
        from wireclient.monitoring import PoolEvent

        if isinstance(exc, PoolTimeout):
            reason = "timeout"
        elif isinstance(exc, PoolClosedError):
            reason = "poolClosed"
        else:  # a failed connect or handshake, a paused pool, an interrupt
            reason = "connectionError"
        duration_ms = (_monotonic() - started) * 1000.0
        failed = PoolEvent(self.address, reason=reason, duration_ms=duration_ms)
        self._emit("connection_check_out_failed", failed)

    def _checkout(self) -> Steps[SocketInfo]:
        if self.pid != os.getpid():  # forked without the at-fork hook (e.g. a C extension)
            self._after_fork()
        lock = self._lock
        lock.acquire()
        try:
            if self._state:  # not ready: reopen after close(reopen=True), else refuse
                self._reopen_or_refuse_locked()
            sock = None if self._waiters else self._pop_idle_locked()
            if sock is not None:
                return sock
            if (
                self._waiters
                or self.open_count >= self.max_size
                or self._connecting >= self.max_connecting
            ):
                sock = yield from self._wait_locked()
                if sock is not None:
                    return sock
                if self._state:  # granted a connect slot, then the pool was paused or closed
                    if not (self._state == CLOSED and self._reopens):
                        self._connecting -= 1  # the grant counted this connect: give it back
                    self._reopen_or_refuse_locked()
            else:
                self._connecting += 1
            generation = self.generation
            self._last_driver_connection_id += 1
            driver_connection_id = self._last_driver_connection_id
            created_at = self._connection_created_locked(driver_connection_id, generation)
        finally:
            if self._orphans:
                self._collect_orphans_locked()
            lock.release()
        return (yield from self._open(generation, driver_connection_id, created_at))

    def _reopen_or_refuse_locked(self) -> None:
        """A checkout while the pool is not ready: reopen a pool closed with
        ``close(reopen=True)``; otherwise raise (paused: ``PoolClearedError``; closed for
        good: ``PoolClosedError``)."""
        if self._state == CLOSED and self._reopens:
            self._state = READY
            self._reopens = False
            if self.events is not None and self.events.pool is not None:
                self._publish_pool_opened()
            return
        raise self._refusal()

    def _refusal(self) -> BaseException:
        where = format_address(self.address)
        if self._state == PAUSED:
            return PoolClearedError(
                f"the pool to {where} was cleared after a network error and is paused until "
                "the monitor reaches the server again; the operation may be retried"
            )
        return PoolClosedError(f"the pool to {where} is closed: the server left the view")

    def _connection_created_locked(self, driver_connection_id: int, generation: int) -> float:
        """Publish connection created (a connect about to start); its start time, or 0.0
        when no one listens."""
        if self.events is None or self.events.pool is None:
            return 0.0
        from wireclient.monitoring import PoolEvent

        created = PoolEvent(
            self.address, generation=generation, driver_connection_id=driver_connection_id
        )
        self._emit("connection_created", created)
        return _monotonic()

    def _open(
        self, generation: int, driver_connection_id: int, created_at: float, idle: bool = False
    ) -> Steps[SocketInfo]:
        """Connect in a slot already counted in ``_connecting`` (connection created has been
        published); publish connection ready, or closed (reason ``error``) on failure. With
        ``idle`` (``fill_to_minimum``) the new socket is made available (handed to the
        first waiter, or idle) before its connect slot is freed, so no waiter starts a
        connect while an established socket is there for it (CMAP)."""
        try:
            sock = yield from self._connect()
        except BaseException as exc:
            if establishment_fault(exc) and generation == self.generation:
                # CMAP's order: the pool is cleared (and paused, if monitored), then the
                # failed connection is closed, then its checkout fails
                self.clear(pause=True)
            with self._lock:
                self._connecting -= 1
                if self.events is not None and self.events.pool is not None:
                    from wireclient.monitoring import PoolEvent

                    closed = PoolEvent(
                        self.address,
                        generation=generation,
                        reason="error",
                        driver_connection_id=driver_connection_id,
                    )
                    self._emit("connection_closed", closed)
                self._slot_freed_locked()
            raise
        thread = self._thread_ident() if self._thread_ident is not None else None
        with self._lock:
            self._connecting -= 1
            entry = self._entries[sock] = _Entry(generation, thread, driver_connection_id)
            if self.events is not None and self.events.pool is not None:
                duration_ms = (_monotonic() - created_at) * 1000.0
                self._emit(
                    "connection_ready", self._event_for(sock, entry, duration_ms=duration_ms)
                )
            if idle:
                self._checkin_locked(sock, lent=False)  # never lent: no checked-in event
            if self._waiters:
                self._slot_freed_locked()  # a connect slot came free
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
                reason, detail = "error", None
            elif entry.generation != self.generation:
                reason, detail = "stale", None
            elif self.max_idle_time is not None and idle_for > self.max_idle_time:
                reason, detail = "idle", None
            elif idle_for > self.check_interval and sock.is_dead():
                reason, detail = "error", "dead"
            else:
                return sock
            self._drop_locked(sock, reason, detail)
        return None

    def _wait_locked(self) -> Steps[Optional[SocketInfo]]:
        """Queue behind earlier waiters; return a socket handed over, or None when granted
        a slot (already counted in ``_connecting``). Raises PoolTimeout, or the pool's
        refusal when it is paused or closed meanwhile."""
        thread = self._thread_ident() if self._thread_ident is not None else None
        waiter = _Waiter(self._latch(), thread)
        self._waiters.append(waiter)
        timeout = self.wait_queue_timeout
        deadline = None if timeout is None else _monotonic() + timeout
        try:
            while waiter.sock is None and not waiter.granted:
                if waiter.refused is not None:
                    raise waiter.refused
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
                yield from self._sleep_locked(waiter, remaining)
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
        """Serve the head waiter from what is there now (an idle socket, room to connect, or
        a foreign gevent thread's idle socket to close); True if it was served."""
        waiter = self._waiters[0]
        sock = self._pop_idle_locked()
        if sock is None and self.open_count >= self.max_size and self._idle:
            # full of other OS threads' gevent sockets: make room
            self._drop_locked(self._idle.pop(0), "error", "foreign thread")
        if sock is None and (
            self.open_count >= self.max_size or self._connecting >= self.max_connecting
        ):
            return False
        self._waiters.popleft()
        if sock is None:
            self._connecting += 1
            waiter.granted = True
        waiter.sock = sock
        return True

    def _sleep_locked(self, waiter: _Waiter, remaining: Optional[float]) -> Steps[None]:
        """Wait for a hand-over (called and returning with the lock held, which is released
        while waiting), without blocking other greenlets. The latch is cleared with the lock
        held again, before the caller looks at what changed: a ``set()`` (always made with
        the lock held) is never lost."""
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
        self._lock.release()
        try:
            if self._cooperative_sleep is None:
                yield Wait(waiter.latch, remaining)
            else:  # gevent with socket patched, threading not: poll (a blocking pool only)
                pause = _GREENLET_POLL if remaining is None else min(remaining, _GREENLET_POLL)
                self._cooperative_sleep(pause)
        finally:
            self._lock.acquire()
            waiter.latch.clear()

    def _abandon_locked(self, waiter: _Waiter) -> None:
        """A waiter gave up (timeout, interrupt, refusal): pass on what it was given."""
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass
        if waiter.sock is not None:
            sock, waiter.sock = waiter.sock, None
            self._checkin_locked(sock, lent=False)  # never lent: no checked-in event
        elif waiter.granted:
            waiter.granted = False
            self._connecting -= 1
            self._slot_freed_locked()

    def fill_to_minimum(self) -> Steps[None]:
        """Open sockets until ``min_size`` are open (``minPoolSize``); they wait idle. Stops
        early when callers are waiting (they come first), when the pool is not ready, and
        when ``max_connecting`` connects are in progress (it never waits). Raises what
        connecting raises."""
        while True:
            with self._lock:
                if (
                    self.open_count >= self.min_size
                    or self._waiters
                    or self._state
                    or self._connecting >= self.max_connecting
                ):
                    return
                self._connecting += 1
                generation = self.generation
                self._last_driver_connection_id += 1
                driver_connection_id = self._last_driver_connection_id
                created_at = self._connection_created_locked(driver_connection_id, generation)
            yield from self._open(generation, driver_connection_id, created_at, idle=True)

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

    def _checkin_locked(self, sock: SocketInfo, lent: bool = True) -> None:
        """A socket comes back (checked in, if it was ``lent``): handed to a waiter or kept
        idle; closed if it is closed, of an older generation, or the pool is closed."""
        entry = self._entries.get(sock)
        if entry is None:  # not ours (a parent's socket after fork, or already dropped)
            sock.close()
            return
        if lent and self.events is not None and self.events.pool is not None:
            self._emit("connection_checked_in", self._event_for(sock, entry))
        if sock.closed or entry.generation != self.generation:
            if sock.closed:
                reason = "error"
            else:
                reason = "poolClosed" if self._state == CLOSED else "stale"
            self._drop_locked(sock, reason)
            self._slot_freed_locked()
            return
        entry.last_checkin = _monotonic()
        for waiter in self._waiters:
            if waiter.thread_ident == entry.thread_ident:
                self._waiters.remove(waiter)
                waiter.sock = sock
                waiter.latch.set()
                return
        self._idle.append(sock)
        if self._waiters:  # none of them may use this OS thread's gevent socket
            self._waiters[0].latch.set()

    def _collect_orphans_locked(self) -> None:
        while self._orphans:
            self._checkin_locked(self._orphans.pop())

    def discard_socket(self, sock: SocketInfo) -> None:
        """Close ``sock`` (broken or abandoned: checked in, then closed) and free its slot."""
        with self._lock:
            if self.events is not None and self.events.pool is not None:
                entry = self._entries.get(sock)
                if entry is not None:
                    self._emit("connection_checked_in", self._event_for(sock, entry))
            self._drop_locked(sock, "error", None if sock.closed else "discarded")
            self._slot_freed_locked()

    def _drop_locked(self, sock: SocketInfo, reason: str, detail: Optional[str] = None) -> None:
        """Close ``sock`` and forget it (the caller grants the freed slot). ``reason`` is
        CMAP's (``stale``, ``idle``, ``error``, ``poolClosed``); ``detail`` says more where
        wireclient knows more (``dead``: the server closed it while idle; ``discarded``;
        ``foreign thread``)."""
        sock.close()
        entry = self._entries.pop(sock, None)
        if entry is not None and self.events is not None and self.events.pool is not None:
            event = self._event_for(sock, entry, reason=reason, detail=detail)
            self._emit("connection_closed", event)

    # -- events (only when a pool listener exists) ----------------------------------------

    def _event_for(
        self,
        sock: SocketInfo,
        entry: _Entry,
        reason: Optional[str] = None,
        detail: Optional[str] = None,
        duration_ms: Optional[float] = None,
    ) -> PoolEvent:
        """The event about one of the pool's sockets."""
        from wireclient.monitoring import PoolEvent

        return PoolEvent(
            self.address,
            sock.connection_id,
            getattr(sock, "local_address", None),
            entry.generation,
            reason,
            driver_connection_id=entry.driver_connection_id,
            duration_ms=duration_ms,
            detail=detail,
        )

    def _emit(self, method: str, event: PoolEvent) -> None:
        """Publish a pool event. Most run with the pool's lock held: listeners must not run
        operations (they would wait for this very lock)."""
        assert self.events is not None
        self.events.publish(self.events.pool, method, event)

    def _publish_pool_opened(self) -> None:
        """Pool created, then pool ready: a pool is ready from its construction (and from
        its reopening after ``close(reopen=True)``)."""
        from wireclient.monitoring import PoolEvent

        options = {
            "maxPoolSize": self.max_size,
            "minPoolSize": self.min_size,
            "maxConnecting": self.max_connecting,
            "waitQueueTimeoutMS": _to_ms(self.wait_queue_timeout),
            "maxIdleTimeMS": _to_ms(self.max_idle_time),
        }
        self._emit("pool_created", PoolEvent(self.address, options=options))
        self._emit("pool_ready", PoolEvent(self.address))

    def _slot_freed_locked(self) -> None:
        """Room came free (a socket closed, a connect ended): grant it to the first waiters,
        which will connect, as long as there is room and fewer than ``max_connecting``
        connects are in progress."""
        while (
            self._waiters
            and self.open_count < self.max_size
            and self._connecting < self.max_connecting
        ):
            waiter = self._waiters.popleft()
            self._connecting += 1
            waiter.granted = True
            waiter.latch.set()

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

    def driver_connection_id_of(self, sock: SocketInfo) -> Optional[int]:
        """The pool's number for ``sock`` (None if the pool no longer knows it)."""
        entry = self._entries.get(sock)
        return entry.driver_connection_id if entry is not None else None

    # -- whole-pool operations ----------------------------------------------------------

    def idle_count(self) -> int:
        if self._orphans and self._lock.acquire(False):
            try:
                self._collect_orphans_locked()
            finally:
                self._lock.release()
        return len(self._idle)

    def clear(self, reason: str = "stale", pause: bool = False) -> int:
        """Start a new generation: idle sockets are closed now (their closed events carry
        ``reason``), lent ones when they come back. Returns the new generation.

        ``pause=True`` (the error handler, marking the server Unknown) also pauses a
        monitored pool: its waiters fail now with ``PoolClearedError`` and so do checkouts
        until ``ready()``. An unmonitored pool is not paused: its waiters keep their place.
        Pool cleared is published unless the pool was already paused (CMAP: a second clear
        of a paused pool changes nothing anyone could see), before the closed events."""
        with self._lock:
            self.generation += 1
            was_ready = self._state == READY
            if pause and self.monitored and was_ready:
                self._state = PAUSED
            if was_ready and self.events is not None and self.events.pool is not None:
                from wireclient.monitoring import PoolEvent

                self._emit("pool_cleared", PoolEvent(self.address, generation=self.generation))
            idle, self._idle = self._idle, []
            for sock in idle:
                self._drop_locked(sock, reason)
            if self._state:
                self._refuse_waiters_locked()
            else:
                self._slot_freed_locked()
            return self.generation

    reset = clear

    def outdate_all(self, reason: str = "stale") -> int:
        """A clear that is not for a fault (a change of credentials): no request keeps a
        socket it outdates, alive or not; each is replaced before its next use (``close()``
        does the same). Returns the new generation."""
        self._request_floor = self.clear(reason)
        return self._request_floor

    def _refuse_waiters_locked(self) -> None:
        """The pool was paused or closed: every waiter fails now (CMAP: at once, not at its
        timeout), each with its own error."""
        observed = self.events is not None and self.events.pool is not None
        while self._waiters:
            waiter = self._waiters.popleft()
            refusal = waiter.refused = self._refusal()
            if observed:  # published here, in the clearing thread's order of events (CMAP)
                self._publish_check_out_failed(refusal, waiter.since)
                self._failures_published.add(refusal)
            waiter.latch.set()

    def ready(self) -> None:
        """The monitor reached the server: a paused pool serves checkouts again (pool
        ready). Nothing happens to a ready or a closed pool."""
        with self._lock:
            if self._state != PAUSED:
                return
            self._state = READY
            if self.events is not None and self.events.pool is not None:
                from wireclient.monitoring import PoolEvent

                self._emit("pool_ready", PoolEvent(self.address))

    def close(self, reopen: bool = False) -> None:
        """Close the pool: its idle sockets now, every lent one when it comes back (closed
        events with reason ``poolClosed``), then pool closed. Checkouts raise
        ``PoolClosedError``, waiters included, unless ``reopen``: then the next checkout
        reopens the pool (pool created, pool ready) and waiters keep their place. That is
        a ``Connection``'s ``close()``: it reconnects on its next operation."""
        with self._lock:
            self.generation += 1  # always, as clear() of a paused pool: one rule for both
            self._request_floor = self.generation  # no request keeps a socket it outdates
            if self._state == CLOSED:  # closed already: nothing to close, nothing to say
                self._reopens = self._reopens and reopen
                return
            self._state = CLOSED
            self._reopens = reopen
            idle, self._idle = self._idle, []
            for sock in idle:
                self._drop_locked(sock, "poolClosed")
            if reopen:
                self._slot_freed_locked()  # waiters connect (and reopen the pool)
            else:
                self._refuse_waiters_locked()
            if self.events is not None and self.events.pool is not None:
                from wireclient.monitoring import PoolEvent

                self._emit("pool_closed", PoolEvent(self.address, generation=self.generation))

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
            "state": self.state,
            "open": self.open_count,
            "idle": len(self._idle),
            "connecting": self._connecting,
            "waiting": len(self._waiters),
            "max_size": self.max_size,
            "generation": self.generation,
        }


def _to_ms(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else seconds * 1000.0
