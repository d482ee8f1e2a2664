"""The affinity lab's clients: the workload's operations on wireclient and on pymongo, and
how each operation's socket is observed.

Observation. The observer runs in the caller's own thread or greenlet and appends one socket
key per message to the ``CallerState`` that a ``contextvars`` variable names for that caller
(``as_caller``); messages of anyone else (the probe, the main thread) are not recorded.

- wireclient: the ``local_address`` of command started events (``wireclient.monitoring``),
  the address ``whatsmyuri`` returns. A probe ``ping`` at construction checks that they
  arrive; a connection that emitted none could not be measured, and says so.
- pymongo: the started events' ``server_connection_id`` (pymongo reports no local address;
  the server's connection id names a socket just as well). The pymongo reference client
  (``pymongo_client``) imports pymongo when a pymongo configuration runs, in that worker
  only: importing this module, the lab or the client never loads pymongo.

Pool events count sockets created and closed (and the peak of the difference) for both.
"""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any, Optional, Sequence

from wireclient import monitoring
from wireclient.rules.uri import format_address

if TYPE_CHECKING:
    from wireclient.toolkit.affinity_workload import CallerState, Config, Workload

_CURRENT: contextvars.ContextVar[Optional[CallerState]] = contextvars.ContextVar(
    "wireclient_affinity_caller", default=None
)


def observe(key: Optional[str]) -> None:
    """Record that the calling thread or greenlet sent a message on socket ``key``."""
    state = _CURRENT.get()
    if state is not None:
        state.observed.append(key)


def as_caller(state: CallerState) -> contextvars.Token[Optional[CallerState]]:
    """Attribute the calling thread's (greenlet's) operations to ``state`` from now on."""
    return _CURRENT.set(state)


def release_caller(token: contextvars.Token[Optional[CallerState]]) -> None:
    _CURRENT.reset(token)


def address_key(local_address: Any) -> Optional[str]:
    """``host:port`` as ``whatsmyuri`` writes it (``[v6]:port`` for IPv6)."""
    if not isinstance(local_address, tuple) or len(local_address) < 2:
        return None if local_address is None else str(local_address)
    return format_address((str(local_address[0]), int(local_address[1])))


class SocketCounter:
    """Pool events: sockets created and closed, and the peak of the two's difference."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created = 0
        self.closed = 0
        self.peak = 0
        self.command_events = 0

    def on_created(self) -> None:
        with self.lock:
            self.created += 1
            self.peak = max(self.peak, self.created - self.closed)

    def on_closed(self) -> None:
        with self.lock:
            self.closed += 1


class WireclientObserver(monitoring.CommandListener, monitoring.PoolListener):
    def __init__(self, counter: SocketCounter) -> None:
        self.counter = counter

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counter.command_events += 1
        observe(address_key(event.local_address))

    def connection_created(self, event: monitoring.PoolEvent) -> None:
        self.counter.on_created()

    def connection_closed(self, event: monitoring.PoolEvent) -> None:
        self.counter.on_closed()


class Client:
    """The operations of the workload on one client library, and its lifetime."""

    name = ""
    observed_by = ""

    def update(self, index: int) -> None:
        raise NotImplementedError

    def read(self, index: int) -> int:
        raise NotImplementedError

    def whatsmyuri(self, index: int) -> str:
        raise NotImplementedError

    def request(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


WIRECLIENT_OBSERVED_BY = "command events (local_address)"


class WireclientClient(Client):
    def __init__(
        self,
        uri: str,
        dbname: str,
        mode: str,
        use_greenlets: bool,
        workload: Workload,
        counter: SocketCounter,
        extra_listeners: Sequence[Any] = (),
    ) -> None:
        from wireclient import Connection, __version__

        self.name = f"wireclient {__version__}"
        self.conn = Connection(
            uri,
            auto_start_request=mode == "on",
            use_greenlets=use_greenlets,
            max_pool_size=workload.max_pool_size,
            socketTimeoutMS=workload.op_timeout_ms,
            connectTimeoutMS=workload.op_timeout_ms,
            waitQueueTimeoutMS=workload.op_timeout_ms,
            event_listeners=[WireclientObserver(counter), *extra_listeners],
        )
        self.coll = self.conn[dbname].counters
        self.conn.admin.command("ping")  # do command events tell us the socket?
        self.conn.end_request()  # the ping's auto-started request must not keep a socket
        if not counter.command_events:
            self.conn.close()
            raise ValueError("no command event for a ping: the sockets cannot be observed")
        self.observed_by = WIRECLIENT_OBSERVED_BY

    def update(self, index: int) -> None:
        self.coll.update({"_id": index}, {"$inc": {"n": 1}}, safe=False)

    def read(self, index: int) -> int:
        doc = self.coll.find_one({"_id": index})
        return int(doc["n"]) if doc else -1

    def whatsmyuri(self, index: int) -> str:
        return str(self.conn.admin.command("whatsmyuri")["you"])

    def request(self) -> Any:
        return self.conn.start_request()

    def close(self) -> None:
        self.conn.close()


def pymongo_missing() -> Optional[str]:
    """None when the pymongo reference can run here, else why not, in one line. Imports
    pymongo (the toolkit's reference; the client itself never imports it), so it is called
    only when a run asks for, or would include, the pymongo mode."""
    import importlib

    try:
        importlib.import_module("pymongo")
    except ImportError as exc:
        return f"pymongo is not importable ({exc})"
    return None


def pymongo_client(uri: str, dbname: str, workload: Workload, counter: SocketCounter) -> Client:
    """The reference: pymongo 4, no requests. pymongo is imported here, when a pymongo
    configuration runs, and nowhere else in wireclient."""
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


def make_client(
    uri: str,
    dbname: str,
    config: Config,
    workload: Workload,
    counter: SocketCounter,
    extra_listeners: Sequence[Any] = (),
) -> Client:
    if config.mode == "pymongo":
        if config.kind == "gevent-socket":
            raise ValueError("pymongo has no use_greenlets: no gevent-socket configuration")
        missing = pymongo_missing()
        if missing is not None:
            raise ValueError(f"the pymongo mode: {missing}")
        return pymongo_client(uri, dbname, workload, counter)
    mode = "off" if config.mode == "explicit" else config.mode
    use_greenlets = config.kind == "gevent-socket"
    return WireclientClient(uri, dbname, mode, use_greenlets, workload, counter, extra_listeners)
