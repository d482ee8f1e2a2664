"""The replica-set monitor: a background thread (or gevent greenlet) that keeps the view fresh.

Theory of operation
-------------------
A ``Monitor`` owns no state of the set itself. It is handed a ``Topology`` (the mutable cell
holding the current immutable ``TopologyView``) and a ``check(address)`` function that sends
``hello`` to one member and returns ``(reply_dict, round_trip_seconds)``, raising
``ConnectionFailure`` when the member cannot be reached. The seam keeps this module free of
sockets: tests pass a function backed by mockupdb servers, ``ReplicaSetConnection`` passes
one backed by a dedicated monitoring socket per member.

One *round* checks every member of the current view once, the primary first: each answer
becomes a ``ServerDescription`` that is applied to the then-current view
(``Topology.apply``), so members learned during the round (discovery from one seed) are
checked in the same round, and members removed are not. After a round the monitor sleeps
``heartbeat_frequency`` seconds (``heartbeatFrequencyMS``, default 10 s), or until
``request_check()`` wakes it, which an operation does after a network error or a "not
primary" reply. Wake-ups are throttled to one round per ``min_heartbeat_frequency``
(0.5 s), so a storm of errors does not become a storm of checks.

``wait_for_check(timeout)`` lets a caller wait for the end of a round that *starts after*
the call (each round takes the pending "round done" event and installs a fresh one), which
is what server selection needs: "no primary now; check, then look again".

Lifetime
    The monitor holds only weak references to the ``Topology`` and, when ``check`` is a
    bound method, to its object. When either is collected (the owning
    ``ReplicaSetConnection`` was dropped) the monitor exits by itself: a weakref callback
    wakes it at once. Between rounds it holds no strong reference at all; during a round it
    holds the topology like any caller does. ``close()`` stops it and joins it (unless
    called from the monitor itself), and wakes anyone in ``wait_for_check``.

Flavour (chosen once, at construction)
    ``"thread"``: a daemon ``threading.Thread`` and ``threading.Event`` s. ``"gevent"``: a
    greenlet from ``gevent.spawn`` and ``gevent.event.Event`` s. A background greenlet runs
    only when something switches to the gevent hub, i.e. when the application's blocking
    calls go through gevent. So ``use_greenlets=True`` chooses ``"gevent"`` when gevent has
    patched ``socket`` (``monkey.patch_socket()`` or ``patch_all()``), and a thread otherwise:
    a raw greenlet with no hub would never be switched to, while a thread with real
    sockets works whatever the application does with greenlets. Under ``patch_all()`` the
    thread flavour is a greenlet too, since ``threading`` is patched.

Fork
    In a forked child the monitor thread does not exist. ``os.register_at_fork`` resets every
    live monitor in the child (new lock and events) and starts a new thread; ``ensure_running``
    (called by the connection on each operation) does the same from a pid check, in case the
    child was made without ``os.fork``'s hooks. A gevent-flavoured monitor's greenlet survives
    ``fork`` with the hub, so it is restarted only if it is dead.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

from wireclient.engine.topology_cell import Topology
from wireclient.errors import ConfigurationError, ConnectionFailure, WireClientError
from wireclient.pooling import forking
from wireclient.rules.uri import Address, format_address
from wireclient.sdam.read_preferences import DEFAULT_HEARTBEAT_FREQUENCY
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.topology import ServerDescription, TopologyView

MIN_HEARTBEAT_FREQUENCY = 0.5

CheckResult = Tuple[Mapping[str, Any], float]
CheckFunction = Callable[[Address], CheckResult]


class _Event(Protocol):
    def set(self) -> None: ...

    def clear(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: Optional[float] = None) -> bool: ...


class _Task(Protocol):
    def join(self, timeout: Optional[float]) -> None: ...

    def is_alive(self) -> bool: ...

    def is_current(self) -> bool: ...


class _ThreadTask:
    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def join(self, timeout: Optional[float]) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread


class _GeventTask:
    def __init__(self, target: Callable[[], None], name: str) -> None:
        import gevent

        self._greenlet = gevent.spawn(target)
        self._greenlet.name = name

    def join(self, timeout: Optional[float]) -> None:
        self._greenlet.join(timeout)

    def is_alive(self) -> bool:
        return not self._greenlet.dead

    def is_current(self) -> bool:
        import gevent

        return bool(gevent.getcurrent() is self._greenlet)


class _Flavour:
    """How the monitor runs: a thread or a gevent greenlet, and the matching Event type."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "gevent":
            import gevent.event

            self._event_type: Callable[[], _Event] = gevent.event.Event
            self._task_type: Callable[[Callable[[], None], str], _Task] = _GeventTask
        else:
            self._event_type = threading.Event
            self._task_type = _ThreadTask

    def event(self) -> _Event:
        return self._event_type()

    def spawn(self, target: Callable[[], None], name: str) -> _Task:
        return self._task_type(target, name)


def _gevent_patched_socket() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def choose_flavour(use_greenlets: bool, flavour: Optional[str] = None) -> str:
    """``"thread"`` or ``"gevent"`` (see the module comment for why)."""
    if flavour is not None:
        if flavour not in ("thread", "gevent"):
            raise ConfigurationError(
                f"monitor flavour must be 'thread' or 'gevent', not {flavour!r}"
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


_live_monitors: weakref.WeakSet[Monitor] = weakref.WeakSet()


class Monitor:
    """Refreshes ``topology`` in the background by calling ``check`` on every member.

    ``Monitor(topology, check, heartbeat_frequency=10.0, use_greenlets=False).start()``;
    ``request_check()`` wakes it early; ``wait_for_check(timeout)`` waits for a fresh round;
    ``close()`` stops it. ``check`` must not hold a strong reference to ``topology`` (pass a
    bound method of the owner, which is held weakly, or a function over other objects).
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
        self.flavour = choose_flavour(use_greenlets, flavour)
        self.name = name
        self._flavour = _Flavour(self.flavour)
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

    def _reset_primitives(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._wake = self._flavour.event()
        #: How many times ``request_check`` was called (for tests and diagnostics: an
        #: operation's error that should, or should not, have asked for a check).
        self.checks_requested = 0
        self._closing = self._flavour.event()
        self._next_round_done = self._flavour.event()
        # the event of the round in progress (None between rounds): a caller of
        # wait_for_check that came before that round began waits on it, so close() sets it
        self._round_done: Optional[Any] = None

    # -- public ----------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Start the background task (once); returns self."""
        with self._lock:
            if self._closed:
                raise ConfigurationError("this monitor was closed")
            if self._started:
                return self
            self._started = True
            self._task = self._flavour.spawn(self._run, self.name)
        _live_monitors.add(self)
        forking.reset_in_child(self)
        return self

    def request_check(self) -> None:
        """Wake the monitor for a round now (throttled to one per min_heartbeat_frequency)."""
        self.checks_requested += 1
        self.ensure_running()
        self._wake.set()

    def wait_for_check(self, timeout: Optional[float]) -> bool:
        """Ask for a round and wait until a round that starts after this call has ended.

        Returns False on timeout, or at once if the monitor is closed.
        """
        self.ensure_running()
        if self._closed:
            return False
        with self._lock:
            done = self._next_round_done
        self._wake.set()
        return done.wait(timeout) and not self._closed

    def refresh(self) -> None:
        """Run one round now, in the calling thread (discovery before ``start``)."""
        if not self._closed:
            self._round()

    def ensure_running(self) -> None:
        """Restart the monitor if this process is a fork of the one that started it."""
        if self._pid != os.getpid():
            self._after_fork()

    def close(self, timeout: Optional[float] = 10.0) -> None:
        """Stop the monitor and wait (up to ``timeout``) for it to end. Idempotent."""
        self._closed = True
        self._closing.set()
        self._wake.set()
        with self._lock:
            self._next_round_done.set()  # release waiters, of the next round and of this one
            if self._round_done is not None:
                self._round_done.set()
            task = self._task
        _live_monitors.discard(self)
        forking.forget(self)
        if task is not None and not task.is_current():
            task.join(timeout)

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
        return f"<Monitor {self.name} {self.flavour} {state} rounds={self._rounds}>"

    # -- the background task ---------------------------------------------------------------

    def _owner_gone(self, _ref: object) -> None:
        # A weakref callback: may run in any thread, during garbage collection. No join here.
        self._closed = True
        self._closing.set()
        self._wake.set()
        self._next_round_done.set()
        done = self._round_done
        if done is not None:
            done.set()

    def _run(self) -> None:
        try:
            while not self._closed:
                started = time.monotonic()
                if not self._round():
                    break
                woken = self._wake.wait(self.heartbeat_frequency)
                self._wake.clear()
                if woken and not self._closed:
                    pause = self.min_heartbeat_frequency - (time.monotonic() - started)
                    if pause > 0:
                        self._closing.wait(pause)
        finally:
            self._closed = True
            with self._lock:
                self._next_round_done.set()
            _live_monitors.discard(self)
            forking.forget(self)
        forking.forget(self)

    def _round(self) -> bool:
        """Check every member once. False when the owner is gone."""
        with self._lock:
            done, self._next_round_done = self._next_round_done, self._flavour.event()
            self._round_done = done
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
                description = _describe(check, address)
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
            done.set()

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
        if self._started and not self._closed and not keep:
            self._task = self._flavour.spawn(self._run, self.name)


def _most_urgent(view: TopologyView, pending: List[Address]) -> Address:
    """The primary first, then members someone names as primary, then the rest in order."""
    claimed = {sd.primary for sd in view.members.values() if sd.primary is not None}

    def rank(address: Address) -> int:
        sd = view.members[address]
        if sd.server_type is ServerType.PRIMARY:
            return 0
        return 1 if address in claimed else 2

    return min(pending, key=rank)


def _describe(check: CheckFunction, address: Address) -> ServerDescription:
    try:
        reply, rtt = check(address)
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


__all__ = ["Monitor", "CheckFunction", "choose_flavour", "DEFAULT_HEARTBEAT_FREQUENCY"]
