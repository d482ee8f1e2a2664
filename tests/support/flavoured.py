"""One test body for both clients: the blocking one and the asyncio one.

A test parametrized with the ``flavour`` fixture writes its body once, as a coroutine, and
wraps every call that may do I/O in ``got(...)``: the asyncio client's coroutine is
awaited, the blocking client's result is passed through (its call has already run, in the
loop's thread, which nothing else uses in these tests; its monitor is a thread).
A test module declares the ``flavour`` fixture itself (``params=FLAVOURS``).
``flavour.run(main)`` runs the body on a new loop; ``flavour.open(Blocking, Async, ...)``
builds the connection of the flavour, connected (the asyncio one at ``await
conn.connect()``).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, List, TypeVar

from waiting import PATIENCE

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


def monitor_tasks() -> List[asyncio.Task[Any]]:
    """The monitor Tasks running on the current loop."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("wireclient-monitor")]
