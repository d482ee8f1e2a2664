"""The command layer (wireclient.rules.command): envelopes, reply documents, typed errors, write
concerns. Pure functions: no server needed."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from bson.raw_bson import RawBSONDocument

from wireclient import errors, protocol
from wireclient.rules import command, wire


def seq(*docs: Any) -> protocol.DocumentSequence:
    return protocol.DocumentSequence("documents", tuple(docs))


def test_op_msg_envelope_for_wire_6_and_later() -> None:
    message, expect = command.build_message(
        "db", {"insert": "c"}, (seq({"a": 1}),), False, {"mode": "secondary"}, 17
    )
    assert isinstance(message, protocol.OpMsg) and expect
    assert message.body == {"insert": "c", "$db": "db", "$readPreference": {"mode": "secondary"}}
    assert message.sequences == (seq({"a": 1}),) and message.flags == 0


def test_unacknowledged_op_msg_sets_more_to_come_and_expects_nothing() -> None:
    message, expect = command.build_message("db", {"insert": "c"}, (), True, None, 6)
    assert isinstance(message, protocol.OpMsg) and not expect
    assert message.flags == protocol.MsgFlags.moreToCome


@pytest.mark.parametrize("wire", [4, 5])
def test_op_query_envelope_for_old_servers(wire: int) -> None:
    encoded = b"\x0c\x00\x00\x00\x10a\x00\x01\x00\x00\x00\x00"  # {'a': 1} as BSON
    message, expect = command.build_message(
        "db", {"insert": "c"}, (seq(encoded, {"b": 2}),), True, {"mode": "nearest"}, wire
    )
    assert isinstance(message, protocol.OpQuery)
    assert expect  # no fire-and-forget command on wire 4-5: the w:0 reply is read
    assert message.full_collection_name == "db.$cmd" and message.number_to_return == -1
    assert message.flags == protocol.QueryFlags.SlaveOk
    docs = message.query["documents"]
    assert isinstance(docs[0], RawBSONDocument) and docs[0]["a"] == 1 and docs[1] == {"b": 2}
    assert "$db" not in message.query


def test_primary_read_preference_sets_no_slave_ok() -> None:
    message, _ = command.build_message("db", {"find": "c"}, (), False, {"mode": "primary"}, 4)
    assert isinstance(message, protocol.OpQuery) and message.flags == 0


def test_reply_document_from_op_msg_and_op_reply() -> None:
    assert command.reply_document(protocol.OpMsg({"ok": 1})) == {"ok": 1}
    assert command.reply_document(protocol.OpReply(documents=({"ok": 1, "n": 2},))) == {
        "ok": 1,
        "n": 2,
    }
    failed = protocol.OpReply(
        response_flags=protocol.ReplyFlags.QueryFailure, documents=({"$err": "boom"},)
    )
    assert command.reply_document(failed) == {"ok": 0, "$err": "boom"}


@pytest.mark.parametrize(
    "message",
    [
        protocol.OpReply(documents=()),
        protocol.OpReply(response_flags=protocol.ReplyFlags.CursorNotFound, documents=()),
        protocol.OpKillCursors((1,)),
    ],
)
def test_reply_document_refuses_what_is_not_a_command_reply(message: Any) -> None:
    with pytest.raises(errors.ProtocolError):
        command.reply_document(message)


@pytest.mark.parametrize(
    "reply, error",
    [
        ({"ok": 0, "code": 11000, "errmsg": "dup"}, errors.DuplicateKeyError),
        ({"ok": 0, "code": 43, "errmsg": "gone"}, errors.CursorNotFound),
        ({"ok": 0, "code": 10107, "errmsg": "not writable primary"}, errors.NotPrimaryError),
        ({"ok": 0, "code": 91, "errmsg": "shutting down"}, errors.NotPrimaryError),
        ({"ok": 0, "errmsg": "not master"}, errors.NotPrimaryError),  # no code: by message
        ({"ok": 0, "code": 2, "errmsg": "bad value"}, errors.OperationFailure),
        ({"ok": 0}, errors.OperationFailure),
    ],
)
def test_check_reply_types_errors(reply: Dict[str, Any], error: type) -> None:
    with pytest.raises(error) as info:
        command.check_reply(reply, "cmd")
    assert type(info.value) is error


def test_a_known_code_decides_not_the_message() -> None:
    """An error whose code is known is judged by the code: words in its message that look
    like 'not primary' do not make it a state-change error."""
    reply = {"ok": 0, "code": 2, "errmsg": "not primary in this sense"}
    with pytest.raises(errors.OperationFailure) as info:
        command.check_reply(reply)
    assert not isinstance(info.value, errors.NotPrimaryError)
    assert command.is_not_primary(2, "not primary") is False
    assert command.is_not_primary(None, "not primary") is True
    assert command.is_not_primary(13435, "") is True


def test_check_reply_passes_ok_replies() -> None:
    command.check_reply({"ok": 1})
    command.check_reply({"ok": 1.0, "writeErrors": []})


def test_raise_write_errors() -> None:
    with pytest.raises(errors.DuplicateKeyError):
        command.raise_write_errors({"writeErrors": [{"code": 11000, "errmsg": "dup"}]})
    with pytest.raises(errors.OperationFailure) as info:
        command.raise_write_errors({"writeErrors": [{"code": 121, "errmsg": "invalid"}]})
    assert info.value.code == 121
    with pytest.raises(errors.WriteConcernError):
        command.raise_write_errors({"writeConcernError": {"code": 64, "errmsg": "timeout"}})
    command.raise_write_errors({"n": 1})


def test_write_concern_resolution() -> None:
    default = command.WriteConcern(None, None, None, None)
    assert default.resolve(None, None) == (True, None)
    assert default.resolve(False, None) == (False, {"w": 0})
    assert default.resolve(None, 2, True, 100) == (True, {"w": 2, "j": True, "wtimeout": 100})
    unsafe = command.WriteConcern(False, None, None, None)
    assert unsafe.resolve(None, None) == (False, {"w": 0})
    majority = command.WriteConcern(None, "majority", None, 500)
    assert majority.resolve(None, None) == (True, {"w": "majority", "wtimeout": 500})
    with pytest.raises(errors.ConfigurationError):
        default.resolve(True, 0)
    with pytest.raises(errors.ConfigurationError):
        default.resolve(None, 0, True)
    with pytest.raises(errors.ConfigurationError):
        command.WriteConcern(None, 0, True, None)


def test_wire_version_range() -> None:
    lo, hi = wire.MIN_SUPPORTED_WIRE_VERSION, wire.MAX_SUPPORTED_WIRE_VERSION
    assert wire.wire_version_error("h:1", 0, lo) is None
    assert wire.wire_version_error("h:1", hi, hi + 5) is None
    assert "h:1" in (wire.wire_version_error("h:1", 0, lo - 1) or "")
    assert "h:1" in (wire.wire_version_error("h:1", hi + 1, hi + 2) or "")
