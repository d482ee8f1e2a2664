"""The Server Discovery and Monitoring vocabulary and rules that need no topology.

Theory of operation
-------------------
``topology.py`` classifies each ``hello`` reply as one ``ServerType`` and applies it to a
snapshot of the set; before it trusts a report it asks questions answered here on plain
values, so each rule can be read (and tested) alone, beside the specification:

* **Is this report older than what we know of that server process?** A ``topologyVersion``
  is ``(processId, counter)``; the counter grows with every state change of one process. Two
  versions compare only when they come from the same process (a restart brings a new
  ``processId``); anything missing compares as "not older", so the report is applied.
"""

from __future__ import annotations

import enum
from typing import Any, Mapping, Optional, Tuple

# -- server types ------------------------------------------------------------------------


class ServerType(enum.Enum):
    UNKNOWN = "Unknown"
    PRIMARY = "Primary"
    SECONDARY = "Secondary"
    ARBITER = "Arbiter"
    HIDDEN = "Hidden"
    OTHER = "Other"  # a member in startup/recovery/rollback, or a "ghost" with no config yet
    STANDALONE = "Standalone"
    MONGOS = "Mongos"


REPLICA_SET_TYPES = frozenset(
    {
        ServerType.PRIMARY,
        ServerType.SECONDARY,
        ServerType.ARBITER,
        ServerType.HIDDEN,
        ServerType.OTHER,
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


__all__ = [
    "ServerType",
    "REPLICA_SET_TYPES",
    "DATA_BEARING_TYPES",
    "TopologyVersion",
    "int_or_none",
    "parse_topology_version",
    "topology_version_is_older",
]
