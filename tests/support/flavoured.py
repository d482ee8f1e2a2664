"""One test body for both clients: the blocking one and the asyncio one.

A test parametrized with the ``flavour`` fixture writes its body once, as a coroutine, and
wraps every call that may do I/O in ``got(...)``: the asyncio client's coroutine is
awaited, the blocking client's result is passed through (its call has already run, in the
loop's thread, which nothing else uses in these tests; its monitor is a thread).
A test module declares the ``flavour`` fixture itself (``params=FLAVOURS``).
``flavour.run(main)`` runs the body on a new loop; ``flavour.open(Blocking, Async, ...)``
builds the connection of the flavour, connected (the asyncio one at ``await
conn.connect()``); ``await flavour.steps(steps)`` runs steps (``wireclient.transport.steps``,
``network.connect(...)`` or ``sock.command(...)`` say) with the flavour's driver.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, Awaitable, Callable, List, TypeVar

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


def monitor_tasks() -> List[asyncio.Task[Any]]:
    """The monitor Tasks running on the current loop."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("wireclient-monitor")]
