"""The settings a Connection, a Database and a Collection carry, as pymongo 2.8 named them.

``read_preference``, ``tag_sets`` and ``write_concern`` exist on all three. A database and
a collection *inherit*: until one is set on them, they use their parent's current value
(the connection's for a database, the database's for a collection), so changing the
connection's later changes theirs; setting one on a database or collection keeps it there
(the objects are cached: ``c.db.coll`` is always the same ``Collection``), and setting it
back to ``None`` inherits again. ``write_concern`` reads as 2.8's dict (``{}`` is the
server's default, acknowledged; ``{'w': 0}`` unacknowledged), and changing a key of that
dict (``c.write_concern['w'] = 2``) changes the setting, as it did in 2.8.

A connection also has ``secondary_acceptable_latency_ms`` (the replica set's latency
window), ``document_class`` (the class of the documents cursors return; settable) and
``tz_aware`` (datetimes returned with ``tzinfo=UTC``). ``shaper`` turns those two into the
function a cursor applies to each document it returns (none, for ``dict`` and naive
datetimes: the documents stay as decoded).
"""

from __future__ import annotations

import datetime
from collections.abc import MutableMapping as MutableMappingABC
from typing import Any, Callable, Dict, Iterator, List, MutableMapping, Optional

from wireclient.errors import ConfigurationError, InvalidArgument
from wireclient.rules.arguments import type_name
from wireclient.rules.command import WriteConcern
from wireclient.sdam.read_preferences import check_read_preference

Shaper = Callable[[Dict[str, Any]], Any]


class WriteConcernDict(MutableMappingABC):  # type: ignore[type-arg]
    """``write_concern`` as 2.8 showed it: a dict whose changes set its owner's write
    concern (each change is checked first, and refused as a whole if bad)."""

    def __init__(self, document: Dict[str, Any], apply: Callable[[Dict[str, Any]], None]):
        self._doc = dict(document)
        self._apply = apply

    def __getitem__(self, key: str) -> Any:
        return self._doc[key]

    def __setitem__(self, key: str, value: Any) -> None:
        changed = {**self._doc, key: value}
        self._apply(changed)
        self._doc = changed

    def __delitem__(self, key: str) -> None:
        changed = dict(self._doc)
        del changed[key]
        self._apply(changed)
        self._doc = changed

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc)

    def __len__(self) -> int:
        return len(self._doc)

    def __repr__(self) -> str:
        return repr(self._doc)


def _primary() -> Any:
    from wireclient.sdam.read_preferences import ReadPreference  # only when asked for

    return ReadPreference.PRIMARY


def _with_tag_sets(read_preference: Any, tag_sets: Any) -> Any:
    from wireclient.sdam.read_preferences import ReadPreference

    return ReadPreference.from_value(read_preference).with_tag_sets(tag_sets)


def _tag_sets_of(read_preference: Any) -> List[Dict[str, str]]:
    from wireclient.sdam.read_preferences import ReadPreference

    tag_sets: List[Dict[str, str]] = ReadPreference.from_value(read_preference).tag_sets
    return tag_sets


class InheritedSettings:
    """``read_preference``, ``tag_sets`` and ``write_concern`` of a Database or Collection:
    its own once set, else its parent's (see the module notes)."""

    __slots__ = ()

    _read_preference: Any
    _write_concern: Optional[WriteConcern]

    def _settings_parent(self) -> Any:
        raise NotImplementedError

    @property
    def read_preference(self) -> Any:
        if self._read_preference is not None:
            return self._read_preference
        return self._settings_parent().read_preference

    @read_preference.setter
    def read_preference(self, value: Any) -> None:
        self._read_preference = check_read_preference(value)

    def _operation_read_preference(self) -> Any:
        """What the operation path is given: None means the connection's own."""
        if self._read_preference is not None:
            return self._read_preference
        return self._settings_parent()._operation_read_preference()

    @property
    def tag_sets(self) -> List[Dict[str, str]]:
        return _tag_sets_of(self.read_preference)

    @tag_sets.setter
    def tag_sets(self, value: Any) -> None:
        self._read_preference = _with_tag_sets(self.read_preference, value)

    def _effective_write_concern(self) -> WriteConcern:
        if self._write_concern is not None:
            return self._write_concern
        return self._settings_parent()._effective_write_concern()  # type: ignore[no-any-return]

    @property
    def write_concern(self) -> WriteConcernDict:
        return WriteConcernDict(self._effective_write_concern().document(), self._set_wc)

    @write_concern.setter
    def write_concern(self, value: Any) -> None:
        concern = None if value is None else WriteConcern.from_document(value)
        setattr(self, "_write_concern", concern)  # noqa: B010 - a slot of the subclass

    def _set_wc(self, document: Dict[str, Any]) -> None:
        setattr(self, "_write_concern", WriteConcern.from_document(document))  # noqa: B010


def check_document_class(value: Any, name: str = "document_class") -> type:
    """A mapping class documents can be built in (``dict``, ``bson.son.SON``,
    ``collections.OrderedDict``...)."""
    if not isinstance(value, type) or not issubclass(value, MutableMappingABC):
        raise InvalidArgument(
            f"{name} must be a mutable mapping class such as dict or bson.son.SON, not {value!r}"
        )
    return value


class ConnectionSettings:
    """The connection's side of the settings (a replica-set connection, and a connection to
    several mongos routers, keep the read preference and the latency window in their
    selector: see ``replica_set.py`` and ``mongos.py``)."""

    _read_pref: Any = None  # one server: reads go to it (PRIMARY)
    _routers: Any = None  # several mongos routers: their selector keeps these (mongos.py)
    _write_concern: WriteConcern
    _document_class: type = dict
    _tz_aware: bool = False
    _latency_ms: float = 15.0

    def _operation_read_preference(self) -> Any:
        routers = self._routers
        return self._read_pref if routers is None else routers.read_preference

    def _store_read_preference(self, read_preference: Any) -> None:
        if self._routers is not None:  # passed to the routers as $readPreference
            self._routers.read_preference = read_preference
            return
        if read_preference.mode != "primary":
            raise ConfigurationError(
                f"read preference {read_preference.name} applies to a replica set: "
                "use ReplicaSetConnection"
            )
        self._read_pref = read_preference

    @property
    def read_preference(self) -> Any:
        """The default read preference (``ReadPreference.PRIMARY`` for one server)."""
        value = self._operation_read_preference()
        return _primary() if value is None else value

    @read_preference.setter
    def read_preference(self, value: Any) -> None:
        from wireclient.sdam.read_preferences import ReadPreference

        self._store_read_preference(ReadPreference.from_value(value))

    @property
    def tag_sets(self) -> List[Dict[str, str]]:
        return _tag_sets_of(self.read_preference)

    @tag_sets.setter
    def tag_sets(self, value: Any) -> None:
        self._store_read_preference(_with_tag_sets(self.read_preference, value))

    def _effective_write_concern(self) -> WriteConcern:
        return self._write_concern

    @property
    def write_concern(self) -> WriteConcernDict:
        """2.8's dict: ``{}`` (acknowledged, the server's default), ``{'w': 0}``, ..."""
        return WriteConcernDict(self._write_concern.document(), self._set_wc)

    @write_concern.setter
    def write_concern(self, value: Any) -> None:
        self._write_concern = WriteConcern.from_document({} if value is None else value)

    def _set_wc(self, document: Dict[str, Any]) -> None:
        self._write_concern = WriteConcern.from_document(document)

    @property
    def secondary_acceptable_latency_ms(self) -> float:
        """The latency window of replica-set reads, or of the choice among mongos routers
        (``localThresholdMS``), in ms; settable."""
        routers = self._routers
        return self._latency_ms if routers is None else float(routers.local_threshold_ms)

    @secondary_acceptable_latency_ms.setter
    def secondary_acceptable_latency_ms(self, value: Any) -> None:
        if self._routers is not None:
            self._routers.local_threshold_ms = check_latency(value)
        else:
            self._latency_ms = check_latency(value)

    @property
    def document_class(self) -> type:
        """The class of documents cursors return (``dict`` by default); settable."""
        return self._document_class

    @document_class.setter
    def document_class(self, value: Any) -> None:
        self._document_class = check_document_class(value)

    @property
    def tz_aware(self) -> bool:
        """Whether returned datetimes carry ``tzinfo=UTC`` (else they are naive UTC)."""
        return self._tz_aware


def check_latency(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(
            f"secondary_acceptable_latency_ms must be a number, not {type_name(value)}"
        )
    if value < 0:
        raise ConfigurationError(f"secondary_acceptable_latency_ms must be >= 0, not {value}")
    return float(value)


def shaper(document_class: type, tz_aware: bool) -> Optional[Shaper]:
    """The function that rebuilds a decoded document (and every document inside it) as
    ``document_class`` with UTC-aware datetimes, or None when there is nothing to change."""
    if document_class is dict and not tz_aware:
        return None
    utc = datetime.timezone.utc

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            out: MutableMapping[str, Any] = document_class()
            for key, item in value.items():
                out[key] = convert(item)
            return out
        if isinstance(value, list):
            return [convert(item) for item in value]
        if tz_aware and isinstance(value, datetime.datetime) and value.tzinfo is None:
            return value.replace(tzinfo=utc)
        return value

    return convert


__all__ = [
    "ConnectionSettings",
    "InheritedSettings",
    "WriteConcernDict",
    "check_document_class",
    "check_latency",
    "shaper",
]
