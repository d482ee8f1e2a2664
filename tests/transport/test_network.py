"""The network layer against mockupdb: handshakes, old wire versions, and broken replies.

mockupdb is a scriptable wire-protocol server; it lets us send what no real server sends:
truncated frames, replies to the wrong request, garbage, silence.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any, Callable, Dict, Iterator

import bson
import pytest
from mockupdb import MockupDB, OpMsg, OpQuery

from wireclient import Connection
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ProtocolError,
)
from wireclient.transport import network
from wireclient.transport.blocking import run


def go(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """Run ``fn`` in a thread; calling the result joins it and returns or re-raises.

    (mockupdb's own ``go`` re-creates exceptions from their message, losing their fields.)
    """
    outcome: Dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result(timeout: float = 10) -> Any:
        thread.join(timeout)
        if thread.is_alive():
            raise AssertionError(f"{fn} did not finish in {timeout}s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    return result


def hello_reply(max_wire: int = 17, **extra: Any) -> Dict[str, Any]:
    reply = {
        "ok": 1,
        "isWritablePrimary": True,
        "ismaster": True,
        "maxWireVersion": max_wire,
        "minWireVersion": 0,
        "maxBsonObjectSize": 16777216,
        "maxMessageSizeBytes": 48000000,
        "maxWriteBatchSize": 100000,
        "connectionId": 7,
    }
    reply.update(extra)
    return reply


@pytest.fixture()
def mock() -> Iterator[MockupDB]:
    server = MockupDB(auto_ismaster=hello_reply())
    server.autoresponds("hello", hello_reply())
    server.run()
    yield server
    server.stop()


def connect(server: MockupDB, **kwargs: Any) -> Connection:
    host, port = server.address
    return Connection(host, port, auto_start_request=False, **kwargs)


def frame(op_code: int, body: bytes, response_to: int, request_id: int = 99) -> bytes:
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, op_code) + body


def op_msg_frame(doc: Dict[str, Any], response_to: int) -> bytes:
    return frame(2013, struct.pack("<I", 0) + b"\x00" + bson.encode(doc), response_to)


def test_handshake_uses_hello_over_op_query_and_records_limits(mock: MockupDB) -> None:
    conn = connect(mock)
    sock = run(conn.pool.checkout())
    assert sock.max_wire_version == 17 and sock.connection_id == 7
    conn.pool.return_socket(sock)
    conn.close()


def test_hello_unknown_falls_back_to_ismaster() -> None:
    server = MockupDB(auto_ismaster=hello_reply(max_wire=6))
    server.autoresponds("hello", {"ok": 0, "errmsg": "no such command: 'hello'", "code": 59})
    server.run()
    try:
        conn = connect(server)
        sock = run(conn.pool.checkout())
        assert sock.max_wire_version == 6
        conn.pool.return_socket(sock)
        conn.close()
    finally:
        server.stop()


def test_server_older_than_wire_4_is_refused() -> None:
    server = MockupDB(auto_ismaster=hello_reply(max_wire=3))
    server.autoresponds("hello", hello_reply(max_wire=3))
    server.run()
    try:
        with pytest.raises(ConfigurationError, match="maxWireVersion 3"):
            connect(server)
    finally:
        server.stop()


def test_monitoring_socket_accepts_a_server_outside_our_wire_range() -> None:
    server = MockupDB(auto_ismaster=hello_reply(max_wire=3))
    server.autoresponds("hello", hello_reply(max_wire=3, secondary=True))
    server.run()
    try:
        sock = run(network.connect(server.address, 5.0, 5.0, refuse_incompatible=False))
        try:
            assert sock.max_wire_version == 3 and sock.hello["secondary"] is True
            assert run(sock.run_hello())["maxWireVersion"] == 3  # later checks on the same socket
        finally:
            sock.close()
        with pytest.raises(ConfigurationError, match="maxWireVersion 3"):
            run(network.connect(server.address, 5.0, 5.0))  # any other socket is refused
    finally:
        server.stop()


def test_commands_use_op_msg_on_wire_6_and_later(mock: MockupDB) -> None:
    conn = connect(mock)
    future = go(conn.test.command, "ping")
    request = mock.receives(OpMsg("ping"))
    assert request.doc["$db"] == "test"
    request.ok()
    assert future()["ok"] == 1
    conn.close()


def test_commands_use_op_query_on_wire_5() -> None:
    server = MockupDB(auto_ismaster=hello_reply(max_wire=5))
    server.autoresponds("hello", hello_reply(max_wire=5))
    server.run()
    try:
        conn = connect(server)
        coll = conn.test.things
        future = go(coll.insert, [{"_id": 1}, {"_id": 2}])
        request = server.receives()
        assert isinstance(request, OpQuery) and not isinstance(request, OpMsg)
        assert request.namespace == "test"  # mockupdb strips the ".$cmd" of a command
        assert request.doc["insert"] == "things"
        assert [d["_id"] for d in request.doc["documents"]] == [1, 2]
        request.ok(n=2)
        assert future() == [1, 2]
        conn.close()
    finally:
        server.stop()


def test_unacknowledged_write_sets_more_to_come_and_reads_nothing(mock: MockupDB) -> None:
    conn = connect(mock)
    conn.test.things.update({"a": 1}, {"$set": {"b": 1}}, safe=False)  # returns without a reply
    request = mock.receives(OpMsg("update", "things"))
    assert request.flags & 2  # moreToCome
    assert request.doc["writeConcern"] == {"w": 0}
    conn.close()


def _reply_then_check_next_op_works(server: MockupDB, conn: Connection) -> None:
    future = go(conn.test.command, "ping")
    server.receives(OpMsg("ping")).ok()
    assert future()["ok"] == 1


def test_server_hangs_up_mid_reply(mock: MockupDB) -> None:
    conn = connect(mock)
    future = go(conn.test.command, "ping")
    request = mock.receives(OpMsg("ping"))
    whole = op_msg_frame({"ok": 1}, request.request_id)
    request._client.sendall(whole[:20])  # part of the reply, then the socket closes
    request.hangup()
    with pytest.raises(AutoReconnect):
        future()
    assert conn.pool.open_count == 0  # the half-read socket was dropped
    _reply_then_check_next_op_works(mock, conn)
    conn.close()


def test_reply_to_the_wrong_request_is_a_protocol_error(mock: MockupDB) -> None:
    conn = connect(mock)
    future = go(conn.test.command, "ping")
    request = mock.receives(OpMsg("ping"))
    request._client.sendall(op_msg_frame({"ok": 1}, request.request_id + 1000))
    with pytest.raises(ProtocolError, match="responseTo"):
        future()
    assert conn.pool.open_count == 0
    _reply_then_check_next_op_works(mock, conn)
    conn.close()


@pytest.mark.parametrize(
    "garbage",
    [
        "bad section kind",
        "document overruns frame",
        "huge length",
        "tiny length",
        "unknown opcode",
    ],
)
def test_garbage_replies_are_protocol_errors(mock: MockupDB, garbage: str) -> None:
    conn = connect(mock)
    future = go(conn.test.command, "ping")
    request = mock.receives(OpMsg("ping"))
    rid = request.request_id
    doc = bson.encode({"ok": 1})
    data = {
        "bad section kind": frame(2013, struct.pack("<I", 0) + b"\x07" + doc, rid),
        "document overruns frame": frame(
            2013, struct.pack("<I", 0) + b"\x00" + struct.pack("<i", 500) + doc[4:], rid
        ),
        "huge length": struct.pack("<iiii", 2**31 - 1, 1, rid, 2013),
        "tiny length": struct.pack("<iiii", 8, 1, rid, 2013),
        "unknown opcode": frame(4242, b"\x00" * 8, rid),
    }[garbage]
    request._client.sendall(data)
    with pytest.raises(ProtocolError):
        future()
    assert conn.pool.open_count == 0
    _reply_then_check_next_op_works(mock, conn)
    conn.close()


def test_silent_server_times_out(mock: MockupDB) -> None:
    conn = connect(mock, socketTimeoutMS=200)
    future = go(conn.test.command, "ping")
    mock.receives(OpMsg("ping"))  # and never answer
    with pytest.raises(NetworkTimeout):
        future()
    assert conn.pool.open_count == 0
    conn.close()


def test_error_replies_are_typed(mock: MockupDB) -> None:
    conn = connect(mock)
    future = go(conn.test.command, "ping")
    mock.receives(OpMsg("ping")).command_err(code=10107, errmsg="not primary")
    with pytest.raises(NotPrimaryError):
        future()
    future = go(conn.test.command, "ping")
    mock.receives(OpMsg("ping")).command_err(code=2, errmsg="bad value")
    with pytest.raises(OperationFailure) as info:
        future()
    assert info.value.code == 2, info.value.details
    assert not isinstance(info.value, NotPrimaryError)
    assert conn.pool.open_count == 1  # command errors leave the socket in the pool
    conn.close()


@pytest.mark.parametrize(
    "reply",
    [
        {"ok": 0, "code": 10107, "errmsg": "x"},
        {"ok": 0, "code": 91, "errmsg": "shutdown in progress"},
        {"ok": 0, "errmsg": "not master"},  # old servers sent no code
        {"ok": 0, "errmsg": "not primary and secondaryOk=false"},
        {"ok": 0, "errmsg": "node is recovering"},
    ],
)
def test_not_primary_replies_by_code_or_message(reply: Dict[str, Any]) -> None:
    from wireclient.rules.command import check_reply

    with pytest.raises(NotPrimaryError):
        check_reply(reply)


def test_write_errors_and_write_concern_errors(mock: MockupDB) -> None:
    from wireclient.errors import DuplicateKeyError, WriteConcernError

    conn = connect(mock)
    coll = conn.test.things
    future = go(coll.insert, {"_id": 1})
    mock.receives(OpMsg("insert", "things")).ok(
        n=0, writeErrors=[{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}]
    )
    with pytest.raises(DuplicateKeyError):
        future()
    future = go(coll.insert, {"_id": 2}, w=2)
    request = mock.receives(OpMsg("insert", "things"))
    assert request.doc["writeConcern"] == {"w": 2}
    request.ok(n=1, writeConcernError={"code": 64, "errmsg": "waiting for replication timed out"})
    with pytest.raises(WriteConcernError):
        future()
    conn.close()


def test_unix_domain_socket(tmp_path: Any) -> None:
    path = str(tmp_path / "mockupdb-test.sock")
    server = MockupDB(uds_path=path, auto_ismaster=hello_reply())
    server.autoresponds("hello", hello_reply())
    server.autoresponds("ping", {"ok": 1, "via": "unix"})
    server.run()
    try:
        from urllib.parse import quote

        conn = Connection(f"mongodb://{quote(path, safe='')}/", auto_start_request=False)
        assert conn.admin.command("ping")["via"] == "unix"
        conn.close()
    finally:
        server.stop()


def test_keyboard_interrupt_between_send_and_reply_closes_socket(server: Any) -> None:
    """Against the real server (mockupdb cannot match a request whose client hung up)."""
    conn = Connection(server.uri, auto_start_request=False)
    coll = conn.test_network.interrupted
    coll.drop()
    sock = run(conn.pool.checkout())
    conn.pool.return_socket(sock)
    real = sock.sock

    class InterruptedRead:
        """The real socket, except that reading is interrupted (as by Ctrl-C)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def recv_into(self, *args: Any) -> int:
            raise KeyboardInterrupt

        def recv(self, *args: Any) -> bytes:
            raise KeyboardInterrupt

    sock.sock = InterruptedRead()  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        coll.insert({"_id": "sent"})
    assert sock.closed and conn.pool.open_count == 0  # never back in the pool half-read
    # The write did go out, and a new socket works. The server may still be
    # handling the hung-up connection's insert when our next socket asks, so
    # give it a moment rather than racing it.
    deadline = time.monotonic() + 10
    while coll.find_one("sent") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert coll.find_one("sent") == {"_id": "sent"}
    conn.close()
