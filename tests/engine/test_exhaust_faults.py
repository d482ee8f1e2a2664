"""Exhaust streams: MongoDB's responseTo chaining (each reply answers the previous one), a
server that ignores exhaustAllowed, faults mid-stream (an error reply, a reply for a
finished cursor still flagged moreToCome, a dead socket, a timeout, socketTimeoutMS per
reply, a reply to another request, a malformed reply, a bad checksum), a compressed and a
checksummed stream. After each: what the caller sees, and the pool.

Peers, and why each:

* ``wireclient.mock.MockServer`` for almost all: the stream handling is what is tested,
  and the mock answers a getMore with a whole stream at once. It is built on wireclient's
  codec, so the tests do not trust it with bytes: each reads the client's frame as it
  arrived with ``peer_frames`` (flags, ``getMore``, compressor), and answers with frames
  ``peer_frames`` built (``struct`` and ``bson``; zlib for the compressed stream; its own
  CRC-32C for checksums) through ``request.reply_frame``, so odd frames (moreToCome on an
  error or a finished cursor, a wrong responseTo) are exactly as written. The checksummed
  stream is the mock's own ``stream()``, its CRCs checked by ``peer_frames``.
* mockupdb (``mock_server``), where the test writes to the server's socket over time: a
  frame and then a shutdown (a dead socket mid-stream), frames spaced out (the per-reply
  timeout). The mock answers a request once, all at once; mockupdb lends its socket.

The tests of a stream run on both clients (the ``flavour`` fixture, ``flavoured.py``): the
cursor is iterated beside the test (``flavour.go``: a thread, or a Task with ``async
for``) while the test waits for its frames off the loop and answers them.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from bson import Int64
from flavoured import FLAVOURS, Flavour, documents, got, off_loop
from mock_server import MockServer as MockupDBServer
from mock_server import Received, parse_op_query
from peer_frames import (
    COMPRESSOR_IDS,
    EXHAUST_ALLOWED,
    checksum_verified,
    compress_frame,
    msg_flags,
    op_msg_frame,
    op_reply_frame,
    sent_doc,
    wire_compressor,
)

from wireclient import AsyncConnection, Connection
from wireclient.errors import AutoReconnect, NetworkTimeout, OperationFailure, ProtocolError
from wireclient.mock import MockServer, NoMatchingRequest, Request
from wireclient.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
    FrameListener,
)
from wireclient.pooling.pool import Pool

TIMEOUT = 15  # waits that end at once unless the test fails
CURSOR = 2**40 + 7
FIRST = {"cursor": {"id": Int64(CURSOR), "ns": "test.things", "firstBatch": [{"_id": 0}]}, "ok": 1}


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


Connect = Callable[..., Awaitable[Any]]


def run_with(flavour: Flavour, body: Callable[[Connect], Awaitable[None]]) -> None:
    """``await body(connect)`` on the flavour's loop: ``await connect(server, **options)``
    opens a connection of the flavour to a mock, closed after the body."""

    async def main() -> None:
        made: List[Any] = []

        async def connect(server: Any, **options: Any) -> Any:
            options.setdefault("auto_start_request", False)
            options.setdefault("socketTimeoutMS", TIMEOUT * 1000)
            options.setdefault("connectTimeoutMS", TIMEOUT * 1000)
            conn = await flavour.open(Connection, AsyncConnection, server.uri, **options)
            made.append(conn)
            return conn

        try:
            await body(connect)
        finally:
            for conn in made:
                await got(conn.close())

    flavour.run(main)


def run_on(flavour: Flavour, mock: MockServer, body: Callable[[Any], Awaitable[None]]) -> None:
    """``await body(coll)`` with ``test.things`` of a connection to ``mock``."""

    async def with_coll(connect: Connect) -> None:
        await body((await connect(mock)).test.things)

    run_with(flavour, with_coll)


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer(max_wire_version=17) as server:
        yield server


def pool_of(coll: Any) -> Pool:
    pool: Pool = coll.database.connection._executor.selector.pool
    return pool


def batch(ids: List[int], cursor_id: int = CURSOR) -> Dict[str, Any]:
    docs = [{"_id": i} for i in ids]
    return {"cursor": {"id": Int64(cursor_id), "ns": "test.things", "nextBatch": docs}, "ok": 1}


def answer(request: Request, doc: Dict[str, Any]) -> None:
    """One plain OP_MSG reply, built by peer_frames."""
    request.reply_frame(op_msg_frame(doc, 400 + request.request_id, request.request_id))


def iterate(flavour: Flavour, cursor: Any, take: Optional[int] = None) -> Any:
    """Iterate ``cursor`` beside the test (all of it, or ``take`` documents): the future."""
    return flavour.go(documents, cursor, take)


async def start(
    flavour: Flavour, mock: MockServer, cursor: Any, take: Optional[int] = None
) -> Tuple[Any, Request]:
    """Iterate ``cursor`` beside the test (all of it, or ``take`` documents); answer its
    find with one document and cursor id CURSOR; return the future and the getMore."""
    future = iterate(flavour, cursor, take)
    answer(await mock.receives_async("find"), FIRST)
    request = await mock.receives_async()
    assert sent_doc(request.frame)["getMore"] == Int64(CURSOR)
    assert msg_flags(request.frame) == EXHAUST_ALLOWED
    return future, request


def send(got: Request, *frames: bytes) -> None:
    got.reply_frame(b"".join(frames))


def chained(
    response_to: int, replies: List[Tuple[Dict[str, Any], bool]], **options: Any
) -> List[bytes]:
    """Frames as MongoDB sends them: each reply answers the previous reply's requestID."""
    out = []
    for n, (doc, more) in enumerate(replies):
        out.append(op_msg_frame(doc, 500 + n, response_to, more_to_come=more, **options))
        response_to = 500 + n
    return out


async def nothing_received(mock: MockServer) -> None:
    with pytest.raises(NoMatchingRequest):
        await mock.receives_async(timeout=0.3)


class Events(CommandListener, FrameListener):
    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, int]] = []
        self.received_frames: List[bytes] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.seen.append(("started", event.command_name, event.request_id))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self.seen.append(("succeeded", event.command_name, event.request_id))

    def failed(self, event: CommandFailedEvent) -> None:
        self.seen.append(("failed", event.command_name, event.request_id))

    def received(self, event: Any) -> None:
        self.received_frames.append(event.data)


# -- streams ----------------------------------------------------------------------------------


def test_mongodb_chains_each_reply_to_the_previous_one(mock: MockServer, flavour: Flavour) -> None:
    events = Events()

    async def body(connect: Connect) -> None:
        coll = (await connect(mock, event_listeners=[events])).test.things
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        replies = [(batch([1, 2]), True), (batch([3]), True), (batch([4, 5]), True)]
        send(request, *chained(request.request_id, replies + [(batch([], 0), False)]))
        assert [d["_id"] for d in await future] == [0, 1, 2, 3, 4, 5]
        assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
        pairs = [e for e in events.seen if e[1] == "getMore"]
        ids = [request.request_id, 500, 501, 502]
        assert pairs == [(kind, "getMore", i) for i in ids for kind in ("started", "succeeded")]
        await nothing_received(mock)  # exhausted: no second getMore, no killCursors

    run_with(flavour, body)


def test_a_server_that_ignores_exhaust_allowed_gets_a_getmore_per_batch(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True, batch_size=2))
        assert sent_doc(request.frame)["batchSize"] == 2
        answer(request, batch([1, 2]))  # an ordinary reply: no moreToCome
        again = await mock.receives_async("getMore")
        assert msg_flags(again.frame) == EXHAUST_ALLOWED
        assert again.client_address == request.client_address  # the socket went back, came again
        answer(again, batch([3], 0))
        assert [d["_id"] for d in await future] == [0, 1, 2, 3]
        assert (pool.in_use, pool.open_count) == (0, 1)

    run_on(flavour, mock, body)


def test_an_old_server_gets_plain_getmores(flavour: Flavour) -> None:
    async def body(connect: Connect) -> None:
        with MockServer(max_wire_version=5) as old:
            coll = (await connect(old)).test.things
            future = iterate(flavour, coll.find(exhaust=True))
            find = await old.receives_async("find")
            find.reply_frame(op_reply_frame([FIRST], 401, find.request_id))
            # OP_QUERY on test.$cmd, which has no exhaustAllowed
            request = await old.receives_async("getMore")
            flags, namespace = parse_op_query(request.frame)[:2]
            assert (flags, namespace) == (0, "test.$cmd")
            request.reply_frame(op_reply_frame([batch([1], 0)], 402, request.request_id))
            assert len(await future) == 2
            await got(coll.database.connection.close())

    run_with(flavour, body)


# -- faults mid-stream ------------------------------------------------------------------------


def test_an_error_reply_ends_the_stream_and_the_socket_is_reused(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        cursor = coll.find(exhaust=True)
        future, request = await start(flavour, mock, cursor)
        failure = {"ok": 0, "code": 96, "errmsg": "operation failed mid-stream"}
        send(request, *chained(request.request_id, [(batch([1]), True), (failure, False)]))
        with pytest.raises(OperationFailure, match="mid-stream") as info:
            await future
        assert info.value.code == 96
        assert cursor.cursor_id == 0 and not cursor.alive  # nothing left to kill
        assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
        await got(cursor.close())
        await nothing_received(mock)

    run_on(flavour, mock, body)


def test_an_error_reply_flagged_more_to_come_discards_the_socket(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        failure = {"ok": 0, "code": 2, "errmsg": "bad"}
        send(request, *chained(request.request_id, [(failure, True)]))
        with pytest.raises(OperationFailure, match="bad"):
            await future
        assert (pool.in_use, pool.open_count) == (0, 0)

    run_on(flavour, mock, body)


def test_a_finished_cursor_flagged_more_to_come_discards_the_socket(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        replies = [(batch([1]), True), (batch([2], 0), True)]
        send(request, *chained(request.request_id, replies))
        assert [d["_id"] for d in await future] == [0, 1, 2]  # nothing is lost
        assert (pool.in_use, pool.open_count) == (0, 0)  # the promised reply never came: gone
        await nothing_received(mock)

    run_on(flavour, mock, body)


# mockupdb: the test writes to the socket itself, over time


@pytest.fixture()
def mockupdb() -> Iterator[MockupDBServer]:
    with MockupDBServer() as server:
        yield server


async def start_on_mockupdb(
    flavour: Flavour, server: MockupDBServer, cursor: Any
) -> Tuple[Any, Received]:
    """``start``, on mockupdb: the future and the getMore (mockupdb's request inside)."""
    future = iterate(flavour, cursor)
    (await off_loop(server.receives, "find")).reply(FIRST)
    request = Received(await off_loop(server.server.receives, timeout=TIMEOUT))
    assert request.command_name == "getMore" and request.body["getMore"] == Int64(CURSOR)
    assert request.flags == EXHAUST_ALLOWED
    return future, request


def test_a_dead_socket_mid_stream_raises_autoreconnect_and_clears_the_pool(
    mockupdb: MockupDBServer, flavour: Flavour
) -> None:
    events = Events()

    async def body(connect: Connect) -> None:
        coll = (await connect(mockupdb, event_listeners=[events])).test.things
        pool = pool_of(coll)
        generation = pool.generation
        cursor = coll.find(exhaust=True)
        future, request = await start_on_mockupdb(flavour, mockupdb, cursor)
        client = request.request._client
        client.sendall(chained(request.request.request_id, [(batch([1]), True)])[0])
        client.shutdown(socket.SHUT_RDWR)
        with pytest.raises(AutoReconnect, match="closed"):
            await future
        assert (pool.in_use, pool.open_count) == (0, 0) and pool.generation == generation + 1
        assert cursor.cursor_id == 0 and cursor._stream is None
        assert events.seen[-2:] == [("started", "getMore", 500), ("failed", "getMore", 500)]
        counted = flavour.go(coll.count)  # the pool reconnects
        (await off_loop(mockupdb.receives, "count")).reply(n=3)
        assert await counted == 3 and pool.open_count == 1

    run_with(flavour, body)


def test_a_timeout_mid_stream_loses_only_the_socket(mock: MockServer, flavour: Flavour) -> None:
    async def body(connect: Connect) -> None:
        # 1 s: the first reply, sent through the mock, must beat it on a busy machine
        coll = (await connect(mock, socketTimeoutMS=1000)).test.things
        pool = pool_of(coll)
        generation = pool.generation
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        send(request, *chained(request.request_id, [(batch([1]), True)]))  # ...then silence
        with pytest.raises(NetworkTimeout, match="socketTimeoutMS"):
            await future
        assert (pool.in_use, pool.open_count) == (0, 0) and pool.generation == generation

    run_with(flavour, body)


def test_socket_timeout_applies_to_each_reply_not_the_whole_stream(
    mockupdb: MockupDBServer, flavour: Flavour
) -> None:
    async def body(connect: Connect) -> None:
        coll = (await connect(mockupdb, socketTimeoutMS=1200)).test.things
        pool = pool_of(coll)
        future, request = await start_on_mockupdb(flavour, mockupdb, coll.find(exhaust=True))
        replies = [(batch([n]), True) for n in range(1, 6)] + [(batch([], 0), False)]
        frames = chained(request.request.request_id, replies)

        def spaced() -> None:
            # 6 replies 0.25 s apart: 1.5 s at least in all (more than the 1.2 s timeout: a
            # deadline for the whole stream would fire), each well within 1.2 s (a busy
            # machine may delay this thread by most of a second without a false failure)
            for data in frames:
                send_after = time.monotonic() + 0.25
                time.sleep(max(0.0, send_after - time.monotonic()))
                request.request._client.sendall(data)

        await off_loop(spaced)  # in a thread: the asyncio client reads meanwhile
        assert len(await future) == 6
        assert (pool.in_use, pool.open_count) == (0, 1)

    run_with(flavour, body)


def test_a_streamed_reply_to_another_request_is_a_protocol_error(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        rid = request.request_id
        first = op_msg_frame(batch([1]), 500, rid, more_to_come=True)
        send(request, first, op_msg_frame(batch([2]), 501, 7777, more_to_come=True))
        with pytest.raises(ProtocolError, match="responseTo 7777"):
            await future
        assert (pool.in_use, pool.open_count) == (0, 0)

    run_on(flavour, mock, body)


def test_a_malformed_streamed_reply_is_a_protocol_error(mock: MockServer, flavour: Flavour) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        malformed = {"ok": 1, "cursor": "no"}
        send(request, *chained(request.request_id, [(batch([1]), True), (malformed, True)]))
        with pytest.raises(ProtocolError, match="cursor"):
            await future
        assert (pool.in_use, pool.open_count) == (0, 0)

    run_on(flavour, mock, body)


def test_close_mid_stream_discards_the_socket_and_kills_the_cursor(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        cursor = coll.find(exhaust=True)
        future, request = await start(flavour, mock, cursor, take=2)
        replies = [(batch([1, 2]), True), (batch([3]), True)]
        send(request, *chained(request.request_id, replies))
        assert [d["_id"] for d in await future] == [0, 1]
        assert (pool.in_use, pool.open_count) == (1, 1)
        closing = flavour.go(cursor.close)
        kill = await mock.receives_async("killCursors")
        assert sent_doc(kill.frame)["cursors"] == [Int64(CURSOR)]
        assert kill.client_address != request.client_address  # a new socket
        answer(kill, {"cursorsKilled": [Int64(CURSOR)], "ok": 1})
        await closing
        assert (pool.in_use, pool.open_count) == (0, 1)

    run_on(flavour, mock, body)


def test_a_request_started_mid_iteration_does_not_stop_the_cursor(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        cursor = coll.find(exhaust=True, batch_size=1)
        future, request = await start(flavour, mock, cursor, take=2)
        answer(request, batch([1]))  # the server ignores exhaustAllowed
        assert len(await future) == 2
        connection = coll.database.connection

        async def in_a_request() -> List[Any]:
            with connection.start_request():
                docs: List[Any] = await got(documents(cursor))
                return docs

        future = flavour.go(in_a_request)
        again = await mock.receives_async("getMore")
        assert msg_flags(again.frame) == EXHAUST_ALLOWED
        answer(again, batch([2], 0))
        assert await future == [{"_id": 2}]

    run_on(flavour, mock, body)


# -- compression and checksums -----------------------------------------------------------------


def test_a_compressed_stream_is_sent_and_read_through_the_negotiated_compressor(
    flavour: Flavour,
) -> None:
    zlib_id = COMPRESSOR_IDS["zlib"]

    async def body(connect: Connect) -> None:
        with MockServer(max_wire_version=17, compression=["zlib"]) as mock:
            coll = (await connect(mock, compressors="zlib")).test.things
            future = iterate(flavour, coll.find(exhaust=True))
            find = await mock.receives_async("find")
            assert wire_compressor(find.frame) == "zlib"
            find.reply_frame(compress_frame(op_msg_frame(FIRST, 401, find.request_id), zlib_id))
            request = await mock.receives_async("getMore")
            assert msg_flags(request.frame) == EXHAUST_ALLOWED
            assert wire_compressor(request.frame) == "zlib"
            replies = [(batch([1, 2]), True), (batch([3], 0), False)]
            frames = chained(request.request_id, replies)
            send(request, *(compress_frame(f, zlib_id) for f in frames))
            assert [d["_id"] for d in await future] == [0, 1, 2, 3]
            pool = pool_of(coll)
            assert (pool.in_use, pool.open_count) == (0, 1)
            await got(coll.database.connection.close())

    run_with(flavour, body)


def test_a_checksummed_stream_is_read_reply_by_reply(flavour: Flavour) -> None:
    """The mock's own ``stream()`` with a CRC-32C on every reply: the client reads the
    chain; peer_frames checks what arrived (each CRC, each responseTo)."""
    events = Events()
    requests: List[Request] = []

    async def body(connect: Connect) -> None:
        with MockServer(max_wire_version=17, checksums=True) as mock:
            coll = (await connect(mock, event_listeners=[events])).test.things
            pool = pool_of(coll)
            future, request = await start(flavour, mock, coll.find(exhaust=True))
            requests.append(request)
            request.stream([batch([1, 2]), batch([3]), batch([], 0)])
            assert [d["_id"] for d in await future] == [0, 1, 2, 3]
            assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
            await got(coll.database.connection.close())

    run_with(flavour, body)
    streamed = events.received_frames[-3:]
    answers = requests[0].request_id
    for frame in streamed:
        assert checksum_verified(frame)
        request_id, response_to = struct.unpack_from("<ii", frame, 4)
        assert response_to == answers
        answers = request_id


def test_a_bad_checksum_mid_stream_is_a_protocol_error_and_discards_the_socket(
    mock: MockServer, flavour: Flavour
) -> None:
    async def body(coll: Any) -> None:
        pool = pool_of(coll)
        future, request = await start(flavour, mock, coll.find(exhaust=True))
        replies = [(batch([1]), True), (batch([2]), True)]
        good, _ = chained(request.request_id, replies, checksum=True)
        bad = op_msg_frame(batch([2]), 501, 500, more_to_come=True, bad_checksum=True)
        send(request, good, bad)
        with pytest.raises(ProtocolError, match="checksum mismatch"):
            await future
        assert (pool.in_use, pool.open_count) == (0, 0)

    run_on(flavour, mock, body)
