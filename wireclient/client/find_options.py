"""What a ``find`` asks for, and the ``find`` command that asks it.

A ``Cursor`` keeps one ``FindOptions``: the filter and projection, sort, skip, limit and
batch size, the query modifiers (``hint``, ``comment``, ``maxTimeMS``, ``max``, ``min``,
``maxScan``, ``returnKey``, ``showRecordId``) and the cursor flags (``tailable``,
``awaitData``, ``noCursorTimeout``, ``allowPartialResults``, ``oplogReplay``, and
``exhaust``, which is not a field of the command: the cursor's getMores stream, see
``wireclient.engine.exhaust``). Every setter checks its argument; ``command()`` renders the
``find`` command. pymongo 2.8's spellings are read here too: the ``modifiers`` document of
``$``-names (``{'$hint': ..., '$maxTimeMS': ...}``) and the OP_QUERY flag bits of
``add_option`` / ``remove_option``.

Refused, with the reason: ``$snapshot`` (removed in MongoDB 4.0), ``$explain`` (use
``Cursor.explain()``), and, as pymongo refuses them, ``exhaust`` with a ``limit`` (or with
``tailable``: a tailable exhaust stream never ends by itself, and would hold its socket for
as long as the collection is tailed).
The ``slaveOk`` bit is accepted and has no effect: where a read goes is the read
preference's decision.
"""

from __future__ import annotations

import copy
from collections import abc
from typing import Any, Dict, Mapping, Optional, Tuple

from wireclient.errors import ConfigurationError, InvalidArgument, InvalidOperation
from wireclient.rules.arguments import (
    check_bool,
    check_document,
    check_int,
    encode,
    type_name,
)
from wireclient.rules.wire import INT32_MAX
from wireclient.sdam.read_preferences import check_read_preference

# The OP_QUERY flag bits of add_option / remove_option (pymongo 2.8's CursorType values)
TAILABLE = 2
SLAVE_OK = 4
OPLOG_REPLAY = 8
NO_CURSOR_TIMEOUT = 16
AWAIT_DATA = 32
EXHAUST = 64
PARTIAL = 128
_FLAG_FIELDS = {
    TAILABLE: "tailable",
    OPLOG_REPLAY: "oplogReplay",
    NO_CURSOR_TIMEOUT: "noCursorTimeout",
    AWAIT_DATA: "awaitData",
    PARTIAL: "allowPartialResults",
}
_KNOWN_FLAGS = (
    TAILABLE | SLAVE_OK | OPLOG_REPLAY | NO_CURSOR_TIMEOUT | AWAIT_DATA | EXHAUST | PARTIAL
)

EXHAUST_WITH_LIMIT = "Can't use limit and exhaust together."
EXHAUST_WITH_TAILABLE = (
    "Can't use tailable and exhaust together: a tailable exhaust stream never ends by "
    "itself and would hold its socket for as long as the collection is tailed"
)

# modifiers: the $-name, the attribute it sets
_MODIFIERS = {
    "$orderby": "sort",
    "$hint": "hint",
    "$comment": "comment",
    "$maxTimeMS": "max_time_ms",
    "$max": "max",
    "$min": "min",
    "$maxScan": "max_scan",
    "$returnKey": "return_key",
    "$showDiskLoc": "show_record_id",
}
_REFUSED_MODIFIERS = {
    "$snapshot": "$snapshot was removed in MongoDB 4.0 (snapshot reads need a session)",
    "$explain": "use Cursor.explain() for an explanation",
    "$query": "pass the filter as find()'s first argument",
}


def bounds(value: Any, name: str) -> Dict[str, Any]:
    """``max`` / ``min``: a list of ``(field, value)`` pairs or a mapping, as a document."""
    if isinstance(value, abc.Mapping):
        out = dict(value)
    elif isinstance(value, (list, tuple)):
        out = {}
        for item in value:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise InvalidArgument(f"{name} must be a list of (field, value) pairs")
            out[item[0]] = item[1]
    else:
        raise InvalidArgument(
            f"{name} must be a list of (field, value) pairs or a mapping, not {type_name(value)}"
        )
    if not out:
        raise ConfigurationError(f"{name} must name at least one field")
    encode(out, name)
    return out


class FindOptions:
    """The state of one find (see the module notes); ``copy()`` for ``Cursor.clone()``."""

    def __init__(self) -> None:
        self.spec: Dict[str, Any] = {}
        self.projection: Optional[Dict[str, Any]] = None
        self.skip = 0
        self.limit = 0
        self.sort: Optional[Dict[str, Any]] = None
        self.batch_size = 0
        self.hint: Any = None
        self.comment: Any = None
        self.max_time_ms: Optional[int] = None
        self.max_scan: Optional[int] = None
        self.max: Optional[Dict[str, Any]] = None
        self.min: Optional[Dict[str, Any]] = None
        self.return_key = False
        self.show_record_id = False
        self.flags = 0

    def copy(self) -> FindOptions:
        return copy.deepcopy(self)

    # -- setters that check ---------------------------------------------------------------

    def set_hint(self, index: Any) -> None:
        """An index name, a key list / document as ``create_index`` takes it, or None."""
        from wireclient.rules.arguments import index_document

        if index is None or isinstance(index, str):
            if isinstance(index, str) and not index:
                raise ConfigurationError("hint must not be empty")
            self.hint = index
        else:
            self.hint = index_document(index)

    def set_max_time_ms(self, value: Any) -> None:
        self.max_time_ms = None if value is None else check_int(value, "max_time_ms", 0, INT32_MAX)

    def set_max_scan(self, value: Any) -> None:
        self.max_scan = None if value is None else check_int(value, "max_scan", 0, INT32_MAX)

    def set_comment(self, value: Any) -> None:
        if value is not None:
            encode({"comment": value}, "comment")
        self.comment = value

    def set_flag(self, mask: int, on: bool) -> None:
        if on:
            self.add_option(mask)
        else:
            self.remove_option(mask)

    def add_option(self, mask: Any) -> None:
        check_int(mask, "mask", 0, INT32_MAX)
        if mask & ~_KNOWN_FLAGS:
            raise ConfigurationError(f"unknown cursor option bits {mask & ~_KNOWN_FLAGS:#x}")
        flags = self.flags | mask
        if flags & EXHAUST and self.limit:
            raise InvalidOperation(EXHAUST_WITH_LIMIT)
        if flags & EXHAUST and flags & TAILABLE:
            raise InvalidOperation(EXHAUST_WITH_TAILABLE)
        self.flags = flags

    @property
    def exhaust(self) -> bool:
        return bool(self.flags & EXHAUST)

    def set_limit(self, limit: Any) -> None:
        """``limit`` (0: none; negative: one batch), checked; refused for an exhaust cursor."""
        limit = check_int(limit, "limit")
        if limit and self.flags & EXHAUST:
            raise InvalidOperation(EXHAUST_WITH_LIMIT)
        self.limit = limit

    def remove_option(self, mask: Any) -> None:
        check_int(mask, "mask", 0, INT32_MAX)
        self.flags &= ~mask

    def apply_modifiers(self, modifiers: Any) -> None:
        """2.8's ``modifiers={'$hint': ..., '$maxTimeMS': ...}``."""
        check_document(modifiers, "modifiers")
        for key, value in modifiers.items():
            if key in _REFUSED_MODIFIERS:
                raise InvalidOperation(f"modifier {key}: {_REFUSED_MODIFIERS[key]}")
            attribute = _MODIFIERS.get(key)
            if attribute is None:
                raise ConfigurationError(
                    f"unknown modifier {key!r}; known: {', '.join(sorted(_MODIFIERS))}"
                )
            self.set(attribute, value)

    def set(self, attribute: str, value: Any) -> None:
        """Set one option by name, checked (the names ``Cursor`` and ``modifiers`` use)."""
        from wireclient.rules.arguments import index_document

        if attribute == "sort":
            self.sort = index_document(value)
        elif attribute == "hint":
            self.set_hint(value)
        elif attribute == "comment":
            self.set_comment(value)
        elif attribute == "max_time_ms":
            self.set_max_time_ms(value)
        elif attribute == "max_scan":
            self.set_max_scan(value)
        elif attribute in ("max", "min"):
            setattr(self, attribute, bounds(value, attribute))
        elif attribute in ("return_key", "show_record_id"):
            setattr(self, attribute, check_bool(value, attribute))
        else:  # pragma: no cover - the names above are the only callers'
            raise AssertionError(attribute)

    # -- the command ----------------------------------------------------------------------

    def command(self, collection: str) -> Dict[str, Any]:
        command: Dict[str, Any] = {"find": collection, "filter": self.spec}
        if self.projection is not None:
            command["projection"] = self.projection
        if self.sort:
            command["sort"] = self.sort
        if self.skip:
            command["skip"] = self.skip
        if self.limit:
            command["limit"] = abs(self.limit)
            if self.limit < 0:
                command["singleBatch"] = True
        if self.batch_size:
            size = self.batch_size
            if self.limit:
                size = min(size, abs(self.limit))
            command["batchSize"] = size
        if self.hint is not None:
            command["hint"] = self.hint
        if self.comment is not None:
            command["comment"] = self.comment
        if self.max_time_ms is not None:
            command["maxTimeMS"] = self.max_time_ms
        if self.max_scan is not None:
            command["maxScan"] = self.max_scan
        if self.max is not None:
            command["max"] = self.max
        if self.min is not None:
            command["min"] = self.min
        if self.return_key:
            command["returnKey"] = True
        if self.show_record_id:
            command["showRecordId"] = True
        for bit, field in _FLAG_FIELDS.items():
            if self.flags & bit:
                command[field] = True
        return command


_REFUSED_KEYWORDS = {
    "snapshot": "snapshot was removed in MongoDB 4.0 (snapshot reads need a session)",
    "slave_okay": "slave_okay is gone: pass read_preference=ReadPreference.SECONDARY_PREFERRED",
    "secondary_acceptable_latency_ms": (
        "the latency window is one per connection: set the connection's "
        "secondary_acceptable_latency_ms"
    ),
    "compile_re": (
        "regular expressions always come back as bson.regex.Regex (pymongo 4's bson): "
        "call .try_compile() on them"
    ),
}


def projection_document(fields: Any) -> Optional[Dict[str, Any]]:
    if fields is None:
        return None
    if isinstance(fields, abc.Mapping):
        return dict(check_document(fields, "fields"))
    if isinstance(fields, (list, tuple)):
        for name in fields:
            if not isinstance(name, str):
                raise InvalidArgument(f"fields must name fields as strings, not {type_name(name)}")
        return {name: 1 for name in fields}
    raise InvalidArgument(
        f"fields must be a mapping or a list of field names, not {type_name(fields)}"
    )


def build_options(
    spec: Any,
    fields: Any,
    skip: Any,
    limit: Any,
    sort: Any,
    batch_size: Any,
    read_preference: Any,
    projection: Any,
    timeout: Any,
    no_cursor_timeout: Any,
    tailable: Any,
    await_data: Any,
    partial: Any,
    allow_partial_results: Any,
    oplog_replay: Any,
    exhaust: Any,
    max_time_ms: Any,
    max_scan: Any,
    hint: Any,
    comment: Any,
    max: Any,
    min: Any,
    modifiers: Any,
    tag_sets: Any,
    manipulate: Any,
    refused: Mapping[str, Any],
    inherited: Any = None,
) -> Tuple[FindOptions, Any]:
    """The ``FindOptions`` of ``find(...)``'s arguments, each checked (see ``Cursor``), and
    the read preference: ``tag_sets`` is folded into ``read_preference``, or into the
    collection's (``inherited``; None: primary, which takes no tags)."""
    if (  # the common find(spec[, batch_size=n]): nothing else to check (identity tests: no
        # bool for an int)
        fields is None
        and projection is None
        and skip.__class__ is int
        and not skip
        and limit.__class__ is int
        and not limit
        and sort is None
        and batch_size.__class__ is int
        and 0 <= batch_size <= INT32_MAX
        and read_preference is None
        and timeout is True
        and no_cursor_timeout is False
        and tailable is False
        and await_data is False
        and partial is False
        and allow_partial_results is False
        and oplog_replay is False
        and exhaust is False
        and max_time_ms is None
        and max_scan is None
        and hint is None
        and comment is None
        and max is None
        and min is None
        and modifiers is None
        and tag_sets is None
        and manipulate is True
        and not refused
    ):
        options = FindOptions()
        if spec is not None:
            options.spec = dict(check_document(spec, "spec"))
        options.batch_size = batch_size
        return options, read_preference
    from wireclient.rules.arguments import index_document

    for name, value in refused.items():
        reason = _REFUSED_KEYWORDS.get(name)
        if reason is None:
            raise TypeError(f"find() got an unexpected keyword argument {name!r}")
        if value not in (None, False):
            raise InvalidOperation(f"find({name}=...) is not provided: {reason}")
    if spec is not None:
        check_document(spec, "spec")
    if fields is not None and projection is not None:
        raise ConfigurationError("give fields or projection, not both")
    check_read_preference(read_preference)
    options = FindOptions()
    options.spec = dict(spec or {})
    options.projection = projection_document(fields if fields is not None else projection)
    options.skip = check_int(skip, "skip", 0)
    options.limit = check_int(limit, "limit")
    options.sort = index_document(sort) if sort is not None else None
    options.batch_size = check_int(batch_size, "batch_size", 0, INT32_MAX)
    no_timeout = not check_bool(timeout, "timeout") or check_bool(
        no_cursor_timeout, "no_cursor_timeout"
    )
    for bit, on, name in (
        (NO_CURSOR_TIMEOUT, no_timeout, "no_cursor_timeout"),
        (TAILABLE, tailable, "tailable"),
        (AWAIT_DATA, await_data, "await_data"),
        (PARTIAL, check_bool(partial, "partial") or allow_partial_results, "allow_partial_results"),
        (OPLOG_REPLAY, oplog_replay, "oplog_replay"),
        (EXHAUST, exhaust, "exhaust"),
    ):
        options.set_flag(bit, check_bool(on, name))
    options.set_max_time_ms(max_time_ms)
    options.set_max_scan(max_scan)
    options.set_hint(hint)
    options.set_comment(comment)
    if max is not None:
        options.set("max", max)
    if min is not None:
        options.set("min", min)
    if modifiers is not None:
        options.apply_modifiers(modifiers)
    check_bool(manipulate, "manipulate")
    if tag_sets is not None:
        from wireclient.sdam.read_preferences import ReadPreference

        base = read_preference if read_preference is not None else inherited
        base = "primary" if base is None else base
        read_preference = ReadPreference.from_value(base).with_tag_sets(tag_sets)
    return options, read_preference


__all__ = [
    "AWAIT_DATA",
    "EXHAUST",
    "EXHAUST_WITH_LIMIT",
    "EXHAUST_WITH_TAILABLE",
    "FindOptions",
    "NO_CURSOR_TIMEOUT",
    "OPLOG_REPLAY",
    "PARTIAL",
    "SLAVE_OK",
    "TAILABLE",
    "bounds",
    "build_options",
    "projection_document",
]
