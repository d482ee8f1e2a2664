"""wireclient: a MongoDB client from sockets up, with pymongo-2.x style requests.

For example::

    from wireclient import Connection
    c = Connection('mongodb://localhost:27017')
    with c.start_request():
        c.test.counts.update({'k': 1}, {'$inc': {'n': 1}}, upsert=True, safe=False)
        print(c.test.counts.find_one({'k': 1}))
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from wireclient import errors

if TYPE_CHECKING:
    from wireclient.collection import Collection
    from wireclient.connection import Connection, Request
    from wireclient.cursor import ASCENDING, DESCENDING, Cursor
    from wireclient.database import Database
    from wireclient.read_preferences import ReadPreference
    from wireclient.replica_set import ReplicaSetConnection

# The client loads on first use (PEP 562), so `import wireclient.protocol` (the sans-IO
# codec) loads no socket, ssl or selectors module, and replica-set support (topology,
# monitor, read preferences) loads only for those who use it.
_LAZY = {
    "ASCENDING": "wireclient.cursor",
    "DESCENDING": "wireclient.cursor",
    "Collection": "wireclient.collection",
    "Connection": "wireclient.connection",
    "Cursor": "wireclient.cursor",
    "Database": "wireclient.database",
    "ReadPreference": "wireclient.read_preferences",
    "ReplicaSetConnection": "wireclient.replica_set",
    "Request": "wireclient.connection",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'wireclient' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ASCENDING",
    "DESCENDING",
    "Collection",
    "Connection",
    "Cursor",
    "Database",
    "ReadPreference",
    "ReplicaSetConnection",
    "Request",
    "errors",
    "__version__",
]
