"""The pymongo 2.8 (and a few pymongo 4) names wireclient does not provide, with reasons.

``Connection``, ``Database`` and ``Collection`` turn unknown attribute names into databases,
collections and sub-collections (``c.analytics``, ``db.events``, ``coll.sub``), as pymongo
does. Without this table a 2.8 name wireclient lacks would silently become one of those
(``if c.is_locked:`` always true, ``db.eval(...)`` "'Collection' object is not callable").
Their ``__getattr__`` calls ``refuse`` first, so such a name raises ``InvalidOperation``
saying why it is not there. ``docs/api.md`` lists the same names;
``tests/project/test_api_table.py`` checks that the two agree.
"""

from __future__ import annotations

from typing import Dict

from wireclient.errors import InvalidOperation

_GET_LAST_ERROR = (
    "getLastError does not exist on current servers; writes are acknowledged by the "
    "write command itself: set write_concern instead"
)
_MANIPULATORS = (
    "SON manipulators are not provided (deprecated in pymongo 2.x, removed in 3): "
    "transform documents in your own code"
)
_UUID = "the UUID representation is bson's (pymongo 4: standard), not configurable per object"
_SLAVE_OKAY = "slave_okay is gone: use read_preference = ReadPreference.SECONDARY_PREFERRED"
_SAFE = "safe is deprecated since pymongo 2.4: read or set write_concern ({'w': 0} or {'w': 1})"
_LATENCY = (
    "the latency window is one per connection: set the connection's "
    "secondary_acceptable_latency_ms (localThresholdMS)"
)

# pymongo 4 names wireclient does not provide (they would become databases or collections)
_SESSIONS = "sessions and transactions are not supported by wireclient"
_WATCH = "change streams are not supported by wireclient yet"
_CODEC = (
    "documents are shaped by the connection's document_class and tz_aware; bson's other "
    "codec options are fixed"
)
_READ_CONCERN = "read concerns are not supported by wireclient yet"
_WITH_OPTIONS = (
    "set read_preference / write_concern on the cached object, or use "
    "get_collection(name, read_preference=..., write_concern=...)"
)

_COMMON = {
    "get_lasterror_options": _GET_LAST_ERROR,
    "set_lasterror_options": _GET_LAST_ERROR,
    "unset_lasterror_options": _GET_LAST_ERROR,
    "slave_okay": _SLAVE_OKAY,
    "safe": _SAFE,
    "uuid_subtype": _UUID,
}

REFUSED: Dict[str, Dict[str, str]] = {
    "Connection": {
        **_COMMON,
        "copy_database": (
            "the copydb command was removed in MongoDB 4.2: use mongodump and mongorestore"
        ),
        "set_cursor_manager": (
            "there is no pluggable cursor manager: a cursor is killed by close() or, once "
            "garbage-collected, with the connection's next operation"
        ),
        "start_session": _SESSIONS,
        "watch": _WATCH,
        "codec_options": _CODEC,
        "read_concern": _READ_CONCERN,
        "list_databases": "use list_database_names(), or command('listDatabases') on admin",
        "topology_description": "a ReplicaSetConnection's view is the set's description",
    },
    "Database": {
        **_COMMON,
        "secondary_acceptable_latency_ms": _LATENCY,
        "eval": "the eval command was removed in MongoDB 4.2: run the logic in the client",
        "system_js": (
            "stored JavaScript needs server-side evaluation (eval, $where in system.js), "
            "removed in MongoDB 4.2"
        ),
        "error": _GET_LAST_ERROR,
        "last_status": _GET_LAST_ERROR,
        "previous_error": "getPrevError was removed in MongoDB 4.2; " + _GET_LAST_ERROR,
        "reset_error_history": "resetError was removed in MongoDB 4.2; " + _GET_LAST_ERROR,
        "add_son_manipulator": _MANIPULATORS,
        "incoming_manipulators": _MANIPULATORS,
        "incoming_copying_manipulators": _MANIPULATORS,
        "outgoing_manipulators": _MANIPULATORS,
        "outgoing_copying_manipulators": _MANIPULATORS,
        "watch": _WATCH,
        "codec_options": _CODEC,
        "read_concern": _READ_CONCERN,
        "with_options": _WITH_OPTIONS,
        "list_collections": "use list_collection_names(), or command('listCollections')",
    },
    "Collection": {
        **_COMMON,
        "secondary_acceptable_latency_ms": _LATENCY,
        "group": "the group command was removed in MongoDB 4.2: use aggregate() with $group",
        "parallel_scan": (
            "parallelCollectionScan was removed in MongoDB 4.2: use find() or several "
            "find()s over ranges of _id"
        ),
        "watch": _WATCH,
        "codec_options": _CODEC,
        "read_concern": _READ_CONCERN,
        "with_options": _WITH_OPTIONS,
        "create_indexes": "call create_index() once per index",
        "find_raw_batches": "raw BSON batches are not provided: iterate find()",
        "aggregate_raw_batches": "raw BSON batches are not provided: iterate aggregate()",
    },
}


def refuse(kind: str, name: str, shown_as: str) -> None:
    """Raise ``InvalidOperation`` if ``name`` is a 2.8 name of ``kind`` (``'Connection'``,
    ``'Database'``, ``'Collection'``) that wireclient does not provide; ``shown_as`` is the
    class name the message uses."""
    reason = REFUSED[kind].get(name)
    if reason is not None:
        raise InvalidOperation(f"{shown_as}.{name} is not provided by wireclient: {reason}")


def not_callable(what: str, name: str, parent: str) -> TypeError:
    """The error for calling a database or collection that an unknown attribute name made
    (``c.no_such_method()``): it says which object lacked the method."""
    return TypeError(
        f"'{what}' object is not callable. If you meant to call the '{name}' method on a "
        f"'{parent}' object it is failing because no such method exists."
    )


__all__ = ["REFUSED", "not_callable", "refuse"]
