"""Opening the TCP (or Unix domain) connection to a server, before any TLS or handshake.

``network.connect`` calls ``open_socket`` first; everything after the connect (TLS, the
handshake, the exchanges) is ``network``'s.
"""

from __future__ import annotations

from time import monotonic
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from wireclient.rules.uri import UNIX_SOCKET_PORT, Address

if TYPE_CHECKING:
    import socket


def open_socket(address: Address, deadline: Optional[float]) -> socket.socket:
    """A connected TCP (or Unix domain) socket, trying each address the name resolves to
    until ``deadline`` (a ``time.monotonic()`` value; None: no limit); ``socket.timeout``
    once it passes. Name resolution itself is the resolver's."""
    import socket  # here, not at the top: `from wireclient import Connection` loads no socket

    host, port = address
    if port == UNIX_SOCKET_PORT:  # a Unix domain socket path (see uri.py)
        targets: List[Tuple[Any, ...]] = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", host)]
    else:
        # An ASCII name goes to the resolver as bytes: given text, getaddrinfo runs the idna
        # codec, which loads encodings.idna, stringprep and unicodedata (about 440 KB) for a
        # name that needs no conversion.
        name: Any = host.encode("ascii") if host.isascii() else host
        targets = list(socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM))
    error: Optional[OSError] = None
    for family, kind, proto, _, target in targets:
        sock = socket.socket(family, kind, proto)
        try:
            if deadline is None:
                sock.settimeout(None)
            else:
                left = deadline - monotonic()
                if left <= 0:
                    raise socket.timeout("timed out")
                sock.settimeout(left)
            sock.connect(target)
            return sock
        except OSError as exc:  # socket.timeout included: the deadline passed
            sock.close()
            error = exc
            if isinstance(exc, socket.timeout):
                break
        except BaseException:
            sock.close()
            raise
    assert error is not None  # getaddrinfo returns at least one address or raises
    raise error


__all__ = ["open_socket"]
