"""Exhaust streams against mockupdb, whose replies the test writes frame by frame: MongoDB's
responseTo chaining (each reply answers the previous one), a server that ignores
exhaustAllowed, and faults mid-stream: an error reply, a reply for a finished cursor still
flagged moreToCome, a dead socket, a timeout (socketTimeoutMS per reply), a reply to
another request, a malformed reply. After each: what the caller sees, and the pool."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any, Dict, Iterator, List, Tuple

import bson
import pytest
from bson import Int64
from mock_server import MockServer, Received

from wireclient import Collection, Cursor
from wireclient.errors import AutoReconnect, NetworkTimeout, OperationFailure, ProtocolError
from wireclient.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)
from wireclient.pooling.pool import Pool

TIMEOUT = 15  # waits that end at once unless the test fails
CURSOR = 2**40 + 7
OP_MSG, MORE_TO_COME, EXHAUST_ALLOWED = 2013, 2, 1 << 16


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def coll(mock: MockServer) -> Collection:
    return mock.connect().test.things


def pool_of(coll: Collection) -> Pool:
    pool: Pool = coll.database.connection._executor.selector.pool  # type: ignore[attr-defined]
    return pool


def frame(doc: Dict[str, Any], request_id: int, response_to: int, more: bool) -> bytes:
    """An OP_MSG reply, built here (not with wireclient's codec)."""
    body = struct.pack("<I", MORE_TO_COME if more else 0) + b"\x00" + bson.encode(doc)
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, OP_MSG) + body


def batch(ids: List[int], cursor_id: int = CURSOR) -> Dict[str, Any]:
    docs = [{"_id": i} for i in ids]
    return {"cursor": {"id": Int64(cursor_id), "ns": "test.things", "nextBatch": docs}, "ok": 1}


def start(mock: MockServer, cursor: Cursor, take: int = 0) -> Tuple[Any, Received]:
    """Iterate ``cursor`` in a thread (all of it, or ``take`` documents); answer its find
    with one document and cursor id CURSOR; return the future and the getMore received."""
    future = mock.run(list if not take else lambda c: [next(c) for _ in range(take)], cursor)
    find = mock.receives("find")
    find.reply(cursor={"id": Int64(CURSOR), "ns": "test.things", "firstBatch": [{"_id": 0}]})
    got = Received(mock.server.receives(timeout=TIMEOUT))
    assert got.command_name == "getMore" and got.body["getMore"] == Int64(CURSOR)
    assert got.op_code == OP_MSG and got.flags == EXHAUST_ALLOWED
    return future, got


def send(got: Received, *frames: bytes) -> None:
    got.request._client.sendall(b"".join(frames))


def chained(got: Received, replies: List[Tuple[Dict[str, Any], bool]]) -> List[bytes]:
    """Frames as MongoDB sends them: each reply answers the previous reply's requestID."""
    out, answers = [], got.request.request_id
    for n, (doc, more) in enumerate(replies):
        out.append(frame(doc, 500 + n, answers, more))
        answers = 500 + n
    return out


class Events(CommandListener):
    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, int]] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.seen.append(("started", event.command_name, event.request_id))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self.seen.append(("succeeded", event.command_name, event.request_id))

    def failed(self, event: CommandFailedEvent) -> None:
        self.seen.append(("failed", event.command_name, event.request_id))


# -- streams ----------------------------------------------------------------------------------


def test_mongodb_chains_each_reply_to_the_previous_one(mock: MockServer) -> None:
    events = Events()
    coll = mock.connect(event_listeners=[events]).test.things
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    replies = [(batch([1, 2]), True), (batch([3]), True), (batch([4, 5]), True)]
    send(got, *chained(got, replies + [(batch([], 0), False)]))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3, 4, 5]
    assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
    pairs = [e for e in events.seen if e[1] == "getMore"]
    ids = [got.request.request_id, 500, 501, 502]
    assert pairs == [(kind, "getMore", i) for i in ids for kind in ("started", "succeeded")]
    mock.assert_nothing_received()  # exhausted: no second getMore, no killCursors


def test_a_server_that_ignores_exhaust_allowed_gets_a_getmore_per_batch(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True, batch_size=2))
    assert got.body["batchSize"] == 2
    got.reply(batch([1, 2]))  # an ordinary reply: no moreToCome
    again = Received(mock.server.receives(timeout=TIMEOUT))
    assert again.command_name == "getMore" and again.flags == EXHAUST_ALLOWED
    assert again.port == got.port  # the socket went back to the pool and was taken again
    again.reply(batch([3], 0))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3]
    assert (pool.in_use, pool.open_count) == (0, 1)


def test_an_old_server_gets_plain_getmores() -> None:
    with MockServer(max_wire=5) as old:
        coll = old.connect().test.things
        future = old.run(list, coll.find(exhaust=True))
        old.receives("find").reply(
            cursor={"id": Int64(CURSOR), "ns": "test.things", "firstBatch": [{"_id": 0}]}
        )
        got = old.receives("getMore")  # OP_QUERY on test.$cmd, which has no exhaustAllowed
        assert got.flags == 0
        got.reply(batch([1], 0))
        assert len(future.result(TIMEOUT)) == 2


# -- faults mid-stream ------------------------------------------------------------------------


def test_an_error_reply_ends_the_stream_and_the_socket_is_reused(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    cursor = coll.find(exhaust=True)
    future, got = start(mock, cursor)
    failure = {"ok": 0, "code": 96, "errmsg": "operation failed mid-stream"}
    send(got, *chained(got, [(batch([1]), True), (failure, False)]))
    with pytest.raises(OperationFailure, match="mid-stream") as info:
        future.result(TIMEOUT)
    assert info.value.code == 96
    assert cursor.cursor_id == 0 and not cursor.alive  # nothing left to kill
    assert (pool.in_use, pool.open_count, pool.idle_count()) == (0, 1, 1)
    cursor.close()
    mock.assert_nothing_received()


def test_an_error_reply_flagged_more_to_come_discards_the_socket(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got, [({"ok": 0, "code": 2, "errmsg": "bad"}, True)]))
    with pytest.raises(OperationFailure, match="bad"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)


def test_a_finished_cursor_flagged_more_to_come_discards_the_socket(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got, [(batch([1]), True), (batch([2], 0), True)]))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2]  # nothing is lost
    assert (pool.in_use, pool.open_count) == (0, 0)  # the promised reply never came: gone
    mock.assert_nothing_received()


def test_a_dead_socket_mid_stream_raises_autoreconnect_and_clears_the_pool(
    mock: MockServer,
) -> None:
    events = Events()
    coll = mock.connect(event_listeners=[events]).test.things
    pool = pool_of(coll)
    generation = pool.generation
    cursor = coll.find(exhaust=True)
    future, got = start(mock, cursor)
    send(got, *chained(got, [(batch([1]), True)]))
    got.request._client.shutdown(socket.SHUT_RDWR)
    with pytest.raises(AutoReconnect, match="closed"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0) and pool.generation == generation + 1
    assert cursor.cursor_id == 0 and cursor._stream is None
    assert events.seen[-2:] == [("started", "getMore", 500), ("failed", "getMore", 500)]
    counted = mock.run(coll.count)  # the pool reconnects
    mock.receives("count").reply(n=3)
    assert counted.result(TIMEOUT) == 3 and pool.open_count == 1


def test_a_timeout_mid_stream_loses_only_the_socket(mock: MockServer) -> None:
    # 1 s: the first reply, sent by this thread through mockupdb, must beat it on a busy machine
    coll = mock.connect(socketTimeoutMS=1000).test.things
    pool = pool_of(coll)
    generation = pool.generation
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got, [(batch([1]), True)]))  # ...then silence
    with pytest.raises(NetworkTimeout, match="socketTimeoutMS"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0) and pool.generation == generation


def test_socket_timeout_applies_to_each_reply_not_the_whole_stream(mock: MockServer) -> None:
    coll = mock.connect(socketTimeoutMS=1200).test.things
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    frames = chained(got, [(batch([n]), True) for n in range(1, 6)] + [(batch([], 0), False)])
    # 6 replies 0.25 s apart: 1.5 s at least in all (more than the 1.2 s timeout: a deadline
    # for the whole stream would fire), each well within 1.2 s (a busy machine may delay
    # this thread by most of a second without a false failure)
    for data in frames:
        time.sleep(0.25)
        got.request._client.sendall(data)
    assert len(future.result(TIMEOUT)) == 6
    assert (pool.in_use, pool.open_count) == (0, 1)


def test_a_streamed_reply_to_another_request_is_a_protocol_error(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    rid = got.request.request_id
    send(got, frame(batch([1]), 500, rid, True), frame(batch([2]), 501, 7777, True))
    with pytest.raises(ProtocolError, match="responseTo 7777"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)


def test_a_malformed_streamed_reply_is_a_protocol_error(mock: MockServer, coll: Collection) -> None:
    pool = pool_of(coll)
    future, got = start(mock, coll.find(exhaust=True))
    send(got, *chained(got, [(batch([1]), True), ({"ok": 1, "cursor": "no"}, True)]))
    with pytest.raises(ProtocolError, match="cursor"):
        future.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 0)


def test_close_mid_stream_discards_the_socket_and_kills_the_cursor(
    mock: MockServer, coll: Collection
) -> None:
    pool = pool_of(coll)
    cursor = coll.find(exhaust=True)
    future, got = start(mock, cursor, take=2)
    send(got, *chained(got, [(batch([1, 2]), True), (batch([3]), True)]))
    assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1]
    assert (pool.in_use, pool.open_count) == (1, 1)
    closing = mock.run(cursor.close)
    kill = mock.receives("killCursors")
    assert kill.body["cursors"] == [Int64(CURSOR)] and kill.port != got.port  # a new socket
    kill.reply(cursorsKilled=[Int64(CURSOR)])
    closing.result(TIMEOUT)
    assert (pool.in_use, pool.open_count) == (0, 1)


def test_a_request_started_mid_iteration_does_not_stop_the_cursor(
    mock: MockServer, coll: Collection
) -> None:
    cursor = coll.find(exhaust=True, batch_size=1)
    future, got = start(mock, cursor, take=2)
    got.reply(batch([1]))  # the server ignores exhaustAllowed
    assert len(future.result(TIMEOUT)) == 2
    connection = coll.database.connection

    def in_a_request() -> List[Any]:
        with connection.start_request():
            return list(cursor)

    future = mock.run(in_a_request)
    again = Received(mock.server.receives(timeout=TIMEOUT))
    assert again.command_name == "getMore" and again.flags == EXHAUST_ALLOWED
    again.reply(batch([2], 0))
    assert future.result(TIMEOUT) == [{"_id": 2}]


# -- compression ----------------------------------------------------------------------------


def test_a_compressed_stream_is_sent_and_read_through_the_negotiated_compressor() -> None:
    import mock_compression

    with MockServer(compression=["zlib"]) as mock:
        coll = mock.connect(compressors="zlib").test.things
        future = mock.run(list, coll.find(exhaust=True))
        find = mock.receives("find")
        assert find.request.compressor_id == mock_compression.COMPRESSOR_IDS["zlib"]
        find.reply(cursor={"id": Int64(CURSOR), "ns": "test.things", "firstBatch": [{"_id": 0}]})
        got = Received(mock.server.receives(timeout=TIMEOUT))
        assert got.command_name == "getMore" and got.flags == EXHAUST_ALLOWED
        assert got.request.compressor_id == mock_compression.COMPRESSOR_IDS["zlib"]
        frames = chained(got, [(batch([1, 2]), True), (batch([3], 0), False)])
        zlib_id = mock_compression.COMPRESSOR_IDS["zlib"]
        raw = getattr(got.request._client, "_sock", got.request._client)
        raw.sendall(b"".join(mock_compression.compress_frame(f, zlib_id) for f in frames))
        assert [d["_id"] for d in future.result(TIMEOUT)] == [0, 1, 2, 3]
        pool = pool_of(coll)
        assert (pool.in_use, pool.open_count) == (0, 1)
