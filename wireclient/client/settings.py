"""The settings a Connection, a Database and a Collection carry, as pymongo 2.8 named them.

Theory of operation
-------------------
``read_preference``, ``tag_sets`` and ``write_concern`` exist on all three. Each object owns
a settings collaborator (``_settings``): a ``ConnectionSettings`` for a connection, a
``Settings`` for a database or a collection, linked to its parent's, so the settings form a
chain collection -> database -> connection. The public properties (``READ_PREFERENCE``,
``TAG_SETS``, ``WRITE_CONCERN``, one definition for the three classes) read and write
through it; the operation path asks it once per operation
(``Settings.effective_write_concern``, ``Settings.operation_read_preference``: one walk up
the chain, here). A database and a collection *inherit*: until one is set on them, they
use their parent's current value (the connection's for a database, the database's for a
collection), so changing the connection's later changes theirs; setting one on a database
or collection keeps it there (the objects are cached: ``c.db.coll`` is always the same
``Collection``), and setting it back to ``None`` inherits again. ``write_concern`` reads as
2.8's dict (``{}`` is the server's default, acknowledged; ``{'w': 0}`` unacknowledged), and
changing a key of that dict (``c.write_concern['w'] = 2``) changes the setting, as it did
in 2.8.

A connection also has ``secondary_acceptable_latency_ms`` (the replica set's latency
window), ``document_class`` (the class of the documents cursors return; settable) and
``tz_aware`` (datetimes returned with ``tzinfo=UTC``). ``shaper`` turns those two into the
function a cursor applies to each document it returns (none, for ``dict`` and naive
datetimes: the documents stay as decoded).
"""

from __future__ import annotations

import datetime
from collections.abc import MutableMapping as MutableMappingABC
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    MutableMapping,
    Optional,
    Union,
)

from wireclient.errors import ConfigurationError, InvalidArgument
from wireclient.rules.arguments import type_name
from wireclient.rules.command import WriteConcern

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


def check_read_preference(value: Any) -> Any:
    """``value`` if it is None or a read preference (``sdam.read_preferences`` checks it:
    that module, and the topology rules it imports, load only when one is given, so a
    plain Connection never loads them)."""
    if value is not None:
        from wireclient.sdam.read_preferences import check_read_preference as check

        check(value)
    return value


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


def check_document_class(value: Any, name: str = "document_class") -> type:
    """A mapping class documents can be built in (``dict``, ``bson.son.SON``,
    ``collections.OrderedDict``...)."""
    if not isinstance(value, type) or not issubclass(value, MutableMappingABC):
        raise InvalidArgument(
            f"{name} must be a mutable mapping class such as dict or bson.son.SON, not {value!r}"
        )
    return value


class _Chained:
    """What a ``Settings`` and a ``ConnectionSettings`` answer alike."""

    __slots__ = ()

    if TYPE_CHECKING:
        parent: Optional[AnySettings]
        write_concern: Optional[WriteConcern]

    def effective_write_concern(self) -> WriteConcern:
        """The write concern an operation uses: the nearest one set (the connection always
        has one). One walk up the chain, in this one place."""
        settings: Any = self
        while settings.write_concern is None:
            settings = settings.parent
        return settings.write_concern  # type: ignore[no-any-return]

    def operation_read_preference(self) -> Any:
        """What the operation path is given: the nearest read preference set, else the
        connection's, which its selector keeps (None: one server's)."""
        settings: Any = self
        while settings.parent is not None:
            if settings.read_preference is not None:
                return settings.read_preference
            settings = settings.parent
        return settings.selector.read_preference

    # -- the public properties (``READ_PREFERENCE``, ``TAG_SETS``, ``WRITE_CONCERN``) ------

    def get_read_preference(self) -> Any:
        value = self.operation_read_preference()
        return _primary() if value is None else value

    def get_tag_sets(self) -> List[Dict[str, str]]:
        return _tag_sets_of(self.get_read_preference())

    def get_write_concern(self) -> WriteConcernDict:
        return WriteConcernDict(self.effective_write_concern().document(), self._set_document)

    def _set_document(self, document: Dict[str, Any]) -> None:
        setattr(self, "write_concern", WriteConcern.from_document(document))  # noqa: B010 - a slot of the subclass


class Settings(_Chained):
    """The settings of a Database or a Collection: its own ``read_preference`` and
    ``write_concern`` (None: its parent's), and the parent's settings (a database's: its
    connection's ``ConnectionSettings``; a collection's: its database's)."""

    __slots__ = ("parent", "read_preference", "write_concern")

    def __init__(self, parent: AnySettings, read_preference: Any = None) -> None:
        self.parent = parent
        self.read_preference = check_read_preference(read_preference)
        self.write_concern = None

    def set_read_preference(self, value: Any) -> None:
        self.read_preference = check_read_preference(value)

    def set_tag_sets(self, value: Any) -> None:
        self.read_preference = _with_tag_sets(self.get_read_preference(), value)

    def set_write_concern(self, value: Any) -> None:
        self.write_concern = None if value is None else WriteConcern.from_document(value)


class ConnectionSettings(_Chained):
    """The settings of a Connection, the root of every chain: its write concern, document
    class and ``tz_aware``; its read preference and latency window are its selector's
    (``executor.SingleServer``: None or PRIMARY; a replica set's or the routers' selector:
    whatever the options said), so they have one home."""

    __slots__ = ("selector", "write_concern", "document_class", "tz_aware")
    parent = None

    def __init__(
        self, selector: Any, write_concern: WriteConcern, document_class: type, tz_aware: bool
    ) -> None:
        self.selector = selector
        self.write_concern = write_concern
        self.document_class = document_class
        self.tz_aware = tz_aware

    def set_read_preference(self, value: Any) -> None:
        from wireclient.sdam.read_preferences import ReadPreference

        self.selector.set_read_preference(ReadPreference.from_value(value))

    def set_tag_sets(self, value: Any) -> None:
        self.selector.set_read_preference(_with_tag_sets(self.get_read_preference(), value))

    def set_write_concern(self, value: Any) -> None:
        self.write_concern = WriteConcern.from_document({} if value is None else value)

    def get_latency(self) -> float:
        return float(self.selector.local_threshold_ms)

    def set_latency(self, value: Any) -> None:
        self.selector.local_threshold_ms = check_latency(value)


AnySettings = Union[Settings, ConnectionSettings]


def _property(name: str, doc: str) -> Any:
    getter, setter = f"get_{name}", f"set_{name}"

    def get(owner: Any) -> Any:
        return getattr(owner._settings, getter)()

    def set(owner: Any, value: Any) -> None:
        getattr(owner._settings, setter)(value)

    return property(get, set, doc=doc)


# The public settings of Connection, Database and Collection, each read and written through
# the object's ``_settings`` (a class body says ``read_preference = READ_PREFERENCE``).
READ_PREFERENCE = _property(
    "read_preference",
    "The default read preference of reads (``ReadPreference.PRIMARY`` for one server).",
)
TAG_SETS = _property("tag_sets", "The tag sets of the read preference.")
WRITE_CONCERN = _property(
    "write_concern",
    "2.8's dict: ``{}`` (acknowledged, the server's default), ``{'w': 0}``, ...; changing "
    "a key changes the setting.",
)


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
    "READ_PREFERENCE",
    "TAG_SETS",
    "WRITE_CONCERN",
    "ConnectionSettings",
    "Settings",
    "WriteConcernDict",
    "check_document_class",
    "check_latency",
    "shaper",
]
