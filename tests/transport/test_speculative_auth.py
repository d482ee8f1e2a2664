"""Speculative authentication (the handshake spec): the first SCRAM step rides in ``hello``.

SecantusDB answers ``speculativeAuthenticate``, so the round trips of a new authenticated
socket are counted against it, with and without speculation. mockupdb plays a server that
ignores it, and one that answers it through a small server-side SCRAM written here (the
peer's side: it checks the client's proof and signs its own), so the client's messages are
verified, not just accepted.

The connection tests run on both clients (the ``flavour`` fixture, ``flavoured.py``): the
asyncio client's handshake and SCRAM are the same steps, run by its driver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from typing import Any, Dict, Iterator, List, Optional

import pytest
from flavoured import FLAVOURS, Flavour, got, off_loop
from mock_server import MockServer
from servers import SecantusServer, secantus_with_auth

from wireclient import AsyncConnection, Connection
from wireclient.errors import AuthenticationError, AuthenticationProtocolError
from wireclient.monitoring import FrameListener
from wireclient.transport import auth
from wireclient.transport.auth import (
    SCRAM_SHA_1,
    SCRAM_SHA_256,
    make_credentials,
    mongo_password_digest,
)
from wireclient.transport.saslprep import saslprep

OP_QUERY, OP_MSG = 2004, 2013


class FrameCounter(FrameListener):
    """Counts the frames each socket (by its local port) sends: one per round trip."""

    def __init__(self) -> None:
        self.by_socket: Dict[Any, List[bytes]] = {}

    def sent(self, event: Any) -> None:
        self.by_socket.setdefault(event.local_address, []).append(event.data)

    def round_trips(self) -> List[int]:
        return [len(frames) for frames in self.by_socket.values()]


def command_names(frames: List[bytes]) -> List[str]:
    from wireclient.transport.compressors import command_name

    return [str(command_name(frame)) for frame in frames]


# -- SecantusDB with --auth ----------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server() -> Iterator[SecantusServer]:
    def setup(conn: Connection) -> None:
        both = [SCRAM_SHA_1, SCRAM_SHA_256]
        admin = conn.admin
        admin.command("createUser", "alice", pwd="alice-pw", roles=["root"], mechanisms=both)
        admin.command("createUser", "old", pwd="old-pw", roles=["root"], mechanisms=[SCRAM_SHA_1])
        conn.appdb.command("createUser", "bob", pwd="bob-pw", roles=["readWrite"], mechanisms=both)

    with secantus_with_auth(setup, prefix="wireclient-spec-auth-") as server:
        yield server


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def uri(server: SecantusServer, user: str, password: str, query: str = "") -> str:
    return f"mongodb://{user}:{password}@{server.address}/{query}"


async def connect(flavour: Flavour, target: str, **options: Any) -> Any:
    """A connected ``Connection`` or ``AsyncConnection`` (without auto_start_request)."""
    options.setdefault("auto_start_request", False)
    return await flavour.open(Connection, AsyncConnection, target, **options)


def new_socket_round_trips(flavour: Flavour, target: str) -> List[str]:
    """The commands a new authenticated socket sends before its first operation."""
    counter = FrameCounter()

    async def main() -> None:
        conn = await connect(flavour, target, event_listeners=[counter])
        try:
            assert (await got(conn.admin.command("ping")))["ok"] == 1
        finally:
            await got(conn.close())

    flavour.run(main)
    ((frames),) = counter.by_socket.values()  # one socket
    return command_names(frames)[:-1]  # without the ping


@pytest.mark.parametrize(
    "query", ["", "?authMechanism=SCRAM-SHA-256", "?authMechanism=SCRAM-SHA-1"]
)
def test_a_new_socket_costs_one_round_trip_fewer(
    auth_server: SecantusServer, monkeypatch: pytest.MonkeyPatch, query: str, flavour: Flavour
) -> None:
    target = uri(auth_server, "alice", "alice-pw", query)
    assert new_socket_round_trips(flavour, target) == ["hello", "saslContinue"]
    monkeypatch.setattr(auth, "speculate", lambda credentials: None)
    assert new_socket_round_trips(flavour, target) == ["hello", "saslStart", "saslContinue"]


def test_the_hello_carries_the_first_step_with_its_database(
    auth_server: SecantusServer, flavour: Flavour
) -> None:
    counter = FrameCounter()

    async def main() -> None:
        conn = await connect(
            flavour, uri(auth_server, "bob", "bob-pw", "appdb"), event_listeners=[counter]
        )
        try:
            assert await got(conn.appdb.things.find_one()) is None
        finally:
            await got(conn.close())

    flavour.run(main)
    import bson

    ((frames),) = counter.by_socket.values()
    hello_frame = frames[0]
    assert struct.unpack_from("<i", hello_frame, 12)[0] == OP_QUERY
    query = bson.decode(hello_frame[20 + len(b"admin.$cmd\x00") + 8 :])
    assert query["saslSupportedMechs"] == "appdb.bob"
    speculative = query["speculativeAuthenticate"]
    assert speculative["saslStart"] == 1 and speculative["db"] == "appdb"
    assert speculative["mechanism"] == SCRAM_SHA_256  # negotiating: SCRAM-SHA-256 (the spec)
    assert speculative["options"] == {"skipEmptyExchange": True}
    assert bytes(speculative["payload"]).startswith(b"n,,n=bob,r=")


def test_a_sha1_only_user_falls_back_to_the_negotiated_mechanism(
    auth_server: SecantusServer, flavour: Flavour
) -> None:
    """The speculation is SCRAM-SHA-256, but the user has SCRAM-SHA-1 only: the ordinary
    conversation runs with SCRAM-SHA-1 (whatever the server answered to the speculation)."""
    assert new_socket_round_trips(flavour, uri(auth_server, "old", "old-pw")) == [
        "hello",
        "saslStart",
        "saslContinue",
    ]


def test_a_wrong_password_still_fails(auth_server: SecantusServer, flavour: Flavour) -> None:
    counter = FrameCounter()

    async def main() -> None:
        conn = flavour.make(
            Connection,
            AsyncConnection,
            uri(auth_server, "alice", "wrong"),
            auto_start_request=False,
            event_listeners=[counter],
        )
        try:
            with pytest.raises(AuthenticationError, match="alice"):
                await got(conn.connect())
            assert conn.pool.open_count == 0
        finally:
            await got(conn.close())

    flavour.run(main)
    ((frames),) = counter.by_socket.values()
    assert command_names(frames) == ["hello", "saslContinue"]  # refused at the proof


def test_pool_sockets_all_authenticate_speculatively(
    auth_server: SecantusServer, flavour: Flavour
) -> None:
    counter = FrameCounter()

    async def main() -> None:
        conn = await connect(
            flavour, uri(auth_server, "alice", "alice-pw"), event_listeners=[counter]
        )
        try:
            socks = [await flavour.steps(conn.pool.checkout()) for _ in range(3)]
            for sock in socks:
                assert (await flavour.steps(sock.command("admin", {"ping": 1})))["ok"] == 1
                conn.pool.return_socket(sock)
        finally:
            await got(conn.close())

    flavour.run(main)
    assert len(counter.by_socket) >= 3
    for frames in counter.by_socket.values():
        assert command_names(frames)[:2] == ["hello", "saslContinue"]


# -- mockupdb: a server that ignores it, and one that answers it -----------------------------


class ScramPeer:
    """The server side of one SCRAM conversation (RFC 5802), for the mock server."""

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        self.digest = "sha1" if mechanism == SCRAM_SHA_1 else "sha256"
        secret = (
            mongo_password_digest(username, password).encode()
            if mechanism == SCRAM_SHA_1
            else saslprep(password).encode()
        )
        self.salt = b"peer-salt-123456"
        salted = hashlib.pbkdf2_hmac(self.digest, secret, self.salt, 4096)
        client_key = hmac.new(salted, b"Client Key", self.digest).digest()
        self.stored_key = hashlib.new(self.digest, client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", self.digest).digest()
        self.proof_ok: Optional[bool] = None

    def first(self, client_first: bytes) -> bytes:
        assert client_first.startswith(b"n,,n=")
        self.client_first_bare = client_first[3:]
        nonce = self.client_first_bare.split(b",r=")[1]
        salt = base64.b64encode(self.salt)
        self.server_first = b"r=" + nonce + b"PEER,s=" + salt + b",i=4096"
        return self.server_first

    def final(self, client_final: bytes) -> Optional[bytes]:
        without_proof, _, proof = client_final.rpartition(b",p=")
        auth_message = b",".join((self.client_first_bare, self.server_first, without_proof))
        signature = hmac.new(self.stored_key, auth_message, self.digest).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        self.proof_ok = hashlib.new(self.digest, client_key).digest() == self.stored_key
        if not self.proof_ok:
            return None
        server_signature = hmac.new(self.server_key, auth_message, self.digest).digest()
        return b"v=" + base64.b64encode(server_signature)


class SpeculatingServer(MockServer):
    """Answers ``speculativeAuthenticate`` in the hello reply (unless ``answer`` is False,
    or ``answer`` is a document to send instead)."""

    def __init__(self, peer: ScramPeer, answer: Any = True) -> None:
        super().__init__(saslSupportedMechs=[SCRAM_SHA_256, SCRAM_SHA_1])
        self.peer = peer
        self.answer = answer

    def _answer_hello(self, request: Any) -> bool:
        if str(request.command_name).lower() not in ("hello", "ismaster"):
            return False
        speculative = request.doc.get("speculativeAuthenticate")
        if speculative is None or self.answer is False:
            return super()._answer_hello(request)
        from mock_server import Received

        self.hellos.append(Received(request))
        if self.answer is True:
            payload = self.peer.first(bytes(speculative["payload"]))
            answer: Any = {"conversationId": 7, "done": False, "payload": payload}
        else:
            answer = self.answer
        return bool(request.replies({**self.hello, "speculativeAuthenticate": answer}))


def _finish_conversation(server: MockServer, peer: ScramPeer, start: bool) -> None:
    if start:
        got = server.receives("saslStart", db="admin")
        assert got.body["mechanism"] == SCRAM_SHA_256
        got.reply(conversationId=3, done=False, payload=peer.first(bytes(got.body["payload"])))
        conversation = 3
    else:
        conversation = 7
    got = server.receives("saslContinue", db="admin")
    assert got.body["conversationId"] == conversation
    final = peer.final(bytes(got.body["payload"]))
    assert final is not None, "the client's proof is wrong"
    got.reply(conversationId=conversation, done=True, payload=final)


def mock_connect(flavour: Flavour, server: MockServer) -> Any:
    """Start connecting to the mock as alice (the test answers the conversation): the
    future of the connection."""
    target = f"mongodb://alice:pw@127.0.0.1:{server.address[1]}"
    return flavour.go(connect, flavour, target, socketTimeoutMS=5000, connectTimeoutMS=5000)


def test_mock_server_answering_it_gets_a_correct_proof_in_saslcontinue(flavour: Flavour) -> None:
    peer = ScramPeer(SCRAM_SHA_256, "alice", "pw")

    async def main() -> None:
        with SpeculatingServer(peer) as server:
            future = mock_connect(flavour, server)
            await off_loop(_finish_conversation, server, peer, start=False)
            conn = await future
            assert peer.proof_ok
            hello = server.hellos[0].body
            assert hello["speculativeAuthenticate"]["db"] == "admin"
            assert hello["saslSupportedMechs"] == "admin.alice"
            await got(conn.close())

    flavour.run(main)


def test_mock_server_ignoring_it_gets_the_ordinary_conversation(flavour: Flavour) -> None:
    peer = ScramPeer(SCRAM_SHA_256, "alice", "pw")

    async def main() -> None:
        with SpeculatingServer(peer, answer=False) as server:
            future = mock_connect(flavour, server)
            await off_loop(_finish_conversation, server, peer, start=True)
            await got((await future).close())
            assert peer.proof_ok
            assert "speculativeAuthenticate" in server.hellos[0].body  # offered, not taken

    flavour.run(main)


def test_a_forged_server_signature_after_speculation_fails(flavour: Flavour) -> None:
    peer = ScramPeer(SCRAM_SHA_256, "alice", "pw")

    async def main() -> None:
        with SpeculatingServer(peer) as server:
            future = mock_connect(flavour, server)
            request = await off_loop(server.receives, "saslContinue", db="admin")
            assert peer.final(bytes(request.body["payload"])) is not None
            forged = b"v=" + base64.b64encode(b"\0" * 32)
            request.reply(conversationId=7, done=True, payload=forged)
            with pytest.raises(AuthenticationError, match="signature is wrong"):
                await future

    flavour.run(main)


@pytest.mark.parametrize(
    "answer, message",
    [
        ("not a document", "speculativeAuthenticate is not a document"),
        ({"conversationId": 7, "done": False}, "payload"),
        ({"conversationId": "seven", "done": False, "payload": b"r=x"}, "conversationId"),
    ],
)
def test_a_malformed_speculative_answer_is_an_authentication_protocol_error(
    answer: Any, message: str, flavour: Flavour
) -> None:
    peer = ScramPeer(SCRAM_SHA_256, "alice", "pw")

    async def main() -> None:
        with SpeculatingServer(peer, answer=answer) as server:
            with pytest.raises(AuthenticationProtocolError, match=message):
                await mock_connect(flavour, server)

    flavour.run(main)


# -- the seam (unit) ----------------------------------------------------------------------


def test_speculate_uses_the_user_s_mechanism_or_sha256() -> None:
    default = auth.speculate(make_credentials("u", "pw"))
    assert default is not None and default.mechanism == SCRAM_SHA_256
    sha1 = auth.speculate(make_credentials("u", "pw", mechanism=SCRAM_SHA_1))
    assert sha1 is not None and sha1.mechanism == SCRAM_SHA_1
    # A password SASLprep refuses cannot speculate with SCRAM-SHA-256: no speculation.
    assert auth.speculate(make_credentials("u", "a\u0007b")) is None


def test_hello_fields_without_speculation_are_unchanged() -> None:
    creds = make_credentials("alice", "pw", source="appdb")
    assert auth.hello_fields(creds) == {"saslSupportedMechs": "appdb.alice"}
    speculation = auth.speculate(creds)
    fields = auth.hello_fields(creds, speculation)
    assert set(fields) == {"saslSupportedMechs", "speculativeAuthenticate"}
    assert fields["speculativeAuthenticate"]["db"] == "appdb"


def test_the_speculative_answer_is_not_kept_in_the_handshake(
    auth_server: SecantusServer, flavour: Flavour
) -> None:
    async def main() -> None:
        conn = await connect(flavour, uri(auth_server, "alice", "alice-pw"))
        try:
            sock = await flavour.steps(conn.pool.checkout())
            assert "speculativeAuthenticate" not in sock.hello  # its nonce and salt
            assert sock.hello["ok"] == 1
            conn.pool.return_socket(sock)
        finally:
            await got(conn.close())

    flavour.run(main)
