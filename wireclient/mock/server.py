"""MockServer: a scripted MongoDB server on wireclient's codec, for protocol tests.

Theory of operation
-------------------
Threads. ``start()`` binds a listening socket and starts one accept thread; each accepted
client gets one connection thread (``ClientConnection``) that reads its frames with the
codec's ``MessageReader`` and hands each message, as a ``Request``, to the server. Nothing
else runs in the background: replies are sent by whichever thread gives them (the test's
thread for ``request.ok()``, the connection's own thread for an autoresponder or the
automatic hello), under the connection's send lock. ``go()`` runs client calls on one
``ThreadPoolExecutor`` the server owns, created on first use. Every blocking call has a
timeout (sockets poll every ``_POLL`` seconds so they notice ``close()``), and ``close()``
stops the accept thread, closes every socket, joins every thread and shuts the executor
down (it waits for the functions ``go()`` started: their clients fail fast once the
sockets are gone).

What happens to a request, in this order (``_dispatch``):

1. it is appended to ``requests`` (the whole history, hellos included);
2. an OP_MSG whose checksum is wrong is refused (the connection is hung up, as MongoDB
   does, and the error kept in ``errors``) unless ``bad_checksums="record"``, which lets it
   through with ``request.checksum_ok`` False;
3. the autoresponders, newest first: the first whose matcher matches and which gives a
   reply answers it (a function may return None to pass);
4. with ``auto_hello``, ``hello`` and legacy hello (``isMaster`` / ``ismaster``) are
   answered from ``hello_fields`` (changeable at any time with ``set_hello``) with the
   wire versions and the compressors the client offered that the server has;
5. anything else waits in a queue for ``receives``, which takes the oldest request that
   matches (others stay queued for later ``receives``).

A frame that breaks the protocol (bad length, unknown opcode, undecodable document)
makes the server hang up on that client and keep the ``ProtocolError`` in ``errors``.
Compression is the client's choice, as in MongoDB: compressed requests are decompressed
(zlib always; snappy and zstd when their packages are installed) and their replies
compressed the same way. The automatic hello does not stream (it sends no
``topologyVersion``), so drivers poll it.
"""

from __future__ import annotations

import datetime
import itertools
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.mock.replies import (
    HangUp,
    Reply,
    Responder,
    as_reply,
    frames_for,
)
from wireclient.mock.requests import MatcherSpec, Request, as_matcher
from wireclient.protocol import OP_COMPRESSED, CompressorId
from wireclient.rules.wire import DEFAULT_MAX_BSON_SIZE, DEFAULT_MAX_WRITE_BATCH_SIZE

if TYPE_CHECKING:
    import ssl

T = TypeVar("T")

_POLL = 0.25  # how often a blocked accept / recv looks at whether the server is closing
_JOIN_TIMEOUT = 10.0
_HELLO_NAMES = frozenset(("hello", "ismaster"))
_COMPRESSORS = ("zlib", "snappy", "zstd", "noop")


def _check_compressors(names: Iterable[str]) -> Tuple[str, ...]:
    checked = []
    for name in names:
        if name not in _COMPRESSORS:
            raise ConfigurationError(
                f"unknown compressor {name!r}: choose from {', '.join(_COMPRESSORS)}"
            )
        if name in ("snappy", "zstd"):
            module = "snappy" if name == "snappy" else "zstandard"
            try:
                __import__(module)
            except ImportError as exc:
                raise ConfigurationError(
                    f"the {name} compressor needs the {module!r} package, which is not installed"
                ) from exc
        checked.append(name)
    return tuple(checked)


class NoMatchingRequest(AssertionError):
    """``receives`` waited ``timeout`` seconds and no matching request came."""


class Autoresponder:
    """One ``autoresponds`` rule; ``cancel()`` removes it."""

    def __init__(self, server: MockServer, matcher: MatcherSpec, responder: Responder) -> None:
        self.server = server
        self.matcher = as_matcher(matcher)
        self.responder = responder

    def reply_for(self, request: Request) -> Optional[Reply]:
        if not self.matcher.matches(request):
            return None
        given = self.responder
        if callable(given):
            result = given(request)
            return None if result is None else as_reply(result)
        return as_reply(given)

    def cancel(self) -> None:
        self.server._cancel(self)


class ClientConnection:
    """One client's socket and the thread that reads it (see the module notes)."""

    def __init__(self, server: MockServer, sock: socket.socket, address: Tuple[str, int]) -> None:
        self.server = server
        self.sock = sock
        self.address = address
        self.connection_id = next(server._connection_ids)
        self._send_lock = threading.Lock()
        self.closed = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"mock-conn-{server.port}-{self.connection_id}", daemon=True
        )

    def answer(self, request: Request, reply: Reply) -> None:
        """Send ``reply`` to ``request`` (its delay first; a hang-up closes the socket)."""
        server = self.server
        frames = frames_for(request, reply, server._next_request_id, checksums=server.checksums)
        if reply.delay and server._closing.wait(reply.delay):
            return  # the server closed while the reply waited
        if isinstance(reply, HangUp):
            self.close()
            return
        with self._send_lock:
            try:
                for frame in frames:
                    self.sock.sendall(frame)
            except OSError:
                # The client went away before its answer: it sees that on its side, and
                # the server has nobody left to tell.
                self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already shut down by the peer
        self.sock.close()

    def _handshake_tls(self) -> bool:
        tls_sock: Any = self.sock
        tls_sock.settimeout(self.server.request_timeout)
        try:
            tls_sock.do_handshake()
        except (OSError, ValueError) as exc:
            self.server._record_error(exc)
            return False
        return True

    def _run(self) -> None:
        try:
            if self.server.tls is not None and not self._handshake_tls():
                return
            self.sock.settimeout(_POLL)
            reader = protocol.MessageReader(verify_checksums=False)
            reader.inflate = True
            while not self.closed.is_set():
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    reader.feed(data)
                    while True:
                        frame = reader.peek_frame()
                        item = reader.next_message()
                        if item is None:
                            break
                        assert frame is not None
                        self._received(frame, *item)
                except ProtocolError as exc:
                    self.server._record_error(exc)
                    return
        finally:
            self.close()
            self.server._forget(self)

    def _received(self, frame: bytes, header: protocol.Header, message: protocol.Message) -> None:
        compressed_with = None
        if header.op_code == OP_COMPRESSED:
            compressed_with = CompressorId(frame[24]).name
        request = Request(
            header,
            message,
            frame,
            compressed_with=compressed_with,
            checksum_ok=protocol.checksum_ok(frame),
            client_address=self.address,
            connection=self,
        )
        self.server._dispatch(request)


class MockServer:
    """A scripted MongoDB server (see the module notes); a context manager.

    ``MockServer(min_wire_version=0, max_wire_version=25, compression=(), tls=None,
    auto_hello=True)``: the wire versions its hello reports, the compressors it accepts
    ("zlib", and "snappy" / "zstd" when installed), an ``ssl.SSLContext`` to serve TLS
    with, and whether it answers hello itself. Keywords: ``host`` and ``port`` to listen
    on (port 0: any free one; a ``host`` starting with "/" is a Unix socket's path),
    ``bad_checksums`` ("refuse", MongoDB's way, or "record"), ``checksums`` (put a CRC-32C
    on OP_MSG replies), ``request_timeout`` (the default wait of ``receives``),
    ``hello_fields`` (extra fields of the hello reply).
    """

    def __init__(
        self,
        min_wire_version: int = 0,
        max_wire_version: int = 25,
        compression: Sequence[str] = (),
        tls: Optional[ssl.SSLContext] = None,
        auto_hello: bool = True,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bad_checksums: str = "refuse",
        checksums: bool = False,
        request_timeout: float = 10.0,
        hello_fields: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if bad_checksums not in ("refuse", "record"):
            raise ValueError(f"bad_checksums must be 'refuse' or 'record', not {bad_checksums!r}")
        if isinstance(compression, str):
            compression = [compression]
        self.min_wire_version = min_wire_version
        self.max_wire_version = max_wire_version
        self.compression = _check_compressors(compression)
        self.tls = tls
        self.auto_hello = auto_hello
        self.host = host
        self.port = port
        self.bad_checksums = bad_checksums
        self.checksums = checksums
        self.request_timeout = request_timeout
        self.requests: List[Request] = []  # every request, in arrival order
        self.errors: List[Exception] = []  # protocol errors and refused frames
        self._hello_fields: Dict[str, Any] = {"isWritablePrimary": True}
        self._hello_fields.update(hello_fields or {})
        self._lock = threading.Condition()
        self._queue: List[Request] = []
        self._responders: List[Autoresponder] = []
        self._connections: List[ClientConnection] = []
        self._request_ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._closing = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._accept_thread: Optional[threading.Thread] = None
        self._executor: Optional[ThreadPoolExecutor] = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> MockServer:
        """Listen, and accept clients in the background. Returns the server."""
        if self._listener is not None:
            raise RuntimeError("the mock server is already started")
        if self.unix:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(self.host)
            listener.listen()
        else:
            listener = socket.create_server((self.host, self.port))
            self.port = listener.getsockname()[1]
        listener.settimeout(_POLL)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"mock-accept-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def close(self) -> None:
        """Stop every thread, close every socket, shut the ``go()`` executor down."""
        self._closing.set()
        with self._lock:
            connections = list(self._connections)
            self._lock.notify_all()
        for conn in connections:
            conn.close()
        if self._listener is not None:
            try:  # wakes a blocked accept at once on Linux (else it notices within _POLL)
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not every platform shuts down a listening socket
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT)
        if self._listener is not None:
            self._listener.close()
            if self.unix:
                import os

                if os.path.exists(self.host):
                    os.unlink(self.host)
        for conn in connections:
            conn.thread.join(_JOIN_TIMEOUT)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> MockServer:
        return self.start() if self._listener is None else self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def unix(self) -> bool:
        """True when the server listens on a Unix domain socket (``host`` is its path)."""
        return self.host.startswith("/")

    @property
    def address(self) -> Tuple[str, int]:
        return (self.host, self.port)

    @property
    def address_string(self) -> str:
        if self.unix:
            return self.host
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def uri(self) -> str:
        if self.unix:
            from urllib.parse import quote

            return f"mongodb://{quote(self.host, safe='')}"
        return f"mongodb://{self.address_string}"

    def __repr__(self) -> str:
        return f"<MockServer {self.address_string}>"

    # -- scripting -----------------------------------------------------------------------

    def receives(self, matcher: MatcherSpec = None, timeout: Optional[float] = None) -> Request:
        """The oldest queued request that matches, waiting up to ``timeout`` seconds
        (``request_timeout`` by default) for one; ``NoMatchingRequest`` if none comes."""
        wanted = as_matcher(matcher)
        wait = self.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                for i, request in enumerate(self._queue):
                    if wanted.matches(request):
                        del self._queue[i]
                        return request
                left = deadline - time.monotonic()
                if left <= 0 or self._closing.is_set():
                    queued = ", ".join(map(repr, self._queue)) or "none"
                    raise NoMatchingRequest(
                        f"{self!r}: no request matching {wanted!r} in {wait} s (queued: {queued})"
                    )
                self._lock.wait(left)

    async def receives_async(
        self, matcher: MatcherSpec = None, timeout: Optional[float] = None
    ) -> Request:
        """``receives`` for a coroutine: waits in the server's executor, not the loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self.receives, matcher, timeout)

    def autoresponds(
        self, matcher: MatcherSpec, responder: Optional[Responder] = None
    ) -> Autoresponder:
        """Answer every matching request automatically from now on: ``responder`` is a
        reply, a document, or a function of the request returning either (or None to
        pass); by default ``ok()``. Newer rules are tried first; ``cancel()`` ends one."""
        from wireclient.mock.replies import ok

        rule = Autoresponder(self, matcher, ok() if responder is None else responder)
        with self._lock:
            self._responders.insert(0, rule)
        return rule

    def _cancel(self, rule: Autoresponder) -> None:
        with self._lock:
            if rule in self._responders:
                self._responders.remove(rule)

    @property
    def hello_fields(self) -> Dict[str, Any]:
        """A copy of the fields the automatic hello adds to its reply."""
        with self._lock:
            return dict(self._hello_fields)

    def set_hello(self, **fields: Any) -> None:
        """Change the automatic hello's fields from now on; a field set to None is removed
        (``set_hello(isWritablePrimary=False, secondary=True)`` is a step-down)."""
        with self._lock:
            for name, value in fields.items():
                if value is None:
                    self._hello_fields.pop(name, None)
                else:
                    self._hello_fields[name] = value

    def hangup_all(self) -> None:
        """Close every client connection (the server keeps listening)."""
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()

    @property
    def connection_count(self) -> int:
        with self._lock:
            return sum(1 for conn in self._connections if not conn.closed.is_set())

    def go(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the server's executor while the test scripts the
        server; the ``Future`` gives its result or raises its very exception."""
        return self._pool().submit(fn, *args, **kwargs)

    def go_async(
        self,
        coroutine: Union[Awaitable[T], Callable[..., Awaitable[T]]],
        *args: Any,
    ) -> Future[T]:
        """Run a coroutine (or a coroutine function with ``args``) to completion in its
        own event loop on the server's executor; for an asyncio client (pymongo's
        ``AsyncMongoClient``) scripted by a synchronous test."""
        import asyncio

        async def main() -> T:
            awaitable = coroutine(*args) if callable(coroutine) else coroutine
            return await awaitable

        return self._pool().submit(asyncio.run, main())

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=16, thread_name_prefix=f"mock-go-{self.port}"
                )
            return self._executor

    # -- the connection threads' side ------------------------------------------------------

    def _next_request_id(self) -> int:
        return next(self._request_ids)

    def _record_error(self, exc: Exception) -> None:
        with self._lock:
            self.errors.append(exc)

    def _forget(self, conn: ClientConnection) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._closing.is_set():
            try:
                sock, address = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            peer = (str(address), 0) if self.unix else (address[0], address[1])
            conn = ClientConnection(self, sock, peer)
            with self._lock:
                if self._closing.is_set():
                    sock.close()
                    return
                self._connections.append(conn)
            conn.thread.start()

    def _dispatch(self, request: Request) -> None:
        conn = request.connection
        assert conn is not None
        with self._lock:
            self.requests.append(request)
            responders = list(self._responders)
        if request.checksum_ok is False and self.bad_checksums == "refuse":
            self._record_error(ProtocolError(f"OP_MSG checksum mismatch: refused {request!r}"))
            conn.close()
            return
        if not request.more_to_come:
            for rule in responders:
                answer = rule.reply_for(request)
                if answer is not None:
                    try:
                        request.replies(answer)
                    except AssertionError as exc:  # a reply the request cannot take
                        self._record_error(exc)
                        conn.close()
                    return
            if self.auto_hello and (request.command_name or "").lower() in _HELLO_NAMES:
                request.replies(self._hello_reply(request, conn))
                return
        with self._lock:
            self._queue.append(request)
            self._lock.notify_all()

    def _hello_reply(self, request: Request, conn: ClientConnection) -> Dict[str, Any]:
        with self._lock:
            fields = dict(self._hello_fields)
        legacy = (request.command_name or "").lower() == "ismaster"
        if legacy:  # legacy hello names the primary flag "ismaster"
            fields["ismaster"] = fields.pop("isWritablePrimary", False)
        offered = request.doc.get("compression") or []
        doc: Dict[str, Any] = {
            "helloOk": True,
            **fields,
            "maxBsonObjectSize": DEFAULT_MAX_BSON_SIZE,
            "maxMessageSizeBytes": protocol.DEFAULT_MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": DEFAULT_MAX_WRITE_BATCH_SIZE,
            "localTime": datetime.datetime.now(datetime.timezone.utc),
            "connectionId": conn.connection_id,
            "minWireVersion": self.min_wire_version,
            "maxWireVersion": self.max_wire_version,
            "ok": 1.0,
        }
        for name in ("maxBsonObjectSize", "maxMessageSizeBytes", "maxWriteBatchSize"):
            if name in fields:
                doc[name] = fields[name]
        if offered:
            doc["compression"] = [name for name in offered if name in self.compression]
        return doc


__all__ = ["Autoresponder", "ClientConnection", "MockServer", "NoMatchingRequest"]
