"""wireclient.protocol cross-checked with mockupdb, an independent wire protocol parser.

Frames our encoder writes are parsed by mockupdb's request parsers (``OpMsg.unpack``,
``OpQuery.unpack`` ...), replies mockupdb builds (``OpMsgReply`` / ``OpReply``
``.reply_bytes``) are read by our decoder, and a live ``MockupDB`` server receives our frames
over a socket and answers them.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_protocol_hypothesis import (
    INT32,
    INT64,
    UINT32,
    cstrings,
    document_lists,
    documents,
    msg_flags,
)

from wireclient import protocol as p

mockupdb = pytest.importorskip("mockupdb")

CROSS = settings(max_examples=40, deadline=None)


def unpack_with_mockupdb(frame: bytes) -> Any:
    """Parse a client frame the way a MockupDB server does (mock_server_receive_request)."""
    length, request_id, _, op_code = struct.unpack("<iiii", frame[:16])
    assert length == len(frame)
    return mockupdb.OPCODES[op_code].unpack(frame[16:], None, None, request_id)


class _Req:
    """What OpReply / OpMsgReply .reply_bytes() need of a request."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id


# ------------------------------------------------------------------ our frames, their parser


@st.composite
def commands(draw: st.DrawFn) -> Tuple[p.OpMsg, Dict[str, Any]]:
    """An OpMsg with a $db, and the merged document mockupdb should see."""
    body = draw(documents)
    body["$db"] = draw(cstrings)
    merged = dict(body)
    sequences = []
    # ASCII identifiers: mockupdb 1.8.1 sizes a sequence with len(identifier) in characters,
    # not UTF-8 bytes. (Real identifiers are "documents", "updates", "deletes".)
    idents = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=10)
    for ident in draw(st.lists(idents, max_size=3, unique=True)):
        if ident in merged:
            continue  # mockupdb merges sequences into the body by identifier
        docs = draw(document_lists)
        sequences.append(p.DocumentSequence(ident, docs))
        merged[ident] = docs
    return p.OpMsg(body, sequences, draw(msg_flags)), merged


@CROSS
@given(commands(), INT32)
def test_op_msg_parsed_by_mockupdb(command: Tuple[p.OpMsg, Dict[str, Any]], rid: int) -> None:
    message, merged = command
    # mockupdb refuses every bit it does not know, even the optional ones (16-31).
    message = message.replace(flags=message.flags & 0x10003)
    frame = p.encode(message, rid)
    request = unpack_with_mockupdb(frame)
    assert isinstance(request, mockupdb.OpMsg)
    assert request.request_id == rid
    assert request.flags == message.flags
    assert request.namespace == message.body["$db"]
    assert request.doc == merged
    if message.flags & p.MsgFlags.checksumPresent:
        assert request.checksum == struct.unpack("<I", frame[-4:])[0]
    else:
        assert request.checksum is None


@CROSS
@given(cstrings, documents, UINT32, INT32, INT32, st.none() | documents)
def test_op_query_parsed_by_mockupdb(
    ns: str, query: Dict[str, Any], flags: int, skip: int, limit: int, fields: Any
) -> None:
    if ns.endswith(".$cmd"):
        ns += "x"
    request = unpack_with_mockupdb(p.encode(p.OpQuery(ns, query, flags, skip, limit, fields), 7))
    assert type(request) is mockupdb.OpQuery
    assert request.namespace == ns
    assert request.doc == query
    assert request.fields == fields
    assert (request.flags & 0xFFFFFFFF, request.num_to_skip, request.num_to_return) == (
        flags,
        skip,
        limit,
    )
    assert request.request_id == 7


def test_op_query_command_parsed_by_mockupdb() -> None:
    frame = p.encode(p.OpQuery("admin.$cmd", {"hello": 1, "helloOk": True}), 11)
    request = unpack_with_mockupdb(frame)
    assert isinstance(request, mockupdb.Command)
    assert request.namespace == "admin"
    assert request.command_name == "hello"
    assert request.doc == {"hello": 1, "helloOk": True}


@CROSS
@given(cstrings, INT64, INT32)
def test_op_get_more_parsed_by_mockupdb(ns: str, cursor_id: int, number_to_return: int) -> None:
    request = unpack_with_mockupdb(p.encode(p.OpGetMore(ns, cursor_id, number_to_return), 3))
    assert isinstance(request, mockupdb.OpGetMore)
    assert (request.namespace, request.cursor_id, request.num_to_return) == (
        ns,
        cursor_id,
        number_to_return,
    )


def test_op_kill_cursors_parsed_by_mockupdb() -> None:
    # mockupdb 1.8.1 reads cursor ids as int32 (the spec says int64), so only the count and
    # the low half of the first id can be compared.
    request = unpack_with_mockupdb(p.encode(p.OpKillCursors([12345]), 4))
    assert isinstance(request, mockupdb.OpKillCursors)
    assert request.cursor_ids == [12345]


@CROSS
@given(cstrings, st.lists(documents, min_size=1, max_size=4), UINT32)
def test_op_insert_parsed_by_mockupdb(ns: str, docs: List[Dict[str, Any]], flags: int) -> None:
    request = unpack_with_mockupdb(p.encode(p.OpInsert(ns, docs, flags), 5))
    assert isinstance(request, mockupdb.OpInsert)
    assert (request.namespace, list(request.docs), request.flags & 0xFFFFFFFF) == (ns, docs, flags)


@CROSS
@given(cstrings, documents, documents, UINT32)
def test_op_update_parsed_by_mockupdb(ns: str, selector: Any, update: Any, flags: int) -> None:
    request = unpack_with_mockupdb(p.encode(p.OpUpdate(ns, selector, update, flags), 6))
    assert isinstance(request, mockupdb.OpUpdate)
    assert (request.namespace, list(request.docs), request.flags & 0xFFFFFFFF) == (
        ns,
        [selector, update],
        flags,
    )


@CROSS
@given(cstrings, documents, UINT32)
def test_op_delete_parsed_by_mockupdb(ns: str, selector: Any, flags: int) -> None:
    request = unpack_with_mockupdb(p.encode(p.OpDelete(ns, selector, flags), 8))
    assert isinstance(request, mockupdb.OpDelete)
    assert (request.namespace, list(request.docs), request.flags & 0xFFFFFFFF) == (
        ns,
        [selector],
        flags,
    )


# ------------------------------------------------------------------ their frames, our parser


@CROSS
@given(documents, st.sampled_from([0, 2]), INT32)
def test_mockupdb_op_msg_reply_decoded(doc: Dict[str, Any], flags: int, rid: int) -> None:
    frame = mockupdb.OpMsgReply(doc, flags=flags).reply_bytes(_Req(rid))
    header, message = p.decode(frame)
    assert (header.message_length, header.response_to, header.op_code) == (
        len(frame),
        rid,
        p.OP_MSG,
    )
    assert message == p.OpMsg(doc, flags=flags)
    reader = p.MessageReader()
    for i in range(len(frame)):
        reader.feed(frame[i : i + 1])
    assert list(reader) == [(header, message)]


@CROSS
@given(document_lists, st.integers(0, 15), INT64, INT32, INT32)
def test_mockupdb_op_reply_decoded(
    docs: List[Dict[str, Any]], flags: int, cursor_id: int, starting_from: int, rid: int
) -> None:
    reply = mockupdb.OpReply(docs, flags=flags, cursor_id=cursor_id, starting_from=starting_from)
    frame = reply.reply_bytes(_Req(rid))
    header, message = p.decode(frame)
    assert (header.response_to, header.op_code) == (rid, p.OP_REPLY)
    assert message == p.OpReply(docs, flags, cursor_id, starting_from)


# --------------------------------------------------------------------------- a live MockupDB


@pytest.fixture(scope="module")
def mock_server() -> Iterator[Any]:
    server = mockupdb.MockupDB(request_timeout=5)
    server.run()
    try:
        yield server
    finally:
        server.stop()  # about 1 s: its accept loop polls once a second


@pytest.fixture()
def live(mock_server: Any) -> Iterator[Tuple[Any, socket.socket]]:
    sock = socket.create_connection(("localhost", mock_server.port), timeout=5)
    try:
        yield mock_server, sock
    finally:
        sock.close()


def read_reply(sock: socket.socket) -> Tuple[p.Header, p.Message]:
    reader = p.MessageReader()
    while True:
        item = reader.next_message()
        if item is not None:
            return item
        chunk = sock.recv(max(reader.bytes_needed, 1))
        assert chunk, "server closed the connection"
        reader.feed(chunk)


def test_live_op_msg_round_trip(live: Tuple[Any, socket.socket]) -> None:
    server, sock = live
    docs = [{"_id": i, "s": "x" * i} for i in range(3)]
    command = p.OpMsg(
        {"insert": "c", "ordered": True, "$db": "db"},
        [p.DocumentSequence("documents", docs)],
        flags=p.MsgFlags.checksumPresent,
    )
    sock.sendall(p.encode(command, 1234))
    request = server.receives(timeout=5)
    assert request.request_id == 1234
    assert request.doc == {"insert": "c", "ordered": True, "$db": "db", "documents": docs}
    request.reply({"n": 3})
    header, reply = read_reply(sock)
    assert header.response_to == 1234
    assert reply == p.OpMsg({"n": 3, "ok": 1})


def test_live_more_to_come_gets_no_reply(live: Tuple[Any, socket.socket]) -> None:
    server, sock = live
    unacknowledged = p.OpMsg(
        {"delete": "c", "$db": "db", "writeConcern": {"w": 0}},
        [p.DocumentSequence("deletes", [{"q": {}, "limit": 0}])],
        flags=p.MsgFlags.moreToCome,
    )
    sock.sendall(p.encode(unacknowledged, 1) + p.encode(p.OpMsg({"ping": 1, "$db": "a"}), 2))
    first = server.receives(timeout=5)
    assert first.flags & p.MsgFlags.moreToCome
    assert first.doc["deletes"] == [{"q": {}, "limit": 0}]
    server.receives(timeout=5).ok()
    header, reply = read_reply(sock)
    assert header.response_to == 2
    assert reply == p.OpMsg({"ok": 1})


def test_live_op_query_command_round_trip(live: Tuple[Any, socket.socket]) -> None:
    server, sock = live
    sock.sendall(p.encode(p.OpQuery("admin.$cmd", {"hello": 1}), 77))
    request = server.receives(timeout=5)
    assert isinstance(request, mockupdb.Command)
    assert request.command_name == "hello"
    request.reply({"isWritablePrimary": True, "maxWireVersion": 17})
    header, reply = read_reply(sock)
    assert (header.response_to, header.op_code) == (77, p.OP_REPLY)
    assert reply == p.OpReply([{"isWritablePrimary": True, "maxWireVersion": 17, "ok": 1}])
