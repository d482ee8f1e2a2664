"""wireclient: a MongoDB client from sockets up, with pymongo-2.x style requests.

    from wireclient import Connection
    c = Connection('mongodb://localhost:27017')
    with c.start_request():
        c.test.counts.update({'k': 1}, {'$inc': {'n': 1}}, upsert=True, safe=False)
        print(c.test.counts.find_one({'k': 1}))
"""

from __future__ import annotations

__version__ = "0.1.0"

from wireclient import errors
from wireclient.collection import Collection
from wireclient.connection import Connection, Request
from wireclient.cursor import ASCENDING, DESCENDING, Cursor
from wireclient.database import Database
from wireclient.read_preferences import ReadPreference
from wireclient.replica_set import ReplicaSetConnection

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
