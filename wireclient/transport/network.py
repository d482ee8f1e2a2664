"""SocketInfo: one socket to one server: the handshake, and one frame out, one frame in.

Theory of operation
-------------------
``connect()`` opens a TCP (optionally TLS) socket, performs the handshake (``hello`` with
``helloOk``, sent as OP_QUERY on ``admin.$cmd``, falling back to ``isMaster`` for servers
that do not know ``hello``; the same ``hello()`` serves the replica set monitor), and
authenticates if asked. The handshake records the server's limits once ``replies.hello`` has
checked every field of the reply that the client acts on (a malformed one is a
``ProtocolError``). A socket that fails its handshake or its authentication is closed
before the error propagates, never left to the garbage collector. (``dial.py`` opens the
TCP connection itself, ``tls.py`` makes the TLS context; ``socket``, ``ssl`` and
``selectors`` are imported in the ``transport`` layer only (the pool's gevent check aside), and
only when first used.)

Compression (``compressors.py``): the handshake offers the configured compressors; the one
negotiated sits in ``SocketInfo.compressor`` and wraps each frame just before it is written
(it leaves hello and the authentication commands alone), and the reader decompresses
OP_COMPRESSED replies. Command events and size checks see the uncompressed message.

Timeouts are deadlines for a whole exchange, never per ``recv``: ``connectTimeoutMS`` is one
deadline for connecting, TLS, the handshake and authentication together, then
``socketTimeoutMS`` one deadline for sending each request and reading its whole reply. Before
each blocking call the socket's timeout is set to the time left (alike for plain, TLS and
gevent sockets), so a peer that drips a byte at a time cannot keep a caller past it. With no
timeout configured there is no deadline and no ``settimeout`` at all.

This module knows bytes, TLS and the handshake, not commands: ``send_and_receive()`` frames
one message with the sans-IO codec, writes it, and reads exactly one reply frame (none when
no reply is expected) straight into the buffer of the codec's ``MessageReader`` (the one
framer, whose memory follows what arrives, not what a header claims), checking
``responseTo``. The envelope of a command and the meaning of its reply come from
``wireclient.rules.command``; ``command()`` puts the two together for the handshake,
authentication and protocol testers. The pool's bookkeeping lives in the pool, not here.

Any exception between the first byte sent and the last byte of the reply read (a timeout,
EOF, a malformed frame, even KeyboardInterrupt) closes the socket before it propagates, so
a half-read socket can never go back to a pool. ``OSError`` becomes ``AutoReconnect`` (or
``NetworkTimeout``) here, at this one boundary. A peer whose very first reply is not a
MongoDB message (an HTTP server, a greeting, a TLS alert), or that answers a TLS handshake
with something else, raises ``NotMongoDBError``; a frame that breaks the protocol after a
valid reply, or under a reply header that answers our request, raises ``ProtocolError``
(the peer speaks MongoDB, badly).
"""

from __future__ import annotations

import itertools
import os
import platform
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from wireclient import protocol
from wireclient._version import __version__
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    NetworkTimeout,
    ProtocolError,
)
from wireclient.rules import command, replies
from wireclient.rules.uri import Address, format_address
from wireclient.rules.wire import (
    DEFAULT_MAX_BSON_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_WRITE_BATCH_SIZE,
    INT32_MAX,
    wire_version_error,
)
from wireclient.transport import faults
from wireclient.transport.steps import Dial, Receive, Send, StartTLS, Steps

if TYPE_CHECKING:  # ssl is imported by whoever builds an SSLContext (transport/tls.py)
    import socket  # loaded by the first connect (dial.py), not by `import wireclient`
    import ssl

    from wireclient.monitoring import EventPublisher
    from wireclient.transport.compressors import CompressionSettings, Compressor

Document = Mapping[str, Any]

_FOREVER = float("inf")  # connecting with no connectTimeoutMS: no deadline at all
COMMAND_NOT_FOUND = 59
_OpMsg = protocol.OpMsg
_REPLY_OPCODES = frozenset({protocol.OP_REPLY, protocol.OP_MSG, protocol.OP_COMPRESSED})

_request_ids = map(INT32_MAX.__and__, itertools.count(int.from_bytes(os.urandom(3), "little")))
#: The next requestID (int32): a builtin, so choosing one enters no Python frame.
next_request_id: Callable[[], int] = _request_ids.__next__


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
        "socket_timeout",
        "_deadline",
        "_spoken",
        "_reader",
        "_legacy_hello",
        "events",
        "compressor",
    )

    def __init__(
        self, sock: socket.socket, address: Address, socket_timeout: Optional[float] = None
    ) -> None:
        self.sock = sock
        self.address = address
        # socketTimeoutMS in seconds: the deadline of each whole exchange (None: no limit).
        self.socket_timeout = socket_timeout
        # While connecting, the connect deadline every exchange shares (_FOREVER: none).
        self._deadline: Optional[float] = None
        self._spoken = False  # a valid MongoDB reply has been read on this socket
        self.hello: Dict[str, Any] = {}
        self.max_wire_version = 0
        self.max_bson_size = DEFAULT_MAX_BSON_SIZE
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self.max_write_batch_size = DEFAULT_MAX_WRITE_BATCH_SIZE
        self.connection_id: Optional[int] = None
        self.closed = False
        self._reader = protocol.MessageReader()
        self._legacy_hello = False  # the server does not know "hello": use isMaster
        self.events: Optional[EventPublisher] = None  # frame events, when listened to
        self.compressor: Optional[Compressor] = None  # what the handshake negotiated

    @property
    def local_address(self) -> Any:
        """This end of the socket (``getsockname()``), or None once closed."""
        try:
            return self.sock.getsockname()
        except OSError:
            return None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<SocketInfo {format_address(self.address)} {state} id={self.connection_id}>"

    # -- messages -----------------------------------------------------------------------

    def send_and_receive(
        self,
        message: Any,
        expect_reply: bool = True,
        check: Optional[Callable[[SocketInfo, bytes], None]] = None,
        request_id: Optional[int] = None,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Frame ``message``, send it, and read its one reply (if any) as a document, all
        within one deadline (``socketTimeoutMS``, or while connecting ``connectTimeoutMS``).
        ``message`` is a message object, or its whole frame (``bytes``) already encoded with
        ``request_id`` (the operation path's: ``command.build_frame``). ``check(self,
        frame)`` may refuse the frame, by raising, before anything is sent; ``request_id`` is
        chosen here unless given (command events name it first)."""
        if message.__class__ is bytes:  # the frame already, encoded with ``request_id``
            data: bytes = message
            if request_id is None:
                raise ValueError("a frame is sent with the request_id it was encoded with")
        else:
            if request_id is None:
                request_id = next(_request_ids)
            data = protocol.encode(message, request_id)  # a ProtocolError here sent nothing
        if check is not None:
            check(self, data)  # the operation path's size limits: nothing sent either
        if self.compressor is not None:  # after the checks: limits are on the plain frame
            data = self.compressor.frame(data)
        # _exchange_deadline() inlined: this is every operation's path. One sendall under
        # one timeout: it bounds the whole call, not each write (in CPython since 3.5, in its
        # ssl module, whose write runs under one deadline, and in gevent's sockets alike).
        deadline = self._deadline
        if deadline is None:
            if self.socket_timeout is not None:
                deadline = _monotonic() + self.socket_timeout
        elif deadline == _FOREVER:
            deadline = None
        reply_header = None
        observed = self.events is not None and self.events.frame is not None
        try:
            if expect_reply and not observed and not self._reader.buffered:
                # the usual exchange: the request, and the first bytes of its reply, in one
                # effect (unobserved, and nothing unasked for buffered before it)
                reply_header, reply = yield from self._read_message(deadline, request_id, data)
            else:
                yield Send(self.sock, data, deadline)
                if observed:
                    self._publish_frame("sent", data)
                if not expect_reply:
                    return None
                reply_header, reply = yield from self._read_message(deadline, request_id)
            # the usual reply (the reader's fast path: an OP_MSG whose body is a dict) is
            # its own document; anything else is for command.reply_document to judge
            body = reply.body if reply.__class__ is _OpMsg else None
            document = body if body.__class__ is dict else command.reply_document(reply)
        except BaseException as exc:
            self.close()
            faults.raise_from(self._fault(exc, request_id, reply_header), exc)
        self._spoken = True
        return document

    def command(
        self,
        dbname: str,
        spec: Document,
        sequences: Sequence[protocol.DocumentSequence] = (),
        more_to_come: bool = False,
        read_preference: Optional[Document] = None,
    ) -> Steps[Optional[Dict[str, Any]]]:
        """Send one command in its server's envelope and return the reply document, whatever
        its ``ok`` (None when ``more_to_come``)."""
        message, expect_reply = command.build_message(
            dbname, spec, sequences, more_to_come, read_preference, self.max_wire_version
        )
        return (yield from self.send_and_receive(message, expect_reply))

    def send_raw(self, data: bytes) -> Steps[None]:
        """Send bytes as they are (for protocol testers) within ``socketTimeoutMS``; closes
        the socket on failure."""
        try:
            yield Send(self.sock, data, self._exchange_deadline())
        except BaseException as exc:
            self.close()
            faults.raise_from(self._fault(exc), exc)
        if self.events is not None and self.events.frame is not None:
            self._publish_frame("sent", data)

    def receive_message(self) -> Steps[Tuple[protocol.Header, Any]]:
        """Read exactly one frame within ``socketTimeoutMS``, whatever it answers, and decode
        it: for protocol testers who send with ``send_raw``. Like every read, any error
        closes the socket, so a half-read socket never goes back to the pool."""
        try:
            item = yield from self._read_message(self._exchange_deadline())
        except BaseException as exc:
            self.close()
            faults.raise_from(self._fault(exc), exc)
        self._spoken = True
        return item

    def _publish_frame(self, direction: str, data: bytes) -> None:
        from wireclient.monitoring import FrameEvent

        assert self.events is not None
        try:  # a tester's deliberately broken frame still gets its event
            header: Any = protocol.unpack_header(data, max(len(data), 16))
        except ProtocolError:
            header = None
        event = FrameEvent(direction, bytes(data), header, self.address, self.local_address)
        self.events.publish(self.events.frame, direction, event)

    def _observed(self, next_message: Any) -> Any:
        """``next_message`` that also publishes each frame it returns (frame listeners)."""

        def observed() -> Optional[Tuple[protocol.Header, Any]]:
            frame = self._reader.peek_frame()
            item = next_message()
            if item is not None:
                self._publish_frame("received", frame or b"")
            return item  # type: ignore[no-any-return]

        return observed

    def _exchange_deadline(self) -> Optional[float]:
        """When the exchange starting now must end: socketTimeoutMS from now, or while
        connecting the connect deadline; None for no limit."""
        deadline = self._deadline
        if deadline is None:
            timeout = self.socket_timeout
            return None if timeout is None else _monotonic() + timeout
        return None if deadline == _FOREVER else deadline

    def _read_message(
        self,
        deadline: Optional[float] = None,
        response_to: Optional[int] = None,
        request: Optional[bytes] = None,
    ) -> Steps[Tuple[protocol.Header, Any]]:
        """Read exactly one frame through the codec's reader by ``deadline`` (None: no
        limit), checking that it answers ``response_to`` (when given) as soon as its header
        is in; the caller closes on error. Bytes are received straight into the reader's
        buffer, which grows with what arrives (see ``protocol.MessageReader``). With
        ``request`` (nothing buffered), the first read is the one that sends it."""
        reader = self._reader
        next_message = reader.next_message
        if self.events is not None and self.events.frame is not None:
            next_message = self._observed(next_message)
        # Nothing buffered (the usual case between replies): no frame to find before
        # receiving (a failed reader raises from get_buffer below instead).
        item = next_message() if reader.buffered else None
        sock = self.sock
        # Each pass receives a byte or more (or raises), so the frame limit bounds the
        # passes and the deadline, when there is one, their time.
        while item is None:
            header = reader.header
            if header is not None and response_to is not None:
                _check_response_to(header, response_to)
            if request is None:
                n = yield Receive(sock, reader, deadline)
            else:
                n = yield Send(sock, request, deadline, reader)
                request = None
            if not n:
                where = "mid-reply" if reader.buffered else "by server"
                raise AutoReconnect(f"{format_address(self.address)}: connection closed {where}")
            item = next_message()
        if response_to is not None and item[0].response_to != response_to:
            _check_response_to(item[0], response_to)
        return item

    def _fault(
        self,
        exc: BaseException,
        request_id: Optional[int] = None,
        reply_header: Optional[protocol.Header] = None,
    ) -> BaseException:
        """The error the caller sees for ``exc``, raised mid-exchange (socket closed). The
        peer has spoken MongoDB if a valid reply came on this socket before, or if the
        frame that broke (``reply_header`` when it was read whole, else the one the reader
        holds) has a reply's header answering ``request_id``: a body that breaks the
        protocol under it is a ``ProtocolError``, not a foreign peer."""
        limit = "socketTimeoutMS" if self._deadline is None else "connectTimeoutMS"
        tls = hasattr(self.sock, "cipher")  # an SSLSocket (the stdlib's or gevent's)
        spoken = self._spoken
        if not spoken and request_id is not None:
            header = reply_header or self._reader.header
            spoken = (
                header is not None
                and header.response_to == request_id
                and header.op_code in _REPLY_OPCODES
            )
        return faults.mid_exchange(exc, self.address, limit, self._reader, spoken, tls)

    # -- handshake ----------------------------------------------------------------------

    def handshake(
        self,
        app_name: Optional[str] = None,
        extra: Optional[Mapping[str, Any]] = None,
        compression: Optional[CompressionSettings] = None,
        refuse_incompatible: bool = True,
    ) -> Steps[Dict[str, Any]]:
        """Run the first hello (falling back to isMaster) and record the server's limits,
        checked first (``replies.hello``), and the compressor negotiated (``compressors.py``).
        Whatever fails (a refusal, a malformed reply, a wire version out of range, a lost
        connection) closes the socket before it propagates. ``refuse_incompatible=False``
        (a monitoring socket) accepts a server whose wire range misses wireclient's: its
        hello is what tells the topology why the server cannot be used."""
        client: Dict[str, Any] = {
            "driver": {"name": "wireclient", "version": __version__},
            "os": {"type": platform.system() or "unknown"},
            "platform": f"Python {platform.python_version()}",
        }
        if app_name:
            client["application"] = {"name": app_name}
        where = format_address(self.address)
        fields = {"helloOk": True, "client": client, **(extra or {})}
        if compression is not None:  # offered: any reply may come compressed from now on
            fields["compression"] = list(compression.compressors)
            self._reader.inflate = True
        try:
            reply = yield from self.run_hello(fields)
            name = "isMaster" if self._legacy_hello else "hello"
            command.check_reply(reply, name, where)
            limits = replies.hello(reply, replies.describe(name, where))
            assert limits is not None  # check_reply passed: ok is 1
            refusal = wire_version_error(where, limits.min_wire_version, limits.max_wire_version)
            if refusal is not None and refuse_incompatible:
                raise ConfigurationError(refusal)
            if compression is not None:
                self.compressor = compression.negotiate(reply, where)
        except BaseException:
            self.close()
            raise
        self.hello = reply
        self.max_wire_version = limits.max_wire_version
        if limits.max_bson_size is not None:
            self.max_bson_size = limits.max_bson_size
        if limits.max_message_size is not None:
            self.max_message_size = limits.max_message_size
        self._reader.max_message_size = self.max_message_size
        if limits.max_write_batch_size is not None:
            self.max_write_batch_size = limits.max_write_batch_size
        self.connection_id = limits.connection_id
        return reply

    def run_hello(self, fields: Optional[Mapping[str, Any]] = None) -> Steps[Dict[str, Any]]:
        """``hello`` (``isMaster`` for a server that answers "no such command" to it, which
        is then remembered): over OP_QUERY before the handshake, in the server's own
        envelope after it. Returns the reply whatever its ``ok``, once its fields are
        checked (``replies.hello``); a malformed reply closes the socket and raises
        ``ProtocolError``."""
        fields = fields or {}
        if not self._legacy_hello:
            reply = yield from self._checked_hello({"hello": 1, **fields})
            if reply.get("ok") == 1 or not _may_be_unknown_command(reply):
                return reply
            self._legacy_hello = True
        return (yield from self._checked_hello({"isMaster": 1, **fields}))

    def _checked_hello(self, spec: Document) -> Steps[Dict[str, Any]]:
        reply = yield from self._admin_command(spec)
        try:
            replies.hello(reply, replies.describe(next(iter(spec)), format_address(self.address)))
        except ProtocolError:
            self.close()  # nothing more this server says on this socket can be trusted
            raise
        return reply

    def _admin_command(self, spec: Document) -> Steps[Dict[str, Any]]:
        if self.max_wire_version:  # handshaken: the server's own envelope
            reply = yield from self.command("admin", spec)
        else:
            query = protocol.OpQuery("admin.$cmd", spec, number_to_return=-1)
            reply = yield from self.send_and_receive(query)
        assert reply is not None
        return reply

    def is_dead(self) -> bool:
        """True when the peer has closed (or sent unsolicited bytes): poll without blocking."""
        if self.closed:
            return True
        try:
            poll = getattr(self.sock, "readable_now", None)  # the asyncio driver's stream
            return poll() if poll is not None else _readable_now(self.sock)
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


def _check_response_to(header: protocol.Header, request_id: int) -> None:
    if header.response_to != request_id:
        raise ProtocolError(
            f"reply responseTo {header.response_to} does not match requestID {request_id}"
        )


def connect(
    address: Address,
    connect_timeout: Optional[float] = 20.0,
    socket_timeout: Optional[float] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    server_hostname: Optional[str] = None,
    app_name: Optional[str] = None,
    credentials: Any = None,
    events: Optional[EventPublisher] = None,
    wrap: Optional[Callable[[Any], Any]] = None,
    handshake: bool = True,
    compression: Optional[CompressionSettings] = None,
    refuse_incompatible: bool = True,
) -> Steps[SocketInfo]:
    """Open, (TLS-wrap,) handshake and (with ``credentials``) authenticate a socket, all by
    one deadline, ``connect_timeout`` from now (None: no limit). The socket then keeps
    ``socket_timeout`` as the deadline of each exchange. The handshake offers the
    ``compression`` settings' compressors and carries the first SCRAM step
    (``auth.handshake_and_authenticate``). For protocol testers: ``wrap(sock)``
    is applied to the connected socket before the first byte is sent (a tracer, say), and
    ``handshake=False`` returns the socket before any hello. ``refuse_incompatible=False``
    (the monitor's sockets, which never authenticate nor run an operation) handshakes a
    server whose wire range misses wireclient's instead of refusing it (``handshake``)."""
    host = address[0]
    deadline = None if connect_timeout is None else _monotonic() + connect_timeout
    try:
        sock = yield Dial(address, deadline)
    except TimeoutError as exc:  # socket.timeout
        raise NetworkTimeout(f"{format_address(address)}: connect timed out") from exc
    except OSError as exc:
        raise AutoReconnect(f"{format_address(address)}: {exc}") from exc
    if ssl_context is not None:
        try:  # the driver closes the connection if the TLS handshake fails
            sock = yield StartTLS(sock, ssl_context, server_hostname or host, deadline)
        except BaseException as exc:
            faults.raise_from(faults.tls_fault(exc, address), exc)
    info = SocketInfo(sock if wrap is None else wrap(sock), address, socket_timeout)
    info._deadline = _FOREVER if deadline is None else deadline  # the handshake is connecting
    info.events = events
    try:
        if handshake and credentials is None:
            yield from info.handshake(
                app_name, compression=compression, refuse_incompatible=refuse_incompatible
            )
        elif handshake:
            from wireclient.transport import auth

            yield from auth.handshake_and_authenticate(info, credentials, app_name, compression)
        info._deadline = None
        if socket_timeout is None and deadline is not None:
            sock.settimeout(None)  # no limit from now on: plain blocking calls, no timeouts
    except BaseException as exc:
        info.close()  # a socket that failed its handshake or authentication is closed now
        faults.raise_from(faults.translate(exc, address), exc)
    return info
