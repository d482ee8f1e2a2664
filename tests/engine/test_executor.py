"""The operation path's error handler (wireclient.engine.executor), with scripted stand-in sockets:
which errors clear the pool (a new generation), which only lose their socket, and what the
selector (the topology) hears. The same rules against real servers: test_requests.py,
test_replica_set.py."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import pytest

from wireclient import errors
from wireclient.engine.executor import Executor, SingleServer
from wireclient.pooling.identity import ThreadIdentity
from wireclient.pooling.pool import Pool
from wireclient.pooling.requests import Requests
from wireclient.transport.blocking import run
from wireclient.transport.steps import Steps


class ScriptedSocket:
    """The parts of SocketInfo the pool and the path use; replies come from a script."""

    def __init__(self, script: List[Any], wire: int) -> None:
        self.script = script
        self.closed = False
        self.max_wire_version = wire
        self.max_bson_size = 1000
        self.max_message_size = 100_000
        self.max_write_batch_size = 3
        self.sent: List[Any] = []

    def send_and_receive(
        self, message: Any, expect_reply: bool = True, check: Any = None, request_id: Any = None
    ) -> Steps[Optional[Dict[str, Any]]]:
        """A step, like ``SocketInfo.send_and_receive`` (it needs no I/O)."""
        from wireclient import protocol

        if isinstance(message, bytes):  # the path's frame: recorded as the message it carries
            frame, message = message, protocol.decode(message, len(message))[1]
        else:
            frame = protocol.encode(message, request_id or 1)
        if check is not None:
            check(self, frame)  # limits, before "sending"
        self.sent.append(message)
        step = self.script.pop(0) if self.script else {"ok": 1}
        if isinstance(step, BaseException):
            self.close()  # as network does for any error mid-conversation
            raise step
        return step if expect_reply else None
        yield  # makes this a generator

    def is_dead(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class RecordingSelector(SingleServer):
    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self.failed: List[str] = []
        self.not_primaries: List[Mapping[str, Any]] = []
        self.stale = False

    def server_failed(self, pool: Pool, message: str) -> None:
        self.failed.append(message)

    def not_primary(self, pool: Pool, error: Mapping[str, Any]) -> bool:
        self.not_primaries.append(error)
        return not self.stale


def make(script: List[Any], wire: int = 17, **pool_options: Any) -> Any:
    made: List[ScriptedSocket] = []

    def connect() -> Steps[Any]:
        sock = ScriptedSocket(script, wire)
        made.append(sock)
        return sock
        yield  # makes this a generator

    pool = Pool(("h", 1), connect, **pool_options)
    selector = RecordingSelector(pool)
    executor = Executor(selector, Requests(ThreadIdentity(), auto_start=False))
    return executor, pool, selector, made


def ping(executor: Executor) -> Any:
    return run(executor.run("admin", {"ping": 1}))


def test_network_error_on_a_current_socket_clears_the_pool_once() -> None:
    executor, pool, selector, made = make([errors.AutoReconnect("reset")])
    idle = run(pool.checkout())
    busy = run(pool.checkout())
    pool.return_socket(idle)  # LIFO: the next operation takes `idle` and meets the fault
    with pytest.raises(errors.AutoReconnect):
        ping(executor)
    assert pool.generation == 1 and len(selector.failed) == 1
    assert idle.closed and not busy.closed  # never closed under its user's feet
    pool.return_socket(busy)
    assert busy.closed and pool.open_count == 0  # old generation: dropped on return
    assert ping(executor) == {"ok": 1} and pool.generation == 1


def test_error_on_a_socket_of_an_older_generation_is_ignored() -> None:
    executor, pool, selector, _ = make([])
    table = executor.requests
    table.start()
    state = table.current()
    sock = run(executor.acquire(pool, state))
    generation = pool.generation_of(sock)
    pool.clear()  # another thread met the fault first
    sock.script.append(errors.AutoReconnect("reset"))
    with pytest.raises(errors.AutoReconnect):
        run(executor._exchange(pool, sock, generation, "admin", {"ping": 1}, (), False, None))
    executor.release(pool, sock, state)
    assert pool.generation == 1 and selector.failed == []  # not cleared again, not reported
    table.end()


def test_a_timeout_after_the_handshake_loses_only_its_socket() -> None:
    executor, pool, selector, made = make([errors.NetworkTimeout("slow")])
    other = run(pool.checkout())
    first = run(pool.checkout())
    pool.return_socket(other)
    pool.return_socket(first)
    with pytest.raises(errors.NetworkTimeout):
        ping(executor)
    assert first.closed and not other.closed
    assert pool.generation == 0 and selector.failed == [] and pool.idle_count() == 1


def test_a_failed_connect_clears_the_pool() -> None:
    def connect() -> Steps[Any]:
        raise errors.NetworkTimeout("connect timed out")  # a timeout during the handshake
        yield  # makes this a generator

    pool = Pool(("h", 1), connect)
    executor = Executor(RecordingSelector(pool), Requests(ThreadIdentity(), auto_start=False))
    with pytest.raises(errors.NetworkTimeout):
        ping(executor)
    assert pool.generation == 1 and pool.open_count == 0


def test_a_handshake_error_of_the_current_generation_tells_the_selector() -> None:
    executor, pool, selector, _ = make([])
    executor.handshake_error(pool, pool.generation, errors.NetworkTimeout("connect timed out"))
    assert len(selector.failed) == 1 and "connect timed out" in selector.failed[0]


def test_a_handshake_begun_before_the_last_clear_changes_nothing() -> None:
    executor, pool, selector, _ = make([])
    pool.clear()  # while that socket was connecting, another one's fault was reported
    executor.handshake_error(pool, 0, errors.AutoReconnect("connection reset"))
    assert selector.failed == [] and pool.generation == 1


@pytest.mark.parametrize(
    "code, wire, clears",
    [
        (91, 17, True),  # ShutdownInProgress: the process is going away
        (11600, 17, True),  # InterruptedAtShutdown
        (10107, 17, False),  # NotWritablePrimary on 4.2+: the sockets stay good
        (13435, 8, False),
        (10107, 7, True),  # before 4.2 a step-down closes every socket
        (189, 6, True),
    ],
)
def test_state_change_errors_clear_by_code_and_server_version(
    code: int, wire: int, clears: bool
) -> None:
    executor, pool, selector, _ = make([{"ok": 0, "code": code, "errmsg": "x"}], wire=wire)
    with pytest.raises(errors.NotPrimaryError):
        ping(executor)
    assert len(selector.not_primaries) == 1
    assert pool.generation == (1 if clears else 0)


def test_a_stale_state_change_error_changes_nothing() -> None:
    executor, pool, selector, _ = make([{"ok": 0, "code": 91, "errmsg": "x"}])
    selector.stale = True  # the topology says: older than what it knows
    with pytest.raises(errors.NotPrimaryError):
        ping(executor)
    assert pool.generation == 0


def test_operation_failure_keeps_socket_and_generation() -> None:
    executor, pool, selector, made = make([{"ok": 0, "code": 2, "errmsg": "bad"}])
    with pytest.raises(errors.OperationFailure):
        ping(executor)
    assert not made[0].closed and pool.idle_count() == 1 and pool.generation == 0
    assert selector.failed == [] and selector.not_primaries == []


def test_write_concern_error_reaches_the_selector() -> None:
    reply = {"ok": 1, "n": 1, "writeConcernError": {"code": 11602, "errmsg": "stepping down"}}
    executor, pool, selector, _ = make([reply])
    with pytest.raises(errors.WriteConcernError):
        run(executor.write("db", {"insert": "c"}, "documents", [b"\x05\x00\x00\x00\x00"], False))
    assert [e["code"] for e in selector.not_primaries] == [11602]


def test_write_batches_follow_the_servers_limits_and_stop_at_the_first_failure() -> None:
    doc = b"\x05\x00\x00\x00\x00"  # {} as BSON
    failing = {"ok": 1, "n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "dup"}]}
    executor, pool, _, made = make([{"ok": 1, "n": 3}, failing])
    with pytest.raises(errors.DuplicateKeyError):
        run(executor.write("db", {"insert": "c"}, "documents", [doc] * 8, False))
    batches = [len(m.sequences[0].documents) for m in made[0].sent]
    assert batches == [3, 3]  # maxWriteBatchSize 3; the third batch was never sent


def test_an_encoded_document_over_the_size_limit_sends_nothing() -> None:
    executor, pool, _, made = make([])
    big = b"\x00" * 1001  # over the stand-in's maxBsonObjectSize of 1000
    with pytest.raises(errors.InvalidDocument):
        run(
            executor.write(
                "db", {"insert": "c"}, "documents", [b"\x05\x00\x00\x00\x00", big], False
            )
        )
    assert made[0].sent == [] and pool.idle_count() == 1  # the socket stays in the pool


def test_cursor_kills_queued_by_the_gc_go_out_before_the_next_operation() -> None:
    executor, pool, _, made = make([])
    executor.defer_kill(pool, "db", "c", 7)
    executor.defer_kill(pool, "db", "c", 8)
    ping(executor)
    kill, ping_message = made[0].sent
    assert kill.body["killCursors"] == "c" and kill.body["cursors"] == [7, 8]
    assert "ping" in ping_message.body
