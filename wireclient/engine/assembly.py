"""The assembly of a client's parts from its options.

Theory of operation
-------------------
``Connection`` and ``ReplicaSetConnection`` are the public API and nothing more; what does
the work is built here, once, from the arguments they were given (``ClientParts``):

- the options: the ``host`` argument and the keywords merged into one checked table
  (``rules.uri``, ``rules.options``); options wireclient names but does not
  implement are refused, never validated and then ignored;
- the ``Requests`` table (who is in a request; ``auto_start_request``), with the identity
  strategy (threads or greenlets) chosen once;
- the pool factory (``new_pool``): one ``Pool`` per server, whose connector (``connector``)
  opens a socket with the TLS context, compressors and handshake credentials of these
  options, authenticates it with the credentials ``Database.authenticate`` added
  (``CredentialStore``, ``credentials.py``), and records its handshake reply in the
  ``HelloLog`` (what ``Connection.max_bson_size`` and its kin read); a socket that fails
  on the network before its handshake completes is told to the error handler with the
  pool generation it was begun in (``Executor.handshake_error``), whoever asked for it;
- the selector: ``SingleServer`` for one host, ``MongosSelector`` (``router_selector.py``) for a
  list of mongos routers, ``ReplicaSetSelector`` (``replica_set_selector.py``) for a
  ``ReplicaSetConnection``; the two last are imported only when chosen, so a connection to
  one server never loads the topology, the monitor or read preferences;
- the ``Executor`` (``executor.py``) that runs every message through that selector.

``connect()`` (a step) then proves the parts work: a replica set (or a list of routers)
runs its discovery round in the caller and starts its monitor (a thread or greenlet; for
the asyncio client one asyncio Task, on the running loop); one server gets one socket
opened and put back idle, so a bad address fails at construction (at ``await
conn.connect()`` for the asyncio client).
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from wireclient.engine.credentials import CredentialStore
from wireclient.engine.executor import Executor, SingleServer
from wireclient.errors import ConfigurationError
from wireclient.pooling.identity import Identity, make_identity
from wireclient.pooling.pool import Pool, establishment_fault
from wireclient.pooling.requests import Requests
from wireclient.rules.command import WriteConcern
from wireclient.rules.options import (
    DEFAULT_MAX_CONNECTING,
    check_auth_options,
    check_direct_connection,
    merge_options,
)
from wireclient.rules.uri import Address, format_address, parse_host_argument
from wireclient.transport import network
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from wireclient.engine.executor import Selector
    from wireclient.engine.router_selector import MongosSelector
    from wireclient.monitoring import EventPublisher
    from wireclient.transport.compressors import CompressionSettings


# Options that only a replica set gives a meaning to: refused on a Connection to one server,
# rather than accepted and ignored.
_REPLICA_SET_ONLY = (
    "heartbeatFrequencyMS",
    "localThresholdMS",
    "serverSelectionTimeoutMS",
    "readPreference",
    "readPreferenceTags",
)


def _is_default(name: str, value: Any) -> bool:
    """A replica-set option given its default value, which a one-server Connection accepts:
    readPreference primary, or tag sets that are all empty (``[{}]``, match any member)."""
    if name == "readPreference":
        return bool(value == "primary")
    if name == "readPreferenceTags":
        return not any(value)
    return False


class HelloLog:
    """The latest handshake reply per server address, recorded by the connector."""

    __slots__ = ("_replies", "_lock")

    def __init__(self) -> None:
        self._replies: Dict[Address, Dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, address: Address, reply: Mapping[str, Any]) -> None:
        with self._lock:
            self._replies[address] = dict(reply)

    def latest(self, address: Address) -> Optional[Dict[str, Any]]:
        with self._lock:
            return self._replies.get(address)


def _ms(options: Mapping[str, Any], name: str, default: Optional[float]) -> Optional[float]:
    value = options.get(name)
    if value is None:
        return default
    return float(value) / 1000.0 if value else None


def _refuse_unimplemented(options: Mapping[str, Any]) -> None:
    """Options wireclient accepts by name but does not implement yet: refused, never
    validated and then ignored."""
    if options.get("retryWrites"):
        raise ConfigurationError("retryWrites=true: wireclient does not retry writes")


class ClientParts:
    """What one client is made of, built from its arguments (see the module notes).

    ``replica_set``: build a ``ReplicaSetConnection``'s parts (a replica-set selector);
    else a ``Connection``'s (one server, or a list of mongos routers). ``auto_start``: the
    ``auto_start_request`` default of the class (``MongoClient``'s is False).
    ``asynchronous``: the parts of an ``AsyncConnection``: requests per asyncio Task, pools
    whose waiters wait on the asyncio driver's latches."""

    def __init__(
        self,
        host: Any,
        port: Optional[int],
        given: Mapping[str, Any],
        events: Optional[EventPublisher],
        replica_set: bool = False,
        auto_start: bool = True,
        asynchronous: bool = False,
    ) -> None:
        if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
            raise ConfigurationError(f"port must be an integer, not {port!r}")
        if port is not None and not 0 < port < 65536:
            raise ConfigurationError(f"port must be between 1 and 65535, not {port}")
        hosts, uri_options, database, userinfo = parse_host_argument(host, port)
        options = merge_options(uri_options, given)
        check_direct_connection(options, len(hosts))
        _refuse_unimplemented(options)
        self.options = options
        self.hosts = hosts
        self.default_database = database
        self.events = events
        self.use_greenlets = bool(options.get("useGreenlets", False))
        self.write_concern = WriteConcern(
            options.get("safe"), options.get("w"), options.get("journal"), options.get("wTimeoutMS")
        )
        self.max_pool_size = int(options.get("maxPoolSize", 100))
        self._connect_timeout = _ms(options, "connectTimeoutMS", 20.0)
        self._socket_timeout = _ms(options, "socketTimeoutMS", None)
        self._wait_queue_timeout = _ms(options, "waitQueueTimeoutMS", None)
        # TLS and compression load only when asked for (a plain connection loads neither)
        self._ssl_context: Any = None
        if options.get("tls"):
            from wireclient.transport.tls import make_ssl_context

            self._ssl_context = make_ssl_context(options)
        self._compression: Optional[CompressionSettings] = None
        if options.get("compressors"):
            from wireclient.transport.compressors import settings_from_options

            self._compression = settings_from_options(options)  # a missing package fails here
        username, password = userinfo
        check_auth_options(username, options)
        self.credentials = None
        if username is not None:  # auth (hashlib, hmac) loads only for a user
            from wireclient.transport.auth import credentials_from_uri

            self.credentials = credentials_from_uri(username, password, options, database)
        self.credential_store = CredentialStore(self.credentials)
        self.hello_log = HelloLog()
        self._latch: Any = None  # the pools' waiters: threading.Event (the default)
        if asynchronous:
            if self.use_greenlets:
                raise ConfigurationError("use_greenlets applies to the blocking client only")
            from wireclient.pooling.task_identity import TaskIdentity
            from wireclient.transport import asynchronous as driver

            identity: Identity = TaskIdentity()
            self._latch = driver.latch
        else:
            identity = make_identity(self.use_greenlets)
        self.reap = getattr(identity, "reap", None)  # greenlets: deliver pending deaths
        self.requests = Requests(identity, bool(options.get("autoStartRequest", auto_start)))
        self.requests.events = events
        self._replica_set = replica_set
        self.asynchronous = asynchronous
        self.routers: Optional[MongosSelector] = None  # several hosts: the routers' selector
        selector = self._replica_set_selector() if replica_set else self._selector()
        self.executor = Executor(selector, self.requests, events)

    # -- the selector -------------------------------------------------------------------

    def _selector(self) -> Selector:
        """A ``Connection``'s: one server, or a list of mongos routers (``router_selector.py``)."""
        options = self.options
        if len(self.hosts) != 1:
            return self._router_selector()
        if options.get("directConnection") is False:
            raise ConfigurationError(
                "directConnection=false asks for discovery: use ReplicaSetConnection"
            )
        for name in _REPLICA_SET_ONLY:
            if name in options and not _is_default(name, options[name]):
                raise ConfigurationError(
                    f"option {name!r} applies to a replica set: use ReplicaSetConnection "
                    "(or to several mongos routers: name them all)"
                )
        return SingleServer(self.new_pool(self.hosts[0]), self.events)

    def _router_selector(self) -> Selector:
        """Several hosts: the routers of a sharded cluster (a replica set's members are
        refused by the discovery round, saying to use ReplicaSetConnection)."""
        if self.options.get("replicaSet") is not None:
            raise ConfigurationError(
                "replicaSet names a replica set: use ReplicaSetConnection for its seed list "
                f"({len(self.hosts)} hosts given); a Connection to several hosts talks to "
                "mongos routers"
            )
        from wireclient.engine.router_selector import (
            MongosSelector,
        )  # only a list of routers needs it

        self.routers = MongosSelector(*self._selector_arguments())
        return self.routers

    def _replica_set_selector(self) -> Selector:
        if self.options.get("directConnection"):
            raise ConfigurationError("directConnection=true talks to one server: use Connection")
        from wireclient.engine.replica_set_selector import ReplicaSetSelector

        return ReplicaSetSelector(*self._selector_arguments())

    def _selector_arguments(self) -> Tuple[Any, ...]:
        return (
            self.hosts,
            self.new_monitored_pool,
            self.options,
            self._connect_timeout,
            self._ssl_context,
            self.use_greenlets,
            self.events,
            self.asynchronous,
        )

    # -- pools and their sockets ----------------------------------------------------------

    def new_pool(self, address: Address, monitored: bool = False) -> Pool:
        """A pool to ``address``; ``monitored`` when a monitor checks that server (it may
        then be paused by errors: see ``Pool``)."""
        this_pool: Optional[weakref.ReferenceType[Pool]] = None  # set once the pool exists

        def pool_of_connector() -> Optional[Pool]:
            return this_pool() if this_pool is not None else None

        pool = Pool(
            address,
            self.connector(address, pool_of_connector),
            max_size=self.max_pool_size,
            wait_queue_timeout=self._wait_queue_timeout,
            max_idle_time=_ms(self.options, "maxIdleTimeMS", None),
            min_size=int(self.options.get("minPoolSize", 0)),
            max_connecting=int(self.options.get("maxConnecting", DEFAULT_MAX_CONNECTING)),
            monitored=monitored,
            events=self.events,
            latch=self._latch,
        )
        pool.reap = self.reap
        this_pool = weakref.ref(pool)  # weak: the pool holds its connector
        return pool

    def new_monitored_pool(self, address: Address) -> Pool:
        """The pool factory of the replica set's and the routers' selectors."""
        return self.new_pool(address, monitored=True)

    def connector(
        self, address: Address, pool_of: Callable[[], Optional[Pool]] = lambda: None
    ) -> Any:
        """The function a pool calls to open a socket to ``address`` (see the module notes).
        A connect, handshake or authentication that fails for a reason of the server's
        (``establishment_fault``: the network, the protocol, the credentials; the faults
        the pool clears itself for) is told to the error handler
        (``Executor.handshake_error``) with the generation of ``pool_of()`` when the
        connect began."""
        connect_timeout = self._connect_timeout
        socket_timeout = self._socket_timeout
        ssl_context = self._ssl_context
        app_name = self.options.get("appName")
        store = self.credential_store
        credentials = store.uri
        hello_log = self.hello_log
        events = self.events
        compression = self._compression
        # A single server named with replicaSet must be a member of that set (a replica-set
        # connection checks every member in its monitor instead).
        set_name = None if self._replica_set else self.options.get("replicaSet")
        parts = weakref.ref(self)  # weak: these parts hold the pools that hold this function
        described = events is not None and (
            events.server is not None or events.topology is not None
        )

        def connect() -> Steps[network.SocketInfo]:
            pool = pool_of()
            generation = pool.generation if pool is not None else None
            del pool
            try:
                sock = yield from open_socket()
            except Exception as exc:
                if not establishment_fault(exc):
                    raise
                pool, owner = pool_of(), parts()
                if pool is not None and owner is not None and generation is not None:
                    owner.executor.handshake_error(pool, generation, exc)
                raise
            if described:  # server or topology listeners: the handshake describes the server
                pool, owner = pool_of(), parts()
                if pool is not None and owner is not None:
                    owner.executor.selector.handshaken(pool, sock.hello)
            return sock

        def open_socket() -> Steps[network.SocketInfo]:
            sock = yield from network.connect(
                address,
                connect_timeout,
                socket_timeout,
                ssl_context,
                app_name=app_name,
                credentials=credentials,
                events=events,
                compression=compression,
            )
            if set_name is not None and sock.hello.get("setName") != set_name:
                sock.close()
                found = sock.hello.get("setName")
                raise ConfigurationError(
                    f"server at {format_address(address)} is "
                    + (f"a member of replica set {found!r}" if found else "not in a replica set")
                    + f", not of {set_name!r} (replicaSet)"
                )
            yield from store.authenticate_socket(
                sock
            )  # the credentials Database.authenticate added
            hello_log.record(address, sock.hello)  # the latest handshake
            return sock

        return connect

    # -- the first contact ----------------------------------------------------------------

    def connect(self) -> Steps[None]:
        """Prove the parts work now (see the module notes); nothing of them stays running
        when that fails."""
        executor = self.executor
        if self._replica_set:
            yield from executor.selector.discover()  # type: ignore[attr-defined]
            return
        routers = self.routers
        if routers is None:
            pool = executor.select()
            try:
                pool.return_socket((yield from pool.checkout()))
            except BaseException:
                executor.selector.close()  # listeners hear the topology close
                raise
            return
        try:
            yield from routers.discover()
            pool = yield from executor.select_waiting()
            pool.return_socket((yield from pool.checkout()))
        except BaseException:
            executor.close()  # the monitor too: nothing of this connection stays
            yield from executor.wait_stopped()
            raise

    def seed_list(self) -> str:
        return ",".join(format_address(address) for address in self.hosts)


__all__ = ["ClientParts", "HelloLog"]
