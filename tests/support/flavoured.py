"""One test body for both clients: the blocking one and the asyncio one.

A test parametrized with the ``flavour`` fixture writes its body once, as a coroutine, and
wraps every call that may do I/O in ``got(...)``: the asyncio client's coroutine is
awaited, the blocking client's result is passed through (its call has already run, in the
loop's thread, which nothing else uses in these tests; its monitor is a thread).
A test module declares the ``flavour`` fixture itself (``params=FLAVOURS``).
``flavour.run(main)`` runs the body on a new loop; ``flavour.open(Blocking, Async, ...)``
builds the connection of the flavour, connected (the asyncio one at ``await
conn.connect()``); ``flavour.make(...)`` builds it unconnected; ``await
flavour.steps(steps)`` runs steps (``wireclient.transport.steps``, ``network.connect(...)``,
``pool.checkout()`` or ``sock.command(...)`` say) with the flavour's driver.

A test that scripts a server while the client waits for it starts the client's call with
``flavour.go(fn, *args)`` (the blocking call in a worker thread, the asyncio one as a Task
on the loop) and does the server's blocking waits off the loop (``off_loop``), so either
client runs meanwhile; ``await`` the returned future for the call's result or error.
``documents(cursor)`` iterates a cursor of either client (``async for`` on an
``AsyncCursor``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from typing import Any, Awaitable, Callable, List, Optional, TypeVar

from waiting import PATIENCE

from wireclient.transport import asynchronous, blocking

T = TypeVar("T")

FLAVOURS = ["blocking", "asyncio"]


async def got(value: Any) -> Any:
    """The result of a call on either client: awaited when it is the asyncio client's."""
    if inspect.isawaitable(value):
        return await value
    return value


class Flavour:
    def __init__(self, name: str) -> None:
        self.name = name
        self.asynchronous = name == "asyncio"

    def __repr__(self) -> str:
        return self.name

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(main(), PATIENCE * 4)

        return asyncio.run(bounded())

    async def open(self, blocking: Any, asynchronous: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.asynchronous:
            return blocking(*args, **kwargs)
        conn = asynchronous(*args, **kwargs)
        try:
            await conn.connect()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def steps(self, steps: Any) -> Any:
        """``steps`` run to its result by the flavour's driver: ``blocking.run`` (in the
        loop's thread), or awaited with ``asynchronous.run``."""
        if not self.asynchronous:
            return blocking.run(steps)
        return await asynchronous.run(steps)

    def make(self, blocking: Any, asynchronous: Any, *args: Any, **kwargs: Any) -> Any:
        """The connection of the flavour, not connected yet (no I/O)."""
        if self.asynchronous:
            return asynchronous(*args, **kwargs)
        return blocking(*args, _connect=False, **kwargs)

    def go(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Start ``fn(*args, **kwargs)`` beside the test (which scripts the server): the
        blocking client's call in a worker thread, the asyncio client's as a Task."""
        if self.asynchronous:
            return asyncio.ensure_future(got(fn(*args, **kwargs)))
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(None, functools.partial(_blocking_call, fn, args, kwargs))


def _blocking_call(fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a worker thread; a coroutine it returns (a test's helper,
    ``Flavour.open``: the blocking client's calls in it do not await) is run there too."""
    value = fn(*args, **kwargs)
    if inspect.isawaitable(value):
        return asyncio.run(got(value))
    return value


async def eventually(predicate: Callable[[], object], timeout: float = PATIENCE) -> bool:
    """``wait_until`` for a test body on the loop: polls ``predicate`` with ``asyncio.sleep``,
    so the loop keeps running meanwhile (an asyncio transport closes its socket on the
    loop's next turn, not inside ``close()``). True as soon as it holds, False after
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return bool(predicate())
        await asyncio.sleep(0.005)
    return True


async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, a blocking call (a mock server's ``receives``), in a worker
    thread: the loop runs on, and with it the asyncio client's Tasks."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def documents(cursor: Any, take: Optional[int] = None) -> Any:
    """Every document of ``cursor`` (or its next ``take``), a list; for an ``AsyncCursor``,
    a coroutine of that list, iterated with ``async for`` (``await got(documents(c))``)."""
    if hasattr(cursor, "__anext__"):

        async def iterate() -> List[Any]:
            out: List[Any] = []
            if take == 0:
                return out
            async for doc in cursor:
                out.append(doc)
                if take is not None and len(out) == take:
                    break
            return out

        return iterate()
    if take is None:
        return list(cursor)
    return [next(cursor) for _ in range(take)]


def monitor_tasks() -> List[asyncio.Task[Any]]:
    """The monitor Tasks running on the current loop."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("wireclient-monitor")]
