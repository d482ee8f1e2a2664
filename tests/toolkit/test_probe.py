"""wireclient.toolkit.probe: the envelopes the CLI sends, its flag names, its timeouts, following an
exhaust stream, and how many replies raw bytes call for."""

from __future__ import annotations

import socket
import threading
from typing import Iterator, Tuple

import pytest

from wireclient import protocol as p
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.toolkit import probe
from wireclient.transport import network


def test_parse_flags() -> None:
    assert probe.parse_flags(None, p.MsgFlags) == 0
    assert probe.parse_flags("checksumPresent, exhaustAllowed", p.MsgFlags) == 0x10001
    assert probe.parse_flags("moreToCome,0x4", p.MsgFlags) == 6
    assert probe.parse_flags("SlaveOk", p.QueryFlags) == 4
    with pytest.raises(ConfigurationError, match="known: checksumPresent"):
        probe.parse_flags("SlaveOk", p.MsgFlags)
    with pytest.raises(ConfigurationError, match="32 flag bits"):
        probe.parse_flags(str(2**32), p.MsgFlags)


def test_command_message_envelopes() -> None:
    seq = [p.DocumentSequence("documents", [{"_id": 1}])]
    msg, reply = probe.command_message("db", {"insert": "c"}, seq, 17, flags=1)
    assert msg == p.OpMsg({"insert": "c", "$db": "db"}, seq, flags=1) and reply
    msg, reply = probe.command_message("db", {"insert": "c"}, seq, 17, flags=2)
    assert msg.flags == 2 and not reply  # moreToCome: no reply read
    msg, reply = probe.command_message("db", {"insert": "c"}, seq, 17, op_query=True, flags=4)
    assert msg == p.OpQuery(
        "db.$cmd", {"insert": "c", "documents": [{"_id": 1}]}, flags=4, number_to_return=-1
    )
    msg, _ = probe.command_message("db", {"x": 1}, [], 17, namespace="db.things")
    assert msg == p.OpQuery("db.things", {"x": 1}, number_to_return=0)
    msg, _ = probe.command_message("db", {"count": "c"}, [], 5)  # an old server: OP_QUERY
    assert isinstance(msg, p.OpQuery) and msg.full_collection_name == "db.$cmd"
    with pytest.raises(ConfigurationError, match="--op-query"):
        probe.command_message("db", {"count": "c"}, [], 5, flags=1)


def test_parse_target_timeouts_and_database() -> None:
    target = probe.parse_target("h:1")
    assert target.address == ("h", 1)
    assert target.connect_timeout == target.socket_timeout == probe.DEFAULT_TIMEOUT
    target = probe.parse_target("mongodb://h/db?connectTimeoutMS=2000&socketTimeoutMS=3000")
    assert (target.connect_timeout, target.socket_timeout, target.database) == (2.0, 3.0, "db")
    assert probe.parse_target("mongodb://h/?socketTimeoutMS=3000", 0.5).socket_timeout == 0.5
    assert probe.parse_target("mongodb://u:p@h/").credentials is not None


def test_expected_replies() -> None:
    ping = p.encode(p.OpMsg({"ping": 1}), 1)
    assert probe.expected_replies(ping * 3) == 3
    assert probe.expected_replies(p.encode(p.OpMsg({"x": 1}, flags=2), 1)) == 1  # at least 1
    assert probe.expected_replies(ping + p.encode(p.OpInsert("d.c", [{}]), 2)) == 1
    get_more = p.encode(p.OpGetMore("d.c", 1), 1)
    assert probe.expected_replies(get_more + b"\x05\x00\x00\x00" + b"x" * 12) == 2  # bad header
    assert probe.expected_replies(get_more + ping[:20]) == 1  # a partial frame: none
    assert probe.expected_replies(p.encode(p.compress(p.OpMsg({"ping": 1})), 1)) == 1
    assert probe.failed(p.OpMsg({"ok": 0})) and not probe.failed(p.OpMsg({"ok": 1}))
    assert probe.failed(p.OpReply([{}], response_flags=2)) and not probe.failed(p.OpReply([]))


@pytest.fixture()
def pair() -> Iterator[Tuple[network.SocketInfo, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    info = network.SocketInfo(a, ("peer", 1))
    yield info, b
    info.close()
    b.close()


def test_exchange_follows_an_exhaust_stream(pair: Tuple[network.SocketInfo, socket.socket]) -> None:
    info, peer = pair

    def serve() -> None:
        reader = p.MessageReader()
        while (item := reader.next_message()) is None:
            reader.feed(peer.recv(65536))
        header, _ = item
        more = p.MsgFlags.moreToCome
        peer.sendall(p.encode(p.OpMsg({"n": 1}, flags=more), 50, header.request_id))
        peer.sendall(p.encode(p.OpMsg({"n": 2}, flags=more), 51, 50))
        peer.sendall(p.encode(p.OpMsg({"n": 3, "ok": 1}), 52, 51))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    message = p.OpMsg({"getMore": 1, "$db": "d"}, flags=p.MsgFlags.exhaustAllowed)
    replies = list(probe.exchange(info, message))
    thread.join(10)
    assert [m.body["n"] for _, m in replies] == [1, 2, 3]  # type: ignore[union-attr]
    assert [h.response_to for h, _ in replies][1:] == [50, 51]


def test_exchange_refuses_a_reply_to_another_request(
    pair: Tuple[network.SocketInfo, socket.socket],
) -> None:
    info, peer = pair
    replies = probe.exchange(info, p.OpMsg({"ping": 1}))
    peer.sendall(p.encode(p.OpMsg({"ok": 1}), 9, -1))  # ids are never negative
    with pytest.raises(ProtocolError, match="does not answer"):
        next(replies)
    assert info.closed
