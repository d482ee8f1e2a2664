"""SocketInfo: one socket to one server, and the only module that imports ``socket``/``ssl``.

Theory of operation
-------------------
``connect()`` opens a TCP (optionally TLS) socket with ``connectTimeoutMS``, then applies
``socketTimeoutMS`` to every later read and write, and performs the handshake: ``hello``
with ``helloOk`` sent as OP_QUERY on ``admin.$cmd`` (falling back to ``isMaster`` for
servers that do not know ``hello``). The handshake records the server's limits.

``SocketInfo.command()`` frames one command with the sans-IO codec (OP_MSG for
maxWireVersion >= 6, OP_QUERY on ``db.$cmd`` for wire 4 and 5), writes it with one
``sendall``, and reads exactly one reply frame (none when ``moreToCome`` is set) into a
reusable buffer, checking ``responseTo``.

Any exception between the first byte sent and the last byte of the reply read (a timeout,
EOF, a malformed frame, even KeyboardInterrupt) closes the socket before it propagates, so
a half-read socket can never go back to a pool. ``OSError`` becomes ``AutoReconnect`` (or
``NetworkTimeout``) here, at this one boundary. ``SocketInfo.command`` returns the reply
document whatever its ``ok``; ``check_reply`` turns ``ok: 0`` into a typed error.
"""

from __future__ import annotations

import itertools
import os
import platform
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

from bson.raw_bson import RawBSONDocument

from wireclient import __version__, protocol
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    CursorNotFound,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ProtocolError,
)

if TYPE_CHECKING:  # ssl is imported by whoever builds an SSLContext (connection.py)
    import ssl

Address = Tuple[str, int]
Document = Mapping[str, Any]

MIN_SUPPORTED_WIRE_VERSION = 4  # MongoDB 3.2: the find / getMore / killCursors commands
OP_MSG_WIRE_VERSION = 6  # MongoDB 3.6
_READ_BUFFER_SIZE = 64 * 1024
UNIX_SOCKET_PORT = 0  # how uri.py marks a Unix domain socket path

_HEADER = struct.Struct("<iiii")
_request_ids = itertools.count(int.from_bytes(os.urandom(3), "little"))

# Error codes that mean "this member is not, or no longer, the primary".
NOT_PRIMARY_CODES = frozenset({10107, 13435, 13436, 11600, 11602, 189, 91, 10058})
DUPLICATE_KEY_CODES = frozenset({11000, 11001, 12582})
CURSOR_NOT_FOUND_CODE = 43


def next_request_id() -> int:
    return next(_request_ids) & 0x7FFFFFFF


_NOT_PRIMARY_MESSAGES = ("not master", "not primary", "node is recovering")


def is_not_primary(code: Any, message: str) -> bool:
    """Whether an error (a failed reply, or a ``writeConcernError``) says the member is not,
    or no longer, the primary: by code, or by message for servers that send no code."""
    return code in NOT_PRIMARY_CODES or message.startswith(_NOT_PRIMARY_MESSAGES)


def check_reply(reply: Document, command_name: str = "command") -> None:
    """Raise the typed error for a reply with ``ok`` other than 1."""
    if reply.get("ok") == 1:
        return
    message = str(reply.get("errmsg", "unknown error"))
    code = reply.get("code")
    if is_not_primary(code, message):
        raise NotPrimaryError(f"{command_name} failed: {message}", reply)
    if code in DUPLICATE_KEY_CODES:
        raise DuplicateKeyError(message, code, reply)
    if code == CURSOR_NOT_FOUND_CODE:
        raise CursorNotFound(message, code, reply)
    raise OperationFailure(f"{command_name} failed: {message}", code, reply)


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
        "discarded",
        "generation",
        "last_checkin",
        "pid",
        "thread_ident",
        "_buf",
        "_view",
        "_leftover",
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
        self.discarded = False  # set by the pool once it has freed this socket's slot
        self.generation = 0
        self.last_checkin = time.monotonic()
        self.pid = os.getpid()
        self.thread_ident: Optional[int] = None  # the OS thread that made it (gevent only)
        self._buf = bytearray(_READ_BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._leftover = b""

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SocketInfo {self.address[0]}:{self.address[1]} {state} id={self.connection_id}>"

    # -- commands -----------------------------------------------------------------------

    def command(
        self,
        dbname: str,
        spec: Document,
        sequences: Sequence[protocol.DocumentSequence] = (),
        more_to_come: bool = False,
        read_preference: Optional[Document] = None,
    ) -> Optional[Dict[str, Any]]:
        """Send one command and return its reply document (None when ``more_to_come``).

        ``read_preference`` (a ``{'mode': ..., 'tags': [...]}`` document) is sent as
        ``$readPreference`` over OP_MSG; over OP_QUERY a non-primary mode sets ``SlaveOk``.
        """
        body = dict(spec)
        if self.max_wire_version >= OP_MSG_WIRE_VERSION:
            body["$db"] = dbname
            if read_preference is not None:
                body["$readPreference"] = read_preference
            flags = protocol.MsgFlags.moreToCome if more_to_come else 0
            message: Any = protocol.OpMsg(body, tuple(sequences), flags)
        else:
            for seq in sequences:
                body[seq.identifier] = [
                    RawBSONDocument(d) if isinstance(d, bytes) else d for d in seq.documents
                ]
            query_flags = 0
            if read_preference is not None and read_preference.get("mode") != "primary":
                query_flags = protocol.QueryFlags.SlaveOk
            message = protocol.OpQuery(
                dbname + ".$cmd", body, flags=query_flags, number_to_return=-1
            )
            if more_to_come:
                # Wire 4-5 has no fire-and-forget command; wait for the w:0 reply instead.
                more_to_come = False
        return self.send_and_receive(message, expect_reply=not more_to_come)

    def send_and_receive(self, message: Any, expect_reply: bool = True) -> Optional[Dict[str, Any]]:
        """Frame ``message``, send it, and read its one reply (if any) as a document."""
        request_id = next_request_id()
        try:
            data = protocol.encode(message, request_id)
        except ProtocolError:
            raise  # nothing was sent: the socket is still good
        try:
            self.sock.sendall(data)
            if not expect_reply:
                return None
            header, reply = self._read_message()
            if header.response_to != request_id:
                raise ProtocolError(
                    f"reply responseTo {header.response_to} does not match requestID {request_id}"
                )
            return reply_document(reply)
        except BaseException as exc:
            self.close()
            raise _translate(exc, self.address) from exc

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
        """Read exactly one frame and decode it; the caller closes the socket on error."""
        buf = self._buf
        view = self._view
        recv_into = self.sock.recv_into
        have = len(self._leftover)
        if have:
            view[:have] = self._leftover
            self._leftover = b""
        else:
            have = recv_into(view)  # usually the whole reply in one call
        while have < 16:
            if have == 0 or not (n := recv_into(view[have:])):
                raise AutoReconnect(f"{_fmt(self.address)}: connection closed by server")
            have += n
        header = protocol.unpack_header(buf, self.max_message_size)
        length = header.message_length
        if length <= len(buf):
            while have < length:
                n = recv_into(view[have:length])
                if not n:
                    raise AutoReconnect(f"{_fmt(self.address)}: connection closed mid-reply")
                have += n
            if have > length:
                self._leftover = bytes(view[length:have])
            return header, protocol.decode_body(header, buf[16:length])
        big = bytearray(length)
        big_view = memoryview(big)
        big_view[:have] = view[:have]
        while have < length:
            n = recv_into(big_view[have:])
            if not n:
                raise AutoReconnect(f"{_fmt(self.address)}: connection closed mid-reply")
            have += n
        return header, protocol.decode_body(header, big_view[16:])

    # -- lifecycle ----------------------------------------------------------------------

    def handshake(
        self, app_name: Optional[str] = None, extra: Optional[Mapping[str, Any]] = None
    ) -> Dict[str, Any]:
        """Run hello (falling back to isMaster) over OP_QUERY and record the server's limits."""
        client: Dict[str, Any] = {
            "driver": {"name": "wireclient", "version": __version__},
            "os": {"type": platform.system() or "unknown"},
            "platform": f"Python {platform.python_version()}",
        }
        if app_name:
            client["application"] = {"name": app_name}
        extra = extra or {}
        reply = self._handshake_query({"hello": 1, "helloOk": True, "client": client, **extra})
        if reply.get("ok") != 1:
            reply = self._handshake_query({"isMaster": 1, "client": client, **extra})
            check_reply(reply, "isMaster")
        max_wire = int(reply.get("maxWireVersion", 0))
        if max_wire < MIN_SUPPORTED_WIRE_VERSION:
            self.close()
            raise ConfigurationError(
                f"server at {_fmt(self.address)} reports maxWireVersion {max_wire}; wireclient "
                f"needs {MIN_SUPPORTED_WIRE_VERSION} or newer (MongoDB 3.2+)"
            )
        self.hello = reply
        self.max_wire_version = max_wire
        self.max_bson_size = int(reply.get("maxBsonObjectSize", self.max_bson_size))
        self.max_message_size = int(reply.get("maxMessageSizeBytes", self.max_message_size))
        self.max_write_batch_size = int(reply.get("maxWriteBatchSize", self.max_write_batch_size))
        conn_id = reply.get("connectionId")
        self.connection_id = int(conn_id) if conn_id is not None else None
        return reply

    def _handshake_query(self, spec: Document) -> Dict[str, Any]:
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


def reply_document(message: Any) -> Dict[str, Any]:
    """The command reply document carried by an OP_MSG or OP_REPLY."""
    if isinstance(message, protocol.OpMsg):
        body = message.body
        if not isinstance(body, dict):
            raise ProtocolError("OP_MSG reply body is not a document")
        return body
    if isinstance(message, protocol.OpReply):
        if not message.documents:
            if message.response_flags & protocol.ReplyFlags.CursorNotFound:
                raise ProtocolError("OP_REPLY with CursorNotFound and no document")
            raise ProtocolError("OP_REPLY to a command carries no document")
        doc = message.documents[0]
        if message.response_flags & protocol.ReplyFlags.QueryFailure:
            return {"ok": 0, **doc}
        return dict(doc)
    raise ProtocolError(f"unexpected reply message {type(message).__name__} to a command")


def _readable_now(sock: socket.socket) -> bool:
    import selectors  # looked up per call, so gevent's patched selectors are honoured

    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(0))


def _fmt(address: Address) -> str:
    host, port = address
    if port == UNIX_SOCKET_PORT:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _translate(exc: BaseException, address: Address) -> BaseException:
    """Map an exception raised mid-conversation to the error the caller should see."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return NetworkTimeout(f"{_fmt(address)}: timed out")
    if isinstance(exc, OSError):
        return AutoReconnect(f"{_fmt(address)}: {exc}")
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
        raise NetworkTimeout(f"{_fmt(address)}: connect timed out") from exc
    except OSError as exc:
        raise AutoReconnect(f"{_fmt(address)}: {exc}") from exc
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
    if credentials is None:
        info.handshake(app_name)
    else:
        from wireclient import auth

        try:
            info.handshake(app_name, auth.hello_fields(credentials))
            auth.authenticate(info, credentials)
        except BaseException:
            info.close()
            raise
    try:
        sock.settimeout(socket_timeout)
    except OSError as exc:
        info.close()
        raise _translate(exc, address) from exc
    return info
