"""The asyncio client against a real SecantusDB: requests per Task, the child-Task rule,
a Task that ends in a request, cancellation with a reply due, a server restart under 100
Tasks in requests, and the Requests page's example in asyncio (docs/asyncio.md).

Each test runs on the stdlib loop and, where installed, on uvloop (the ``loop`` fixture).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, List, Set, TypeVar

import pytest
from servers import wait_until_serving
from waiting import PATIENCE

from wireclient import AsyncConnection, AsyncMongoClient, Connection
from wireclient.errors import AutoReconnect, InvalidOperation

T = TypeVar("T")
NO_POLL = 3600.0  # check_interval: idle sockets are never polled before use

LOOPS = ["asyncio"]
try:
    import uvloop  # noqa: F401

    LOOPS.append("uvloop")
except ImportError:  # the test extra installs it where it exists (not on Windows)
    pass


@pytest.fixture(params=LOOPS)
def run(request: Any) -> Callable[[Callable[[], Awaitable[T]]], T]:
    """``run(main)``: ``main()`` to completion on a new loop of the kind asked for."""

    def runner(main: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(main(), PATIENCE * 4)

        if request.param == "uvloop":
            import uvloop

            return uvloop.run(bounded())  # type: ignore[no-any-return]
        return asyncio.run(bounded())

    return runner


async def whoami(conn: Any) -> str:
    return str((await conn.admin.command("whatsmyuri"))["you"])


def test_basic_crud_and_cursor(server: Any, run: Any) -> None:
    async def main() -> None:
        async with AsyncMongoClient(server.uri) as conn:
            coll = conn.test_async.basics
            await coll.drop()
            result = await coll.insert_one({"_id": 1, "x": 1})
            assert result.inserted_id == 1
            await coll.insert_many([{"_id": i, "x": i} for i in range(2, 12)])
            assert (await coll.find_one({"_id": 3}))["x"] == 3
            await coll.update({"_id": 1}, {"$inc": {"x": 10}}, w=0)
            seen = [doc["_id"] async for doc in coll.find({}, batch_size=3).sort("_id", 1)]
            assert seen == list(range(1, 12))
            assert len(await coll.find({"x": {"$gt": 5}}).to_list(4)) == 4
            assert (await conn.test_async.command("ping"))["ok"] == 1
            assert await coll.count_documents({}) == 11

    run(main)


def test_requests_page_example_in_asyncio(server: Any, run: Any) -> None:
    """The Requests page's example (pymongo 2.x docs), adapted only for asyncio: a
    fire-and-forget update, then a read that sees it, in a request."""

    async def main() -> List[int]:
        connection = AsyncMongoClient(server.uri)
        counts = connection.test_async.counts
        await counts.drop()
        region, browser, os = "US", "Firefox", "Mac OS X"
        printed = []
        request = connection.start_request()
        try:
            await counts.update(
                {"region": region, "browser": browser, "os": os},
                {"$inc": {"n": 1}},
                upsert=True,
                safe=False,  # fire-and-forget write
            )
            # always runs after update has completed
            count = sum([p["n"] async for p in counts.find({"region": region})])
        finally:
            request.end()
        printed.append(count)
        assert connection.in_request() is False
        async with connection.start_request():
            assert connection.in_request()
            await counts.update(
                {"region": region, "browser": browser, "os": os},
                {"$inc": {"n": 1}},
                upsert=True,
                safe=False,
            )
            printed.append(sum([p["n"] async for p in counts.find({"region": region})]))
        assert connection.in_request() is False  # request automatically ended
        await connection.close()
        return printed

    assert run(main) == [1, 2]


def _stale_reads(uri: str, tasks: int, in_requests: bool) -> Any:
    """``tasks`` Tasks, each doing w=0 ``$inc`` on its own document then reading it back,
    three times; returns (stale reads, distinct sockets the Tasks used)."""

    async def main() -> Any:
        conn = AsyncMongoClient(uri)
        coll = conn.test_async.stale
        await coll.drop()
        await coll.insert_many([{"_id": i, "n": 0} for i in range(tasks)])
        stale = 0
        sockets: Set[Any] = set()

        async def one(i: int) -> None:
            nonlocal stale
            request = conn.start_request() if in_requests else None
            try:
                for expected in range(1, 4):
                    await coll.update({"_id": i}, {"$inc": {"n": 1}}, w=0)
                    doc = await coll.find_one({"_id": i})
                    if doc["n"] != expected:
                        stale += 1
                    if request is not None:
                        sockets.add(id(conn.request_socket()))
            finally:
                if request is not None:
                    request.end()

        await asyncio.gather(*(one(i) for i in range(tasks)))
        # every write landed in the end, with or without requests
        await coll.find_one()  # acknowledged: after every queued write of its socket
        await conn.close()
        return stale, len(sockets)

    return main


def test_a_thousand_tasks_in_requests_read_their_writes(server: Any, run: Any) -> None:
    stale, sockets = run(_stale_reads(server.uri, 1000, in_requests=True))
    assert stale == 0
    assert 1 <= sockets <= 100  # the pool's bound: Tasks wait for a socket, fairly


def test_requests_are_per_task_and_end_with_the_task(server: Any, run: Any) -> None:
    async def main() -> None:
        conn = AsyncMongoClient(server.uri)
        assert not conn.in_request()
        entered = asyncio.Event()
        leave = asyncio.Event()

        async def in_a_request() -> str:
            conn.start_request()
            me = await whoami(conn)
            entered.set()
            await leave.wait()
            return me  # ends without end_request: the done-callback gives the socket back

        task = asyncio.ensure_future(in_a_request())
        await entered.wait()
        assert not conn.in_request()  # the request is the other Task's
        assert conn.request_count() == 1
        assert await whoami(conn) != "x"
        leave.set()
        await task
        await asyncio.sleep(0)  # the done-callback runs on the loop's next turn
        assert conn.request_count() == 0
        assert conn.pool.in_use == 0
        await conn.close()

    run(main)


def test_a_child_task_never_shares_its_parents_socket(server: Any, run: Any) -> None:
    """A Task created inside a request is a caller of its own: it starts its own request
    under auto_start_request, and is in none otherwise (context variables are copied into
    child Tasks: requests are keyed by the Task, not by one)."""

    async def main(auto_start: bool) -> Dict[str, Any]:
        conn = AsyncConnection(server.uri, auto_start_request=auto_start)
        conn.start_request()
        parent = await whoami(conn)

        async def child() -> Dict[str, Any]:
            before = conn.in_request()
            me = await whoami(conn)
            return {"before": before, "me": me, "after": conn.in_request()}

        seen = await asyncio.create_task(child())
        conn.end_request()
        await conn.close()
        return {"parent": parent, **seen}

    for auto_start in (True, False):
        seen = run(lambda auto_start=auto_start: main(auto_start))  # type: ignore[misc]
        assert seen["before"] is False
        assert seen["me"] != seen["parent"]
        assert seen["after"] is auto_start


def test_cancelled_operation_with_a_reply_due_closes_its_socket(server: Any, run: Any) -> None:
    """A Task cancelled while its reply is due: the socket, with bytes in flight, is closed,
    never pooled; the Task's request stays, and its next operation binds a new socket."""
    from wireclient.monitoring import CommandListener

    async def main() -> None:
        sent = asyncio.Event()

        class PingSent(CommandListener):
            def started(self, event: Any) -> None:
                if event.command_name == "ping":
                    sent.set()  # the ping goes out next, then its Task awaits the reply

        admin = Connection(server.uri, auto_start_request=False)
        conn = AsyncMongoClient(server.uri, event_listeners=[PingSent()])
        seen: Dict[str, Any] = {}

        async def in_a_request() -> None:
            conn.start_request()
            first = await whoami(conn)
            sock = seen["sock"] = conn.request_socket()
            admin.admin.command(
                {
                    "configureFailPoint": "failCommand",
                    "mode": {"times": 1},
                    "data": {
                        "failCommands": ["ping"],
                        "blockConnection": True,
                        "blockTimeMS": 2000,
                    },
                }
            )
            try:
                await conn.admin.command("ping")
            except asyncio.CancelledError:
                seen["closed"] = sock.closed
                seen["in_request"] = conn.in_request()
                seen["moved"] = await whoami(conn) != first  # the Task goes on, rebound
                seen["rebound"] = conn.request_socket() is not sock
                raise
            finally:
                conn.end_request()

        try:
            task = asyncio.ensure_future(in_a_request())
            await sent.wait()  # we run again only once the ping's Task awaits its reply
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert seen == {
                "sock": seen["sock"],
                "closed": True,
                "in_request": True,
                "moved": True,
                "rebound": True,
            }
            assert conn.pool.in_use == 0
        finally:
            admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
            admin.close()
            await conn.close()

    run(main)


def test_restart_under_a_hundred_tasks_in_requests_costs_one_auto_reconnect(
    fresh_server: Any, run: Any
) -> None:
    """The blocking client's PYTHON-345 test with Tasks: each Task in a request binds a
    socket; the server restarts; the first operation after it meets a dead socket and
    raises AutoReconnect, the others (run after it) get new sockets quietly."""
    tasks = 100

    async def main() -> Any:
        conn = AsyncMongoClient(fresh_server.uri, max_pool_size=tasks + 2)
        conn.pool.check_interval = NO_POLL
        coll = conn.test_async.restart
        await coll.find_one()
        bound = 0
        all_bound = asyncio.Event()
        go = asyncio.Event()
        turn = asyncio.Lock()
        errors: List[Any] = []
        moved = 0

        async def work() -> None:
            nonlocal bound, moved
            conn.start_request()
            try:
                before = await whoami(conn)
                bound += 1
                if bound == tasks:
                    all_bound.set()
                await go.wait()
                for k in range(3):
                    try:
                        if k == 0:
                            async with turn:
                                await coll.find_one()
                        else:
                            await coll.find_one()
                    except Exception as exc:
                        errors.append((k, exc))
                if await whoami(conn) != before:
                    moved += 1
            finally:
                conn.end_request()

        workers = [asyncio.ensure_future(work()) for _ in range(tasks)]
        await all_bound.wait()
        await asyncio.get_running_loop().run_in_executor(None, fresh_server.restart)
        await asyncio.get_running_loop().run_in_executor(None, wait_until_serving, fresh_server)
        go.set()
        await asyncio.gather(*workers)
        await conn.close()
        return errors, moved

    errors, moved = run(main)
    assert len(errors) <= 1, errors
    assert all(isinstance(exc, AutoReconnect) and k == 0 for k, exc in errors), errors
    assert moved == tasks


def test_handshake_properties_need_a_socket_first(server: Any, run: Any) -> None:
    async def main() -> None:
        conn = AsyncConnection(server.uri)
        with pytest.raises(InvalidOperation):
            _ = conn.max_bson_size
        await conn.connect()
        assert conn.max_bson_size > 0
        await conn.close()

    run(main)
