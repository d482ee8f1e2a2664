"""Connection: the public entry point to one server, and the Request object.

An operation flows down once: ``Collection``/``Database`` build a command document, the
connection picks a pool (``_select_pool``; a replica-set connection overrides only that),
the pool hands out the caller's request socket or a free one, the socket frames, sends and
reads the one reply, the socket goes back, and the reply's ``ok`` is checked.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from wireclient import network, protocol
from wireclient.database import Database
from wireclient.errors import ConfigurationError, WireClientError
from wireclient.identity import make_identity
from wireclient.pool import Pool
from wireclient.uri import parse_uri, validate_options

Address = Tuple[str, int]

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 27017


class Request:
    """A request: ``end()`` (idempotent for this object) or use it as a ``with`` block."""

    __slots__ = ("_connection", "_ended")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._ended = False

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._connection.end_request()

    def __enter__(self) -> Request:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


def _ms(options: Mapping[str, Any], name: str, default: Optional[float]) -> Optional[float]:
    value = options.get(name)
    if value is None:
        return default
    return float(value) / 1000.0 if value else None


class Connection:
    """A connection to one MongoDB server, with a pool of sockets and per-thread requests.

    ``Connection()``, ``Connection('host', 27018)``, ``Connection('mongodb://h:1/?maxPoolSize=5')``.
    Keyword options are the URI options (``maxPoolSize``, ``socketTimeoutMS``, ...) plus the
    pymongo-2.x spellings ``max_pool_size``, ``auto_start_request``, ``use_greenlets``,
    ``safe``, ``w``, ``j``, ``wtimeout``.
    """

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        max_pool_size: Optional[int] = None,
        auto_start_request: Optional[bool] = None,
        use_greenlets: Optional[bool] = None,
        safe: Optional[bool] = None,
        w: Optional[Union[int, str]] = None,
        _connect: bool = True,
        **kwargs: Any,
    ) -> None:
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
        hosts, uri_options, database, userinfo = self._parse_hosts(host, port)
        options = dict(uri_options)
        options.update(validate_options(given))
        self._options = options
        self._hosts = hosts
        self._default_database = database
        self.auto_start_request = bool(options.get("autoStartRequest", True))
        self.use_greenlets = bool(options.get("useGreenlets", False))
        self._safe = options.get("safe")
        self._w = options.get("w")
        self._j = options.get("journal")
        self._wtimeout = options.get("wTimeoutMS")
        if self._w == 0 and self._j:
            raise ConfigurationError("w=0 (unacknowledged) cannot be combined with j=True")
        self.max_pool_size = int(options.get("maxPoolSize", 100))
        self._connect_timeout = _ms(options, "connectTimeoutMS", 20.0)
        self._socket_timeout = _ms(options, "socketTimeoutMS", None)
        self._wait_queue_timeout = _ms(options, "waitQueueTimeoutMS", None)
        self._ssl_context = self._make_ssl_context(options)
        self._credentials = self._make_credentials(userinfo, options, database)
        self._kill_queue: List[Tuple[Pool, str, str, int]] = []
        self._databases: Dict[str, Database] = {}
        self._pools = self._make_pools()
        if _connect:
            self._check_connectable()

    # -- construction -------------------------------------------------------------------

    @staticmethod
    def _parse_hosts(
        host: Optional[str], port: Optional[int]
    ) -> Tuple[Tuple[Address, ...], Dict[str, Any], Optional[str], Tuple[Optional[str], ...]]:
        if host is None:
            host = DEFAULT_HOST
        if not isinstance(host, str):
            raise ConfigurationError(f"host must be a string, not {host!r}")
        if host.startswith("mongodb://") or host.startswith("mongodb+srv://"):
            parsed = parse_uri(host, port or DEFAULT_PORT)
            userinfo = (parsed.username, parsed.password)
            return tuple(parsed.hosts), dict(parsed.options), parsed.database, userinfo
        from wireclient.uri import split_hosts

        return tuple(split_hosts(host, port or DEFAULT_PORT)), {}, None, (None, None)

    @staticmethod
    def _make_credentials(
        userinfo: Tuple[Optional[str], ...], options: Mapping[str, Any], database: Optional[str]
    ) -> Any:
        username, password = userinfo
        if username is None:
            if options.get("authMechanism") or options.get("authSource"):
                raise ConfigurationError("authMechanism/authSource given without a username")
            return None
        from wireclient.auth import make_credentials

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

    def _make_pools(self) -> Dict[Address, Pool]:
        if len(self._hosts) != 1:
            raise ConfigurationError(
                "Connection talks to one server; use ReplicaSetConnection for a seed list "
                f"({len(self._hosts)} hosts given)"
            )
        self._pool = self._new_pool(self._hosts[0])
        return {self._hosts[0]: self._pool}

    def _new_pool(self, address: Address) -> Pool:
        return Pool(
            address,
            self._connector(address),
            max_size=self.max_pool_size,
            wait_queue_timeout=self._wait_queue_timeout,
            identity=make_identity(self.use_greenlets),
        )

    def _connector(self, address: Address) -> Any:
        connect_timeout = self._connect_timeout
        socket_timeout = self._socket_timeout
        ssl_context = self._ssl_context
        app_name = self._options.get("appName")
        credentials = self._credentials

        def connect() -> network.SocketInfo:
            return network.connect(
                address,
                connect_timeout,
                socket_timeout,
                ssl_context,
                app_name=app_name,
                credentials=credentials,
            )

        return connect

    def _check_connectable(self) -> None:
        """Open one socket now, so a bad address fails at construction; it goes back idle."""
        sock = self._pool._checkout()
        self._pool._checkin(sock)

    # -- public API ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._pool.address[0]

    @property
    def port(self) -> int:
        return self._pool.address[1]

    @property
    def address(self) -> Address:
        return self._pool.address

    @property
    def pool(self) -> Pool:
        """The socket pool (for diagnostics: ``open_count``, ``request_count()``...)."""
        return self._pool

    def __getitem__(self, name: str) -> Database:
        db = self._databases.get(name)
        if db is None:
            db = self._databases[name] = Database(self, name)
        return db

    def __getattr__(self, name: str) -> Database:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def get_default_database(self) -> Database:
        if not self._default_database:
            raise ConfigurationError("the URI names no default database")
        return Database(self, self._default_database)

    def start_request(self) -> Request:
        """Pin the calling thread (greenlet) to one socket until ``end_request``."""
        for pool in self._pools.values():
            pool.start_request()
        return Request(self)

    def end_request(self) -> None:
        for pool in self._pools.values():
            pool.end_request()

    def in_request(self) -> bool:
        return self._pool.in_request()

    def close(self) -> None:
        """Close every socket. The connection stays usable: a later operation reconnects."""
        self._kill_queue.clear()
        for pool in self._pools.values():
            pool.close()

    disconnect = close

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def server_info(self) -> Dict[str, Any]:
        return self.admin.command("buildinfo")

    def database_names(self) -> List[str]:
        reply = self.admin.command("listDatabases", nameOnly=True)
        return [d["name"] for d in reply.get("databases", [])]

    def drop_database(self, name: Union[str, Database]) -> None:
        if isinstance(name, Database):
            name = name.name
        self[name].command("dropDatabase")

    def __repr__(self) -> str:
        return f"Connection({self.host!r}, {self.port})"

    # -- the operation path -------------------------------------------------------------

    def _select_pool(self, for_read: bool, read_preference: Any = None) -> Pool:
        """The pool an operation runs on (a replica-set connection overrides this)."""
        return self._pool

    def _command(
        self,
        dbname: str,
        spec: Mapping[str, Any],
        sequences: Sequence[protocol.DocumentSequence] = (),
        unacknowledged: bool = False,
        pool: Optional[Pool] = None,
        for_read: bool = False,
        read_preference: Any = None,
        check: bool = True,
    ) -> Optional[Dict[str, Any]]:
        """Run one command on the chosen pool's socket and check its reply."""
        if self._kill_queue:
            self._flush_kills()
        if pool is None:
            pool = self._select_pool(for_read, read_preference)
        rp_document = self._read_preference_document(pool.address, for_read, read_preference)
        sock = pool.get_socket(self.auto_start_request)
        try:
            reply = sock.command(dbname, spec, sequences, unacknowledged, rp_document)
        finally:
            pool.return_socket(sock)
        if reply is not None and check:
            self._check_reply(pool, reply, next(iter(spec), "command"))
        return reply

    def _check_reply(self, pool: Pool, reply: Mapping[str, Any], command_name: str) -> None:
        """Raise the typed error for a failed reply; tell ``_on_command_error`` about it, and
        about a ``writeConcernError`` (written, but the member may be stepping down)."""
        if reply.get("ok") != 1:
            self._on_command_error(pool, reply)
            network.check_reply(reply, command_name)
        elif "writeConcernError" in reply:
            self._on_command_error(pool, reply["writeConcernError"])

    def _read_preference_document(
        self, address: Address, for_read: bool, read_preference: Any
    ) -> Optional[Dict[str, Any]]:
        """The ``$readPreference`` an operation sends to ``address`` (none for one server)."""
        return None

    def _on_command_error(self, pool: Pool, reply: Mapping[str, Any]) -> None:
        """Hook for a failed command or a ``writeConcernError`` (both have ``code`` and
        ``errmsg``): a replica-set connection refreshes its view on "not primary"."""

    def _write_concern(
        self,
        safe: Optional[bool],
        w: Optional[Union[int, str]],
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Tuple[bool, Optional[Dict[str, Any]]]:
        """(acknowledged, writeConcern document or None) for a write's options."""
        if w is None and j is None and wtimeout is None:
            if safe is False:
                return False, {"w": 0}
            if safe is None and self._safe is False:
                return False, {"w": 0}
            w, j, wtimeout = self._w, self._j, self._wtimeout
        if w == 0:
            if j:
                raise ConfigurationError("w=0 (unacknowledged) cannot be combined with j=True")
            if safe is True:
                raise ConfigurationError("safe=True contradicts w=0")
            return False, {"w": 0}
        wc: Dict[str, Any] = {}
        if w is not None:
            wc["w"] = w
        if j is not None:
            wc["j"] = bool(j)
        if wtimeout is not None:
            wc["wtimeout"] = int(wtimeout)
        return True, (wc or None)

    # -- cursors killed by the garbage collector ----------------------------------------

    def _defer_kill(self, pool: Pool, dbname: str, collection: str, cursor_id: int) -> None:
        """Called from Cursor.__del__: no I/O there, the next operation sends the kill."""
        self._kill_queue.append((pool, dbname, collection, cursor_id))

    def _flush_kills(self) -> None:
        """Kill the cursors the garbage collector found, one command per namespace."""
        queue, self._kill_queue = self._kill_queue, []
        batches: Dict[Tuple[int, str, str], Tuple[Pool, List[int]]] = {}
        for pool, dbname, collection, cursor_id in queue:
            batches.setdefault((id(pool), dbname, collection), (pool, []))[1].append(cursor_id)
        for (_, dbname, collection), (pool, ids) in batches.items():
            try:
                self._command(
                    dbname, {"killCursors": collection, "cursors": ids}, pool=pool, check=False
                )
            except WireClientError:  # best effort: the server times idle cursors out anyway
                continue
