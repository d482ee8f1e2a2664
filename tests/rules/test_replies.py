"""Malformed command replies (wireclient/rules/replies.py on the operation path), against mockupdb.

Every field of a reply that the client acts on is broken in turn, each way it can be:
missing, of the wrong type (a string, a null, a bool for an integer, a double for an
integer, an array for a document...), negative or out of range. The reply goes out as a raw
OP_MSG frame built here, so even a reply without ``ok`` can be sent. Each case checks that
the client raises ``ProtocolError`` (``side="remote"``) naming the field, the command and
the server, that the socket that received it was closed at once (not left to the garbage
collector, and never returned to the pool), and that the next operation works on a new
socket. The parsers' other callers (``check_reply``, ``raise_write_errors``,
``reply_document``) are tested on plain values at the end.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Tuple

import bson
import pytest
from bson import Int64, ObjectId
from leak_check import no_leaked_socket
from mock_server import TIMEOUT, MockServer
from reply_edits import DELETE, changed, send_raw

from wireclient import Collection, Connection, protocol
from wireclient.errors import (
    DuplicateKeyError,
    NotPrimaryError,
    OperationFailure,
    ProtocolError,
    WriteConcernError,
)
from wireclient.rules.command import check_reply, raise_write_errors, reply_document
from wireclient.rules.replies import check, passes_quickly


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def conn(mock: MockServer) -> Iterator[Connection]:
    c = mock.connect()
    yield c
    c.close()


class Op(NamedTuple):
    """An operation of the public API, the command it sends, and a good reply to it;
    ``before`` answers what the operation sends first (a getMore's find)."""

    run: Callable[[Connection], Any]
    command: str
    good: Dict[str, Any]
    db: str = "test"
    before: Callable[[MockServer], None] = lambda mock: None


def _cursor(batch: str, docs: List[Dict[str, Any]], cursor_id: int = 0) -> Dict[str, Any]:
    return {"ok": 1.0, "cursor": {"id": Int64(cursor_id), "ns": "test.things", batch: docs}}


def _find_with_more(mock: MockServer) -> None:
    mock.receives("find").reply(_cursor("firstBatch", [{"_id": 1}], 42))


def things(c: Connection) -> Collection:
    return c.test.things


OPS: Dict[str, Op] = {
    "ping": Op(lambda c: c.test.command("ping"), "ping", {"ok": 1.0}),
    "find": Op(lambda c: list(things(c).find()), "find", _cursor("firstBatch", [{"_id": 1}])),
    "aggregate": Op(
        lambda c: list(things(c).aggregate([])), "aggregate", _cursor("firstBatch", [{"a": 1}])
    ),
    "getMore": Op(
        lambda c: list(things(c).find(batch_size=1)),
        "getMore",
        _cursor("nextBatch", [{"_id": 2}]),
        before=_find_with_more,
    ),
    "insert": Op(lambda c: things(c).insert({"_id": 1}), "insert", {"ok": 1.0, "n": 1}),
    "update": Op(
        lambda c: things(c).update({}, {"$set": {"a": 1}}, upsert=True),
        "update",
        {"ok": 1.0, "n": 1, "nModified": 0, "upserted": [{"index": 0, "_id": 7}]},
    ),
    "delete": Op(lambda c: things(c).remove({}), "delete", {"ok": 1.0, "n": 2}),
    "count": Op(lambda c: things(c).count(), "count", {"ok": 1.0, "n": 3}),
    "distinct": Op(lambda c: things(c).distinct("a"), "distinct", {"ok": 1.0, "values": [1]}),
    "listIndexes": Op(
        lambda c: things(c).index_information(),
        "listIndexes",
        _cursor("firstBatch", [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]),
    ),
    "listCollections": Op(
        lambda c: c.test.collection_names(),
        "listCollections",
        _cursor("firstBatch", [{"name": "things", "type": "collection"}]),
    ),
    "listDatabases": Op(
        lambda c: c.database_names(),
        "listDatabases",
        {"ok": 1.0, "databases": [{"name": "test"}]},
        db="admin",
    ),
}

FAILED = {"ok": 0.0, "errmsg": "bad value", "code": 2, "codeName": "BadValue"}
TV = {"processId": ObjectId(), "counter": Int64(3)}
WC_ERROR = {"code": 64, "errmsg": "waiting for replication timed out"}
WRITE_ERROR = {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}

# (operation, reply to start from or None for the operation's good one, path, bad value)
ENVELOPE: List[Tuple[str, Any, str, Any]] = [
    *[("ping", None, "ok", v) for v in (DELETE, "1", True, None, [1])],
    ("find", None, "ok", DELETE),
    ("insert", None, "ok", "ok"),
    *[("ping", FAILED, "code", v) for v in ("2", 2.0, True, None, [2], Int64(2**40))],
    *[("ping", FAILED, "errmsg", v) for v in (5, None, {"m": 1})],
    ("ping", FAILED, "codeName", 5),
    ("ping", {**FAILED, "errorLabels": []}, "errorLabels", "RetryableWriteError"),
    ("ping", {**FAILED, "errorLabels": []}, "errorLabels", [1]),
    *[("ping", {**FAILED, "topologyVersion": TV}, "topologyVersion", v) for v in ("x", [1])],
    ("ping", {**FAILED, "topologyVersion": TV}, "topologyVersion.processId", DELETE),
    ("ping", {**FAILED, "topologyVersion": TV}, "topologyVersion.processId", "p"),
    ("ping", {**FAILED, "topologyVersion": TV}, "topologyVersion.counter", DELETE),
    ("ping", {**FAILED, "topologyVersion": TV}, "topologyVersion.counter", "3"),
    ("ping", {**FAILED, "topologyVersion": TV}, "topologyVersion.counter", -1),
    *[
        ("insert", {"ok": 1, "n": 1, "writeConcernError": WC_ERROR}, "writeConcernError", v)
        for v in ("timeout", [WC_ERROR], None)
    ],
    *[
        ("ping", {"ok": 1, "writeConcernError": WC_ERROR}, "writeConcernError.code", v)
        for v in (DELETE, "64", 64.0, None)
    ],
    *[
        ("update", {"ok": 1, "n": 1, "writeConcernError": WC_ERROR}, "writeConcernError.errmsg", v)
        for v in (DELETE, 5)
    ],
]
CURSORS: List[Tuple[str, Any, str, Any]] = [
    *[(op, None, "cursor", v) for op in ("find", "getMore") for v in (DELETE, None, [1], "c")],
    *[("find", None, "cursor.id", v) for v in (DELETE, "0", True, 0.0, None)],
    *[("getMore", None, "cursor.id", v) for v in (DELETE, "0", False, Int64(43))],
    *[("aggregate", None, "cursor.ns", v) for v in (5, None)],
    *[("find", None, "cursor.firstBatch", v) for v in (DELETE, {"0": {}}, None, "docs")],
    *[("getMore", None, "cursor.nextBatch", v) for v in (DELETE, None, 3)],
    *[("find", None, "cursor.firstBatch.0", v) for v in (5, "doc", None, [1])],
    ("getMore", None, "cursor.nextBatch.0", 5),
    *[("listIndexes", None, "cursor.firstBatch.0.name", v) for v in (DELETE, 5, None)],
    *[("listCollections", None, "cursor.firstBatch.0.name", v) for v in (DELETE, 1)],
    ("listCollections", None, "cursor.id", "0"),
    *[("listDatabases", None, "databases", v) for v in (DELETE, "test", None)],
    *[("listDatabases", None, "databases.0", v) for v in ("test", 1)],
    *[("listDatabases", None, "databases.0.name", v) for v in (DELETE, 1)],
    *[("count", None, "n", v) for v in (DELETE, "3", -1, True, 3.0)],
    *[("distinct", None, "values", v) for v in (DELETE, "1", None, {"0": 1})],
]
WRITES: List[Tuple[str, Any, str, Any]] = [
    *[(op, None, "n", v) for op in ("insert", "delete") for v in (DELETE, "1", True, -1, 1.0)],
    ("update", None, "n", None),
    ("update", None, "n", Int64(-(2**31))),
    *[("update", None, "nModified", v) for v in ("0", -1, True, None)],
    *[("update", None, "upserted", v) for v in ("7", None, {"0": 7})],
    *[("update", None, "upserted.0", v) for v in (7, "x")],
    ("update", None, "upserted.0._id", DELETE),
    *[("update", None, "upserted.0.index", v) for v in (DELETE, "0", -1, True)],
    *[
        ("insert", {"ok": 1, "n": 0, "writeErrors": [WRITE_ERROR]}, "writeErrors", v)
        for v in ("dup", {"0": WRITE_ERROR}, None)
    ],
    *[
        ("delete", {"ok": 1, "n": 0, "writeErrors": [WRITE_ERROR]}, "writeErrors.0", v)
        for v in (11000, "E11000")
    ],
    *[
        ("insert", {"ok": 1, "n": 0, "writeErrors": [WRITE_ERROR]}, "writeErrors.0.code", v)
        for v in (DELETE, "11000", 11000.0, None, True, [11000])
    ],
    *[
        ("update", {"ok": 1, "n": 0, "writeErrors": [WRITE_ERROR]}, "writeErrors.0.errmsg", v)
        for v in (DELETE, 5, None)
    ],
    *[
        ("insert", {"ok": 1, "n": 0, "writeErrors": [WRITE_ERROR]}, "writeErrors.0.index", v)
        for v in ("0", -1)
    ],
]


def _case_id(case: Tuple[str, Any, str, Any]) -> str:
    op, _, path, value = case
    shown = "missing" if value is DELETE else f"{type(value).__name__}:{value!r}"[:30]
    return f"{op}-{path}-{shown}"


@pytest.mark.parametrize(
    "op_name, base, path, value",
    ENVELOPE + CURSORS + WRITES,
    ids=map(_case_id, ENVELOPE + CURSORS + WRITES),
)
def test_malformed_reply_is_a_protocol_error_and_closes_the_socket(
    mock: MockServer, conn: Connection, op_name: str, base: Any, path: str, value: Any
) -> None:
    op = OPS[op_name]
    with no_leaked_socket():
        future = mock.run(op.run, conn)
        op.before(mock)
        cmd = mock.receives(op.command, db=op.db)
        send_raw(cmd, changed(base or op.good, path, value))
        with pytest.raises(ProtocolError) as info:
            future.result(TIMEOUT)
        error = info.value
        assert error.side == "remote"
        message = str(error)
        # the field itself, or the element of it that is wrong ('errorLabels.0')
        assert re.search(rf"field '{re.escape(path)}(\.\d+)?' ", message), message
        assert f"{op.command} reply from 127.0.0.1:{mock.address[1]}" in message, message
        del info, error, future
    assert conn.pool.open_count == 0  # closed at once, never back in the pool
    # The next operation works, on a new socket.
    future = mock.run(op.run, conn)
    op.before(mock)
    good = mock.receives(op.command, db=op.db)
    assert good.port != cmd.port
    send_raw(good, op.good)
    future.result(TIMEOUT)
    assert conn.pool.open_count == 1


@pytest.mark.parametrize("op_name", list(OPS))
def test_good_replies_pass(mock: MockServer, conn: Connection, op_name: str) -> None:
    """The good reply of each operation above is accepted (so each case breaks one field)."""
    op = OPS[op_name]
    future = mock.run(op.run, conn)
    op.before(mock)
    send_raw(mock.receives(op.command, db=op.db), op.good)
    future.result(TIMEOUT)
    assert conn.pool.open_count == 1


def test_malformed_reply_inside_a_request_continues_on_a_new_socket(
    mock: MockServer, conn: Connection
) -> None:
    def in_a_request() -> Tuple[bool, int]:
        conn.start_request()
        try:
            with pytest.raises(ProtocolError, match="count reply .* field 'n'"):
                things(conn).count()
            return conn.in_request(), things(conn).count()
        finally:
            conn.end_request()

    future = mock.run(in_a_request)
    bad = mock.receives("count")
    send_raw(bad, {"ok": 1, "n": "three"})
    good = mock.receives("count")
    assert good.port != bad.port  # the request's socket was replaced
    good.reply(n=3)
    assert future.result(TIMEOUT) == (True, 3)
    assert conn.pool.open_count == 1


def test_good_replies_keep_what_servers_really_send(mock: MockServer, conn: Connection) -> None:
    """Doubles for ok, int32 or int64 ids, negative cursor ids, extra fields, empty lists."""
    future = mock.run(lambda: list(things(conn).find(batch_size=1)))
    first = _cursor("firstBatch", [{"_id": 1}], -(2**62))
    first["cursor"]["partialResultsReturned"] = False
    send_raw(mock.receives("find"), {**first, "$clusterTime": {"t": 1}, "ok": 1})
    more = mock.receives("getMore")
    assert more.body["getMore"] == -(2**62)
    send_raw(more, {"ok": 1.0, "cursor": {"id": 0, "nextBatch": []}})  # int32 id, no ns
    assert future.result(TIMEOUT) == [{"_id": 1}]
    future = mock.run(things(conn).update, {}, {"$set": {"a": 1}})
    send_raw(mock.receives("update"), {"ok": 1, "n": Int64(0), "nModified": 0, "upserted": []})
    assert future.result(TIMEOUT)["n"] == 0
    future = mock.run(things(conn).remove, {})
    send_raw(mock.receives("delete"), {"ok": 1, "n": Int64(2**33)})  # no int32 bound on n
    assert future.result(TIMEOUT)["n"] == 2**33


def test_a_write_error_reply_still_raises_its_own_error(mock: MockServer, conn: Connection) -> None:
    """Well-formed errors keep their types (and the socket stays in the pool)."""
    future = mock.run(OPS["insert"].run, conn)
    send_raw(mock.receives("insert"), {"ok": 1, "n": 0, "writeErrors": [WRITE_ERROR]})
    with pytest.raises(DuplicateKeyError):
        future.result(TIMEOUT)
    assert conn.pool.open_count == 1 and conn.pool.idle_count() == 1


@pytest.mark.parametrize("op", ["insert", "update", "delete"])
def test_a_write_error_reply_without_n_raises_its_own_error(
    mock: MockServer, conn: Connection, op: str
) -> None:
    """``{ok: 1, writeErrors: [...]}`` with no ``n`` (the SDAM spec's write_errors_ignored
    reply) is the write's error, not a malformed reply: no ProtocolError, the socket is
    kept, and nothing is cleared."""
    future = mock.run(OPS[op].run, conn)
    send_raw(mock.receives(OPS[op].command), {"ok": 1, "writeErrors": [WRITE_ERROR]})
    with pytest.raises(DuplicateKeyError):
        future.result(TIMEOUT)
    assert conn.pool.open_count == 1 and conn.pool.idle_count() == 1


# -- the parsers' other callers, on plain values ----------------------------------------


@pytest.mark.parametrize(
    "reply, field",
    [
        ({"errmsg": "x"}, "ok"),
        ({"ok": "0"}, "ok"),
        ({"ok": 0, "code": [10107]}, "code"),  # was a TypeError (unhashable list)
        ({"ok": 0, "code": "11000"}, "code"),
        ({"ok": 0, "code": 2, "errmsg": 7}, "errmsg"),
        ({"ok": 0, "topologyVersion": 1}, "topologyVersion"),
    ],
)
def test_check_reply_refuses_malformed_replies(reply: Dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=f"hello reply from h:1: field '{field}'"):
        check_reply(reply, "hello", "h:1")


def test_check_reply_still_types_errors() -> None:
    with pytest.raises(NotPrimaryError):
        check_reply({"ok": 0, "code": 10107, "errmsg": "not primary"})
    with pytest.raises(OperationFailure, match="legacy failure") as info:
        check_reply({"ok": 0, "$err": "legacy failure", "code": 17})
    assert info.value.code == 17
    check_reply({"ok": 1.0})


@pytest.mark.parametrize(
    "reply, field",
    [
        ({"ok": 1, "writeErrors": "dup"}, "writeErrors"),
        ({"ok": 1, "writeErrors": [{"errmsg": "dup"}]}, "writeErrors.0.code"),
        ({"ok": 1, "writeErrors": [{"code": None, "errmsg": "dup"}]}, "writeErrors.0.code"),
        ({"ok": 1, "writeErrors": [{"code": 11000}]}, "writeErrors.0.errmsg"),
        ({"ok": 1, "writeErrors": [7]}, "writeErrors.0"),
        ({"ok": 1, "writeConcernError": "timeout"}, "writeConcernError"),
        ({"ok": 1, "writeConcernError": {"errmsg": "x"}}, "writeConcernError.code"),
    ],
)
def test_raise_write_errors_refuses_malformed_errors(reply: Dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=f"field '{field}'"):
        raise_write_errors(reply, "h:1")


def test_raise_write_errors_still_types_errors() -> None:
    with pytest.raises(DuplicateKeyError):
        raise_write_errors({"ok": 1, "writeErrors": [WRITE_ERROR]})
    with pytest.raises(WriteConcernError) as info:
        raise_write_errors({"ok": 1, "n": 1, "writeConcernError": WC_ERROR})
    assert info.value.code == 64
    raise_write_errors({"ok": 1})  # no n: an unacknowledged write's reply (wire 4-5)


def test_reply_document_of_op_reply() -> None:
    failure = protocol.OpReply([{"$err": "no", "ok": 1}], protocol.ReplyFlags.QueryFailure)
    assert reply_document(failure)["ok"] == 0  # the flag wins over what the document says
    with pytest.raises(ProtocolError, match="2 documents"):
        reply_document(protocol.OpReply([{"ok": 1}, {"ok": 1}]))
    with pytest.raises(ProtocolError, match="0 documents"):
        reply_document(protocol.OpReply([]))


def test_explain_and_unknown_commands_are_not_shaped() -> None:
    check({"aggregate": "c", "pipeline": [], "explain": True}, {"ok": 1, "stages": []}, "h:1")
    check({"buildinfo": 1}, {"ok": 1, "version": 7}, "h:1")
    check({"insert": "c", "writeConcern": {"w": 0}}, {"ok": 1}, "h:1")  # w:0: no n
    with pytest.raises(ProtocolError, match="insert reply from h:1: field 'n' is missing"):
        check({"insert": "c"}, {"ok": 1}, "h:1")


# -- the path's quick acceptance (replies.passes_quickly) ---------------------------------


def _spec(op_name: str) -> Dict[str, Any]:
    command = OPS[op_name].command
    return {command: Int64(42) if command == "getMore" else "things"}


@pytest.mark.parametrize(
    "op_name, base, path, value",
    ENVELOPE + CURSORS + WRITES,
    ids=map(_case_id, ENVELOPE + CURSORS + WRITES),
)
def test_quick_acceptance_never_accepts_a_malformed_reply(
    op_name: str, base: Any, path: str, value: Any
) -> None:
    reply = changed(OPS[op_name].good if base is None else base, path, value)
    with pytest.raises(ProtocolError):
        check(_spec(op_name), reply, "host:1")
    assert not passes_quickly(_spec(op_name), reply)


@pytest.mark.parametrize(
    "op_name", ["ping", "find", "aggregate", "getMore", "insert", "delete", "count"]
)
def test_quick_acceptance_takes_the_usual_replies(op_name: str) -> None:
    reply = bson.decode(bson.encode(OPS[op_name].good))  # as the reader decodes it
    assert passes_quickly(_spec(op_name), reply)
    check(_spec(op_name), reply, "host:1")


def test_quick_acceptance_leaves_the_rest_to_the_full_check() -> None:
    spec = {"insert": "things"}
    for reply in (
        {"ok": 0.0, "errmsg": "no", "code": 2},
        {"ok": 1.0, "n": 1, "writeErrors": [WRITE_ERROR]},
        {"ok": 1.0, "n": 1, "writeConcernError": WC_ERROR},
        {"ok": 1.0, "n": 1, "topologyVersion": TV},
        {"ok": True, "n": 1},
    ):
        assert not passes_quickly(spec, reply)
    assert not passes_quickly({"insert": "t"}, {"ok": 1.0})  # n: required when acknowledged
    assert not passes_quickly({"listIndexes": "t"}, OPS["listIndexes"].good)  # not a quick shape
