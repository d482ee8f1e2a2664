"""wireclient.mock.MockServer with wireclient's Connection and raw frames: compression in
both directions, checksums recorded or refused, OP_QUERY/OP_REPLY for an old-wire client,
TLS, matchers, autoresponders, replies of every kind, and close() leaving nothing behind.

The mock is built on wireclient's codec, so these tests check the server's behaviour; the
codec itself is checked against golden bytes and independent peers elsewhere (and
test_pymongo.py drives the mock with a client nobody here wrote). The compression tests
with wireclient run on both of its clients (the ``flavour`` fixture, ``flavoured.py``)."""

from __future__ import annotations

import importlib.util
import socket
import ssl
import threading
import zlib
from typing import Any, List

import pymongo
import pytest
from bson import Int64
from flavoured import FLAVOURS, Flavour, got

from wireclient import AsyncConnection, Connection, protocol
from wireclient.errors import AutoReconnect, OperationFailure, ProtocolError
from wireclient.mock import (
    ABSENT,
    Matcher,
    MockServer,
    NoMatchingRequest,
    Routers,
    fail,
    ok,
    op_reply,
    reply_frame,
)
from wireclient.monitoring import FrameListener
from wireclient.transport.blocking import run

TIMEOUT = 10


def connection(server: MockServer, query: str = "") -> Connection:
    return Connection(server.uri + ("/?" + query if query else ""), auto_start_request=False)


def raw_socket(server: MockServer) -> socket.socket:
    sock = socket.create_connection(server.address, timeout=TIMEOUT)
    return sock


def read_frames(sock: socket.socket, count: int) -> List[Any]:
    reader = protocol.MessageReader()
    reader.inflate = True
    got: List[Any] = []
    while len(got) < count:
        data = sock.recv(65536)
        if not data:
            break
        reader.feed(data)
        got.extend(reader)
    return got


COMPRESSORS = ["zlib"] + [
    name
    for name, module in (("snappy", "snappy"), ("zstd", "zstandard"))
    if importlib.util.find_spec(module) is not None
]


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def flavoured_connection(
    flavour: Flavour, server: MockServer, query: str = "", **options: Any
) -> Any:
    """``connection`` of the flavour, unconnected (the first operation connects)."""
    uri = server.uri + ("/?" + query if query else "")
    return flavour.make(Connection, AsyncConnection, uri, auto_start_request=False, **options)


class ReceivedFrames(FrameListener):
    def __init__(self) -> None:
        self.op_codes: List[int] = []

    def received(self, event: Any) -> None:
        self.op_codes.append(event.header.op_code)


@pytest.mark.parametrize("name", COMPRESSORS)
def test_compression_both_ways_with_wireclient(name: str, flavour: Flavour) -> None:
    async def main() -> None:
        with MockServer(compression=[name]) as server:
            frames = ReceivedFrames()
            conn = flavoured_connection(
                flavour, server, f"compressors={name}", event_listeners=[frames]
            )
            future = flavour.go(conn.test.things.insert, [{"_id": 1}, {"_id": 2}])
            request = await server.receives_async("insert")
            assert request.compressed_with == name
            assert request.frame[24] == protocol.CompressorId[name]
            assert request.doc["documents"] == [{"_id": 1}, {"_id": 2}]
            request.ok(n=2)
            assert await future == [1, 2]
            assert frames.op_codes[-1] == protocol.OP_COMPRESSED  # the reply, read through it
            await got(conn.close())

    flavour.run(main)


def test_reply_to_a_compressed_request_is_compressed() -> None:
    with MockServer(compression=["zlib"]) as server:
        sock = raw_socket(server)
        ping = protocol.OpMsg({"ping": 1, "$db": "admin"})
        sock.sendall(protocol.encode(protocol.compress(ping, "zlib"), 5))
        request = server.receives("ping")
        assert request.compressed_with == "zlib"
        request.ok(pong=True)
        data = sock.recv(65536)
        header = protocol.unpack_header(data)
        assert header.op_code == protocol.OP_COMPRESSED and header.response_to == 5
        # decompressed with zlib itself, not the codec
        assert data[16:20] == (2013).to_bytes(4, "little") and data[24] == 2
        body = zlib.decompress(data[25:])
        assert body[5:] == protocol.encode(protocol.OpMsg({"ok": 1.0, "pong": True}), 0)[21:]
        sock.close()


def test_offered_compressors_answered_in_hello(flavour: Flavour) -> None:
    async def main() -> None:
        with MockServer(compression=["zlib"]) as server:
            conn = flavoured_connection(flavour, server, "compressors=zlib")
            sock = await flavour.steps(conn.pool.checkout())
            assert sock.compressor is not None and sock.compressor.name == "zlib"
            conn.pool.return_socket(sock)
            await got(conn.close())
        with MockServer() as server:  # no compression: the hello lists none in common
            conn = flavoured_connection(flavour, server, "compressors=zlib")
            sock = await flavour.steps(conn.pool.checkout())
            assert sock.compressor is None
            conn.pool.return_socket(sock)
            await got(conn.close())

    flavour.run(main)


def _checksummed_ping(request_id: int, corrupt: bool) -> bytes:
    frame = protocol.encode(
        protocol.OpMsg({"ping": 1, "$db": "admin"}, flags=protocol.MsgFlags.checksumPresent),
        request_id,
    )
    return frame[:-1] + bytes([frame[-1] ^ 0xFF]) if corrupt else frame


def test_bad_checksum_recorded() -> None:
    with MockServer(bad_checksums="record") as server:
        sock = raw_socket(server)
        sock.sendall(_checksummed_ping(1, corrupt=True))
        bad = server.receives("ping")
        assert bad.checksum_ok is False
        bad.ok()
        sock.sendall(_checksummed_ping(2, corrupt=False))
        good = server.receives("ping")
        assert good.checksum_ok is True
        good.ok()
        sock.sendall(protocol.encode(protocol.OpMsg({"ping": 1, "$db": "admin"}), 3))
        assert server.receives("ping").checksum_ok is None
        sock.close()


def test_bad_checksum_refused() -> None:
    with MockServer() as server:
        sock = raw_socket(server)
        sock.sendall(_checksummed_ping(1, corrupt=True))
        assert sock.recv(100) == b""  # hung up, as MongoDB does
        assert "checksum mismatch" in str(server.errors[0])
        assert server.requests[0].checksum_ok is False
        with pytest.raises(NoMatchingRequest):
            server.receives("ping", timeout=0.1)
        sock.close()


def test_checksummed_replies() -> None:
    with MockServer(checksums=True) as server:
        conn = connection(server)
        future = server.go(conn.admin.command, "ping")
        server.receives("ping").ok()
        assert future.result(TIMEOUT) == {"ok": 1.0}  # the client verified it
        conn.close()


def test_old_wire_client_gets_op_query_and_op_reply() -> None:
    with MockServer(max_wire_version=5) as server:
        conn = connection(server)
        future = server.go(conn.test.things.insert, {"_id": 1})
        request = server.receives("insert")
        assert request.opcode == protocol.OP_QUERY
        assert request.namespace == "test.$cmd" and request.database == "test"
        assert request.doc["documents"] == [{"_id": 1}]
        request.ok(n=1)  # an OP_REPLY
        assert future.result(TIMEOUT) == 1
        future = server.go(conn.test.command, "count", "things")
        server.receives("count").fail(59, "no such command")
        with pytest.raises(OperationFailure) as info:
            future.result(TIMEOUT)
        assert info.value.code == 59
        conn.close()
        hellos = [r for r in server.requests if r.command_name in ("isMaster", "ismaster", "hello")]
        assert hellos and hellos[0].opcode == protocol.OP_QUERY


def test_legacy_query_and_op_reply_fields() -> None:
    with MockServer() as server:
        sock = raw_socket(server)
        sock.sendall(protocol.encode(protocol.OpQuery("db.things", {"x": 1}), 9))
        request = server.receives(Matcher(opcode=protocol.OP_QUERY, database="db"))
        assert request.command_name is None and request.doc == {"x": 1}
        request.replies(op_reply([{"_id": 1}], cursor_id=77, starting_from=0))
        ((header, message),) = read_frames(sock, 1)
        assert header.response_to == 9
        assert message == protocol.OpReply([{"_id": 1}], cursor_id=77)
        sock.sendall(protocol.encode(protocol.OpInsert("db.things", [{"_id": 2}]), 10))
        insert = server.receives(Matcher(opcode=protocol.OP_INSERT))
        assert insert.doc == {"documents": [{"_id": 2}]}
        with pytest.raises(AssertionError, match="gets no reply"):
            insert.ok()
        sock.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: Any) -> Any:
    from certs import make_certs, openssl_available

    if not openssl_available():
        pytest.skip("openssl is not installed")
    return make_certs(str(tmp_path_factory.mktemp("mock-certs")))


def test_tls(certs: Any) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    with MockServer(tls=context) as server:
        server.autoresponds("ping")
        conn = Connection(f"{server.uri}/?tls=true&tlsCAFile={certs.ca}", auto_start_request=False)
        assert conn.admin.command("ping") == {"ok": 1.0}
        conn.close()
        with pymongo.MongoClient(
            server.uri, tls=True, tlsCAFile=certs.ca, serverSelectionTimeoutMS=5000
        ) as pm:
            assert pm.admin.command("ping")["ok"] == 1.0
        # a plaintext client is refused by the TLS handshake
        sock = raw_socket(server)
        sock.sendall(protocol.encode(protocol.OpMsg({"ping": 1, "$db": "admin"}), 1))
        assert sock.recv(100) == b""
        sock.close()


def test_matchers_and_receives_order(mock_server: MockServer) -> None:
    sock = raw_socket(mock_server)
    for i, body in enumerate(
        [
            {"find": "a", "filter": {"x": {"y": 1}}, "$db": "db1"},
            {"count": "b", "$db": "db2"},
            {"find": "c", "$db": "db2"},
        ]
    ):
        sock.sendall(protocol.encode(protocol.OpMsg(body, flags=2), i))  # moreToCome
    # the oldest matching request; others wait for later receives
    assert mock_server.receives(Matcher("find", database="db2")).doc["find"] == "c"
    assert mock_server.receives({"filter": {"x": {"y": 1}}, "limit": ABSENT}).doc["find"] == "a"
    with pytest.raises(NoMatchingRequest, match="count"):
        mock_server.receives("insert", timeout=0.1)
    request = mock_server.receives(lambda r: r.flags & protocol.MsgFlags.moreToCome)
    assert request.command_name == "count" and request.more_to_come
    with pytest.raises(AssertionError, match="moreToCome"):
        request.ok()
    assert not Matcher(flags=protocol.MsgFlags.exhaustAllowed).matches(request)
    assert request.sections[0] == (0, {"count": "b", "$db": "db2"})
    sock.close()


def test_autoresponders_newest_first_and_cancel(mock_server: MockServer) -> None:
    conn = connection(mock_server)
    mock_server.autoresponds("ping", ok(first=True))
    second = mock_server.autoresponds(
        "ping", lambda r: ok(db=r.database) if r.database == "admin" else None
    )
    assert conn.admin.command("ping") == {"ok": 1.0, "db": "admin"}
    assert conn.other.command("ping") == {"ok": 1.0, "first": True}  # the newer one passed
    second.cancel()
    assert conn.admin.command("ping") == {"ok": 1.0, "first": True}
    mock_server.autoresponds({"count": "things"}, fail(13, "unauthorized"))
    with pytest.raises(OperationFailure) as info:
        conn.test.command("count", "things")
    assert info.value.code == 13
    conn.close()


def test_hello_can_be_scripted_and_changed(mock_server: MockServer) -> None:
    mock_server.set_hello(maxWriteBatchSize=2)
    conn = connection(mock_server)
    sock = run(conn.pool.checkout())
    assert sock.max_write_batch_size == 2
    conn.pool.return_socket(sock)
    conn.close()
    with MockServer(auto_hello=False) as server:
        pm = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000, directConnection=True)
        future = server.go(pm.admin.command, "ping")
        hello = server.receives(lambda r: (r.command_name or "").lower() in ("hello", "ismaster"))
        hello.ok(isWritablePrimary=True, maxWireVersion=17, minWireVersion=0)
        server.autoresponds("hello", ok(isWritablePrimary=True, maxWireVersion=17))
        server.autoresponds("isMaster", ok(ismaster=True, maxWireVersion=17))
        server.receives("ping").ok()
        assert future.result(TIMEOUT) == {"ok": 1.0}
        pm.close()


def test_reply_frame_and_hangup_with_wireclient(mock_server: MockServer) -> None:
    conn = connection(mock_server)
    future = mock_server.go(conn.admin.command, "ping")
    request = mock_server.receives("ping")
    good = protocol.encode(protocol.OpMsg({"ok": 1.0}), 1, request.request_id)
    request.reply_frame(good[:12] + (2099).to_bytes(4, "little") + good[16:])  # bad opcode
    with pytest.raises(ProtocolError):
        future.result(TIMEOUT)
    future = mock_server.go(conn.admin.command, "ping")
    mock_server.receives("ping").hangup()
    with pytest.raises(AutoReconnect):
        future.result(TIMEOUT)
    future = mock_server.go(conn.admin.command, "ping")
    mock_server.receives("ping").replies(
        reply_frame(protocol.encode(protocol.OpMsg({"ok": 1.0}), 2, 0))
    )
    with pytest.raises(ProtocolError):  # responseTo 0 answers nothing this client sent
        future.result(TIMEOUT)
    conn.close()


def test_delay_before_a_reply(mock_server: MockServer) -> None:
    conn = connection(mock_server)
    mock_server.autoresponds("ping", ok().after(0.3))
    conn_slow = Connection(mock_server.uri + "/?socketTimeoutMS=100", auto_start_request=False)
    with pytest.raises(AutoReconnect):  # NetworkTimeout: the reply came too late
        conn_slow.admin.command("ping")
    assert conn.admin.command("ping") == {"ok": 1.0}
    conn.close()
    conn_slow.close()


def test_go_returns_the_very_exception(mock_server: MockServer) -> None:
    conn = connection(mock_server)
    future = mock_server.go(conn.test.things.insert, {"_id": 1})
    mock_server.receives("insert").ok(
        n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "dup"}]
    )
    with pytest.raises(OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 11000  # the attribute mockupdb.go() loses
    conn.close()


def test_routers_hello() -> None:
    with Routers(2) as routers:
        assert routers.uri == f"mongodb://{routers.hosts[0]},{routers.hosts[1]}"
        with pymongo.MongoClient(routers.uri, serverSelectionTimeoutMS=5000) as pm:
            routers[0].autoresponds("ping")
            routers[1].autoresponds("ping")
            assert pm.admin.command("ping")["ok"] == 1.0
            assert pm.topology_description.topology_type_name == "Sharded"


def test_replica_set_with_wireclient() -> None:
    from wireclient import ReplicaSetConnection
    from wireclient.mock import ReplicaSet

    with ReplicaSet(3, set_name="rs0") as rs:
        rsc = ReplicaSetConnection(rs.uri, replicaSet="rs0")
        future = rs.go(rsc.test.things.insert, {"_id": 1})
        rs[0].receives("insert").ok(n=1)
        assert future.result(TIMEOUT) == 1
        rs.step_down()
        assert rs.primary is None
        rs.elect(1)
        future = rs.go(rsc.test.things.insert, {"_id": 2})
        rs[0].receives("insert").fail(10107, "not primary")
        with pytest.raises(AutoReconnect):
            future.result(TIMEOUT)
        future = rs.go(rsc.test.things.insert, {"_id": 2})
        rs[1].receives("insert").ok(n=1)
        assert future.result(TIMEOUT) == 2
        rsc.close()


def _mock_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mock-")]


def test_close_leaves_no_thread_and_no_socket() -> None:
    before = set(_mock_threads())
    server = MockServer().start()
    conn = connection(server)
    future = server.go(conn.admin.command, "ping")
    server.receives("ping").ok()
    future.result(TIMEOUT)
    server.autoresponds("ping")
    idle = raw_socket(server)  # a client that pings once, then sends nothing
    idle.sendall(protocol.encode(protocol.OpMsg({"ping": 1, "$db": "admin"}), 1))
    assert read_frames(idle, 1)[0][1].body == {"ok": 1.0}
    assert server.connection_count >= 2
    assert set(_mock_threads()) - before
    server.close()
    assert set(_mock_threads()) - before == set()
    assert idle.recv(10) == b""  # its socket was closed by the server
    with pytest.raises(OSError):
        socket.create_connection(server.address, timeout=1)
    idle.close()
    conn.close()


def test_receives_async(mock_server: MockServer) -> None:
    import asyncio

    conn = connection(mock_server)

    async def script() -> Any:
        future = mock_server.go(conn.admin.command, "ping")
        request = await mock_server.receives_async("ping")
        request.ok(n=Int64(1))
        return await asyncio.wrap_future(future)

    assert asyncio.run(script()) == {"ok": 1.0, "n": 1}
    conn.close()
