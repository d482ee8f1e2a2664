"""The affinity lab's reference client: pymongo 4, no requests.

Loaded by ``wireclient.toolkit.affinity_clients.reference_module`` when a pymongo configuration
runs from a source tree. It lives here, with the benchmarks, because wireclient itself never
imports pymongo (only benchmarks may, to compare against it).
"""

from __future__ import annotations

from typing import Any

from wireclient.toolkit.affinity_clients import Client, SocketCounter, observe
from wireclient.toolkit.affinity_workload import Workload


def pymongo_client(uri: str, dbname: str, workload: Workload, counter: SocketCounter) -> Client:
    """The reference: pymongo 4, no requests. Imported here only, when asked for."""
    import pymongo
    from pymongo import monitoring as pm
    from pymongo.write_concern import WriteConcern

    class Commands(pm.CommandListener):
        def started(self, event: pm.CommandStartedEvent) -> None:
            conn_id = getattr(event, "server_connection_id", None)
            observe(None if conn_id is None else f"conn{conn_id}")

        def succeeded(self, event: pm.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: pm.CommandFailedEvent) -> None:
            pass

    class Pool(pm.ConnectionPoolListener):
        def connection_created(self, event: Any) -> None:
            counter.on_created()

        def connection_closed(self, event: Any) -> None:
            counter.on_closed()

    for name in (
        "pool_created",
        "pool_ready",
        "pool_cleared",
        "pool_closed",
        "connection_ready",
        "connection_check_out_started",
        "connection_check_out_failed",
        "connection_checked_out",
        "connection_checked_in",
    ):
        setattr(Pool, name, lambda self, event: None)

    class PymongoClient(Client):
        name = f"pymongo {pymongo.version}"
        observed_by = "command events (server_connection_id)"

        def __init__(self) -> None:
            self.client: Any = pymongo.MongoClient(
                uri,
                directConnection=True,
                maxPoolSize=workload.max_pool_size,
                socketTimeoutMS=workload.op_timeout_ms,
                connectTimeoutMS=workload.op_timeout_ms,
                waitQueueTimeoutMS=workload.op_timeout_ms,
                serverSelectionTimeoutMS=workload.op_timeout_ms,
                event_listeners=[Commands(), Pool()],
            )
            self.coll = self.client[dbname].counters
            self.coll_w0 = self.coll.with_options(write_concern=WriteConcern(w=0))

        def update(self, index: int) -> None:
            self.coll_w0.update_one({"_id": index}, {"$inc": {"n": 1}})

        def read(self, index: int) -> int:
            doc = self.coll.find_one({"_id": index})
            return int(doc["n"]) if doc else -1

        def whatsmyuri(self, index: int) -> str:
            return str(self.client.admin.command("whatsmyuri")["you"])

        def request(self) -> Any:
            raise ValueError("pymongo has no requests")

        def close(self) -> None:
            self.client.close()

    return PymongoClient()
