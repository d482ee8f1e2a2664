"""Connection: the public entry point to one server (or to mongos routers), and Request.

A ``Connection`` is the public API and nothing more: it turns options into the parts that
do the work and hands every operation to them. The parts: a ``Requests`` table (who is in
a request, and the sockets requests hold), a selector (``SingleServer`` for one host,
``mongos.MongosSelector`` for a list of hosts, which must be mongos routers; a replica set
supplies its own, see ``replica_set.py``), the pools the selector owns, and the
``Executor`` that runs every message (``executor.py``). ``Database``, ``Collection`` and
``Cursor`` build command documents and call ``connection._executor``.

What a connection tells about its server lives in ``client_info.py`` (read from the
server's handshake), its server-wide helpers in ``client_admin.py``, its settings
(read preference, write concern, document class) in ``settings.py``, and the credentials
``Database.authenticate`` adds in ``client_auth.py``. ``MongoClient`` is a ``Connection``
with pymongo 2.8's defaults for that class.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from wireclient.client.client_admin import ServerAdmin
from wireclient.client.client_auth import CredentialStore
from wireclient.client.client_info import HelloLog, ServerInfo
from wireclient.client.database import Database
from wireclient.client.legacy import refuse
from wireclient.client.settings import ConnectionSettings, check_document_class
from wireclient.engine.executor import Executor, SingleServer
from wireclient.errors import ConfigurationError, InvalidArgument
from wireclient.monitoring import EventPublisher
from wireclient.pooling.identity import make_identity
from wireclient.pooling.pool import Pool
from wireclient.pooling.requests import Requests
from wireclient.rules.command import WriteConcern
from wireclient.rules.options import check_direct_connection, merge_options
from wireclient.rules.uri import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    Address,
    format_address,
    parse_host_argument,
)
from wireclient.transport import network
from wireclient.transport.compressors import settings_from_options

if TYPE_CHECKING:
    from wireclient.client.cursor import Cursor
    from wireclient.engine.executor import Selector
    from wireclient.engine.mongos import MongosSelector
    from wireclient.transport.network import SocketInfo


# Options that only a replica set gives a meaning to: refused on a Connection to one server,
# rather than accepted and ignored.
_REPLICA_SET_ONLY = (
    "heartbeatFrequencyMS",
    "localThresholdMS",
    "serverSelectionTimeoutMS",
    "readPreference",
    "readPreferenceTags",
)


class Request:
    """A request: ``end()`` (idempotent for this object) or use it as a ``with`` block."""

    __slots__ = ("connection", "_ended")

    def __init__(self, connection: Connection) -> None:
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


class Connection(ServerInfo, ServerAdmin, ConnectionSettings):
    """A connection to one MongoDB server, with a pool of sockets and per-thread requests;
    or, given several hosts, to the mongos routers of a sharded cluster (``mongos.py``).

    ``Connection()``, ``Connection('host', 27018)``, ``Connection('mongodb://h:1/?maxPoolSize=5')``,
    ``Connection('mongodb://r1,r2,r3')`` or ``Connection(['r1:27017', 'r2:27017'])`` (routers).
    Keyword options are the URI options (``maxPoolSize``, ``socketTimeoutMS``, ...) plus the
    pymongo-2.x spellings ``max_pool_size``, ``auto_start_request``, ``use_greenlets``,
    ``safe``, ``w``, ``j``, ``wtimeout``, ``document_class`` and ``tz_aware``.
    ``event_listeners``: listeners of this connection's events (``wireclient.monitoring``),
    besides those registered globally.
    """

    # auto_start_request when neither the URI nor a keyword says (MongoClient: False)
    _AUTO_START_DEFAULT = True
    _routers: Optional[MongosSelector] = None  # several hosts: the mongos routers' selector
    HOST = DEFAULT_HOST
    PORT = DEFAULT_PORT

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
        self._events = EventPublisher.for_connection(event_listeners)
        self._document_class = check_document_class(kwargs.pop("document_class", dict))
        tz_aware = kwargs.pop("tz_aware", False)
        if not isinstance(tz_aware, bool):
            raise InvalidArgument(f"tz_aware must be True or False, not {tz_aware!r}")
        self._tz_aware = tz_aware
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
        if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
            raise ConfigurationError(f"port must be an integer, not {port!r}")
        if port is not None and not 0 < port < 65536:
            raise ConfigurationError(f"port must be between 1 and 65535, not {port}")
        hosts, uri_options, database, userinfo = parse_host_argument(host, port)
        options = merge_options(uri_options, given)
        check_direct_connection(options, len(hosts))
        _refuse_unimplemented(options)
        self._options = options
        self._hosts = hosts
        self._default_database = database
        self.use_greenlets = bool(options.get("useGreenlets", False))
        self._write_concern = WriteConcern(
            options.get("safe"), options.get("w"), options.get("journal"), options.get("wTimeoutMS")
        )
        self.max_pool_size = int(options.get("maxPoolSize", 100))
        self._connect_timeout = _ms(options, "connectTimeoutMS", 20.0)
        self._socket_timeout = _ms(options, "socketTimeoutMS", None)
        self._wait_queue_timeout = _ms(options, "waitQueueTimeoutMS", None)
        self._ssl_context = self._make_ssl_context(options)
        self._compression = settings_from_options(options)  # a missing package fails here
        self._credentials = self._make_credentials(userinfo, options, database)
        self._auth_store = CredentialStore(self._credentials)
        self._hello_log = HelloLog()
        self._databases: Dict[str, Database] = {}
        self._cursors: weakref.WeakValueDictionary[int, Cursor] = weakref.WeakValueDictionary()
        identity = make_identity(self.use_greenlets)
        self._reap = getattr(identity, "reap", None)  # greenlets: deliver pending deaths
        auto_start = options.get("autoStartRequest", self._AUTO_START_DEFAULT)
        self._requests = Requests(identity, bool(auto_start))
        self._requests.events = self._events
        self._executor = Executor(self._make_selector(), self._requests, self._events)
        if _connect:
            self._check_connectable()

    # -- construction -------------------------------------------------------------------

    @staticmethod
    def _make_credentials(
        userinfo: Tuple[Optional[str], ...], options: Mapping[str, Any], database: Optional[str]
    ) -> Any:
        username, password = userinfo
        if username is None:
            if options.get("authMechanism") or options.get("authSource"):
                raise ConfigurationError("authMechanism/authSource given without a username")
            return None
        from wireclient.transport.auth import make_credentials

        return make_credentials(
            username,
            password,
            source=options.get("authSource") or database or "admin",
            mechanism=options.get("authMechanism"),
        )

    def _make_ssl_context(self, options: Mapping[str, Any]) -> Any:
        if not options.get("tls"):
            return None
        import ssl

        ca_file = options.get("tlsCAFile")
        try:
            ctx = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:  # FileNotFoundError does not name the file
            raise ConfigurationError(f"tlsCAFile {ca_file!r} is unusable: {exc}") from exc
        key_file = options.get("tlsCertificateKeyFile")
        if key_file:
            try:  # an encrypted key must not prompt on the terminal: the empty password fails
                ctx.load_cert_chain(key_file, password=lambda: b"")
            except (OSError, ssl.SSLError) as exc:
                raise ConfigurationError(
                    f"tlsCertificateKeyFile {key_file!r} is unusable: {exc}"
                ) from exc
        if options.get("tlsAllowInvalidHostnames") or options.get("tlsAllowInvalidCertificates"):
            ctx.check_hostname = False
        if options.get("tlsAllowInvalidCertificates"):
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _make_selector(self) -> Selector:
        """The server-selection strategy (a replica-set connection supplies its own): one
        server, or a list of mongos routers (``mongos.py``)."""
        if len(self._hosts) != 1:
            return self._router_selector()
        if self._options.get("directConnection") is False:
            raise ConfigurationError(
                "directConnection=false asks for discovery: use ReplicaSetConnection"
            )
        for name in _REPLICA_SET_ONLY:
            if name in self._options and not (
                name == "readPreference" and self._options[name] == "primary"
            ):
                raise ConfigurationError(
                    f"option {name!r} applies to a replica set: use ReplicaSetConnection "
                    "(or to several mongos routers: name them all)"
                )
        return SingleServer(self._new_pool(self._hosts[0]))

    def _router_selector(self) -> Selector:
        """Several hosts: the routers of a sharded cluster (a replica set's members are
        refused by the discovery round, saying to use ReplicaSetConnection)."""
        if self._options.get("replicaSet") is not None:
            raise ConfigurationError(
                "replicaSet names a replica set: use ReplicaSetConnection for its seed list "
                f"({len(self._hosts)} hosts given); a Connection to several hosts talks to "
                "mongos routers"
            )
        from wireclient.engine.mongos import MongosSelector  # only a list of routers needs it

        self._routers = MongosSelector(
            self._hosts,
            self._new_pool,
            self._options,
            self._connect_timeout,
            self._ssl_context,
            self.use_greenlets,
            self._events,
        )
        return self._routers

    def _new_pool(self, address: Address) -> Pool:
        pool = Pool(
            address,
            self._connector(address),
            max_size=self.max_pool_size,
            wait_queue_timeout=self._wait_queue_timeout,
            max_idle_time=_ms(self._options, "maxIdleTimeMS", None),
            min_size=int(self._options.get("minPoolSize", 0)),
        )
        pool.reap = self._reap
        pool.events = self._events
        return pool

    def _connector(self, address: Address) -> Any:
        connect_timeout = self._connect_timeout
        socket_timeout = self._socket_timeout
        ssl_context = self._ssl_context
        app_name = self._options.get("appName")
        store = self._auth_store
        credentials = store.uri
        hello_log = self._hello_log
        events = self._events
        compression = self._compression
        # A single server named with replicaSet must be a member of that set (a replica-set
        # connection checks every member in its monitor instead).
        set_name = self._options.get("replicaSet") if type(self) is Connection else None

        def connect() -> network.SocketInfo:
            sock = network.connect(
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
            store.authenticate_socket(sock)  # the credentials Database.authenticate added
            hello_log.record(address, sock.hello)  # the latest handshake (client_info.py)
            return sock

        return connect

    def _check_connectable(self) -> None:
        """Open one socket now, so a bad address fails at construction; it goes back idle.
        A list of routers first runs its discovery round (and starts its monitor)."""
        routers = self._routers
        if routers is None:
            pool = self._executor.select()
            pool.return_socket(pool.get_socket())
            return
        try:
            routers.discover()
            pool = self._executor.select()
            pool.return_socket(pool.get_socket())
        except BaseException:
            self._executor.close()  # the monitor too: nothing of this connection stays
            raise

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

    def __getitem__(self, name: str) -> Database:
        """The database ``name``: one ``Database`` object per name, so settings on it stay."""
        db = self._databases.get(name)
        if db is None:
            db = self._databases.setdefault(name, Database(self, name))
        return db

    def __getattr__(self, name: str) -> Database:
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
    ) -> Database:
        """pymongo 4's name: the database ``name`` (default: the URI's). Without options it
        is the cached ``c[name]``; with ``read_preference`` / ``write_concern`` a new
        ``Database`` object carrying them."""
        if name is None:
            return self.get_default_database()
        if read_preference is None and write_concern is None:
            return self[name]
        db = Database(self, name, read_preference)
        db.write_concern = write_concern
        return db

    def get_default_database(self) -> Database:
        if not self._default_database:
            raise ConfigurationError("the URI names no default database")
        return self[self._default_database]

    def start_request(self) -> Request:
        """Pin the calling thread (greenlet) to one socket per server until ``end_request``
        (through mongos routers: to one router and its socket, not to a shard)."""
        self._requests.start()
        return Request(self)

    def end_request(self) -> None:
        self._requests.end()

    def in_request(self) -> bool:
        return self._requests.in_request()

    def request_count(self) -> int:
        """How many threads (greenlets) are in a request (for diagnostics)."""
        if self._reap is not None:
            self._reap()
        return self._requests.count()

    def request_socket(self) -> Optional[SocketInfo]:
        """The caller's request socket on the server (a replica set's primary), if bound."""
        return self._requests.bound_socket(self.pool)

    def close(self) -> None:
        """Close every idle socket now, and every socket lent to another thread when it
        comes back. The connection stays usable: a later operation reconnects."""
        self._executor.close()

    disconnect = close

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._routers is not None:
            return f"{type(self).__name__}({self._seed_list()!r})"
        return f"Connection({self.host!r}, {self.port})"

    def _seed_list(self) -> str:
        return ",".join(format_address(address) for address in self._hosts)


class MongoClient(Connection):
    """pymongo 2.8's ``MongoClient``: a ``Connection`` whose defaults are that class's
    (``auto_start_request=False``; writes acknowledged, as every wireclient connection's).

    ``MongoClient(host=None, port=None, max_pool_size=100, document_class=dict,
    tz_aware=False, **kwargs)``: the positional order is 2.8's; every ``Connection`` option
    works as a keyword.
    """

    _AUTO_START_DEFAULT = False

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

    def __repr__(self) -> str:
        if self._routers is not None:
            return f"MongoClient({self._seed_list()!r})"
        return f"MongoClient({self.host!r}, {self.port})"
