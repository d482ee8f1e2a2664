"""Fair waiting for a pooled socket, end to end against SecantusDB: with maxPoolSize=1 and
one caller holding the socket in a request, the other callers wait first come first served,
time out with ``PoolTimeout`` no sooner than waitQueueTimeoutMS, and (asyncio) a cancelled
waiter gives its place to the next.

Each test runs on both clients (the ``flavour`` fixture, ``flavoured.py``): the holder is the
test's own caller, the waiters are threads of the blocking client or Tasks of the asyncio
one. The pool's own cases (stand-in sockets) are in test_pool.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, List

import pytest
from flavoured import FLAVOURS, Flavour, eventually, got
from servers import SecantusServer

from wireclient import AsyncMongoClient, MongoClient
from wireclient.errors import PoolTimeout


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


async def whoami(conn: Any) -> str:
    return str((await got(conn.admin.command("whatsmyuri")))["you"])


async def queued(conn: Any, n: int) -> None:
    """Until ``n`` callers wait in ``conn``'s pool (they arrive in the order they queue)."""
    assert await eventually(lambda: conn.pool.stats()["waiting"] >= n), f"{n} waiters never queued"


def test_waiters_are_served_first_come_first_served(
    server: SecantusServer, flavour: Flavour
) -> None:
    order: List[int] = []
    sockets: List[str] = []

    async def main() -> None:
        conn = await flavour.open(
            MongoClient, AsyncMongoClient, server.uri, maxPoolSize=1, waitQueueTimeoutMS=30_000
        )
        try:

            async def wait(n: int) -> None:
                sockets.append(await whoami(conn))
                order.append(n)

            with conn.start_request():  # the test's caller holds the only socket
                held = await whoami(conn)
                waiters = []
                for n in range(4):
                    waiters.append(flavour.go(wait, n))
                    await queued(conn, n + 1)  # arrive in order
                assert order == [] and conn.pool.in_use == 1
            # the request ended: its socket goes to the first waiter, then on in order
            await asyncio.gather(*waiters)
            assert order == [0, 1, 2, 3]
            assert set(sockets) == {held} and conn.pool.open_count == 1
        finally:
            await got(conn.close())

    flavour.run(main)


def test_waiters_time_out_after_wait_queue_timeout(
    server: SecantusServer, flavour: Flavour
) -> None:
    async def main() -> None:
        conn = await flavour.open(
            MongoClient, AsyncMongoClient, server.uri, maxPoolSize=1, waitQueueTimeoutMS=200
        )
        try:

            async def wait() -> float:
                started = time.monotonic()
                with pytest.raises(PoolTimeout):
                    await whoami(conn)
                return time.monotonic() - started

            with conn.start_request():
                held = await whoami(conn)
                waited = await asyncio.gather(*(flavour.go(wait) for _ in range(3)))
                assert all(seconds >= 0.2 for seconds in waited), waited  # never early
                assert conn.pool.stats()["waiting"] == 0 and conn.pool.open_count == 1
                assert await whoami(conn) == held  # the holder keeps its socket
            assert await whoami(conn) == held  # released: it serves the next caller
        finally:
            await got(conn.close())

    flavour.run(main)


def test_a_cancelled_waiter_gives_its_place_to_the_next(server: SecantusServer) -> None:
    """asyncio only (a thread cannot be cancelled): the first of three waiting Tasks is
    cancelled; the socket goes to the second, then the third."""
    flavour = Flavour("asyncio")
    order: List[str] = []

    async def main() -> None:
        conn = await flavour.open(
            MongoClient, AsyncMongoClient, server.uri, maxPoolSize=1, waitQueueTimeoutMS=30_000
        )
        try:

            async def wait(name: str) -> None:
                await whoami(conn)
                order.append(name)

            with conn.start_request():
                held = await whoami(conn)
                tasks = {}
                for n, name in enumerate(["first", "second", "third"]):
                    tasks[name] = asyncio.create_task(wait(name), name=name)
                    await queued(conn, n + 1)
                tasks["first"].cancel()
                with pytest.raises(asyncio.CancelledError):
                    await tasks["first"]
                assert conn.pool.stats()["waiting"] == 2
            await asyncio.gather(tasks["second"], tasks["third"])
            assert order == ["second", "third"]
            assert conn.pool.open_count == 1 and conn.pool.in_use == 0
            assert await whoami(conn) == held  # the one socket, healthy
        finally:
            await conn.close()

    flavour.run(main)
