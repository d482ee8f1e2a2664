"""Exhaust cursors (wireclient/engine/exhaust.py) against SecantusDB, which honours exhaustAllowed:
it streams a getMore's batches with moreToCome (answering each reply to the getMore itself,
where MongoDB answers each to the previous reply). The stream, the socket it holds, the
pool around it, abandoning it (close, garbage collection), the command events, and the
refusals (limit, tailable, requests). Faults mid-stream, MongoDB's responseTo chaining and a
server that ignores the flag are in test_exhaust_faults.py (mockupdb).

The tests of a stream run on both clients (the ``flavour`` fixture, ``flavoured.py``): the
asyncio client's cursor is iterated with ``async for`` (``documents``), and must get the
same replies and handle the stream's socket the same way."""

from __future__ import annotations

import gc
import struct
import threading
from typing import Any, Awaitable, Callable, List, Tuple

import pytest
from bson import Int64
from flavoured import FLAVOURS, Flavour, documents, got
from servers import SecantusServer

from wireclient import AsyncConnection, AsyncMongoClient, Connection, MongoClient
from wireclient import protocol as p
from wireclient.errors import InvalidOperation, OperationFailure, PoolTimeout
from wireclient.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
    FrameEvent,
    FrameListener,
)
from wireclient.pooling.pool import Pool

CURSOR_NOT_FOUND = 43


class Recorder(CommandListener, FrameListener):
    """Command events and frames, in order (the frames' opCode, flags and responseTo)."""

    def __init__(self) -> None:
        self.commands: List[Tuple[str, str, int]] = []
        self.replies: List[Any] = []
        self.frames: List[Tuple[str, int, int, int, int]] = []
        self.lock = threading.Lock()

    def started(self, event: CommandStartedEvent) -> None:
        self.commands.append(("started", event.command_name, event.request_id))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self.commands.append(("succeeded", event.command_name, event.request_id))
        self.replies.append(event.reply)

    def failed(self, event: CommandFailedEvent) -> None:
        self.commands.append(("failed", event.command_name, event.request_id))

    def _frame(self, direction: str, event: FrameEvent) -> None:
        header = event.header
        flags = struct.unpack_from("<I", event.data, 16)[0] if header.op_code == p.OP_MSG else 0
        with self.lock:
            self.frames.append(
                (direction, header.op_code, flags, header.request_id, header.response_to)
            )

    def sent(self, event: FrameEvent) -> None:
        self._frame("sent", event)

    def received(self, event: FrameEvent) -> None:
        self._frame("received", event)

    def clear(self) -> None:
        self.commands.clear()
        self.replies.clear()
        self.frames.clear()


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


Body = Callable[[Any], Awaitable[None]]


@pytest.fixture()
def run_with(
    server: SecantusServer, recorder: Recorder, flavour: Flavour
) -> Callable[[Body], None]:
    """``run_with(body)``: ``await body(client)`` on the flavour's loop, with a
    ``MongoClient`` or ``AsyncMongoClient`` recording its events, closed after."""

    def runner(body: Body, **options: Any) -> None:
        async def main() -> None:
            options.setdefault("socketTimeoutMS", 10_000)
            client = await flavour.open(
                MongoClient, AsyncMongoClient, server.uri, event_listeners=[recorder], **options
            )
            try:
                await body(client)
            finally:
                await got(client.close())

        flavour.run(main)

    return runner


async def filled(client: Any, name: str, count: int) -> Any:
    coll = client.exhaust[f"{name}_{'async' if client.asynchronous else 'blocking'}"]
    await got(coll.drop())
    if count:
        await got(coll.insert([{"_id": i, "pad": "x" * 20} for i in range(count)]))
    return coll


def pool_of(client: Any) -> Pool:
    pool: Pool = client._executor.selector.pool
    return pool


async def cursor_alive(client: Any, cursor_id: int, collection: str) -> bool:
    try:
        await got(client.exhaust.command({"getMore": Int64(cursor_id), "collection": collection}))
    except OperationFailure as exc:
        assert exc.code == CURSOR_NOT_FOUND, exc
        return False
    return True


def ids(docs: List[Any]) -> List[Any]:
    return [doc["_id"] for doc in docs]


# -- the stream -------------------------------------------------------------------------------


def test_a_stream_of_many_batches_comes_from_one_getmore(run_with: Any, recorder: Recorder) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "many", 1000)
        pool = pool_of(client)
        recorder.clear()
        cursor = coll.find(exhaust=True, batch_size=7)
        seen = ids(await got(documents(cursor, 7 + 7 * 10)))  # the find's batch + 10 replies
        stream = cursor._stream
        assert stream is not None and stream.active and stream.replies == 10
        assert (pool.in_use, pool.open_count) == (1, 1)  # the stream holds the one socket
        seen += ids(await got(documents(cursor)))
        assert seen == list(range(1000))
        assert stream.replies == 143  # 993 documents in batches of 7, the last empty (id 0)
        assert not stream.active and cursor._stream is None and cursor.cursor_id == 0
        assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)  # back, reused
        sent = [f for f in recorder.frames if f[0] == "sent"]
        assert len(sent) == 2  # find, then one getMore for the whole stream
        get_more = sent[1]
        assert get_more[2] == p.MsgFlags.exhaustAllowed
        streamed = [f for f in recorder.frames if f[0] == "received"][1:]
        assert len(streamed) == 143
        assert all(f[2] == p.MsgFlags.moreToCome for f in streamed[:-1]) and streamed[-1][2] == 0
        assert {f[4] for f in streamed} == {get_more[3]}  # SecantusDB answers to the getMore
        assert await got(coll.count()) == 1000  # the socket is healthy: the next runs on it
        assert pool.open_count == 1

    run_with(body)


def test_the_stream_ends_with_the_server_cursor(run_with: Any, recorder: Recorder) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "ends", 25)
        cursor = coll.find({}, exhaust=True).batch_size(10)
        assert len(await got(documents(cursor))) == 25
        cursor_ids = [r["cursor"]["id"] for r in recorder.replies if "cursor" in r]
        assert cursor_ids[-1] == 0 and len(set(cursor_ids[:-1])) == 1
        assert not cursor.alive
        await got(cursor.close())  # nothing to kill, no socket held
        assert (pool_of(client).in_use, pool_of(client).open_count) == (0, 1)

    run_with(body)


def test_other_operations_run_beside_a_stream(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "beside", 40)
        pool = pool_of(client)
        cursor = coll.find(exhaust=True, batch_size=5)
        await got(documents(cursor, 12))
        assert await got(coll.find_one({"_id": 39})) == {"_id": 39, "pad": "x" * 20}  # 2nd socket
        assert (pool.in_use, pool.open_count) == (1, 2)
        assert len(await got(documents(cursor))) == 28
        assert (pool.in_use, pool.open_count) == (0, 2)

    run_with(body)


def test_a_small_result_needs_no_stream(run_with: Any, recorder: Recorder) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "small", 3)
        recorder.clear()
        cursor = coll.find(exhaust=True)
        assert len(await got(documents(cursor))) == 3
        assert cursor._stream is None  # the find returned everything: no getMore
        assert [c[1] for c in recorder.commands] == ["find", "find"]

    run_with(body)


def test_an_empty_collection(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "empty", 0)
        assert await got(documents(coll.find(exhaust=True))) == []

    run_with(body)


def test_command_events_pair_each_streamed_reply(run_with: Any, recorder: Recorder) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "events", 30)
        recorder.clear()
        assert len(await got(documents(coll.find(exhaust=True, batch_size=10)))) == 30

    run_with(body)
    get_mores = [c for c in recorder.commands if c[1] == "getMore"]
    assert len(get_mores) == 6  # three replies (10, 10, then the empty last), a pair each
    assert [c[0] for c in get_mores] == ["started", "succeeded"] * 3
    assert all(a[2] == b[2] for a, b in zip(get_mores[::2], get_mores[1::2]))
    received = [f for f in recorder.frames if f[0] == "received"][1:]
    getmore_id = [f for f in recorder.frames if f[0] == "sent"][1][3]
    # the first pair is the getMore's; each later one is named after the reply before it
    assert [c[2] for c in get_mores[::2]] == [getmore_id] + [f[3] for f in received[:-1]]


# -- abandoning the stream ------------------------------------------------------------------


def test_close_mid_stream_discards_the_socket_and_kills_the_cursor(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "close", 200)
        pool = pool_of(client)
        cursor = coll.find(exhaust=True, batch_size=10)
        await got(documents(cursor, 25))
        cursor_id = cursor.cursor_id
        stream_socket = cursor._stream._sock
        assert stream_socket is not None and (pool.in_use, pool.open_count) == (1, 1)
        await got(cursor.close())
        assert stream_socket.closed  # replies were in flight: never reused
        assert (pool.in_use, pool.open_count) == (0, 1)  # the killCursors' new socket, back
        assert not await cursor_alive(client, cursor_id, coll.name)
        assert await got(coll.count()) == 200 and pool.open_count == 1

    run_with(body)


def test_garbage_collection_mid_stream_discards_the_socket(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "gc", 200)
        pool = pool_of(client)
        cursor = coll.find(exhaust=True, batch_size=10)
        await got(documents(cursor, 25))
        cursor_id = cursor.cursor_id
        stream_socket = cursor._stream._sock
        del cursor
        gc.collect()
        assert stream_socket is not None and stream_socket.closed
        assert (pool.in_use, pool.open_count) == (0, 0)  # no I/O in __del__: the kill waits
        assert await got(coll.count()) == 200  # the next operation sends the kill, new socket
        assert not await cursor_alive(client, cursor_id, coll.name)
        assert (pool.in_use, pool.open_count) == (0, 1)

    run_with(body)


def test_rewind_mid_stream_starts_again(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "rewind", 50)
        cursor = coll.find(exhaust=True, batch_size=10)
        first = ids(await got(documents(cursor, 15)))
        await got(cursor.rewind())
        assert ids(await got(documents(cursor))) == list(range(50))
        assert first == list(range(15))
        assert (pool_of(client).in_use, pool_of(client).open_count) == (0, 1)

    run_with(body)


def test_many_abandoned_streams_do_not_leak(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "leak", 100)
        pool = pool_of(client)

        async def open_cursors() -> int:
            status = await got(client.exhaust.command("serverStatus"))
            return int(status["metrics"]["cursor"]["open"]["total"])

        before = await open_cursors()
        cursor_ids = []
        for i in range(20):
            cursor = coll.find(exhaust=True, batch_size=5)
            await got(documents(cursor, 12))
            cursor_ids.append(cursor.cursor_id)
            if i % 2:
                await got(cursor.close())
            else:
                del cursor
                gc.collect()
        assert await got(coll.count()) == 100  # sends the kills the garbage collector queued
        assert pool.in_use == 0 and pool.open_count <= 2
        assert await open_cursors() <= before
        for cursor_id in cursor_ids:
            assert not await cursor_alive(client, cursor_id, coll.name)

    run_with(body)


# -- refusals -------------------------------------------------------------------------------


def test_limit_and_tailable_are_refused_with_exhaust(server: SecantusServer) -> None:
    client = MongoClient(server.uri, _connect=False)  # no I/O: refused as the cursor is made
    coll = client.exhaust.refusals
    for call, text in [
        (lambda: coll.find(limit=5, exhaust=True), "limit and exhaust"),
        (lambda: coll.find(exhaust=True).limit(5), "limit and exhaust"),
        (lambda: coll.find(limit=5).add_option(64), "limit and exhaust"),
        (lambda: coll.find(exhaust=True)[2:5], "limit and exhaust"),
        (lambda: coll.find(exhaust=True)[3], "limit and exhaust"),
        (lambda: coll.find(tailable=True, exhaust=True), "tailable and exhaust"),
        (lambda: coll.find(exhaust=True).add_option(2), "tailable and exhaust"),
        (lambda: coll.find(tailable=True).add_option(64), "tailable and exhaust"),
    ]:
        with pytest.raises(InvalidOperation, match=text):
            call()
    cursor = coll.find(exhaust=True).remove_option(64).limit(5)  # no longer exhaust
    assert not cursor._options.exhaust
    assert coll.find(exhaust=True)[3:]._options.limit == 0  # no stop: no limit


def test_exhaust_is_refused_inside_a_request(
    server: SecantusServer, recorder: Recorder, flavour: Flavour
) -> None:
    async def main() -> None:
        auto = await flavour.open(  # auto_start_request
            Connection, AsyncConnection, server.uri, event_listeners=[recorder]
        )
        client = await flavour.open(
            MongoClient, AsyncMongoClient, server.uri, event_listeners=[recorder]
        )
        recorder.clear()  # the handshakes
        try:
            with pytest.raises(InvalidOperation, match="inside a request.*auto_start_request"):
                auto.exhaust.c.find(exhaust=True)
            with pytest.raises(InvalidOperation, match="inside a request"):
                await got(documents(auto.exhaust.c.find().add_option(64), 1))
            cursor = client.exhaust.c.find(exhaust=True)  # made outside a request...
            client.start_request()
            try:
                with pytest.raises(InvalidOperation, match="end_request"):
                    client.exhaust.c.find(exhaust=True)
                with pytest.raises(InvalidOperation, match="inside a request"):
                    await got(documents(cursor, 1))  # ...iterated in one
            finally:
                client.end_request()
        finally:
            await got(auto.close())
            await got(client.close())

    flavour.run(main)
    assert recorder.frames == []  # refused before anything was sent


def test_a_request_started_mid_stream_does_not_take_the_stream_socket(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "midrequest", 30)
        pool = pool_of(client)
        cursor = coll.find(exhaust=True, batch_size=5)
        await got(documents(cursor, 8))
        stream_socket = cursor._stream._sock
        with client.start_request():
            assert await got(coll.count()) == 30
            assert client._executor.requests.bound_socket(pool) is not stream_socket
            assert len(await got(documents(cursor))) == 22  # the stream goes on, its socket
        assert (pool.in_use, pool.open_count) == (0, 2)

    run_with(body)


def test_a_stream_holds_one_of_the_pools_sockets(run_with: Any) -> None:
    async def body(client: Any) -> None:
        coll = await filled(client, "maxpool", 30)
        cursor = coll.find(exhaust=True, batch_size=5)
        await got(documents(cursor, 8))
        with pytest.raises(PoolTimeout):
            await got(coll.count())  # the one socket is the stream's until it ends
        assert len(await got(documents(cursor))) == 22
        assert await got(coll.count()) == 30

    run_with(body, maxPoolSize=1, waitQueueTimeoutMS=200)
