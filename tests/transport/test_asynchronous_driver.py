"""The asyncio driver (``transport/asynchronous.py``) through the real steps.

``network.connect`` and ``SocketInfo``'s exchanges run with ``await asynchronous.run(...)``
against SecantusDB (plain and TLS), and against small asyncio servers written here that
answer half a frame and close, say nothing, never read, or greet with something else. Each
test runs its coroutine in a loop of its own, asyncio's and uvloop's (skipped when uvloop
is not installed). Nothing here sleeps for timing: a test waits for an event its peer sets,
or polls a condition with ``until`` (the asyncio twin of ``waiting.wait_until``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import struct
import tempfile
import time
import types
from contextlib import asynccontextmanager
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
)

import pytest
from certs import CertPaths, make_certs, openssl_available
from servers import SecantusServer
from waiting import PATIENCE

from wireclient import protocol
from wireclient.errors import AutoReconnect, NetworkTimeout, NotMongoDBError
from wireclient.rules.uri import UNIX_SOCKET_PORT
from wireclient.transport import asynchronous, network
from wireclient.transport.steps import Receive, Sleep, Steps, Wait

T = TypeVar("T")


# -- loops -------------------------------------------------------------------------------


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: Any) -> str:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return str(request.param)


def run_in(kind: str, main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` to its end in a new loop of ``kind``; no task may be left behind."""
    if kind == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(main())
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
        assert not left, f"tasks left running: {left}"
        return result
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # getaddrinfo's threads
        finally:
            loop.close()


async def until(predicate: Callable[[], object], timeout: float = PATIENCE) -> None:
    """Let the loop run until ``predicate()`` holds (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.001)


async def wait_for_event(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), PATIENCE)


# -- small peers -------------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, unix_path: Optional[str] = None) -> AsyncIterator[Any]:
    """An asyncio server running ``handler`` for each connection; yields its address. When
    the block ends every handler still running is cancelled and its connection closed."""
    handlers: List[asyncio.Task[Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the block ended: the handler ends quietly (asyncio
            pass  # 3.11's streams log a handler task that ends cancelled)
        finally:
            writer.close()

    if unix_path is not None:
        server = await asyncio.start_unix_server(handle, unix_path)
        address: Any = (unix_path, UNIX_SOCKET_PORT)
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        address = ("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        yield address
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def read_request(reader: asyncio.StreamReader) -> Tuple[int, bytes]:
    """One whole request frame: (its requestID, the frame)."""
    header = await reader.readexactly(16)
    length, request_id = struct.unpack_from("<ii", header)
    return request_id, header + await reader.readexactly(length - 16)


def reply_to(request_id: int, document: Dict[str, Any]) -> bytes:
    return protocol.encode(protocol.OpMsg(document), 1, request_id)


async def plain_connect(address: Any, **kwargs: Any) -> network.SocketInfo:
    """A connected SocketInfo with no handshake (the small peers here speak no hello)."""
    return await asynchronous.run(network.connect(address, handshake=False, **kwargs))


# -- against SecantusDB ------------------------------------------------------------------


def test_connect_and_ping(server: SecantusServer, loop_kind: str) -> None:
    async def main() -> None:
        info = await asynchronous.run(network.connect((server.host, server.port)))
        try:
            assert isinstance(info.sock, asynchronous.Stream)
            assert not hasattr(info.sock, "cipher")  # network.py's test for TLS
            assert info.max_wire_version > 0  # the handshake ran
            raw = info.sock.transport.get_extra_info("socket")
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            info.sock.settimeout(None)  # a no-op: each effect carries its deadline
            reply = await asynchronous.run(info.command("admin", {"ping": 1}))
            assert reply is not None and reply["ok"] == 1
            host, port = info.local_address[:2]
            assert host == "127.0.0.1" and port > 0
            assert not info.sock.readable_now() and not info.is_dead()
        finally:
            info.close()
        assert info.closed and info.local_address is None  # getsockname raised OSError
        info.close()  # again: nothing

    run_in(loop_kind, main)


def test_many_exchanges_on_one_socket_and_concurrent_sockets(
    server: SecantusServer, loop_kind: str
) -> None:
    async def one(n: int) -> List[int]:
        info = await asynchronous.run(network.connect((server.host, server.port), None, 30.0))
        try:
            seen = []
            for i in range(20):
                reply = await asynchronous.run(info.command("admin", {"ping": 1, "comment": i}))
                assert reply is not None and reply["ok"] == 1
                seen.append(i)
            return seen
        finally:
            info.close()

    async def main() -> None:
        results = await asyncio.gather(*(one(n) for n in range(8)))
        assert results == [list(range(20))] * 8

    run_in(loop_kind, main)


def test_a_large_reply_pauses_and_resumes_reading(
    server: SecantusServer, loop_kind: str, monkeypatch: Any
) -> None:
    # A bound of 64 KiB instead of 16 MiB: a 3 MB reply crosses it many times.
    monkeypatch.setattr(asynchronous, "_HIGH_WATER", 64 * 1024)
    monkeypatch.setattr(asynchronous, "_LOW_WATER", 16 * 1024)
    pauses: List[int] = []
    data_received = asynchronous._Protocol.data_received

    def counting(self: Any, data: bytes) -> None:
        was = self.reading_paused
        data_received(self, data)
        if self.reading_paused and not was:
            pauses.append(len(self.pending))

    monkeypatch.setattr(asynchronous._Protocol, "data_received", counting)
    big = "x" * (3 * 1024 * 1024)
    collection = f"big_{loop_kind}_{os.getpid()}"

    async def main() -> None:
        info = await asynchronous.run(network.connect((server.host, server.port)))
        try:
            spec = {"insert": collection, "documents": [{"_id": 1, "big": big}]}
            reply = await asynchronous.run(info.command("test", spec))
            assert reply is not None and reply["ok"] == 1, reply
            spec = {"find": collection, "filter": {"_id": 1}}
            reply = await asynchronous.run(info.command("test", spec))
            assert reply is not None and reply["ok"] == 1, reply
            assert reply["cursor"]["firstBatch"][0]["big"] == big
            assert not info.sock.protocol.reading_paused and not info.sock.protocol.pending
            await asynchronous.run(info.command("test", {"drop": collection}))
        finally:
            info.close()

    run_in(loop_kind, main)
    assert pauses, "reading never paused"


def test_socket_timeout_on_a_blocked_command(server: SecantusServer, loop_kind: str) -> None:
    async def main() -> None:
        admin = await asynchronous.run(network.connect((server.host, server.port)))
        info = await asynchronous.run(
            network.connect((server.host, server.port), socket_timeout=0.2)
        )
        try:
            fail_point = {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {"failCommands": ["ping"], "blockConnection": True, "blockTimeMS": 3000},
            }
            reply = await asynchronous.run(admin.command("admin", fail_point))
            assert reply is not None and reply["ok"] == 1, reply
            started = time.monotonic()
            with pytest.raises(NetworkTimeout, match="socketTimeoutMS"):
                await asynchronous.run(info.command("admin", {"ping": 1}))
            assert time.monotonic() - started >= 0.2  # never early
            assert info.closed  # a socket with a reply in flight is never reused
        finally:
            off = {"configureFailPoint": "failCommand", "mode": "off"}
            await asynchronous.run(admin.command("admin", off))
            admin.close()
            info.close()

    run_in(loop_kind, main)


def test_cancelling_a_task_awaiting_a_reply_closes_the_socket(loop_kind: str) -> None:
    async def main() -> None:
        request_in = asyncio.Event()
        client_gone = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            request_in.set()
            if not await reader.read(1):  # EOF: the client closed its socket
                client_gone.set()

        async with serving(silent) as address:
            info = await plain_connect(address)
            task = asyncio.ensure_future(asynchronous.run(info.command("admin", {"ping": 1})))
            await wait_for_event(request_in)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert info.closed and info.sock.protocol.closed
            await wait_for_event(client_gone)

    run_in(loop_kind, main)


def test_closing_the_socket_wakes_a_task_awaiting_a_reply(loop_kind: str) -> None:
    async def main() -> None:
        request_in = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            request_in.set()
            await reader.read(1)

        async with serving(silent) as address:
            info = await plain_connect(address)
            task = asyncio.ensure_future(asynchronous.run(info.command("admin", {"ping": 1})))
            await wait_for_event(request_in)
            info.sock.close()  # another task closes the socket under the exchange
            with pytest.raises(AutoReconnect):
                await task
            assert info.closed

    run_in(loop_kind, main)


# -- small peers -------------------------------------------------------------------------


def test_a_reply_from_a_small_peer_and_bytes_it_sends_unasked(loop_kind: str) -> None:
    async def main() -> None:
        replied = asyncio.Event()

        async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request_id, _ = await read_request(reader)
            frame = reply_to(request_id, {"ok": 1, "hello": "world"})
            writer.write(frame[:7])  # the reply in two writes
            await writer.drain()
            writer.write(frame[7:])
            await replied.wait()
            writer.write(reply_to(12345, {"ok": 1}))  # then a frame nobody asked for
            await reader.read(1)

        async with serving(answering) as address:
            info = await plain_connect(address)
            try:
                reply = await asynchronous.run(info.command("admin", {"ping": 1}))
                assert reply == {"ok": 1, "hello": "world"}
                assert not info.sock.readable_now() and not info.is_dead()
                replied.set()
                await until(info.sock.readable_now)
                assert info.is_dead()
            finally:
                info.close()

    run_in(loop_kind, main)


def test_the_one_timer_of_a_connection_never_fires_early_nor_late(loop_kind: str) -> None:
    # The timer is set for the first exchange's deadline and serves the later ones: it must
    # neither time out an exchange that is within its own deadline (it fires before it, for
    # an earlier exchange) nor miss one that is past it.
    async def main() -> None:
        async def answer_until_told(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            while True:
                request_id, frame = await read_request(reader)
                if b"silence" in frame:
                    await reader.read(1)
                    return
                writer.write(reply_to(request_id, {"ok": 1}))

        async with serving(answer_until_told) as address:
            info = await plain_connect(address, socket_timeout=0.2)
            try:
                started = time.monotonic()
                while time.monotonic() - started < 0.6:  # exchanges across three deadlines
                    reply = await asynchronous.run(info.command("admin", {"ping": 1}))
                    assert reply == {"ok": 1}
                await asynchronous.run(info.command("admin", {"ping": 1}))
                last = time.monotonic()
                with pytest.raises(NetworkTimeout):
                    await asynchronous.run(info.command("admin", {"silence": 1}))
                assert time.monotonic() - last >= 0.2
                assert info.closed
            finally:
                info.close()

    run_in(loop_kind, main)


def test_the_peer_closing_mid_reply_is_autoreconnect(loop_kind: str) -> None:
    async def main() -> None:
        async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request_id, _ = await read_request(reader)
            frame = reply_to(request_id, {"ok": 1, "padding": "p" * 100})
            writer.write(frame[: len(frame) // 2])
            await writer.drain()
            writer.close()

        async with serving(half) as address:
            info = await plain_connect(address)
            with pytest.raises(AutoReconnect, match="mid-reply") as caught:
                await asynchronous.run(info.command("admin", {"ping": 1}))
            assert not isinstance(caught.value, NetworkTimeout)
            assert info.closed

    run_in(loop_kind, main)


def test_the_peer_closing_before_any_reply_is_autoreconnect(loop_kind: str) -> None:
    async def main() -> None:
        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.close()

        async with serving(closing) as address:
            with pytest.raises(AutoReconnect, match="closed by server"):
                await asynchronous.run(network.connect(address, connect_timeout=PATIENCE))

    run_in(loop_kind, main)


def test_readable_now_after_the_peer_closes(loop_kind: str) -> None:
    async def main() -> None:
        may_close = asyncio.Event()

        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await may_close.wait()
            writer.close()

        async with serving(closing) as address:
            info = await plain_connect(address)
            try:
                assert not info.sock.readable_now() and not info.is_dead()
                may_close.set()
                await until(info.sock.readable_now)
                assert info.is_dead()
                # a Receive sees the end: nothing more will come
                with pytest.raises(AutoReconnect, match="closed by server"):
                    await asynchronous.run(info.receive_message())
            finally:
                info.close()

    run_in(loop_kind, main)


def test_a_silent_peer_times_out_the_handshake(loop_kind: str) -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # reads, never answers

        async with serving(silent) as address:
            started = time.monotonic()
            with pytest.raises(NetworkTimeout, match="connectTimeoutMS"):
                await asynchronous.run(network.connect(address, connect_timeout=0.2))
            assert time.monotonic() - started >= 0.2

    run_in(loop_kind, main)


def test_a_peer_that_never_reads_times_out_the_send(loop_kind: str) -> None:
    async def main() -> None:
        connected = asyncio.Event()

        async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.transport.pause_reading()  # type: ignore[attr-defined,unused-ignore]
            connected.set()
            await asyncio.Event().wait()  # until the server closes it

        async with serving(deaf) as address:
            info = await plain_connect(address, socket_timeout=0.3)
            await wait_for_event(connected)
            data = b"\0" * (64 * 1024 * 1024)  # more than the kernel's buffers hold
            with pytest.raises(NetworkTimeout):
                await asynchronous.run(info.send_raw(data))
            assert info.closed

    run_in(loop_kind, main)


def test_a_unix_domain_socket(loop_kind: str) -> None:
    async def main() -> None:
        async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request_id, _ = await read_request(reader)
            writer.write(reply_to(request_id, {"ok": 1, "over": "unix"}))
            await reader.read(1)

        with tempfile.TemporaryDirectory(prefix="wc-") as directory:
            path = os.path.join(directory, "mongodb.sock")
            async with serving(answering, unix_path=path) as address:
                info = await plain_connect(address)
                try:
                    reply = await asynchronous.run(info.command("admin", {"ping": 1}))
                    assert reply == {"ok": 1, "over": "unix"}
                finally:
                    info.close()

    run_in(loop_kind, main)


def test_connection_refused_is_autoreconnect(loop_kind: str) -> None:
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

        async def main() -> None:
            with pytest.raises(AutoReconnect) as caught:
                await asynchronous.run(network.connect(("127.0.0.1", port)))
            assert not isinstance(caught.value, NetworkTimeout)
            assert isinstance(caught.value.__cause__, OSError)

        run_in(loop_kind, main)


@pytest.fixture()
def full_backlog() -> Iterator[int]:
    """A port whose listen backlog is full: a new TCP connect to it hangs (Linux drops the
    SYN). Skips where the backlog cannot be filled."""
    listener = socket.socket()
    fillers: List[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(16):
            s = socket.socket()
            fillers.append(s)
            s.settimeout(0.2)
            try:
                s.connect(address)
            except (socket.timeout, OSError):
                break
        else:
            pytest.skip("the listen backlog never filled")
        yield address[1]
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_a_dial_that_hangs_times_out(full_backlog: int, loop_kind: str) -> None:
    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(NetworkTimeout, match="connect timed out"):
            await asynchronous.run(
                network.connect(("127.0.0.1", full_backlog), connect_timeout=0.3)
            )
        assert time.monotonic() - started >= 0.3

    run_in(loop_kind, main)


# -- the driver itself: effects thrown into steps, latches ---------------------------------


def test_errors_are_raised_inside_the_step(loop_kind: str) -> None:
    def step(conn: Any) -> Steps[str]:
        yield Sleep(0)
        try:
            yield Receive(conn, protocol.MessageReader(), time.monotonic() - 1)  # passed
        except TimeoutError:
            return "caught inside"
        return "not raised"

    def unhandled() -> Steps[None]:
        yield Receive(None, protocol.MessageReader(), None)  # None is no connection

    async def main() -> None:
        idle = types.SimpleNamespace(protocol=asynchronous._Protocol(asyncio.get_running_loop()))
        assert await asynchronous.run(step(idle)) == "caught inside"
        with pytest.raises(AttributeError):  # what the step does not handle comes out
            await asynchronous.run(unhandled())

    run_in(loop_kind, main)


def test_wait_on_a_latch(loop_kind: str) -> None:
    def waiting(latch: Any, timeout: Optional[float]) -> Steps[bool]:
        return (yield Wait(latch, timeout))

    async def main() -> None:
        latch = asynchronous.latch()
        assert not latch.is_set()
        # timeout: False, and no waiter left behind
        assert await asynchronous.run(waiting(latch, 0.01)) is False
        assert await asynchronous.run(waiting(latch, 0)) is False
        assert not latch._waiters  # type: ignore[attr-defined]
        # set by another task while two wait (one with no limit)
        first = asyncio.ensure_future(asynchronous.run(waiting(latch, None)))
        second = asyncio.ensure_future(asynchronous.run(waiting(latch, PATIENCE)))
        await until(lambda: len(latch._waiters) == 2)  # type: ignore[attr-defined]
        latch.set()
        assert await first is True and await second is True
        assert latch.is_set() and await asynchronous.run(waiting(latch, 0)) is True
        latch.clear()
        assert not latch.is_set()
        # a cancelled waiter leaves nothing behind either
        third = asyncio.ensure_future(asynchronous.run(waiting(latch, None)))
        await until(lambda: len(latch._waiters) == 1)  # type: ignore[attr-defined]
        third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await third
        assert not latch._waiters  # type: ignore[attr-defined]

    run_in(loop_kind, main)


def test_cancellation_is_thrown_into_the_step(loop_kind: str) -> None:
    seen: List[str] = []

    def step(latch: Any) -> Generator[Any, Any, None]:
        try:
            yield Wait(latch, None)
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise

    async def main() -> None:
        latch = asynchronous.latch()
        task = asyncio.ensure_future(asynchronous.run(step(latch)))
        await until(lambda: len(latch._waiters) == 1)  # type: ignore[attr-defined]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_in(loop_kind, main)
    assert seen == ["cancelled inside"]


# -- TLS ---------------------------------------------------------------------------------

needs_openssl = pytest.mark.skipif(not openssl_available(), reason="needs the openssl command")


@pytest.fixture(scope="module")
def certs() -> Iterator[CertPaths]:
    if not openssl_available():
        pytest.skip("needs the openssl command")
    with tempfile.TemporaryDirectory(prefix="wireclient-certs-") as directory:
        yield make_certs(directory)


@pytest.fixture(scope="module")
def tls_server(certs: CertPaths) -> Iterator[SecantusServer]:
    args = ["--tls-cert-file", certs.server_cert, "--tls-key-file", certs.server_key]
    srv = SecantusServer(extra_args=args).start()
    try:
        yield srv
    finally:
        srv.stop()


@needs_openssl
@pytest.mark.parametrize("connect_timeout", [20.0, None])
def test_ping_over_tls(
    tls_server: SecantusServer, certs: CertPaths, loop_kind: str, connect_timeout: Optional[float]
) -> None:
    async def main() -> None:
        context = ssl.create_default_context(cafile=certs.ca)
        address = ("localhost", tls_server.port)  # a name to resolve, and to check
        info = await asynchronous.run(
            network.connect(address, connect_timeout, ssl_context=context)
        )
        try:
            stream = info.sock
            assert isinstance(stream, asynchronous.TLSStream)
            assert hasattr(stream, "cipher") and stream.cipher()[0]
            assert stream.version() in ("TLSv1.2", "TLSv1.3")
            assert stream.getpeercert()["subjectAltName"]
            reply = await asynchronous.run(info.command("admin", {"ping": 1}))
            assert reply is not None and reply["ok"] == 1
            assert not info.is_dead()
        finally:
            info.close()
        assert info.local_address is None

    run_in(loop_kind, main)


@needs_openssl
def test_an_untrusted_certificate_keeps_the_ssl_error(
    tls_server: SecantusServer, certs: CertPaths, loop_kind: str
) -> None:
    async def main() -> None:
        context = ssl.create_default_context(cafile=certs.other_ca)
        address = (tls_server.host, tls_server.port)
        with pytest.raises(AutoReconnect, match="certificate verify failed") as caught:
            await asynchronous.run(network.connect(address, ssl_context=context))
        assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)

    run_in(loop_kind, main)


@needs_openssl
def test_tls_to_a_peer_answering_in_plaintext_is_not_mongodb(
    certs: CertPaths, loop_kind: str
) -> None:
    async def main() -> None:
        async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        async with serving(http) as address:
            context = ssl.create_default_context(cafile=certs.ca)
            with pytest.raises(NotMongoDBError) as caught:
                await asynchronous.run(network.connect(address, ssl_context=context))
            assert isinstance(caught.value.__cause__, ssl.SSLError)  # its reason was read

    run_in(loop_kind, main)


@needs_openssl
def test_a_tls_handshake_that_never_ends_times_out(certs: CertPaths, loop_kind: str) -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        async with serving(silent) as address:
            context = ssl.create_default_context(cafile=certs.ca)
            started = time.monotonic()
            with pytest.raises(NetworkTimeout):
                await asynchronous.run(
                    network.connect(address, connect_timeout=0.3, ssl_context=context)
                )
            assert time.monotonic() - started >= 0.3

    run_in(loop_kind, main)
