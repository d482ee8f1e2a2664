"""The asyncio driver: runs steps (``steps.py``) with the running loop's transports and futures.

Theory of operation
-------------------
``await run(steps)`` sends each effect's outcome back into the step, or raises its error
inside it, until the step returns: the same loop as ``blocking.run``, with each effect
done by a coroutine of this module instead of a blocking call. Whatever is raised at an
``await`` here, ``CancelledError`` included, is raised inside the step first, so a
cancelled Task closes a socket with bytes in flight through the step's own ``except
BaseException``, exactly as a timeout does; the step re-raises it and it propagates.

A connection is a ``Stream``: an asyncio transport and the state its protocol
(``_Protocol``) keeps: the bytes received that no ``Receive`` has taken yet (a
``bytearray``; reading pauses once it holds more than ``_HIGH_WATER``, a largest
document and change, and resumes once a quarter of that is left), whether the peer closed
(EOF, or ``connection_lost`` with its error), and the one future a waiting receiver (or
sender, while the transport's write buffer is above its limit) sleeps on. A ``Receive``
with bytes pending copies what fits into the reader's buffer (``get_buffer()`` /
``buffer_updated(n)``) without waiting; otherwise it waits for bytes, EOF (it returns 0)
or the loss (its ``OSError``: ``ConnectionResetError``...). Over TLS (``StartTLS``:
``loop.start_tls``) the same protocol state goes on under asyncio's TLS transport, in a
``TLSStream``, which alone has a ``cipher`` attribute (how ``network.py`` tells TLS
apart, as it does for an ``ssl.SSLSocket``). A connection serves one task at a time, as a
socket serves one operation.

A deadline (``time.monotonic()``, or None for no limit) bounds each wait: the waiter's
future is resolved with False (raised as ``TimeoutError``) by the connection's one timer
(``_arm``). Deadlines only move later (each exchange's is its start plus
``socketTimeoutMS``), so the timer set for the first serves the next ones: when it fires
before the deadline of the wait under way it sets itself again for that, and a wait costs
a comparison, not a ``call_later``. Nothing waits when bytes are already there. No
``asyncio.wait_for`` and no ``asyncio.timeout`` (3.11+) on the path. Opening a connection
(``Dial``) runs ``loop.create_connection`` as a Task cancelled at the deadline; the TLS
handshake is bounded by ``ssl_handshake_timeout`` (asyncio aborts it with
``ConnectionAbortedError``, raised here as ``TimeoutError`` once the deadline has passed).
Timers are set with relative delays, never with ``loop.time()``, so any loop works
(uvloop included).

A latch (``latch()``) is a flag and the futures of the tasks waiting for it (a ``Wait``
with a timeout has a timer of its own, cancelled when it ends; a waiter that times out or is
cancelled leaves nothing behind); ``set()`` is called from the loop's thread only (a thread
would use ``loop.call_soon_threadsafe``).

This module holds no state: everything a step knows is in the step, everything a
connection knows in its stream.
"""

from __future__ import annotations

import asyncio
import errno
from time import monotonic
from typing import Any, Dict, Optional, Union

from wireclient.rules.uri import UNIX_SOCKET_PORT
from wireclient.transport.steps import (
    Dial,
    Latch,
    Receive,
    Send,
    Sleep,
    StartTLS,
    Steps,
    T,
    Wait,
    handlers,
)

#: Received bytes held for the next ``Receive`` before reading pauses: a largest BSON
#: document and a little more.
_HIGH_WATER = 16 * 1024 * 1024 + 1024
#: Reading resumes once no more than this is held.
_LOW_WATER = _HIGH_WATER // 4
#: ``ssl_handshake_timeout`` with no deadline: asyncio's default is 60 s; no limit is none.
_NO_LIMIT = 365 * 24 * 3600.0
#: How early asyncio's handshake timer may fire and still be the deadline's (uvloop's clock
#: counts milliseconds).
_CLOCK_SLACK = 0.005


async def run(steps: Steps[T]) -> T:
    """Run ``steps`` to its result, doing each effect it yields with the running loop."""
    send = steps.send
    try:
        effect = send(None)
        while True:
            try:
                outcome = await _DO[effect.__class__](effect)
            except BaseException as exc:  # raised inside the step (CancelledError too)
                effect = steps.throw(exc)
            else:
                effect = send(outcome)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# -- connections -------------------------------------------------------------------------


class _Protocol(asyncio.Protocol):
    """What a connection has received and how it ended: the protocol asyncio calls, its
    state shared by a ``Stream`` and, after ``StartTLS``, its ``TLSStream``."""

    __slots__ = (
        "loop",
        "transport",
        "pending",
        "receiver",
        "sender",
        "ended",
        "error",
        "closed",
        "reading_paused",
        "unread",
        "writing_paused",
        "deadline",
        "timer",
        "timer_at",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: Any = None  # the transport reading is paused on (TLS's, after StartTLS)
        self.pending = bytearray()  # received, not yet taken by a Receive
        self.receiver: Optional[asyncio.Future[bool]] = None  # a Receive waiting for bytes
        self.sender: Optional[asyncio.Future[bool]] = None  # a Send waiting for the drain
        self.ended = False  # the peer closed, or the connection was lost
        self.error: Optional[BaseException] = None  # what connection_lost said, if anything
        self.closed = False  # closed by us (Stream.close)
        self.reading_paused = False
        self.unread = True  # nothing read yet: reading starts with the first Receive
        self.writing_paused = False
        self.deadline: Optional[float] = None  # when the wait under way must end
        self.timer: Optional[asyncio.TimerHandle] = None  # the one timer (see _arm)
        self.timer_at = 0.0  # the deadline it was set for

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not a byte is read before a step asks: a server speaks only when spoken to, and
        # what a peer sends first must reach the TLS handshake (StartTLS), if one follows,
        # or the first Receive, from the kernel, as the blocking driver reads it.
        transport.pause_reading()  # type: ignore[attr-defined]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        pending += data
        receiver = self.receiver
        if receiver is not None:
            self.receiver = None
            if not receiver.done():
                receiver.set_result(True)
        if len(pending) > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.ended = True
        self.wake()
        return False  # the transport closes: MongoDB has nothing to say to a half-closed peer

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.ended = True
        if exc is not None and self.error is None:
            self.error = exc
        self.wake()
        self.disarm()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        sender = self.sender
        if sender is not None:
            self.sender = None
            if not sender.done():
                sender.set_result(True)

    def wake(self) -> None:
        """Wake whoever waits: the connection ended, or was closed."""
        for waiter in (self.receiver, self.sender):
            if waiter is not None and not waiter.done():
                waiter.set_result(True)
        self.receiver = self.sender = None

    def disarm(self) -> None:
        """Cancel the timer: nothing will wait on this connection any more."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def ending(self) -> int:
        """What a ``Receive`` with nothing pending gets once the connection has ended: 0 at
        EOF, else the error (a closed stream: ``EBADF``, as a closed socket)."""
        if self.closed:
            raise OSError(errno.EBADF, "the connection is closed")
        if self.error is not None:
            raise self.error
        return 0

    def unwritable(self) -> OSError:
        """Why nothing more can be sent (the connection ended or was closed)."""
        if self.closed:
            return OSError(errno.EBADF, "the connection is closed")
        if isinstance(self.error, OSError):
            return self.error
        return BrokenPipeError(errno.EPIPE, "the peer closed the connection")


class Stream:
    """One connection, as the steps see it: what ``Dial`` returns and ``Send`` /
    ``Receive`` take. ``close()``, ``getsockname()`` and ``settimeout()`` are the socket
    methods ``network.py`` calls; ``readable_now()`` is the poll of an idle pooled socket."""

    __slots__ = ("transport", "protocol")

    def __init__(self, transport: Any, protocol: _Protocol) -> None:
        self.transport = transport
        self.protocol = protocol

    def close(self) -> None:
        """Close the connection (again: nothing), waking a task waiting on it. Bytes
        still waiting to be written are dropped (``abort``), as a peer that stopped
        reading must not keep the socket open; else it is an orderly close."""
        protocol = self.protocol
        if protocol.closed:
            return
        protocol.closed = True
        transport = self.transport
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()
        protocol.wake()
        protocol.disarm()

    def getsockname(self) -> Any:
        """This end's address; ``OSError`` once closed (as a closed socket)."""
        if self.protocol.closed:
            raise OSError(errno.EBADF, "the connection is closed")
        return self.transport.get_extra_info("sockname")

    def settimeout(self, timeout: Optional[float]) -> None:
        """Nothing to do: each effect carries its own deadline."""

    def readable_now(self) -> bool:
        """Whether bytes nobody asked for are pending, or the peer closed (or we did): what
        the blocking client learns by polling the socket."""
        protocol = self.protocol
        if protocol.unread and not (protocol.ended or protocol.closed):
            return _socket_readable(self.transport)  # nothing read yet: ask the kernel
        return bool(protocol.pending) or protocol.ended or protocol.closed


def _socket_readable(transport: Any) -> bool:
    """Whether the socket under ``transport`` (its reading paused) has bytes or the peer's
    close waiting: polled without blocking."""
    import selectors

    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(0))

    def __repr__(self) -> str:
        state = "closed" if self.protocol.closed else "open"
        return f"<{type(self).__name__} {self.transport.get_extra_info('peername')} {state}>"


class TLSStream(Stream):
    """A ``Stream`` over asyncio's TLS transport (``StartTLS``)."""

    __slots__ = ()

    def cipher(self) -> Any:
        """The cipher negotiated, as ``ssl.SSLSocket.cipher()``: (name, protocol, bits)."""
        return self.transport.get_extra_info("cipher")

    def version(self) -> Optional[str]:
        """The TLS version negotiated, as ``ssl.SSLSocket.version()``."""
        ssl_object = self.transport.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.version()

    def getpeercert(self) -> Any:
        """The peer's certificate, as ``ssl.SSLSocket.getpeercert()``."""
        return self.transport.get_extra_info("peercert")


# -- the effects -------------------------------------------------------------------------


def _timed_out() -> TimeoutError:
    return TimeoutError("timed out")


def _arm(protocol: _Protocol, deadline: float, left: float) -> None:
    """Bound the wait starting now by ``deadline`` (``left`` seconds away). A connection
    keeps one timer across its exchanges: deadlines only move later (each is the
    exchange's start plus ``socketTimeoutMS``), so the timer is set for the first and,
    when it fires, sets itself again for the deadline of the wait under way, if that is
    still ahead; a wait costs a comparison, not a timer."""
    protocol.deadline = deadline
    timer = protocol.timer
    if timer is None or protocol.timer_at > deadline:
        if timer is not None:
            timer.cancel()
        protocol.timer_at = deadline
        protocol.timer = protocol.loop.call_later(left, _on_timer, protocol)


def _on_timer(protocol: _Protocol) -> None:
    protocol.timer = None
    deadline = protocol.deadline
    if deadline is None:  # nobody waits: the next wait sets the timer again
        return
    left = deadline - monotonic()
    if left > 0:  # a later exchange's deadline (or the clock's rounding): not yet
        protocol.timer_at = deadline
        protocol.timer = protocol.loop.call_later(left, _on_timer, protocol)
        return
    for waiter in (protocol.receiver, protocol.sender):
        if waiter is not None and not waiter.done():
            waiter.set_result(False)  # False: timed out


def _write(effect: Send) -> bool:
    """Hand ``effect``'s bytes to the transport; whether the sender must wait for the
    write buffer to drain (``_drain``)."""
    stream: Stream = effect.conn
    protocol = stream.protocol
    if protocol.ended or protocol.closed:
        raise protocol.unwritable()  # a closing transport drops what is written, silently
    stream.transport.write(effect.data)
    return protocol.writing_paused


async def _send(effect: Send) -> Optional[int]:
    if _write(effect):
        await _drain(effect)
    return None if effect.reader is None else await _receive(effect)


async def _drain(effect: Send) -> None:
    """Wait, by the effect's deadline, until the transport's write buffer is below its
    limit again (the protocol's ``resume_writing``)."""
    protocol = effect.conn.protocol
    while protocol.writing_paused:  # above the write buffer's limit: wait for the drain
        if protocol.ended or protocol.closed:
            raise protocol.unwritable()
        await _woken(protocol, "sender", effect.deadline)


async def _woken(protocol: _Protocol, role: str, deadline: Optional[float]) -> None:
    """Wait as the connection's ``role`` (``receiver`` or ``sender``: the future the
    protocol resolves when bytes come, the buffer drains, or the connection ends) until it
    wakes us, by ``deadline``; ``TimeoutError`` when the deadline passes first."""
    waiter: asyncio.Future[bool] = protocol.loop.create_future()
    if deadline is not None:
        left = deadline - monotonic()
        if left <= 0:
            raise _timed_out()
        _arm(protocol, deadline, left)
    setattr(protocol, role, waiter)
    try:
        woken = await waiter
    finally:
        setattr(protocol, role, None)
        protocol.deadline = None
    if not woken:
        raise _timed_out()


async def _receive(effect: Union[Receive, Send]) -> int:
    stream: Stream = effect.conn
    protocol = stream.protocol
    if protocol.unread:  # the connection's first read: reading starts now
        protocol.unread = False
        if protocol.transport is not None and not protocol.closed and not protocol.ended:
            protocol.transport.resume_reading()
    pending = protocol.pending
    if not pending or protocol.closed:
        if protocol.ended or protocol.closed:
            return protocol.ending()
        if protocol.receiver is not None:
            raise RuntimeError("another task is already receiving on this connection")
        await _woken(protocol, "receiver", effect.deadline)
        if not pending or protocol.closed:  # woken by EOF, the loss, or close()
            return protocol.ending()
    reader = effect.reader
    assert reader is not None  # a Receive's, or a Send's that reads its reply
    buffer = reader.get_buffer()
    n = len(pending)
    if n <= len(buffer):
        buffer[:n] = pending
        del pending[:]
    else:
        n = len(buffer)
        with memoryview(pending) as view:
            buffer[:] = view[:n]
        del pending[:n]  # cheap: a bytearray drops its front without moving the rest
    reader.buffer_updated(n)
    if protocol.reading_paused and len(pending) <= _LOW_WATER:
        protocol.reading_paused = False
        protocol.transport.resume_reading()
    return n


async def _dial(effect: Dial) -> Stream:
    loop = asyncio.get_running_loop()
    deadline = effect.deadline
    if deadline is None:
        return await _open(loop, effect)
    left = deadline - monotonic()
    if left <= 0:
        raise _timed_out()
    # create_connection takes no timeout: it runs as a Task, cancelled at the deadline.
    task = loop.create_task(_open(loop, effect))
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = task.cancel()

    timer = loop.call_later(left, expire)
    try:
        return await task
    except asyncio.CancelledError:
        if expired:
            raise _timed_out() from None
        _close_orphan(task)
        raise
    except BaseException:
        _close_orphan(task)
        raise
    finally:
        timer.cancel()


def _close_orphan(task: asyncio.Task[Stream]) -> None:
    """Close the stream ``task`` opened after all, when we were cancelled in between."""
    if task.done() and not task.cancelled() and task.exception() is None:
        task.result().close()


async def _open(loop: asyncio.AbstractEventLoop, effect: Dial) -> Stream:
    host, port = effect.address

    def factory() -> _Protocol:
        return _Protocol(loop)

    if port == UNIX_SOCKET_PORT:  # a Unix domain socket path (see uri.py)
        transport, protocol = await loop.create_unix_connection(factory, host)
        return Stream(transport, protocol)
    # asyncio (and uvloop) set TCP_NODELAY on every TCP connection; keepalive is ours
    transport, protocol = await loop.create_connection(factory, host, port)
    stream = Stream(transport, protocol)
    try:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket  # loaded already by asyncio

            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except BaseException:
        stream.close()
        raise
    return stream


async def _start_tls(effect: StartTLS) -> TLSStream:
    stream: Stream = effect.conn
    protocol = stream.protocol
    deadline = effect.deadline
    try:
        if protocol.ended or protocol.closed:
            raise protocol.unwritable()
        left = _NO_LIMIT if deadline is None else deadline - monotonic()
        if left <= 0:
            raise _timed_out()
        try:
            transport = await protocol.loop.start_tls(
                stream.transport,
                protocol,
                effect.context,
                server_hostname=effect.server_hostname,
                ssl_handshake_timeout=left,
            )
        except ConnectionAbortedError as exc:  # asyncio's handshake timeout, or an abort
            if deadline is not None and monotonic() >= deadline - _CLOCK_SLACK:
                raise _timed_out() from exc
            raise
        if transport is None:  # the connection was lost as the handshake ended
            raise protocol.unwritable()
    except BaseException:
        stream.close()  # an ssl.SSLError goes on as it is: faults.tls_fault reads its reason
        raise
    protocol.transport = transport
    protocol.unread = False  # the TLS transport reads (start_tls resumed the socket's reading)
    return TLSStream(transport, protocol)


async def _wait(effect: Wait) -> bool:
    latch: _Latch = effect.latch
    if latch._flag:
        return True
    timeout = effect.timeout
    if timeout is not None and timeout <= 0:
        return False
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[bool] = loop.create_future()
    waiters = latch._waiters
    waiters[waiter] = None
    timer = None if timeout is None else loop.call_later(timeout, _unset, waiter)
    try:
        return await waiter
    finally:
        if timer is not None:
            timer.cancel()
        waiters.pop(waiter, None)


def _unset(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


async def _sleep(effect: Sleep) -> None:
    await asyncio.sleep(effect.seconds)


_DO = handlers(globals())


# -- latches -----------------------------------------------------------------------------


class _Latch(Latch):
    """A flag, and the futures of the tasks waiting for it (in the order they came)."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: Dict[asyncio.Future[bool], None] = {}

    def set(self) -> None:
        """Set the flag and wake every waiter. From the loop's thread only."""
        if self._flag:
            return
        self._flag = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(True)
        self._waiters.clear()

    def clear(self) -> None:
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def __repr__(self) -> str:
        return f"<latch {'set' if self._flag else 'unset'}, {len(self._waiters)} waiting>"


def latch() -> Latch:
    """A latch for ``Wait``: ``set()`` is called from the loop's thread only (from another
    thread: ``loop.call_soon_threadsafe(latch.set)``). Made without a loop: the futures of
    its waiters are made by the loop they wait in."""
    return _Latch()


__all__ = ["Stream", "TLSStream", "latch", "run"]
