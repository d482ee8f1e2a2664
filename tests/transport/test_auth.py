"""SCRAM-SHA-1 / SCRAM-SHA-256: RFC test vectors, a scripted server, mockupdb and SecantusDB.

The SecantusDB server of this module is provisioned the way the design notes say: started
without ``--auth`` on a storage directory of its own, users created, stopped, and started
again on the same directory with ``--auth`` (there is no localhost exception).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest
from leak_check import no_leaked_socket
from servers import SecantusServer, secantus_with_auth

from wireclient import Connection, ReplicaSetConnection
from wireclient.engine.assembly import ClientParts
from wireclient.errors import AuthenticationError, ConfigurationError, OperationFailure
from wireclient.transport import auth
from wireclient.transport.auth import (
    SCRAM_SHA_1,
    SCRAM_SHA_256,
    Credentials,
    ScramClient,
    make_credentials,
    mongo_password_digest,
    saslprep,
)
from wireclient.transport.blocking import run
from wireclient.transport.steps import Steps

# -- test vectors -------------------------------------------------------------------------


def test_rfc5802_sha1_vector() -> None:
    """RFC 5802 section 5: SCRAM-SHA-1 with the plain password "pencil" (no MongoDB digest)."""
    scram = ScramClient(SCRAM_SHA_1, "user", b"pencil", nonce="fyko+d2lbbFgONRv9qkxdawL")
    assert scram.client_first() == b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    final = scram.client_final(
        b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    assert final == (
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    scram.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    assert scram.verified


def test_rfc7677_sha256_vector() -> None:
    """RFC 7677 section 3, through the SCRAM-SHA-256 password preparation (SASLprep)."""
    creds = make_credentials("user", "pencil", mechanism="SCRAM-SHA-256")
    scram = ScramClient(
        SCRAM_SHA_256, "user", creds.password_input(SCRAM_SHA_256), nonce="rOprNGfwEbeRWgbNEkqO"
    )
    assert scram.client_first() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    final = scram.client_final(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert final == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    scram.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_mongodb_sha1_vector_uses_the_md5_password_digest() -> None:
    """The auth spec's SCRAM-SHA-1 example: the RFC nonce, MongoDB's hashed password."""
    assert mongo_password_digest("user", "pencil") == "1c33006ec1ffd90f9cadcbcc0e118200"
    creds = make_credentials("user", "pencil", mechanism="SCRAM-SHA-1")
    scram = ScramClient(
        SCRAM_SHA_1, "user", creds.password_input(SCRAM_SHA_1), nonce="fyko+d2lbbFgONRv9qkxdawL"
    )
    scram.client_first()
    final = scram.client_final(
        b"r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,"
        b"s=rQ9ZY3MntBeuP3E1TDVC4w==,i=10000"
    )
    assert final.endswith(b",p=MC2T8BvbmWRckDw8oWl5IVghwCY=")
    scram.verify_server_final(b"v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0=")


def test_usernames_are_escaped_not_saslprepped() -> None:
    scram = ScramClient(SCRAM_SHA_256, "a=b,c\u2168", b"pw", nonce="N")
    assert scram.client_first() == "n,,n=a=3Db=2Cc\u2168,r=N".encode()


RFC5802_SERVER_FIRST = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"


def rfc5802_client(cache: Optional[Dict[Any, bytes]] = None) -> ScramClient:
    scram = ScramClient(
        SCRAM_SHA_1, "user", b"pencil", nonce="fyko+d2lbbFgONRv9qkxdawL", cache=cache
    )
    scram.client_first()
    return scram


@pytest.mark.parametrize(
    "server_final, message",
    [
        (b"v=" + base64.b64encode(b"\x00" * 20), "signature is wrong"),
        (b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ", "not base64"),
        (b"e=invalid-proof", "invalid-proof"),
        (b"x=1", "did not send its signature"),
        (b"garbage", "malformed"),
    ],
)
def test_bad_server_final_is_an_authentication_error(server_final: bytes, message: str) -> None:
    cache: Dict[Any, bytes] = {}
    scram = rfc5802_client(cache)
    scram.client_final(RFC5802_SERVER_FIRST)
    with pytest.raises(AuthenticationError, match=message):
        scram.verify_server_final(server_final)
    assert not scram.verified
    assert cache == {}  # a server that did not prove itself leaves nothing cached


@pytest.mark.parametrize(
    "server_first, message",
    [
        (b"r=someone-elses-nonce,s=QSXCR+Q6sek8bf92,i=4096", "does not extend"),
        (b"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096", "does not extend"),
        (b"r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,i=4095", "fewer than the minimum"),
        (b"r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,i=many", "not a number"),
        (b"r=fyko+d2lbbFgONRv9qkxdawLxyz,s=!!!,i=4096", "not base64"),
        (b"r=fyko+d2lbbFgONRv9qkxdawLxyz,s=,i=4096", "salt is empty"),
        (b"r=fyko+d2lbbFgONRv9qkxdawLxyz,i=4096", "no s= attribute"),
        (b"m=ext,r=fyko+d2lbbFgONRv9qkxdawLxyz,s=QSXCR+Q6sek8bf92,i=4096", "extension"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_server_first_is_an_authentication_error(server_first: bytes, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        rfc5802_client().client_final(server_first)


# -- the PBKDF2 cache (unit) --------------------------------------------------------------


@pytest.fixture()
def hi_calls(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Records the hash name of every PBKDF2 (``Hi``) computation."""
    calls: List[str] = []
    real = auth._hi

    def counting(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        calls.append(hash_name)
        return real(hash_name, password, salt, iterations)

    monkeypatch.setattr(auth, "_hi", counting)
    return calls


def test_salted_password_is_cached_after_the_server_proves_itself(hi_calls: List[str]) -> None:
    cache: Dict[Any, bytes] = {}
    for _ in range(3):
        scram = rfc5802_client(cache)
        scram.client_final(RFC5802_SERVER_FIRST)
        scram.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    assert hi_calls == ["sha1"]
    assert list(cache) == [(SCRAM_SHA_1, base64.b64decode("QSXCR+Q6sek8bf92"), 4096)]
    # Another salt (say, the password was changed on the server) is another entry.
    scram = rfc5802_client(cache)
    scram.client_final(b"r=fyko+d2lbbFgONRv9qkxdawLxyz,s=AAAAAAAAAAAAAAAA,i=4096")
    assert hi_calls == ["sha1", "sha1"]


def test_cache_is_bounded_oldest_first(hi_calls: List[str]) -> None:
    cache: Dict[Any, bytes] = {}
    for n in range(auth._CACHE_SIZE + 3):
        scram = ScramClient(SCRAM_SHA_1, "u", b"pw", nonce="N", cache=cache)
        scram.client_first()
        scram._pending = ((SCRAM_SHA_1, bytes([n]), 4096), b"salted")  # as client_final would
        scram._server_signature = b"sig"
        scram.verify_server_final(b"v=" + base64.b64encode(b"sig"))
    assert len(cache) == auth._CACHE_SIZE
    assert (SCRAM_SHA_1, bytes([0]), 4096) not in cache
    assert (SCRAM_SHA_1, bytes([auth._CACHE_SIZE + 2]), 4096) in cache


# -- SASLprep (RFC 4013 section 3 examples) -----------------------------------------------


@pytest.mark.parametrize(
    "text, prepared",
    [
        ("I\u00adX", "IX"),  # soft hyphen maps to nothing
        ("user", "user"),
        ("USER", "USER"),  # no case folding
        ("\u00aa", "a"),  # NFKC
        ("\u2168", "IX"),  # NFKC
        ("p\u00e4ss w\u00f6rd", "p\u00e4ss w\u00f6rd"),
        ("a\u00a0b", "a b"),  # non-ASCII space maps to space
        ("\u0627\u0628", "\u0627\u0628"),  # right-to-left only is fine
    ],
)
def test_saslprep(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize(
    "text, kind",
    [
        ("\u0007", "control character"),
        ("pass\x00word", "control character"),
        ("\u0627\u0031", "start and end"),  # RFC 4013's bidi example
        ("a\u0627", "mixes"),
        ("\ue000", "private-use"),
        ("\U000e0001", "tagging"),
        ("\u0221", "unassigned"),  # unassigned in Unicode 3.2: stored strings refuse it
    ],
)
def test_saslprep_refusals_name_the_kind_never_the_text(text: str, kind: str) -> None:
    with pytest.raises(ValueError, match=kind) as info:
        saslprep(text)
    assert text not in str(info.value)


# -- credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mechanism", ["PLAIN", "MONGODB-X509", "GSSAPI", "MONGODB-AWS", "MONGODB-CR", "MONGODB-OIDC"]
)
def test_unsupported_mechanisms_are_named(mechanism: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{mechanism}.*not supported") as info:
        make_credentials("alice", "pw", mechanism=mechanism)
    assert "SCRAM-SHA-1" in str(info.value) and "SCRAM-SHA-256" in str(info.value)


def test_unsupported_mechanism_in_a_uri_fails_before_any_socket() -> None:
    with pytest.raises(ConfigurationError, match="'PLAIN' is not supported"):
        Connection("mongodb://alice:pw@127.0.0.1:1/?authMechanism=PLAIN", _connect=False)


def test_unknown_mechanism() -> None:
    with pytest.raises(ConfigurationError, match="unknown authMechanism 'SCRAM-SHA-512'"):
        make_credentials("alice", "pw", mechanism="SCRAM-SHA-512")


def test_mechanism_names_are_case_insensitive_and_default_negotiates() -> None:
    assert make_credentials("a", "pw", mechanism="scram-sha-1").mechanism == SCRAM_SHA_1
    assert make_credentials("a", "pw", mechanism="DEFAULT").mechanism is None
    assert make_credentials("a", "pw").mechanism is None


@pytest.mark.parametrize(
    "username, password, message",
    [
        ("", "pw", "username is empty"),
        (None, "pw", "username must be a string"),
        ("alice", None, "needs a password for user 'alice'"),
        ("alice", "", "password of user 'alice' is empty"),
        ("alice", 42, "password must be a string"),
        ("alice", "se\udc80cret", "password is not valid Unicode"),
    ],
)
def test_make_credentials_validates(username: Any, password: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        make_credentials(username, password)
    assert "cret" not in str(info.value)


def test_password_saslprep_refuses_fails_early_for_sha256_without_leaking() -> None:
    with pytest.raises(ConfigurationError, match="SCRAM-SHA-256.*control character") as info:
        make_credentials("alice", "hunter\x072", mechanism="SCRAM-SHA-256")
    assert "hunter" not in str(info.value)
    # SCRAM-SHA-1 does not SASLprep: the same password is fine there.
    creds = make_credentials("alice", "hunter\x072", mechanism="SCRAM-SHA-1")
    assert (
        creds.password_input(SCRAM_SHA_1).decode()
        == hashlib.md5(b"alice:mongo:hunter\x072").hexdigest()
    )


def test_repr_hides_the_password() -> None:
    creds = make_credentials("alice", "s3cr3t-pw", source="appdb", mechanism="SCRAM-SHA-1")
    assert "s3cr3t-pw" not in repr(creds)
    assert "alice" in repr(creds) and "appdb" in repr(creds)
    assert not hasattr(creds, "__dict__")


def test_hello_fields_ask_for_mechanisms_only_when_negotiating() -> None:
    assert auth.hello_fields(make_credentials("alice", "pw", source="appdb")) == {
        "saslSupportedMechs": "appdb.alice"
    }
    assert auth.hello_fields(make_credentials("alice", "pw", mechanism="SCRAM-SHA-1")) == {}


@pytest.mark.parametrize(
    "hello, expected",
    [
        ({"saslSupportedMechs": ["SCRAM-SHA-1", "SCRAM-SHA-256"]}, SCRAM_SHA_256),
        ({"saslSupportedMechs": ["SCRAM-SHA-256"]}, SCRAM_SHA_256),
        ({"saslSupportedMechs": ["SCRAM-SHA-1"]}, SCRAM_SHA_1),
        ({"saslSupportedMechs": ["PLAIN"]}, SCRAM_SHA_1),  # never anything but SCRAM
        ({"saslSupportedMechs": []}, SCRAM_SHA_1),
        ({}, SCRAM_SHA_1),  # no negotiation answer (server < 4.0): SCRAM-SHA-1
    ],
)
def test_default_mechanism(hello: Dict[str, Any], expected: str) -> None:
    assert auth.select_mechanism(make_credentials("alice", "pw"), hello) == expected


def test_an_explicit_mechanism_wins_over_the_server_list() -> None:
    creds = make_credentials("alice", "pw", mechanism="SCRAM-SHA-1")
    assert auth.select_mechanism(creds, {"saslSupportedMechs": [SCRAM_SHA_256]}) == SCRAM_SHA_1


# -- authenticate() against a scripted server ---------------------------------------------


class ScriptedServer:
    """A fake SocketInfo whose ``command`` plays the server side of SCRAM.

    ``tamper`` may rewrite each reply (by step name) to misbehave.
    """

    def __init__(
        self,
        username: str,
        password: str,
        mechanism: str = SCRAM_SHA_256,
        iterations: int = 4096,
        skip_empty_exchange: bool = True,
        tamper: Optional[Callable[[str, Dict[str, Any]], Dict[str, Any]]] = None,
    ) -> None:
        self.hello: Dict[str, Any] = {"saslSupportedMechs": [mechanism]}
        self.commands: List[Tuple[str, Dict[str, Any]]] = []
        self.mechanism = mechanism
        self.username = username
        self.digest = "sha1" if mechanism == SCRAM_SHA_1 else "sha256"
        secret = (
            mongo_password_digest(username, password).encode()
            if mechanism == SCRAM_SHA_1
            else saslprep(password).encode()
        )
        self.salt = b"0123456789abcdef"
        self.iterations = iterations
        salted = hashlib.pbkdf2_hmac(self.digest, secret, self.salt, iterations)
        client_key = hmac.new(salted, b"Client Key", self.digest).digest()
        self.stored_key = hashlib.new(self.digest, client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", self.digest).digest()
        self.skip_empty_exchange = skip_empty_exchange
        self.tamper = tamper or (lambda step, reply: reply)
        self.step = "start"

    def command(self, dbname: str, spec: Dict[str, Any]) -> Steps[Dict[str, Any]]:
        """A step, like ``SocketInfo.command``: the reply, with no I/O."""
        return self.answer(dbname, spec)
        yield  # makes this a generator

    def answer(self, dbname: str, spec: Dict[str, Any]) -> Dict[str, Any]:
        """The server's reply to ``spec`` (what ``command`` returns)."""
        self.commands.append((dbname, dict(spec)))
        if self.step == "start":
            assert "saslStart" in spec and spec["mechanism"] == self.mechanism
            bare = bytes(spec["payload"])[3:]
            self.client_first_bare = bare
            nonce = bare.split(b",r=")[1]
            self.server_first = (
                b"r="
                + nonce
                + b"SERVER,s="
                + base64.b64encode(self.salt)
                + b",i="
                + str(self.iterations).encode()
            )
            self.step = "continue"
            reply = {"ok": 1, "conversationId": 1, "done": False, "payload": self.server_first}
            return self.tamper("start", reply)
        if self.step == "continue":
            payload = bytes(spec["payload"])
            without_proof, _, proof = payload.rpartition(b",p=")
            auth_message = b",".join((self.client_first_bare, self.server_first, without_proof))
            signature = hmac.new(self.stored_key, auth_message, self.digest).digest()
            client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
            if hashlib.new(self.digest, client_key).digest() != self.stored_key:
                return {
                    "ok": 0,
                    "code": 18,
                    "codeName": "AuthenticationFailed",
                    "errmsg": "Authentication failed.",
                }
            server_signature = hmac.new(self.server_key, auth_message, self.digest).digest()
            done = bool(self.skip_empty_exchange and spec.get("conversationId") == 1)
            self.step = "done" if done else "empty"
            reply = {
                "ok": 1,
                "conversationId": 1,
                "done": done,
                "payload": b"v=" + base64.b64encode(server_signature),
            }
            return self.tamper("continue", reply)
        assert self.step == "empty" and bytes(spec["payload"]) == b""
        self.step = "done"
        return self.tamper("empty", {"ok": 1, "conversationId": 1, "done": True, "payload": b""})


@pytest.mark.parametrize("mechanism", [SCRAM_SHA_1, SCRAM_SHA_256])
def test_authenticate_conversation(mechanism: str) -> None:
    server = ScriptedServer("alice", "pw", mechanism)
    creds = make_credentials("alice", "pw", source="appdb")
    run(auth.authenticate(server, creds))
    assert server.step == "done"
    (db1, start), (db2, cont) = server.commands
    assert db1 == db2 == "appdb"
    assert start["mechanism"] == mechanism
    assert start["options"] == {"skipEmptyExchange": True}
    assert start["autoAuthorize"] == 1
    assert bytes(start["payload"]).startswith(b"n,,n=alice,r=")
    assert cont["saslContinue"] == 1 and cont["conversationId"] == 1


def test_server_that_ignores_skip_empty_exchange_gets_an_empty_continue() -> None:
    server = ScriptedServer("alice", "pw", skip_empty_exchange=False)
    run(auth.authenticate(server, make_credentials("alice", "pw")))
    assert server.step == "done"
    assert len(server.commands) == 3
    assert bytes(server.commands[2][1]["payload"]) == b""


def test_wrong_password_reply_is_an_authentication_error_without_the_password() -> None:
    server = ScriptedServer("alice", "right-password")
    with pytest.raises(AuthenticationError) as info:
        run(auth.authenticate(server, make_credentials("alice", "wrong-password")))
    exc = info.value
    assert exc.code == 18
    assert "alice" in str(exc) and "SCRAM-SHA-256" in str(exc) and "'admin'" in str(exc)
    assert "wrong-password" not in repr(exc.details)
    assert "wrong-password" not in str(exc)


def _forge_signature(step: str, reply: Dict[str, Any]) -> Dict[str, Any]:
    if step == "continue":
        reply["payload"] = b"v=" + base64.b64encode(b"\x01" * 32)
    return reply


def test_wrong_server_signature_fails_even_when_the_server_says_done() -> None:
    server = ScriptedServer("alice", "pw", tamper=_forge_signature)
    creds = make_credentials("alice", "pw")
    with pytest.raises(AuthenticationError, match="signature is wrong"):
        run(auth.authenticate(server, creds))
    assert creds._keys == {}


@pytest.mark.parametrize(
    "step, change, message",
    [
        ("start", {"done": True}, "ended the conversation before the client proof"),
        ("start", {"payload": None}, "no SASL payload"),
        ("continue", {"payload": b""}, "malformed"),
        ("empty", {"done": False}, "did not end the conversation"),
    ],
)
def test_misbehaving_server(step: str, change: Dict[str, Any], message: str) -> None:
    def tamper(at: str, reply: Dict[str, Any]) -> Dict[str, Any]:
        return {**reply, **change} if at == step else reply

    server = ScriptedServer("alice", "pw", skip_empty_exchange=step != "empty", tamper=tamper)
    with pytest.raises(AuthenticationError, match=message):
        run(auth.authenticate(server, make_credentials("alice", "pw")))


def test_low_iteration_count_from_the_server_is_refused() -> None:
    server = ScriptedServer("alice", "pw", iterations=1000)
    with pytest.raises(AuthenticationError, match="1000 iterations"):
        run(auth.authenticate(server, make_credentials("alice", "pw")))


def test_arbiters_are_not_authenticated() -> None:
    server = ScriptedServer("alice", "pw")
    server.hello["arbiterOnly"] = True
    run(auth.authenticate(server, make_credentials("alice", "pw")))
    assert server.commands == []


def test_base64_text_payloads_are_accepted() -> None:
    def as_text(step: str, reply: Dict[str, Any]) -> Dict[str, Any]:
        return {**reply, "payload": base64.b64encode(reply["payload"]).decode()}

    server = ScriptedServer("alice", "pw", tamper=as_text)
    run(auth.authenticate(server, make_credentials("alice", "pw")))
    assert server.step == "done"


# -- mockupdb: a server whose signature is wrong, through Connection ----------------------


def test_forged_server_signature_fails_connection_and_leaves_no_socket() -> None:
    from mockupdb import MockupDB, OpMsg  # type: ignore[import-untyped]

    hello = {
        "ok": 1,
        "isWritablePrimary": True,
        "maxWireVersion": 17,
        "minWireVersion": 0,
        "saslSupportedMechs": ["SCRAM-SHA-256"],
    }
    mock = MockupDB(auto_ismaster=hello)
    mock.autoresponds("hello", hello)
    mock.run()
    outcome: Dict[str, Any] = {}

    def connect() -> None:
        try:
            host, port = mock.address
            outcome["conn"] = Connection(f"mongodb://alice:pw@{host}:{port}/")
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome["error"] = exc

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    try:
        start = mock.receives(OpMsg("saslStart"), timeout=10)
        assert start.doc["$db"] == "admin" and start.doc["mechanism"] == "SCRAM-SHA-256"
        nonce = bytes(start.doc["payload"]).split(b",r=")[1]
        start.replies(
            conversationId=1, done=False, payload=b"r=" + nonce + b"xyz,s=QSXCR+Q6sek8bf92,i=4096"
        )
        cont = mock.receives(OpMsg("saslContinue"), timeout=10)
        # A server that does not know the password cannot sign; it claims success anyway.
        cont.replies(conversationId=1, done=True, payload=b"v=" + base64.b64encode(b"\0" * 32))
        thread.join(10)
        assert isinstance(outcome.get("error"), AuthenticationError), outcome
        assert "signature is wrong" in str(outcome["error"])
    finally:
        thread.join(10)
        mock.stop()


# -- SecantusDB with --auth ----------------------------------------------------------------

UNI_PASSWORD = "p\u00e4ss\u2168"  # NFKC (SASLprep) turns U+2168 into "IX"


class AuthServer:
    def __init__(self, server: SecantusServer) -> None:
        self.server = server
        self.address = server.address

    def uri(self, user: str, password: str, path: str = "", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return (
            f"mongodb://{quote(user, safe='')}:{quote(password, safe='')}@{self.address}/"
            f"{path}{'?' + query if query else ''}"
        )


@pytest.fixture(scope="module")
def auth_server() -> Iterator[AuthServer]:
    def setup(conn: Connection) -> None:
        both = [SCRAM_SHA_1, SCRAM_SHA_256]
        admin = conn.admin
        admin.command("createUser", "alice", pwd="alice-pw", roles=["root"], mechanisms=both)
        admin.command("createUser", "old", pwd="old-pw", roles=["root"], mechanisms=[SCRAM_SHA_1])
        admin.command("createUser", "new", pwd="new-pw", roles=["root"], mechanisms=[SCRAM_SHA_256])
        admin.command("createUser", "uni", pwd=UNI_PASSWORD, roles=["root"], mechanisms=both)
        conn.appdb.command("createUser", "bob", pwd="bob-pw", roles=["readWrite"], mechanisms=both)
        conn.appdb.things.insert({"_id": 1, "x": 1})

    with secantus_with_auth(setup) as server:
        yield AuthServer(server)


def _can_read(conn: Connection) -> bool:
    return conn.appdb.things.find_one({"_id": 1}) == {"_id": 1, "x": 1}


@pytest.mark.parametrize(
    "user, password, mechanism, expected_hash",
    [
        ("alice", "alice-pw", "SCRAM-SHA-256", "sha256"),
        ("alice", "alice-pw", "SCRAM-SHA-1", "sha1"),
        ("alice", "alice-pw", None, "sha256"),  # both listed: SCRAM-SHA-256
        ("old", "old-pw", None, "sha1"),  # only SCRAM-SHA-1 listed
        ("new", "new-pw", None, "sha256"),
    ],
)
def test_right_password_works(
    auth_server: AuthServer,
    hi_calls: List[str],
    user: str,
    password: str,
    mechanism: Optional[str],
    expected_hash: str,
) -> None:
    options = {"authMechanism": mechanism} if mechanism else {}
    conn = Connection(auth_server.uri(user, password, **options))
    try:
        assert conn.admin.command("ping")["ok"] == 1
        assert _can_read(conn)
        assert hi_calls == [expected_hash]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "user, password, mechanism",
    [
        ("alice", "wrong-pw", None),
        ("alice", "wrong-pw", "SCRAM-SHA-1"),
        ("nobody", "wrong-pw", None),
        ("old", "old-pw", "SCRAM-SHA-256"),  # the user has no SCRAM-SHA-256 credentials
    ],
)
def test_wrong_credentials_fail_at_construction_and_leave_no_socket(
    auth_server: AuthServer,
    monkeypatch: pytest.MonkeyPatch,
    user: str,
    password: str,
    mechanism: Optional[str],
) -> None:
    pools: List[Any] = []
    real_new_pool = ClientParts.new_pool

    def spy(self: ClientParts, address: Any) -> Any:
        pool = real_new_pool(self, address)
        pools.append(pool)
        return pool

    monkeypatch.setattr(ClientParts, "new_pool", spy)
    options = {"authMechanism": mechanism} if mechanism else {}
    with pytest.raises(AuthenticationError) as info:
        Connection(auth_server.uri(user, password, **options))
    exc = info.value
    assert exc.code == 18 and isinstance(exc, OperationFailure)
    assert user in str(exc)
    assert password not in str(exc) and password not in repr(exc.details)
    assert pools[0].open_count == 0 and pools[0].idle_count() == 0


@pytest.mark.parametrize("mechanism", [None, "SCRAM-SHA-1"])
def test_failed_authentication_closes_its_socket_at_once(
    auth_server: AuthServer, mechanism: Optional[str]
) -> None:
    """Not left for the garbage collector (no ResourceWarning), for a wrong password and an
    unknown user; then the right password works."""
    options = {"authMechanism": mechanism} if mechanism else {}
    for user in ("alice", "nobody"):
        with no_leaked_socket():
            with pytest.raises(AuthenticationError) as info:
                Connection(auth_server.uri(user, "wrong-pw", **options))
            assert info.value.code == 18
            del info
    conn = Connection(auth_server.uri("alice", "alice-pw", **options))
    try:
        assert conn.admin.command("ping")["ok"] == 1
        assert conn.pool.open_count == 1
    finally:
        conn.close()


def test_unauthenticated_connection_cannot_read(auth_server: AuthServer) -> None:
    conn = Connection(auth_server.server.uri)  # the handshake needs no authentication
    try:
        with pytest.raises(OperationFailure) as info:
            conn.appdb.things.find_one()
        assert info.value.code == 13
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["authSource", "uri database"])
def test_auth_source(auth_server: AuthServer, how: str) -> None:
    if how == "authSource":
        uri = auth_server.uri("bob", "bob-pw", authSource="appdb")
    else:
        uri = auth_server.uri("bob", "bob-pw", path="appdb")
    conn = Connection(uri)
    try:
        assert _can_read(conn)
        with pytest.raises(OperationFailure) as info:  # readWrite on appdb only
            conn.admin.command("listDatabases")
        assert info.value.code == 13
    finally:
        conn.close()


def test_auth_source_defaults_to_admin(auth_server: AuthServer) -> None:
    with pytest.raises(AuthenticationError, match="'bob' on database 'admin'"):
        Connection(auth_server.uri("bob", "bob-pw"))


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_non_ascii_password(auth_server: AuthServer, mechanism: str) -> None:
    conn = Connection(auth_server.uri("uni", UNI_PASSWORD, authMechanism=mechanism))
    try:
        assert _can_read(conn)
    finally:
        conn.close()


def test_saslprep_equivalent_password_works_for_sha256_only(auth_server: AuthServer) -> None:
    equivalent = "p\u00e4ssIX"  # what SASLprep makes of UNI_PASSWORD
    conn = Connection(auth_server.uri("uni", equivalent, authMechanism="SCRAM-SHA-256"))
    try:
        assert _can_read(conn)
    finally:
        conn.close()
    with pytest.raises(AuthenticationError):  # SCRAM-SHA-1 hashes the password as typed
        Connection(auth_server.uri("uni", equivalent, authMechanism="SCRAM-SHA-1"))


def test_new_sockets_reuse_the_salted_password(
    auth_server: AuthServer, hi_calls: List[str]
) -> None:
    conn = Connection(auth_server.uri("alice", "alice-pw"), auto_start_request=False)
    try:
        pool = conn.pool
        socks = [run(pool.checkout()) for _ in range(3)]  # three sockets open at once
        assert len({id(s) for s in socks}) == 3 and pool.open_count == 3
        for sock in socks:
            reply = run(sock.command("appdb", {"find": "things", "filter": {"_id": 1}}))
            assert reply is not None and reply["ok"] == 1  # each one is authenticated
            pool.return_socket(sock)
        conn.close()  # every socket closed: the next operation reconnects and authenticates
        assert _can_read(conn)
        assert hi_calls == ["sha256"]  # one PBKDF2 for five authentications
    finally:
        conn.close()


def test_concurrent_threads_all_authenticate(auth_server: AuthServer) -> None:
    conn = Connection(auth_server.uri("alice", "alice-pw"))
    errors: List[BaseException] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        try:
            barrier.wait(5)
            for _ in range(5):
                assert _can_read(conn)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    conn.close()
    assert errors == []


def test_replica_set_connection_authenticates(auth_server: AuthServer) -> None:
    uri = auth_server.uri("alice", "alice-pw", replicaSet="secantus")
    rsc = ReplicaSetConnection(uri)
    try:
        assert _can_read(rsc)
    finally:
        rsc.close()


def test_credentials_are_made_once_per_connection(auth_server: AuthServer) -> None:
    conn = Connection(auth_server.uri("alice", "alice-pw"))
    try:
        creds = conn._parts.credentials
        assert isinstance(creds, Credentials) and creds.source == "admin"
        assert "alice-pw" not in repr(creds)
    finally:
        conn.close()
