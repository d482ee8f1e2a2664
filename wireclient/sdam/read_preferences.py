"""Read preferences and member selection: which member of a replica set a read goes to.

Theory of operation
-------------------
A ``ReadPreference`` is a small frozen value: a mode, a tuple of tag sets and a max
staleness in seconds (``-1``: none). The five modes are class constants, as in pymongo 2.x
(``ReadPreference.SECONDARY``); tags are added with
``ReadPreference.SECONDARY.with_tag_sets([{'dc': 'ny'}, {}])`` or
``ReadPreference('secondary', tag_sets=[...])``, a max staleness with
``ReadPreference('secondary', max_staleness=120)`` or ``.with_max_staleness(120)``.
``document()`` renders the ``$readPreference`` field an OP_MSG read sent to a secondary (or
a mongos) must carry, ``maxStalenessSeconds`` included when set.

``select(view, read_preference)`` is pure: it takes a ``TopologyView`` snapshot and returns
the addresses the read may go to, nearest first:

1. candidates by mode: the primary, the secondaries (type Secondary only: hidden members and
   arbiters are never chosen), or both (``NEAREST``); ``*_PREFERRED`` falls back to the other
   kind when the first gives nothing;
2. with a max staleness, secondaries estimated staler than it are dropped
   (``wireclient.sdam.staleness``: the formulas, and the checks that raise ``ConfigurationError``
   at selection: a value too small for ``heartbeat_frequency``, or a member too old to
   report its last write);
3. tag sets are tried in order, and the first one that matches at least one candidate wins
   (a member matches a tag set when it carries every tag of it; ``{}`` matches everyone).
   Tags never apply to the primary in ``PRIMARY`` / ``PRIMARY_PREFERRED`` mode;
4. the latency window: only candidates whose moving-average round-trip time is within
   ``local_threshold_ms`` of the fastest candidate stay.

``choose(view, read_preference)`` picks one of those at random, so reads spread over the
window. An empty result means "no suitable member now": the caller asks the monitor for a
check and waits, up to ``serverSelectionTimeoutMS``.
"""

from __future__ import annotations

import random
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from wireclient.errors import ConfigurationError
from wireclient.rules.options import (
    DEFAULT_HEARTBEAT_FREQUENCY_MS,
    DEFAULT_LOCAL_THRESHOLD_MS,
    NO_MAX_STALENESS,
    READ_PREFERENCE_MODES,
    max_staleness_value,
)
from wireclient.rules.uri import Address
from wireclient.sdam.staleness import check_max_staleness, check_wire_versions, fresh_enough

if TYPE_CHECKING:  # a read preference is made without loading the topology
    from wireclient.sdam.topology import ServerDescription, TopologyView

# seconds: what staleness estimates add (see staleness.py)
DEFAULT_HEARTBEAT_FREQUENCY = DEFAULT_HEARTBEAT_FREQUENCY_MS / 1000

TagSet = Mapping[str, str]
FrozenTagSets = Tuple[Tuple[Tuple[str, str], ...], ...]

_MODES = READ_PREFERENCE_MODES  # the option table's spelling and pymongo-2.x order (0-4)
_NAMES = {
    "primary": "PRIMARY",
    "primaryPreferred": "PRIMARY_PREFERRED",
    "secondary": "SECONDARY",
    "secondaryPreferred": "SECONDARY_PREFERRED",
    "nearest": "NEAREST",
}
_BY_NAME = {name.lower(): mode for mode, name in _NAMES.items()}
_BY_NAME.update({mode.lower(): mode for mode in _MODES})


def _freeze_tag_sets(tag_sets: Optional[Iterable[TagSet]]) -> FrozenTagSets:
    if tag_sets is None:
        return ((),)
    if isinstance(tag_sets, Mapping):
        raise ConfigurationError("tag_sets must be a list of dicts, e.g. [{'dc': 'ny'}, {}]")
    frozen = []
    for tag_set in tag_sets:
        if not isinstance(tag_set, Mapping):
            raise ConfigurationError(f"each tag set must be a dict, not {tag_set!r}")
        frozen.append(tuple(sorted((str(k), str(v)) for k, v in tag_set.items())))
    if not frozen:
        raise ConfigurationError("tag_sets must not be empty; use [{}] to match any member")
    return tuple(frozen)


class ReadPreference:
    """A read preference: a mode, tag sets and a max staleness. Frozen and hashable.

    ``ReadPreference.PRIMARY`` (the default), ``PRIMARY_PREFERRED``, ``SECONDARY``,
    ``SECONDARY_PREFERRED``, ``NEAREST``; ``ReadPreference('nearest', tag_sets=[...])``;
    ``ReadPreference('secondary', max_staleness=120)``: only secondaries estimated at most
    120 s behind the primary (``-1`` or ``None``, the default: no maximum; a positive value
    with ``primary`` is a ``ConfigurationError``).
    """

    __slots__ = ("_mode", "_tag_sets", "_max_staleness")

    PRIMARY: ClassVar[ReadPreference]
    PRIMARY_PREFERRED: ClassVar[ReadPreference]
    SECONDARY: ClassVar[ReadPreference]
    SECONDARY_PREFERRED: ClassVar[ReadPreference]
    NEAREST: ClassVar[ReadPreference]

    _mode: str
    _tag_sets: FrozenTagSets
    _max_staleness: int

    def __init__(
        self,
        mode: str,
        tag_sets: Optional[Iterable[TagSet]] = None,
        max_staleness: Optional[int] = NO_MAX_STALENESS,
    ) -> None:
        canonical = _BY_NAME.get(str(mode).lower())
        if canonical is None:
            raise ConfigurationError(
                f"unknown read preference mode {mode!r}; use one of {', '.join(_MODES)}"
            )
        frozen = _freeze_tag_sets(tag_sets)
        if canonical == "primary" and frozen != ((),):
            raise ConfigurationError("read preference PRIMARY cannot have tag sets")
        staleness = max_staleness_value(max_staleness, "max_staleness")
        if canonical == "primary" and staleness != NO_MAX_STALENESS:
            raise ConfigurationError(
                "read preference PRIMARY cannot have a max staleness (maxStalenessSeconds)"
            )
        object.__setattr__(self, "_mode", canonical)
        object.__setattr__(self, "_tag_sets", frozen)
        object.__setattr__(self, "_max_staleness", staleness)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ReadPreference is immutable")

    @classmethod
    def from_value(cls, value: Any) -> ReadPreference:
        """A ReadPreference from a ReadPreference, a mode name (``'secondary'``,
        ``'SECONDARY'``, ``'secondaryPreferred'``) or a pymongo 2.x integer (0-4)."""
        if isinstance(value, ReadPreference):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(_MODES):
            return cls(_MODES[value])
        if isinstance(value, str):
            return cls(value)
        raise ConfigurationError(f"not a read preference: {value!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ReadPreference:
        """The read preference of validated connection options: ``readPreference``,
        ``readPreferenceTags`` and ``maxStalenessSeconds`` (each may be absent)."""
        tags = options.get("readPreferenceTags")
        return cls(
            options.get("readPreference", "primary"),
            tags if tags else None,
            options.get("maxStalenessSeconds", NO_MAX_STALENESS),
        )

    @property
    def mode(self) -> str:
        """The mode as the server spells it: ``'secondaryPreferred'``."""
        return self._mode

    @property
    def name(self) -> str:
        """The mode as the constant is spelled: ``'SECONDARY_PREFERRED'``."""
        return _NAMES[self._mode]

    @property
    def tag_sets(self) -> List[Dict[str, str]]:
        return [dict(tag_set) for tag_set in self._tag_sets]

    @property
    def max_staleness(self) -> int:
        """The max staleness in seconds (``maxStalenessSeconds``), ``-1`` for no maximum."""
        return self._max_staleness

    @property
    def secondary_ok(self) -> bool:
        """May a secondary answer (OP_QUERY's ``secondaryOk`` flag)?"""
        return self._mode != "primary"

    def with_tag_sets(self, tag_sets: Optional[Iterable[TagSet]]) -> ReadPreference:
        """The same mode and max staleness with other tag sets."""
        return ReadPreference(self._mode, tag_sets, self._max_staleness)

    def with_max_staleness(self, max_staleness: Optional[int]) -> ReadPreference:
        """The same mode and tag sets with another max staleness (``-1``/``None``: none)."""
        tag_sets = None if self._tag_sets == ((),) else self.tag_sets
        return ReadPreference(self._mode, tag_sets, max_staleness)

    def document(self) -> Dict[str, Any]:
        """The ``$readPreference`` document:
        ``{'mode': 'secondary', 'tags': [...], 'maxStalenessSeconds': 120}``."""
        doc: Dict[str, Any] = {"mode": self._mode}
        if self._tag_sets != ((),):
            doc["tags"] = self.tag_sets
        if self._max_staleness != NO_MAX_STALENESS:
            doc["maxStalenessSeconds"] = self._max_staleness
        return doc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReadPreference):
            return NotImplemented
        return (
            self._mode == other._mode
            and self._tag_sets == other._tag_sets
            and self._max_staleness == other._max_staleness
        )

    def __hash__(self) -> int:
        return hash((self._mode, self._tag_sets, self._max_staleness))

    def __repr__(self) -> str:
        if self._tag_sets == ((),) and self._max_staleness == NO_MAX_STALENESS:
            return f"ReadPreference.{self.name}"
        text = f"ReadPreference({self._mode!r}"
        if self._tag_sets != ((),):
            text += f", tag_sets={self.tag_sets!r}"
        if self._max_staleness != NO_MAX_STALENESS:
            text += f", max_staleness={self._max_staleness}"
        return text + ")"

    def __reduce__(self) -> Tuple[Any, ...]:
        return (ReadPreference, (self._mode, self.tag_sets, self._max_staleness))


ReadPreference.PRIMARY = ReadPreference("primary")
ReadPreference.PRIMARY_PREFERRED = ReadPreference("primaryPreferred")
ReadPreference.SECONDARY = ReadPreference("secondary")
ReadPreference.SECONDARY_PREFERRED = ReadPreference("secondaryPreferred")
ReadPreference.NEAREST = ReadPreference("nearest")


def _matches(sd: ServerDescription, tag_set: Tuple[Tuple[str, str], ...]) -> bool:
    return all(sd.tags.get(key) == value for key, value in tag_set)


def _rtt(sd: ServerDescription) -> float:
    return sd.round_trip_time if sd.round_trip_time is not None else 0.0


def _by_tags(
    candidates: Sequence[ServerDescription], tag_sets: FrozenTagSets
) -> List[ServerDescription]:
    for tag_set in tag_sets:
        matched = [sd for sd in candidates if _matches(sd, tag_set)]
        if matched:
            return matched
    return []


def _in_window(
    candidates: Sequence[ServerDescription], local_threshold_ms: float
) -> List[ServerDescription]:
    if not candidates:
        return []
    ordered = sorted(candidates, key=_rtt)
    limit = _rtt(ordered[0]) + local_threshold_ms / 1000.0
    return [sd for sd in ordered if _rtt(sd) <= limit]


def select(
    view: TopologyView,
    read_preference: ReadPreference = ReadPreference.PRIMARY,
    tag_sets: Optional[Iterable[TagSet]] = None,
    local_threshold_ms: float = DEFAULT_LOCAL_THRESHOLD_MS,
    heartbeat_frequency: float = DEFAULT_HEARTBEAT_FREQUENCY,
) -> List[Address]:
    """Addresses a read with ``read_preference`` may go to now, nearest first.

    ``tag_sets``, when given, replaces the preference's own (pymongo 2.x passed them apart).
    ``heartbeat_frequency`` (seconds) is how often the monitor checks members, which max
    staleness needs. An empty list means no member is suitable at the moment. A max
    staleness the set cannot honour raises ``ConfigurationError`` (``staleness.py``).
    """
    pref = read_preference if tag_sets is None else read_preference.with_tag_sets(tag_sets)
    mode = pref.mode
    max_staleness = pref._max_staleness
    if max_staleness != NO_MAX_STALENESS:
        check_max_staleness(max_staleness, heartbeat_frequency)
        check_wire_versions(view, max_staleness)
    primary = view.primary_description
    if mode == "primary" or (mode == "primaryPreferred" and primary is not None):
        return [primary.address] if primary is not None else []
    if mode == "nearest":
        candidates = list(view.secondaries) + ([primary] if primary is not None else [])
    else:
        candidates = view.secondaries
    if max_staleness != NO_MAX_STALENESS:
        candidates = fresh_enough(view, candidates, max_staleness, heartbeat_frequency)
    if mode == "nearest":
        return [
            sd.address
            for sd in _in_window(_by_tags(candidates, pref._tag_sets), local_threshold_ms)
        ]
    chosen = _in_window(_by_tags(candidates, pref._tag_sets), local_threshold_ms)
    if not chosen and mode == "secondaryPreferred" and primary is not None:
        return [primary.address]
    return [sd.address for sd in chosen]


def choose(
    view: TopologyView,
    read_preference: ReadPreference = ReadPreference.PRIMARY,
    tag_sets: Optional[Iterable[TagSet]] = None,
    local_threshold_ms: float = DEFAULT_LOCAL_THRESHOLD_MS,
    rng: Optional[random.Random] = None,
    heartbeat_frequency: float = DEFAULT_HEARTBEAT_FREQUENCY,
) -> Optional[Address]:
    """One address chosen at random within the latency window, or None."""
    addresses = select(view, read_preference, tag_sets, local_threshold_ms, heartbeat_frequency)
    if not addresses:
        return None
    return (rng or random).choice(addresses)


def check_read_preference(value: Any, name: str = "read_preference") -> Any:
    """``value`` if it is None or something ``ReadPreference.from_value`` reads (an argument
    check of ``Collection``, ``Database``, ``find``...: see ``rules.arguments``)."""
    if value is not None:
        ReadPreference.from_value(value)
    return value


__all__ = [
    "ReadPreference",
    "check_read_preference",
    "select",
    "choose",
    "DEFAULT_HEARTBEAT_FREQUENCY",
]
