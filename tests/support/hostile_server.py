"""A hostile MongoDB impostor on loopback: a raw-socket server that answers the handshake
properly (when asked, so a client gets past connecting) and then serves scripted replies.

    with HostileServer("drip", interval=0.1) as server:
        conn = Connection(server.uri, socketTimeoutMS=500)  # the handshake is answered
        conn.admin.command("ping")                        # the reply comes a byte at a time
        server.set_mode("good")                           # later requests get {"ok": 1}

Modes (what a request other than the handshake gets; with ``handshake=False`` the
handshake gets it too):

    good          a proper reply: OP_MSG {"ok": 1} (OP_REPLY to an OP_QUERY)
    silent        nothing, ever
    close         the connection is closed at once
    random        ``size`` random bytes (``seed``), then the connection is closed
    bytes         ``data`` verbatim (or ``data(request_id)``), then ``then`` ("close" or
                  "stall")
    truncated     a good reply without its last ``cut`` bytes, then silence
    hangup        the first half of a good reply, then the connection is closed
    claim         a header claiming ``claim`` bytes, ``send`` bytes of body, then ``then``
    response_to   a good reply whose responseTo is not the request's
    opcode        a frame of opCode ``opcode`` (default 4242, unknown)
    checksum      an OP_MSG with checksumPresent and a wrong CRC-32C
    bad_bson      an OP_MSG whose document has a valid length and broken contents
    tiny          a header whose messageLength (8) is shorter than a header
    endless       a header claiming ``claim`` bytes (default the advertised maximum), then
                  bytes as fast as the client reads, up to ``limit``
    drip          a good reply (``reply``), one byte every ``interval`` seconds
    large         a good reply carrying ``size`` bytes of binary data (built once)
    no_read       the server stops reading: a large request fills the socket buffers
    slow_read     the server reads ``chunk`` bytes every ``interval`` seconds, never replies
    echo          the request's own bytes sent back
    http          "HTTP/1.1 400 Bad Request ...", then the connection is closed
    tls_alert     a TLS alert record (what some TLS servers send to plaintext), then close

``http`` and ``tls_alert`` answer the first bytes that arrive, whole frame or not, as such
servers do; ``no_read`` and ``slow_read`` apply at once, to a request being read.

``greeting=b"..."`` is sent as soon as a connection is accepted, before anything is read
(as an SSH or SMTP server does), a byte every ``greeting_interval`` seconds if given.
``tls=`` a server-side ``ssl.SSLContext`` wraps every accepted connection. Every loop is
bounded in count and time: a connection lives at most ``lifetime`` seconds, at most
``max_connections`` are accepted, and ``stop()`` (or leaving the ``with`` block) closes
everything and joins the threads.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import bson

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MORE_TO_COME = 2
_HEADER = struct.Struct("<iiii")
_POLL = 0.05  # how often blocked loops look at the stop flag
_RAW_MODES = ("http", "tls_alert")


def hello_reply(max_message_size: int = 48_000_000) -> Dict[str, Any]:
    return {
        "ok": 1.0,
        "isWritablePrimary": True,
        "ismaster": True,
        "helloOk": True,
        "maxWireVersion": 17,
        "minWireVersion": 0,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": max_message_size,
        "maxWriteBatchSize": 100_000,
        "connectionId": 1,
    }


def op_msg(doc: Any, response_to: int, request_id: int = 1, flags: int = 0) -> bytes:
    body = (
        struct.pack("<I", flags) + b"\x00" + (doc if isinstance(doc, bytes) else bson.encode(doc))
    )
    return _HEADER.pack(16 + len(body), request_id, response_to, OP_MSG) + body


def op_reply(doc: Any, response_to: int) -> bytes:
    body = struct.pack("<Iqii", 0, 0, 0, 1) + bson.encode(doc)
    return _HEADER.pack(16 + len(body), 1, response_to, OP_REPLY) + body


class Request:
    """One frame a client sent, taken apart by this module (not by wireclient)."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        _, self.request_id, _, self.op_code = _HEADER.unpack_from(frame)
        self.doc: Dict[str, Any] = {}
        self.more_to_come = False
        try:
            if self.op_code == OP_QUERY:
                ns_end = frame.index(b"\x00", 20)
                self.doc = bson.decode(
                    frame[ns_end + 9 :][: struct.unpack_from("<i", frame, ns_end + 9)[0]]
                )
            elif self.op_code == OP_MSG:
                (flags,) = struct.unpack_from("<I", frame, 16)
                self.more_to_come = bool(flags & MORE_TO_COME)
                if frame[20] == 0:
                    (size,) = struct.unpack_from("<i", frame, 21)
                    self.doc = bson.decode(frame[21 : 21 + size])
        except (ValueError, struct.error, bson.errors.InvalidBSON):
            pass

    @property
    def name(self) -> str:
        return next(iter(self.doc), "")

    @property
    def is_handshake(self) -> bool:
        return self.name.lower() in ("hello", "ismaster")

    def good_reply(self, doc: Any) -> bytes:
        if self.op_code == OP_QUERY:
            return op_reply(doc, self.request_id)
        return op_msg(doc, self.request_id)


class HostileServer:
    """See the module docstring. ``port``, ``uri``; ``set_mode()``; ``requests`` (command
    names received), ``accepted``, ``client_closes`` (connections the client closed, seen
    as EOF or a reset), ``tls_failures`` (TLS handshakes that failed), and ``wait_for()`` to
    wait on them, bounded."""

    def __init__(
        self,
        mode: str = "good",
        *,
        handshake: bool = True,
        greeting: bytes = b"",
        greeting_interval: float = 0.0,
        tls: Any = None,
        max_message_size: int = 48_000_000,
        lifetime: float = 30.0,
        max_connections: int = 200,
        **params: Any,
    ) -> None:
        self.handshake = handshake
        self.greeting = greeting
        self.greeting_interval = greeting_interval
        self.tls = tls
        self.max_message_size = max_message_size
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.requests: List[str] = []
        self.accepted = 0
        self.client_closes = 0
        self.tls_failures = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._conns: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._large: Dict[int, bytes] = {}
        self.set_mode(mode, **params)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self.address = ("127.0.0.1", self.port)
        self.uri = f"mongodb://127.0.0.1:{self.port}/"
        self._started = time.monotonic()
        self._spawn(self._accept_loop)

    # -- control ------------------------------------------------------------------------

    def set_mode(
        self,
        mode: str,
        handshake: Optional[bool] = None,
        greeting: Optional[bytes] = None,
        **params: Any,
    ) -> None:
        """What later requests get; ``handshake`` / ``greeting`` change those too."""
        if mode == "large":  # built now, so a test's memory measurement does not see it
            size = int(params.get("size", 1024))
            if size not in self._large:
                doc = bson.encode({"ok": 1.0, "data": bson.Binary(b"x" * size)})
                self._large[size] = b"\x00\x00\x00\x00\x00" + doc  # flagBits, kind 0
        with self._cond:
            self.mode, self.params = mode, params
            if handshake is not None:
                self.handshake = handshake
            if greeting is not None:
                self.greeting, self.greeting_interval = greeting, 0.0

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, _POLL))
            return True

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            _quiet_close(conn)
        for thread in list(self._threads):
            thread.join(5.0)

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- threads ------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _alive(self, until: float) -> bool:
        return not self._stop.is_set() and time.monotonic() < until

    def _accept_loop(self) -> None:
        until = self._started + self.lifetime
        while self._alive(until) and self.accepted < self.max_connections:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # the listener was closed by stop()
            with self._cond:
                self.accepted += 1
                self._conns.append(conn)
                self._cond.notify_all()
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        until = time.monotonic() + self.lifetime
        try:
            conn.settimeout(_POLL)
            if self.tls is not None:
                conn.settimeout(5.0)
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except OSError:
                    with self._cond:
                        self.tls_failures += 1
                        self._cond.notify_all()
                    return
                conn.settimeout(_POLL)
            if self.greeting_interval:
                self._send_slowly(conn, self.greeting, self.greeting_interval, until)
            elif self.greeting:
                conn.sendall(self.greeting)
            while self._alive(until):
                with self._cond:
                    mode = self.mode
                raw = mode in _RAW_MODES
                if raw:  # answer the first bytes, whatever they are
                    while not self._some_bytes(conn):
                        if not self._alive(until):
                            return
                    request = Request(b"\x00" * 24)
                else:
                    request = self._receive(conn, until)
                if request is None:
                    return
                with self._cond:
                    self.requests.append(request.name)
                    mode, params = self.mode, dict(self.params)
                    handshake = self.handshake
                if handshake and request.is_handshake:
                    conn.sendall(request.good_reply(hello_reply(self.max_message_size)))
                elif request.more_to_come:
                    continue
                elif not self._script(conn, request, mode, params, until):
                    return
        except OSError:
            self._saw_close()
        finally:
            _quiet_close(conn)

    def _saw_close(self) -> None:
        with self._cond:
            self.client_closes += 1
            self._cond.notify_all()

    def _receive(self, conn: socket.socket, until: float) -> Optional[Request]:
        header = self._read_exactly(conn, 16, until)
        if header is None:
            return None
        length = _HEADER.unpack(header)[0]
        if not 16 <= length <= 64 * 1024 * 1024:
            return Request(header + b"\x00" * 8)  # not a frame: nothing more to read
        body = self._read_exactly(conn, length - 16, until)
        return None if body is None else Request(header + body)

    def _read_exactly(self, conn: socket.socket, n: int, until: float) -> Optional[bytes]:
        chunks: List[bytes] = []
        while n and self._alive(until):
            with self._cond:
                mode, params = self.mode, self.params
            if mode == "no_read":  # sleep instead of reading, so the client's sends block
                self._stop.wait(_POLL)
                continue
            slow = mode == "slow_read"
            try:
                data = conn.recv(min(n, int(params.get("chunk", 1024)) if slow else 1 << 20))
            except socket.timeout:
                continue
            if slow:
                self._stop.wait(float(params.get("interval", 0.05)))
            if not data:
                self._saw_close()
                return None
            chunks.append(data)
            n -= len(data)
        return b"".join(chunks) if not n else None

    def _some_bytes(self, conn: socket.socket) -> bool:
        try:
            if not conn.recv(65536):
                raise ConnectionResetError("closed")  # recorded as a client close
            return True
        except socket.timeout:
            return False

    def _hold(self, conn: socket.socket, until: float) -> bool:
        """Stay silent until the client closes (recorded) or the server stops; False."""
        while self._alive(until):
            try:
                if not conn.recv(65536):
                    self._saw_close()
                    return False
            except socket.timeout:
                continue
        return False

    def _send_slowly(self, conn: socket.socket, data: bytes, interval: float, until: float) -> None:
        for i in range(len(data)):
            if not self._alive(until):
                return
            conn.sendall(data[i : i + 1])
            self._stop.wait(interval)

    def _script(
        self, conn: socket.socket, request: Request, mode: str, p: Dict[str, Any], until: float
    ) -> bool:
        """Answer ``request`` as ``mode`` says; False when the connection is done."""
        rid = request.request_id
        good = request.good_reply(p.get("reply", {"ok": 1.0}))
        if mode == "good":
            conn.sendall(good)
            return True
        if mode == "silent":
            return self._hold(conn, until)
        if mode in ("no_read", "slow_read"):  # the request was read (slowly): no reply
            return self._hold(conn, until)
        if mode == "close":
            return False
        if mode == "echo":
            conn.sendall(request.frame)
            return self._hold(conn, until)
        if mode == "drip":
            self._send_slowly(conn, good, float(p.get("interval", 0.1)), until)
            return True
        if mode == "endless":
            claim = int(p.get("claim", self.max_message_size))
            conn.sendall(_HEADER.pack(claim, 1, rid, OP_MSG))
            chunk = os.urandom(1 << 16)
            left = int(p.get("limit", claim))
            while left > 0 and self._alive(until):
                try:
                    conn.sendall(chunk[: min(left, len(chunk))])
                    left -= len(chunk)
                except socket.timeout:
                    continue
            return self._hold(conn, until)
        if mode == "large":  # the body as built by set_mode: sent without a copy
            body = self._large[int(p.get("size", 1024))]
            conn.settimeout(5.0)
            conn.sendall(_HEADER.pack(16 + len(body), 1, rid, OP_MSG))
            conn.sendall(body)
            conn.settimeout(_POLL)
            return True
        then = "close"
        if mode == "random":
            data = random.Random(p.get("seed", 0)).randbytes(int(p.get("size", 64)))
        elif mode == "bytes":
            data, then = p["data"], p.get("then", "close")
            if callable(data):
                data = data(rid)
        elif mode == "truncated":
            data, then = good[: -int(p.get("cut", 1))], "stall"
        elif mode == "hangup":
            data = good[: len(good) // 2]
        elif mode == "claim":
            claim = int(p.get("claim", 1 << 30))
            data = _HEADER.pack(claim, 1, rid, OP_MSG) + b"\x00" * int(p.get("send", 0))
            then = p.get("then", "stall")
        elif mode == "response_to":
            data, then = op_msg({"ok": 1.0}, rid + 1), "stall"
        elif mode == "opcode":
            body = good[16:] if p.get("body") is None else p["body"]
            data, then = (
                _HEADER.pack(16 + len(body), 1, rid, int(p.get("opcode", 4242))) + body,
                "stall",
            )
        elif mode == "checksum":
            frame = op_msg({"ok": 1.0}, rid, flags=1) + b"\xde\xad\xbe\xef"
            data, then = struct.pack("<i", len(frame)) + frame[4:], "stall"
        elif mode == "bad_bson":
            # length 12 and a final NUL, but element type 0x7f does not exist
            data, then = op_msg(b"\x0c\x00\x00\x00\x7fa\x00\x01\x02\x03\x04\x00", rid), "stall"
        elif mode == "tiny":
            data, then = _HEADER.pack(8, 1, rid, OP_MSG), "stall"
        elif mode == "http":
            data = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        elif mode == "tls_alert":
            data = b"\x15\x03\x03\x00\x02\x02\x46"  # fatal alert: protocol_version
        else:
            raise ValueError(f"unknown mode {mode!r}")
        conn.sendall(data)
        if then == "stall":
            return self._hold(conn, until)
        return False


def _quiet_close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
