"""What we know about a replica set: one member's description, and a snapshot of the set.

Theory of operation
-------------------
A ``ServerDescription`` is what one ``hello`` (or legacy ``isMaster``) reply says about one
member, classified once: Primary, Secondary, Arbiter, Hidden, Other, Ghost (a member not
yet configured), Standalone, Mongos or Unknown (could not reach it, or it answered
``ok: 0``). It is frozen.

A ``TopologyView`` is an immutable snapshot of the whole set: its name, every member we know
of (address -> description), and the primary's address (or None). ``view.apply(description)``
never changes ``view``; it returns a new view, following the rules of the MongoDB "Server
Discovery and Monitoring" specification for a replica set:

* a description of an address that is not (or no longer) a member is ignored, since it is
  the late answer of a member that was removed meanwhile;
* a standalone, a mongos, or a member of another set is removed from the view and the reason
  is recorded in ``view.errors`` (server selection quotes it when it times out);
* a primary is the authority on membership: members it lists (``hosts``, ``passives``,
  ``arbiters``) are added as Unknown, members it does not list are removed. A primary whose
  ``(electionId, setVersion)`` is older than that of the last primary accepted is stale
  (``server_rules.judge_primary`` holds the order, which differs before MongoDB 6.0): it is
  marked Unknown ("primary marked stale due to electionId/setVersion mismatch") and teaches
  nothing. An accepted primary's pair becomes the view's ``max_election_id`` and
  ``max_set_version``, and it demotes any other primary to Unknown ("primary marked stale
  due to discovery of newer primary": the loser will tell us itself that it is secondary at
  its next check);
* a view never runs out of members: when the last one is refused (a server that answers as
  a standalone while it shuts down does that), the seeds come back as Unknown, so the monitor
  keeps looking where the user said the set lives;
* while there is no primary, any member's list of hosts adds members (discovery from a
  single seed), but only a primary removes them;
* a member whose ``me`` is not the address we reached it by is removed (the set knows it by
  another name, and we will meet it under that name);
* ``topologyVersion`` (a server process's id and a counter it bumps on each state change)
  orders what one process says: a ``hello`` older than what we know of that member is
  ignored, and so is a "not primary" error no newer than it (the member has already told
  us); a member marked Unknown by a newer error keeps the error's version, so an older
  ``hello`` still in flight cannot undo it;
* each description keeps the member's ``lastWrite.lastWriteDate`` (``last_write_date``,
  seconds since the epoch by the primary's clock) and when we heard it (``last_update_time``,
  ``time.monotonic()``), for max staleness (``staleness.py``);
* round-trip times are smoothed: ``0.2 * new + 0.8 * old`` per member, so one slow ping does
  not move reads away from a member;
* a member we know (not Unknown) whose wire-version range misses wireclient's keeps its
  type, but the view records why in ``compatibility_error``, and ``check_compatible()``
  raises it as a ``ConfigurationError`` for server selection until that member changes or
  leaves.

The view is swapped as a whole by ``Topology`` (``engine/topology_cell.py``), the one mutable
cell that the monitor and the operations meeting errors both write through. The routers of a
sharded cluster have a view of their own, with other rules (``routers.py``); it shares the
helpers here that are not about a replica set (``smoothed``, ``remember_error``,
``compatibility_error``).
"""

from __future__ import annotations

import time
import types
from typing import (
    Any,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
)

from wireclient.errors import ConfigurationError
from wireclient.rules import replies
from wireclient.rules.uri import Address, format_address, parse_host
from wireclient.rules.wire import wire_version_error
from wireclient.sdam.server_rules import (
    DATA_BEARING_TYPES,
    NEWER_PRIMARY_ERROR,
    STALE_PRIMARY_ERROR,
    ServerType,
    TopologyVersion,
    int_or_none,
    judge_primary,
    parse_topology_version,
    topology_version_is_older,
)
from wireclient.sdam.staleness import last_write_date

RTT_ALPHA = 0.2  # weight of a new round-trip sample in the moving average
MAX_ERRORS = 10  # refusal messages a view remembers


def _addresses(values: Any) -> FrozenSet[Address]:
    if not values:
        return frozenset()
    return frozenset(parse_host(str(v)) for v in values)


# Immutable records are NamedTuples (not dataclasses, whose import costs more than this whole
# module): fields are read-only, ``_replace`` makes a changed copy.
_NO_TAGS: Mapping[str, str] = types.MappingProxyType({})


class ServerDescription(NamedTuple):
    """One member as its last ``hello`` reply described it (or Unknown, with ``error``).

    ``round_trip_time`` is in seconds; inside a ``TopologyView`` it is the moving average.
    ``last_write_date`` (seconds since the epoch) is the member's ``lastWrite.lastWriteDate``;
    ``last_update_time`` is the client's ``time.monotonic()`` when the reply arrived.
    """

    address: Address
    server_type: ServerType = ServerType.UNKNOWN
    set_name: Optional[str] = None
    hosts: FrozenSet[Address] = frozenset()
    passives: FrozenSet[Address] = frozenset()
    arbiters: FrozenSet[Address] = frozenset()
    tags: Mapping[str, str] = _NO_TAGS
    primary: Optional[Address] = None  # the primary this member believes in
    me: Optional[Address] = None
    election_id: Any = None  # a bson ObjectId; compared, never interpreted
    set_version: Optional[int] = None
    min_wire_version: int = 0
    max_wire_version: int = 0
    round_trip_time: Optional[float] = None
    error: Optional[str] = None
    topology_version: Optional[TopologyVersion] = None
    last_write_date: Optional[float] = None
    last_update_time: Optional[float] = None

    @classmethod
    def unknown(
        cls,
        address: Address,
        error: Optional[str] = None,
        topology_version: Optional[TopologyVersion] = None,
    ) -> ServerDescription:
        return cls(address=address, error=error, topology_version=topology_version)

    @classmethod
    def from_reply(
        cls,
        address: Address,
        reply: Mapping[str, Any],
        round_trip_time: Optional[float],
        last_update_time: Optional[float] = None,
    ) -> ServerDescription:
        """Classify a ``hello`` / ``isMaster`` reply from ``address``. A reply that does not
        parse (a field the description is made of has the wrong type, or a host list holds
        something that is not an address: ``replies.hello``) raises ``ProtocolError``; the
        monitor makes that member Unknown with the error's message. ``last_update_time``
        defaults to now (``time.monotonic()``)."""
        limits = replies.hello(reply, replies.describe("hello", format_address(address)))
        topology_version = parse_topology_version(reply.get("topologyVersion"))
        if limits is None:
            message = reply.get("errmsg") or "hello failed"
            return cls.unknown(address, f"{format_address(address)}: {message}", topology_version)
        set_name = reply.get("setName")
        if reply.get("msg") == "isdbgrid":
            server_type = ServerType.MONGOS
        elif reply.get("isreplicaset"):
            server_type = ServerType.GHOST  # a member not yet configured
        elif set_name is None:
            server_type = ServerType.STANDALONE
        elif reply.get("isWritablePrimary") or reply.get("ismaster"):
            server_type = ServerType.PRIMARY
        elif reply.get("hidden"):
            server_type = ServerType.HIDDEN
        elif reply.get("secondary"):
            server_type = ServerType.SECONDARY
        elif reply.get("arbiterOnly"):
            server_type = ServerType.ARBITER
        else:
            server_type = ServerType.OTHER
        tags = reply.get("tags") or {}
        return cls(
            address=address,
            server_type=server_type,
            set_name=str(set_name) if set_name is not None else None,
            hosts=_addresses(reply.get("hosts")),
            passives=_addresses(reply.get("passives")),
            arbiters=_addresses(reply.get("arbiters")),
            tags={str(k): str(v) for k, v in dict(tags).items()},
            primary=parse_host(str(reply["primary"])) if reply.get("primary") else None,
            me=parse_host(str(reply["me"])) if reply.get("me") else None,
            election_id=reply.get("electionId"),
            set_version=int_or_none(reply.get("setVersion")),
            min_wire_version=limits.min_wire_version,
            max_wire_version=limits.max_wire_version,
            round_trip_time=round_trip_time,
            topology_version=topology_version,
            last_write_date=last_write_date(reply),
            last_update_time=time.monotonic() if last_update_time is None else last_update_time,
        )

    @property
    def all_hosts(self) -> FrozenSet[Address]:
        """Every member this description lists: hosts, passives and arbiters."""
        return self.hosts | self.passives | self.arbiters

    @property
    def is_readable(self) -> bool:
        """Primary or Secondary: a member reads may be sent to (hidden members never are)."""
        return self.server_type in (ServerType.PRIMARY, ServerType.SECONDARY)

    @property
    def is_data_bearing(self) -> bool:
        return self.server_type in DATA_BEARING_TYPES

    def __str__(self) -> str:
        text = f"{format_address(self.address)} ({self.server_type.value}"
        if self.round_trip_time is not None:
            text += f", {self.round_trip_time * 1000:.1f} ms"
        if self.error:
            text += f": {self.error}"
        return text + ")"


def same_description(a: Optional[ServerDescription], b: Optional[ServerDescription]) -> bool:
    """Whether two descriptions of a server say the same thing: the SDAM monitoring
    specification's equality, which leaves out what each check measures anew (round-trip
    time, when the reply came, the member's last write date). Events are published only
    for a description that is not the same."""
    if a is None or b is None:
        return a is b
    return a._replace(**_MEASURED) == b._replace(**_MEASURED)


_MEASURED: Dict[str, Any] = {
    "round_trip_time": None,
    "last_update_time": None,
    "last_write_date": None,
}


def smoothed(sd: ServerDescription, old: ServerDescription) -> ServerDescription:
    """``sd`` with its round-trip time averaged with ``old``'s: ``0.2 * new + 0.8 * old``."""
    if sd.round_trip_time is not None and old.round_trip_time is not None:
        average = RTT_ALPHA * sd.round_trip_time + (1 - RTT_ALPHA) * old.round_trip_time
        return sd._replace(round_trip_time=average)
    return sd


def remember_error(errors: List[str], message: str) -> None:
    """Add why a server was refused; refused again at every check, it is kept once, newest."""
    if message in errors:
        errors.remove(message)
    errors.append(message)


def compatibility_error(members: Iterable[ServerDescription]) -> Optional[str]:
    """The first known member (not Unknown) whose wire range misses ours, if any."""
    for sd in members:
        if sd.server_type is not ServerType.UNKNOWN:
            where = format_address(sd.address)
            error = wire_version_error(where, sd.min_wire_version, sd.max_wire_version)
            if error is not None:
                return error
    return None


class TopologyView(NamedTuple):
    """An immutable snapshot of a replica set. Build one with ``TopologyView.from_seeds``."""

    set_name: Optional[str]
    members: Mapping[Address, ServerDescription]
    primary: Optional[Address] = None
    max_election_id: Any = None
    max_set_version: Optional[int] = None
    errors: Tuple[str, ...] = ()
    seeds: Tuple[Address, ...] = ()
    # Why wireclient cannot talk to some member (its wire range does not overlap ours), or
    # None; server selection refuses to choose while it is set (see ``check_compatible``).
    compatibility_error: Optional[str] = None

    @classmethod
    def from_seeds(cls, seeds: Iterable[Address], set_name: Optional[str]) -> TopologyView:
        seed_list = tuple(dict.fromkeys(seeds))
        if not seed_list:
            raise ConfigurationError("a replica set connection needs at least one seed")
        return cls(
            set_name=set_name,
            members=types.MappingProxyType(
                {address: ServerDescription.unknown(address) for address in seed_list}
            ),
            seeds=seed_list,
        )

    # -- reading ---------------------------------------------------------------------------

    @property
    def primary_description(self) -> Optional[ServerDescription]:
        return self.members.get(self.primary) if self.primary is not None else None

    def of_type(self, *types: ServerType) -> List[ServerDescription]:
        return [sd for sd in self.members.values() if sd.server_type in types]

    @property
    def secondaries(self) -> List[ServerDescription]:
        return self.of_type(ServerType.SECONDARY)

    @property
    def data_members(self) -> List[Address]:
        """Addresses of members that hold data and may get a pool (not arbiters)."""
        return [a for a, sd in self.members.items() if sd.is_data_bearing]

    @property
    def compatible(self) -> bool:
        """Whether every known member speaks a wire version wireclient speaks."""
        return self.compatibility_error is None

    def check_compatible(self) -> None:
        """Raise ``ConfigurationError`` (naming the member and both wire ranges) when some
        member's wire range does not overlap wireclient's; server selection calls this."""
        if self.compatibility_error is not None:
            raise ConfigurationError(self.compatibility_error)

    def describe(self) -> str:
        """A one-line summary for error messages."""
        return self._describe(f"replica set {self.set_name or '?'}", "no members")

    def _describe(self, title: str, empty: str) -> str:
        parts = ", ".join(str(sd) for sd in self.members.values()) or empty
        text = f"{title}: {parts}"
        if self.errors:
            text += "; " + "; ".join(self.errors[-3:])
        if self.compatibility_error is not None:
            text += "; " + self.compatibility_error
        return text

    # -- updating --------------------------------------------------------------------------

    def apply(self, description: ServerDescription) -> TopologyView:
        """A new view that takes ``description`` into account (this view is unchanged).

        A description older than what we know of that member (a lower ``topologyVersion``
        of the same server process) changes nothing: this view itself is returned."""
        current = self.members.get(description.address)
        if current is not None and topology_version_is_older(
            description.topology_version, current.topology_version
        ):
            return self
        return _Update(self).apply(description)

    def mark_unknown(
        self, address: Address, error: str, topology_version: Optional[TopologyVersion] = None
    ) -> TopologyView:
        """A new view where ``address`` is Unknown (after a network error or "not primary").

        A "not primary" error carrying a ``topologyVersion`` no newer than the member's
        current one is stale (the member already told us of that change): nothing changes.
        """
        current = self.members.get(address)
        if current is not None and topology_version_is_older(
            topology_version, current.topology_version, or_equal=True
        ):
            return self
        return self.apply(ServerDescription.unknown(address, error, topology_version))


class _Update:
    """A mutable working copy of a view, used only inside ``TopologyView.apply``."""

    def __init__(self, view: TopologyView) -> None:
        self.view = view
        self.set_name = view.set_name
        self.members: Dict[Address, ServerDescription] = dict(view.members)
        self.primary = view.primary
        self.max_election_id = view.max_election_id
        self.max_set_version = view.max_set_version
        self.errors = list(view.errors)

    def result(self) -> TopologyView:
        if not self.members:  # everyone was refused: start again from the user's seeds
            why = self.errors[-1] if self.errors else None
            self.members = {seed: ServerDescription.unknown(seed, why) for seed in self.view.seeds}
        if self.primary is not None:
            sd = self.members.get(self.primary)
            if sd is None or sd.server_type is not ServerType.PRIMARY:
                self.primary = None
        return TopologyView(
            set_name=self.set_name,
            members=types.MappingProxyType(self.members),
            primary=self.primary,
            max_election_id=self.max_election_id,
            max_set_version=self.max_set_version,
            errors=tuple(self.errors[-MAX_ERRORS:]),
            seeds=self.view.seeds,
            compatibility_error=compatibility_error(self.members.values()),
        )

    def refuse(self, address: Address, message: str) -> None:
        self.members.pop(address, None)
        remember_error(self.errors, message)

    def apply(self, sd: ServerDescription) -> TopologyView:
        address = sd.address
        old = self.members.get(address)
        if old is None:
            return self.view  # not a member (any more): a late answer, ignored
        sd = smoothed(sd, old)
        self.members[address] = sd
        kind = sd.server_type
        where = format_address(address)

        if kind is ServerType.UNKNOWN:
            return self.result()
        if kind is ServerType.STANDALONE:
            self.refuse(
                address,
                f"{where} is a standalone server, not a replica set member"
                f"{self._wanted()}; remove it from the seed list",
            )
            return self.result()
        if kind is ServerType.MONGOS:
            self.refuse(address, f"{where} is a mongos, not a replica set member{self._wanted()}")
            return self.result()
        if kind is ServerType.GHOST or sd.set_name is None:
            return self.result()  # no configuration yet: nothing to learn from it
        if self.set_name is None:
            self.set_name = sd.set_name
        elif sd.set_name != self.set_name:
            self.refuse(
                address,
                f"{where} is a member of replica set {sd.set_name!r}, not {self.set_name!r}",
            )
            return self.result()

        if kind is ServerType.PRIMARY:
            self._from_primary(sd)
        elif self.primary is None:
            self._without_primary(sd)
        else:
            self._from_member_with_primary(sd)
        return self.result()

    def _wanted(self) -> str:
        return f" of {self.set_name!r}" if self.set_name else ""

    def _from_primary(self, sd: ServerDescription) -> None:
        address = sd.address
        verdict = judge_primary(
            sd.max_wire_version,
            sd.election_id,
            sd.set_version,
            self.max_election_id,
            self.max_set_version,
        )
        if verdict.stale:  # an election we already know was followed by a newer one
            self.members[address] = ServerDescription.unknown(
                address,
                f"{STALE_PRIMARY_ERROR} (stale primary: {format_address(address)} reports "
                f"electionId {sd.election_id}, setVersion {sd.set_version}; the last primary "
                f"accepted had electionId {self.max_election_id}, "
                f"setVersion {self.max_set_version})",
            )
            return
        self.max_election_id = verdict.max_election_id
        self.max_set_version = verdict.max_set_version

        for other, description in list(self.members.items()):
            if other != address and description.server_type is ServerType.PRIMARY:
                # Two primaries: the newer one (this one, having passed the check above)
                # wins; the loser will tell us itself that it is secondary at its next check.
                self.members[other] = ServerDescription.unknown(
                    other, f"{NEWER_PRIMARY_ERROR}: {format_address(address)} was elected since"
                )
        self.primary = address

        listed = sd.all_hosts
        for member in sorted(listed):  # a stable order (events, checks)
            if member not in self.members:
                self.members[member] = ServerDescription.unknown(member)
        for member in list(self.members):
            if member not in listed:
                del self.members[member]

    def _without_primary(self, sd: ServerDescription) -> None:
        for member in sorted(sd.all_hosts):
            if member not in self.members:
                self.members[member] = ServerDescription.unknown(member)
        if sd.me is not None and sd.me != sd.address:
            del self.members[sd.address]

    def _from_member_with_primary(self, sd: ServerDescription) -> None:
        if sd.me is not None and sd.me != sd.address:
            del self.members[sd.address]


__all__ = [
    "MAX_ERRORS",
    "RTT_ALPHA",
    "ServerDescription",
    "TopologyView",
    "compatibility_error",
    "remember_error",
    "same_description",
    "smoothed",
]
