"""wireclient: a MongoDB client from sockets up, with pymongo-2.x style requests.

For example::

    from wireclient import Connection
    c = Connection('mongodb://localhost:27017')
    with c.start_request():
        c.test.counts.update({'k': 1}, {'$inc': {'n': 1}}, upsert=True, safe=False)
        print(c.test.counts.find_one({'k': 1}))
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from wireclient import errors
from wireclient._version import __version__

if TYPE_CHECKING:
    from wireclient.client.collection import AsyncCollection, Collection
    from wireclient.client.connection import (
        AsyncConnection,
        AsyncMongoClient,
        Connection,
        MongoClient,
        Request,
    )
    from wireclient.client.cursor import AsyncCursor, Cursor
    from wireclient.client.database import ALL, OFF, SLOW_ONLY, AsyncDatabase, Database
    from wireclient.client.operations import (
        DeleteMany,
        DeleteOne,
        InsertOne,
        ReplaceOne,
        ReturnDocument,
        UpdateMany,
        UpdateOne,
    )
    from wireclient.client.replica_set import (
        AsyncMongoReplicaSetClient,
        AsyncReplicaSetConnection,
        MongoReplicaSetClient,
        ReplicaSetConnection,
    )
    from wireclient.client.results import (
        BulkWriteResult,
        DeleteResult,
        InsertManyResult,
        InsertOneResult,
        UpdateResult,
    )
    from wireclient.rules.arguments import (
        ASCENDING,
        DESCENDING,
        GEO2D,
        GEOHAYSTACK,
        GEOSPHERE,
        HASHED,
        TEXT,
    )
    from wireclient.sdam.read_preferences import ReadPreference

# The client loads on first use (PEP 562), so `import wireclient.protocol` (the sans-IO
# codec) loads no socket, ssl or selectors module, and replica-set support (topology,
# monitor, read preferences) loads only for those who use it.
_LAZY = {
    "ASCENDING": "wireclient.rules.arguments",
    "DESCENDING": "wireclient.rules.arguments",
    "GEO2D": "wireclient.rules.arguments",
    "GEOHAYSTACK": "wireclient.rules.arguments",
    "GEOSPHERE": "wireclient.rules.arguments",
    "HASHED": "wireclient.rules.arguments",
    "TEXT": "wireclient.rules.arguments",
    "OFF": "wireclient.client.database",
    "SLOW_ONLY": "wireclient.client.database",
    "ALL": "wireclient.client.database",
    "Collection": "wireclient.client.collection",
    "Connection": "wireclient.client.connection",
    "MongoClient": "wireclient.client.connection",
    "Cursor": "wireclient.client.cursor",
    "Database": "wireclient.client.database",
    "AsyncCollection": "wireclient.client.collection",
    "AsyncConnection": "wireclient.client.connection",
    "AsyncMongoClient": "wireclient.client.connection",
    "AsyncCursor": "wireclient.client.cursor",
    "AsyncDatabase": "wireclient.client.database",
    "ReadPreference": "wireclient.sdam.read_preferences",
    "ReplicaSetConnection": "wireclient.client.replica_set",
    "MongoReplicaSetClient": "wireclient.client.replica_set",
    "AsyncReplicaSetConnection": "wireclient.client.replica_set",
    "AsyncMongoReplicaSetClient": "wireclient.client.replica_set",
    "Request": "wireclient.client.connection",
    "InsertOne": "wireclient.client.operations",
    "UpdateOne": "wireclient.client.operations",
    "UpdateMany": "wireclient.client.operations",
    "ReplaceOne": "wireclient.client.operations",
    "DeleteOne": "wireclient.client.operations",
    "DeleteMany": "wireclient.client.operations",
    "ReturnDocument": "wireclient.client.operations",
    "InsertOneResult": "wireclient.client.results",
    "InsertManyResult": "wireclient.client.results",
    "UpdateResult": "wireclient.client.results",
    "DeleteResult": "wireclient.client.results",
    "BulkWriteResult": "wireclient.client.results",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'wireclient' has no attribute {name!r}")
    # __import__ rather than importlib.import_module: `importlib` is one module more to load
    __import__(module_name)
    value = getattr(sys.modules[module_name], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ALL",
    "ASCENDING",
    "AsyncCollection",
    "AsyncConnection",
    "AsyncCursor",
    "AsyncDatabase",
    "AsyncMongoClient",
    "AsyncMongoReplicaSetClient",
    "AsyncReplicaSetConnection",
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
