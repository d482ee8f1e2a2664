"""mongos routers: a ``Connection`` given a list of hosts talks to a sharded cluster.

Theory of operation
-------------------
``Connection('mongodb://r1,r2,r3')`` (or ``Connection(['r1:27017', 'r2:27017'])``) is a
connection to the routers (``mongos``) of a sharded cluster. It differs from a connection to
one server in the selector only, ``MongosSelector``, which is the replica set's selector
(``replica_set_selector.ReplicaSetSelector``) with another view and another choice: the monitor, its
checker (one monitoring socket per router), a pool per router opened when the router is
first chosen, the wait for the monitor when nothing is suitable, and the error handler's
hooks (``server_failed``, ``not_primary``) are the replica set's, reused as they are.

What we know lives in a ``RouterView`` (``wireclient.sdam.routers``, where its rules are
told): routers and Unknown servers are kept, any other server is removed with the reason.
When no router at all is found in the discovery round (a step: the blocking constructor
runs it in the calling thread, an asyncio connection at ``await conn.connect()`` or its first
operation), the connection raises ``ConfigurationError`` quoting those reasons, or
``AutoReconnect`` when no seed could be reached.

Choosing a router (``select``): every router can serve every operation, so reads and writes
alike go to one of the routers whose round-trip time (the monitor's moving average of its
``hello`` round trips; the first is the handshake's) is within ``localThresholdMS`` (default
15 ms) of the fastest, at random (the less busy of two chosen at random, as the server
selection specification asks of a multi-threaded client). The read preference does not
choose the router: it is passed to it (``read_preference_document``): ``$readPreference``
on an OP_MSG read unless the mode is primary, which the router applies to the shards'
members. Servers older than OP_MSG (wire versions 4 and 5) get the ``SecondaryOk`` flag only.

Failover: a network error on a router's socket (of the pool's current generation) clears
that router's pool and marks it Unknown, and the monitor checks it again (at most one round
per 0.5 s); the failed operation raises its one ``AutoReconnect``, and the next operation is
sent to another router that is known to be up. Nothing is retried.

Requests: a caller in a request is pinned (``RequestState.pin``) to the router first chosen,
for reads and writes alike, while that router is known to be a mongos; so its request
socket is one socket to one router. The router, not the client, chooses the shards: a
request pins nothing on the shards' side. If the pinned router fails, the request continues
on another router.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from wireclient.engine.replica_set_selector import ReplicaSetSelector
from wireclient.errors import AutoReconnect, ConfigurationError
from wireclient.rules.uri import Address
from wireclient.sdam.read_preferences import ReadPreference, _in_window
from wireclient.sdam.routers import RouterView
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.topology import ServerDescription, TopologyView
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from wireclient.pooling.pool import Pool
    from wireclient.pooling.requests import RequestState

_ROUTER_PIN = "mongos"  # the key of a request's pin to one router


class MongosSelector(ReplicaSetSelector):
    """The routers' server-selection strategy: a ``RouterView`` fed by the monitor, a pool
    per router, the latency window, and the pin of requests to one router (see the module
    notes). Everything else is the replica set's selector."""

    view_class = RouterView

    def _check_max_staleness(self, max_staleness: int) -> None:
        """Nothing: the max-staleness spec checks its minimum for replica sets only, and a
        router checks it itself (error 160), so the value is passed on as given."""

    def _monitor_name(self) -> str:
        return "mongos"

    @property
    def view(self) -> RouterView:
        view = self.topology.view
        assert isinstance(view, RouterView)
        return view

    def discover(self) -> Steps[None]:
        """One round of checks in the caller: at least one router must answer (else
        ``ConfigurationError`` saying what the seeds are, or ``AutoReconnect`` when none
        answered); then the monitor starts."""
        yield from self.monitor._refresh()
        view = self.view
        if not view.routers:
            self.close()
            if view.errors:
                raise ConfigurationError(
                    "a Connection to several hosts talks to mongos routers, and none was "
                    "found: " + "; ".join(view.errors)
                )
            raise AutoReconnect(f"could not reach any seed: {view.describe()}")
        self.monitor.start()

    def _top_up(self, address: Address, reply: Mapping[str, Any]) -> Optional[Steps[None]]:
        """After a check, in the monitor: a router's pool is filled to ``minPoolSize``
        (a server about to be removed gets none)."""
        if reply.get("msg") == "isdbgrid":
            return super()._top_up(address, reply)
        return None

    # -- choosing a router --------------------------------------------------------------

    def select(
        self, for_read: bool, read_preference: Any, state: Optional[RequestState]
    ) -> Optional[Pool]:
        """A router's pool (a request's pinned router's), or None when no router is known
        now: then ``select_waiting``."""
        if state is not None:
            pin = state.pin
            if pin is not None and pin[0] == _ROUTER_PIN:
                sd = self.topology.view.members.get(pin[1])
                if sd is not None and sd.server_type is ServerType.MONGOS:
                    return self._pool_for(pin[1])  # the router a request stays on
        address = self.address_now(ReadPreference.PRIMARY)
        if address is None:
            return None
        if state is not None:
            state.pin = (_ROUTER_PIN, address, self._epoch)
        return self._pool_for(address)

    def select_waiting(
        self, for_read: bool, read_preference: Any, state: Optional[RequestState]
    ) -> Steps[Pool]:
        """``select`` found no router: wait for the monitor to find one (and pin a
        request to it)."""
        address = yield from self.select_address(ReadPreference.PRIMARY)
        if state is not None:
            state.pin = (_ROUTER_PIN, address, self._epoch)
        return self._pool_for(address)

    def _candidates(self, view: TopologyView, rp: ReadPreference) -> List[Address]:
        """The routers within the latency window, whatever ``rp`` (the router applies it);
        ``select_address`` (the replica set's) picks one or waits for the monitor."""
        return [sd.address for sd in self._window(view)]

    def _nothing_found(self, view: TopologyView, rp: ReadPreference) -> str:
        return (
            f"no mongos router found within {self.server_selection_timeout:g}s: {view.describe()}"
        )

    def _window(self, view: TopologyView) -> List[ServerDescription]:
        """The routers within ``localThresholdMS`` of the fastest, fastest first."""
        routers = view.of_type(ServerType.MONGOS)
        return _in_window(routers, self.local_threshold_ms)

    def primary_address(self) -> Address:
        """The router that answers for the connection (``address``, ``is_mongos``,
        ``max_bson_size``...): the nearest in the window whose pool is open, else the
        nearest."""
        window = self._window(self.topology.view)
        opened = [sd.address for sd in window if sd.address in self._pools]
        if opened:
            return opened[0]
        if window:
            return window[0].address
        return self.wait_here(self.select_address(ReadPreference.PRIMARY))

    def read_preference_document(
        self, pool: Pool, for_read: bool, read_preference: Any
    ) -> Optional[Dict[str, Any]]:
        """``$readPreference`` for a read whose mode is not primary (the server selection
        spec's "passing read preference to mongos", OP_MSG); None otherwise."""
        if not for_read:
            return None
        rp = self._resolve(read_preference)
        return None if rp.mode == "primary" else rp.document()


__all__ = ["MongosSelector"]
