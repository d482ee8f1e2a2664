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
(``wireclient.sdam.topology``). ``discover`` runs one discovery round from the seeds in the
calling thread (so a bad seed list or a wrong ``replicaSet`` fails at once, with a clear
error), then starts a ``Monitor`` (``wireclient.engine.monitor``) that checks every member each
``heartbeatFrequencyMS``, over one dedicated monitoring socket per member (``Checker``,
in ``checker.py``).

Choosing a member (``select``): writes and commands go to the primary; reads follow the
read preference (connection, database, collection or ``find``) through
``wireclient.sdam.read_preferences.select``, max staleness included (``staleness.py``: a value
too small for ``heartbeatFrequencyMS`` is refused when set on the connection, or at
selection for a per-operation read preference). When nothing suitable is known, the caller
wakes the monitor and waits for a fresh round, again and again, up to
``serverSelectionTimeoutMS``, then gets ``ServerSelectionTimeout`` quoting the view (and
the secondaries' estimated staleness, when the read had a maximum).

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
monitor (joined) and closes the idle sockets; a later operation starts a new monitor, as
``Connection`` reconnects after ``close()``.
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
    Tuple,
)

from wireclient.engine.checker import Checker
from wireclient.engine.monitor import MIN_HEARTBEAT_FREQUENCY, Monitor
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
    ) -> None:
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
            _weak_call(self_ref, "_top_up"),
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

    def _new_monitor(self) -> Monitor:
        from wireclient.transport.blocking import run

        check = self._checker.check

        def run_check(address: Address) -> Tuple[Mapping[str, Any], float]:
            return run(check(address))  # the monitor's own thread (or greenlet)

        return Monitor(
            self.topology,
            run_check,
            heartbeat_frequency=self.heartbeat_frequency,
            min_heartbeat_frequency=min(MIN_HEARTBEAT_FREQUENCY, self.heartbeat_frequency),
            use_greenlets=self._use_greenlets,
            name=f"wireclient-monitor-{self._monitor_name()}",
        )

    def _monitor_name(self) -> str:
        return self.replica_set_name or "rs"

    def discover(self) -> None:
        """One discovery round in the caller's thread, then the monitor starts."""
        self.monitor.refresh()
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

    def select(self, for_read: bool, read_preference: Any, state: Optional[RequestState]) -> Pool:
        rp = self._resolve(read_preference) if for_read else ReadPreference.PRIMARY
        if state is not None and rp.mode != "primary":
            address = self._pinned_address(state, rp)
        else:
            address = self.select_address(rp)
        return self._pool_for(address)

    def _resolve(self, read_preference: Any) -> ReadPreference:
        if read_preference is None:
            return self.read_preference
        return ReadPreference.from_value(read_preference)

    def select_address(self, rp: ReadPreference) -> Address:
        """A suitable server's address, waiting for the monitor up to the selection timeout:
        one of ``_candidates`` (the less busy of two picked at random, the spec's "power of
        two choices"), or ``ServerSelectionTimeout`` saying ``_nothing_found``."""
        deadline: Optional[float] = None
        while True:
            view = self.topology.view
            view.check_compatible()  # a member outside our wire range: fail now, not later
            candidates = self._candidates(view, rp)
            if len(candidates) == 1:
                return candidates[0]
            if candidates:
                first, second = random.sample(candidates, 2)
                return first if self._load(first) <= self._load(second) else second
            monitor = self._ensure_monitor()
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.server_selection_timeout
            remaining = deadline - now
            if remaining <= 0:
                raise ServerSelectionTimeout(self._nothing_found(view, rp))
            monitor.wait_for_check(remaining)

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
        return self.select_address(ReadPreference.PRIMARY)

    def _pinned_address(self, state: RequestState, rp: ReadPreference) -> Address:
        """The member a request's non-primary reads stay on while it still matches."""
        key = (rp, self.local_threshold_ms)
        pin = state.pin
        if pin is not None:
            pin_key, address, epoch = pin
            if pin_key == key and epoch == self._epoch:
                # still up and still matching mode and tags (the latency window may have moved)
                view = self.topology.view
                if address in select(view, rp, None, _ANY_MEMBER, self.heartbeat_frequency):
                    return address  # type: ignore[no-any-return]
        epoch = self._epoch
        address = self.select_address(rp)
        state.pin = (key, address, epoch)
        return address

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

    def _ensure_monitor(self) -> Monitor:
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

    def refresh(self) -> bool:
        """Check every member now and wait for the round (up to the selection timeout)."""
        return self._ensure_monitor().wait_for_check(self.server_selection_timeout)

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

    def _top_up(self, address: Address, reply: Mapping[str, Any]) -> None:
        """After a successful check, in the monitor: the member's pool is ready again (if
        an error paused it), and sockets to a data-bearing member are opened up to
        ``minPoolSize``."""
        pool = self._pools.get(address)
        if pool is not None:
            pool.ready()  # CMAP / SDAM: a successful check marks the pool ready
        if not self._min_pool_size or not (
            reply.get("isWritablePrimary") or reply.get("ismaster") or reply.get("secondary")
        ):
            return
        try:
            self._pool_for(address).fill_to_minimum()
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
        """Stop the monitor (and wait for it) and its sockets; a later operation starts a
        new monitor. The topology's closing events follow (its opening ones again, when a
        new monitor starts)."""
        self.monitor.close()
        self._checker.close()
        if self._topology_events is not None:
            self._topology_events.closed(self.topology.view)


__all__ = ["ReplicaSetSelector"]
