"""Hostile servers (tests/support/hostile_server.py): for each class of fault, the error type, the
time taken against the timeout, the memory it cost, that the socket was closed, and that
the pool works afterwards (the same server switched to "good").

Classes: a reply that breaks the protocol after a good handshake (ProtocolError, at once);
a reply that comes too slowly or not at all (NetworkTimeout, at the deadline: socketTimeoutMS
for the whole exchange, connectTimeoutMS for connect + TLS + handshake + authentication);
a header claiming more than arrives (memory follows the bytes); a peer that is not MongoDB
at all (NotMongoDBError, at once).

Every case runs against both clients (the ``flavour`` fixture, ``tests/support/flavoured.py``):
one body, written as a coroutine, the same assertions, the blocking ``Connection`` and
``run``, then ``AsyncConnection`` and ``asynchronous.run``. The servers are threads, so
they never wait on the test's loop. What only the blocking driver does stays blocking-only
(each such test says why).
"""

from __future__ import annotations

import ssl
import struct
import time
from typing import Any, Callable, Iterator, Tuple, Type
from urllib.parse import quote

import bson
import pytest
from certs import CertPaths, make_certs
from flavoured import FLAVOURS, Flavour, eventually, got
from hostile_server import HostileServer, hello_reply, op_msg, op_reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wireclient import AsyncConnection, Connection, protocol
from wireclient.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    NotMongoDBError,
    ProtocolError,
)
from wireclient.transport import network
from wireclient.transport.blocking import run
from wireclient.transport.steps import Dial, Sleep, StartTLS

# A bug in the server's threads must fail the test, not pass as a hang-up.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

TIMEOUT = 0.5  # the timeout under test, in seconds
# What a busy machine may add to it. The upper bound only has to tell a deadline from a
# timeout per call, which a drip or a slow reader keeps resetting: those peers take 5 s or
# more to finish (or never do), and then the exchange would not fail at all.
SLACK = 3.0
# "The error did not wait for the timeout": less than the 5 s that such tests configure
# (the error's type says the same: waiting for the timeout would raise NetworkTimeout).
QUICK = 4.0
MiB = 1024 * 1024


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


@pytest.fixture()
def hostile() -> Iterator[HostileServer]:
    with HostileServer("good") as srv:
        yield srv


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return make_certs(str(tmp_path_factory.mktemp("certs")))


async def connection(flavour: Flavour, srv: HostileServer, query: str = "", **options: Any) -> Any:
    """A connection of the flavour to ``srv``: connected (a ``Connection``, or an
    ``AsyncConnection`` after ``await conn.connect()``), or not yet with ``_connect=False``."""
    return await open_connection(flavour, srv.uri + "?" + query, **options)


async def open_connection(flavour: Flavour, uri: str, **options: Any) -> Any:
    """``connection`` given the whole URI. An ``AsyncConnection`` whose ``connect()`` fails
    must have closed its socket by itself (checked before the test closes it); a
    ``Connection`` whose constructor fails is not there to look at."""
    options.setdefault("auto_start_request", False)
    if not flavour.asynchronous:
        return Connection(uri, **options)
    conn = AsyncConnection(uri, **options)
    if options.get("_connect", True) is False:
        return conn
    try:
        await conn.connect()
    except BaseException as exc:
        left_open = conn.pool.open_count
        await conn.close()
        if left_open:
            raise AssertionError(f"{left_open} socket(s) left open by connect()") from exc
        raise
    return conn


async def timed(call: Callable[[], Any]) -> Tuple[BaseException, float]:
    """The error ``call()`` raised (a blocking call's, or its coroutine's when awaited), and
    the seconds it took."""
    start = time.monotonic()
    with pytest.raises(Exception) as info:
        await got(call())
    return info.value, time.monotonic() - start


async def recovers(srv: HostileServer, conn: Any) -> None:
    """The failed socket is gone, the client closed it, and the pool works again."""
    assert conn.pool.open_count == 0
    srv.set_mode("good", handshake=True, greeting=b"")
    assert (await got(conn.admin.command("ping")))["ok"] == 1
    assert conn.pool.open_count == 1
    await got(conn.close())


# A wireclient bug this suite found (issue 21 item 5; the fix is wireclient's): the asyncio
# driver loses the bytes a peer sends between connecting and starting TLS. Its plaintext
# protocol reads them into its pending buffer, and loop.start_tls's TLS protocol never sees
# them, so OpenSSL reads the peer's stream from the middle: an SSH banner over TLS times
# out instead of being refused at once (NotMongoDBError), a dripped ServerHello may fail
# early. The blocking driver leaves them in the kernel for ssl to read. How often it shows
# depends on timing: test_bytes_sent_before_the_tls_handshake_reach_it shows it every time
# (strict); the mark below goes on the asyncio cases it makes flaky. Remove both marks with
# the fix.
LOST_BEFORE_TLS = pytest.mark.xfail(
    reason="wireclient bug: asyncio StartTLS loses bytes received before it", strict=False
)


def known_bug(request: Any, flavour: Flavour, mark: Any) -> None:
    """``mark`` (an xfail of a wireclient bug) applied to the asyncio case only."""
    if flavour.asynchronous:
        request.applymarker(mark)


def socket_closed(raw: Any) -> bool:
    """Whether the client closed ``raw``, a ``SocketInfo``'s connection: a socket (the
    blocking driver's) or the asyncio driver's ``Stream`` (its transport closing)."""
    if hasattr(raw, "fileno"):
        return bool(raw.fileno() == -1)
    return bool(raw.protocol.closed and raw.transport.is_closing())


# --------------------------------------------------------------------------- protocol faults

OP_QUERY_BODY = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1)
NOOP_COMPRESSED = struct.pack("<iiB", 2013, 22, 0) + struct.pack("<IB", 0, 0) + bson.encode({})

BROKEN = [  # (mode, params, error, message)
    ("claim", {"claim": 2**31 - 1}, ProtocolError, "exceeds the maximum message size"),
    ("tiny", {}, ProtocolError, "less than the 16-byte header"),
    ("response_to", {}, ProtocolError, "responseTo"),
    ("opcode", {"opcode": 4242}, ProtocolError, "unknown opCode 4242"),
    ("opcode", {"body": OP_QUERY_BODY + bson.encode({"ok": 1}), "opcode": 2004}, ProtocolError,
     "unexpected reply message OpQuery"),
    ("opcode", {"body": NOOP_COMPRESSED, "opcode": 2012}, ProtocolError, "OpCompressed"),
    ("checksum", {}, ProtocolError, "checksum mismatch"),
    ("bad_bson", {}, ProtocolError, "invalid BSON"),
    ("hangup", {}, AutoReconnect, "closed mid-reply"),
    ("close", {}, AutoReconnect, "closed by server"),
    # a header whose opCode is unknown: refused without waiting for its 1 MB body
    ("bytes", {"data": lambda rid: struct.pack("<iiii", MiB, 1, rid, 4242), "then": "stall"},
     ProtocolError, "unknown opCode"),
    # a header that answers another request: refused without waiting for its 1 MB body
    ("bytes", {"data": lambda rid: struct.pack("<iiii", MiB, 1, rid + 1, 2013), "then": "stall"},
     ProtocolError, "responseTo"),
]  # fmt: skip


@pytest.mark.parametrize(
    "mode, params, error, text", BROKEN, ids=[f"{b[0]}-{b[3]}" for b in BROKEN]
)
def test_broken_reply(
    flavour: Flavour,
    hostile: HostileServer,
    mode: str,
    params: Any,
    error: Type[Exception],
    text: str,
) -> None:
    async def main() -> None:
        conn = await connection(flavour, hostile, "socketTimeoutMS=5000")
        hostile.set_mode(mode, **params)
        exc, elapsed = await timed(lambda: conn.admin.command("ping"))
        assert type(exc) is error, exc
        assert text in str(exc)
        assert elapsed < QUICK
        if mode not in ("hangup", "close"):  # the server still listens: it sees our close
            assert await eventually(lambda: hostile.client_closes >= 1)
        await recovers(hostile, conn)

    flavour.run(main)


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_reply(flavour: Flavour, hostile: HostileServer, seed: int) -> None:
    async def main() -> None:
        conn = await connection(flavour, hostile, "socketTimeoutMS=5000")
        hostile.set_mode("random", seed=seed, size=64)
        exc, elapsed = await timed(lambda: conn.admin.command("ping"))
        assert isinstance(exc, (ProtocolError, AutoReconnect)), exc
        assert not isinstance(exc, NotMongoDBError)  # this socket spoke MongoDB at its handshake
        assert elapsed < QUICK
        await recovers(hostile, conn)

    flavour.run(main)


# --------------------------------------------------------------------------- deadlines


def assert_at_deadline(elapsed: float, timeout: float = TIMEOUT) -> None:
    assert timeout - 0.05 <= elapsed <= timeout + SLACK, elapsed


SLOW = [  # modes where the reply is slow or never whole
    ("drip", {"interval": 0.1, "reply": {"ok": 1.0, "pad": "x" * 40}}),  # 8 s of drip
    ("silent", {}),
    ("truncated", {"cut": 1}),
    ("claim", {"claim": 1000, "send": 500}),
]


@pytest.mark.parametrize("mode, params", SLOW, ids=[s[0] for s in SLOW])
def test_slow_reply_times_out_at_socket_timeout(
    flavour: Flavour, hostile: HostileServer, mode: str, params: Any
) -> None:
    async def main() -> None:
        conn = await connection(flavour, hostile, f"socketTimeoutMS={int(TIMEOUT * 1000)}")
        hostile.set_mode(mode, **params)
        exc, elapsed = await timed(lambda: conn.admin.command("ping"))
        assert type(exc) is NetworkTimeout, exc
        assert "socketTimeoutMS" in str(exc) and hostile.address[0] in str(exc)
        assert_at_deadline(elapsed)
        assert await eventually(lambda: hostile.client_closes >= 1)
        await recovers(hostile, conn)

    flavour.run(main)


def test_drip_over_tls_times_out_at_socket_timeout(flavour: Flavour, certs: CertPaths) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)

    async def main() -> None:
        with HostileServer("good", tls=server_ctx) as srv:
            query = f"tls=true&tlsCAFile={quote(certs.ca, safe='')}&socketTimeoutMS=500"
            conn = await connection(flavour, srv, query)
            srv.set_mode("drip", interval=0.1, reply={"ok": 1.0, "pad": "x" * 40})
            exc, elapsed = await timed(lambda: conn.admin.command("ping"))
            assert type(exc) is NetworkTimeout, exc
            assert_at_deadline(elapsed)
            await recovers(srv, conn)

    flavour.run(main)


@pytest.mark.parametrize("tls", [False, True])
def test_slow_reader_bounds_the_send(flavour: Flavour, certs: CertPaths, tls: bool) -> None:
    """A server that reads 64 KB every 50 ms: each send makes progress (so a timeout per
    call would never fire), yet sending a 32 MB insert must stop at the deadline."""
    server_ctx = context = None
    if tls:
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(certs.server_cert, certs.server_key)
        context = ssl.create_default_context(cafile=certs.ca)

    async def main() -> None:
        with HostileServer("good", tls=server_ctx) as srv:
            sock = await flavour.steps(network.connect(srv.address, 5.0, TIMEOUT, context))
            srv.set_mode("slow_read", chunk=65536, interval=0.05)
            docs = (bson.encode({"_id": i, "data": b"x" * MiB}) for i in range(32))
            batch = protocol.DocumentSequence("documents", tuple(docs))  # encoded already
            command = sock.command("test", {"insert": "c"}, (batch,))
            exc, elapsed = await timed(lambda: flavour.steps(command))
            assert type(exc) is NetworkTimeout, exc
            assert_at_deadline(elapsed)
            assert sock.closed and socket_closed(sock.sock)
            srv.set_mode("good")
            again = await flavour.steps(network.connect(srv.address, 5.0, TIMEOUT, context))
            assert await flavour.steps(again.command("admin", {"ping": 1})) == {"ok": 1.0}
            again.close()

    flavour.run(main)


def test_handshake_drip_times_out_at_connect_timeout(flavour: Flavour) -> None:
    async def main() -> None:
        with HostileServer("drip", handshake=False, interval=0.05, reply=hello_reply()) as srv:
            query = "connectTimeoutMS=500&socketTimeoutMS=9000"
            exc, elapsed = await timed(lambda: connection(flavour, srv, query))
            assert type(exc) is NetworkTimeout, exc
            assert "connectTimeoutMS" in str(exc)
            assert_at_deadline(elapsed)
            assert await eventually(lambda: srv.client_closes >= 1)

    flavour.run(main)


def test_authentication_is_inside_the_connect_deadline(flavour: Flavour) -> None:
    """hello answered at once, then the SCRAM conversation drips: connectTimeoutMS, counted
    from the start of connecting, bounds it."""

    async def main() -> None:
        with HostileServer("drip", interval=0.05, reply={"ok": 1.0, "pad": "x" * 60}) as srv:
            uri = f"mongodb://user:s3cret@127.0.0.1:{srv.port}/?authMechanism=SCRAM-SHA-256"
            start = time.monotonic()
            with pytest.raises(NetworkTimeout) as info:
                await open_connection(flavour, uri, connectTimeoutMS=600)
            assert_at_deadline(time.monotonic() - start, 0.6)
            assert "s3cret" not in str(info.value)
            assert "saslStart" in srv.requests

    flavour.run(main)


def test_tls_handshake_drip_times_out_at_connect_timeout(
    request: Any, flavour: Flavour, certs: CertPaths
) -> None:
    known_bug(request, flavour, LOST_BEFORE_TLS)  # at times: a record read from its 2nd byte
    record = b"\x16\x03\x03\x01\x00" + b"\x02" * 256  # a ServerHello record, a byte at a time

    async def main() -> None:
        with HostileServer("silent", greeting=record, greeting_interval=0.05) as srv:
            query = f"tls=true&tlsCAFile={quote(certs.ca, safe='')}&connectTimeoutMS=500"
            exc, elapsed = await timed(lambda: connection(flavour, srv, query))
            assert type(exc) is NetworkTimeout, exc
            assert_at_deadline(elapsed)

    flavour.run(main)


class Recorder:
    """A socket's stand-in that counts settimeout, sendall and recv_into calls."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, {"settimeout": 0, "sendall": 0, "recv_into": 0}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name in self.calls:

            def counted(*args: Any) -> Any:
                self.calls[name] += 1
                return attr(*args)

            return counted
        return attr


@pytest.mark.parametrize("timeout", [None, 2.0])
def test_settimeout_only_with_a_timeout_and_once_per_blocking_call(
    hostile: HostileServer, timeout: Any
) -> None:
    """Blocking only: it counts the ``settimeout``, ``sendall`` and ``recv_into`` calls the
    blocking driver makes on a socket. The asyncio driver makes none of them (its loop's
    transport reads and writes; each effect carries its deadline, and its ``Stream``'s
    ``settimeout`` does nothing), so there is nothing to count."""
    sock = run(network.connect(hostile.address, 5.0, timeout))
    recorder = Recorder(sock.sock)
    sock.sock = recorder  # type: ignore[assignment]
    for _ in range(3):
        assert run(sock.command("admin", {"ping": 1})) == {"ok": 1.0}
    calls = recorder.calls
    assert calls["recv_into"] == 3 and calls["sendall"] == 3  # one of each per small reply
    if timeout is None:  # the fast path: plain blocking calls, no extra syscall
        assert calls["settimeout"] == 0
    else:
        assert calls["settimeout"] == calls["recv_into"] + calls["sendall"]
    sock.close()


# --------------------------------------------------------------------------- not MongoDB


def assert_not_mongodb(exc: BaseException, srv: HostileServer, *words: str) -> None:
    assert isinstance(exc, NotMongoDBError) and isinstance(exc, ConnectionFailure), exc
    assert f"127.0.0.1:{srv.port}" in str(exc)
    assert "did not speak the MongoDB protocol" in str(exc)
    for word in words:
        assert word in str(exc)


FOREIGN = [  # (server, words the message has)
    (dict(mode="http"), ["HTTP/1.1 400", "HTTP server"]),
    (dict(mode="silent", greeting=b"SSH-2.0-OpenSSH_9.6\r\n"), ["SSH-2.0"]),
    (dict(mode="silent", greeting=b"220 mail.example ESMTP\r\n"), ["220 mail"]),
    (dict(mode="tls_alert"), ["TLS record", "tls=true"]),
    (dict(mode="echo"), ["responseTo"]),
    (dict(mode="response_to"), ["responseTo"]),
    (dict(mode="opcode", opcode=2004, body=OP_QUERY_BODY + bson.encode({"ok": 1})), ["OpQuery"]),
    (dict(mode="random", seed=1), []),
]  # a reply header that answers our hello over a broken body is MongoDB's: see below


@pytest.mark.parametrize("server, words", FOREIGN, ids=[str(f[0]["mode"]) for f in FOREIGN])
def test_foreign_peer_is_not_mongodb(flavour: Flavour, server: Any, words: Any) -> None:
    async def main() -> None:
        with HostileServer(handshake=False, **server) as srv:
            conn = await connection(flavour, srv, "connectTimeoutMS=5000", _connect=False)
            exc, elapsed = await timed(lambda: conn.admin.command("ping"))
            assert_not_mongodb(exc, srv, *words)
            assert elapsed < QUICK
            await recovers(srv, conn)  # the same port, now speaking MongoDB: the pool works

    flavour.run(main)


def test_short_greeting_then_silence_is_not_mongodb(flavour: Flavour) -> None:
    async def main() -> None:
        with HostileServer("silent", handshake=False, greeting=b"+OK\r\n") as srv:
            exc, elapsed = await timed(lambda: connection(flavour, srv, "connectTimeoutMS=500"))
            assert_not_mongodb(exc, srv, "+OK")  # 4 bytes that cannot start a reply
            assert_at_deadline(elapsed)

    flavour.run(main)


def test_tls_client_to_a_plaintext_peer_is_not_mongodb(
    request: Any, flavour: Flavour, certs: CertPaths
) -> None:
    known_bug(request, flavour, LOST_BEFORE_TLS)  # often: NetworkTimeout at connectTimeoutMS

    async def main() -> None:
        with HostileServer("silent", greeting=b"SSH-2.0-OpenSSH_9.6\r\n") as srv:
            query = f"tls=true&tlsCAFile={quote(certs.ca, safe='')}&connectTimeoutMS=5000"
            exc, elapsed = await timed(lambda: connection(flavour, srv, query))
            assert_not_mongodb(exc, srv, "over TLS", "tls=false")
            assert elapsed < QUICK

    flavour.run(main)


def test_bytes_sent_before_the_tls_handshake_reach_it(
    request: Any, flavour: Flavour, certs: CertPaths
) -> None:
    """A peer that speaks first (an SSH banner) while the client has not started TLS yet,
    as a busy loop may leave it between connecting and ``StartTLS``: the handshake reads
    those bytes and fails on them at once (the blocking driver: ``WRONG_VERSION_NUMBER``);
    it does not wait for more until the deadline."""
    if flavour.asynchronous:
        request.applymarker(pytest.mark.xfail(reason=LOST_BEFORE_TLS.kwargs["reason"], strict=True))
    context = ssl.create_default_context(cafile=certs.ca)

    def steps(address: Any) -> Any:
        deadline = time.monotonic() + 2.0
        conn = yield Dial(address, deadline)
        yield Sleep(0.2)  # the banner arrives meanwhile
        return (yield StartTLS(conn, context, "127.0.0.1", deadline))

    async def main() -> None:
        with HostileServer("silent", greeting=b"SSH-2.0-OpenSSH_9.6\r\n") as srv:
            exc, _ = await timed(lambda: flavour.steps(steps(srv.address)))
            assert isinstance(exc, ssl.SSLError), repr(exc)  # not TimeoutError at the deadline

    flavour.run(main)


def test_plaintext_client_to_a_tls_port_says_what_may_be_wrong(
    flavour: Flavour, certs: CertPaths
) -> None:
    """OpenSSL resets a plaintext peer without an alert: nothing proves the peer is not
    MongoDB (a server at its connection limit does the same), so it stays AutoReconnect."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)

    async def main() -> None:
        with HostileServer("good", tls=server_ctx) as srv:
            exc, elapsed = await timed(lambda: connection(flavour, srv, "connectTimeoutMS=5000"))
            assert type(exc) is AutoReconnect, exc
            assert "before answering the handshake" in str(exc) and "tls=true" in str(exc)
            assert elapsed < QUICK
            assert await eventually(lambda: srv.tls_failures == 1)  # ssl closes before it raises

    flavour.run(main)


def test_later_garbage_stays_a_protocol_error(flavour: Flavour, hostile: HostileServer) -> None:
    async def main() -> None:
        conn = await connection(flavour, hostile)
        hostile.set_mode("http")
        exc, _ = await timed(lambda: conn.admin.command("ping"))
        assert type(exc) is ProtocolError, exc
        await recovers(hostile, conn)

    flavour.run(main)


# --------------------------------------------------------------------------- generated replies

FAST = settings(
    max_examples=15,  # for each flavour
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _lying_op_reply(request_id: int) -> bytes:
    """A hello reply in OP_REPLY, answering ``request_id``, whose numberReturned says 2 but
    which holds one document."""
    frame = bytearray(op_reply(hello_reply(), request_id))
    struct.pack_into("<i", frame, 32, 2)
    return bytes(frame)


def _lying_op_msg(request_id: int) -> bytes:
    """An OP_MSG answering ``request_id`` whose body's BSON has an element type that does
    not exist."""
    return op_msg(b"\x0c\x00\x00\x00\x7fa\x00\x01\x02\x03\x04\x00", request_id)


def _empty_op_reply(request_id: int) -> bytes:
    """A well-formed OP_REPLY answering ``request_id`` that holds no document: the frame
    decodes, and the command's reply is missing."""
    return struct.pack("<iiiiIqii", 36, 1, request_id, 1, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "reply",
    [_lying_op_reply, _lying_op_msg, _empty_op_reply],
    ids=["op_reply", "op_msg", "empty_op_reply"],
)
def test_a_broken_body_under_a_header_that_answers_us_is_a_protocol_error(
    flavour: Flavour,
    reply: Callable[[int], bytes],
) -> None:
    """The first reply on a socket has a MongoDB reply's header answering our hello, and a
    body that breaks the protocol: the peer speaks MongoDB, badly. That is a
    ``ProtocolError``; ``NotMongoDBError`` is for a peer whose first bytes are not
    MongoDB's at all."""

    async def main() -> None:
        with HostileServer("bytes", handshake=False, data=reply, then="close") as srv:
            with pytest.raises(ProtocolError) as info:
                await flavour.steps(network.connect(srv.address, 5.0, 5.0))
            assert not isinstance(info.value, (NotMongoDBError, AutoReconnect)), info.value

    flavour.run(main)


@FAST
@given(data=st.binary(max_size=300))
def test_any_first_reply_is_an_auto_reconnect(flavour: Flavour, data: bytes) -> None:
    async def main() -> None:
        with HostileServer("bytes", handshake=False, data=data, then="close") as srv:
            start = time.monotonic()
            with pytest.raises(AutoReconnect) as info:
                await flavour.steps(network.connect(srv.address, 5.0, 5.0))
            assert time.monotonic() - start < QUICK
            if len(data) >= 16:  # a whole header that does not answer our hello
                assert isinstance(info.value, NotMongoDBError), info.value

    flavour.run(main)


@FAST
@given(data=st.data())
def test_mutated_reply_is_decoded_or_refused(
    flavour: Flavour, hostile: HostileServer, data: st.DataObject
) -> None:
    changes = data.draw(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), max_size=4))
    cut = data.draw(st.integers(0, 45))

    def reply(request_id: int) -> bytes:
        frame = bytearray(op_msg({"ok": 1.0, "n": 5}, request_id))  # 45 bytes
        for i, value in changes:
            frame[i] = value
        return bytes(frame[:cut])

    async def main() -> None:
        hostile.set_mode("good")
        sock = await flavour.steps(network.connect(hostile.address, 5.0, 5.0))
        hostile.set_mode("bytes", data=reply, then="close")
        start = time.monotonic()
        try:
            answer = await flavour.steps(sock.command("admin", {"ping": 1}))
        except (ProtocolError, AutoReconnect) as exc:
            assert not isinstance(exc, NotMongoDBError)  # its handshake was MongoDB's
            assert sock.closed and socket_closed(sock.sock)
        else:  # the changes left a valid reply
            assert isinstance(answer, dict) and cut == 45
        assert time.monotonic() - start < QUICK
        sock.close()

    flavour.run(main)
