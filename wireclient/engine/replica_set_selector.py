"""The replica set's selector: how an operation's member is chosen, and the monitor feeding it.

Theory of operation
-------------------
A replica set differs from one server in how an operation's server is chosen, and in the
monitor that feeds that choice; nothing else. ``ReplicaSetSelector`` is that choice for the
operation path (``executor.py``); sockets, requests, framing, replies and the error handler
are the single-server machinery, with one ``Pool`` per member, created when a member is
first chosen. (The routers of a sharded cluster reuse it with another view and another
choice: ``router_selector.py``.)

What we know of the set lives in a ``Topology`` cell holding an immutable ``TopologyView``
(``wireclient.sdam.topology``). ``discover`` (a step) runs one discovery round from the
seeds in the caller (so a bad seed list or a wrong ``replicaSet`` fails at once, with a
clear error), then starts the monitor (``wireclient.engine.monitor``) that checks every
member each ``heartbeatFrequencyMS``, over one dedicated monitoring socket per member
(``Checker``, in ``checker.py``): a ``Monitor`` (thread or greenlet) for the blocking
client, an ``AsyncMonitor`` (one asyncio Task) for the asyncio client (``asynchronous``).

Choosing a member: writes and commands go to the primary; reads follow the read preference
(connection, database, collection or ``find``) through
``wireclient.sdam.read_preferences.select``, max staleness included (``staleness.py``: a value
too small for ``heartbeatFrequencyMS`` is refused when set on the connection, or at
selection for a per-operation read preference). Selection is in two parts, so that the
usual case costs a plain call and only the rare one a generator:

- ``select(for_read, read_preference, state)``, a plain method, returns the pool of a
  suitable member known now, or None when there is none;
- ``select_waiting(...)``, a step run only after that None, wakes the monitor and waits
  for a fresh round (``yield from monitor._wait_for_check(...)``: a blocked thread for the
  blocking client, an awaiting Task for the asyncio one), again and again, up to
  ``serverSelectionTimeoutMS``, then raises ``ServerSelectionTimeout`` quoting the view
  (and the secondaries' estimated staleness, when the read had a maximum).

(``SingleServer`` has the same two, and its ``select`` never says None.) The plain methods
that must have an answer (``primary_address``: ``conn.address``...) wait through
``wait_here``: the blocking client blocks as it always did; an asyncio client, whose plain
call cannot wait, gets ``AutoReconnect`` when nothing is known now.

Errors feed back into the view through the operation path's error handler: a network error
on a socket of the pool's current generation clears the member's pool and calls
``server_failed`` (the member becomes Unknown, the monitor is woken); a "not primary" /
"node is recovering" error calls ``not_primary`` (Unknown and a check, unless its
topologyVersion shows it is stale). The operation itself raises its one ``AutoReconnect``
(``NotPrimaryError`` is one); the next operation waits for the monitor to find the new
primary.

Requests span members. The request table (``wireclient.pooling.requests``) keeps one socket per
member pool for a caller in a request, so writes and ``PRIMARY`` reads share the primary's
request socket (read-your-writes). Other reads are pinned (``RequestState.pin``) to the
member first chosen for the same (mode, tags, latency window) while that member stays
suitable; a different preference re-chooses, ``end_request`` unpins, and a change of
primary unpins everyone (an epoch counter bumped by the view listener). A failover does not
end a request: its next operation binds a socket on the new primary.

Lifetime. The monitor and the view listener hold only weak references to the selector, so
a dropped ``ReplicaSetConnection`` is collected and its monitor exits. ``close()`` stops the
monitor (a thread is joined, an asyncio Task cancelled: ``wait_stopped`` is the step that
waits for it, which ``await conn.close()`` runs) and closes the idle sockets; a later
operation starts a new monitor, as ``Connection`` reconnects after ``close()``.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
)

from wireclient.engine.checker import Checker
from wireclient.engine.monitor import MIN_HEARTBEAT_FREQUENCY, AsyncMonitor, BaseMonitor, Monitor
from wireclient.engine.topology_cell import Topology
from wireclient.engine.topology_events import TopologyEvents, wants_topology_events
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    ServerSelectionTimeout,
    WireClientError,
)
from wireclient.pooling.pool import Pool
from wireclient.pooling.requests import RequestState
from wireclient.rules.options import (
    DEFAULT_HEARTBEAT_FREQUENCY_MS,
    DEFAULT_LOCAL_THRESHOLD_MS,
    DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
)
from wireclient.rules.uri import Address, format_address
from wireclient.sdam.read_preferences import ReadPreference, select
from wireclient.sdam.server_rules import ServerType, parse_topology_version
from wireclient.sdam.staleness import check_max_staleness, describe_staleness
from wireclient.sdam.topology import TopologyView
from wireclient.transport.compressors import settings_from_options
from wireclient.transport.steps import Steps, T

if TYPE_CHECKING:
    from wireclient.monitoring import EventPublisher


_ANY_MEMBER = float("inf")  # a latency window that excludes nobody (for pin checks)


def _weak_call(ref: weakref.ReferenceType[Any], name: str) -> Any:
    """A function that calls ``ref().<name>(*args)`` if its target is still alive."""

    def call(*args: Any) -> None:
        target = ref()
        if target is not None:
            getattr(target, name)(*args)

    return call


def _weak_call_returning(ref: weakref.ReferenceType[Any], name: str) -> Any:
    """A function that returns ``ref().<name>(*args)`` if its target is still alive."""

    def call(*args: Any) -> Any:
        target = ref()
        return None if target is None else getattr(target, name)(*args)

    return call


class ReplicaSetSelector:
    """The replica set's server-selection strategy: the view, its monitor, a pool per
    member, and the read pins of requests (see the module notes)."""

    view_class = TopologyView  # what the monitor's checks update (the routers': RouterView)

    def __init__(
        self,
        seeds: Sequence[Address],
        new_pool: Callable[[Address], Pool],
        options: Mapping[str, Any],
        connect_timeout: Optional[float],
        ssl_context: Any,
        use_greenlets: bool,
        events: Optional[EventPublisher] = None,
        asynchronous: bool = False,
    ) -> None:
        self.asynchronous = asynchronous  # the asyncio client's: an AsyncMonitor
        self.replica_set_name: Optional[str] = options.get("replicaSet")
        threshold = options.get("localThresholdMS")
        self.local_threshold_ms = float(
            DEFAULT_LOCAL_THRESHOLD_MS if threshold is None else threshold
        )
        heartbeat = options.get("heartbeatFrequencyMS", DEFAULT_HEARTBEAT_FREQUENCY_MS)
        self.heartbeat_frequency = float(heartbeat) / 1000.0
        self.read_preference = ReadPreference.from_options(options)  # the connection's default
        self._check_max_staleness(self.read_preference.max_staleness)
        selection = options.get("serverSelectionTimeoutMS", DEFAULT_SERVER_SELECTION_TIMEOUT_MS)
        self.server_selection_timeout = float(selection) / 1000.0
        self._use_greenlets = use_greenlets
        self._new_pool = new_pool
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._epoch = 0  # bumped when the primary changes: unpins every request
        self_ref = weakref.ref(self)
        self.topology = Topology(
            self.view_class.from_seeds(seeds, self.replica_set_name),
            listener=_weak_call(self_ref, "_view_changed"),
        )
        # SDAM events, only when listened to (topology_events.py)
        self._topology_events: Optional[TopologyEvents] = None
        if wants_topology_events(events):
            assert events is not None
            self._topology_events = TopologyEvents(events)
            self._topology_events.opened(self.topology.view)
        self._checker = Checker(
            connect_timeout,
            ssl_context,
            options.get("appName"),
            _weak_call_returning(self_ref, "_top_up"),
            events,
            compression=settings_from_options(options),
            on_failed=_weak_call(self_ref, "_check_failed"),
        )
        self._min_pool_size = int(options.get("minPoolSize", 0))
        self.monitor = self._new_monitor()
        self._pools: Dict[Address, Pool] = {}

    def set_read_preference(self, value: ReadPreference) -> None:
        """A new default read preference: a max staleness too small for this set's
        heartbeat is refused now, not per read."""
        self._check_max_staleness(value.max_staleness)
        self.read_preference = value

    def _check_max_staleness(self, max_staleness: int) -> None:
        check_max_staleness(max_staleness, self.heartbeat_frequency)

    def _new_monitor(self) -> BaseMonitor:
        monitor_class = AsyncMonitor if self.asynchronous else Monitor
        return monitor_class(
            self.topology,
            self._checker.check,  # bound: held weakly; the checker is the selector's
            heartbeat_frequency=self.heartbeat_frequency,
            min_heartbeat_frequency=min(MIN_HEARTBEAT_FREQUENCY, self.heartbeat_frequency),
            use_greenlets=self._use_greenlets,
            name=f"wireclient-monitor-{self._monitor_name()}",
        )

    def _monitor_name(self) -> str:
        return self.replica_set_name or "rs"

    def discover(self) -> Steps[None]:
        """One discovery round in the caller, then the monitor starts."""
        yield from self.monitor._refresh()
        view = self.topology.view
        if all(sd.server_type is ServerType.UNKNOWN for sd in view.members.values()):
            self.close()
            if view.errors:
                raise ConfigurationError(
                    "no member of the replica set was found: " + "; ".join(view.errors)
                )
            raise AutoReconnect(f"could not reach any seed: {view.describe()}")
        self.monitor.start()

    # -- choosing a member --------------------------------------------------------------

    def select(
        self, for_read: bool, read_preference: Any, state: Optional[RequestState]
    ) -> Optional[Pool]:
        """The pool of a suitable member known now, or None: then ``select_waiting``."""
        rp = self._resolve(read_preference) if for_read else ReadPreference.PRIMARY
        pinned = state is not None and rp.mode != "primary"
        if pinned:
            assert state is not None
            address = self._pin_of(state, rp)
            if address is not None:
                return self._pool_for(address)
        epoch = self._epoch
        address = self.address_now(rp)
        if address is None:
            return None
        if pinned:
            assert state is not None
            state.pin = ((rp, self.local_threshold_ms), address, epoch)
        return self._pool_for(address)

    def select_waiting(
        self, for_read: bool, read_preference: Any, state: Optional[RequestState]
    ) -> Steps[Pool]:
        """``select`` found nothing: wait for the monitor to find a suitable member (see
        the module notes), and pin a request's non-primary reads to it."""
        rp = self._resolve(read_preference) if for_read else ReadPreference.PRIMARY
        epoch = self._epoch
        address = yield from self.select_address(rp)
        if state is not None and rp.mode != "primary":
            state.pin = ((rp, self.local_threshold_ms), address, epoch)
        return self._pool_for(address)

    def _resolve(self, read_preference: Any) -> ReadPreference:
        if read_preference is None:
            return self.read_preference
        return ReadPreference.from_value(read_preference)

    def address_now(self, rp: ReadPreference) -> Optional[Address]:
        """A suitable server's address known now, or None: one of ``_candidates`` (the
        less busy of two picked at random, the spec's "power of two choices")."""
        view = self.topology.view
        view.check_compatible()  # a member outside our wire range: fail now, not later
        candidates = self._candidates(view, rp)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            first, second = random.sample(candidates, 2)
            return first if self._load(first) <= self._load(second) else second
        return None

    def select_address(self, rp: ReadPreference) -> Steps[Address]:
        """A suitable server's address (``address_now``), waiting for the monitor up to
        the selection timeout, else ``ServerSelectionTimeout`` saying ``_nothing_found``."""
        deadline: Optional[float] = None
        while True:
            address = self.address_now(rp)
            if address is not None:
                return address
            monitor = self._ensure_monitor()
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.server_selection_timeout
            remaining = deadline - now
            if remaining <= 0:
                raise ServerSelectionTimeout(self._nothing_found(self.topology.view, rp))
            yield from monitor._wait_for_check(remaining)

    def wait_here(self, steps: Steps[T]) -> T:
        """Run a waiting step (``select_address``, ``select_waiting``) for a plain method
        that must answer: the blocking client blocks, as it always did; an asyncio
        client's plain call cannot wait, so it raises ``AutoReconnect`` (an operation, or
        ``refresh()``, awaits what this would have waited for)."""
        if not self.asynchronous:
            from wireclient.transport.blocking import run

            return run(steps)
        steps.close()
        raise AutoReconnect(
            "no suitable server is known now, and a plain call of an asyncio client cannot "
            "wait for one (await an operation, or refresh(), first): "
            + self.topology.view.describe()
        )

    def _candidates(self, view: TopologyView, rp: ReadPreference) -> List[Address]:
        """The members ``rp`` may use now (the server selection rules)."""
        if rp.mode == "primary":
            return [view.primary] if view.primary is not None else []
        return select(view, rp, None, self.local_threshold_ms, self.heartbeat_frequency)

    def _nothing_found(self, view: TopologyView, rp: ReadPreference) -> str:
        """The selection timeout's message."""
        what = "primary" if rp.mode == "primary" else f"member for {rp!r}"
        return (
            f"no {what} found within {self.server_selection_timeout:g}s: {view.describe()}"
            + describe_staleness(view, rp.max_staleness, self.heartbeat_frequency)
        )

    def _load(self, address: Address) -> int:
        pool = self._pools.get(address)
        return pool.in_use if pool is not None else 0

    def primary_address(self) -> Address:
        """The primary's address, waiting for one (``wait_here``) when none is known."""
        address = self.address_now(ReadPreference.PRIMARY)
        if address is None:
            address = self.wait_here(self.select_address(ReadPreference.PRIMARY))
        return address

    def _pin_of(self, state: RequestState, rp: ReadPreference) -> Optional[Address]:
        """The member a request's non-primary reads stay on while it still matches, or
        None (none yet, or no longer suitable: ``select`` chooses again)."""
        pin = state.pin
        if pin is not None:
            pin_key, address, epoch = pin
            if pin_key == (rp, self.local_threshold_ms) and epoch == self._epoch:
                # still up and still matching mode and tags (the latency window may have moved)
                view = self.topology.view
                if address in select(view, rp, None, _ANY_MEMBER, self.heartbeat_frequency):
                    return address  # type: ignore[no-any-return]
        return None

    def pinned_member(self, state: Optional[RequestState]) -> Optional[Address]:
        if state is None or state.pin is None:
            return None
        return state.pin[1]  # type: ignore[no-any-return]

    def _pool_for(self, address: Address) -> Pool:
        pool = self._pools.get(address)
        if pool is not None:
            return pool
        if self._pid != os.getpid():  # forked: another thread may have held the lock
            self._pid = os.getpid()
            self._lock = threading.Lock()
        with self._lock:
            pool = self._pools.get(address)
            if pool is None:
                pool = self._pools[address] = self._new_pool(address)
        return pool

    def _ensure_monitor(self) -> BaseMonitor:
        """The running monitor: started if it never was, replaced if it was closed,
        restarted in a forked child."""
        monitor = self.monitor
        if monitor.closed:
            with self._lock:
                if self.monitor.closed:
                    self.monitor = self._new_monitor()
                monitor = self.monitor
            if self._topology_events is not None:  # closed, then used again: reopened
                self._topology_events.opened(self.topology.view)
        monitor.ensure_running()
        return monitor.start()

    def refresh(self) -> Steps[bool]:
        """Check every member now and wait for the round (up to the selection timeout)."""
        return (yield from self._ensure_monitor()._wait_for_check(self.server_selection_timeout))

    def read_preference_document(
        self, pool: Pool, for_read: bool, read_preference: Any
    ) -> Optional[Dict[str, Any]]:
        """``$readPreference`` for a command to ``pool``'s member, or None: the read's own
        for non-primary modes, and ``secondaryPreferred`` for anything else sent to a member
        that is not the primary (a getMore or killCursors following a secondary read)."""
        if for_read:
            rp = self._resolve(read_preference)
            if rp.mode != "primary":
                return rp.document()
        if pool.address != self.topology.view.primary:
            return ReadPreference.SECONDARY_PREFERRED.document()
        return None

    # -- what the error handler tells us ------------------------------------------------

    def server_failed(self, pool: Pool, message: str) -> None:
        """A socket to the member failed (its pool is cleared): Unknown, and re-check."""
        self.topology.mark_unknown(pool.address, f"{format_address(pool.address)}: {message}")
        self._ensure_monitor().request_check()

    def handshaken(self, pool: Pool, reply: Mapping[str, Any]) -> None:
        """Nothing: the monitor's checks alone describe the members (the spec's SHOULD to
        learn from application handshakes too is not followed; docs/replica_sets.md)."""

    def not_primary(self, pool: Pool, error: Mapping[str, Any]) -> bool:
        """A "not primary" / "node is recovering" error: Unknown and re-check, unless its
        topologyVersion shows it is stale (then nothing changes and False is returned)."""
        before = self.topology.view
        version = parse_topology_version(error.get("topologyVersion"))
        message = error.get("errmsg") or error.get("code")
        after = self.topology.mark_unknown(
            pool.address, f"{format_address(pool.address)}: {message}", version
        )
        if after is before:
            return False
        self._ensure_monitor().request_check()
        return True

    fills_pools_lazily = False  # the monitor tops member pools up, in the background

    def _top_up(self, address: Address, reply: Mapping[str, Any]) -> Optional[Steps[None]]:
        """After a successful check, in the monitor: the member's pool is ready again (if
        an error paused it), and for a data-bearing member, the step that opens sockets up
        to ``minPoolSize`` (the checker runs it in the monitor's task)."""
        pool = self._pools.get(address)
        if pool is not None:
            pool.ready()  # CMAP / SDAM: a successful check marks the pool ready
        if not self._min_pool_size or not (
            reply.get("isWritablePrimary") or reply.get("ismaster") or reply.get("secondary")
        ):
            return None
        return self._fill(address)

    def _fill(self, address: Address) -> Steps[None]:
        try:
            yield from self._pool_for(address).fill_to_minimum()
        except WireClientError:  # the next check or operation reports the fault
            pass

    def _check_failed(self, address: Address, error: BaseException) -> None:
        """A check of the member failed on the network, after its retry, in the monitor:
        the member is about to be marked Unknown, and its pool is cleared and paused until
        a check succeeds (SDAM: if the monitor's socket is bad, the pool's likely are)."""
        pool = self._pools.get(address)
        if pool is not None:
            pool.clear(pause=True)

    def _view_changed(self, old: TopologyView, new: TopologyView) -> None:
        if self._topology_events is not None:
            self._topology_events.changed(old, new)
        if old.primary != new.primary:
            self._epoch += 1
        for address in old.members:
            if address not in new.members:
                with self._lock:
                    pool = self._pools.pop(address, None)
                if pool is not None:
                    pool.close()
                self._checker.forget(address)

    # -- lifetime -----------------------------------------------------------------------

    def pools(self) -> List[Pool]:
        with self._lock:
            return list(self._pools.values())

    def pools_by_address(self) -> Dict[Address, Pool]:
        with self._lock:
            return dict(self._pools)

    def close(self) -> None:
        """Stop the monitor (a thread is joined, an asyncio Task cancelled) and its
        sockets; a later operation starts a new monitor. The topology's closing events
        follow (its opening ones again, when a new monitor starts)."""
        self.monitor.close()
        self._checker.close()
        if self._topology_events is not None:
            self._topology_events.closed(self.topology.view)

    def wait_stopped(self) -> Steps[bool]:
        """After ``close()``: wait for the monitor's task to end (an asyncio Task's end;
        a thread was joined by ``close``)."""
        return (yield from self.monitor._wait_stopped())


__all__ = ["ReplicaSetSelector"]
