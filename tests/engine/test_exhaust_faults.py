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
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from bson import Int64
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

from wireclient import Collection, Connection, Cursor
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


@pytest.fixture()
def connect() -> Iterator[Callable[..., Connection]]:
    """``connect(server, **options)``: a Connection to a mock, closed after the test."""
    made: List[Connection] = []

    def make(server: Any, **options: Any) -> Connection:
        options.setdefault("auto_start_request", False)
        options.setdefault("socketTimeoutMS", TIMEOUT * 1000)
        options.setdefault("connectTimeoutMS", TIMEOUT * 1000)
        conn = Connection(server.uri, **options)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer(max_wire_version=17) as server:
        yield server


@pytest.fixture()
def coll(mock: MockServer, connect: Callable[..., Connection]) -> Collection:
    return connect(mock).test.things


def pool_of(coll: Collection) -> Pool:
    pool: Pool = coll.database.connection._executor.selector.pool  # type: ignore[attr-defined]
    return pool


def batch(ids: List[int], cursor_id: int = CURSOR) -> Dict[str, Any]:
    docs = [{"_id": i} for i in ids]
    return {"cursor": {"id": Int64(cursor_id), "ns": "test.things", "nextBatch": docs}, "ok": 1}


def answer(request: Request, doc: Dict[str, Any]) -> None:
    """One plain OP_MSG reply, built by peer_frames."""
    request.reply_frame(op_msg_frame(doc, 400 + request.request_id, request.request_id))


def iterate(server: Any, cursor: Cursor, take: int) -> Any:
    return server.go(list if not take else lambda c: [next(c) for _ in range(take)], cursor)


def start(mock: MockServer, cursor: Cursor, take: int = 0) -> Tuple[Any, Request]:
    """Iterate ``cursor`` in the mock's pool (all of it, or ``take`` documents); answer its
    find with one document and cursor id CURSOR; return the future and the getMore."""
    future = iterate(mock, cursor, take)
    answer(mock.receives("find"), FIRST)
    got = mock.receives()
    assert sent_doc(got.frame)["getMore"] == Int64(CURSOR)
    assert msg_flags(got.frame) == EXHAUST_ALLOWED
    return future, got


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


def nothing_received(mock: MockServer) -> None:
    with pytest.raises(NoMatchingRequest):
        mock.receives(timeout=0.3)


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


def test_mongodb_chains_each_reply_to_the_previous_one(
    mock: MockServer, connect: Callable[..., Connection]
) -> None:
    events = Events()
    coll = connect(mock, event_listeners=[events]).test.things
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    replies = [(batch([1, 2]), True), (batch([3]), True), (batch([4, 5]), True)]
    send(got, *chained(got.request_id, replies + [(batch([], 0), False)]))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3, 4, 5]
    assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
    pairs = [e for e in events.seen if e[1] == "getMore"]
    ids = [got.request_id, 500, 501, 502]
    assert pairs == [(kind, "getMore", i) for i in ids for kind in ("started", "succeeded")]
    nothing_received(mock)  # exhausted: no second getMore, no killCursors


def test_a_server_that_ignores_exhaust_allowed_gets_a_getmore_per_batch(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True, batch_size=2))
    assert sent_doc(got.frame)["batchSize"] == 2
    answer(got, batch([1, 2]))  # an ordinary reply: no moreToCome
    again = mock.receives("getMore")
    assert msg_flags(again.frame) == EXHAUST_ALLOWED
    assert again.client_address == got.client_address  # the socket went back and came again
    answer(again, batch([3], 0))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3]
    assert (pool.in_use, pool.open_count) == (0, 1)


def test_an_old_server_gets_plain_getmores(connect: Callable[..., Connection]) -> None:
    with MockServer(max_wire_version=5) as old:
        coll = connect(old).test.things
        future = old.go(list, coll.find(exhaust=True))
        find = old.receives("find")
        find.reply_frame(op_reply_frame([FIRST], 401, find.request_id))
        got = old.receives("getMore")  # OP_QUERY on test.$cmd, which has no exhaustAllowed
        flags, namespace = parse_op_query(got.frame)[:2]
        assert (flags, namespace) == (0, "test.$cmd")
        got.reply_frame(op_reply_frame([batch([1], 0)], 402, got.request_id))
        assert len(future.result(TIMEOUT)) == 2
        coll.database.connection.close()


# -- faults mid-stream ------------------------------------------------------------------------


def test_an_error_reply_ends_the_stream_and_the_socket_is_reused(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    cursor = coll.find(exhaust=True)
    future, got = start(mock, cursor)
    failure = {"ok": 0, "code": 96, "errmsg": "operation failed mid-stream"}
    send(got, *chained(got.request_id, [(batch([1]), True), (failure, False)]))
    with pytest.raises(OperationFailure, match="mid-stream") as info:
        future.result(TIMEOUT)
    assert info.value.code == 96
    assert cursor.cursor_id == 0 and not cursor.alive  # nothing left to kill
    assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
    cursor.close()
    nothing_received(mock)


def test_an_error_reply_flagged_more_to_come_discards_the_socket(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got.request_id, [({"ok": 0, "code": 2, "errmsg": "bad"}, True)]))
    with pytest.raises(OperationFailure, match="bad"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)


def test_a_finished_cursor_flagged_more_to_come_discards_the_socket(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got.request_id, [(batch([1]), True), (batch([2], 0), True)]))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2]  # nothing is lost
    assert (pool.in_use, pool.open_count) == (0, 0)  # the promised reply never came: gone
    nothing_received(mock)


# mockupdb: the test writes to the socket itself, over time


@pytest.fixture()
def mockupdb() -> Iterator[MockupDBServer]:
    with MockupDBServer() as server:
        yield server


def start_on_mockupdb(server: MockupDBServer, cursor: Cursor) -> Tuple[Any, Received]:
    """``start``, on mockupdb: the future and the getMore (mockupdb's request inside)."""
    future = server.run(list, cursor)
    server.receives("find").reply(FIRST)
    got = Received(server.server.receives(timeout=TIMEOUT))
    assert got.command_name == "getMore" and got.body["getMore"] == Int64(CURSOR)
    assert got.flags == EXHAUST_ALLOWED
    return future, got


def test_a_dead_socket_mid_stream_raises_autoreconnect_and_clears_the_pool(
    mockupdb: MockupDBServer,
) -> None:
    events = Events()
    coll = mockupdb.connect(event_listeners=[events]).test.things
    pool = pool_of(coll)
    generation = pool.generation
    cursor = coll.find(exhaust=True)
    future, got = start_on_mockupdb(mockupdb, cursor)
    got.request._client.sendall(chained(got.request.request_id, [(batch([1]), True)])[0])
    got.request._client.shutdown(socket.SHUT_RDWR)
    with pytest.raises(AutoReconnect, match="closed"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0) and pool.generation == generation + 1
    assert cursor.cursor_id == 0 and cursor._stream is None
    assert events.seen[-2:] == [("started", "getMore", 500), ("failed", "getMore", 500)]
    counted = mockupdb.run(coll.count)  # the pool reconnects
    mockupdb.receives("count").reply(n=3)
    assert counted.result(TIMEOUT) == 3 and pool.open_count == 1


def test_a_timeout_mid_stream_loses_only_the_socket(
    mock: MockServer, connect: Callable[..., Connection]
) -> None:
    # 1 s: the first reply, sent by this thread through the mock, must beat it on a busy machine
    coll = connect(mock, socketTimeoutMS=1000).test.things
    pool = pool_of(coll)
    generation = pool.generation
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got.request_id, [(batch([1]), True)]))  # ...then silence
    with pytest.raises(NetworkTimeout, match="socketTimeoutMS"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0) and pool.generation == generation


def test_socket_timeout_applies_to_each_reply_not_the_whole_stream(
    mockupdb: MockupDBServer,
) -> None:
    coll = mockupdb.connect(socketTimeoutMS=1200).test.things
    pool = pool_of(coll)
    future, got = start_on_mockupdb(mockupdb, coll.find(exhaust=True))
    replies = [(batch([n]), True) for n in range(1, 6)] + [(batch([], 0), False)]
    frames = chained(got.request.request_id, replies)
    # 6 replies 0.25 s apart: 1.5 s at least in all (more than the 1.2 s timeout: a deadline
    # for the whole stream would fire), each well within 1.2 s (a busy machine may delay
    # this thread by most of a second without a false failure)
    for data in frames:
        send_after = time.monotonic() + 0.25
        time.sleep(max(0.0, send_after - time.monotonic()))
        got.request._client.sendall(data)
    assert len(future.result(TIMEOUT)) == 6
    assert (pool.in_use, pool.open_count) == (0, 1)


def test_a_streamed_reply_to_another_request_is_a_protocol_error(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    rid = got.request_id
    first = op_msg_frame(batch([1]), 500, rid, more_to_come=True)
    send(got, first, op_msg_frame(batch([2]), 501, 7777, more_to_come=True))
    with pytest.raises(ProtocolError, match="responseTo 7777"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)


def test_a_malformed_streamed_reply_is_a_protocol_error(mock: MockServer, coll: Collection) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got.request_id, [(batch([1]), True), ({"ok": 1, "cursor": "no"}, True)]))
    with pytest.raises(ProtocolError, match="cursor"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)


def test_close_mid_stream_discards_the_socket_and_kills_the_cursor(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    cursor = coll.find(exhaust=True)
    future, got = start(mock, cursor, take=2)
    send(got, *chained(got.request_id, [(batch([1, 2]), True), (batch([3]), True)]))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1]
    assert (pool.in_use, pool.open_count) == (1, 1)
    closing = mock.go(cursor.close)
    kill = mock.receives("killCursors")
    assert sent_doc(kill.frame)["cursors"] == [Int64(CURSOR)]
    assert kill.client_address != got.client_address  # a new socket
    answer(kill, {"cursorsKilled": [Int64(CURSOR)], "ok": 1})
    closing.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 1)


def test_a_request_started_mid_iteration_does_not_stop_the_cursor(
    mock: MockServer, coll: Collection
) -> None:
    cursor = coll.find(exhaust=True, batch_size=1)
    future, got = start(mock, cursor, take=2)
    answer(got, batch([1]))  # the server ignores exhaustAllowed
    assert len(future.result(TIMEOUT)) == 2
    connection = coll.database.connection

    def in_a_request() -> List[Any]:
        with connection.start_request():
            return list(cursor)

    future = mock.go(in_a_request)
    again = mock.receives("getMore")
    assert msg_flags(again.frame) == EXHAUST_ALLOWED
    answer(again, batch([2], 0))
    assert future.result(TIMEOUT) == [{"_id": 2}]


# -- compression and checksums -----------------------------------------------------------------


def test_a_compressed_stream_is_sent_and_read_through_the_negotiated_compressor(
    connect: Callable[..., Connection],
) -> None:
    zlib_id = COMPRESSOR_IDS["zlib"]
    with MockServer(max_wire_version=17, compression=["zlib"]) as mock:
        coll = connect(mock, compressors="zlib").test.things
        future = mock.go(list, coll.find(exhaust=True))
        find = mock.receives("find")
        assert wire_compressor(find.frame) == "zlib"
        find.reply_frame(compress_frame(op_msg_frame(FIRST, 401, find.request_id), zlib_id))
        got = mock.receives("getMore")
        assert msg_flags(got.frame) == EXHAUST_ALLOWED
        assert wire_compressor(got.frame) == "zlib"
        frames = chained(got.request_id, [(batch([1, 2]), True), (batch([3], 0), False)])
        send(got, *(compress_frame(f, zlib_id) for f in frames))
        assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3]
        pool = pool_of(coll)
        assert (pool.in_use, pool.open_count) == (0, 1)
        coll.database.connection.close()


def test_a_checksummed_stream_is_read_reply_by_reply(connect: Callable[..., Connection]) -> None:
    """The mock's own ``stream()`` with a CRC-32C on every reply: the client reads the
    chain; peer_frames checks what arrived (each CRC, each responseTo)."""
    events = Events()
    with MockServer(max_wire_version=17, checksums=True) as mock:
        coll = connect(mock, event_listeners=[events]).test.things
        pool = pool_of(coll)
        future, got = start(mock, coll.find(exhaust=True))
        got.stream([batch([1, 2]), batch([3]), batch([], 0)])
        assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3]
        assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
        coll.database.connection.close()
    streamed = events.received_frames[-3:]
    answers = got.request_id
    for frame in streamed:
        assert checksum_verified(frame)
        request_id, response_to = struct.unpack_from("<ii", frame, 4)
        assert response_to == answers
        answers = request_id


def test_a_bad_checksum_mid_stream_is_a_protocol_error_and_discards_the_socket(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    good, _ = chained(got.request_id, [(batch([1]), True), (batch([2]), True)], checksum=True)
    bad = op_msg_frame(batch([2]), 501, 500, more_to_come=True, bad_checksum=True)
    send(got, good, bad)
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)
