"""The exception hierarchy. Every error wireclient raises is a WireClientError.

WireClientError
 +-- ConfigurationError        bad option or argument value, bad URI, unsupported server,
 |    |                        missing package
 |    +-- InvalidArgument      (also a TypeError) an argument of the wrong type
 +-- InvalidDocument           (also a ValueError) a document we refuse to send: a bad key,
 |    |                        a reference cycle, a value bson cannot encode, too big
 |    +-- DocumentTypeError    (also an InvalidArgument, so a TypeError) not a mapping where
 |    |                        a document is wanted
 |    +-- DocumentTooLarge     over the server's maxBsonObjectSize (a stored document), over
 |                             it plus the 16 KiB command allowance (a command, filter or
 |                             statement), or a message over maxMessageSizeBytes; refused
 |                             before anything is sent: the socket and the request stay
 +-- InvalidOperation          an API misuse (e.g. a cursor modified after iteration began)
 +-- ProtocolError             a frame that breaks the wire protocol (says which side broke it)
 +-- ConnectionFailure         cannot talk to a server
 |    +-- AutoReconnect        the socket died; the operation may be retried on a new one
 |    |    +-- NetworkTimeout  a connect / read / write took longer than its timeout
 |    |    +-- NotPrimaryError the member is not (or no longer) primary
 |    |    +-- NotMongoDBError the peer's first reply (or its TLS) was not MongoDB's
 |    |    +-- PoolClearedError  the server's pool is paused (cleared after a network error,
 |    |                        until its monitor reaches the server again); retryable
 |    +-- PoolClosedError      the pool was closed for good (its server left the view)
 |    +-- PoolTimeout          no socket became free within waitQueueTimeoutMS
 |    +-- ServerSelectionTimeout  no suitable member within serverSelectionTimeoutMS
 +-- OperationFailure          the server answered ok: 0 (code, details)
      +-- DuplicateKeyError    code 11000 / 11001 / 12582
      +-- WriteConcernError    the write happened but its write concern failed
      +-- CursorNotFound       getMore on a cursor the server no longer has
      +-- CollectionInvalid    create_collection of an existing one; a failed validation
      +-- BulkWriteError       a bulk write met write errors (details: the whole result)
      +-- AuthenticationError  wrong user, password or mechanism
           +-- AuthenticationProtocolError  (also a ProtocolError) a malformed SASL reply

Arguments of the public methods are checked at the call, before anything is sent: a wrong
type raises ``InvalidArgument`` (a ``TypeError``, as Python's own would be, and a
``ConfigurationError``, as a bad option is), a bad value ``ConfigurationError``, and a bad
document ``InvalidDocument``; each message names the argument. Messages never contain a
password, and a URI shown back has its password masked.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional


class WireClientError(Exception):
    """Base class of every wireclient error."""


class ConfigurationError(WireClientError):
    """An option, URI or environment that wireclient cannot work with."""


class InvalidArgument(ConfigurationError, TypeError):
    """An argument of the wrong type (``batch_size=True``, ``w=1.5``, ``upsert='x'``); the
    message names the argument."""


class InvalidDocument(WireClientError, ValueError):
    """A document that cannot be sent: an illegal key, a reference cycle, a value bson
    cannot encode, or too large."""


class DocumentTypeError(InvalidDocument, InvalidArgument):
    """A document argument that is not a mapping (``insert(5)``, ``find('x')``)."""


class DocumentTooLarge(InvalidDocument):
    """A document or message larger than the server's limits, refused before sending.

    ``size`` is its encoded size and ``limit`` the largest the server takes (bytes).
    Nothing was sent, so the socket is still good: it stays in its pool or its request.
    """

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class InvalidOperation(WireClientError):
    """The API was used in a way it does not allow."""


class ProtocolError(WireClientError):
    """A message that breaks the wire protocol.

    ``side`` says who broke it: ``"remote"`` for bytes we received, ``"local"`` for a
    message we were asked to build. ``offset`` is the byte offset in the frame where
    decoding failed, when known.
    """

    def __init__(self, message: str, offset: Optional[int] = None, side: str = "remote") -> None:
        if offset is not None:
            message = f"{message} (at offset {offset})"
        super().__init__(message)
        self.offset = offset
        self.side = side


class ConnectionFailure(WireClientError):
    """A server could not be reached, or a socket to it failed."""


class AutoReconnect(ConnectionFailure):
    """The socket was lost; the socket is discarded and the next operation gets a new one."""


class NetworkTimeout(AutoReconnect):
    """A connect, read or write took longer than its configured timeout."""


class NotMongoDBError(AutoReconnect):
    """The peer does not speak the MongoDB wire protocol: its very first reply on a socket
    (the handshake's) is not a valid MongoDB message (an HTTP server, a peer that greets
    first, a TLS port spoken to in plaintext), or it did not answer a TLS handshake with TLS.

    It is an ``AutoReconnect`` so that the error handler treats it like any failed connect
    (the pool is cleared and the server marked unknown); the message names the address.
    Later frames that break the protocol on a socket that has spoken MongoDB are
    ``ProtocolError``.
    """


class NotPrimaryError(AutoReconnect):
    """The server we wrote to is not (or no longer) the primary."""

    def __init__(self, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(message)
        self.details = dict(details) if details is not None else {}


class PoolClearedError(AutoReconnect):
    """The server's pool is paused: it was cleared after a network error and refuses
    checkouts until its monitor's next successful check marks it ready (CMAP). Only pools
    with a monitor pause (a replica set's members, routers). It is retryable, like the
    network error that cleared the pool, and it is not itself a server error: the error
    handler does not mark the server Unknown for it."""


class PoolClosedError(ConnectionFailure):
    """A checkout from a pool closed for good (its server left the replica set's or the
    routers' view). Not retryable on that pool: the next selection chooses another."""


class PoolTimeout(ConnectionFailure):
    """No socket became available within ``waitQueueTimeoutMS``."""


class ServerSelectionTimeout(ConnectionFailure):
    """No member suitable for the operation was found in time."""


class OperationFailure(WireClientError):
    """The server answered the command with ``ok: 0`` or a write error.

    ``code`` is the server's error code (None when it gave none) and ``details`` the whole
    reply document (or the write error document).
    """

    def __init__(
        self, message: str, code: Optional[int] = None, details: Optional[Mapping[str, Any]] = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.details = dict(details) if details is not None else {}


class DuplicateKeyError(OperationFailure):
    """A write violated a unique index."""


class WriteConcernError(OperationFailure):
    """The write was applied but its write concern could not be satisfied."""


class CursorNotFound(OperationFailure):
    """The server has no cursor with that id (it was killed or timed out)."""


class CollectionInvalid(OperationFailure):
    """A collection cannot be created (it exists) or failed validation."""


class BulkWriteError(OperationFailure):
    """A bulk write (2.8's ``execute()``, ``bulk_write``, ``insert_many``) met write errors
    or write concern errors. ``details`` is the whole result: ``writeErrors`` (each with the
    ``index`` of its operation in the bulk), ``writeConcernErrors``, ``nInserted``,
    ``nUpserted``, ``nMatched``, ``nModified``, ``nRemoved``, ``upserted``."""

    def __init__(self, details: Mapping[str, Any]) -> None:
        errors = details.get("writeErrors") or []
        what = f"{len(errors)} write error(s)" if errors else "a write concern error"
        code = errors[0].get("code") if errors else None
        super().__init__(f"bulk write failed with {what}", code, details)


class AuthenticationError(OperationFailure):
    """Authentication failed: wrong user, password, source or mechanism."""


class AuthenticationProtocolError(AuthenticationError, ProtocolError):
    """Authentication failed because a reply broke the protocol (a field of a
    ``saslStart`` / ``saslContinue`` reply missing or of the wrong type): both an
    ``AuthenticationError`` and a ``ProtocolError`` (``side="remote"``)."""


__all__ = [
    "WireClientError",
    "ConfigurationError",
    "InvalidArgument",
    "InvalidDocument",
    "DocumentTypeError",
    "DocumentTooLarge",
    "InvalidOperation",
    "ProtocolError",
    "ConnectionFailure",
    "AutoReconnect",
    "NetworkTimeout",
    "NotPrimaryError",
    "NotMongoDBError",
    "PoolClearedError",
    "PoolClosedError",
    "PoolTimeout",
    "ServerSelectionTimeout",
    "OperationFailure",
    "DuplicateKeyError",
    "WriteConcernError",
    "CursorNotFound",
    "CollectionInvalid",
    "BulkWriteError",
    "AuthenticationError",
    "AuthenticationProtocolError",
]
