"""Max staleness: how far behind the primary a secondary may be and still serve a read.

Theory of operation
-------------------
A read preference may carry ``maxStalenessSeconds`` (``ReadPreference.max_staleness``;
``-1``, the default, means no maximum). Each ``hello`` from a member running MongoDB 3.4+
(wire version 5) reports ``lastWrite.lastWriteDate``: the *primary's* wall-clock time of the
last write that member has applied. The monitor records it in the member's description with
``last_update_time``, the client's ``time.monotonic()`` when the reply arrived
(``ServerDescription.last_write_date`` / ``last_update_time``, both in seconds).

A secondary's staleness is estimated as the specification ("Max Staleness", and "Server
Selection") says, in seconds:

* with a known primary P: ``(S.last_update_time - S.last_write_date) -
  (P.last_update_time - P.last_write_date) + heartbeat_frequency``. Each bracket is "how far
  the client's clock was ahead of that member's last write when we heard from it"; their
  difference cancels any skew between the client's clock and the primary's, so a monotonic
  client clock does as well as a wall clock (and does not jump);
* with no primary: ``SMax.last_write_date - S.last_write_date + heartbeat_frequency``, SMax
  being the secondary with the newest ``last_write_date``.

The heartbeat frequency is added because a member is checked only that often: the estimate
must hold until the next check, even if the secondary stops replicating right after this
one. A secondary whose staleness cannot be estimated (it, or the primary, reported no
``lastWriteDate``) is not eligible: wireclient never guesses that a member is fresh.

Rules on the value, checked when a connection is configured and again at each server
selection (a per-operation read preference can bring a new value):

* ``-1`` (or ``None``) is "no maximum"; otherwise a positive integer (``0`` is refused): the
  option's own rule, ``rules.options.max_staleness_value``;
* a positive value needs a mode other than ``primary`` (``ReadPreference`` refuses it);
* for a replica set (``check_max_staleness``) it must be at least ``SMALLEST_MAX_STALENESS``
  (90 s) and at least ``heartbeat_frequency + IDLE_WRITE_PERIOD`` (an idle primary writes
  a no-op every 10 s, so an idle set's secondaries could otherwise all look too stale);
* every available member must speak wire version 5 or newer (MongoDB 3.4, the first to
  report ``lastWrite``); wireclient speaks down to wire version 4, so server selection
  refuses a positive value while a member older than that is in the set.

The filter (``fresh_enough``) runs after the read preference's mode picked candidates and
before the tag sets and the latency window; the primary (in ``nearest`` mode) is never stale.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, SupportsInt

from wireclient.errors import ConfigurationError
from wireclient.rules.options import NO_MAX_STALENESS
from wireclient.rules.uri import format_address
from wireclient.sdam.server_rules import ServerType

if TYPE_CHECKING:
    from wireclient.sdam.topology import ServerDescription, TopologyView

SMALLEST_MAX_STALENESS = 90  # seconds: smallestMaxStalenessSeconds
IDLE_WRITE_PERIOD = 10.0  # seconds: idleWritePeriodMS, how often an idle primary writes
MAX_STALENESS_WIRE_VERSION = 5  # MongoDB 3.4: hello reports lastWrite.lastWriteDate

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def check_max_staleness(max_staleness: int, heartbeat_frequency: float) -> None:
    """Raise ``ConfigurationError`` when a positive ``max_staleness`` (seconds) is too small
    for a replica set checked every ``heartbeat_frequency`` seconds; ``-1`` always passes."""
    if max_staleness == NO_MAX_STALENESS:
        return
    smallest = heartbeat_frequency + IDLE_WRITE_PERIOD
    if max_staleness < smallest:
        raise ConfigurationError(
            f"maxStalenessSeconds is {max_staleness}, but it must be at least "
            f"heartbeatFrequencyMS + {IDLE_WRITE_PERIOD:g} s = {smallest:g} s "
            f"(heartbeatFrequencyMS is {heartbeat_frequency * 1000:g})"
        )
    if max_staleness < SMALLEST_MAX_STALENESS:
        raise ConfigurationError(
            f"maxStalenessSeconds is {max_staleness}, but it must be at least "
            f"{SMALLEST_MAX_STALENESS} s"
        )


def check_wire_versions(view: TopologyView, max_staleness: int) -> None:
    """Raise ``ConfigurationError`` when ``max_staleness`` is positive and an available
    member (any member not Unknown) is older than MongoDB 3.4 (maxWireVersion < 5)."""
    if max_staleness == NO_MAX_STALENESS:
        return
    for sd in view.members.values():
        if sd.server_type is not ServerType.UNKNOWN:
            if sd.max_wire_version < MAX_STALENESS_WIRE_VERSION:
                raise ConfigurationError(
                    f"maxStalenessSeconds needs MongoDB 3.4+ (wire version "
                    f"{MAX_STALENESS_WIRE_VERSION}) on every member, but {sd} has maxWireVersion "
                    f"{sd.max_wire_version}"
                )


def last_write_date(reply: Any) -> Optional[float]:
    """``lastWrite.lastWriteDate`` of a hello reply as seconds since the epoch, or None when
    it is missing or not a date. A naive datetime (bson's default) is UTC."""
    last_write = reply.get("lastWrite") if isinstance(reply, Mapping) else None
    if not isinstance(last_write, Mapping):
        return None
    value = last_write.get("lastWriteDate")
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return (value - _EPOCH).total_seconds()
    if isinstance(value, (bool, str)) or not isinstance(value, SupportsInt):
        return None
    return int(value) / 1000.0  # bson's DatetimeMS (a date outside datetime's range)


def staleness_with_primary(
    secondary: ServerDescription, primary: ServerDescription, heartbeat_frequency: float
) -> Optional[float]:
    """The secondary's estimated staleness in seconds while ``primary`` is known, or None
    when a date is missing."""
    values = (
        secondary.last_update_time,
        secondary.last_write_date,
        primary.last_update_time,
        primary.last_write_date,
    )
    if any(value is None for value in values):
        return None
    s_update, s_write, p_update, p_write = values
    assert s_update is not None and s_write is not None  # for mypy
    assert p_update is not None and p_write is not None
    return (s_update - s_write) - (p_update - p_write) + heartbeat_frequency


def staleness_without_primary(
    secondary: ServerDescription, newest_write: Optional[float], heartbeat_frequency: float
) -> Optional[float]:
    """The secondary's estimated staleness in seconds with no primary known, measured from
    ``newest_write`` (SMax's last write date), or None when a date is missing."""
    if secondary.last_write_date is None or newest_write is None:
        return None
    return newest_write - secondary.last_write_date + heartbeat_frequency


def estimate_staleness(
    view: TopologyView, heartbeat_frequency: float
) -> Dict[Any, Optional[float]]:
    """Address -> estimated staleness (seconds, or None: unknown) of every secondary."""
    secondaries = view.secondaries
    primary = view.primary_description
    if primary is not None:
        return {
            sd.address: staleness_with_primary(sd, primary, heartbeat_frequency)
            for sd in secondaries
        }
    dates = [sd.last_write_date for sd in secondaries if sd.last_write_date is not None]
    newest = max(dates) if dates else None
    return {
        sd.address: staleness_without_primary(sd, newest, heartbeat_frequency) for sd in secondaries
    }


def describe_staleness(view: TopologyView, max_staleness: int, heartbeat_frequency: float) -> str:
    """``'; estimated staleness (max 120 s): a:1 130 s, b:2 unknown'`` for an error message,
    or ``''`` when there is no maximum or no secondary."""
    estimates = estimate_staleness(view, heartbeat_frequency)
    if max_staleness == NO_MAX_STALENESS or not estimates:
        return ""
    parts = [
        f"{format_address(address)} {'unknown' if value is None else f'{value:.0f} s'}"
        for address, value in sorted(estimates.items())
    ]
    return f"; estimated staleness (max {max_staleness} s): {', '.join(parts)}"


def fresh_enough(
    view: TopologyView,
    candidates: Iterable[ServerDescription],
    max_staleness: int,
    heartbeat_frequency: float,
) -> List[ServerDescription]:
    """The candidates eligible under ``max_staleness`` (all of them for ``-1``): secondaries
    whose estimated staleness is at most ``max_staleness``, and any non-secondary (the
    primary has no staleness)."""
    chosen = list(candidates)
    if max_staleness == NO_MAX_STALENESS:
        return chosen
    estimates = estimate_staleness(view, heartbeat_frequency)
    eligible = []
    for sd in chosen:
        if sd.address not in estimates:  # not a secondary: never stale
            eligible.append(sd)
            continue
        staleness = estimates[sd.address]
        if staleness is not None and staleness <= max_staleness:
            eligible.append(sd)
    return eligible


__all__ = [
    "IDLE_WRITE_PERIOD",
    "MAX_STALENESS_WIRE_VERSION",
    "SMALLEST_MAX_STALENESS",
    "check_max_staleness",
    "check_wire_versions",
    "describe_staleness",
    "estimate_staleness",
    "fresh_enough",
    "last_write_date",
    "staleness_with_primary",
    "staleness_without_primary",
]
