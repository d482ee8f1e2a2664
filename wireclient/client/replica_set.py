"""ReplicaSetConnection: a Connection to a whole replica set.

A replica set differs from one server in how an operation's server is chosen, and in the
monitor that feeds that choice; nothing else. So ``ReplicaSetConnection`` is a
``Connection`` whose parts (``wireclient.engine.assembly``) have a replica-set selector
(``wireclient.engine.replica_set_selector``: discovery, the monitor, read preferences,
failover; its notes tell how), plus the pymongo 2.8 names of ``MongoReplicaSetClient`` that
tell about the set (``primary``, ``secondaries``, ``arbiters``, ``hosts``, ``seeds``,
``replica_set_name``, ``refresh()``), ``nodes``, the current ``view`` and ``monitor``, all
read from that selector. Its read preference and latency window are the selector's too
(``settings.ConnectionSettings``).

Two flavours share one class, as the connections do (``connection.py``,
``transport/flavours.py``): ``BaseReplicaSetConnection`` holds everything, with ``refresh``
(the one method here that does I/O) written once as a step; ``ReplicaSetConnection`` is a
blocking ``Connection`` whose monitor is a thread (or greenlet), and
``AsyncReplicaSetConnection`` an ``AsyncConnection`` whose monitor is one asyncio Task,
started by its discovery (at ``await conn.connect()``, ``async with``, or its first
operation) and stopped by ``await conn.close()``. ``MongoReplicaSetClient`` and
``AsyncMongoReplicaSetClient`` add pymongo 2.8's defaults and positional order to each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Optional, Set, TypeVar

from wireclient.client.connection import AsyncConnection, BaseConnection, Connection
from wireclient.client.database import AsyncDatabase, BaseDatabase, Database
from wireclient.engine.replica_set_selector import ReplicaSetSelector
from wireclient.rules.uri import Address, format_address
from wireclient.sdam.read_preferences import ReadPreference
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.topology import TopologyView
from wireclient.transport.flavours import operation

if TYPE_CHECKING:
    from wireclient.engine.monitor import BaseMonitor
    from wireclient.pooling.pool import Pool
    from wireclient.transport.steps import Steps

D = TypeVar("D", bound=BaseDatabase[Any])  # the flavour's database class


class BaseReplicaSetConnection(BaseConnection[D]):
    """What ``ReplicaSetConnection`` and ``AsyncReplicaSetConnection`` share: a connection
    to a replica set (discovery, monitoring, read preferences, failover)."""

    _REPLICA_SET = True

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

    @property
    def _selector(self) -> ReplicaSetSelector:
        selector = self._executor.selector
        assert isinstance(selector, ReplicaSetSelector)
        return selector

    # -- what the connection's handshake properties read: the primary's --------------------

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

    def _refresh(self) -> Steps[None]:
        """Check every member now, and return when that round is over (or after
        ``serverSelectionTimeoutMS``)."""
        yield from self._selector.refresh()

    refresh = operation(_refresh)

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
    def monitor(self) -> BaseMonitor:
        """The monitor: a ``Monitor`` (thread or greenlet), or for the asyncio flavour an
        ``AsyncMonitor`` (one asyncio Task)."""
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

    def __repr__(self) -> str:
        seeds = ",".join(format_address(a) for a in self.view.seeds)
        return f"{self._REPR_NAME}({seeds!r}, replicaSet={self.replica_set_name!r})"


class ReplicaSetConnection(BaseReplicaSetConnection[Database], Connection):
    """A connection to a replica set: discovery, monitoring, read preferences, failover.

    ``ReplicaSetConnection('mongodb://a:1,b:2,c:3/?replicaSet=repl0')`` or
    ``ReplicaSetConnection('a:1,b:2', replicaSet='repl0', read_preference=ReadPreference.NEAREST)``.
    Options beyond ``Connection``'s: ``replicaSet`` (checked against every member; learned
    from the first member when not given), ``read_preference`` / ``readPreference``,
    ``tag_sets`` / ``readPreferenceTags``, ``maxStalenessSeconds`` (at least 90 and at least
    heartbeatFrequencyMS / 1000 + 10; default -1, no maximum), ``localThresholdMS`` (alias
    ``secondary_acceptable_latency_ms``, default 15), ``heartbeatFrequencyMS`` (default
    10000), ``serverSelectionTimeoutMS`` (default 30000). What it tells about the set
    (``primary``, ``secondaries``, ``hosts``, ``refresh()``...) is read from its selector's
    view. Its monitor is a thread (a greenlet with ``use_greenlets``).
    """

    _REPR_NAME = "ReplicaSetConnection"


class AsyncReplicaSetConnection(BaseReplicaSetConnection[AsyncDatabase], AsyncConnection):
    """``ReplicaSetConnection`` for asyncio (``docs/asyncio.md``): the same options and
    names, with coroutines where I/O happens (``await conn.refresh()``). It discovers the
    set at ``await conn.connect()``, ``async with``, or its first operation; its monitor is
    one asyncio Task on the running loop, stopped by ``await conn.close()``."""

    _REPR_NAME = "AsyncReplicaSetConnection"


class _MongoReplicaSetClientDefaults(BaseReplicaSetConnection[D]):
    """pymongo 2.8's ``MongoReplicaSetClient`` defaults and positional order, for both
    flavours."""

    _AUTO_START_DEFAULT = False

    def __init__(
        self,
        hosts_or_uri: Optional[str] = None,
        max_pool_size: Optional[int] = None,
        document_class: type = dict,
        tz_aware: bool = False,
        **kwargs: Any,
    ) -> None:
        host = kwargs.pop("host", None)  # 2.8 accepted host= (it wins over hosts_or_uri)
        port = kwargs.pop("port", None)
        if max_pool_size is not None:
            kwargs["max_pool_size"] = max_pool_size
        super().__init__(
            host if host is not None else hosts_or_uri,
            port,
            document_class=document_class,
            tz_aware=tz_aware,
            **kwargs,
        )


class MongoReplicaSetClient(_MongoReplicaSetClientDefaults[Database], ReplicaSetConnection):
    """pymongo 2.8's ``MongoReplicaSetClient``: a ``ReplicaSetConnection`` with that class's
    defaults (``auto_start_request=False``; writes acknowledged).

    ``MongoReplicaSetClient(hosts_or_uri=None, max_pool_size=100, document_class=dict,
    tz_aware=False, **kwargs)``, the positional order of 2.8; ``replicaSet`` (learned from
    the members when left out), ``read_preference`` and every other option as keywords.
    """

    _REPR_NAME = "MongoReplicaSetClient"


class AsyncMongoReplicaSetClient(
    _MongoReplicaSetClientDefaults[AsyncDatabase], AsyncReplicaSetConnection
):
    """``MongoReplicaSetClient`` for asyncio: an ``AsyncReplicaSetConnection`` with 2.8's
    ``MongoReplicaSetClient`` defaults (``auto_start_request=False``)."""

    _REPR_NAME = "AsyncMongoReplicaSetClient"


__all__ = [
    "AsyncMongoReplicaSetClient",
    "AsyncReplicaSetConnection",
    "BaseReplicaSetConnection",
    "MongoReplicaSetClient",
    "ReadPreference",
    "ReplicaSetConnection",
]
