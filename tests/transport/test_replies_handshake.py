"""Malformed and refused handshakes, SASL conversations and monitor checks, against mockupdb.

The handshake's ``hello`` reply goes out as a raw OP_REPLY built here, so any field can be
broken, ``ok`` included. Each case checks the exception (``ProtocolError`` naming the field,
or the refusal's own type), that the socket was closed at once (``no_leaked_socket``: no
socket left for the garbage collector), and that once the server behaves the next operation
works. The replica-set monitor meets malformed hellos both on its open monitoring socket and
on the handshake of a new one: the member becomes Unknown with the error's message and the
monitor thread lives on.
"""

from __future__ import annotations

import re
import struct
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import bson
import pytest
from bson import Int64, ObjectId
from leak_check import no_leaked_socket
from mock_replica_set import MockReplicaSet
from mock_server import TIMEOUT, MockServer, hello_reply
from reply_edits import DELETE, changed, send_raw
from test_auth import ScriptedServer, _forge_signature

from wireclient import Connection, ReplicaSetConnection
from wireclient.engine.monitor import _describe
from wireclient.errors import (
    AuthenticationError,
    AuthenticationProtocolError,
    AutoReconnect,
    ConfigurationError,
    NetworkTimeout,
    OperationFailure,
    ProtocolError,
)
from wireclient.sdam.server_rules import ServerType
from wireclient.transport.blocking import run
from wireclient.transport.steps import done

OID = ObjectId()
PASSWORD = "s3cr3t-Pw"


class HandshakeServer(MockServer):
    """A MockServer whose hello reply is sent raw (``ok`` is not added), or replaced by
    ``answer(request)`` (hang up, stay silent...)."""

    def __init__(self) -> None:
        self.answer: Optional[Callable[[Any], Any]] = None
        super().__init__()

    def _answer_hello(self, request: Any) -> bool:
        if str(request.command_name).lower() not in ("hello", "ismaster"):
            return False
        if self.answer is not None:
            self.answer(request)
            return True
        assert request.opcode == 2004, "a handshake hello is an OP_QUERY"
        body = struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(self.hello)
        header = struct.pack("<iiii", 16 + len(body), 4243, request.request_id, 1)
        request._client.sendall(header + body)
        return True

    def reset(self, **fields: Any) -> None:
        self.answer = None
        self.hello = hello_reply(**fields)


@pytest.fixture(scope="module")
def server() -> Iterator[HandshakeServer]:
    with HandshakeServer() as hs:
        yield hs


@pytest.fixture()
def hs(server: HandshakeServer) -> HandshakeServer:
    server.reset()
    return server


def fails_cleanly(hs: HandshakeServer, conn: Connection, error: type) -> BaseException:
    """Run an operation whose handshake fails with ``error``: no socket is left open."""
    with no_leaked_socket():
        future = hs.run(conn.test.command, "ping")
        with pytest.raises(error) as info:
            future.result(TIMEOUT)
        raised = info.value
        del info, future
    assert conn.pool.open_count == 0
    return raised


def next_ping_works(hs: HandshakeServer, conn: Connection, db: str = "test") -> None:
    future = hs.run(conn[db].command, "ping")
    hs.receives("ping", db=db).reply()
    assert future.result(TIMEOUT) == {"ok": 1}
    assert conn.pool.open_count == 1


def names_field(message: str, field: str) -> bool:
    return re.search(rf"field '{re.escape(field)}(\.[^']+)?' ", message) is not None


FLAGS = ("isWritablePrimary", "ismaster", "secondary", "arbiterOnly", "hidden", "passive")
HELLO: List[Tuple[str, Any]] = [
    *[("ok", v) for v in (DELETE, "1", True, None)],
    *[("maxWireVersion", v) for v in ("seventeen", True, -1, Int64(2**31), 17.0, None)],
    *[("minWireVersion", v) for v in ("0", False, -1, 18, Int64(2**40))],
    *[("maxBsonObjectSize", v) for v in ("16MB", True, 0, -1, Int64(2**31), 16777216.0)],
    *[("maxMessageSizeBytes", v) for v in ("48MB", True, 15, 0, -1, Int64(2**31), None)],
    *[("maxWriteBatchSize", v) for v in ("1000", True, 0, -5, Int64(2**40), 1e5)],
    *[("connectionId", v) for v in ("7", 7.0, True, None)],
    *[("setName", v) for v in (5, None, ["rs"])],
    *[("hosts", v) for v in ("a:1", [1], ["a:notaport"], {"a": 1}, None)],
    *[("passives", v) for v in (["b:99999"], "b:1")],
    *[("arbiters", v) for v in ("c:1", [None])],
    *[("primary", v) for v in (5, "h:0", ["a:1"])],
    *[("me", v) for v in (None, "[::1")],
    *[("tags", v) for v in ("dc", {"dc": 1}, ["dc"])],
    *[("electionId", v) for v in ("7fffffff0000000000000001", 5, None)],
    *[("setVersion", v) for v in ("1", True, 1.5)],
    ("topologyVersion", "x"),
    ("topologyVersion", {"processId": "p", "counter": Int64(1)}),
    ("topologyVersion", {"processId": OID, "counter": "1"}),
    ("topologyVersion", {"counter": Int64(1)}),
    ("topologyVersion", {"processId": OID}),
    ("topologyVersion", {"processId": OID, "counter": -1}),
    *[(flag, v) for flag in FLAGS for v in ("yes", 1)],
    ("isreplicaset", 1),
    ("helloOk", "true"),
    *[("saslSupportedMechs", v) for v in ("SCRAM-SHA-256", [1], None)],
    ("msg", 1),
]


def stable(value: Any) -> str:
    """A test id that is the same in every process (pytest-xdist compares the workers'
    collections): an ObjectId made at import is shown without its random digits."""
    return re.sub(r"ObjectId\('[0-9a-f]{24}'\)", "ObjectId", repr(value))


@pytest.mark.parametrize(
    "field, value", HELLO, ids=[f"{f}-{'missing' if v is DELETE else stable(v)}" for f, v in HELLO]
)
def test_malformed_hello_fails_the_handshake_and_closes_its_socket(
    hs: HandshakeServer, field: str, value: Any
) -> None:
    hs.hello = changed(hello_reply(), field, value)
    conn = hs.connect(_connect=False)
    try:
        error = fails_cleanly(hs, conn, ProtocolError)
        assert isinstance(error, ProtocolError) and error.side == "remote"
        assert names_field(str(error), field), error
        assert f"hello reply from 127.0.0.1:{hs.address[1]}" in str(error)
        hs.reset()
        next_ping_works(hs, conn)
    finally:
        conn.close()


def test_a_good_raw_hello_sets_the_limits(hs: HandshakeServer) -> None:
    hs.reset(maxWriteBatchSize=10, maxBsonObjectSize=1000, connectionId=Int64(2**40))
    conn = hs.connect(_connect=False)
    try:
        next_ping_works(hs, conn)
        sock = run(conn.pool.checkout())
        assert (sock.max_write_batch_size, sock.max_bson_size) == (10, 1000)
        assert sock.connection_id == 2**40 and sock.max_message_size == 48_000_000
        conn.pool.return_socket(sock)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"maxWireVersion": 3}, "maxWireVersion 3"),
        ({"minWireVersion": 26, "maxWireVersion": 30}, "minWireVersion 26"),
    ],
)
def test_wire_version_out_of_range_is_refused_and_closes_the_socket(
    hs: HandshakeServer, fields: Dict[str, Any], message: str
) -> None:
    hs.reset(**fields)
    conn = hs.connect(_connect=False)
    try:
        assert message in str(fails_cleanly(hs, conn, ConfigurationError))
        hs.reset()
        next_ping_works(hs, conn)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "refusal",
    [
        {"ok": 0.0, "code": 8000, "errmsg": "hello refused"},
        {"ok": 0, "errmsg": "hello refused"},  # no code: isMaster is tried, and refuses too
    ],
)
def test_refused_hello_closes_the_socket(hs: HandshakeServer, refusal: Dict[str, Any]) -> None:
    hs.hello = refusal
    conn = hs.connect(_connect=False)
    try:
        error = fails_cleanly(hs, conn, OperationFailure)
        assert "hello refused" in str(error)
        hs.reset()
        next_ping_works(hs, conn)
    finally:
        conn.close()


def _half_a_reply_then_hang_up(request: Any) -> None:
    request._client.sendall(struct.pack("<iiii", 200, 1, request.request_id, 1) + b"\0" * 10)
    request.hangup()


@pytest.mark.parametrize(
    "answer, error",
    [
        (lambda request: request.hangup(), AutoReconnect),
        (_half_a_reply_then_hang_up, AutoReconnect),
        (lambda request: None, NetworkTimeout),  # silence: connectTimeoutMS
    ],
    ids=["hang up", "hang up mid-reply", "silent"],
)
def test_server_that_hangs_up_or_stays_silent_during_the_handshake(
    hs: HandshakeServer, answer: Callable[[Any], Any], error: type
) -> None:
    hs.answer = answer
    # Only silence is meant to time out; a hang-up must not race the timeout, and the next
    # ping's handshake must beat it too: 1 s, not less, on a busy machine.
    timeout_ms = 1000 if error is NetworkTimeout else 30000
    conn = hs.connect(_connect=False, connectTimeoutMS=timeout_ms)
    try:
        started = time.monotonic()
        fails_cleanly(hs, conn, error)
        if error is NetworkTimeout:
            assert time.monotonic() - started >= 1.0  # not before connectTimeoutMS
        hs.reset()
        next_ping_works(hs, conn)
    finally:
        conn.close()


# -- SASL replies -------------------------------------------------------------------------

SASL: List[Tuple[str, Dict[str, Any], str]] = [
    *[("start", {"conversationId": v}, "conversationId") for v in (DELETE, "1", True, None, 1.5)],
    *[("start", {"payload": v}, "payload") for v in (DELETE, None, 5, "not base64!", {"p": 1})],
    *[("start", {"done": v}, "done") for v in (DELETE, "no", 0, None)],
    ("start", {"ok": "1"}, "ok"),
    ("start", {"ok": DELETE}, "ok"),
    ("start", {"ok": 0, "code": "18", "errmsg": "no"}, "code"),
    ("start", {"ok": 0, "code": 18, "errmsg": 5}, "errmsg"),
    *[("continue", {"conversationId": v}, "conversationId") for v in (2, DELETE, "1")],
    *[("continue", {"payload": v}, "payload") for v in (5, DELETE, [b"v="])],
    *[("continue", {"done": v}, "done") for v in (1, "true", DELETE)],
]
STEPS = ("start", "continue")


def _tamper(step: str, changes: Dict[str, Any]) -> Callable[[str, Dict[str, Any]], Any]:
    def tamper(at: str, reply: Dict[str, Any]) -> Dict[str, Any]:
        if at != step:
            return reply
        for name, value in changes.items():
            reply = changed(reply, name, value)
        return reply

    return tamper


def converse(hs: HandshakeServer, brain: ScriptedServer, steps: int) -> None:
    """Answer the client's first ``steps`` SASL commands as ``brain`` says (raw OP_MSG)."""
    for name in ("saslStart", "saslContinue")[:steps]:
        cmd = hs.receives(name, db="admin")
        send_raw(cmd, brain.answer("admin", cmd.body))


def authenticated_ping_works(hs: HandshakeServer, conn: Connection) -> None:
    future = hs.run(conn.admin.command, "ping")
    converse(hs, ScriptedServer("alice", PASSWORD), 2)
    hs.receives("ping", db="admin").reply()
    assert future.result(TIMEOUT) == {"ok": 1}
    assert conn.pool.open_count == 1


@pytest.fixture()
def scram(hs: HandshakeServer) -> Iterator[Connection]:
    hs.reset(saslSupportedMechs=["SCRAM-SHA-256"])
    conn = hs.connect(f"mongodb://alice:{PASSWORD}@127.0.0.1:{hs.address[1]}/", _connect=False)
    yield conn
    conn.close()


@pytest.mark.parametrize(
    "step, changes, field",
    SASL,
    ids=[f"{s}-{f}-{'missing' if c[f] is DELETE else repr(c[f])}" for s, c, f in SASL],
)
def test_malformed_sasl_reply_fails_authentication_and_closes_the_socket(
    hs: HandshakeServer, scram: Connection, step: str, changes: Dict[str, Any], field: str
) -> None:
    with no_leaked_socket():
        future = hs.run(scram.admin.command, "ping")
        brain = ScriptedServer("alice", PASSWORD, tamper=_tamper(step, changes))
        converse(hs, brain, STEPS.index(step) + 1)
        with pytest.raises(ProtocolError) as info:
            future.result(TIMEOUT)
        error = info.value
        assert isinstance(error, AuthenticationProtocolError)
        assert isinstance(error, AuthenticationError) and error.side == "remote"
        message = str(error)
        assert names_field(message, field), message
        command = "saslStart" if step == "start" else "saslContinue"
        assert f"{command} reply from 127.0.0.1:{hs.address[1]}" in message
        assert "user 'alice'" in message and PASSWORD not in message + repr(error.details)
        del info, error, future
    assert scram.pool.open_count == 0
    authenticated_ping_works(hs, scram)


def test_bad_server_signature_closes_the_socket(hs: HandshakeServer, scram: Connection) -> None:
    with no_leaked_socket():
        future = hs.run(scram.admin.command, "ping")
        converse(hs, ScriptedServer("alice", PASSWORD, tamper=_forge_signature), 2)
        with pytest.raises(AuthenticationError, match="signature is wrong") as info:
            future.result(TIMEOUT)
        assert not isinstance(info.value, ProtocolError)  # well-formed, but a forgery
        del info, future
    assert scram.pool.open_count == 0
    authenticated_ping_works(hs, scram)


def test_wrong_password_reply_closes_the_socket(hs: HandshakeServer, scram: Connection) -> None:
    with no_leaked_socket():
        future = hs.run(scram.admin.command, "ping")
        converse(hs, ScriptedServer("alice", "another password"), 2)
        with pytest.raises(AuthenticationError) as info:
            future.result(TIMEOUT)
        assert info.value.code == 18 and not isinstance(info.value, ProtocolError)
        del info, future
    assert scram.pool.open_count == 0
    authenticated_ping_works(hs, scram)


# -- the replica-set monitor --------------------------------------------------------------

MONITOR: List[Tuple[str, Any]] = [
    ("hosts", "a:1"),
    ("setName", 5),
    ("topologyVersion", {"processId": "p", "counter": Int64(1)}),
    ("electionId", "e"),
    ("setVersion", "2"),
    ("maxWireVersion", "seventeen"),
    ("secondary", "yes"),
    ("tags", {"dc": 1}),
    ("me", "h:0"),
    ("ok", None),
]


@pytest.mark.parametrize("field, value", MONITOR)
def test_member_with_a_malformed_hello_becomes_unknown_and_the_monitor_lives_on(
    rs: MockReplicaSet, field: str, value: Any
) -> None:
    address = rs[1].address
    with ReplicaSetConnection(
        rs.uri, heartbeatFrequencyMS=60_000, connectTimeoutMS=10000, serverSelectionTimeoutMS=30000
    ) as c:
        # rounds asked for may follow each other at once here (not 0.5 s apart, the spec's
        # minimum that the URI cannot lower): the four rounds below cost no sleeping
        c.monitor.min_heartbeat_frequency = 0.0
        assert c.monitor.wait_for_check(30)
        assert c.view.members[address].server_type is ServerType.SECONDARY
        monitoring = c._executor.selector._checker._sockets[address]  # type: ignore[attr-defined]
        rs[1].extra = {field: value}
        for _ in range(2):  # on the open monitoring socket, then on a new one's handshake
            assert c.monitor.wait_for_check(30)
            member = c.view.members[address]
            assert member.server_type is ServerType.UNKNOWN
            assert names_field(member.error or "", field), member.error
            assert "hello reply from" in (member.error or "")
            assert monitoring.closed  # the socket that heard it is not used again
            assert c.monitor.is_alive()
        rs[1].extra = {}
        assert c.monitor.wait_for_check(30)
        assert c.view.members[address].server_type is ServerType.SECONDARY
        assert c.primary == rs[0].address


def test_describe_turns_an_unparsable_hello_into_unknown() -> None:
    """``from_reply`` raising must not escape the monitor's check (it would end its thread)."""
    address = ("a", 1)
    described = run(_describe(lambda a: done(({"ok": 1, "hosts": 5}, 0.01)), address))
    assert described.server_type is ServerType.UNKNOWN
    assert "field 'hosts' must be an array" in (described.error or "")
