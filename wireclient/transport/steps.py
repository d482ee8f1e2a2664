"""Steps: the operation path written once, as generators that name the I/O they need.

Theory of operation
-------------------
Every part of wireclient that talks to a server (connecting, the handshake, SCRAM, one
exchange of a message and its reply, waiting for a pooled socket, server selection, the
operation path, every public method that runs a command) is written once, as a *step*: a
generator function that does all the deciding itself and, whenever it needs the outside
world, yields an *effect* (a small value below) and receives what came of it (or has the
error raised inside it, where its own ``try`` blocks handle it like any other). A step
calls another with ``yield from``; nothing in a step blocks, sleeps or awaits.

Two drivers run steps, and they are the only code that differs between the blocking and
the asyncio client:

- ``blocking.run(steps)`` (``transport/blocking.py``): each effect done on a plain socket,
  under a ``settimeout`` of the time left, waiting on ``threading`` primitives (which gevent
  patches: the blocking client keeps working in greenlets unchanged);
- ``await asynchronous.run(steps)`` (``transport/asynchronous.py``): each effect done with
  the running asyncio loop (a transport and a protocol per socket, TLS through asyncio's
  ssl, futures for waiting). A cancelled Task has ``CancelledError`` raised at the effect
  it was waiting on: the step's own error handling closes a socket with bytes in flight,
  exactly as it would for a timeout.

A deadline is a ``time.monotonic()`` value, or None for no limit; each effect that may
block is bounded by the deadline it carries, and raises ``TimeoutError`` when it passes.

The public classes expose a step as a method through ``flavours.operation``: a
``Blocking`` class (``Connection``, ``Collection``...) gets a method that runs the step with
the blocking driver and returns its result; an ``Asynchronous`` one (``AsyncConnection``,
``AsyncCollection``...) gets a coroutine method. The step itself is written once, in the
class both share.

No I/O here, and nothing imported that does any: this module only names things.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, Mapping, Optional, TypeVar

if TYPE_CHECKING:
    from wireclient.protocol import MessageReader
    from wireclient.rules.uri import Address

T = TypeVar("T")

#: A step: a generator yielding effects, returning a ``T``.
Steps = Generator["Effect", Any, T]


class Effect:
    """Something a step needs done outside it (``verb``: the name its drivers do it by)."""

    __slots__ = ()
    verb = ""


class Send(Effect):
    """Write all of ``data`` on ``conn`` by ``deadline``. With a ``reader``, then read what
    comes as ``Receive`` does, by the same deadline, and give its result: a request and the
    first bytes of its reply in one effect (the operation path's usual exchange)."""

    verb = "send"
    __slots__ = ("conn", "data", "deadline", "reader")

    def __init__(
        self,
        conn: Any,
        data: bytes,
        deadline: Optional[float],
        reader: Optional[MessageReader] = None,
    ) -> None:
        self.conn = conn
        self.data = data
        self.deadline = deadline
        self.reader = reader


class Receive(Effect):
    """Read what has come on ``conn`` (a byte or more, waiting for it by ``deadline``) into
    ``reader`` (``reader.get_buffer()``, then ``reader.buffer_updated(n)``); the result is
    how many bytes, 0 when the peer closed the connection."""

    verb = "receive"
    __slots__ = ("conn", "reader", "deadline")

    def __init__(self, conn: Any, reader: MessageReader, deadline: Optional[float]) -> None:
        self.conn = conn
        self.reader = reader
        self.deadline = deadline


class Dial(Effect):
    """Open a TCP (or Unix domain) connection to ``address`` by ``deadline``, trying each
    address the name resolves to; the result is the driver's connection object (a
    connected socket, or the asyncio driver's stream). ``OSError`` (``TimeoutError`` once
    the deadline passes) on failure."""

    verb = "dial"
    __slots__ = ("address", "deadline")

    def __init__(self, address: Address, deadline: Optional[float]) -> None:
        self.address = address
        self.deadline = deadline


class StartTLS(Effect):
    """Run the TLS handshake on ``conn`` with ``context`` by ``deadline``; the result is
    the connection to use from now on (the one given is closed on failure)."""

    verb = "start_tls"
    __slots__ = ("conn", "context", "server_hostname", "deadline")

    def __init__(
        self, conn: Any, context: Any, server_hostname: str, deadline: Optional[float]
    ) -> None:
        self.conn = conn
        self.context = context
        self.server_hostname = server_hostname
        self.deadline = deadline


class Wait(Effect):
    """Wait until ``latch`` is set or ``timeout`` seconds pass (None: no limit); the
    result is whether it was set. The latch is the driver's (``Driver.latch()``)."""

    verb = "wait"
    __slots__ = ("latch", "timeout")

    def __init__(self, latch: Any, timeout: Optional[float]) -> None:
        self.latch = latch
        self.timeout = timeout


class Sleep(Effect):
    """Let others run for ``seconds`` (a cooperative pause; 0 yields once)."""

    verb = "sleep"
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Latch:
    """What ``Wait`` waits on: set by whoever has something for the waiter (a pool handing
    over a socket, a monitor finishing a check). Each driver has its own (a
    ``threading.Event``, an asyncio future); steps only call these three."""

    def set(self) -> None:  # pragma: no cover - the interface
        raise NotImplementedError

    def clear(self) -> None:  # pragma: no cover - the interface
        raise NotImplementedError

    def is_set(self) -> bool:  # pragma: no cover - the interface
        raise NotImplementedError


EFFECTS = (Send, Receive, Dial, StartTLS, Wait, Sleep)


def handlers(namespace: Mapping[str, Any]) -> Dict[type, Callable[[Any], Any]]:
    """A driver's table of what it does for each effect: its function ``_<verb>`` for every
    class of ``EFFECTS`` (``namespace``: the driver module's globals). A driver that lacks
    one fails when it is imported, not when a step first yields that effect."""
    return {effect: namespace[f"_{effect.verb}"] for effect in EFFECTS}


def done(value: T) -> Steps[T]:
    """A step that needs no I/O and returns ``value`` (where a shared method sometimes has
    nothing to send)."""
    return value
    yield  # pragma: no cover - makes this a generator


__all__ = [
    "Dial",
    "EFFECTS",
    "Effect",
    "Latch",
    "Receive",
    "Send",
    "Sleep",
    "StartTLS",
    "Steps",
    "Wait",
    "done",
    "handlers",
]
