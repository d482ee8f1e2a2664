"""The affinity lab's clients: the workload's operations on wireclient and on pymongo, and
how each operation's socket is observed.

Two interfaces: ``Client`` for threads and greenlets (``Connection``; pymongo's
``MongoClient``), and ``AsyncClient`` for asyncio Tasks, whose operations are coroutines
(``AsyncConnection`` / ``AsyncMongoClient``; pymongo's ``AsyncMongoClient``), made on the
Tasks' loop by ``make_async_client``. Both flavours of each library are observed the same way.

Observation. The observer runs in the caller's own thread, greenlet or Task and appends one
socket key per message to the ``CallerState`` that a ``contextvars`` variable names for that
caller (``as_caller``; an asyncio Task runs in a context of its own, so setting it there
names that Task only); messages of anyone else (the probe, the main thread, the Task that
builds the client) are not recorded.

- wireclient: the ``local_address`` of command started events (``wireclient.monitoring``),
  the address ``whatsmyuri`` returns. A probe ``ping`` at construction checks that they
  arrive; a connection that emitted none could not be measured, and says so.
- pymongo: the started events' ``server_connection_id`` (pymongo reports no local address;
  the server's connection id names a socket just as well). The pymongo reference clients
  (``pymongo_client``, ``pymongo_async_client``) load pymongo (``_reference``) when a pymongo
  configuration runs, in that worker only: importing this module, the lab or the client
  never loads pymongo.

Pool events count sockets created and closed (and the peak of the difference) for both.
"""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

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


def _reference(module: str = "pymongo") -> Any:
    """A module of pymongo, the lab's reference, loaded on demand (only when a pymongo
    configuration runs or a run would include one): the one place the toolkit loads it.
    Nothing of wireclient imports pymongo when it is itself imported."""
    import importlib

    return importlib.import_module(module)


def pymongo_missing(async_client: bool = False) -> Optional[str]:
    """None when the pymongo reference can run here, else why not, in one line
    (``async_client``: for asyncio Tasks, which need pymongo's ``AsyncMongoClient``, 4.13
    and later). Imports pymongo (the toolkit's reference; the client itself never imports
    it), so it is called only when a run asks for, or would include, the pymongo mode."""
    try:
        pymongo = _reference()
    except ImportError as exc:
        return f"pymongo is not importable ({exc})"
    if async_client and not hasattr(pymongo, "AsyncMongoClient"):
        version = getattr(pymongo, "version", "?")
        return f"pymongo {version} has no AsyncMongoClient (4.13 and later have)"
    return None


def _pymongo_listeners(counter: SocketCounter) -> Sequence[Any]:
    """pymongo's command listener (the socket of each message: ``server_connection_id``)
    and pool listener (``counter``); the same for its blocking and asyncio clients, which
    call them in the caller's thread or Task."""
    pm = _reference("pymongo.monitoring")

    def started(self: Any, event: Any) -> None:
        conn_id = getattr(event, "server_connection_id", None)
        observe(None if conn_id is None else f"conn{conn_id}")

    def ignored(self: Any, event: Any) -> None:
        pass

    commands = type(
        "Commands",
        (pm.CommandListener,),
        {"started": started, "succeeded": ignored, "failed": ignored},
    )
    pool_methods: Dict[str, Any] = {
        name: ignored
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
        )
    }
    pool_methods["connection_created"] = lambda self, event: counter.on_created()
    pool_methods["connection_closed"] = lambda self, event: counter.on_closed()
    pool = type("Pool", (pm.ConnectionPoolListener,), pool_methods)
    return [commands(), pool()]


def _pymongo_options(workload: Workload, counter: SocketCounter) -> Dict[str, Any]:
    """The options of both pymongo references: one server, the lab's pool and timeouts."""
    return {
        "directConnection": True,
        "maxPoolSize": workload.max_pool_size,
        "socketTimeoutMS": workload.op_timeout_ms,
        "connectTimeoutMS": workload.op_timeout_ms,
        "waitQueueTimeoutMS": workload.op_timeout_ms,
        "serverSelectionTimeoutMS": workload.op_timeout_ms,
        "event_listeners": _pymongo_listeners(counter),
    }


PYMONGO_OBSERVED_BY = "command events (server_connection_id)"


def pymongo_client(uri: str, dbname: str, workload: Workload, counter: SocketCounter) -> Client:
    """The reference: pymongo 4, no requests (pymongo loaded when such a configuration
    runs: ``_reference``)."""
    pymongo = _reference()
    WriteConcern = pymongo.WriteConcern  # noqa: N806 - pymongo's class

    class PymongoClient(Client):
        name = f"pymongo {pymongo.version}"
        observed_by = PYMONGO_OBSERVED_BY

        def __init__(self) -> None:
            self.client: Any = pymongo.MongoClient(uri, **_pymongo_options(workload, counter))
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
    """The measured client of a thread or greenlet configuration."""
    if config.kind == "tasks":
        raise ValueError("asyncio Tasks use an AsyncClient: see make_async_client")
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


# -- asyncio Tasks --------------------------------------------------------------------------


class AsyncClient:
    """``Client`` for asyncio Tasks: the same operations as coroutines, made and closed on
    the Tasks' loop. ``request()`` stays plain: wireclient's ``Request`` is a ``with``
    block for an ``AsyncConnection`` too, and starting or ending one does no I/O."""

    name = ""
    observed_by = ""

    async def update(self, index: int) -> None:
        raise NotImplementedError

    async def read(self, index: int) -> int:
        raise NotImplementedError

    async def whatsmyuri(self, index: int) -> str:
        raise NotImplementedError

    def request(self) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class WireclientAsyncClient(AsyncClient):
    """wireclient for asyncio: ``AsyncConnection`` (``auto_start_request=True``) in mode
    ``on``, ``AsyncMongoClient`` (``auto_start_request=False``) otherwise; requests are per
    Task. ``open()`` connects and checks, as ``WireclientClient`` does, that command events
    name the socket."""

    def __init__(
        self,
        uri: str,
        dbname: str,
        mode: str,
        workload: Workload,
        counter: SocketCounter,
        extra_listeners: Sequence[Any] = (),
    ) -> None:
        from wireclient import AsyncConnection, AsyncMongoClient, __version__

        cls = AsyncConnection if mode == "on" else AsyncMongoClient
        self.name = f"wireclient {__version__} {cls.__name__}"
        self.counter = counter
        self.conn = cls(
            uri,
            auto_start_request=mode == "on",
            max_pool_size=workload.max_pool_size,
            socketTimeoutMS=workload.op_timeout_ms,
            connectTimeoutMS=workload.op_timeout_ms,
            waitQueueTimeoutMS=workload.op_timeout_ms,
            event_listeners=[WireclientObserver(counter), *extra_listeners],
        )
        self.coll = self.conn[dbname].counters

    async def open(self) -> None:
        await self.conn.admin.command("ping")  # do command events tell us the socket?
        self.conn.end_request()  # the ping's auto-started request must not keep a socket
        if not self.counter.command_events:
            await self.conn.close()
            raise ValueError("no command event for a ping: the sockets cannot be observed")
        self.observed_by = WIRECLIENT_OBSERVED_BY

    async def update(self, index: int) -> None:
        await self.coll.update({"_id": index}, {"$inc": {"n": 1}}, safe=False)

    async def read(self, index: int) -> int:
        doc = await self.coll.find_one({"_id": index})
        return int(doc["n"]) if doc else -1

    async def whatsmyuri(self, index: int) -> str:
        return str((await self.conn.admin.command("whatsmyuri"))["you"])

    def request(self) -> Any:
        return self.conn.start_request()

    async def close(self) -> None:
        await self.conn.close()


def pymongo_async_client(
    uri: str, dbname: str, workload: Workload, counter: SocketCounter
) -> AsyncClient:
    """The reference for asyncio Tasks: pymongo's ``AsyncMongoClient``, no requests; made
    (and pymongo loaded: ``_reference``) on the Tasks' loop, when such a configuration
    runs."""
    pymongo = _reference()
    WriteConcern = pymongo.WriteConcern  # noqa: N806 - pymongo's class

    class PymongoAsyncClient(AsyncClient):
        name = f"pymongo {pymongo.version} AsyncMongoClient"
        observed_by = PYMONGO_OBSERVED_BY

        def __init__(self) -> None:
            self.client: Any = pymongo.AsyncMongoClient(uri, **_pymongo_options(workload, counter))
            self.coll = self.client[dbname].counters
            self.coll_w0 = self.coll.with_options(write_concern=WriteConcern(w=0))

        async def update(self, index: int) -> None:
            await self.coll_w0.update_one({"_id": index}, {"$inc": {"n": 1}})

        async def read(self, index: int) -> int:
            doc = await self.coll.find_one({"_id": index})
            return int(doc["n"]) if doc else -1

        async def whatsmyuri(self, index: int) -> str:
            return str((await self.client.admin.command("whatsmyuri"))["you"])

        def request(self) -> Any:
            raise ValueError("pymongo has no requests")

        async def close(self) -> None:
            await self.client.close()

    return PymongoAsyncClient()


async def make_async_client(
    uri: str,
    dbname: str,
    config: Config,
    workload: Workload,
    counter: SocketCounter,
    extra_listeners: Sequence[Any] = (),
) -> AsyncClient:
    """The measured client of an asyncio Tasks configuration, made on the running loop."""
    if config.mode == "pymongo":
        missing = pymongo_missing(async_client=True)
        if missing is not None:
            raise ValueError(f"the pymongo mode: {missing}")
        return pymongo_async_client(uri, dbname, workload, counter)
    mode = "off" if config.mode == "explicit" else config.mode
    client = WireclientAsyncClient(uri, dbname, mode, workload, counter, extra_listeners)
    await client.open()
    return client
