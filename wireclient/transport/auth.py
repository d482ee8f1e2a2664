"""SCRAM-SHA-1 and SCRAM-SHA-256 authentication (RFC 5802, RFC 7677), stdlib only.

Theory of operation
-------------------
``Connection`` turns the URI's userinfo into a ``Credentials`` object once, with
``make_credentials``; that is where every check that needs no server happens (an empty
username, a missing password, a mechanism wireclient does not implement, a password that
SASLprep refuses). For each new socket, ``network.connect`` asks ``hello_fields`` what to
add to the ``hello`` handshake (``saslSupportedMechs: "<source>.<user>"`` when the
mechanism is to be negotiated, so negotiation costs no extra round trip), then calls
``authenticate`` with the handshaken socket (``handshake_and_authenticate``: both steps).

Speculative authentication (the handshake spec): the hello also carries the saslStart of
the first step as ``speculativeAuthenticate`` (with ``db``: the source), for the user's
mechanism or, when it is to be negotiated, SCRAM-SHA-256 (``speculate``). A server that
takes it answers with the saslStart reply inside the hello reply, and the conversation goes
on from there with saslContinue: a new socket costs hello + one saslContinue. A server that
does not (older, or the user has no SCRAM-SHA-256 credentials) answers without it, and the
ordinary conversation runs with the negotiated mechanism.

``authenticate`` picks the mechanism (the user's, or SCRAM-SHA-256 when the hello reply
lists it for this user and SCRAM-SHA-1 otherwise, as MongoDB's auth spec requires) and
drives a ``ScramClient`` over ``saslStart``/``saslContinue`` on the source database:

    client-first   n,,n=<user>,r=<client nonce>                      saslStart
    server-first   r=<client nonce + server nonce>,s=<salt>,i=<iterations>
    client-final   c=biws,r=<nonce>,p=<proof>                         saslContinue
    server-final   v=<server signature>                               (done: true)

``ScramClient`` is sans-IO: it turns server messages into client messages and never touches
a socket, so the RFC test vectors run against it with fixed nonces. The server must prove
that it knows the password too: a missing or wrong server signature is an
``AuthenticationError``, whatever ``done`` says. ``saslStart`` carries
``options: {skipEmptyExchange: true}``; a server that ignores it answers the client-final
with ``done: false`` and gets one empty ``saslContinue``.

The PBKDF2 step (``Hi``) is the only slow part (thousands of HMACs). Each ``Credentials``
keeps the salted passwords it has derived, in memory only, keyed by (mechanism, salt,
iteration count); the password is the credentials' own, so each entry is effectively keyed
by (password, salt, iterations) as the spec asks. A new socket to the same server reuses
the entry. An entry is stored only after the server has proved itself, so a server that
fails its signature check cannot fill the cache.

Password preparation: SCRAM-SHA-1 hashes ``hex(md5("<user>:mongo:<password>"))`` (the
MONGODB-CR legacy digest MongoDB requires); SCRAM-SHA-256 uses the password prepared with
SASLprep (RFC 4013, as a stored string). Usernames are never SASLprepped (MongoDB's rule);
``,`` and ``=`` in them are escaped as ``=2C`` and ``=3D``.

Secrets: no password, salted password, nonce or proof is in a ``repr``, a message, a chained
error or ``details`` (SASL payloads read ``'<redacted>'``); errors name user, mechanism, db.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any, Dict, Mapping, MutableMapping, Optional, Tuple

from wireclient.errors import (
    AuthenticationError,
    ConfigurationError,
)
from wireclient.rules.options import (
    AUTH_MECHANISMS,
    DEFAULT_MECHANISM,
    SCRAM_SHA_1,
    SCRAM_SHA_256,
    UNSUPPORTED_MECHANISMS,
    check_auth_mechanism,
)
from wireclient.transport.sasl import SaslConversation
from wireclient.transport.saslprep import saslprep
from wireclient.transport.steps import Steps

# The mechanisms (implemented, and known but refused) are defined with the option table, so
# the authMechanism option and make_credentials accept exactly the same names.
SUPPORTED_MECHANISMS = AUTH_MECHANISMS

MIN_ITERATIONS = 4096  # the auth spec's floor, against downgrade by a man in the middle
_NONCE_BYTES = 24
_CACHE_SIZE = 16  # salted passwords kept per Credentials (one per salt the server uses)
_HASH_NAMES = {SCRAM_SHA_1: "sha1", SCRAM_SHA_256: "sha256"}
_GS2_HEADER = b"n,,"  # no channel binding, no authzid
_CHANNEL_BINDING = b"c=" + base64.b64encode(_GS2_HEADER)  # "c=biws"

KeyCache = MutableMapping[Tuple[str, bytes, int], bytes]


# -- credentials --------------------------------------------------------------------------


class Credentials:
    """A user, a password, the database that holds the user, and the mechanism (or None).

    Made by ``make_credentials``; immutable in use. ``repr`` leaves the password out.
    """

    __slots__ = ("username", "source", "mechanism", "_password", "_keys")

    def __init__(self, username: str, password: str, source: str, mechanism: Optional[str]) -> None:
        self.username = username
        self.source = source
        self.mechanism = mechanism  # None: negotiate at the handshake
        self._password = password
        self._keys: Dict[Tuple[str, bytes, int], bytes] = {}

    def __repr__(self) -> str:
        return (
            f"Credentials(username={self.username!r}, source={self.source!r}, "
            f"mechanism={self.mechanism!r})"
        )

    def password_input(self, mechanism: str) -> bytes:
        """The bytes PBKDF2 hashes for ``mechanism`` (the MongoDB digest or SASLprep form)."""
        if mechanism == SCRAM_SHA_1:
            return mongo_password_digest(self.username, self._password).encode("ascii")
        try:
            return saslprep(self._password).encode("utf-8")
        except ValueError as exc:
            raise ConfigurationError(
                f"the password of user {self.username!r} cannot be used with SCRAM-SHA-256: {exc}"
            ) from None

    def clear_cache(self) -> None:
        """Forget the salted passwords derived so far."""
        self._keys.clear()


def credentials_from_uri(
    username: str, password: Optional[str], options: Mapping[str, Any], database: Optional[str]
) -> Credentials:
    """The credentials a URI's user info names, with its ``authSource`` (else the URI's
    database, else ``admin``) and ``authMechanism``."""
    return make_credentials(
        username,
        password,
        source=options.get("authSource") or database or "admin",
        mechanism=options.get("authMechanism"),
    )


def make_credentials(
    username: Optional[str],
    password: Optional[str],
    source: str = "admin",
    mechanism: Optional[str] = None,
) -> Credentials:
    """Check what can be checked without a server and return the ``Credentials``.

    ``mechanism`` is ``None`` (or ``'DEFAULT'``) to negotiate, ``'SCRAM-SHA-1'`` or
    ``'SCRAM-SHA-256'``; anything else raises ``ConfigurationError`` naming it.
    """
    if mechanism is not None:
        if not isinstance(mechanism, str):
            raise ConfigurationError(f"authMechanism must be a string, not {mechanism!r}")
        mechanism = check_auth_mechanism(mechanism)
        if mechanism == DEFAULT_MECHANISM:
            mechanism = None
    if not isinstance(username, str):
        raise ConfigurationError(f"the username must be a string, not {type(username).__name__}")
    if not username:
        raise ConfigurationError("the username is empty")
    _check_encodable(username, "the username")
    if password is None:
        raise ConfigurationError(
            f"SCRAM authentication needs a password for user {username!r} "
            "(write mongodb://user:password@host)"
        )
    if not isinstance(password, str):
        raise ConfigurationError(f"the password must be a string, not {type(password).__name__}")
    if not password:
        raise ConfigurationError(f"the password of user {username!r} is empty")
    _check_encodable(password, "the password")
    if not isinstance(source, str) or not source:
        raise ConfigurationError(f"authSource must be a non-empty string, not {source!r}")
    credentials = Credentials(username, password, source, mechanism)
    if mechanism == SCRAM_SHA_256:
        credentials.password_input(SCRAM_SHA_256)  # fail now on a password SASLprep refuses
    return credentials


def _check_encodable(text: str, what: str) -> None:
    # Not text.encode() in a try: its error, even suppressed, would chain the whole string.
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise ConfigurationError(f"{what} is not valid Unicode (a lone surrogate)")


# -- the handshake seam -------------------------------------------------------------------


def hello_fields(
    credentials: Credentials, speculation: Optional[ScramClient] = None
) -> Dict[str, Any]:
    """Fields to add to the ``hello`` of a new socket: mechanism negotiation, if needed, and
    the first SCRAM step of ``speculation`` (``speculate``) with its database."""
    fields: Dict[str, Any] = {}
    if credentials.mechanism is None:
        fields["saslSupportedMechs"] = f"{credentials.source}.{credentials.username}"
    if speculation is not None:
        fields["speculativeAuthenticate"] = {**_sasl_start(speculation), "db": credentials.source}
    return fields


def speculate(credentials: Credentials) -> Optional[ScramClient]:
    """The SCRAM client whose first step rides in the ``hello`` (the handshake spec's
    speculative authentication): the user's mechanism, or SCRAM-SHA-256 when it is to be
    negotiated. None when that cannot be (a password SASLprep refuses, for a user whose
    mechanism is then negotiated to SCRAM-SHA-1 the ordinary way)."""
    mechanism = credentials.mechanism or SCRAM_SHA_256
    try:
        password = credentials.password_input(mechanism)
    except ConfigurationError:
        return None
    return ScramClient(
        mechanism,
        credentials.username,
        password,
        cache=credentials._keys,
        source=credentials.source,
    )


def handshake_and_authenticate(
    sock_info: Any, credentials: Credentials, app_name: Optional[str], compression: Any = None
) -> Steps[None]:
    """The authentication handshake of a new socket: ``hello`` carrying mechanism
    negotiation and the first SCRAM step, then the rest of the conversation."""
    speculation = speculate(credentials)
    yield from sock_info.handshake(app_name, hello_fields(credentials, speculation), compression)
    yield from authenticate(sock_info, credentials, speculation)


def _sasl_start(scram: ScramClient) -> Dict[str, Any]:
    return {
        "saslStart": 1,
        "mechanism": scram.mechanism,
        "payload": scram.client_first(),
        "autoAuthorize": 1,
        "options": {"skipEmptyExchange": True},
    }


def select_mechanism(credentials: Credentials, hello: Mapping[str, Any]) -> str:
    """The user's mechanism, else SCRAM-SHA-256 if the server lists it, else SCRAM-SHA-1."""
    if credentials.mechanism is not None:
        return credentials.mechanism
    mechanisms = hello.get("saslSupportedMechs")
    if isinstance(mechanisms, (list, tuple)) and SCRAM_SHA_256 in mechanisms:
        return SCRAM_SHA_256
    return SCRAM_SHA_1


def authenticate(
    sock_info: Any, credentials: Credentials, speculation: Optional[ScramClient] = None
) -> Steps[None]:
    """Run the SCRAM conversation on a handshaken socket; raise ``AuthenticationError``.

    ``sock_info`` is a ``network.SocketInfo`` (its ``hello`` and ``command``). An arbiter
    holds no users, so a socket to one is left unauthenticated (as the auth spec says).
    When the hello carried ``speculation``'s first step, its reply has a
    ``speculativeAuthenticate`` document and the mechanism negotiated is the one speculated
    with, the conversation goes on from that server-first message (one round trip fewer);
    otherwise it starts over with ``saslStart`` and the negotiated mechanism.
    """
    # Taken out of the hello: the server's nonce and salt are for this conversation only
    # (not for HelloLog, Connection.max_bson_size or anything else that reads the handshake).
    answer = sock_info.hello.pop("speculativeAuthenticate", None)
    if sock_info.hello.get("arbiterOnly"):
        return
    mechanism = select_mechanism(credentials, sock_info.hello)
    if speculation is not None and answer is not None and speculation.mechanism == mechanism:
        scram = speculation
        conversation = SaslConversation(sock_info, credentials.source, scram)
        if not isinstance(answer, Mapping):
            raise conversation.malformed("hello", "speculativeAuthenticate is not a document")
        step, reply = conversation.check("hello", {**answer, "ok": 1})
    else:  # no answer, or one for SCRAM-SHA-256 when negotiation chose SCRAM-SHA-1
        scram = ScramClient(
            mechanism,
            credentials.username,
            credentials.password_input(mechanism),
            cache=credentials._keys,
            source=credentials.source,
        )
        conversation = SaslConversation(sock_info, credentials.source, scram)
        step, reply = yield from conversation.send(_sasl_start(scram))
    if step.done:
        raise scram.error("the server ended the conversation before the client proof", reply)
    step, reply = yield from conversation.send_continue(scram.client_final(step.payload))
    scram.verify_server_final(step.payload)
    if not step.done:  # a server that ignored skipEmptyExchange
        step, reply = yield from conversation.send_continue(b"")
        if not step.done:
            raise scram.error("the server did not end the conversation", reply)


# -- the SCRAM conversation (sans-IO) -----------------------------------------------------


def _client_nonce() -> str:
    """A fresh client nonce: 24 random bytes, base64 (printable, no comma)."""
    return base64.b64encode(secrets.token_bytes(_NONCE_BYTES)).decode("ascii")


def _hi(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 ``Hi()``: PBKDF2 with HMAC-``hash_name``, one block (the tests count calls)."""
    return hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)


class ScramClient:
    """One client side of a SCRAM conversation, with no I/O.

    ``password`` is what PBKDF2 hashes (see ``Credentials.password_input``). ``nonce``
    fixes the client nonce (tests); ``cache`` is where salted passwords are looked up and,
    once the server has proved itself, stored.
    """

    __slots__ = (
        "mechanism",
        "username",
        "source",
        "_password",
        "_hash_name",
        "_nonce",
        "_cache",
        "_client_first_bare",
        "_server_signature",
        "_pending",
        "_secrets",
        "verified",
    )

    def __init__(
        self,
        mechanism: str,
        username: str,
        password: bytes,
        nonce: Optional[str] = None,
        cache: Optional[KeyCache] = None,
        source: Optional[str] = None,
    ) -> None:
        if mechanism not in _HASH_NAMES:
            raise ConfigurationError(f"{mechanism!r} is not a SCRAM mechanism")
        self.mechanism = mechanism
        self.username = username
        self.source = source
        self._password = password
        self._hash_name = _HASH_NAMES[mechanism]
        self._nonce = nonce if nonce is not None else _client_nonce()
        self._cache = cache
        self._client_first_bare = b""
        self._server_signature: Optional[bytes] = None
        self._pending: Optional[Tuple[Tuple[str, bytes, int], bytes]] = None
        self._secrets = [self._nonce]  # masked in errors: the nonces and, once made, the proof
        self.verified = False

    def error(
        self, problem: str, details: Optional[Mapping[str, Any]] = None, code: Optional[int] = None
    ) -> AuthenticationError:
        where = f" on database {self.source!r}" if self.source is not None else ""
        message = f"{self.mechanism} authentication of user {self.username!r}{where} failed: "
        return AuthenticationError(message + self._redact(problem), code, self._redact(details))

    def _redact(self, value: Any) -> Any:
        """``value`` (a message, a reply) without SASL payloads, nonces or the proof."""
        if isinstance(value, str):
            for secret in sorted(filter(None, self._secrets), key=len, reverse=True):
                value = value.replace(secret, "***")
            return value
        if isinstance(value, Mapping):
            return {
                k: "<redacted>" if k == "payload" else self._redact(v) for k, v in value.items()
            }
        return value

    def client_first(self) -> bytes:
        """``n,,n=<user>,r=<nonce>``: the saslStart payload."""
        user = self.username.replace("=", "=3D").replace(",", "=2C")
        self._client_first_bare = f"n={user},r={self._nonce}".encode()
        return _GS2_HEADER + self._client_first_bare

    def client_final(self, server_first: bytes) -> bytes:
        """Check the server-first message and answer with the client proof."""
        if not self._client_first_bare:
            raise self.error("client_first() was not sent")
        fields = self._parse(server_first, "server-first")
        if "m" in fields:
            raise self.error("the server requires a SCRAM extension (m=) we do not know")
        for name in ("r", "s", "i"):
            if name not in fields:
                raise self.error(f"the server-first message has no {name}= attribute")
        nonce = fields["r"]
        if not nonce.startswith(self._nonce) or len(nonce) <= len(self._nonce):
            raise self.error("the server nonce does not extend the client nonce")
        try:
            salt = base64.b64decode(fields["s"], validate=True)
        except ValueError:
            raise self.error("the server's salt is not base64") from None
        if not salt:
            raise self.error("the server's salt is empty")
        try:
            iterations = int(fields["i"])
        except ValueError:
            raise self.error("the server's iteration count is not a number") from None
        if iterations < MIN_ITERATIONS:
            raise self.error(
                f"the server asks for {iterations} iterations, fewer than the minimum "
                f"{MIN_ITERATIONS}"
            )
        key = (self.mechanism, salt, iterations)
        salted = self._cache.get(key) if self._cache is not None else None
        if salted is None:
            salted = _hi(self._hash_name, self._password, salt, iterations)
            self._pending = (key, salted)
        digest = self._hash_name
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        stored_key = hashlib.new(digest, client_key).digest()
        without_proof = _CHANNEL_BINDING + b",r=" + nonce.encode("ascii")
        auth_message = b",".join((self._client_first_bare, server_first, without_proof))
        client_signature = hmac.new(stored_key, auth_message, digest).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_signature))
        self._secrets += [nonce, base64.b64encode(proof).decode("ascii")]
        server_key = hmac.new(salted, b"Server Key", digest).digest()
        self._server_signature = hmac.new(server_key, auth_message, digest).digest()
        return without_proof + b",p=" + base64.b64encode(proof)

    def verify_server_final(self, server_final: bytes) -> None:
        """Check the server signature (``v=``); only then is the salted password cached."""
        if self._server_signature is None:
            raise self.error("client_final() was not sent")
        fields = self._parse(server_final, "server-final")
        if "e" in fields:
            raise self.error(f"the server reports {fields['e']!r}")
        if "v" not in fields:
            raise self.error("the server did not send its signature (v=)")
        try:
            signature = base64.b64decode(fields["v"], validate=True)
        except ValueError:
            raise self.error("the server's signature is not base64") from None
        if not hmac.compare_digest(signature, self._server_signature):
            raise self.error(
                "the server's signature is wrong: the server does not know this user's "
                "credentials (a wrong server, or someone in the middle)"
            )
        self.verified = True
        if self._pending is not None and self._cache is not None:
            key, salted = self._pending
            if len(self._cache) >= _CACHE_SIZE:
                # Oldest first; list() is one step, safe while other threads insert.
                for old in list(self._cache)[: len(self._cache) - _CACHE_SIZE + 1]:
                    self._cache.pop(old, None)
            self._cache[key] = salted
        self._pending = None

    def _parse(self, message: bytes, what: str) -> Dict[str, str]:
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"the {what} message is not UTF-8") from None
        fields: Dict[str, str] = {}
        for part in text.split(","):
            if len(part) < 2 or part[1] != "=" or not part[0].isalpha():
                raise self.error(f"the {what} message is malformed")
            fields.setdefault(part[0], part[2:])
        return fields


# -- password preparation -----------------------------------------------------------------


def mongo_password_digest(username: str, password: str) -> str:
    """``hex(md5("<user>:mongo:<password>"))``: what SCRAM-SHA-1 hashes, per MongoDB."""
    data = f"{username}:mongo:{password}".encode()
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


__all__ = [
    "SCRAM_SHA_1",
    "SCRAM_SHA_256",
    "SUPPORTED_MECHANISMS",
    "UNSUPPORTED_MECHANISMS",
    "Credentials",
    "ScramClient",
    "authenticate",
    "hello_fields",
    "credentials_from_uri",
    "make_credentials",
    "mongo_password_digest",
    "saslprep",
    "select_mechanism",
]
