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
    from wireclient.connection import Connection, MongoClient, Request
    from wireclient.cursor import Cursor
    from wireclient.database import ALL, OFF, SLOW_ONLY, Database
    from wireclient.index_spec import (
        ASCENDING,
        DESCENDING,
        GEO2D,
        GEOHAYSTACK,
        GEOSPHERE,
        HASHED,
        TEXT,
    )
    from wireclient.operations import (
        DeleteMany,
        DeleteOne,
        InsertOne,
        ReplaceOne,
        ReturnDocument,
        UpdateMany,
        UpdateOne,
    )
    from wireclient.read_preferences import ReadPreference
    from wireclient.replica_set import MongoReplicaSetClient, ReplicaSetConnection
    from wireclient.results import (
        BulkWriteResult,
        DeleteResult,
        InsertManyResult,
        InsertOneResult,
        UpdateResult,
    )

# The client loads on first use (PEP 562), so `import wireclient.protocol` (the sans-IO
# codec) loads no socket, ssl or selectors module, and replica-set support (topology,
# monitor, read preferences) loads only for those who use it.
_LAZY = {
    "ASCENDING": "wireclient.index_spec",
    "DESCENDING": "wireclient.index_spec",
    "GEO2D": "wireclient.index_spec",
    "GEOHAYSTACK": "wireclient.index_spec",
    "GEOSPHERE": "wireclient.index_spec",
    "HASHED": "wireclient.index_spec",
    "TEXT": "wireclient.index_spec",
    "OFF": "wireclient.database",
    "SLOW_ONLY": "wireclient.database",
    "ALL": "wireclient.database",
    "Collection": "wireclient.collection",
    "Connection": "wireclient.connection",
    "MongoClient": "wireclient.connection",
    "Cursor": "wireclient.cursor",
    "Database": "wireclient.database",
    "ReadPreference": "wireclient.read_preferences",
    "ReplicaSetConnection": "wireclient.replica_set",
    "MongoReplicaSetClient": "wireclient.replica_set",
    "Request": "wireclient.connection",
    "InsertOne": "wireclient.operations",
    "UpdateOne": "wireclient.operations",
    "UpdateMany": "wireclient.operations",
    "ReplaceOne": "wireclient.operations",
    "DeleteOne": "wireclient.operations",
    "DeleteMany": "wireclient.operations",
    "ReturnDocument": "wireclient.operations",
    "InsertOneResult": "wireclient.results",
    "InsertManyResult": "wireclient.results",
    "UpdateResult": "wireclient.results",
    "DeleteResult": "wireclient.results",
    "BulkWriteResult": "wireclient.results",
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
    "ALL",
    "ASCENDING",
    "BulkWriteResult",
    "Collection",
    "Connection",
    "Cursor",
    "DESCENDING",
    "Database",
    "DeleteMany",
    "DeleteOne",
    "DeleteResult",
    "GEO2D",
    "GEOHAYSTACK",
    "GEOSPHERE",
    "HASHED",
    "InsertManyResult",
    "InsertOne",
    "InsertOneResult",
    "MongoClient",
    "MongoReplicaSetClient",
    "OFF",
    "ReadPreference",
    "ReplaceOne",
    "ReplicaSetConnection",
    "Request",
    "ReturnDocument",
    "SLOW_ONLY",
    "TEXT",
    "UpdateMany",
    "UpdateOne",
    "UpdateResult",
    "errors",
    "__version__",
]
