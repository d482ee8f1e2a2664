"""The blocking driver: runs steps (``steps.py``) on plain sockets and threading primitives.

Theory of operation
-------------------
``run(steps)`` sends each effect's outcome back into the step, or raises its error inside
it, until the step returns. An effect that may block runs under ``settimeout`` of the time
left to its deadline, so one deadline bounds a whole exchange however the peer drips its
bytes; with no deadline a socket is left blocking (no ``settimeout`` at all). Waiting is on
a ``threading.Event``, looked up when a latch is made, so gevent's patched ``threading``
(``monkey.patch_all``) makes every wait cooperative, and its patched ``socket`` every
read and write: the blocking client works in greenlets unchanged.

This module holds no state: everything a step knows is in the step.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any, Optional, Union

from wireclient.rules.uri import UNIX_SOCKET_PORT
from wireclient.transport import dial, steps
from wireclient.transport.steps import T, handlers


def run(step: steps.Steps[T]) -> T:
    """Run ``step`` to its result, doing each effect it yields here and now."""
    send = step.send
    do = _DO
    try:
        effect = send(None)
        while True:
            try:
                outcome = do[effect.__class__](effect)
            except BaseException as exc:  # raised inside the step, where it is handled
                effect = step.throw(exc)
            else:
                effect = send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def _remaining(deadline: float) -> float:
    """Seconds left until ``deadline``; ``TimeoutError`` (socket.timeout) once passed."""
    left = deadline - monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _send(effect: steps.Send) -> Optional[int]:
    sock = effect.conn
    deadline = effect.deadline
    if deadline is not None:
        sock.settimeout(_remaining(deadline))
    sock.sendall(effect.data)
    return None if effect.reader is None else _receive(effect)


def _receive(effect: Union[steps.Receive, steps.Send]) -> int:
    sock = effect.conn
    if effect.deadline is not None:
        sock.settimeout(_remaining(effect.deadline))
    reader = effect.reader
    assert reader is not None
    n: int = sock.recv_into(reader.get_buffer())
    if n:
        reader.buffer_updated(n)
    return n


def _dial(effect: steps.Dial) -> Any:
    sock = dial.open_socket(effect.address, effect.deadline)
    if effect.address[1] != UNIX_SOCKET_PORT:
        import socket  # loaded already by dial.open_socket

        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except BaseException:
            sock.close()
            raise
    return sock


def _start_tls(effect: steps.StartTLS) -> Any:
    sock = effect.conn
    try:
        if effect.deadline is not None:  # the whole TLS handshake runs under this timeout
            sock.settimeout(_remaining(effect.deadline))
        return effect.context.wrap_socket(sock, server_hostname=effect.server_hostname)
    except BaseException:
        sock.close()
        raise


def _wait(effect: steps.Wait) -> bool:
    return bool(effect.latch.wait(effect.timeout))


def _sleep(effect: steps.Sleep) -> None:
    import time  # looked up per call, so gevent's patched sleep is honoured

    time.sleep(effect.seconds)


_DO = handlers(globals())


def latch() -> steps.Latch:
    """A latch for ``Wait`` (``threading.Event``: gevent's when it has patched threading)."""
    return threading.Event()  # type: ignore[return-value]


__all__ = ["latch", "run"]
