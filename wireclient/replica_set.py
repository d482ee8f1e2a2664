"""ReplicaSetConnection: a Connection to a whole replica set.

Theory of operation
-------------------
``ReplicaSetConnection`` is a ``Connection`` that overrides one decision: which pool an
operation runs on (``_select_pool``). Everything below that (sockets, requests per thread
or greenlet, framing, replies) is the single-server machinery, one ``Pool`` per data-bearing
member, created when a member is first chosen.

What we know of the set lives in a ``Topology`` cell holding an immutable ``TopologyView``
(``wireclient.topology``). The constructor runs one discovery round from the seeds in the
calling thread (so a bad seed list or a wrong ``replicaSet`` fails at once, with a clear
error), then starts a ``Monitor`` (``wireclient.monitor``) that checks every member each
``heartbeatFrequencyMS``, over one dedicated monitoring socket per member (``_Checker``).

Choosing a member (``_select_address``): writes and commands go to the primary; reads
follow the read preference (connection, database, collection or ``find``) through
``wireclient.read_preferences.select``. When nothing suitable is known, the caller wakes
the monitor and waits for a fresh round, again and again, up to
``serverSelectionTimeoutMS``, then gets ``ServerSelectionTimeout`` quoting the view.

Errors feed back into the view. A socket that comes back closed from an operation (the
network layer closes a socket on any error mid-conversation; ``_MemberPool`` notices on
``return_socket``) marks its member Unknown, clears that member's pool and wakes the
monitor; a "not primary" / "node is recovering" reply (``_on_command_error``) marks the
member Unknown and wakes the monitor. The operation itself raises its one ``AutoReconnect``
(``NotPrimaryError`` is one); the next operation waits for the monitor to find the new
primary.

Requests span members. The connection keeps its own per-caller request state (nesting count
and read pin), keyed by the same identity strategy as the pools (thread or greenlet). Each
pool a caller in a request touches is put in a request too, so the caller keeps one socket
per member: writes and ``PRIMARY`` reads share the primary's request socket
(read-your-writes). Other reads are pinned to the member first chosen for the same (mode,
tags, latency window) while that member stays suitable; a different preference re-chooses,
``end_request`` unpins, and a change of primary unpins everyone (an epoch counter bumped by
the view listener). A failover does not end a request: its next operation binds a socket on
the new primary.

Lifetime. The monitor, the view listener and the pools' failure hooks hold only weak
references to the connection, so a dropped ``ReplicaSetConnection`` is collected and its
monitor exits. ``close()`` stops the monitor (joined) and closes every socket; a later
operation starts a new monitor, as ``Connection`` reconnects after ``close()``.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

from wireclient import network, protocol
from wireclient.connection import Connection, Request
from wireclient.database import Database
from wireclient.errors import AutoReconnect, ConfigurationError, ServerSelectionTimeout
from wireclient.identity import make_identity
from wireclient.monitor import MIN_HEARTBEAT_FREQUENCY, Monitor
from wireclient.pool import Pool
from wireclient.read_preferences import DEFAULT_LOCAL_THRESHOLD_MS, ReadPreference, select
from wireclient.topology import (
    Address,
    ServerType,
    Topology,
    TopologyView,
    format_address,
    parse_topology_version,
)

DEFAULT_HEARTBEAT_FREQUENCY_MS = 10_000
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 30_000
COMMAND_NOT_FOUND = 59

_ANY_MEMBER = float("inf")  # a latency window that excludes nobody (for pin checks)


class _MemberPool(Pool):
    """A Pool that reports a socket given back closed: the operation hit a network error."""

    def __init__(self, *args: Any, on_failure: Callable[[Address], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_failure = on_failure

    def return_socket(self, sock: network.SocketInfo) -> None:
        failed = sock.closed
        super().return_socket(sock)
        if failed:
            self._on_failure(self.address)


class _Checker:
    """The monitor's ``check(address)``: ``hello`` over one monitoring socket per member.

    Used by the monitor task only (and by the constructor before the monitor starts). It
    holds no reference to the connection.
    """

    def __init__(
        self, connect_timeout: Optional[float], ssl_context: Any, app_name: Optional[str]
    ) -> None:
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._app_name = app_name
        self._sockets: Dict[Address, network.SocketInfo] = {}
        self._legacy: Dict[Address, bool] = {}  # members that do not know "hello"
        self._pid = os.getpid()

    def check(self, address: Address) -> Tuple[Mapping[str, Any], float]:
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            sockets, self._sockets = self._sockets, {}
            self._pid = os.getpid()
            for old in sockets.values():
                old.close()
        sock = self._sockets.get(address)
        if sock is None or sock.closed:
            started = time.monotonic()
            sock = network.connect(
                address,
                self._connect_timeout,
                self._connect_timeout,
                self._ssl_context,
                app_name=self._app_name,
            )
            self._sockets[address] = sock
            return sock.hello, time.monotonic() - started  # the handshake is a hello
        name = "isMaster" if self._legacy.get(address) else "hello"
        started = time.monotonic()
        try:
            reply = sock.command("admin", {name: 1})
        finally:
            if sock.closed:
                self._sockets.pop(address, None)
        assert reply is not None
        if reply.get("ok") != 1 and reply.get("code") == COMMAND_NOT_FOUND and name == "hello":
            self._legacy[address] = True
            started = time.monotonic()
            reply = sock.command("admin", {"isMaster": 1})
            assert reply is not None
        return reply, time.monotonic() - started

    def forget(self, address: Address) -> None:
        sock = self._sockets.pop(address, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        sockets, self._sockets = self._sockets, {}
        for sock in sockets.values():
            sock.close()


class _RequestState:
    """One caller's request across the set: nesting count and the read pin."""

    __slots__ = ("count", "pin_key", "pin_address", "pin_epoch")

    def __init__(self) -> None:
        self.count = 1
        self.pin_key: Optional[Tuple[ReadPreference, float]] = None
        self.pin_address: Optional[Address] = None
        self.pin_epoch = -1


def _weak_call(ref: weakref.ReferenceType[ReplicaSetConnection], name: str) -> Any:
    """A function that calls ``ref().<name>(*args)`` if the connection is still alive."""

    def call(*args: Any) -> None:
        target = ref()
        if target is not None:
            getattr(target, name)(*args)

    return call


class ReplicaSetConnection(Connection):
    """A connection to a replica set: discovery, monitoring, read preferences, failover.

    ``ReplicaSetConnection('mongodb://a:1,b:2,c:3/?replicaSet=repl0')`` or
    ``ReplicaSetConnection('a:1,b:2', replicaSet='repl0', read_preference=ReadPreference.NEAREST)``.
    Options beyond ``Connection``'s: ``replicaSet`` (checked against every member; learned
    from the first member when not given), ``read_preference`` / ``readPreference``,
    ``tag_sets`` / ``readPreferenceTags``, ``localThresholdMS`` (alias
    ``secondary_acceptable_latency_ms``, default 15), ``heartbeatFrequencyMS`` (default
    10000), ``serverSelectionTimeoutMS`` (default 30000).
    """

    def __init__(
        self,
        hosts_or_uri: Optional[str] = None,
        port: Optional[int] = None,
        replicaSet: Optional[str] = None,  # noqa: N803 - the pymongo / URI spelling
        read_preference: Any = None,
        **kwargs: Any,
    ) -> None:
        if replicaSet is not None:
            kwargs["replicaSet"] = replicaSet
        if read_preference is not None:
            kwargs["read_preference"] = read_preference
        super().__init__(hosts_or_uri, port, **kwargs)

    # -- construction (hooks called by Connection.__init__) -----------------------------

    def _make_pools(self) -> Dict[Address, Pool]:
        options = self._options
        self.replica_set_name: Optional[str] = options.get("replicaSet")
        tags = options.get("readPreferenceTags")
        self.read_preference = ReadPreference(
            options.get("readPreference", "primary"), tags if tags else None
        )
        threshold = options.get("localThresholdMS")
        self.local_threshold_ms = float(
            DEFAULT_LOCAL_THRESHOLD_MS if threshold is None else threshold
        )
        heartbeat = options.get("heartbeatFrequencyMS", DEFAULT_HEARTBEAT_FREQUENCY_MS)
        self.heartbeat_frequency = float(heartbeat) / 1000.0
        selection = options.get("serverSelectionTimeoutMS", DEFAULT_SERVER_SELECTION_TIMEOUT_MS)
        self.server_selection_timeout = float(selection) / 1000.0
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._self_ref = weakref.ref(self)
        self._epoch = 0  # bumped when the primary changes: unpins every request
        self._requests: Dict[Hashable, _RequestState] = {}
        self._identity = make_identity(self.use_greenlets)
        self._on_caller_death = _weak_call(self._self_ref, "_forget_request")
        self._topology = Topology(
            TopologyView.from_seeds(self._hosts, self.replica_set_name),
            listener=_weak_call(self._self_ref, "_view_changed"),
        )
        self._checker = _Checker(self._connect_timeout, self._ssl_context, options.get("appName"))
        self._monitor = self._new_monitor()
        self._member_pools: Dict[Address, Pool] = {}
        return self._member_pools

    def _new_monitor(self) -> Monitor:
        return Monitor(
            self._topology,
            self._checker.check,
            heartbeat_frequency=self.heartbeat_frequency,
            min_heartbeat_frequency=min(MIN_HEARTBEAT_FREQUENCY, self.heartbeat_frequency),
            use_greenlets=self.use_greenlets,
            name=f"wireclient-monitor-{self.replica_set_name or 'rs'}",
        )

    def _check_connectable(self) -> None:
        """One discovery round in the caller's thread, then the monitor starts."""
        self._monitor.refresh()
        view = self._topology.view
        if all(sd.server_type is ServerType.UNKNOWN for sd in view.members.values()):
            self._checker.close()
            self._monitor.close()
            if view.errors:
                raise ConfigurationError(
                    "no member of the replica set was found: " + "; ".join(view.errors)
                )
            raise AutoReconnect(f"could not reach any seed: {view.describe()}")
        self._monitor.start()

    def _new_pool(self, address: Address) -> Pool:
        return _MemberPool(
            address,
            self._connector(address),
            max_size=self.max_pool_size,
            wait_queue_timeout=self._wait_queue_timeout,
            identity=make_identity(self.use_greenlets),
            on_failure=_weak_call(self._self_ref, "_member_failed"),
        )

    # -- public API ---------------------------------------------------------------------

    @property
    def view(self) -> TopologyView:
        """The current snapshot of the set (immutable)."""
        return self._topology.view

    @property
    def monitor(self) -> Monitor:
        return self._monitor

    @property
    def primary(self) -> Optional[Address]:
        """The primary's ``(host, port)``, or None when there is none right now."""
        return self._topology.view.primary

    @property
    def secondaries(self) -> List[Address]:
        return [sd.address for sd in self._topology.view.secondaries]

    @property
    def arbiters(self) -> List[Address]:
        return [sd.address for sd in self._topology.view.of_type(ServerType.ARBITER)]

    @property
    def address(self) -> Address:
        """The primary's address (waiting for one, up to serverSelectionTimeoutMS)."""
        return self._select_address(False, ReadPreference.PRIMARY)

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def pool(self) -> Pool:
        """The primary's pool."""
        return self._pool_for(self.address)

    def pools(self) -> Dict[Address, Pool]:
        """Every member pool opened so far (for diagnostics)."""
        with self._lock:
            return dict(self._member_pools)

    def __getitem__(self, name: str) -> Database:
        return Database(self, name, self.read_preference)

    def __getattr__(self, name: str) -> Database:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def start_request(self) -> Any:
        """Start (or nest) a request for the calling thread (greenlet) on every member."""
        req = self._requests.get(self._identity.current())
        if req is None:
            self._begin_request()
        else:
            req.count += 1
        return Request(self)

    def end_request(self) -> None:
        key = self._identity.current()
        req = self._requests.get(key)
        if req is None:
            return
        req.count -= 1
        if req.count > 0:
            return
        del self._requests[key]
        for pool in self.pools().values():
            while pool.in_request():
                pool.end_request()

    def in_request(self) -> bool:
        self._check_fork()
        return self._identity.current() in self._requests

    def close(self) -> None:
        """Stop the monitor (and wait for it), then close every socket. A later operation
        starts a new monitor and reconnects."""
        self._monitor.close()
        self._checker.close()
        self._kill_queue.clear()
        for pool in self.pools().values():
            pool.close()

    disconnect = close

    def __repr__(self) -> str:
        seeds = ",".join(format_address(a) for a in self._topology.view.seeds)
        return f"ReplicaSetConnection({seeds!r}, replicaSet={self.replica_set_name!r})"

    # -- choosing a member --------------------------------------------------------------

    def _ensure_monitor(self) -> Monitor:
        """The running monitor: started if it never was, replaced if it was closed, restarted
        in a forked child."""
        monitor = self._monitor
        if monitor.closed:
            with self._lock:
                if self._monitor.closed:
                    self._monitor = self._new_monitor()
                monitor = self._monitor
        monitor.ensure_running()
        return monitor.start()

    def _resolve(self, read_preference: Any) -> ReadPreference:
        if read_preference is None:
            return self.read_preference
        return ReadPreference.from_value(read_preference)

    def _select_address(self, for_read: bool, read_preference: ReadPreference) -> Address:
        """A suitable member's address, waiting for the monitor up to the selection timeout."""
        rp = read_preference if for_read else ReadPreference.PRIMARY
        deadline: Optional[float] = None
        while True:
            view = self._topology.view
            if rp.mode == "primary":
                candidates = [view.primary] if view.primary is not None else []
            else:
                candidates = select(view, rp, local_threshold_ms=self.local_threshold_ms)
            if candidates:
                return candidates[0] if len(candidates) == 1 else random.choice(candidates)
            monitor = self._ensure_monitor()
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.server_selection_timeout
            remaining = deadline - now
            if remaining <= 0:
                what = "primary" if rp.mode == "primary" else f"member for {rp!r}"
                raise ServerSelectionTimeout(
                    f"no {what} found within {self.server_selection_timeout:g}s: {view.describe()}"
                )
            monitor.wait_for_check(remaining)

    def _check_fork(self) -> None:
        """In a forked child: the pools forgot their requests, so do we."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._requests.clear()

    def _select_pool(self, for_read: bool, read_preference: Any = None) -> Pool:
        self._check_fork()
        rp = self._resolve(read_preference) if for_read else ReadPreference.PRIMARY
        req = self._requests.get(self._identity.current())
        if req is None and self.auto_start_request:
            req = self._begin_request()
        if req is not None and rp.mode != "primary":
            address = self._pinned_address(req, rp)
        else:
            address = self._select_address(for_read, rp)
        pool = self._pool_for(address)
        if req is not None and not pool.in_request():
            pool.start_request()
        return pool

    def _pinned_address(self, req: _RequestState, rp: ReadPreference) -> Address:
        key = (rp, self.local_threshold_ms)
        address = req.pin_address
        if address is not None and req.pin_key == key and req.pin_epoch == self._epoch:
            # still up and still matching mode and tags (the latency window may have moved)
            if address in select(self._topology.view, rp, local_threshold_ms=_ANY_MEMBER):
                return address
        epoch = self._epoch
        address = self._select_address(True, rp)
        req.pin_key, req.pin_address, req.pin_epoch = key, address, epoch
        return address

    def _pool_for(self, address: Address) -> Pool:
        pool = self._member_pools.get(address)
        if pool is not None:
            return pool
        with self._lock:
            pool = self._member_pools.get(address)
            if pool is None:
                pool = self._member_pools[address] = self._new_pool(address)
        return pool

    # -- requests -----------------------------------------------------------------------

    def _begin_request(self) -> _RequestState:
        req = _RequestState()
        self._requests[self._identity.current()] = req
        self._identity.watch(self._on_caller_death)
        return req

    def _forget_request(self, key: Hashable) -> None:
        """A caller died in a request; its pools release its sockets themselves."""
        self._requests.pop(key, None)

    def pinned_member(self) -> Optional[Address]:
        """The member the calling thread's request reads from (non-primary reads), if any."""
        req = self._requests.get(self._identity.current())
        return req.pin_address if req is not None else None

    # -- the operation path -------------------------------------------------------------

    def _command(
        self,
        dbname: str,
        spec: Mapping[str, Any],
        sequences: Sequence[protocol.DocumentSequence] = (),
        unacknowledged: bool = False,
        pool: Optional[Pool] = None,
        for_read: bool = False,
        read_preference: Any = None,
        check: bool = True,
    ) -> Optional[Dict[str, Any]]:
        if pool is None:
            pool = self._select_pool(for_read, read_preference)
        elif self.auto_start_request and self._identity.current() not in self._requests:
            self._begin_request()  # a getMore / killCursors also starts the caller's request
        return super()._command(
            dbname, spec, sequences, unacknowledged, pool, for_read, read_preference, check
        )

    def _read_preference_document(
        self, address: Address, for_read: bool, read_preference: Any
    ) -> Optional[Dict[str, Any]]:
        """``$readPreference`` for a command to ``address``, or None: the read's own for
        non-primary modes, and ``secondaryPreferred`` for anything else sent to a member that
        is not the primary (a getMore or killCursors following a secondary read)."""
        if for_read:
            rp = self._resolve(read_preference)
            if rp.mode != "primary":
                return rp.document()
        if address != self._topology.view.primary:
            return ReadPreference.SECONDARY_PREFERRED.document()
        return None

    def _on_command_error(self, pool: Pool, reply: Mapping[str, Any]) -> None:
        code = reply.get("code")
        message = str(reply.get("errmsg", ""))
        if network.is_not_primary(code, message):
            before = self._topology.view
            version = parse_topology_version(reply.get("topologyVersion"))
            after = self._topology.mark_unknown(
                pool.address, f"{format_address(pool.address)}: {message or code}", version
            )
            if after is not before:  # a stale error (see topology.py) needs no check
                self._ensure_monitor().request_check()

    def _member_failed(self, address: Address) -> None:
        """A socket to ``address`` failed mid-operation: Unknown, clear its pool, re-check."""
        self._topology.mark_unknown(
            address, f"{format_address(address)}: network error during an operation"
        )
        pool = self._member_pools.get(address)
        if pool is not None:
            pool.reset()
        self._ensure_monitor().request_check()

    def _view_changed(self, old: TopologyView, new: TopologyView) -> None:
        if old.primary != new.primary:
            self._epoch += 1
        for address in old.members:
            if address not in new.members:
                with self._lock:
                    pool = self._member_pools.pop(address, None)
                if pool is not None:
                    pool.close()
                self._checker.forget(address)


__all__ = ["ReplicaSetConnection", "ReadPreference"]
