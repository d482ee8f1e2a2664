"""The replica-set monitor: a background task that keeps the view fresh, written once as steps.

Theory of operation
-------------------
A monitor owns no state of the set itself. It is handed a ``Topology`` (the mutable cell
holding the current immutable ``TopologyView``) and a ``check(address)`` step that sends
``hello`` to one member and returns ``(reply_dict, round_trip_seconds)``, raising
``ConnectionFailure`` when the member cannot be reached. The seam keeps this module free of
sockets: tests pass a step backed by mockupdb servers, ``ReplicaSetSelector`` passes its
``Checker``'s (one dedicated monitoring socket per member).

One *round* checks every member of the current view once, the primary first: each answer
becomes a ``ServerDescription`` that is applied to the then-current view
(``Topology.apply``), so members learned during the round (discovery from one seed) are
checked in the same round, and members removed are not. After a round the monitor waits
``heartbeat_frequency`` seconds (``heartbeatFrequencyMS``, default 10 s), or until
``request_check()`` wakes it, which an operation does after a network error or a "not
primary" reply. Wake-ups are throttled to one round per ``min_heartbeat_frequency``
(0.5 s), so a storm of errors does not become a storm of checks.

``wait_for_check(timeout)`` lets a caller wait for the end of a round that *starts after*
the call (each round takes the pending "round done" latch and installs a fresh one), which
is what server selection needs: "no primary now; check, then look again".

One loop, three ways to run it
    The loop (``_run``), the round (``_round``), ``wait_for_check`` and ``refresh`` (one
    round in the caller: discovery) are steps (``transport/steps.py``): every wait is
    ``yield Wait(latch, timeout)`` on a latch made by the flavour's driver, every check
    ``yield from check(address)``. ``BaseMonitor`` holds all of it; its flavours only say
    what runs the loop:

    - ``Monitor`` (the blocking client): ``"thread"``, a daemon ``threading.Thread`` running
      ``blocking.run(self._run())`` with ``blocking.latch()`` s (``threading.Event``); or
      ``"gevent"``, a greenlet from ``gevent.spawn`` doing the same with
      ``gevent.event.Event`` s. A background greenlet runs only when something switches to
      the gevent hub, i.e. when the application's blocking calls go through gevent. So
      ``use_greenlets=True`` chooses ``"gevent"`` when gevent has patched ``socket``
      (``monkey.patch_socket()`` or ``patch_all()``), and a thread otherwise: a raw
      greenlet with no hub would never be switched to, while a thread with real sockets
      works whatever the application does with greenlets. Under ``patch_all()`` the thread
      flavour is a greenlet too, since ``threading`` is patched. ``wait_for_check`` and
      ``refresh`` block the caller.
    - ``AsyncMonitor`` (the asyncio client): ``"asyncio"``, ONE ``asyncio.Task`` per
      client, created on the running loop when the monitor starts, running
      ``asynchronous.run(self._run())`` with ``asynchronous.latch()`` es;
      ``wait_for_check`` and ``refresh`` are coroutines, and the selector awaits the same
      steps from its own (``yield from monitor._wait_for_check(...)``).

Lifetime
    The monitor holds only weak references to the ``Topology`` and, when ``check`` is a
    bound method, to its object. When either is collected (the owning connection was
    dropped) the monitor exits by itself: a weakref callback wakes it at once. Between
    rounds it holds no strong reference at all; during a round it holds the topology like
    any caller does. ``close()`` stops it, wakes anyone in ``wait_for_check``, and ends
    the task: a thread or greenlet is joined (unless ``close`` is called from it); an
    asyncio Task cannot be joined by a plain call, so it is cancelled (a check in progress
    closes its socket, as any cancelled step does), and ``_wait_stopped`` is the step that
    waits for it to end (what ``await conn.close()`` runs).

Fork
    In a forked child the monitor thread does not exist. ``os.register_at_fork`` resets every
    live monitor in the child (new lock and latches) and starts a new thread; ``ensure_running``
    (called by the connection on each operation) does the same from a pid check, in case the
    child was made without ``os.fork``'s hooks. A gevent-flavoured monitor's greenlet survives
    ``fork`` with the hub, so it is restarted only if it is dead. An asyncio monitor is
    restarted by ``ensure_running``, on the loop running then (a fork hook runs outside any
    loop).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Set, Tuple

from wireclient.engine.topology_cell import Topology
from wireclient.errors import ConfigurationError, ConnectionFailure, WireClientError
from wireclient.pooling import forking
from wireclient.rules.uri import Address, format_address
from wireclient.sdam.read_preferences import DEFAULT_HEARTBEAT_FREQUENCY
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.topology import ServerDescription, TopologyView
from wireclient.transport.flavours import Asynchronous, Blocking, operation
from wireclient.transport.steps import Latch, Steps, Wait, done

MIN_HEARTBEAT_FREQUENCY = 0.5
#: How long ``close()`` waits for a thread or greenlet to end (a check in progress ends
#: first), and ``_wait_stopped`` for an asyncio Task.
CLOSE_TIMEOUT = 10.0

CheckResult = Tuple[Mapping[str, Any], float]
#: ``check(address)``: a step returning ``(hello reply, round-trip seconds)``.
CheckFunction = Callable[[Address], Steps[CheckResult]]


class _Task(Protocol):
    def join(self, timeout: Optional[float]) -> None: ...

    def cancel(self) -> None: ...

    def is_alive(self) -> bool: ...

    def is_current(self) -> bool: ...


class _ThreadTask:
    def __init__(self, steps: Steps[None], name: str) -> None:
        from wireclient.transport.blocking import run

        self._thread = threading.Thread(target=run, args=(steps,), name=name, daemon=True)
        self._thread.start()

    def join(self, timeout: Optional[float]) -> None:
        self._thread.join(timeout)

    def cancel(self) -> None:
        """Nothing: a thread ends at its next wait (``close`` set its latches)."""

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread


class _GeventTask:
    def __init__(self, steps: Steps[None], name: str) -> None:
        import gevent

        from wireclient.transport.blocking import run

        self._greenlet = gevent.spawn(run, steps)
        self._greenlet.name = name

    def join(self, timeout: Optional[float]) -> None:
        self._greenlet.join(timeout)

    def cancel(self) -> None:
        """Nothing: the greenlet ends at its next wait (``close`` set its latches)."""

    def is_alive(self) -> bool:
        return not self._greenlet.dead

    def is_current(self) -> bool:
        import gevent

        return bool(gevent.getcurrent() is self._greenlet)


# asyncio keeps only weak references to its Tasks: the running monitors' are kept here
# until they end (a pending Task collected with its monitor would be "destroyed pending").
_async_tasks: Set[Any] = set()


class _AsyncioTask:
    """One asyncio Task on the running loop (``asyncio`` loads only for this flavour)."""

    def __init__(self, steps: Steps[None], name: str) -> None:
        import asyncio

        from wireclient.transport.asynchronous import run

        self._loop = asyncio.get_running_loop()  # RuntimeError outside a loop: a bug
        self._thread = threading.get_ident()
        self._task = self._loop.create_task(run(steps), name=name)
        _async_tasks.add(self._task)
        self._task.add_done_callback(_async_tasks.discard)

    def join(self, timeout: Optional[float]) -> None:
        """Nothing: a Task is not joined by a plain call (``_wait_stopped`` awaits it)."""

    def cancel(self) -> None:
        if self.in_loop_thread():
            self._task.cancel()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)

    def is_alive(self) -> bool:
        return not self._task.done()

    def is_current(self) -> bool:
        import asyncio

        if not self.in_loop_thread():
            return False
        try:
            return asyncio.current_task() is self._task
        except RuntimeError:  # no loop running in this thread
            return False

    def when_done(self, function: Callable[[], None]) -> None:
        """Call ``function()`` once the Task is done, even if cancelled before it ran."""
        self._task.add_done_callback(lambda _task: function())

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread

    def call_in_loop(self, function: Callable[[], None]) -> None:
        """``function()`` now in the loop's thread, else soon in it (asyncio latches are
        set from the loop's thread only)."""
        if self.in_loop_thread():
            function()
        elif not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(function)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                pass


_FLAVOURS = ("thread", "gevent", "asyncio")


def _gevent_patched_socket() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def choose_flavour(use_greenlets: bool, flavour: Optional[str] = None) -> str:
    """``"thread"`` or ``"gevent"`` (see the module comment for why); ``"asyncio"`` only
    when asked for (``AsyncMonitor``)."""
    if flavour is not None:
        if flavour not in _FLAVOURS:
            raise ConfigurationError(
                f"monitor flavour must be 'thread', 'gevent' or 'asyncio', not {flavour!r}"
            )
        if flavour == "gevent":
            try:
                import gevent  # noqa: F401
            except ImportError as exc:
                raise ConfigurationError("the gevent monitor needs the 'gevent' package") from exc
        return flavour
    if not use_greenlets:
        return "thread"
    try:
        import greenlet  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "use_greenlets=True needs the 'greenlet' package (pip install wireclient[greenlet])"
        ) from exc
    return "gevent" if _gevent_patched_socket() else "thread"


def _latch_maker(flavour: str) -> Callable[[], Latch]:
    if flavour == "gevent":
        import gevent.event

        return gevent.event.Event  # type: ignore[no-any-return]
    if flavour == "asyncio":
        from wireclient.transport import asynchronous

        return asynchronous.latch
    from wireclient.transport import blocking

    return blocking.latch


def _task_maker(flavour: str) -> Callable[[Steps[None], str], _Task]:
    if flavour == "gevent":
        return _GeventTask
    if flavour == "asyncio":
        return _AsyncioTask
    return _ThreadTask


_live_monitors: weakref.WeakSet[BaseMonitor] = weakref.WeakSet()


class BaseMonitor:
    """Refreshes ``topology`` in the background by running ``check`` on every member (the
    module notes tell how; ``Monitor`` and ``AsyncMonitor`` are its two flavours).

    ``start()`` it; ``request_check()`` wakes it early; ``wait_for_check(timeout)`` waits
    for a fresh round; ``close()`` stops it. ``check`` must not hold a strong reference to
    ``topology`` (pass a bound method of the owner, which is held weakly, or a function
    over other objects).
    """

    def __init__(
        self,
        topology: Topology,
        check: CheckFunction,
        heartbeat_frequency: float = DEFAULT_HEARTBEAT_FREQUENCY,
        min_heartbeat_frequency: float = MIN_HEARTBEAT_FREQUENCY,
        use_greenlets: bool = False,
        flavour: Optional[str] = None,
        name: str = "wireclient-monitor",
    ) -> None:
        if heartbeat_frequency <= 0:
            raise ConfigurationError("heartbeatFrequencyMS must be positive")
        self.heartbeat_frequency = float(heartbeat_frequency)
        self.min_heartbeat_frequency = min(float(min_heartbeat_frequency), self.heartbeat_frequency)
        self.flavour = self._choose_flavour(use_greenlets, flavour)
        self.name = name
        self._latch = _latch_maker(self.flavour)
        self._spawn = _task_maker(self.flavour)
        self._topology_ref = weakref.ref(topology, self._owner_gone)
        self._check_ref: Callable[[], Optional[CheckFunction]]
        if hasattr(check, "__self__") and hasattr(check, "__func__"):
            self._check_ref = weakref.WeakMethod(check, self._owner_gone)
        else:
            self._check_ref = lambda: check
        self._closed = False
        self._started = False
        self._task: Optional[_Task] = None
        self._rounds = 0
        self._reset_primitives()

    def _choose_flavour(self, use_greenlets: bool, flavour: Optional[str]) -> str:
        raise NotImplementedError  # the flavour class's

    def _reset_primitives(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._wake = self._latch()
        #: How many times ``request_check`` was called (for tests and diagnostics: an
        #: operation's error that should, or should not, have asked for a check).
        self.checks_requested = 0
        self._closing = self._latch()
        self._stopped = self._latch()  # set when the task's loop has ended
        self._next_round_done = self._latch()
        # the latch of the round in progress (None between rounds): a caller of
        # wait_for_check that came before that round began waits on it, so close() sets it
        self._round_done: Optional[Latch] = None

    # -- public ----------------------------------------------------------------------------

    def start(self) -> BaseMonitor:
        """Start the background task (once); returns self. An asyncio monitor starts on the
        running loop."""
        with self._lock:
            if self._closed:
                raise ConfigurationError("this monitor was closed")
            if self._started:
                return self
            self._started = True
            self._task = self._spawn_task()
        _live_monitors.add(self)
        forking.reset_in_child(self)
        return self

    def request_check(self) -> None:
        """Wake the monitor for a round now (throttled to one per min_heartbeat_frequency)."""
        self.checks_requested += 1
        self.ensure_running()
        self._wake.set()

    def _wait_for_check(self, timeout: Optional[float]) -> Steps[bool]:
        """Ask for a round and wait until a round that starts after this call has ended.

        Returns False on timeout, or at once if the monitor is closed.
        """
        self.ensure_running()
        if self._closed:
            return False
        with self._lock:
            round_done = self._next_round_done
        self._wake.set()
        woken = yield Wait(round_done, timeout)
        return bool(woken) and not self._closed

    wait_for_check = operation(_wait_for_check)

    def _refresh(self) -> Steps[None]:
        """Run one round now, in the caller (discovery before ``start``)."""
        if not self._closed:
            yield from self._round()

    refresh = operation(_refresh)

    def ensure_running(self) -> None:
        """Restart the monitor if this process is a fork of the one that started it (or,
        for an asyncio monitor reset by a fork, start its Task on the running loop)."""
        if self._pid != os.getpid():
            self._after_fork()
        if self._task is None and self._started and not self._closed:
            with self._lock:
                if self._task is None:
                    self._task = self._spawn_task()

    def close(self, timeout: Optional[float] = CLOSE_TIMEOUT) -> None:
        """Stop the monitor: a thread or greenlet is joined (up to ``timeout``), an asyncio
        Task is cancelled (``_wait_stopped`` awaits its end). Idempotent."""
        self._closed = True
        with self._lock:
            task = self._task
            round_done = self._round_done
        self._signal(self._closing, self._wake, self._next_round_done, round_done)
        _live_monitors.discard(self)
        forking.forget(self)
        if task is not None and not task.is_current():
            task.cancel()
            task.join(timeout)

    def _wait_stopped(self, timeout: Optional[float] = CLOSE_TIMEOUT) -> Steps[bool]:
        """After ``close()``: wait until the task has ended (the asyncio flavour's join);
        whether it has."""
        task = self._task
        if task is None or task.is_current() or not task.is_alive():
            return True
        yield Wait(self._stopped, timeout)
        return not task.is_alive()

    wait_stopped = operation(_wait_stopped)

    @property
    def closed(self) -> bool:
        return self._closed

    def is_alive(self) -> bool:
        task = self._task
        return task is not None and task.is_alive()

    @property
    def rounds(self) -> int:
        """How many rounds have completed (for tests and diagnostics)."""
        return self._rounds

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self.is_alive() else "idle")
        return f"<{type(self).__name__} {self.name} {self.flavour} {state} rounds={self._rounds}>"

    # -- the background task ---------------------------------------------------------------

    def _spawn_task(self) -> _Task:
        task = self._spawn(self._run(), self.name)
        if isinstance(task, _AsyncioTask):  # a Task cancelled before it ran runs no finally
            task.when_done(self._stopped.set)
        return task

    def _signal(self, *latches: Optional[Latch]) -> None:
        """Set ``latches``: here, or in the loop's thread for an asyncio monitor called
        from another thread (a weakref callback run by another thread's collection)."""

        def set_all() -> None:
            for latch in latches:
                if latch is not None:
                    latch.set()

        task = self._task
        if isinstance(task, _AsyncioTask):
            task.call_in_loop(set_all)
        else:
            set_all()

    def _owner_gone(self, _ref: object) -> None:
        # A weakref callback: may run in any thread, during garbage collection. No join here.
        self._closed = True
        self._signal(self._closing, self._wake, self._next_round_done, self._round_done)

    def _run(self) -> Steps[None]:
        """The loop: a round, then a wait for the heartbeat or a wake-up (throttled)."""
        try:
            while not self._closed:
                started = time.monotonic()
                if not (yield from self._round()):
                    break
                woken = yield Wait(self._wake, self.heartbeat_frequency)
                self._wake.clear()
                if woken and not self._closed:
                    pause = self.min_heartbeat_frequency - (time.monotonic() - started)
                    if pause > 0:
                        yield Wait(self._closing, pause)
        finally:
            self._closed = True
            with self._lock:
                next_round_done = self._next_round_done
            next_round_done.set()
            _live_monitors.discard(self)
            forking.forget(self)
            self._stopped.set()

    def _round(self) -> Steps[bool]:
        """Check every member once. False when the owner is gone."""
        with self._lock:
            round_done, self._next_round_done = self._next_round_done, self._latch()
            self._round_done = round_done
        try:
            topology = self._topology_ref()
            if topology is None:
                return False
            checked: Dict[Address, bool] = {}
            while not self._closed:
                view = topology.view
                pending = [a for a in view.members if a not in checked]
                if not pending:
                    break
                address = _most_urgent(view, pending)
                checked[address] = True
                check = self._check_ref()
                if check is None:
                    return False
                description = yield from _describe(check, address)
                del check
                if self._closed:
                    break
                topology.apply(description)
            del topology
            self._rounds += 1
            return not self._closed
        finally:
            with self._lock:
                self._round_done = None
            round_done.set()

    def _after_fork(self) -> None:
        if self._pid == os.getpid():
            return
        task = self._task
        keep = self.flavour == "gevent" and task is not None and task.is_alive()
        if not keep:
            self._reset_primitives()
            self._task = None
        else:
            self._pid = os.getpid()
            self._lock = threading.Lock()
        topology = self._topology_ref()
        if topology is not None:
            topology.reset_after_fork()
        if self._started and not self._closed and not keep and self.flavour != "asyncio":
            self._task = self._spawn_task()


class Monitor(BaseMonitor, Blocking):
    """The blocking client's monitor: a thread, or a gevent greenlet (``flavour``, chosen
    from ``use_greenlets`` when not given: see the module notes). ``wait_for_check`` and
    ``refresh`` block the caller.

    ``Monitor(topology, check, heartbeat_frequency=10.0, use_greenlets=False).start()``.
    """

    def _choose_flavour(self, use_greenlets: bool, flavour: Optional[str]) -> str:
        chosen = choose_flavour(use_greenlets, flavour)
        if chosen == "asyncio":
            raise ConfigurationError("an asyncio monitor is an AsyncMonitor")
        return chosen

    def _wait_stopped(self, timeout: Optional[float] = CLOSE_TIMEOUT) -> Steps[bool]:
        """Nothing to wait for: ``close()`` joined the thread or greenlet already."""
        return done(not self.is_alive())


class AsyncMonitor(BaseMonitor, Asynchronous):
    """The asyncio client's monitor: one asyncio Task, created on the running loop by
    ``start()``. ``await monitor.wait_for_check(timeout)``, ``await monitor.refresh()``."""

    def _choose_flavour(self, use_greenlets: bool, flavour: Optional[str]) -> str:
        if flavour not in (None, "asyncio"):
            raise ConfigurationError(f"an AsyncMonitor runs as an asyncio Task, not {flavour!r}")
        if use_greenlets:
            raise ConfigurationError("use_greenlets applies to the blocking client only")
        return "asyncio"


def _most_urgent(view: TopologyView, pending: List[Address]) -> Address:
    """The primary first, then members someone names as primary, then the rest in order."""
    claimed = {sd.primary for sd in view.members.values() if sd.primary is not None}

    def rank(address: Address) -> int:
        sd = view.members[address]
        if sd.server_type is ServerType.PRIMARY:
            return 0
        return 1 if address in claimed else 2

    return min(pending, key=rank)


def _describe(check: CheckFunction, address: Address) -> Steps[ServerDescription]:
    try:
        reply, rtt = yield from check(address)
        return ServerDescription.from_reply(address, reply, rtt)  # ProtocolError: malformed
    except (ConnectionFailure, WireClientError, OSError) as exc:
        return ServerDescription.unknown(address, f"{format_address(address)}: {exc}")
    except Exception as exc:  # a bug in check() must not kill the monitor
        import logging  # only here: importing logging costs ~10 ms, and this is a bug path

        logging.getLogger("wireclient.engine.monitor").exception(
            "monitor check of %s failed", format_address(address)
        )
        return ServerDescription.unknown(
            address, f"{format_address(address)}: {type(exc).__name__}: {exc}"
        )


__all__ = [
    "AsyncMonitor",
    "BaseMonitor",
    "CheckFunction",
    "DEFAULT_HEARTBEAT_FREQUENCY",
    "Monitor",
    "choose_flavour",
]
