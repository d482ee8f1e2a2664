"""mockupdb servers that stop at once.

``MockupDB``'s accept loop polls ``select()`` with a one-second timeout and ``stop()`` joins
it, and closing the listening socket does not wake a ``select()`` in another thread: every
stop cost up to a second, about a second per test that uses a mock server (a minute of the
suite). ``install()`` makes ``stop()`` first mark the server stopped, then connect to it once,
which wakes the accept loop; it sees the mark and ends, and the original ``stop()`` finds it
done. conftest.py installs it for the whole suite.
"""

from __future__ import annotations

import socket
from typing import Any, Callable

import mockupdb

_original_stop: Callable[[Any], None] = mockupdb.MockupDB.stop


def _stop(self: Any) -> None:
    listening = getattr(self, "_listening_sock", None)
    if getattr(self, "_accept_thread", None) is not None and listening is not None:
        try:
            family, address = listening.family, listening.getsockname()
        except OSError:  # stopped already: the socket is closed
            pass
        else:
            self._stopped = True  # the accept loop leaves when it wakes
            try:
                with socket.socket(family, socket.SOCK_STREAM) as wake:
                    wake.settimeout(5)
                    wake.connect(address)
            except OSError:
                pass  # then it leaves at its next poll, as before
    _original_stop(self)


def install() -> None:
    mockupdb.MockupDB.stop = _stop  # type: ignore[method-assign]
