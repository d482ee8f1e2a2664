"""SocketInfo: one socket to one server, and the only module that imports ``socket``/``ssl``.

Theory of operation
-------------------
``connect()`` opens a TCP (optionally TLS) socket with ``connectTimeoutMS``, performs the
handshake (``hello`` with ``helloOk``, sent as OP_QUERY on ``admin.$cmd``, falling back to
``isMaster`` for servers that do not know ``hello``; the same ``hello()`` serves the replica
set monitor), authenticates if asked, and then applies ``socketTimeoutMS`` to every later
read and write. The handshake records the server's limits.

This module knows bytes, TLS and the handshake, not commands: ``send_and_receive()`` frames
one message with the sans-IO codec, writes it with one ``sendall``, and reads exactly one
reply frame (none when no reply is expected) through the codec's ``MessageReader`` (the one
framer), checking ``responseTo``. The envelope of a command (``$db``, OP_QUERY for old
servers) and the meaning of its reply come from ``wireclient.command``; ``command()`` is a
convenience for the handshake, authentication and protocol testers that puts the two
together. The pool's bookkeeping (generations, idle times) lives in the pool, not here.

Any exception between the first byte sent and the last byte of the reply read (a timeout,
EOF, a malformed frame, even KeyboardInterrupt) closes the socket before it propagates, so
a half-read socket can never go back to a pool. ``OSError`` becomes ``AutoReconnect`` (or
``NetworkTimeout``) here, at this one boundary.
"""

from __future__ import annotations

import itertools
import os
import platform
import socket
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from wireclient import __version__, command, protocol
from wireclient.errors import AutoReconnect, ConfigurationError, NetworkTimeout, ProtocolError

if TYPE_CHECKING:  # ssl is imported by whoever builds an SSLContext (connection.py)
    import ssl

Address = Tuple[str, int]
Document = Mapping[str, Any]

MIN_SUPPORTED_WIRE_VERSION = command.MIN_SUPPORTED_WIRE_VERSION
_RECV_SIZE = 64 * 1024
UNIX_SOCKET_PORT = 0  # how uri.py marks a Unix domain socket path
COMMAND_NOT_FOUND = 59

_request_ids = itertools.count(int.from_bytes(os.urandom(3), "little"))


def next_request_id() -> int:
    return next(_request_ids) & 0x7FFFFFFF


class SocketInfo:
    """One connected, handshaken socket, with the server's limits."""

    __slots__ = (
        "sock",
        "address",
        "hello",
        "max_wire_version",
        "max_bson_size",
        "max_message_size",
        "max_write_batch_size",
        "connection_id",
        "closed",
        "_reader",
        "_legacy_hello",
    )

    def __init__(self, sock: socket.socket, address: Address) -> None:
        self.sock = sock
        self.address = address
        self.hello: Dict[str, Any] = {}
        self.max_wire_version = 0
        self.max_bson_size = 16 * 1024 * 1024
        self.max_message_size = protocol.DEFAULT_MAX_MESSAGE_SIZE
        self.max_write_batch_size = 100_000
        self.connection_id: Optional[int] = None
        self.closed = False
        self._reader = protocol.MessageReader()
        self._legacy_hello = False  # the server does not know "hello": use isMaster

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SocketInfo {format_address(self.address)} {state} id={self.connection_id}>"

    # -- messages -----------------------------------------------------------------------

    def send_and_receive(
        self,
        message: Any,
        expect_reply: bool = True,
        check: Optional[Callable[[SocketInfo, bytes], None]] = None,
    ) -> Optional[Dict[str, Any]]:
        """Frame ``message``, send it, and read its one reply (if any) as a document.
        ``check(self, frame)`` may refuse the frame, by raising, before anything is sent."""
        request_id = next_request_id()
        data = protocol.encode(message, request_id)  # a ProtocolError here sent nothing
        if check is not None:
            check(self, data)  # the operation path's size limits: nothing sent either
        try:
            self.sock.sendall(data)
            if not expect_reply:
                return None
            header, reply = self._read_message()
            if header.response_to != request_id:
                raise ProtocolError(
                    f"reply responseTo {header.response_to} does not match requestID {request_id}"
                )
            return command.reply_document(reply)
        except BaseException as exc:
            self.close()
            raise _translate(exc, self.address) from exc

    def command(
        self,
        dbname: str,
        spec: Document,
        sequences: Sequence[protocol.DocumentSequence] = (),
        more_to_come: bool = False,
        read_preference: Optional[Document] = None,
    ) -> Optional[Dict[str, Any]]:
        """Send one command in its server's envelope and return the reply document, whatever
        its ``ok`` (None when ``more_to_come``)."""
        message, expect_reply = command.build_message(
            dbname, spec, sequences, more_to_come, read_preference, self.max_wire_version
        )
        return self.send_and_receive(message, expect_reply)

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (for protocol testers); closes the socket on failure."""
        try:
            self.sock.sendall(data)
        except BaseException as exc:
            self.close()
            raise _translate(exc, self.address) from exc

    def receive_message(self) -> Tuple[protocol.Header, Any]:
        """Read exactly one frame, whatever it answers, and decode it: for protocol testers
        who send with ``send_raw``. Like every read, any error closes the socket, so a
        half-read socket never goes back to the pool."""
        try:
            return self._read_message()
        except BaseException as exc:
            self.close()
            raise _translate(exc, self.address) from exc

    def _read_message(self) -> Tuple[protocol.Header, Any]:
        """Read exactly one frame through the codec's reader; the caller closes on error."""
        reader = self._reader
        item = reader.next_message()
        recv = self.sock.recv
        while item is None:
            data = recv(max(reader.bytes_needed, _RECV_SIZE))
            if not data:
                where = "mid-reply" if reader.buffered else "by server"
                raise AutoReconnect(f"{format_address(self.address)}: connection closed {where}")
            reader.feed(data)
            item = reader.next_message()
        return item

    # -- handshake ----------------------------------------------------------------------

    def handshake(
        self, app_name: Optional[str] = None, extra: Optional[Mapping[str, Any]] = None
    ) -> Dict[str, Any]:
        """Run the first hello (falling back to isMaster) and record the server's limits."""
        client: Dict[str, Any] = {
            "driver": {"name": "wireclient", "version": __version__},
            "os": {"type": platform.system() or "unknown"},
            "platform": f"Python {platform.python_version()}",
        }
        if app_name:
            client["application"] = {"name": app_name}
        reply = self.run_hello({"helloOk": True, "client": client, **(extra or {})})
        command.check_reply(reply, "isMaster" if self._legacy_hello else "hello")
        max_wire = int(reply.get("maxWireVersion", 0))
        min_wire = int(reply.get("minWireVersion", 0))
        refusal = command.wire_version_error(format_address(self.address), min_wire, max_wire)
        if refusal is not None:
            self.close()
            raise ConfigurationError(refusal)
        self.hello = reply
        self.max_wire_version = max_wire
        self.max_bson_size = int(reply.get("maxBsonObjectSize", self.max_bson_size))
        self.max_message_size = int(reply.get("maxMessageSizeBytes", self.max_message_size))
        self._reader.max_message_size = max(self.max_message_size, 16)
        self.max_write_batch_size = int(reply.get("maxWriteBatchSize", self.max_write_batch_size))
        conn_id = reply.get("connectionId")
        self.connection_id = int(conn_id) if conn_id is not None else None
        return reply

    def run_hello(self, fields: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """``hello`` (``isMaster`` for a server that answers "no such command" to it, which
        is then remembered): over OP_QUERY before the handshake, in the server's own
        envelope after it. Returns the reply whatever its ``ok``."""
        fields = fields or {}
        if not self._legacy_hello:
            reply = self._admin_command({"hello": 1, **fields})
            if reply.get("ok") == 1 or not _may_be_unknown_command(reply):
                return reply
            self._legacy_hello = True
        return self._admin_command({"isMaster": 1, **fields})

    def _admin_command(self, spec: Document) -> Dict[str, Any]:
        if self.max_wire_version:  # handshaken: the server's own envelope
            reply = self.command("admin", spec)
        else:
            reply = self.send_and_receive(protocol.OpQuery("admin.$cmd", spec, number_to_return=-1))
        assert reply is not None
        return reply

    def is_dead(self) -> bool:
        """True when the peer has closed (or sent unsolicited bytes): poll without blocking."""
        if self.closed:
            return True
        try:
            return _readable_now(self.sock)
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


def _may_be_unknown_command(reply: Document) -> bool:
    """A failed reply that may mean "no such command": code 59, or no code at all (servers
    too old to send codes)."""
    code = reply.get("code")
    return code is None or code == COMMAND_NOT_FOUND


def _readable_now(sock: socket.socket) -> bool:
    import selectors  # looked up per call, so gevent's patched selectors are honoured

    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(0))


def format_address(address: Address) -> str:
    """``host:port``, ``[v6]:port``, or a Unix socket's path."""
    host, port = address
    if port == UNIX_SOCKET_PORT:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _translate(exc: BaseException, address: Address) -> BaseException:
    """Map an exception raised mid-conversation to the error the caller should see."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return NetworkTimeout(f"{format_address(address)}: timed out")
    if isinstance(exc, OSError):
        return AutoReconnect(f"{format_address(address)}: {exc}")
    return exc


def connect(
    address: Address,
    connect_timeout: Optional[float] = 20.0,
    socket_timeout: Optional[float] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    server_hostname: Optional[str] = None,
    app_name: Optional[str] = None,
    credentials: Any = None,
) -> SocketInfo:
    """Open, (TLS-wrap,) handshake and (with ``credentials``) authenticate a socket."""
    host, port = address
    unix = port == UNIX_SOCKET_PORT
    try:
        if unix:  # a Unix domain socket path (see uri.py)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(connect_timeout)
                sock.connect(host)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
    except socket.timeout as exc:
        raise NetworkTimeout(f"{format_address(address)}: connect timed out") from exc
    except OSError as exc:
        raise AutoReconnect(f"{format_address(address)}: {exc}") from exc
    try:
        if not unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        sock.settimeout(connect_timeout)  # the handshake is part of connecting
    except BaseException as exc:
        sock.close()
        raise _translate(exc, address) from exc
    info = SocketInfo(sock, address)
    try:
        if credentials is None:
            info.handshake(app_name)
        else:
            from wireclient import auth

            info.handshake(app_name, auth.hello_fields(credentials))
            auth.authenticate(info, credentials)
        sock.settimeout(socket_timeout)
    except BaseException as exc:
        info.close()  # a socket that failed its handshake or authentication is closed now
        raise _translate(exc, address) from exc
    return info
