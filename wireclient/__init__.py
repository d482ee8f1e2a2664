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
from wireclient.collection import Collection
from wireclient.connection import Connection, Request
from wireclient.cursor import ASCENDING, DESCENDING, Cursor
from wireclient.database import Database

if TYPE_CHECKING:
    from wireclient.read_preferences import ReadPreference
    from wireclient.replica_set import ReplicaSetConnection

# Replica-set support (topology, monitor, read preferences, logging) loads on first use, so
# `import wireclient` stays light for single-server users.
_LAZY = {
    "ReadPreference": "wireclient.read_preferences",
    "ReplicaSetConnection": "wireclient.replica_set",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'wireclient' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


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
