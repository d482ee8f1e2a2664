"""The credentials every socket of one client authenticates with: the URI's, and those
``Database.authenticate()`` adds (``logout()`` takes them out).

pymongo 2.8's semantics: ``db.authenticate(user, password)`` checks the credentials on the
server at once (``OperationFailure`` if they are wrong), then every socket of the
connection is authenticated with them, including sockets opened later and other threads'
sockets; ``db.logout()`` forgets them. One user per database: authenticating another user
on the same database needs a ``logout()`` first.

How: a connection owns a ``CredentialStore`` (built with its other parts, ``assembly.py``).
Its connector (``ClientParts.connector``) authenticates each new socket with the URI's
credentials (during the handshake, as before) and then with every credential of the store,
in the order they were added. ``CredentialStore.login`` (``Database.authenticate``) adds the
credentials and clears every pool of the connection (``Pool.clear``: a new
generation), so idle sockets are closed and sockets in use are dropped when they come back;
a request's socket is replaced before its next operation. Then it runs
``connectionStatus`` on the operation path: that opens a socket, which authenticates with
the new credentials; if that fails, they are taken out of the store again and the
``AuthenticationError`` is raised. ``logout`` removes them and clears the pools the same
way (``CredentialStore.logout``), so sockets are re-made without them (current servers have
no ``logout`` command).

The mechanism: ``'DEFAULT'`` is negotiated once, at ``authenticate``, by asking the server
which SCRAM mechanisms the user has (``hello`` with ``saslSupportedMechs``), and the
credentials keep the one chosen, so new sockets need no negotiation.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

from wireclient.errors import ConfigurationError, OperationFailure, WireClientError
from wireclient.rules.arguments import check_str

if TYPE_CHECKING:
    from wireclient.engine.executor import Executor
    from wireclient.transport.auth import Credentials
    from wireclient.transport.network import SocketInfo
    from wireclient.transport.steps import Steps

_COMMAND_NOT_FOUND = 59


class CredentialStore:
    """The credentials every new socket of one connection authenticates with."""

    __slots__ = ("uri", "_added", "_lock")

    def __init__(self, uri: Optional[Credentials]) -> None:
        self.uri = uri  # authenticated during the handshake (network.connect)
        self._added: Dict[str, Credentials] = {}  # by source database, in order
        self._lock = threading.Lock()

    def added(self) -> List[Credentials]:
        with self._lock:
            return list(self._added.values())

    def get(self, source: str) -> Optional[Credentials]:
        with self._lock:
            found = self._added.get(source)
        if found is None and self.uri is not None and self.uri.source == source:
            return self.uri
        return found

    def add(self, credentials: Credentials) -> None:
        with self._lock:
            self._added[credentials.source] = credentials

    def remove(self, source: str, only: Optional[Credentials] = None) -> bool:
        with self._lock:
            current = self._added.get(source)
            if current is None or (only is not None and current is not only):
                return False
            del self._added[source]
            return True

    def authenticate_socket(self, sock: SocketInfo) -> Steps[None]:
        """Authenticate a new, handshaken socket with every added credential; a socket that
        fails is closed before the error propagates."""
        added = self.added()
        if not added:
            return
        from wireclient.transport import auth  # loaded only by connections that authenticate

        try:
            for credentials in added:
                yield from auth.authenticate(sock, credentials)
        except BaseException:
            sock.close()
            raise

    def login(
        self,
        executor: Executor,
        dbname: str,
        name: Any,
        password: Any,
        source: Any,
        mechanism: Any,
        extra: Iterable[str],
    ) -> Steps[bool]:
        """``Database.authenticate`` (see the module notes)."""
        for option in extra:
            raise ConfigurationError(
                f"authenticate: option {option!r} is not supported (wireclient speaks "
                "SCRAM-SHA-1 and SCRAM-SHA-256 only)"
            )
        from wireclient.transport import auth

        check_str(name, "name")
        source = dbname if source is None else check_str(source, "source")
        credentials = auth.make_credentials(name, password, source, mechanism)
        current = self.get(source)
        if current is not None:
            if _same(current, credentials):
                return True
            raise OperationFailure(
                f"another user ({current.username!r}) is already authenticated to database "
                f"{source!r}: call logout() on it first"
            )
        credentials = yield from _negotiated(executor, credentials)
        self.add(credentials)
        _clear_pools(executor)
        try:
            yield from executor.run("admin", {"connectionStatus": 1})
        except WireClientError:
            self.remove(source, credentials)
            raise
        return True

    def logout(self, executor: Executor, source: str) -> None:
        """``Database.logout``: forget the credentials added for the database ``source``;
        sockets are re-made without them. The URI's credentials stay (they are the
        connection's own)."""
        if self.remove(source):
            _clear_pools(executor)


def _same(a: Credentials, b: Credentials) -> bool:
    return (a.username, a._password, a.source) == (b.username, b._password, b.source)


def _negotiated(executor: Executor, credentials: Credentials) -> Steps[Credentials]:
    """The credentials with their SCRAM mechanism chosen from the server's list for the
    user (asked once, on the operation path)."""
    from wireclient.transport import auth

    if credentials.mechanism is not None:
        return credentials
    user = f"{credentials.source}.{credentials.username}"
    reply: Dict[str, Any] = {}
    for name in ("hello", "isMaster"):
        found = yield from executor.run("admin", {name: 1, "saslSupportedMechs": user}, check=False)
        assert found is not None
        reply = found
        if reply.get("ok") == 1 or reply.get("code") != _COMMAND_NOT_FOUND:
            break
    mechanism = auth.select_mechanism(credentials, reply)
    return auth.make_credentials(
        credentials.username, credentials._password, credentials.source, mechanism
    )


def _clear_pools(executor: Executor) -> None:
    for pool in executor.selector.pools():
        pool.outdate_all()


__all__ = ["CredentialStore"]
