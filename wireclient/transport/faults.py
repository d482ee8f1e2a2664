"""Faults: what an exception raised mid-exchange on a socket means to the caller.

This is the one boundary where ``OSError`` (a reset, a timeout, a TLS failure) becomes
wireclient's own error (``AutoReconnect``, ``NetworkTimeout``), and where a peer that is not
a MongoDB server at all is told apart from one that failed (``NotMongoDBError``): nothing
valid has come on the socket yet (no reply, and no reply header answering our request),
and its first bytes cannot start a MongoDB reply (an HTTP server, a TLS port reached
without TLS, a plaintext port reached with it). Messages show
the peer's first bytes, never ours. No I/O here.
"""

from __future__ import annotations

from typing import Any, NoReturn

from wireclient.errors import AutoReconnect, NetworkTimeout, NotMongoDBError, ProtocolError
from wireclient.rules.uri import Address, format_address

_SHOWN_BYTES = 20  # of a foreign peer's first reply, in the error (never bytes we sent)

# OpenSSL's reasons for a TLS handshake answered by something that is not TLS.
_NOT_TLS_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "BAD_RECORD_TYPE",
    }
)


def raise_from(error: BaseException, exc: BaseException) -> NoReturn:
    """Raise ``error``, caused by ``exc``; when the two are the same exception (an error that
    needed no translation: an ``AuthenticationError``, a handshake ``ProtocolError``), raise it
    as it is. ``raise exc from exc`` would make the exception its own ``__cause__``, and
    anything that walks the chain (a logger, an error reporter) would never reach its end."""
    if error is exc:
        raise exc
    raise error from exc


def translate(exc: BaseException, address: Address) -> BaseException:
    """Map an exception raised mid-conversation to the error the caller should see."""
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return NetworkTimeout(f"{format_address(address)}: timed out")
    if isinstance(exc, OSError):
        return AutoReconnect(f"{format_address(address)}: {exc}")
    return exc


def tls_fault(exc: BaseException, address: Address) -> BaseException:
    """A failed TLS handshake: the peer may not speak TLS at all."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, OSError) and reason in _NOT_TLS_REASONS:
        return NotMongoDBError(
            f"{format_address(address)}: the peer did not speak the MongoDB protocol over"
            f" TLS: it answered the TLS handshake with something else ({reason}; a plaintext"
            " port? connect with tls=false)"
        )
    return translate(exc, address)


def mid_exchange(
    exc: BaseException, address: Address, limit: str, reader: Any, spoken: bool, tls: bool
) -> BaseException:
    """The error for ``exc`` raised while exchanging on a socket; ``limit`` names the
    timeout in force, ``reader`` is the socket's MessageReader, ``spoken`` whether a valid
    reply has come on it yet, ``tls`` whether it is a TLS socket."""
    where = format_address(address)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        got = reader.buffered
        detail = f", {got} bytes of a reply read" if got else ""
        error: BaseException = NetworkTimeout(f"{where}: timed out ({limit}{detail})")
    else:
        error = translate(exc, address)
    if spoken:
        return error
    # Nothing valid has come on this socket yet: is the peer a MongoDB server at all?
    if isinstance(error, ProtocolError) and error.side == "remote":
        what = f"its first reply is not a MongoDB message ({error})"
    elif isinstance(error, AutoReconnect):
        what = reader.foreign_start()
        if what == "a TLS record":
            what = "it sent a TLS record (a TLS port? connect with tls=true)"
        elif what:
            what = f"its first reply is not a MongoDB message ({what})"
        else:
            if tls or reader.buffered or isinstance(error, NetworkTimeout):
                return error
            return AutoReconnect(  # say what the usual cause is
                f"{error} before answering the handshake (a TLS-only server reached"
                " without tls=true does that)"
            )
    else:
        return error
    return NotMongoDBError(
        f"{where}: the peer did not speak the MongoDB protocol: {what}"
        + _first_bytes(reader.peek(_SHOWN_BYTES))
    )


def _first_bytes(prefix: bytes) -> str:
    if not prefix:
        return ""
    hint = " (an HTTP server?)" if prefix.startswith(b"HTTP/") else ""
    return f"; it began {prefix!r}{hint}"
