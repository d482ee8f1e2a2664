"""A tracing MongoDB proxy with fault injection: ``wireclient proxy`` and ``Proxy``.

Theory of operation
-------------------
``Proxy(listen, upstream, ...).start()`` binds the listening socket and starts one accept
thread, which waits on the listener and on a wake-up socket pair (so ``stop()`` needs no
polling). Each accepted client gets a ``_Link``: its first thread connects to the upstream
server (one upstream connection per client connection) and then pumps client -> server,
and a second thread pumps server -> client.

Both directions go through a ``trace.FrameStream`` (the codec's ``MessageReader`` plus the
raw bytes), so every frame is printed as it passes, labelled with the connection number
and the direction. Requests are forwarded chunk by chunk as they arrive, whatever they
hold (a malformed frame reaches the server exactly as the client sent it). Replies are
forwarded frame by frame, which is what the fault options need: ``delay_ms`` waits before
forwarding each reply, ``corrupt_after=N`` flips one byte (``corrupt_byte``) of the N-th
reply, and ``close_after=N`` forwards N replies and then closes the connection at its next
message, from either side, instead of forwarding it (so the client's next operation sees a
hang-up while it waits for its reply). The counts are per client connection. Bytes that no
longer frame (after a reply with a bad header) are forwarded as they come.

Fault rules (``faults``: ``wireclient.toolkit.faults``) act on requests, by command name
and ordinal per client connection. With rules, requests are forwarded frame by frame
instead (a frame waits in the stream until it is whole), so that each command can be
matched before it leaves: ``error=CODE`` sends the client an error reply built here and
forwards nothing, ``close`` hangs up on the client, ``delay`` holds the command, ``drop``
swallows it. The error reply and the server's replies are written to the client under one
lock, a whole frame at a time, so they never interleave.

TLS: ``listen_tls`` (a server-side ``ssl.SSLContext``, see ``server_tls_context``) makes
clients connect with TLS; ``upstream_tls`` (``client_tls_context``) makes the proxy speak TLS
to the server. Either side, or both, or neither. An OpenSSL connection must not be read
and written by two threads at once, and each link's two pumps do exactly that (one reads
a socket the other writes), so a TLS socket is wrapped in a ``_TlsChannel``: non-blocking,
every read and write under one lock, and the waiting (``select``) outside it.

``out`` receives the frames (unless ``show_frames`` is False) and the events; ``capture``
records every byte received from either peer, and events (opened, closed,
faults), in the format of ``wireclient.toolkit.capture``, which ``wireclient decode`` reads.

An upstream that cannot be reached: the client's first request is answered with an
``ok: 0`` error (code HostUnreachable) that says so, then the connection is closed; a bare
hang-up would leave the client guessing (a TLS mismatch, a crash).

Stopping: ``stop()`` wakes the accept thread, shuts down every socket (which wakes every
pump blocked in ``recv``), joins the threads (bounded), and closes the capture. A link's
sockets are closed by the last of its two threads to finish, never under a thread still
using them.
"""

from __future__ import annotations

import itertools
import select
import selectors
import signal
import socket
import ssl
import sys
import threading
import time
from typing import Any, BinaryIO, Iterable, List, Optional, TextIO, Tuple, Union

from wireclient import protocol
from wireclient.rules.uri import Address, format_address
from wireclient.toolkit.capture import CLIENT_BYTES, SERVER_BYTES, CaptureWriter
from wireclient.toolkit.faults import (
    ConnectionFaults,
    FaultRule,
    RuleLike,
    command_name,
    error_reply,
    parse_rules,
)
from wireclient.toolkit.trace import (
    CLIENT_TO_SERVER,
    DEFAULT_JSON_MODE,
    SERVER_TO_CLIENT,
    Frame,
    FrameStream,
    describe,
)

_RECV_SIZE = 64 * 1024


def flip_byte(frame: bytes, offset: int) -> Optional[bytes]:
    """``frame`` with the byte at ``offset`` (negative: from the end) XOR-ed with 0xff, or
    None when the frame has no such byte."""
    index = offset if offset >= 0 else len(frame) + offset
    if not 0 <= index < len(frame):
        return None
    return frame[:index] + bytes([frame[index] ^ 0xFF]) + frame[index + 1 :]


def server_tls_context(
    certfile: str, keyfile: Optional[str] = None, cafile: Optional[str] = None
) -> ssl.SSLContext:
    """The context for the listening side: the proxy's certificate and key; with ``cafile``,
    client certificates signed by that CA are verified when offered."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    if cafile is not None:
        context.load_verify_locations(cafile)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_tls_context(
    cafile: Optional[str] = None,
    certfile: Optional[str] = None,
    keyfile: Optional[str] = None,
    allow_invalid: bool = False,
) -> ssl.SSLContext:
    """The context for the upstream side: verify the server with ``cafile`` (the system's
    CAs without it), offer a client certificate, or (``allow_invalid``) check nothing."""
    context = ssl.create_default_context(cafile=cafile)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    if allow_invalid:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _TlsChannel:
    """A TLS socket that one thread reads while another writes (see the module docstring)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        sock.setblocking(False)

    def _wait(self, want_write: bool) -> None:
        sock = self.sock
        if not want_write and sock.pending():
            return
        select.select([] if want_write else [sock], [sock] if want_write else [], [])

    def recv(self, size: int) -> bytes:
        while True:
            with self._lock:
                try:
                    return self.sock.recv(size)
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
                except ValueError as exc:  # the socket was shut down under us
                    raise OSError(str(exc)) from exc
            self._wait(want_write)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._lock:
                try:
                    view = view[self.sock.send(view) :]
                    continue
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
                except ValueError as exc:
                    raise OSError(str(exc)) from exc
            self._wait(want_write)

    def shutdown(self, how: int) -> None:
        with self._lock:  # never under a read or a write in progress (neither one blocks)
            self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()

    def setsockopt(self, *args: Any) -> None:
        self.sock.setsockopt(*args)


HOST_UNREACHABLE = 6  # the server error code for a host that cannot be reached


def refusal_reply(request: Frame, errmsg: str) -> Optional[bytes]:
    """An error reply (``ok: 0``, code HostUnreachable) to ``request`` in its envelope:
    OP_REPLY to an OP_QUERY, OP_MSG to an OP_MSG; None for anything else (no reply)."""
    header, message = request.header, request.message
    if header is None:
        return None
    error = {"ok": 0.0, "errmsg": errmsg, "code": HOST_UNREACHABLE, "codeName": "HostUnreachable"}
    reply: protocol.Message
    if isinstance(message, protocol.OpQuery):
        reply = protocol.OpReply([error])
    elif isinstance(message, protocol.OpMsg) and not message.more_to_come:
        reply = protocol.OpMsg(error)
    else:
        return None
    return protocol.encode(reply, 1, response_to=header.request_id)


class Proxy:
    """Forward MongoDB connections from ``listen`` to ``upstream``, printing every frame."""

    def __init__(
        self,
        listen: Address,
        upstream: Address,
        *,
        out: Optional[TextIO] = None,
        show_frames: bool = True,
        hex_dump: bool = False,
        capture: Union[None, str, BinaryIO] = None,
        delay_ms: float = 0,
        close_after: Optional[int] = None,
        corrupt_after: Optional[int] = None,
        corrupt_byte: int = -1,
        connect_timeout: float = 5.0,
        faults: Iterable[RuleLike] = (),
        spare_monitors: bool = True,
        listen_tls: Optional[ssl.SSLContext] = None,
        upstream_tls: Optional[ssl.SSLContext] = None,
        json_mode: str = DEFAULT_JSON_MODE,
        show_secrets: bool = False,
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.out = out
        self.show_frames = show_frames
        self.hex_dump = hex_dump
        self.delay = max(delay_ms, 0) / 1000.0
        self.close_after = close_after
        self.corrupt_after = corrupt_after
        self.corrupt_byte = corrupt_byte
        self.connect_timeout = connect_timeout
        self.faults: List[FaultRule] = parse_rules(faults)
        self.spare_monitors = spare_monitors
        self.listen_tls = listen_tls
        self.upstream_tls = upstream_tls
        self._reply_ids = itertools.count(1 << 30)  # requestIDs of the replies made here
        self.json_mode = json_mode
        self.show_secrets = show_secrets
        self._capture_arg = capture
        self.capture: Optional[CaptureWriter] = None
        self.connections = 0  # client connections accepted so far
        self._links: List[_Link] = []
        self._lock = threading.Lock()
        self._print_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: Optional[socket.socket] = None
        self._wake: Optional[Tuple[socket.socket, socket.socket]] = None
        self._thread: Optional[threading.Thread] = None
        self._started_at = time.monotonic()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Proxy:
        """Listen and start accepting; idempotent. An ``OSError`` (the port is taken, the
        address is not local) leaves nothing behind."""
        if self._listener is not None:
            return self
        host, port = self.listen
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(128)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._wake = socket.socketpair()
        capture = self._capture_arg
        if capture is not None:
            self.capture = CaptureWriter(
                open(capture, "wb") if isinstance(capture, str) else capture
            )
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._accept_loop, name="wireclient-proxy", daemon=True
        )
        self._thread.start()
        return self

    @property
    def address(self) -> Address:
        """Where clients connect (the real port when ``listen`` asked for port 0)."""
        if self._listener is None:
            raise RuntimeError("the proxy is not started")
        name = self._listener.getsockname()
        return str(name[0]), int(name[1])

    @property
    def port(self) -> int:
        return self.address[1]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection and the capture; idempotent."""
        if self._thread is None or self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        assert self._wake is not None
        try:
            self._wake[1].send(b"x")
        except OSError:
            pass
        self._thread.join(max(deadline - time.monotonic(), 0))
        with self._lock:
            links = list(self._links)
        for link in links:
            link.shutdown("the proxy stopped")
        for link in links:
            link.join(max(deadline - time.monotonic(), 0))
        for sock in self._wake:
            sock.close()
        if self.capture is not None:
            self.capture.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def open_connections(self) -> int:
        with self._lock:
            return len(self._links)

    # -- accepting ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake
        assert listener is not None and wake is not None
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, "accept")
        sel.register(wake[0], selectors.EVENT_READ, "wake")
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.data == "wake" or self._stopping.is_set():
                        return
                    try:
                        client, address = listener.accept()
                    except OSError:
                        continue
                    self._start_link(client, address)
        finally:
            sel.close()
            listener.close()

    def _start_link(self, client: socket.socket, address: Any) -> None:
        with self._lock:
            self.connections += 1
            link = _Link(self, self.connections, client)
            self._links.append(link)
        peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        link.event(f"opened from {peer} to {format_address(self.upstream)}")
        link.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            if link in self._links:
                self._links.remove(link)

    # -- output -------------------------------------------------------------------------

    def _elapsed(self) -> str:
        return f"+{time.monotonic() - self._started_at:.3f}s"

    def _emit(self, text: str) -> None:
        out = self.out
        if out is None:
            return
        with self._print_lock:
            try:
                out.write(text + "\n")
                out.flush()
            except (OSError, ValueError):  # the output is gone (a closed pipe): go on without
                self.out = None

    def _show(self, frames: List[Frame], number: int, direction: str) -> None:
        if self.out is None or not self.show_frames:
            return
        label = f"{self._elapsed()} conn {number} {direction}"
        for frame in frames:
            self._emit(
                describe(
                    frame,
                    label,
                    self.hex_dump,
                    json_mode=self.json_mode,
                    show_secrets=self.show_secrets,
                )
            )


class _Link:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: Proxy, number: int, client: socket.socket) -> None:
        self.proxy = proxy
        self.number = number
        self.client: Any = client  # a socket, or a _TlsChannel
        self.upstream: Any = None
        self.replies = 0  # replies forwarded to the client
        self.reason = ""
        self.faults = ConnectionFaults(proxy.faults, proxy.spare_monitors)
        self._lock = threading.Lock()
        self._client_send_lock = threading.Lock()
        self._shut = False
        self._running = 0
        self._threads: List[threading.Thread] = []

    def event(self, text: str) -> None:
        proxy = self.proxy
        if proxy.capture is not None:
            proxy.capture.event(self.number, text)
        proxy._emit(f"{proxy._elapsed()} conn {self.number} {text}")

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=f"wireclient-proxy-{self.number}-{name}")
        thread.daemon = True
        with self._lock:
            self._running += 1
            self._threads.append(thread)
        thread.start()

    def start(self) -> None:
        self._spawn(self._client_side, "requests")

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))

    def shutdown(self, reason: str) -> None:
        """Wake both pumps (their ``recv`` returns); the first reason given is kept."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
            self.reason = self.reason or reason
            socks = [s for s in (self.client, self.upstream) if s is not None]
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _thread_done(self) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if not last:
            return
        for sock in (self.client, self.upstream):
            if sock is not None:
                sock.close()
        self.event(f"closed: {self.reason}")
        self.proxy._forget(self)

    def _accept_tls(self) -> bool:
        """The TLS handshake with the client, when the proxy listens with TLS."""
        context = self.proxy.listen_tls
        if context is None:
            return True
        raw = self.client
        try:
            raw.settimeout(self.proxy.connect_timeout)
            wrapped = context.wrap_socket(raw, server_side=True)
        except (OSError, ValueError) as exc:
            self.shutdown(f"TLS handshake with the client failed: {exc}")
            return False
        with self._lock:
            self.client = _TlsChannel(wrapped)
        return True

    def _connect_upstream(self) -> bool:
        proxy = self.proxy
        upstream: Any = None
        try:
            upstream = socket.create_connection(proxy.upstream, timeout=proxy.connect_timeout)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy.upstream_tls is not None:
                upstream = _TlsChannel(
                    proxy.upstream_tls.wrap_socket(upstream, server_hostname=proxy.upstream[0])
                )
            else:
                upstream.settimeout(None)
        except OSError as exc:
            if upstream is not None:
                upstream.close()
            reason = f"cannot connect to {format_address(self.proxy.upstream)}: {exc}"
            with self._lock:  # the reason the link closes, even if stop() comes meanwhile
                self.reason = self.reason or reason
            self._answer_refusal(reason)
            self.shutdown(reason)
            return False
        with self._lock:
            self.upstream = upstream
            shut = self._shut
        if shut:  # stopped while connecting
            return False
        self._spawn(self._server_side, "replies")
        return True

    def _answer_refusal(self, reason: str) -> None:
        """The upstream cannot be reached: answer the client's first request with an error
        saying so (in its own envelope), rather than hanging up on it, which a client
        would read as a TLS mismatch or a crashed server."""
        stream = FrameStream()
        self.client.settimeout(self.proxy.connect_timeout)
        try:
            while True:
                data = self.client.recv(_RECV_SIZE)
                if not data:
                    return
                frames = stream.feed(data)
                if frames:
                    break
            self.proxy._show(frames[:1], self.number, CLIENT_TO_SERVER)
            reply = refusal_reply(frames[0], f"wireclient proxy: {reason}")
            if reply is not None:
                self.event("answered the first request with the upstream's refusal")
                self.proxy._show(FrameStream().feed(reply), self.number, SERVER_TO_CLIENT)
                self.client.sendall(reply)
        except OSError:
            return

    # -- the two pumps ------------------------------------------------------------------

    def _client_side(self) -> None:
        reason = "the client closed the connection"
        stream = FrameStream()
        proxy = self.proxy
        try:
            if not self._accept_tls() or not self._connect_upstream():
                return
            upstream = self.upstream
            assert upstream is not None
            while True:
                try:
                    data = self.client.recv(_RECV_SIZE)
                except OSError as exc:
                    reason = f"client connection lost: {exc}"
                    break
                if not data:
                    break
                if proxy.capture is not None:
                    proxy.capture.record(self.number, CLIENT_BYTES, data)
                if proxy.close_after is not None and self.replies >= proxy.close_after:
                    proxy._show(stream.feed(data), self.number, CLIENT_TO_SERVER)
                    reason = self._close_fault()
                    break
                if proxy.faults:  # frame by frame, each matched against the rules
                    stop = self._requests(stream.feed(data))
                    if stop is not None:
                        reason = stop
                        break
                    continue
                try:
                    upstream.sendall(data)
                except OSError as exc:
                    reason = f"server connection lost: {exc}"
                    break
                proxy._show(stream.feed(data), self.number, CLIENT_TO_SERVER)
        finally:
            proxy._show(stream.flush(), self.number, CLIENT_TO_SERVER)
            self.shutdown(reason)
            self._thread_done()

    def _requests(self, frames: List[Frame]) -> Optional[str]:
        """Forward each request frame or apply the rule that hits it; a reason to stop."""
        proxy = self.proxy
        upstream = self.upstream
        assert upstream is not None
        for frame in frames:
            proxy._show([frame], self.number, CLIENT_TO_SERVER)
            name = command_name(frame.message) if frame.error is None else None
            rule = None if name is None else self.faults.match(name)
            if rule is not None:
                assert frame.header is not None
                verdict = self._apply(rule, name or "", frame)
                if verdict == "closed":
                    return f"fault: closed at {name} (rule {rule})"
                if verdict == "stopped":
                    return "the proxy stopped"
                if verdict == "handled":
                    continue
            try:
                upstream.sendall(frame.raw)
            except OSError as exc:
                return f"server connection lost: {exc}"
        return None

    def _apply(self, rule: FaultRule, name: str, frame: Frame) -> str:
        """Apply ``rule`` to a request: "forward", "handled", "closed" or "stopped"."""
        proxy = self.proxy
        assert frame.header is not None
        request_id = frame.header.request_id
        if rule.action == "close":
            self.event(f"fault: closing the connection at {name} requestID={request_id} "
                       f"(rule {rule})")  # fmt: skip
            return "closed"
        if rule.action == "delay":
            self.event(f"fault: holding {name} requestID={request_id} {rule.delay * 1000:g} ms "
                       f"(rule {rule})")  # fmt: skip
            return "stopped" if proxy._stopping.wait(rule.delay) else "forward"
        if rule.action == "drop":
            self.event(f"fault: dropped {name} requestID={request_id} (rule {rule})")
            return "handled"
        reply = error_reply(rule, frame.message, next(proxy._reply_ids), request_id)
        if reply is None:
            self.event(f"fault: {name} requestID={request_id} wants no reply: dropped, "
                       f"not answered (rule {rule})")  # fmt: skip
            return "handled"
        self.event(f"fault: answered {name} requestID={request_id} with error {rule.code}, "
                   f"not forwarded (rule {rule})")  # fmt: skip
        proxy._show(FrameStream().feed(reply), self.number, SERVER_TO_CLIENT)
        if proxy.capture is not None:
            proxy.capture.record(self.number, SERVER_BYTES, reply)
        self._forward(reply)
        return "handled"

    def _close_fault(self) -> str:
        text = f"fault: closing after {self.replies} replies (--close-after)"
        self.event(text)
        return text

    def _server_side(self) -> None:
        reason = "the server closed the connection"
        stream = FrameStream()
        proxy = self.proxy
        upstream = self.upstream
        assert upstream is not None
        try:
            while True:
                try:
                    data = upstream.recv(_RECV_SIZE)
                except OSError as exc:
                    reason = f"server connection lost: {exc}"
                    break
                if not data:
                    frames = stream.flush()  # a partial reply still goes to the client
                    if frames:
                        proxy._show(frames, self.number, SERVER_TO_CLIENT)
                        self._forward(frames[0].raw)
                    break
                if proxy.capture is not None:
                    proxy.capture.record(self.number, SERVER_BYTES, data)
                stop = self._replies(stream.feed(data))
                if stop is not None:
                    reason = stop
                    break
        except OSError as exc:
            reason = f"client connection lost: {exc}"
        finally:
            self.shutdown(reason)
            self._thread_done()

    def _forward(self, data: bytes) -> None:
        with self._client_send_lock:  # a reply made here and the server's never interleave
            self.client.sendall(data)

    def _replies(self, frames: List[Frame]) -> Optional[str]:
        """Forward each frame, applying the faults; a reason to stop, or None."""
        proxy = self.proxy
        for frame in frames:
            proxy._show([frame], self.number, SERVER_TO_CLIENT)
            if frame.header is None:  # unframed bytes after a reply with a bad header
                self._forward(frame.raw)
                continue
            if proxy.close_after is not None and self.replies >= proxy.close_after:
                return self._close_fault()
            number = self.replies + 1
            data = frame.raw
            if proxy.corrupt_after == number:
                flipped = flip_byte(data, proxy.corrupt_byte)
                if flipped is None:
                    self.event(f"fault: reply {number} has no byte {proxy.corrupt_byte} to flip")
                else:
                    data = flipped
                    self.event(
                        f"fault: flipped byte {proxy.corrupt_byte} of reply {number}"
                        " (--corrupt-after)"
                    )
            if proxy.delay and proxy._stopping.wait(proxy.delay):
                return "the proxy stopped"
            self.replies = number  # before sending: the client's next request sees it
            self._forward(data)
        return None


def serve_until_signalled(proxy: Proxy) -> int:
    """Run ``proxy`` until SIGINT or SIGTERM, then stop it; the ``wireclient proxy`` loop."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        proxy.start()  # already started by the cli, which reports a busy port itself
        sys.stdout.write(
            f"proxy listening on {format_address(proxy.address)}, "
            f"upstream {format_address(proxy.upstream)}\n"
        )
        sys.stdout.flush()
        while not stop.wait(1.0):
            pass
    finally:
        proxy.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
    proxy._emit(f"{proxy._elapsed()} proxy stopped after {proxy.connections} connection(s)")
    return 0


__all__ = [
    "HOST_UNREACHABLE",
    "FaultRule",
    "Proxy",
    "client_tls_context",
    "flip_byte",
    "refusal_reply",
    "serve_until_signalled",
    "server_tls_context",
]
