"""What a ReplicaSetConnection tells about its set, and the settings its selector keeps.

The pymongo 2.8 names of ``MongoReplicaSetClient`` (``primary``, ``secondaries``,
``arbiters``, ``hosts``, ``seeds``, ``replica_set_name``, ``refresh()``), ``nodes``, the
current ``view`` and ``monitor``, and the connection settings that live in the selector
(the read preference and the latency window), read from and written to the
``ReplicaSetSelector`` (``replica_set.py``). ``client_info.py`` reads the primary's
handshake through ``_hello_address``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Optional, Set

from wireclient.client.settings import check_latency
from wireclient.rules.uri import Address
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.topology import TopologyView

if TYPE_CHECKING:
    from wireclient.client.replica_set import ReplicaSetSelector
    from wireclient.engine.monitor import Monitor
    from wireclient.pooling.pool import Pool
    from wireclient.pooling.requests import Requests


class ReplicaSetInfo:
    """The replica-set side of ``ReplicaSetConnection`` (see the module notes)."""

    _selector: ReplicaSetSelector
    _requests: Requests

    # -- settings the selector keeps (settings.py has the connection's others) ---------------

    def _operation_read_preference(self) -> Any:
        return self._selector.read_preference

    def _store_read_preference(self, read_preference: Any) -> None:
        self._selector.read_preference = read_preference

    @property
    def secondary_acceptable_latency_ms(self) -> float:
        """The latency window (``localThresholdMS``) in ms; settable."""
        return self._selector.local_threshold_ms

    @secondary_acceptable_latency_ms.setter
    def secondary_acceptable_latency_ms(self, value: Any) -> None:
        self._selector.local_threshold_ms = check_latency(value)

    # -- what client_info.py reads: the primary's handshake -----------------------------------

    def _hello_address(self) -> Optional[Address]:
        return self.view.primary

    def _alive_target(self) -> bool:
        return self.view.primary is not None

    # -- public API ---------------------------------------------------------------------

    @property
    def replica_set_name(self) -> Optional[str]:
        """The set's name: as given, or as learned from its members."""
        return self._selector.replica_set_name or self.view.set_name

    @property
    def seeds(self) -> FrozenSet[Address]:
        """The members given at construction (the seed list)."""
        return frozenset(self.view.seeds)

    @property
    def hosts(self) -> FrozenSet[Address]:
        """The set's active and passive members, as its members list them (``hosts`` and
        ``passives`` of their ``hello``): neither arbiters nor hidden members."""
        found: Set[Address] = set()
        for sd in self.view.members.values():
            found.update(sd.hosts, sd.passives)
        return frozenset(found)

    @property
    def nodes(self) -> FrozenSet[Address]:
        """Every member this connection knows of (seeds and discovered ones)."""
        return frozenset(self.view.members)

    def refresh(self) -> None:
        """Check every member now, and return when that round is over (or after
        ``serverSelectionTimeoutMS``)."""
        self._selector.refresh()

    @property
    def local_threshold_ms(self) -> float:
        return self._selector.local_threshold_ms

    @property
    def heartbeat_frequency(self) -> float:
        return self._selector.heartbeat_frequency

    @property
    def server_selection_timeout(self) -> float:
        return self._selector.server_selection_timeout

    @property
    def view(self) -> TopologyView:
        """The current snapshot of the set (immutable)."""
        return self._selector.topology.view

    @property
    def monitor(self) -> Monitor:
        return self._selector.monitor

    @property
    def primary(self) -> Optional[Address]:
        """The primary's ``(host, port)``, or None when there is none right now."""
        return self.view.primary

    @property
    def secondaries(self) -> List[Address]:
        return [sd.address for sd in self.view.secondaries]

    @property
    def arbiters(self) -> List[Address]:
        return [sd.address for sd in self.view.of_type(ServerType.ARBITER)]

    def pools(self) -> Dict[Address, Pool]:
        """Every member pool opened so far (for diagnostics)."""
        return self._selector.pools_by_address()

    def pinned_member(self) -> Optional[Address]:
        """The member the calling thread's request reads from (non-primary reads), if any."""
        return self._selector.pinned_member(self._requests.current())


__all__ = ["ReplicaSetInfo"]
