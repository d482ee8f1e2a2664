"""Connection: the public entry point to one server (or to mongos routers), and Request.

A ``Connection`` is the public API and nothing more: its parts are built from its options
by ``ClientParts`` (``wireclient.engine.assembly``: the requests table, the selector and its
pools, the credentials, the log of handshake replies, and the ``Executor`` that runs every
message), and it hands every operation to them. ``Database``, ``Collection`` and ``Cursor``
build command documents and call ``connection._executor``; their settings (read preference,
write concern) chain up to the connection's ``ConnectionSettings`` (``settings.py``).

What the connection tells about its server is read from the server's handshake: the
connector records the reply of every socket it opens in the parts' ``HelloLog``, and the
properties here (``is_primary``, ``max_bson_size``, ...) read the latest one of the server
(a replica set's primary). When there is none yet (a replica-set connection has only its
monitor's sockets until its first operation), one ``ping`` runs on the operation path: it
opens a pool socket, whose handshake the connector records. A replica set without a
primary reports 2.8's defaults (16 MB documents, wire version 0) instead of waiting.

The server-wide helpers (``server_info``, ``database_names``, ``drop_database``, ``fsync``,
``unlock``, ``is_locked``, ``close_cursor``, ``kill_cursors``) are commands on ``admin``,
run like any other. Cursors by id: current servers kill a cursor with the ``killCursors``
*command*, which needs the cursor's collection, where 2.8 sent ``OP_KILL_CURSORS`` with the
id alone; so a connection remembers (weakly) the cursors it opened, and ``close_cursor(id)``
closes that cursor on its server; an id it did not open needs
``kill_cursors(ids, namespace='db.collection')``.

``MongoClient`` is a ``Connection`` with pymongo 2.8's defaults for that class.

Two flavours share one class (``transport/flavours.py``): ``BaseConnection`` writes every
operation once, as a step; ``Connection`` runs them blocking, ``AsyncConnection`` as
coroutines (``docs/asyncio.md``). They differ only in what cannot be shared: the blocking
connection proves itself in its constructor (a constructor cannot await), the asyncio one
at ``await conn.connect()``, ``async with`` or its first operation; a handshake property
(``max_bson_size``...) of a blocking connection runs a ``ping`` when no socket has been
opened yet, an asyncio one's raises ``InvalidOperation`` then; and their requests are per
thread (greenlet) or per asyncio Task (``assembly.py`` builds the parts for either).
"""

from __future__ import annotations

import sys
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    FrozenSet,
    Generic,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from bson import Int64

from wireclient.client import settings
from wireclient.client.database import AsyncDatabase, BaseDatabase, Database
from wireclient.client.legacy import refuse
from wireclient.client.settings import ConnectionSettings, check_document_class
from wireclient.engine.assembly import ClientParts
from wireclient.errors import (
    ConfigurationError,
    ConnectionFailure,
    InvalidArgument,
    InvalidOperation,
)
from wireclient.rules.arguments import check_int, check_str, type_name
from wireclient.rules.uri import DEFAULT_HOST, DEFAULT_PORT, Address
from wireclient.rules.wire import (
    DEFAULT_MAX_BSON_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_WRITE_BATCH_SIZE,
    INT64_MAX,
)
from wireclient.transport.blocking import run
from wireclient.transport.flavours import Asynchronous, Blocking, operation

if TYPE_CHECKING:
    from wireclient.client.cursor import BaseCursor
    from wireclient.monitoring import EventPublisher
    from wireclient.pooling.pool import Pool
    from wireclient.transport.network import SocketInfo
    from wireclient.transport.steps import Steps


def _event_publisher(event_listeners: Optional[Sequence[Any]]) -> Optional[EventPublisher]:
    """The publisher of a connection's events: to the listeners given and those registered
    with ``wireclient.monitoring.register`` (None: no listener). Registering imports that
    module, so while it is not loaded no listener is registered, and a connection given none
    loads nothing of it."""
    if not event_listeners and "wireclient.monitoring" not in sys.modules:
        return None
    from wireclient.monitoring import EventPublisher

    return EventPublisher.for_connection(event_listeners)


class Request:
    """A request: ``end()`` (idempotent for this object), or use it as a ``with`` block, or
    (an ``AsyncConnection``'s) an ``async with`` block. Ending one does no I/O."""

    __slots__ = ("connection", "_ended")

    def __init__(self, connection: BaseConnection[Any]) -> None:
        self.connection = connection
        self._ended = False

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self.connection.end_request()

    def __enter__(self) -> Request:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    async def __aenter__(self) -> Request:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.end()


D = TypeVar("D", bound=BaseDatabase[Any])  # the flavour's database class


class BaseConnection(Generic[D]):
    """What ``Connection`` and ``AsyncConnection`` share: everything but the flavour (see
    the module notes), generic in the class of the databases it hands out."""

    # auto_start_request when neither the URI nor a keyword says (MongoClient: False)
    _AUTO_START_DEFAULT = True
    _database_class: Type[D]  # the flavour's databases
    _REPLICA_SET = False  # which parts to build (ReplicaSetConnection: True)
    HOST = DEFAULT_HOST
    PORT = DEFAULT_PORT

    read_preference = settings.READ_PREFERENCE
    tag_sets = settings.TAG_SETS
    write_concern = settings.WRITE_CONCERN

    def __init__(
        self,
        host: Optional[Union[str, Sequence[str]]] = None,
        port: Optional[int] = None,
        max_pool_size: Optional[int] = None,
        auto_start_request: Optional[bool] = None,
        use_greenlets: Optional[bool] = None,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        _connect: bool = True,
        event_listeners: Optional[Sequence[Any]] = None,
        **kwargs: Any,
    ) -> None:
        self._events = _event_publisher(event_listeners)
        document_class = check_document_class(kwargs.pop("document_class", dict))
        tz_aware = kwargs.pop("tz_aware", False)
        if not isinstance(tz_aware, bool):
            raise InvalidArgument(f"tz_aware must be True or False, not {tz_aware!r}")
        given: Dict[str, Any] = dict(kwargs)
        for name, value in (
            ("max_pool_size", max_pool_size),
            ("auto_start_request", auto_start_request),
            ("use_greenlets", use_greenlets),
            ("safe", safe),
            ("w", w),
        ):
            if value is not None:
                given[name] = value
        parts = ClientParts(
            host,
            port,
            given,
            self._events,
            self._REPLICA_SET,
            self._AUTO_START_DEFAULT,
            self.asynchronous,
        )
        self._parts = parts
        self._executor = parts.executor
        self._requests = parts.requests
        self.use_greenlets = parts.use_greenlets
        self.max_pool_size = parts.max_pool_size
        self._settings = ConnectionSettings(
            parts.executor.selector, parts.write_concern, document_class, tz_aware
        )
        self._databases: Dict[str, D] = {}
        self._cursors: weakref.WeakValueDictionary[int, BaseCursor] = weakref.WeakValueDictionary()
        if _connect:
            self._first_contact()

    asynchronous: bool  # the flavour's (Blocking, Asynchronous)

    def _first_contact(self) -> None:
        """What the constructor does to prove the connection (the flavour's)."""
        raise NotImplementedError

    def _connect(self) -> Steps[None]:
        """Prove the connection works now: its server (one of its routers; a replica set's
        members, discovered) answers. A blocking connection does it in its constructor."""
        yield from self._parts.connect()

    connect = operation(_connect)

    # -- public API ---------------------------------------------------------------------

    @property
    def auto_start_request(self) -> bool:
        return self._requests.auto_start

    @auto_start_request.setter
    def auto_start_request(self, value: bool) -> None:
        self._requests.auto_start = bool(value)

    @property
    def address(self) -> Address:
        """The server's (for a replica set, the primary's) ``(host, port)``."""
        return self._executor.selector.primary_address()

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def pool(self) -> Pool:
        """The socket pool of the server (a replica set's primary), for diagnostics:
        ``open_count``, ``idle_count()``, ``stats()``."""
        return self._executor.select()

    def __getitem__(self, name: str) -> D:
        """The database ``name``: one ``Database`` object per name, so settings on it stay."""
        db = self._databases.get(name)
        if db is None:
            db = self._databases.setdefault(name, self._database_class(self, name))
        return db

    def __getattr__(self, name: str) -> D:
        """``c.analytics``: a database, unless ``name`` is a pymongo 2.8 name wireclient does
        not provide (``InvalidOperation`` saying why; see ``legacy.py``)."""
        if name.startswith("_") or hasattr(type(self), name):
            # private, or a property whose getter failed: never a database
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        refuse("Connection", name, type(self).__name__)
        return self[name]

    def __iter__(self) -> Any:
        raise TypeError(f"'{type(self).__name__}' object is not iterable")

    def get_database(
        self, name: Optional[str] = None, read_preference: Any = None, write_concern: Any = None
    ) -> D:
        """pymongo 4's name: the database ``name`` (default: the URI's). Without options it
        is the cached ``c[name]``; with ``read_preference`` / ``write_concern`` a new
        ``Database`` object carrying them."""
        if name is None:
            return self.get_default_database()
        if read_preference is None and write_concern is None:
            return self[name]
        db = self._database_class(self, name, read_preference)
        db.write_concern = write_concern
        return db

    def get_default_database(self) -> D:
        database = self._parts.default_database
        if not database:
            raise ConfigurationError("the URI names no default database")
        return self[database]

    def start_request(self) -> Request:
        """Pin the calling thread (greenlet; asyncio Task) to one socket per server until
        ``end_request`` (through mongos routers: to one router and its socket, not to a
        shard)."""
        self._requests.start()
        return Request(self)

    def end_request(self) -> None:
        self._requests.end()

    def in_request(self) -> bool:
        return self._requests.in_request()

    def request_count(self) -> int:
        """How many threads (greenlets) are in a request (for diagnostics)."""
        reap = self._parts.reap
        if reap is not None:
            reap()
        return self._requests.count()

    def request_socket(self) -> Optional[SocketInfo]:
        """The caller's request socket on the server (a replica set's primary), if bound."""
        return self._requests.bound_socket(self.pool)

    # -- settings (settings.py) ------------------------------------------------------------

    @property
    def secondary_acceptable_latency_ms(self) -> float:
        """The latency window of replica-set reads, or of the choice among mongos routers
        (``localThresholdMS``), in ms; settable."""
        return self._settings.get_latency()

    @secondary_acceptable_latency_ms.setter
    def secondary_acceptable_latency_ms(self, value: Any) -> None:
        self._settings.set_latency(value)

    @property
    def document_class(self) -> type:
        """The class of documents cursors return (``dict`` by default); settable."""
        return self._settings.document_class

    @document_class.setter
    def document_class(self, value: Any) -> None:
        self._settings.document_class = check_document_class(value)

    @property
    def tz_aware(self) -> bool:
        """Whether returned datetimes carry ``tzinfo=UTC`` (else they are naive UTC)."""
        return self._settings.tz_aware

    # -- what the server's handshake says (see the module notes) ------------------------------

    def _hello_address(self) -> Optional[Address]:
        """The server whose handshake answers (None: a replica set without a primary)."""
        return self._executor.selector.primary_address()

    def _server_hello(self) -> Steps[Dict[str, Any]]:
        """The server's latest handshake reply; when no pool socket has been opened yet,
        one ``ping`` on the operation path opens one (its handshake is recorded)."""
        address = self._hello_address()
        if address is None:
            return {}
        hello_log = self._parts.hello_log
        hello = hello_log.latest(address)
        if hello is None:
            yield from self._executor.run("admin", {"ping": 1})
            hello = hello_log.latest(address) or {}
        return hello

    def _known_hello(self) -> Dict[str, Any]:
        """``_server_hello`` for the handshake properties, which cannot await (the
        flavour's)."""
        raise NotImplementedError

    @property
    def is_primary(self) -> bool:
        """Whether the server (a replica set's primary) accepts writes, by its handshake."""
        hello = self._known_hello()
        return bool(hello.get("isWritablePrimary") or hello.get("ismaster"))

    @property
    def is_mongos(self) -> bool:
        """Whether the server is a mongos (its handshake says ``msg: 'isdbgrid'``)."""
        return self._known_hello().get("msg") == "isdbgrid"

    @property
    def max_bson_size(self) -> int:
        """The largest document the server accepts (``maxBsonObjectSize``), in bytes."""
        return int(self._known_hello().get("maxBsonObjectSize", DEFAULT_MAX_BSON_SIZE))

    @property
    def max_message_size(self) -> int:
        """The largest message the server accepts (``maxMessageSizeBytes``), in bytes."""
        hello = self._known_hello()
        return int(hello.get("maxMessageSizeBytes", DEFAULT_MAX_MESSAGE_SIZE))

    @property
    def max_write_batch_size(self) -> int:
        """The most statements one write command may carry (``maxWriteBatchSize``)."""
        hello = self._known_hello()
        return int(hello.get("maxWriteBatchSize", DEFAULT_MAX_WRITE_BATCH_SIZE))

    @property
    def min_wire_version(self) -> int:
        return int(self._known_hello().get("minWireVersion", 0))

    @property
    def max_wire_version(self) -> int:
        return int(self._known_hello().get("maxWireVersion", 0))

    @property
    def nodes(self) -> FrozenSet[Address]:
        """Every server this connection knows: ``{(host, port)}`` (a replica set: all its
        members)."""
        return frozenset(pool.address for pool in self._executor.selector.pools())

    # pymongo 4's MongoClient answers these for any deployment; a connection to one server
    # is not a replica-set connection, so it has no primary, secondaries or arbiters.
    # (ReplicaSetConnection answers them from its view.)

    @property
    def primary(self) -> Optional[Address]:
        return None

    @property
    def secondaries(self) -> List[Address]:
        return []

    @property
    def arbiters(self) -> List[Address]:
        return []

    def _alive_target(self) -> bool:
        """Whether there is a server to ask (a replica set may have no primary now)."""
        return True

    def _alive(self) -> Steps[bool]:
        """Whether the server (a replica set's primary) answers now: one ``ping`` on the
        caller's socket (its request's, if it is in one). False on any connection error,
        and at once for a replica set that has no primary."""
        if not self._alive_target():
            return False
        try:
            yield from self._executor.run("admin", {"ping": 1})
        except ConnectionFailure:
            return False
        return True

    alive = operation(_alive)

    # -- server-wide helpers (see the module notes) ----------------------------------------

    def _server_info(self) -> Steps[Dict[str, Any]]:
        """The server's ``buildInfo`` (``version``, ``versionArray``, ...)."""
        return (yield from self["admin"]._command("buildinfo"))

    server_info = operation(_server_info)

    def _database_names(self) -> Steps[List[str]]:
        reply = yield from self["admin"]._command("listDatabases", nameOnly=True)
        return [d["name"] for d in reply.get("databases", [])]

    database_names = operation(_database_names)
    list_database_names = database_names

    def _drop_database(self, name_or_database: Union[str, BaseDatabase[Any]]) -> Steps[None]:
        name = name_or_database
        if isinstance(name, BaseDatabase):
            name = name.name
        yield from self[check_str(name, "name_or_database")]._command("dropDatabase")

    drop_database = operation(_drop_database)

    def _fsync(self, /, **kwargs: Any) -> Steps[Dict[str, Any]]:
        """Flush every write to disk (``fsync``); ``lock=True`` also blocks writes until
        ``unlock()``. Keywords are added to the command."""
        return (yield from self["admin"]._command("fsync", **kwargs))

    fsync = operation(_fsync)

    def _unlock(self) -> Steps[Dict[str, Any]]:
        """Unlock a server locked by ``fsync(lock=True)`` (``fsyncUnlock``)."""
        return (yield from self["admin"]._command("fsyncUnlock"))

    unlock = operation(_unlock)

    def _is_locked(self) -> Steps[bool]:
        """Whether the server is locked by ``fsync(lock=True)`` (``currentOp``'s
        ``fsyncLock``): a property of a blocking connection, a coroutine method of an
        asyncio one."""
        return bool((yield from self["admin"]._command("currentOp")).get("fsyncLock", False))

    def _close_cursor(self, cursor_id: int, address: Optional[Address] = None) -> Steps[None]:
        """Close the cursor this connection opened with id ``cursor_id`` (on the server
        holding it; ``address`` is accepted for 2.8 and must be that server's)."""
        yield from self._kill_cursors([cursor_id], address)

    close_cursor = operation(_close_cursor)

    def _kill_cursors(
        self,
        cursor_ids: Iterable[int],
        address: Optional[Address] = None,
        namespace: Optional[str] = None,
    ) -> Steps[None]:
        """Kill cursors by id. Cursors this connection opened are closed where they live;
        other ids need ``namespace`` (``'db.collection'``) and go to the server at
        ``address`` (default: the server, or a replica set's primary). Everything is
        checked before anything is sent."""
        if isinstance(cursor_ids, (str, bytes)) or not isinstance(cursor_ids, Iterable):
            raise InvalidArgument(f"cursor_ids must be a list of ints, not {type_name(cursor_ids)}")
        ids = [check_int(i, "cursor_ids[]", 1, INT64_MAX) for i in cursor_ids]
        mine = [self._cursors.get(i) for i in ids]
        others = [i for i, cursor in zip(ids, mine) if cursor is None]
        pool = self._pool_at(address)
        if others and namespace is None:
            raise InvalidOperation(
                f"cursor(s) {others} were not opened by this connection: the killCursors "
                "command needs the cursor's collection; pass namespace='db.collection'"
            )
        target: Optional[Tuple[str, str]] = None
        if others:
            assert namespace is not None
            dbname, _, collection = check_str(namespace, "namespace").partition(".")
            if not dbname or not collection:
                raise ConfigurationError(f"namespace must be 'db.collection', not {namespace!r}")
            target = (dbname, collection)
        for cursor in mine:
            if cursor is not None:
                if pool is not None and cursor.address not in (None, pool.address):
                    raise ConfigurationError(
                        f"cursor {cursor.cursor_id} lives on {cursor.address}, not {address}"
                    )
        for cursor in mine:
            if cursor is not None:
                yield from cursor._close()
        if target is not None:
            spec = {"killCursors": target[1], "cursors": [Int64(i) for i in others]}
            yield from self._executor.run(target[0], spec, pool=pool)

    kill_cursors = operation(_kill_cursors)

    def _pool_at(self, address: Optional[Address]) -> Optional[Pool]:
        if address is None:
            return None
        for pool in self._executor.selector.pools():
            if pool.address == tuple(address):
                return pool
        raise ConfigurationError(f"this connection has no server at {address!r}")

    # -- lifetime ---------------------------------------------------------------------------

    def _close(self) -> Steps[None]:
        """Close every idle socket now, and every socket lent to another thread (Task) when
        it comes back; a replica set's (or the routers') monitor stops. The connection
        stays usable: a later operation reconnects. A step: the asyncio flavour's close()
        is awaited (as pymongo's is) until its monitor Task has ended."""
        self._executor.close()
        yield from self._executor.wait_stopped()

    close = operation(_close)
    disconnect = close

    def __repr__(self) -> str:
        if self._parts.routers is not None:
            return f"{type(self).__name__}({self._parts.seed_list()!r})"
        return f"{self._REPR_NAME}({self.host!r}, {self.port})"

    _REPR_NAME = "Connection"


class Connection(BaseConnection[Database], Blocking):
    """A connection to one MongoDB server, with a pool of sockets and per-thread requests;
    or, given several hosts, to the mongos routers of a sharded cluster (``router_selector.py``).

    ``Connection()``, ``Connection('host', 27018)``, ``Connection('mongodb://h:1/?maxPoolSize=5')``,
    ``Connection('mongodb://r1,r2,r3')`` or ``Connection(['r1:27017', 'r2:27017'])`` (routers).
    Keyword options are the URI options (``maxPoolSize``, ``socketTimeoutMS``, ...) plus the
    pymongo-2.x spellings ``max_pool_size``, ``auto_start_request``, ``use_greenlets``,
    ``safe``, ``w``, ``j``, ``wtimeout``, ``document_class`` and ``tz_aware``.
    ``event_listeners``: listeners of this connection's events (``wireclient.monitoring``),
    besides those registered globally.
    """

    _database_class = Database

    def _first_contact(self) -> None:
        run(self._connect())

    def _known_hello(self) -> Dict[str, Any]:
        return run(self._server_hello())

    @property
    def is_locked(self) -> bool:
        return run(self._is_locked())

    is_locked.__doc__ = BaseConnection._is_locked.__doc__

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncConnection(BaseConnection[AsyncDatabase], Asynchronous):
    """``Connection`` for asyncio: the same options and names, with coroutines where I/O
    happens, and requests per asyncio Task (``docs/asyncio.md``). It connects at
    ``await conn.connect()``, ``async with AsyncConnection(...) as conn``, or its first
    operation (a constructor cannot await)."""

    _database_class = AsyncDatabase
    _REPR_NAME = "AsyncConnection"

    def _first_contact(self) -> None:
        pass  # deferred: see the class notes

    def _known_hello(self) -> Dict[str, Any]:
        address = self._hello_address()
        hello = self._parts.hello_log.latest(address) if address is not None else {}
        if hello is None:
            raise InvalidOperation(
                "no socket to the server has been opened yet: await conn.connect() (or any "
                "operation) before reading what its handshake says"
            )
        return hello

    is_locked = operation(BaseConnection._is_locked)

    async def __aenter__(self) -> AsyncConnection:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _MongoClientDefaults(BaseConnection[D]):
    """pymongo 2.8's ``MongoClient`` defaults and positional order, for both flavours."""

    _AUTO_START_DEFAULT = False
    _REPR_NAME = "MongoClient"

    def __init__(
        self,
        host: Optional[Union[str, Sequence[str]]] = None,
        port: Optional[int] = None,
        max_pool_size: Optional[int] = None,
        document_class: type = dict,
        tz_aware: bool = False,
        _connect: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            host,
            port,
            max_pool_size,
            _connect=_connect,
            document_class=document_class,
            tz_aware=tz_aware,
            **kwargs,
        )


class MongoClient(Connection, _MongoClientDefaults[Database]):
    """pymongo 2.8's ``MongoClient``: a ``Connection`` whose defaults are that class's
    (``auto_start_request=False``; writes acknowledged, as every wireclient connection's).

    ``MongoClient(host=None, port=None, max_pool_size=100, document_class=dict,
    tz_aware=False, **kwargs)``: the positional order is 2.8's; every ``Connection`` option
    works as a keyword.
    """


class AsyncMongoClient(AsyncConnection, _MongoClientDefaults[AsyncDatabase]):
    """``MongoClient`` for asyncio: an ``AsyncConnection`` with 2.8's ``MongoClient``
    defaults (``auto_start_request=False``)."""

    _REPR_NAME = "AsyncMongoClient"
