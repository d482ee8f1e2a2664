"""The proxy's fault rules without a socket: the grammar, counting per connection, which
command a request carries, and the error reply the proxy builds."""

from __future__ import annotations

from typing import List, Optional

import pytest

from wireclient import protocol
from wireclient.errors import ConfigurationError
from wireclient.toolkit.faults import (
    ConnectionFaults,
    FaultRule,
    command_name,
    error_reply,
    parse_rules,
)


@pytest.mark.parametrize(
    "text, name, first, every, action, code, delay",
    [
        ("find:2:error=91", "find", 2, False, "error", 91, 0.0),
        ("insert:*:close", "insert", 1, True, "close", 0, 0.0),
        ("*:5:delay=300ms", "*", 5, False, "delay", 0, 0.3),
        ("getMore:3+:drop", "getmore", 3, True, "drop", 0, 0.0),
        ("ping:1:delay=1.5s", "ping", 1, False, "delay", 0, 1.5),
        ("ping:1:delay=250", "ping", 1, False, "delay", 0, 0.25),
        (" aggregate : 1 : error=0x5a ", "aggregate", 1, False, "error", 90, 0.0),
        ("$cmd.x:1:ERROR=-1", "$cmd.x", 1, False, "error", -1, 0.0),
    ],
)
def test_rules_parse(
    text: str, name: str, first: int, every: bool, action: str, code: int, delay: float
) -> None:
    rule = FaultRule.parse(text)
    assert (rule.name, rule.first, rule.every, rule.action, rule.code) == (
        name, first, every, action, code,
    )  # fmt: skip
    assert rule.delay == pytest.approx(delay)
    assert str(rule) == text.strip()


@pytest.mark.parametrize(
    "text, why",
    [
        ("find:2", "three parts"),
        ("find:2:error=91:x", "three parts"),
        (":2:close", "three parts"),
        ("fi nd:2:close", "not a command name"),
        ("find:0:close", "ordinal '0'"),
        ("find:two:close", "ordinal 'two'"),
        ("find:+2:close", "ordinal '+2'"),
        ("find:2:explode", "unknown action 'explode'"),
        ("find:2:error", "numeric code"),
        ("find:2:error=NotPrimary", "numeric code"),
        ("find:2:error=99999999999", "int32"),
        ("find:2:delay", "duration"),
        ("find:2:delay=3 minutes", "duration"),
        ("find:2:delay=2h", "duration"),
        ("find:2:delay=7200s", "more than 3600"),
        ("find:2:close=now", "close takes no argument"),
    ],
)
def test_bad_rules_say_why(text: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FaultRule.parse(text)
    assert why in str(info.value)
    assert repr(text) in str(info.value) and "'find:2:error=91'" in str(info.value)


def test_parse_rules_takes_text_and_rules() -> None:
    rule = FaultRule.parse("find:1:close")
    assert parse_rules(["insert:*:drop", rule]) == [FaultRule.parse("insert:*:drop"), rule]


def hits(state: ConnectionFaults, names: List[str]) -> List[Optional[str]]:
    return [None if (r := state.match(n)) is None else str(r) for n in names]


def test_ordinals_count_per_rule_once_or_repeating() -> None:
    rules = parse_rules(["find:2:error=91", "find:4+:close", "*:3:drop"])
    state = ConnectionFaults(rules)
    names = ["find", "insert", "FIND", "find", "find", "getMore", "find"]
    # find #1, insert (any #2), find #2 (and any #3: the first rule listed wins), find #3,
    # find #4 (from 4 on), getMore, find #5
    assert hits(state, names) == [
        None, None, "find:2:error=91", None, "find:4+:close", None, "find:4+:close",
    ]  # fmt: skip
    other = ConnectionFaults(rules)  # a new connection counts from zero
    assert hits(other, ["find", "find"]) == [None, "find:2:error=91"]


def test_every_matching_command() -> None:
    state = ConnectionFaults(parse_rules(["insert:*:close"]))
    assert hits(state, ["insert", "find", "insert"]) == ["insert:*:close", None, "insert:*:close"]


def test_monitoring_connections_are_spared_by_default() -> None:
    rules = parse_rules(["*:*:close"])
    monitor = ConnectionFaults(rules)
    assert hits(monitor, ["hello", "isMaster", "hello", "ismaster"]) == [None] * 4
    app = ConnectionFaults(parse_rules(["*:2:close", "hello:*:drop"]))
    # the handshake's hello is spared and not counted; after a find, hello counts
    assert hits(app, ["hello", "find", "hello"]) == [None, None, "*:2:close"]
    strict = ConnectionFaults(rules, spare_monitors=False)
    assert hits(strict, ["hello"]) == ["*:*:close"]


def test_command_names() -> None:
    msg = protocol.OpMsg({"find": "x", "$db": "d"})
    assert command_name(msg) == "find"
    assert command_name(protocol.OpQuery("admin.$cmd", {"isMaster": 1})) == "isMaster"
    wrapped = protocol.OpQuery("db.$cmd", {"$query": {"count": "x"}, "$readPreference": {}})
    assert command_name(wrapped) == "count"
    assert command_name(protocol.OpQuery("db.coll", {"x": 1})) is None  # a legacy query
    assert command_name(protocol.OpInsert("db.coll", [{"x": 1}])) is None
    assert command_name(protocol.compress(msg, "zlib")) == "find"
    broken = protocol.OpCompressed(protocol.OP_MSG, 10, 2, b"not zlib")
    assert command_name(broken) is None


def test_error_replies_answer_the_request() -> None:
    rule = FaultRule.parse("find:1:error=91")
    frame = error_reply(rule, protocol.OpMsg({"find": "x"}), 77, 12)
    assert frame is not None
    header, reply = protocol.decode(frame)
    assert (header.request_id, header.response_to) == (77, 12)
    assert isinstance(reply, protocol.OpMsg)
    assert reply.body == {
        "ok": 0.0,
        "errmsg": "fault injected by the wireclient proxy (rule find:1:error=91)",
        "code": 91,
        "codeName": "ShutdownInProgress",
    }
    legacy = error_reply(rule, protocol.OpQuery("admin.$cmd", {"find": "x"}), 78, 13)
    assert legacy is not None
    _, old = protocol.decode(legacy)
    assert isinstance(old, protocol.OpReply) and old.documents[0]["code"] == 91
    compressed = protocol.compress(protocol.OpMsg({"find": "x"}), "zlib")
    assert isinstance(
        protocol.decode(error_reply(rule, compressed, 1, 2) or b"")[1], protocol.OpMsg
    )
    unnamed = error_reply(FaultRule.parse("find:1:error=12345"), protocol.OpMsg({"find": 1}), 1, 2)
    assert "codeName" not in protocol.decode(unnamed or b"")[1].body  # type: ignore[union-attr]


def test_no_reply_for_more_to_come() -> None:
    rule = FaultRule.parse("insert:1:error=2")
    request = protocol.OpMsg({"insert": "x"}, flags=protocol.MsgFlags.moreToCome)
    assert error_reply(rule, request, 1, 2) is None
