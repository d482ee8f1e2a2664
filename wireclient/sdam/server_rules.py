"""The Server Discovery and Monitoring vocabulary and rules that need no topology.

Theory of operation
-------------------
``topology.py`` classifies each ``hello`` reply as one ``ServerType`` and applies it to a
snapshot of the set; before it trusts a report it asks three questions, answered here on
plain values so each rule can be read (and tested) alone, beside the specification:

* **Is this report older than what we know of that server process?** A ``topologyVersion``
  is ``(processId, counter)``; the counter grows with every state change of one process. Two
  versions compare only when they come from the same process (a restart brings a new
  ``processId``); anything missing compares as "not older", so the report is applied.

* **Is this primary stale?** After an election the loser can still claim to be primary for
  a while (it has not yet heard that it lost). Each primary reports the ``electionId`` that
  made it primary and the ``setVersion`` of the configuration it holds; the topology
  remembers the pair of the last primary it accepted (``maxElectionId``, ``maxSetVersion``)
  and refuses a primary whose pair is older. Which pair is older depends on the server:

  - MongoDB 6.0+ (the primary's maxWireVersion >= 17) orders the pair the way the server's
    own replication does: ``electionId`` first, then ``setVersion``, a missing value being
    older than any present one. An accepted primary's pair *replaces* the remembered one,
    so the remembered values can go down (a new election may come with an older setVersion,
    and a primary may report no electionId at all).
  - Older servers keep the order drivers used before: ``setVersion`` first, then
    ``electionId``, and a primary is judged only when it and the remembered pair both have
    both values. The remembered ``electionId`` is the one of the last accepted primary that
    reported both; the remembered ``setVersion`` only ever grows.

* **Can we talk to this server at all?** A server speaks a range of wire versions
  (``minWireVersion`` to ``maxWireVersion``); wireclient speaks
  ``MIN_SUPPORTED_WIRE_VERSION`` to ``MAX_SUPPORTED_WIRE_VERSION`` (``rules.wire``, with
  ``wire_version_error``, which says why not). When the ranges do not overlap the server
  keeps its type in the topology, but the topology is incompatible and server selection
  refuses to choose anything until the server changes or leaves.
"""

from __future__ import annotations

import enum
from typing import Any, Mapping, NamedTuple, Optional, Tuple

ELECTION_ID_FIRST_WIRE_VERSION = 17  # MongoDB 6.0: electionId is compared before setVersion

# The specification's wordings, kept verbatim so logs and errors can be searched for them.
STALE_PRIMARY_ERROR = "primary marked stale due to electionId/setVersion mismatch"
NEWER_PRIMARY_ERROR = "primary marked stale due to discovery of newer primary"

# -- server types ------------------------------------------------------------------------


class ServerType(enum.Enum):
    UNKNOWN = "Unknown"
    PRIMARY = "Primary"
    SECONDARY = "Secondary"
    ARBITER = "Arbiter"
    HIDDEN = "Hidden"
    OTHER = "Other"  # a member in startup, recovery or rollback (the spec's RSOther)
    GHOST = "Ghost"  # a member with no configuration yet (``isreplicaset``: the spec's RSGhost)
    STANDALONE = "Standalone"
    MONGOS = "Mongos"


REPLICA_SET_TYPES = frozenset(
    {
        ServerType.PRIMARY,
        ServerType.SECONDARY,
        ServerType.ARBITER,
        ServerType.HIDDEN,
        ServerType.OTHER,
        ServerType.GHOST,
    }
)
DATA_BEARING_TYPES = frozenset({ServerType.PRIMARY, ServerType.SECONDARY, ServerType.HIDDEN})


# -- topologyVersion ---------------------------------------------------------------------

# A server process's (processId, counter); counters of two processIds never compare.
TopologyVersion = Tuple[Any, int]


def int_or_none(value: Any) -> Optional[int]:
    """An integer field of a reply, or None when it is missing or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_topology_version(value: Any) -> Optional[TopologyVersion]:
    """``(processId, counter)`` from a reply's ``topologyVersion`` document, or None."""
    if not isinstance(value, Mapping):
        return None
    counter = int_or_none(value.get("counter"))
    if counter is None or value.get("processId") is None:
        return None
    return (value["processId"], counter)


def topology_version_is_older(
    new: Optional[TopologyVersion], current: Optional[TopologyVersion], or_equal: bool = False
) -> bool:
    """Whether ``new`` says nothing newer than ``current``: same process, lower counter (or
    equal, with ``or_equal``, as for errors). Without both versions nothing is older."""
    if new is None or current is None or new[0] != current[0]:
        return False
    return new[1] <= current[1] if or_equal else new[1] < current[1]


# -- (electionId, setVersion) ------------------------------------------------------------


class PrimaryVerdict(NamedTuple):
    """Whether a primary is stale, and the maxima the topology keeps afterwards (unchanged
    when it is stale)."""

    stale: bool
    max_election_id: Any
    max_set_version: Optional[int]


def _election_key(election_id: Any) -> Optional[bytes]:
    """An electionId as the 12 bytes it is compared by (a bson ObjectId, or raw bytes);
    None when it is missing or of a type that has no such order."""
    if isinstance(election_id, bytes):
        return election_id
    binary = getattr(election_id, "binary", None)
    return binary if isinstance(binary, bytes) else None


def _compare(a: Any, b: Any) -> int:
    """-1, 0 or 1, a missing value (None) being less than any present one."""
    if a == b:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    return -1 if a < b else 1


def judge_primary(
    max_wire_version: int,
    election_id: Any,
    set_version: Optional[int],
    max_election_id: Any,
    max_set_version: Optional[int],
) -> PrimaryVerdict:
    """Judge a primary's ``(electionId, setVersion)`` against the topology's maxima."""
    if max_wire_version >= ELECTION_ID_FIRST_WIRE_VERSION:
        order = _compare(_election_key(election_id), _election_key(max_election_id))
        if order == 0:
            order = _compare(set_version, max_set_version)
        if order < 0:
            return PrimaryVerdict(True, max_election_id, max_set_version)
        return PrimaryVerdict(False, election_id, set_version)

    new_election_id = max_election_id
    if election_id is not None and set_version is not None:
        if max_election_id is not None and max_set_version is not None:
            if max_set_version > set_version or (
                max_set_version == set_version
                and _compare(_election_key(max_election_id), _election_key(election_id)) > 0
            ):
                return PrimaryVerdict(True, max_election_id, max_set_version)
        new_election_id = election_id
    new_set_version = max_set_version
    if set_version is not None and (max_set_version is None or set_version > max_set_version):
        new_set_version = set_version
    return PrimaryVerdict(False, new_election_id, new_set_version)


__all__ = [
    "ServerType",
    "REPLICA_SET_TYPES",
    "DATA_BEARING_TYPES",
    "ELECTION_ID_FIRST_WIRE_VERSION",
    "STALE_PRIMARY_ERROR",
    "NEWER_PRIMARY_ERROR",
    "TopologyVersion",
    "PrimaryVerdict",
    "int_or_none",
    "judge_primary",
    "parse_topology_version",
    "topology_version_is_older",
]
