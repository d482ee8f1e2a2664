"""Size limits, checked on the operation path before anything is sent (executor.py).

The class of fault: the caller hands over something the server would not take: a document
over ``maxBsonObjectSize``, a command (a filter, a pipeline, an update, any command) over it
plus the 16 KiB command allowance, a message over ``maxMessageSizeBytes``. Each must raise
``DocumentTooLarge`` (an ``InvalidDocument``) with nothing sent, the socket staying in its
pool (or with its request), so the next operation runs on the same socket. Writes that take
many documents are split to fit instead.

Against mockupdb with small advertised limits (the server records every frame: nothing may
arrive), a Hypothesis check of the batching against the real encoder, and against a
SecantusDB of this module's own with real limits (16 MiB documents, 48 MB messages).

The oversized-operation tests run on both clients (the ``flavour`` fixture,
``flavoured.py``): the asyncio client's operation runs the same checks before its send.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator, List

import bson
import pytest
from flavoured import FLAVOURS, Flavour, documents, got, off_loop
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mock_server import TIMEOUT, MockServer
from servers import SecantusServer

from wireclient import AsyncConnection, Connection, protocol
from wireclient.errors import DocumentTooLarge, InvalidDocument
from wireclient.rules import command
from wireclient.rules.limits import batches as _batches
from wireclient.rules.wire import COMMAND_OVERHEAD
from wireclient.transport.blocking import run

MAX_BSON = 1024
COMMAND_LIMIT = MAX_BSON + COMMAND_OVERHEAD
OVER_BSON = "x" * (2 * MAX_BSON)  # too large for a stored document, fine in a command
OVER_COMMAND = "x" * (COMMAND_LIMIT + 100)  # too large for any command


def body_size(frame: bytes) -> int:
    """The size of an OP_MSG's kind-0 document, read from the frame as it arrived."""
    assert frame[20] == 0
    return int(struct.unpack_from("<i", frame, 21)[0])


def ping(mock: MockServer, conn: Connection, **fields: Any) -> Any:
    """Run a ``ping`` (with ``fields``) and answer it; the request as it arrived."""
    future = mock.run(conn.test.command, {"ping": 1, **fields})
    cmd = mock.receives("ping")
    cmd.reply()
    future.result(TIMEOUT)
    return cmd


def refused_then_same_socket(mock: MockServer, conn: Connection, call: Callable[[], Any]) -> Any:
    """``call`` raises DocumentTooLarge, nothing reaches the server, and the next operation
    runs on the same socket (same client port, no new handshake, one socket open)."""
    port = ping(mock, conn).port
    hellos = len(mock.hellos)
    with pytest.raises(DocumentTooLarge) as info:
        call()
    mock.assert_nothing_received()
    assert ping(mock, conn).port == port
    assert len(mock.hellos) == hellos and conn.pool.open_count == 1
    return info.value


@pytest.fixture()
def small() -> Iterator[MockServer]:
    with MockServer(maxBsonObjectSize=MAX_BSON) as server:
        yield server


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


async def flavoured_ping(flavour: Flavour, mock: MockServer, conn: Any, **fields: Any) -> Any:
    """``ping`` for either client: the client's call beside the test, the mock's wait off
    the loop."""
    future = flavour.go(conn.test.command, {"ping": 1, **fields})
    cmd = await off_loop(mock.receives, "ping")
    cmd.reply()
    await future
    return cmd


async def flavoured_refused_then_same_socket(
    flavour: Flavour, mock: MockServer, conn: Any, call: Callable[[], Any]
) -> Any:
    """``refused_then_same_socket`` for either client (``call()`` may return a coroutine)."""
    port = (await flavoured_ping(flavour, mock, conn)).port
    hellos = len(mock.hellos)
    with pytest.raises(DocumentTooLarge) as info:
        await got(call())
    await off_loop(mock.assert_nothing_received)
    assert (await flavoured_ping(flavour, mock, conn)).port == port
    assert len(mock.hellos) == hellos and conn.pool.open_count == 1
    return info.value


def run_on_mock(flavour: Flavour, mock: MockServer, body: Callable[[Any], Any]) -> None:
    """``await body(conn)`` with a connection of the flavour to the mock, closed after."""

    async def main() -> None:
        conn = flavour.make(
            Connection,
            AsyncConnection,
            mock.uri,
            auto_start_request=False,
            socketTimeoutMS=int(TIMEOUT * 1000),
            connectTimeoutMS=int(TIMEOUT * 1000),
        )
        try:
            await body(conn)
        finally:
            await got(conn.close())

    flavour.run(main)


async def drained(result: Any) -> Any:
    """The result of an operation of either client; a cursor's documents (``async for``
    for an asyncio cursor)."""
    result = await got(result)
    if hasattr(result, "__anext__") or hasattr(result, "__next__"):
        return await got(documents(result))
    return result


# -- each kind of oversized operation: refused, nothing sent, the socket kept ---------------

OVERSIZED = {
    "insert one": lambda c: c.test.things.insert({"_id": 1, "p": OVER_BSON}),
    "insert, last of many": lambda c: c.test.things.insert(
        [{"_id": 1}, {"_id": 2, "p": OVER_BSON}]
    ),
    "insert w=0": lambda c: c.test.things.insert({"_id": 1, "p": OVER_BSON}, w=0),
    "update spec": lambda c: c.test.things.update({"p": OVER_COMMAND}, {"$set": {"a": 1}}),
    "update document": lambda c: c.test.things.update({"a": 1}, {"$set": {"p": OVER_COMMAND}}),
    "update replacement": lambda c: c.test.things.update({"a": 1}, {"p": OVER_COMMAND}),
    "upsert multi": lambda c: c.test.things.update(
        {"a": 1}, {"$set": {"p": OVER_COMMAND}}, upsert=True, multi=True
    ),
    "update w=0": lambda c: c.test.things.update({"p": OVER_COMMAND}, {"$set": {"a": 1}}, w=0),
    "save": lambda c: c.test.things.save({"_id": 1, "p": OVER_COMMAND}),
    "remove spec": lambda c: c.test.things.remove({"p": OVER_COMMAND}),
    "remove w=0": lambda c: c.test.things.remove({"p": OVER_COMMAND}, w=0),
    "find filter": lambda c: drained(c.test.things.find({"p": OVER_COMMAND})),
    "find projection": lambda c: drained(c.test.things.find({}, {OVER_COMMAND: 1})),
    "find sort": lambda c: drained(c.test.things.find().sort(OVER_COMMAND, 1)),
    "find_one": lambda c: c.test.things.find_one({"p": OVER_COMMAND}),
    "count": lambda c: c.test.things.count({"p": OVER_COMMAND}),
    "distinct": lambda c: c.test.things.distinct("a", {"p": OVER_COMMAND}),
    "aggregate pipeline": lambda c: drained(
        c.test.things.aggregate([{"$match": {"p": OVER_COMMAND}}])
    ),
    "db.command": lambda c: c.test.command({"count": "things", "query": {"p": OVER_COMMAND}}),
    "db.command keyword": lambda c: c.test.command("ping", comment=OVER_COMMAND),
    "create_index name": lambda c: c.test.things.create_index("a", name=OVER_COMMAND),
    "drop_index": lambda c: c.test.things.drop_index(OVER_COMMAND),
}


@pytest.mark.parametrize("operation", sorted(OVERSIZED))
def test_oversized_operation_sends_nothing_and_keeps_the_socket(
    small: MockServer, operation: str, flavour: Flavour
) -> None:
    async def body(conn: Any) -> None:
        exc = await flavoured_refused_then_same_socket(
            flavour, small, conn, lambda: OVERSIZED[operation](conn)
        )
        assert isinstance(exc, InvalidDocument)
        assert exc.size > exc.limit in (MAX_BSON, COMMAND_LIMIT)

    run_on_mock(flavour, small, body)


@pytest.mark.parametrize("operation", ["insert one", "update spec", "find filter", "db.command"])
def test_oversized_operation_in_a_request_keeps_the_request_socket(
    small: MockServer, operation: str, flavour: Flavour
) -> None:
    async def body(conn: Any) -> None:
        table = conn._executor.requests

        async def in_a_request() -> Any:  # one caller: request state is per thread (Task)
            with conn.start_request():
                await got(conn.test.command("ping"))
                bound = table.bound_socket(conn.pool)
                with pytest.raises(DocumentTooLarge):
                    await got(OVERSIZED[operation](conn))
                kept = conn.in_request() and table.bound_socket(conn.pool) is bound
                await got(conn.test.command("ping"))
                return bound, kept and table.bound_socket(conn.pool) is bound

        future = flavour.go(in_a_request)
        first = await off_loop(small.receives, "ping")
        first.reply()
        # the next request to arrive: nothing came between
        second = await off_loop(small.receives, "ping")
        second.reply()
        bound, kept = await future
        assert kept and not bound.closed and second.port == first.port
        assert conn.pool.open_count == 1 and conn.pool.idle_count() == 1  # back in the pool

    run_on_mock(flavour, small, body)


def test_a_command_within_the_allowance_is_sent(small: MockServer) -> None:
    """Over maxBsonObjectSize but within the 16 KiB allowance: a filter or statement that
    large is the server's to judge (a stored document is not: see the insert cases)."""
    conn = small.connect()
    future = small.run(conn.test.things.update, {"p": OVER_BSON}, {"$set": {"a": 1}})
    cmd = small.receives("update")
    assert cmd.sequences["updates"][0]["q"] == {"p": OVER_BSON}
    cmd.reply(n=0)
    future.result(TIMEOUT)
    assert body_size(ping(small, conn, comment=OVER_BSON).request.frame) > MAX_BSON


def test_the_message_does_not_show_the_document(small: MockServer) -> None:
    conn = small.connect()
    secret = "hunter2-" * 3000
    for call in (
        lambda: conn.test.things.find_one({"password": secret}),
        lambda: conn.test.things.insert({"password": secret}),
        lambda: conn.test.things.update({"a": 1}, {"$set": {"password": secret}}),
    ):
        with pytest.raises(DocumentTooLarge) as info:
            call()
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)
        assert str(info.value.size) in str(info.value)
    small.assert_nothing_received()


# -- the limits exactly: at the limit is sent, one byte over is not --------------------------


def test_a_stored_document_of_exactly_max_bson_object_size_is_sent(small: MockServer) -> None:
    conn = small.connect()
    pad = MAX_BSON - len(bson.encode({"_id": 1, "p": ""}))
    future = small.run(conn.test.things.insert, {"_id": 1, "p": "x" * pad})
    cmd = small.receives("insert")
    assert len(bson.encode(cmd.sequences["documents"][0])) == MAX_BSON
    cmd.reply(n=1)
    assert future.result(TIMEOUT) == 1
    exc = refused_then_same_socket(
        small, conn, lambda: conn.test.things.insert({"_id": 2, "p": "x" * (pad + 1)})
    )
    assert (exc.size, exc.limit) == (MAX_BSON + 1, MAX_BSON)


def test_a_command_of_exactly_the_allowance_is_sent(small: MockServer) -> None:
    conn = small.connect()
    pad = COMMAND_LIMIT - body_size(ping(small, conn, p="").request.frame)
    assert body_size(ping(small, conn, p="x" * pad).request.frame) == COMMAND_LIMIT
    exc = refused_then_same_socket(
        small, conn, lambda: conn.test.command({"ping": 1, "p": "x" * (pad + 1)})
    )
    assert (exc.size, exc.limit) == (COMMAND_LIMIT + 1, COMMAND_LIMIT)


def test_a_message_of_exactly_max_message_size_bytes_is_sent() -> None:
    limit = 4096  # smaller than a command may be: the message limit is the one that bites
    with MockServer(maxMessageSizeBytes=limit) as mock:
        conn = mock.connect()
        pad = limit - len(ping(mock, conn, p="").request.frame)
        assert len(ping(mock, conn, p="x" * pad).request.frame) == limit
        exc = refused_then_same_socket(
            mock, conn, lambda: conn.test.command({"ping": 1, "p": "x" * (pad + 1)})
        )
        assert (exc.size, exc.limit) == (limit + 1, limit)
        exc = refused_then_same_socket(
            mock, conn, lambda: list(conn.test.things.find({"p": "x" * limit}))
        )
        assert exc.limit == limit


def test_a_document_no_message_can_carry_is_refused_before_the_first_batch() -> None:
    with MockServer(maxMessageSizeBytes=4096) as mock:  # maxBsonObjectSize: 16 MiB
        conn = mock.connect()
        docs = [{"_id": 1}, {"_id": 2, "p": "x" * 5000}]
        refused_then_same_socket(mock, conn, lambda: conn.test.things.insert(docs))
        statements = [{"q": {"_id": 1}, "limit": 1}, {"q": {"p": "x" * 5000}, "limit": 1}]
        refused_then_same_socket(
            mock,
            conn,
            lambda: run(
                conn._executor.write("test", {"delete": "t"}, "deletes", statements, False)
            ),
        )


# -- many statements: split by count and by size, checked before the first batch -------------


def write_statements(
    mock: MockServer, conn: Connection, field: str, statements: List[Any]
) -> List[Any]:
    """Run one write command with ``statements`` through the path; the batches that came."""
    name = {"updates": "update", "deletes": "delete"}[field]
    spec = {name: "things", "ordered": True}
    future = mock.run(lambda: run(conn._executor.write("test", spec, field, statements, False)))
    batches: List[Any] = []
    while sum(len(b.sequences[field]) for b in batches) < len(statements):
        cmd = mock.receives(name)
        assert cmd.body == {**spec, "$db": "test"}
        batches.append(cmd)
        cmd.reply(n=len(cmd.sequences[field]))
    future.result(TIMEOUT)
    mock.assert_nothing_received()
    assert [s for b in batches for s in b.sequences[field]] == statements  # in order, once
    return batches


def test_statements_are_split_by_max_write_batch_size() -> None:
    with MockServer(maxWriteBatchSize=3) as mock:
        conn = mock.connect()
        statements = [{"q": {"_id": i}, "limit": 1} for i in range(7)]
        batches = write_statements(mock, conn, "deletes", statements)
        assert [len(b.sequences["deletes"]) for b in batches] == [3, 3, 1]


@pytest.mark.parametrize("field", ["updates", "deletes"])
def test_statements_are_split_by_max_message_size_bytes(field: str) -> None:
    limit = 4096
    with MockServer(maxMessageSizeBytes=limit) as mock:
        conn = mock.connect()
        statements = [{"q": {"_id": i, "p": "x" * 500}, "limit": 1} for i in range(20)]
        if field == "updates":
            statements = [{"q": s["q"], "u": {"$set": {"a": 1}}} for s in statements]
        batches = write_statements(mock, conn, field, statements)
        sizes = [len(b.request.frame) for b in batches]
        assert len(batches) >= 3 and max(sizes) <= limit
        one = len(bson.encode(statements[0]))
        assert all(size + one > limit for size in sizes[:-1])  # each batch as full as it can be


def test_one_oversized_statement_among_many_sends_nothing(small: MockServer) -> None:
    conn = small.connect()
    statements = [{"q": {"_id": i}, "u": {"$set": {"a": 1}}} for i in range(5)]
    statements.append({"q": {"p": OVER_COMMAND}, "u": {"$set": {"a": 1}}})
    spec = {"update": "things", "ordered": True}
    exc = refused_then_same_socket(
        small, conn, lambda: run(conn._executor.write("test", spec, "updates", statements, False))
    )
    assert exc.limit == COMMAND_LIMIT and "update statement" in str(exc)


@pytest.mark.parametrize("max_wire", [4, 5])
def test_op_query_batches_keep_the_command_within_the_allowance(max_wire: int) -> None:
    """Wire 4 and 5 carry the documents as an array inside the command document, so the
    command's own limit splits the batches there."""
    with MockServer(max_wire=max_wire, maxBsonObjectSize=MAX_BSON) as mock:
        conn = mock.connect()
        docs = [{"_id": i, "p": "x" * 900} for i in range(60)]  # ~56 kB: several commands
        future = mock.run(conn.test.things.insert, docs)
        received: List[int] = []
        sizes = []
        while len(received) < len(docs):
            cmd = mock.receives("insert")
            frame = cmd.request.frame
            start = frame.index(b"\x00", 20) + 9
            sizes.append(struct.unpack_from("<i", frame, start)[0])
            received.extend(d["_id"] for d in cmd.body["documents"])
            cmd.reply(n=len(cmd.body["documents"]))
        assert future.result(TIMEOUT) == received == list(range(60))
        assert len(sizes) >= 3 and max(sizes) <= COMMAND_LIMIT
        one = len(bson.encode(docs[0])) + 4  # the element's type, index and NUL
        assert all(size + one > COMMAND_LIMIT for size in sizes[:-1])
        exc = refused_then_same_socket(
            mock, conn, lambda: conn.test.things.find_one({"p": OVER_COMMAND})
        )
        assert exc.limit == COMMAND_LIMIT


# -- the batching rule, against the real encoder -----------------------------------------------


class LimitsOnly:
    """The limits a handshake records on a SocketInfo, and nothing else."""

    def __init__(self, wire: int, max_bson: int, max_message: int, max_count: int) -> None:
        self.max_wire_version = wire
        self.max_bson_size = max_bson
        self.max_message_size = max_message
        self.max_write_batch_size = max_count


def encoded_frame(sock: LimitsOnly, field: str, docs: List[bytes]) -> bytes:
    message, _ = command.build_message(
        "db",
        {"insert": "c"},
        (protocol.DocumentSequence(field, docs),),
        False,
        None,
        sock.max_wire_version,
    )
    return protocol.encode(message, 1)


def command_size(frame: bytes) -> int:
    if struct.unpack_from("<i", frame, 12)[0] == protocol.OP_MSG:
        return body_size(frame)
    return int(struct.unpack_from("<i", frame, frame.index(b"\x00", 20) + 9)[0])


def fits(sock: LimitsOnly, field: str, docs: List[bytes]) -> bool:
    frame = encoded_frame(sock, field, docs)
    return (
        len(docs) <= sock.max_write_batch_size
        and len(frame) <= sock.max_message_size
        and command_size(frame) <= sock.max_bson_size + COMMAND_OVERHEAD
    )


@settings(max_examples=150, deadline=None)
@example(wire=4, field="updates", max_bson=100, max_message=40_000, max_count=12, pads=[4000] * 8)
@example(wire=4, field="updates", max_bson=100, max_message=300, max_count=12, pads=[0] * 12)
@example(wire=17, field="documents", max_bson=5000, max_message=40_000, max_count=3, pads=[9] * 7)
@given(
    wire=st.sampled_from([4, 17]),
    field=st.sampled_from(["documents", "updates"]),
    max_bson=st.integers(100, 1500) | st.integers(4000, 6000),
    max_message=st.integers(150, 3000) | st.integers(17_000, 40_000),
    max_count=st.integers(1, 12),
    pads=st.lists(st.integers(0, 400) | st.integers(1000, 4000), min_size=1, max_size=12),
)
def test_batches_are_greedy_and_fit_the_real_encoding(
    wire: int, field: str, max_bson: int, max_message: int, max_count: int, pads: List[int]
) -> None:
    sock = LimitsOnly(wire, max_bson, max_message, max_count)
    docs = [bson.encode({"_id": i, "p": "x" * pad}) for i, pad in enumerate(pads)]
    each = max_bson if field == "documents" else max_bson + COMMAND_OVERHEAD
    sendable = all(len(d) <= each and fits(sock, field, [d]) for d in docs)
    try:
        batches = _batches("db", {"insert": "c"}, field, docs, False, sock)  # type: ignore[arg-type]
    except DocumentTooLarge:
        assert not sendable
        return
    assert sendable
    assert [d for batch in batches for d in batch] == docs
    for i, batch in enumerate(batches):
        assert fits(sock, field, batch)
        if i + 1 < len(batches):  # the next document would not have fitted
            assert not fits(sock, field, batch + [batches[i + 1][0]])


@pytest.mark.parametrize(("wire", "bites"), [(17, "message"), (4, "message"), (4, "command")])
def test_a_batch_fills_its_message_to_the_byte(wire: int, bites: str) -> None:
    """Two documents whose message is exactly at the limit go in one batch; one byte more
    and they go in two. For OP_MSG only the message limit applies; for OP_QUERY the
    command's own limit too (the documents are inside it)."""
    sock = LimitsOnly(wire, MAX_BSON, 40_000 if bites == "command" else 3000, 10)
    first = bson.encode({"_id": 0, "p": "x" * 100})

    def two(pad: int) -> List[bytes]:
        return [first, bson.encode({"_id": 1, "p": "x" * pad})]

    frame = encoded_frame(sock, "updates", two(0))
    limit = COMMAND_LIMIT if bites == "command" else sock.max_message_size
    pad = limit - (command_size(frame) if bites == "command" else len(frame))
    frame = encoded_frame(sock, "updates", two(pad))
    assert (command_size(frame) if bites == "command" else len(frame)) == limit
    assert _batches("db", {"insert": "c"}, "updates", two(pad), False, sock) == [two(pad)]  # type: ignore[arg-type]
    split = _batches("db", {"insert": "c"}, "updates", two(pad + 1), False, sock)  # type: ignore[arg-type]
    assert split == [[first], two(pad + 1)[1:]]


# -- SecantusDB: real limits (16 MiB documents, 48 MB messages) ------------------------------


@pytest.fixture(scope="module")
def big_server() -> Iterator[SecantusServer]:
    """A server of this module's own: no other client's requests in its counters."""
    srv = SecantusServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def real(big_server: SecantusServer) -> Iterator[Connection]:
    c = Connection(big_server.uri, auto_start_request=False)
    c.test.big.drop()
    yield c
    c.close()


def seen(conn: Connection) -> Any:
    """(requests the server has read so far, its write counters, the socket's address)."""
    status = conn.admin.command("serverStatus")
    counters = {k: status["opcounters"][k] for k in ("insert", "query", "update", "delete")}
    return status["network"]["numRequests"], counters, conn.admin.command("whatsmyuri")["you"]


MB = 1_000_000
REAL_OVERSIZED = {
    "17 MB document": lambda c: c.test.big.insert({"p": "x" * (17 * MB)}),
    "17 MB document, w=0": lambda c: c.test.big.insert({"p": "x" * (17 * MB)}, w=0),
    "20 MB find filter": lambda c: c.test.big.find_one({"p": "x" * (20 * MB)}),
    "50 MB update document": lambda c: c.test.big.update(
        {"a": 1}, {"$set": {"p": "x" * (50 * MB)}}
    ),
    "50 MB update spec": lambda c: c.test.big.update({"p": "x" * (50 * MB)}, {"$set": {"a": 1}}),
    "20 MB remove spec": lambda c: c.test.big.remove({"p": "x" * (20 * MB)}),
    "20 MB pipeline": lambda c: drained(c.test.big.aggregate([{"$match": {"p": "x" * (20 * MB)}}])),
    "50 MB command": lambda c: c.test.command({"count": "big", "query": {"p": "x" * (50 * MB)}}),
}


async def flavoured_seen(conn: Any) -> Any:
    """``seen`` for either client."""
    status = await got(conn.admin.command("serverStatus"))
    counters = {k: status["opcounters"][k] for k in ("insert", "query", "update", "delete")}
    me = (await got(conn.admin.command("whatsmyuri")))["you"]
    return status["network"]["numRequests"], counters, me


def run_on_real(flavour: Flavour, big_server: SecantusServer, body: Callable[[Any], Any]) -> None:
    """``await body(conn)`` with a connection of the flavour to ``big_server`` (``real``)."""

    async def main() -> None:
        conn = await flavour.open(
            Connection, AsyncConnection, big_server.uri, auto_start_request=False
        )
        try:
            await got(conn.test.big.drop())
            await body(conn)
        finally:
            await got(conn.close())

    flavour.run(main)


@pytest.mark.parametrize("operation", sorted(REAL_OVERSIZED))
def test_real_server_oversized_operation_sends_nothing(
    big_server: SecantusServer, operation: str, flavour: Flavour
) -> None:
    async def body(real: Any) -> None:
        requests, counters, me = await flavoured_seen(real)
        with pytest.raises(DocumentTooLarge):
            await got(REAL_OVERSIZED[operation](real))
        after_requests, after_counters, after_me = await flavoured_seen(real)
        assert after_requests == requests + 2  # serverStatus and whatsmyuri of seen(), no more
        assert after_counters == counters and after_me == me
        await got(real.test.big.insert({"_id": 1}))  # the same socket works on
        assert await got(real.test.big.find_one()) == {"_id": 1}
        assert (await got(real.admin.command("whatsmyuri")))["you"] == me
        assert real.pool.open_count == 1

    run_on_real(flavour, big_server, body)


def test_real_server_request_keeps_its_socket(big_server: SecantusServer, flavour: Flavour) -> None:
    async def body(real: Any) -> None:
        with real.start_request():
            me = (await got(real.admin.command("whatsmyuri")))["you"]
            with pytest.raises(DocumentTooLarge):
                await got(real.test.big.update({"p": "x" * (50 * MB)}, {"$set": {"a": 1}}))
            assert real.in_request()
            assert (await got(real.admin.command("whatsmyuri")))["you"] == me

    run_on_real(flavour, big_server, body)


def test_real_server_takes_exactly_16_mib_and_the_allowance(real: Connection) -> None:
    limit = 16 * 1024 * 1024
    pad = limit - len(bson.encode({"_id": 1, "p": ""}))
    real.test.big.insert({"_id": 1, "p": "x" * pad})
    with pytest.raises(DocumentTooLarge):
        real.test.big.insert({"_id": 2, "p": "x" * (pad + 1)})
    assert real.test.big.count({"p": "x" * (limit + 16_000)}) == 0  # within the allowance
    assert real.test.big.count() == 1


def test_real_server_50_mb_insert_goes_in_several_messages(real: Connection) -> None:
    requests, _, _ = seen(real)
    real.test.big.insert([{"_id": i, "p": "y" * MB} for i in range(50)])  # over 48 MB
    after, counters, _ = seen(real)
    assert after - requests - 2 >= 2  # two insert messages at least
    assert real.test.big.count() == 50
