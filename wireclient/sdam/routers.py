"""The routers of a sharded cluster: what a list of hosts that are mongos routers looks like.

Theory of operation
-------------------
A ``RouterView`` is a ``TopologyView`` whose ``apply`` follows the Server Discovery and
Monitoring rules of the topology type Sharded instead of the replica set's: a router (its
``hello`` answers ``msg: "isdbgrid"``) or an Unknown server (could not reach it) is kept; any
other server is removed, and why is recorded in ``errors``:

* a replica-set member (its ``hello`` has ``setName``): the user wanted
  ``ReplicaSetConnection`` (or ``replicaSet=``), and the error says so;
* a standalone server: only one host names a direct connection.

The specification makes a list of hosts a replica set when a member answers first, and
removes the mongos among them; here the answer does not depend on who answers first: any
router makes the list a list of routers, and the other servers are removed. As in the
replica set's view, the view never runs out of members: when the last one is removed the
seeds come back as Unknown. Round-trip times are smoothed, and an incompatible wire range
recorded, as a replica set's are (``topology.py``'s helpers).

The view is pure; ``engine/router_selector.py``'s ``MongosSelector`` feeds it from the monitor and
chooses among its routers.
"""

from __future__ import annotations

import types
from typing import Dict, List

from wireclient.rules.uri import Address, format_address
from wireclient.sdam.server_rules import ServerType, topology_version_is_older
from wireclient.sdam.topology import (
    MAX_ERRORS,
    ServerDescription,
    TopologyView,
    compatibility_error,
    remember_error,
    smoothed,
)


class RouterView(TopologyView):
    """An immutable snapshot of the routers (the topology type Sharded): Unknown servers and
    mongos routers are kept, every other server is removed with the reason in ``errors``.
    ``set_name`` is the name of a replica set whose members were found among the seeds
    (they were removed), or None. Build one with ``RouterView.from_seeds(seeds, None)``."""

    __slots__ = ()

    @property
    def routers(self) -> List[ServerDescription]:
        """The servers known to be mongos routers now."""
        return self.of_type(ServerType.MONGOS)

    def describe(self) -> str:
        return self._describe("mongos routers", "no servers")

    def apply(self, description: ServerDescription) -> TopologyView:
        """A new view that takes ``description`` into account (see the class notes). A
        description of a server that is not (or no longer) in the view, or older than what
        we know of it (``topologyVersion``), changes nothing: this view is returned."""
        address = description.address
        current = self.members.get(address)
        if current is None or topology_version_is_older(
            description.topology_version, current.topology_version
        ):
            return self
        sd = smoothed(description, current)
        members: Dict[Address, ServerDescription] = dict(self.members)
        errors = list(self.errors)
        set_name = self.set_name
        if sd.server_type in (ServerType.UNKNOWN, ServerType.MONGOS):
            members[address] = sd
        else:
            del members[address]
            remember_error(errors, _refusal(sd))
            if set_name is None and sd.set_name is not None:
                set_name = sd.set_name
        if not members:  # everyone was refused: start again from the user's seeds
            members = {seed: ServerDescription.unknown(seed, errors[-1]) for seed in self.seeds}
        return self._replace(
            set_name=set_name,
            members=types.MappingProxyType(members),
            errors=tuple(errors[-MAX_ERRORS:]),
            compatibility_error=compatibility_error(members.values()),
        )


def _refusal(sd: ServerDescription) -> str:
    """Why a server that is not a mongos leaves a list of routers."""
    where = format_address(sd.address)
    if sd.server_type is ServerType.STANDALONE:
        return (
            f"{where} is a standalone server, not a mongos router; name it alone to connect "
            "to it directly"
        )
    if sd.set_name is not None:
        return (
            f"{where} is a member of replica set {sd.set_name!r}, not a mongos router: use "
            f"ReplicaSetConnection(..., replicaSet={sd.set_name!r}) for a replica set"
        )
    return (
        f"{where} is a replica-set member not yet configured ({sd.server_type.value}), "
        "not a mongos router: use ReplicaSetConnection for a replica set"
    )


__all__ = ["RouterView"]
