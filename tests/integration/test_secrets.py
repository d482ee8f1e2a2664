"""Secrets are never shown: no password, salted password, nonce or proof in any ``repr``,
``str``, exception message, chained exception, traceback, warning or log line, on any
error path (wireclient/rules/uri.py, options.py, auth.py, connection.py).

The classes of fault, each with its own tests: malformed connection strings with a
password in them (fixed shapes, then a Hypothesis strategy of shapes and passwords); the
objects that hold credentials (``ParsedURI``, ``Credentials``, connections); passwords the
client refuses itself; SCRAM conversations with a hostile server that echoes what the client
sent; and a real SecantusDB with ``--auth`` answering a wrong password.

Passwords are made distinctive (a random core between two fixed markers), so that finding
one in a message is a leak and not a coincidence; a leak of half of one counts too.
"""

from __future__ import annotations

import base64
import logging
import traceback
import warnings
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from servers import secantus_with_auth

from wireclient import Connection, ReplicaSetConnection
from wireclient.errors import AuthenticationError, ConfigurationError, WireClientError
from wireclient.rules.uri import parse_host, parse_uri, redact_uri, split_hosts
from wireclient.transport import auth
from wireclient.transport.auth import SCRAM_SHA_1, SCRAM_SHA_256, ScramClient, make_credentials
from wireclient.transport.blocking import run
from wireclient.transport.steps import Steps


def tokens(secret: str) -> List[str]:
    """The secret, and each half of it (so that a truncated leak is caught too)."""
    half = len(secret) // 2
    return [secret, secret[: half + 1], secret[half:]]


def chain(exc: BaseException) -> List[BaseException]:
    """``exc`` and every exception chained to it, suppressed contexts included."""
    seen: List[BaseException] = []
    todo: List[Optional[BaseException]] = [exc]
    while todo and len(seen) < 50:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__]
    return seen


def shown_by(exc: BaseException) -> str:
    """Everything an exception can show: str, repr, args, details of each chained one, and
    the formatted traceback."""
    parts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    for each in chain(exc):
        parts += [str(each), repr(each), repr(each.args), repr(getattr(each, "details", None))]
    return "\n".join(parts)


def assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        for token in tokens(secret):
            assert token not in text, f"{token!r} shown in: {text[:2000]}"


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def outcome(call: Callable[[], Any]) -> str:
    """Run ``call``; what it showed: its error (which must be a wireclient error), or the
    repr and str of its result, plus any warning or log line issued meanwhile."""
    recorder = Recorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = call()
            except WireClientError as exc:
                shown = shown_by(exc)
            else:
                shown = f"{result!r}\n{result}"
                if isinstance(result, Connection):
                    shown += f"\n{result._parts.credentials!r}\n{result.test.things!r}"
                    # a replica set's (or a list of routers') would wait for a server
                    if type(result) is Connection and len(result._parts.hosts) == 1:
                        shown += f"\n{result.pool!r}"
                    result.close()
    finally:
        root.removeHandler(recorder)
        root.setLevel(old_level)
    lines = [str(w.message) for w in caught] + recorder.lines
    return "\n".join([shown, *lines])


PASSWORD = "Pw7rQx2ZkV9mTz"  # a distinctive password for the fixed examples

# Connection strings, each with {pw} where the password goes (``Connection`` gets the ones
# that are host lists, as a user passing a URI without its scheme would).
SHAPES = [
    "mongodb:/u:{pw}@h",
    "mongodb//u:{pw}@h",
    "mongodb:u:{pw}@h",
    "mongodb:///u:{pw}@h",
    "MONGODB:/u:{pw}@h:27017/db",
    "u:{pw}@h:27017",
    "u:{pw}@h",
    "u:{pw}@h1:1,h2:2",
    "h0,u:{pw}@h",
    "//u:{pw}@h",
    " mongodb://u:{pw}@h",
    "mongodb://u:{pw}@h:notaport",
    "mongodb://u:{pw}@h:99999",
    "mongodb://u:{pw}@h:",
    "mongodb://u:{pw}@h:1:2",
    "mongodb://u:{pw}@[::1",
    "mongodb://u:{pw}@[::g]:1",
    "mongodb://u:{pw}@h,,x",
    "mongodb://u:{pw}@",
    "mongodb://u:{pw}@/db",
    "mongodb://u:{pw}",  # the @host left out: host 'u', port '{pw}'
    "mongodb://u:{pw}/db",
    "mongodb://u:{pw}:x",
    "mongodb://u:x:{pw}",
    "mongodb://u:{pw}:x@h",
    "mongodb://u:{pw}@x@h",
    "mongodb://u:{pw}?w=1@h",
    "mongodb://u:{pw}/x@h",
    "mongodb://u:{pw}#@h",
    "mongodb://u:{pw}%zz@h",
    "mongodb://u:{pw}%@h",
    "mongodb://u:{pw}%ff@h",
    "mongodb://u:{pw}%ED%A0%80@h",  # a lone surrogate once decoded
    "mongodb://u:%zz{pw}@h",
    "mongodb://:{pw}@h",
    "mongodb://u:{pw}@h/?foo=bar",
    "mongodb://u:{pw}@h/?password={pw}",
    "mongodb://u:{pw}@h/?w=-1&foo=bar",
    "mongodb://u:{pw}@h/?authMechanism=PLAIN",
    "mongodb://u:{pw}@h/?authMechanism=BOGUS",
    "mongodb://u:{pw}@h/?authSource=",
    "mongodb://u:{pw}@h/?tls=maybe",
    "mongodb://u:{pw}@h/?tls=false&tlsCAFile=x",
    "mongodb://u:{pw}@h/?tls=true&tlsCAFile=/nonexistent/ca.pem",
    "mongodb://u:{pw}@h/?maxPoolSize=0",
    "mongodb://u:{pw}@h/?replicaSet=rs&directConnection=true",
    "mongodb://u:{pw}@h1:1,h2:2/",
    "mongodb://u:{pw}@h/d b",
    "mongodb://u:{pw}@h/db.",
    "mongodb://u:{pw}%01@h/?authMechanism=SCRAM-SHA-256",  # SASLprep refuses a control char
    "mongodb://u:{pw}%EF%B7%90@h/?authMechanism=SCRAM-SHA-256",  # a non-character
    "mongodb+srv://u:{pw}@h",
    "http://u:{pw}@h",
    "mongodb://u:{pw}@h/?readPreference=secondary",
    "mongodb://u:{pw}@h",
]

ENTRY_POINTS: Dict[str, Callable[[Any], Any]] = {
    "parse_uri": parse_uri,
    "split_hosts": split_hosts,
    "parse_host": parse_host,
    "Connection": lambda text: Connection(text, _connect=False),
    "ReplicaSetConnection": lambda text: ReplicaSetConnection(text, _connect=False),
    "Connection(host, port)": lambda text: Connection(text, 27017, _connect=False),
    "Connection(host=bytes)": lambda text: Connection(text.encode(), _connect=False),
    "parse_uri(bytes)": lambda text: parse_uri(text.encode()),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("shape", SHAPES)
def test_malformed_connection_strings_never_show_the_password(shape: str, entry: str) -> None:
    text = shape.format(pw=PASSWORD)
    assert_hidden(outcome(lambda: ENTRY_POINTS[entry](text)), PASSWORD)


@pytest.mark.parametrize(
    "text, entry, fragments",
    [
        (f"u:{PASSWORD}@h:27017", "Connection", ["'u:***@...'", "mongodb://"]),
        (f"mongodb:/u:{PASSWORD}@h", "Connection", ["'mongodb:***@...'"]),
        (f"mongodb//u:{PASSWORD}@h", "Connection", ["'***@...'"]),
        (f"u:{PASSWORD}@h", "parse_host", ["'u:***@...'"]),
        (f"mongodb://u:{PASSWORD}@h:notaport", "parse_uri", ["port", "'h:...'", "not a number"]),
        (f"mongodb://u:{PASSWORD}", "parse_uri", ["port", "'u:...'", "not a number"]),
        (f"mongodb://u:{PASSWORD}%zz@h", "parse_uri", ["percent-encoding", "password"]),
        (f"mongodb://u:{PASSWORD}@h/?foo=bar", "Connection", ["unknown option 'foo'"]),
        (f"mongodb://u:{PASSWORD}@h", "Connection(host=bytes)", ["bytes"]),
        (f"mongodb://u:{PASSWORD}@h", "parse_uri(bytes)", ["bytes"]),
    ],
)
def test_refusals_stay_useful_without_the_password(
    text: str, entry: str, fragments: List[str]
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ENTRY_POINTS[entry](text)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert_hidden(shown_by(info.value), PASSWORD)


def test_an_address_is_still_quoted_whole() -> None:
    """Only entries that may hold a password are cut at their ':'."""
    for text, shown in [("h:0", "'h:0'"), ("::1:27017", "'::1:27017'"), ("[::1]:x", "'[::1]:x'")]:
        with pytest.raises(ConfigurationError) as info:
            split_hosts(text)
        assert shown in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "text, redacted",
    [
        ("mongodb://u:pw@h", "mongodb://u:***@h"),
        ("mongodb://u:pw@h/db?w=1", "mongodb://u:***@h/db?w=1"),
        ("mongodb://u@h", "mongodb://u@h"),  # no password: as is
        ("u@h", "u@h"),
        ("mongodb://h:1", "mongodb://h:1"),
        ("u:pw@h:1", "u:***@h:1"),
        ("mongodb:/u:pw@h", "mongodb:***@h"),
        ("mongodb//u:pw@h", "***@h"),
        ("mongodb://u:p@w@h", "mongodb://u:***@h"),
        ("mongodb://u:p/w@h", "mongodb://u:***@h"),
        ("mongodb://u:a://b@h", "mongodb://u:***@h"),
        ("u:a://b@h", "u:***@h"),
        ("mongodb://u:pw@h/x@y", "mongodb://u:***@y"),
    ],
)
def test_redact_uri(text: str, redacted: str) -> None:
    assert redact_uri(text) == redacted


# -- Hypothesis: any password, any malformed shape ---------------------------------------------

_core = st.text(
    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=8, max_size=14
)
_decorations = st.sampled_from(
    [
        "",
        "%",
        "%z",
        "%zz",
        "%41",
        "%ff",
        "%ED%A0%80",
        "%01",
        "%C3%A9",
        "é",
        "€",
        "@",
        ":",
        "/",
        "?",
        "#",
        " ",
        ",",
        "[",
        "]",
        "%40",
        "%3A",
        "%2F",
        ":27017",
        "@h",
        "\x00",
        "\udc80",
    ]
)
# An unescaped '@' at the start of a password ends the userinfo there: what follows is the
# host, and a host is shown (in connection errors too), so no '@' comes before the core.
passwords = st.builds(
    lambda before, core, after: (f"{before}Qz{core}Jx{after}", f"Qz{core}Jx"),
    _decorations.filter(lambda text: "@" not in text),
    _core,
    _decorations,
)
_options = st.sampled_from(
    [
        "",
        "/",
        "/db",
        "/?foo=bar",
        "/?w=abc",
        "/?w=-1",
        "/?authMechanism=PLAIN",
        "/?authMechanism=SCRAM-SHA-256",
        "/?authSource=",
        "/?tls=maybe",
        "/?maxPoolSize=x",
        "/?replicaSet=rs",
        "/?readPreference=nearest",
        "/d b",
        "/?%zz=1",
        "/?appName=%",
    ]
)
_hosts = st.sampled_from(
    [
        "h",
        "h:1",
        "h:notaport",
        "h:0",
        "h:",
        "[::1]",
        "[::1",
        "h1:1,h2:2",
        "",
        "h,,x",
        "h@x",
        "/tmp/m.sock",
        "%2Ftmp%2Fm.sock",
        "h%zz",
        "H:27017",
    ]
)
_prefixes = st.sampled_from(
    [
        "mongodb://",
        "mongodb:/",
        "mongodb:",
        "mongodb//",
        "MONGODB://",
        "mongodb:///",
        "",
        "//",
        " mongodb://",
        "mongodb+srv://",
        "http://",
        "mongodb://h0,",
    ]
)
_users = st.sampled_from(["u", "", "al%ice", "a:b", "x@y"])
_separators = st.sampled_from(["@", "", "@@", ":", "/", "?", "%40"])


@st.composite
def connection_strings(draw: st.DrawFn) -> Tuple[str, str]:
    """(text, the distinctive part of its password)."""
    password, secret = draw(passwords)
    user = draw(_users)
    separator, host = draw(_separators), draw(_hosts)
    # Without an '@' after it, a password followed by a socket path is part of that path
    # (``mongodb://u:pw%2Ftmp%2Fm.sock`` names the relative socket ``u:pw/tmp/m.sock``):
    # a host, which is shown, so that shape is left out.
    assume("@" in separator or not host.endswith(".sock"))
    text = draw(_prefixes) + user + ":" + password + separator + host + draw(_options)
    return text, secret


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=connection_strings(), entry=st.sampled_from(sorted(ENTRY_POINTS)))
def test_fuzz_connection_strings_never_show_the_password(case: Tuple[str, str], entry: str) -> None:
    text, secret = case
    if "\udc80" in text and "bytes" in entry:
        text = text.replace("\udc80", "")  # a str that cannot be encoded has no bytes form
    assert_hidden(outcome(lambda: ENTRY_POINTS[entry](text)), secret)


@settings(max_examples=150, deadline=None)
@given(case=passwords, mechanism=st.sampled_from([None, SCRAM_SHA_1, SCRAM_SHA_256]))
def test_fuzz_passwords_refused_by_make_credentials_are_not_shown(
    case: Tuple[str, str], mechanism: Optional[str]
) -> None:
    password, secret = case
    shown = outcome(lambda: make_credentials("alice", password, mechanism=mechanism))
    assert_hidden(shown, secret)


# -- objects that hold credentials -----------------------------------------------------------


def test_objects_holding_credentials_do_not_show_the_password() -> None:
    uri = f"mongodb://alice:{PASSWORD}@h1:1/db?authMechanism=SCRAM-SHA-256"
    parsed = parse_uri(uri)
    assert parsed.password == PASSWORD
    credentials = make_credentials("alice", PASSWORD, "db", SCRAM_SHA_256)
    conn = Connection(uri, _connect=False)
    rsc = ReplicaSetConnection(uri.replace("h1:1", "h1:1,h2:2"), _connect=False)
    try:
        for shown in (parsed, credentials, conn, rsc, conn._parts.credentials, conn.test.things):
            assert_hidden(f"{shown!r} {shown}", PASSWORD)
        assert "alice" in repr(credentials)  # the user is no secret
    finally:
        conn.close()
        rsc.close()


# -- SCRAM against a hostile server (no socket) ---------------------------------------------------


class HostileServer:
    """A ``SocketInfo`` stand-in that plays the server side of SCRAM, badly: ``step`` says
    where it misbehaves, by echoing what the client sent it."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.hello: Dict[str, Any] = {}
        self.received: List[bytes] = []

    def command(self, dbname: str, spec: Mapping[str, Any]) -> Steps[Dict[str, Any]]:
        """A step, like ``SocketInfo.command``: the reply, with no I/O."""
        return self.answer(spec)
        yield  # makes this a generator

    def answer(self, spec: Mapping[str, Any]) -> Dict[str, Any]:
        payload = bytes(spec["payload"])
        self.received.append(payload)
        if "saslStart" in spec:
            nonce = payload.split(b",r=")[1]
            server_first = b"r=" + nonce + b"SRV,s=" + base64.b64encode(b"salt" * 4) + b",i=4096"
            if self.step == "start-error":
                return {
                    "ok": 0,
                    "code": 18,
                    "errmsg": f"no: {payload.decode()}",
                    "payload": payload,
                }
            return {
                "ok": 1,
                "conversationId": 1,
                "done": self.step == "start-done",
                "payload": server_first,
            }
        text = payload.decode()
        fields = dict(part.split("=", 1) for part in text.split(","))
        echo = f"{fields['r']} {fields['p']}"
        if self.step == "continue-error":  # the payload back, and the secrets in other fields
            return {
                "ok": 0,
                "code": 18,
                "errmsg": f"bad proof in {text}",
                "payload": payload,
                "note": {"echo": echo},
            }
        if self.step == "server-error":  # e= echoing the nonce and the proof
            return {"ok": 1, "conversationId": 1, "done": True, "payload": f"e={echo}".encode()}
        forged = b"v=" + base64.b64encode(b"\x01" * 32)
        return {"ok": 1, "conversationId": 1, "done": True, "payload": forged}

    def secrets(self) -> List[str]:
        """The client nonce, the whole nonce and the proof, as the client sent them."""
        found = []
        for payload in self.received:
            for part in payload.decode().split(","):
                if part[:2] in ("r=", "p="):
                    found.append(part[2:])
        return found


@pytest.fixture()
def salted(monkeypatch: pytest.MonkeyPatch) -> List[bytes]:
    """The salted passwords computed (``auth._hi``'s results)."""
    results: List[bytes] = []
    real = auth._hi

    def recording(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        key = real(hash_name, password, salt, iterations)
        results.append(key)
        return key

    monkeypatch.setattr(auth, "_hi", recording)
    return results


def salted_forms(keys: List[bytes]) -> List[str]:
    forms = []
    for key in keys:
        forms += [key.hex(), base64.b64encode(key).decode(), repr(key)[2:-1]]
    return forms


@pytest.mark.parametrize(
    "step, expected",
    [
        ("start-error", "no: n,,n=alice,r=***"),
        ("start-done", "ended the conversation"),
        ("continue-error", "bad proof in c=biws,r=***,p=***"),
        ("server-error", "the server reports '*** ***'"),
        ("signature", "signature is wrong"),
    ],
)
@pytest.mark.parametrize("mechanism", [SCRAM_SHA_1, SCRAM_SHA_256])
def test_a_hostile_server_cannot_make_errors_show_nonces_or_the_proof(
    salted: List[bytes], step: str, expected: str, mechanism: str
) -> None:
    server = HostileServer(step)
    credentials = make_credentials("alice", PASSWORD, mechanism=mechanism)
    with pytest.raises(AuthenticationError) as info:
        run(auth.authenticate(server, credentials))
    shown = shown_by(info.value)
    assert expected in str(info.value), str(info.value)
    secrets = server.secrets()
    assert secrets, "the client sent a nonce"
    assert_hidden(shown, PASSWORD, *secrets, *salted_forms(salted))
    details = info.value.details
    if "payload" in details:
        assert details["payload"] == "<redacted>"
    if "note" in details:
        assert details["note"] == {"echo": "*** ***"}


def test_scram_client_errors_before_a_conversation_show_nothing_secret() -> None:
    nonce = "N0nce" * 3  # (built, so that the traceback's source lines do not spell it)
    scram = ScramClient(SCRAM_SHA_256, "alice", PASSWORD.encode(), nonce=nonce)
    scram.client_first()
    server_first = f"r={nonce}SRV,s=c2FsdA==,i=1".encode()
    with pytest.raises(AuthenticationError, match="1 iterations") as info:
        scram.client_final(server_first)
    assert_hidden(shown_by(info.value) + repr(scram), PASSWORD, nonce)


# -- SecantusDB with --auth ------------------------------------------------------------------------

USER, RIGHT = "carol", "Rt5vWq8NbX3kLp"


@pytest.fixture(scope="module")
def auth_uri() -> Iterator[Callable[[str], str]]:
    """A SecantusDB with user carol, restarted with ``--auth``; builds carol's URI."""

    def setup(conn: Connection) -> None:
        mechanisms = [SCRAM_SHA_1, SCRAM_SHA_256]
        conn.admin.command("createUser", USER, pwd=RIGHT, roles=["root"], mechanisms=mechanisms)

    with secantus_with_auth(setup, prefix="wireclient-secrets-") as server:
        yield lambda password: f"mongodb://{USER}:{quote(password, safe='')}@{server.address}/"


@pytest.fixture()
def conversation(monkeypatch: pytest.MonkeyPatch) -> List[bytes]:
    """Every payload the client sends (its nonce, and its proof)."""
    sent: List[bytes] = []
    first, final = ScramClient.client_first, ScramClient.client_final

    def client_first(self: ScramClient) -> bytes:
        sent.append(first(self))
        return sent[-1]

    def client_final(self: ScramClient, server_first: bytes) -> bytes:
        sent.append(final(self, server_first))
        return sent[-1]

    monkeypatch.setattr(ScramClient, "client_first", client_first)
    monkeypatch.setattr(ScramClient, "client_final", client_final)
    return sent


def conversation_secrets(sent: List[bytes]) -> List[str]:
    return [
        part[2:]
        for payload in sent
        for part in payload.decode().split(",")
        if part[:2] in ("r=", "p=")
    ]


@pytest.mark.parametrize("mechanism", [None, SCRAM_SHA_1, SCRAM_SHA_256])
def test_a_wrong_password_against_secantus_shows_no_secret(
    auth_uri: Callable[[str], str],
    salted: List[bytes],
    conversation: List[bytes],
    mechanism: Optional[str],
) -> None:
    wrong = "Wg3hYt6RcM9sDf"
    uri = auth_uri(wrong) + (f"?authMechanism={mechanism}" if mechanism else "")
    with pytest.raises(AuthenticationError) as info:
        Connection(uri)
    exc = info.value
    assert exc.code == 18 and USER in str(exc)
    secrets = conversation_secrets(conversation)
    assert len(secrets) == 3  # the client nonce, the whole nonce, the proof
    assert salted, "a salted password was computed"
    assert_hidden(shown_by(exc) + repr(exc.details), wrong, *secrets, *salted_forms(salted))


def test_a_replica_set_connection_with_a_wrong_password_shows_no_secret(
    auth_uri: Callable[[str], str], conversation: List[bytes]
) -> None:
    wrong = "Zx4cVb7NmQ2wEr"
    rsc = ReplicaSetConnection(auth_uri(wrong), serverSelectionTimeoutMS=5000)
    try:
        with pytest.raises(AuthenticationError) as info:
            rsc.test.command("ping")
        assert_hidden(shown_by(info.value), wrong, *conversation_secrets(conversation))
        assert_hidden(repr(rsc), wrong)
    finally:
        rsc.close()


def test_a_connection_that_authenticated_shows_no_secret(
    auth_uri: Callable[[str], str], salted: List[bytes], conversation: List[bytes]
) -> None:
    conn = Connection(auth_uri(RIGHT), auto_start_request=False)
    try:
        assert conn.admin.command("ping")["ok"] == 1
        shown = " ".join(
            repr(x)
            for x in (conn, conn._parts.credentials, conn.pool, conn.admin, conn.admin.things)
        )
        shown += str(conn) + repr(conn.pool.stats()) + repr(conn._parts.options)
        assert_hidden(shown, RIGHT, *conversation_secrets(conversation), *salted_forms(salted))
    finally:
        conn.close()
