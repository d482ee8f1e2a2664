"""wireclient.protocol: golden bytes for every opcode, error reporting, MessageReader, CRC-32C.

The golden frames below are written out by hand from the wire protocol spec (little-endian
int32 / int64, cstrings, BSON documents spelled element by element). They are not produced
by our encoder: each test decodes them and compares with the object, then encodes the
object and compares with the bytes.
"""

from __future__ import annotations

import copy
import pickle
import struct
import subprocess
import sys
import zlib
from typing import Any, Callable, List

import pytest

from wireclient import protocol as p
from wireclient.errors import ConfigurationError, InvalidDocument, ProtocolError
from wireclient.protocol import _crc32c


def h(*parts: str) -> bytes:
    """Hex literals, spaces allowed, joined."""
    return bytes.fromhex("".join(parts))


# BSON documents used below, spelled out.
DOC_PING_ADMIN = h(
    "1e000000",  # document length 30
    "10 70696e6700 01000000",  # int32 "ping": 1
    "02 2464 6200 06000000 61646d696e00",  # string "$db": "admin" (length 6 incl. NUL)
    "00",  # end of document
)
DOC_OK = h("11000000", "01 6f6b00 000000000000f03f", "00")  # {"ok": 1.0}
DOC_EMPTY = h("05000000", "00")  # {}
DOC_ID1 = h("0e000000", "10 5f696400 01000000", "00")  # {"_id": 1}
DOC_ID2 = h("0e000000", "10 5f696400 02000000", "00")  # {"_id": 2}
DOC_HELLO = h("10000000", "10 68656c6c6f00 01000000", "00")  # {"hello": 1}
DOC_X1 = h("0c000000", "10 7800 01000000", "00")  # {"x": 1}
# {"$set": {"x": 1}}: an embedded document (type 0x03) holding {"x": 1}
DOC_SET_X1 = h("17000000", "03 2473657400", "0c000000 10 7800 01000000 00", "00")
DOC_INSERT_C = h(
    "1f000000",  # document length 31
    "02 696e7365727400 02000000 6300",  # "insert": "c"
    "02 2464 6200 03000000 646200",  # "$db": "db"
    "00",
)


# --------------------------------------------------------------------------- golden frames

GOLDEN_MSG_PING = (
    h(
        "33000000",  # messageLength 51
        "07000000",  # requestID 7
        "00000000",  # responseTo 0
        "dd070000",  # opCode 2013 OP_MSG
        "00000000",  # flagBits 0
        "00",  # section kind 0: the body
    )
    + DOC_PING_ADMIN
)

GOLDEN_MSG_REPLY_FLAGS = (
    h(
        "26000000",  # messageLength 38
        "64000000",  # requestID 100
        "07000000",  # responseTo 7
        "dd070000",  # OP_MSG
        "02000100",  # flagBits moreToCome (1<<1) | exhaustAllowed (1<<16)
        "00",  # kind 0
    )
    + DOC_OK
)

GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC = (
    h(
        "55000000",  # messageLength 85
        "2a000000",  # requestID 42
        "00000000",  # responseTo 0
        "dd070000",  # OP_MSG
        "01000000",  # flagBits checksumPresent
        "00",  # kind 0
    )
    + DOC_INSERT_C
    + h(
        "01",  # kind 1: a document sequence
        "1c000000",  # section size 28 = 4 (size) + 10 (identifier) + 14 (one document)
        "646f63756d656e747300",  # identifier "documents"
    )
    + DOC_ID1
)
# CRC-32C (Castagnoli) of the 81 bytes above, little-endian, computed once with the
# independent `crc32c` package; test_golden_checksum_literal re-checks it.
GOLDEN_CRC_HEX = "0fd3c877"
GOLDEN_MSG_SEQ_CHECKSUM = GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC + h(GOLDEN_CRC_HEX)

GOLDEN_QUERY_HELLO = (
    h(
        "37000000",  # messageLength 55
        "01000000",  # requestID 1
        "00000000",  # responseTo 0
        "d4070000",  # opCode 2004 OP_QUERY
        "04000000",  # flags SlaveOk
        "61646d696e2e24636d6400",  # fullCollectionName "admin.$cmd"
        "00000000",  # numberToSkip 0
        "ffffffff",  # numberToReturn -1
    )
    + DOC_HELLO
)

GOLDEN_QUERY_FIELDS = (
    h(
        "32000000",  # messageLength 50
        "02000000",  # requestID 2
        "00000000",  # responseTo 0
        "d4070000",  # OP_QUERY
        "22000000",  # flags TailableCursor (2) | AwaitData (32)
        "64622e6300",  # "db.c"
        "05000000",  # numberToSkip 5
        "0a000000",  # numberToReturn 10
    )
    + DOC_EMPTY  # query {}
    + DOC_X1  # returnFieldsSelector {"x": 1}
)

GOLDEN_REPLY = (
    h(
        "3a000000",  # messageLength 58
        "63000000",  # requestID 99
        "01000000",  # responseTo 1
        "01000000",  # opCode 1 OP_REPLY
        "08000000",  # responseFlags AwaitCapable
        "0807060504030201",  # cursorID 0x0102030405060708
        "00000000",  # startingFrom 0
        "02000000",  # numberReturned 2
    )
    + DOC_OK
    + DOC_EMPTY
)

GOLDEN_GET_MORE = h(
    "25000000",  # messageLength 37
    "03000000",  # requestID 3
    "00000000",  # responseTo 0
    "d5070000",  # opCode 2005 OP_GET_MORE
    "00000000",  # ZERO
    "64622e6300",  # "db.c"
    "0a000000",  # numberToReturn 10
    "2a00000000000000",  # cursorID 42
)

GOLDEN_KILL_CURSORS = h(
    "28000000",  # messageLength 40
    "04000000",  # requestID 4
    "00000000",  # responseTo 0
    "d7070000",  # opCode 2007 OP_KILL_CURSORS
    "00000000",  # ZERO
    "02000000",  # numberOfCursorIDs 2
    "0100000000000000",  # cursor 1
    "ffffffffffffffff",  # cursor -1
)

GOLDEN_INSERT = (
    h(
        "35000000",  # messageLength 53
        "05000000",  # requestID 5
        "00000000",  # responseTo 0
        "d2070000",  # opCode 2002 OP_INSERT
        "01000000",  # flags ContinueOnError
        "64622e6300",  # "db.c"
    )
    + DOC_ID1
    + DOC_ID2
)

GOLDEN_UPDATE = (
    h(
        "42000000",  # messageLength 66
        "06000000",  # requestID 6
        "00000000",  # responseTo 0
        "d1070000",  # opCode 2001 OP_UPDATE
        "00000000",  # ZERO
        "64622e6300",  # "db.c"
        "03000000",  # flags Upsert | MultiUpdate
    )
    + DOC_ID1  # selector
    + DOC_SET_X1  # update
)

GOLDEN_DELETE = (
    h(
        "22000000",  # messageLength 34
        "08000000",  # requestID 8
        "00000000",  # responseTo 0
        "d6070000",  # opCode 2006 OP_DELETE
        "00000000",  # ZERO
        "64622e6300",  # "db.c"
        "01000000",  # flags SingleRemove
    )
    + DOC_EMPTY
)

GOLDEN_COMPRESSED_NOOP = (
    h(
        "3c000000",  # messageLength 60
        "09000000",  # requestID 9
        "00000000",  # responseTo 0
        "dc070000",  # opCode 2012 OP_COMPRESSED
        "dd070000",  # originalOpcode 2013
        "23000000",  # uncompressedSize 35 (flagBits, kind byte, 30-byte body)
        "00",  # compressorId 0: noop
        "00000000",  # (the compressed message is the OP_MSG body as is) flagBits 0
        "00",  # kind 0
    )
    + DOC_PING_ADMIN
)

PING_MSG = p.OpMsg({"ping": 1, "$db": "admin"})
SEQ_MSG = p.OpMsg(
    {"insert": "c", "$db": "db"},
    [p.DocumentSequence("documents", [{"_id": 1}])],
    flags=p.MsgFlags.checksumPresent,
)


def _crc_of_golden() -> bytes:
    import crc32c

    return struct.pack("<I", crc32c.crc32c(GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC))


GOLDEN = [
    # (name, frame, header fields, message)
    ("OP_MSG ping", GOLDEN_MSG_PING, (51, 7, 0, p.OP_MSG), PING_MSG),
    (
        "OP_MSG flags",
        GOLDEN_MSG_REPLY_FLAGS,
        (38, 100, 7, p.OP_MSG),
        p.OpMsg({"ok": 1.0}, flags=p.MsgFlags.moreToCome | p.MsgFlags.exhaustAllowed),
    ),
    (
        "OP_QUERY hello",
        GOLDEN_QUERY_HELLO,
        (55, 1, 0, p.OP_QUERY),
        p.OpQuery("admin.$cmd", {"hello": 1}, flags=p.QueryFlags.SlaveOk),
    ),
    (
        "OP_QUERY fields",
        GOLDEN_QUERY_FIELDS,
        (50, 2, 0, p.OP_QUERY),
        p.OpQuery(
            "db.c",
            {},
            flags=p.QueryFlags.TailableCursor | p.QueryFlags.AwaitData,
            number_to_skip=5,
            number_to_return=10,
            return_fields_selector={"x": 1},
        ),
    ),
    (
        "OP_REPLY",
        GOLDEN_REPLY,
        (58, 99, 1, p.OP_REPLY),
        p.OpReply(
            [{"ok": 1.0}, {}],
            response_flags=p.ReplyFlags.AwaitCapable,
            cursor_id=0x0102030405060708,
        ),
    ),
    ("OP_GET_MORE", GOLDEN_GET_MORE, (37, 3, 0, p.OP_GET_MORE), p.OpGetMore("db.c", 42, 10)),
    (
        "OP_KILL_CURSORS",
        GOLDEN_KILL_CURSORS,
        (40, 4, 0, p.OP_KILL_CURSORS),
        p.OpKillCursors([1, -1]),
    ),
    (
        "OP_INSERT",
        GOLDEN_INSERT,
        (53, 5, 0, p.OP_INSERT),
        p.OpInsert("db.c", [{"_id": 1}, {"_id": 2}], flags=p.InsertFlags.ContinueOnError),
    ),
    (
        "OP_UPDATE",
        GOLDEN_UPDATE,
        (66, 6, 0, p.OP_UPDATE),
        p.OpUpdate(
            "db.c", {"_id": 1}, {"$set": {"x": 1}}, p.UpdateFlags.Upsert | p.UpdateFlags.MultiUpdate
        ),
    ),
    (
        "OP_DELETE",
        GOLDEN_DELETE,
        (34, 8, 0, p.OP_DELETE),
        p.OpDelete("db.c", {}, p.DeleteFlags.SingleRemove),
    ),
    (
        "OP_COMPRESSED noop",
        GOLDEN_COMPRESSED_NOOP,
        (60, 9, 0, p.OP_COMPRESSED),
        p.OpCompressed(p.OP_MSG, 35, 0, GOLDEN_MSG_PING[16:]),
    ),
]


@pytest.mark.parametrize("name, frame, fields, message", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_decode(name: str, frame: bytes, fields: Any, message: p.Message) -> None:
    header, decoded = p.decode(frame)
    assert header == p.Header(*fields)
    assert decoded == message
    assert type(decoded) is type(message)


@pytest.mark.parametrize("name, frame, fields, message", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_encode(name: str, frame: bytes, fields: Any, message: p.Message) -> None:
    _, request_id, response_to, _ = fields
    assert p.encode(message, request_id, response_to) == frame


@pytest.mark.parametrize("name, frame, fields, message", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_header_and_body(name: str, frame: bytes, fields: Any, message: p.Message) -> None:
    header = p.unpack_header(frame[:16])
    assert header == p.Header(*fields)
    assert p.decode_body(header, frame[16:]) == message
    assert p.decode_body(header, memoryview(frame)[16:]) == message
    assert p.decode(bytearray(frame))[1] == message


def test_golden_checksum() -> None:
    frame = GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC + _crc_of_golden()
    header, message = p.decode(frame)
    assert header == p.Header(85, 42, 0, p.OP_MSG)
    assert message == SEQ_MSG
    assert message.sequences[0].documents == ({"_id": 1},)  # type: ignore[union-attr]
    assert p.encode(SEQ_MSG, 42) == frame


def test_golden_checksum_literal() -> None:
    # The literal, spelled out (CRC-32C of GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC, little-endian).
    assert _crc_of_golden() == h(GOLDEN_CRC_HEX)
    assert GOLDEN_MSG_SEQ_CHECKSUM == GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC + h(GOLDEN_CRC_HEX)


def test_golden_compressed_noop_decompresses() -> None:
    header, message = p.decode(GOLDEN_COMPRESSED_NOOP)
    assert isinstance(message, p.OpCompressed)
    assert p.decompress(message, header) == PING_MSG
    assert p.compress(PING_MSG, "noop") == message
    assert p.compress(PING_MSG, 0) == message


def test_golden_zlib_stored_block() -> None:
    # A zlib stream written by hand: header 78 01, one final stored deflate block
    # (BFINAL=1, BTYPE=00) with LEN / NLEN, the raw bytes, then the Adler-32 (big-endian).
    raw = GOLDEN_MSG_PING[16:]
    stream = (
        h("7801", "01")
        + struct.pack("<HH", len(raw), len(raw) ^ 0xFFFF)
        + raw
        + struct.pack(">I", zlib.adler32(raw))
    )
    frame = (
        struct.pack("<iiii", 16 + 9 + len(stream), 10, 0, p.OP_COMPRESSED)
        + struct.pack("<iiB", p.OP_MSG, len(raw), 2)
        + stream
    )
    header, message = p.decode(frame)
    assert message == p.OpCompressed(p.OP_MSG, 35, p.CompressorId.zlib, stream)
    assert p.decompress(message, header) == PING_MSG


# --------------------------------------------------------------------------- constants & API


def test_constants() -> None:
    assert (p.OP_REPLY, p.OP_UPDATE, p.OP_INSERT, p.OP_QUERY, p.OP_GET_MORE) == (
        1,
        2001,
        2002,
        2004,
        2005,
    )
    assert (p.OP_DELETE, p.OP_KILL_CURSORS, p.OP_COMPRESSED, p.OP_MSG) == (2006, 2007, 2012, 2013)
    assert p.HEADER_SIZE == 16
    assert p.DEFAULT_MAX_MESSAGE_SIZE == 48_000_000
    assert p.MsgFlags.checksumPresent == 1
    assert p.MsgFlags.moreToCome == 2
    assert p.MsgFlags.exhaustAllowed == 1 << 16
    assert [f.value for f in p.QueryFlags] == [2, 4, 8, 16, 32, 64, 128]
    assert [f.name for f in p.QueryFlags] == [
        "TailableCursor",
        "SlaveOk",
        "OplogReplay",
        "NoCursorTimeout",
        "AwaitData",
        "Exhaust",
        "Partial",
    ]
    assert p.ReplyFlags.CursorNotFound == 1
    assert p.ReplyFlags.QueryFailure == 2
    assert p.ReplyFlags.ShardConfigStale == 4
    assert p.ReplyFlags.AwaitCapable == 8
    assert set(p.__all__) <= set(dir(p))


def test_messages_are_frozen_slotted_values() -> None:
    m = p.OpMsg({"a": 1})
    with pytest.raises(AttributeError):
        m.flags = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del m.body  # type: ignore[misc]
    assert not hasattr(m, "__dict__")
    header = p.Header(1, 2, 3, 4)
    assert header == p.Header(1, 2, 3, 4) and header != p.Header(1, 2, 3, 5)
    assert hash(header) == hash(p.Header(1, 2, 3, 4))
    assert header == (1, 2, 3, 4)  # a named tuple
    length, request_id, response_to, op_code = header
    assert (length, request_id, response_to, op_code) == (1, 2, 3, 4)
    assert header.replace(op_code=5) == p.Header(1, 2, 3, 5)
    with pytest.raises(AttributeError):
        header.op_code = 5  # type: ignore[misc]
    assert p.OpGetMore("a.b", 1) != p.OpDelete("a.b", {})
    assert repr(header) == "Header(message_length=1, request_id=2, response_to=3, op_code=4)"
    for message in [g[3] for g in GOLDEN] + [SEQ_MSG]:
        assert pickle.loads(pickle.dumps(message)) == message
        assert copy.deepcopy(message) == message
    assert m.replace(flags=2) == p.OpMsg({"a": 1}, flags=2)
    assert p.OpMsg({"a": 1}, flags=p.MsgFlags.moreToCome).more_to_come
    assert p.OpReply([{}, {}]).number_returned == 2


def test_constructors_store_tuples_and_plain_ints() -> None:
    seq = p.DocumentSequence("d", [{"a": 1}])
    assert seq.documents == ({"a": 1},)
    m = p.OpMsg({"x": 1}, [seq], p.MsgFlags.moreToCome)
    assert m.sequences == (seq,)
    assert type(m.flags) is int
    assert p.OpKillCursors([1, 2]).cursor_ids == (1, 2)
    assert p.OpInsert("a.b", [{"a": 1}]).documents == ({"a": 1},)
    assert p.OpReply(iter([{"a": 1}])).documents == ({"a": 1},)
    assert p.OpMsg(bytearray(DOC_OK)).body == DOC_OK


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda: p.OpMsg([1, 2]), InvalidDocument),  # type: ignore[arg-type]
        (lambda: p.OpMsg({}, flags=-1), ProtocolError),
        (lambda: p.OpMsg({}, flags=2**32), ProtocolError),
        (lambda: p.OpMsg({}, flags="1"), TypeError),  # type: ignore[arg-type]
        (lambda: p.OpMsg({}, [("a", [])]), TypeError),  # type: ignore[list-item]
        (lambda: p.DocumentSequence("a\x00b", []), ProtocolError),
        (lambda: p.DocumentSequence("\udc80", []), ProtocolError),
        (lambda: p.DocumentSequence(b"a", []), TypeError),  # type: ignore[arg-type]
        (lambda: p.OpInsert("a.b", {"a": 1}), TypeError),  # a single document, not a list
        (lambda: p.OpInsert("a.b", [1]), InvalidDocument),  # type: ignore[list-item]
        (lambda: p.OpQuery("a.b", {}, number_to_return=2**31), ProtocolError),
        (lambda: p.OpGetMore("a.b", 2**63), ProtocolError),
        (lambda: p.OpKillCursors([-(2**63) - 1]), ProtocolError),
        (lambda: p.OpCompressed(2013, -1, 0, b""), ProtocolError),
        (lambda: p.OpCompressed(2013, 0, 256, b""), ProtocolError),
        (lambda: p.OpCompressed(2013, 0, 0, "x"), TypeError),  # type: ignore[arg-type]
    ],
)
def test_constructor_validation(build: Callable[[], Any], error: type) -> None:
    with pytest.raises(error) as info:
        build()
    if isinstance(info.value, ProtocolError):
        assert info.value.side == "local"


def test_encode_errors_are_local() -> None:
    with pytest.raises(ProtocolError) as info:
        p.encode(PING_MSG, 2**31)
    assert info.value.side == "local"
    with pytest.raises(ProtocolError):
        p.encode(p.OpQuery("a.b", {}), 1, -(2**31) - 1)
    with pytest.raises(InvalidDocument):
        p.encode(p.OpMsg({"a": object()}), 1)
    with pytest.raises(InvalidDocument):
        p.encode(p.OpInsert("a.b", [{"a": 2**64}]), 1)
    with pytest.raises(InvalidDocument):
        p.encode(p.OpMsg({"a\x00": 1}), 1)
    with pytest.raises(TypeError):
        p.encode("not a message", 1)  # type: ignore[arg-type]


def test_raw_bytes_documents_are_written_verbatim() -> None:
    bad = h("0a000000", "99 6100 00 00 00")  # element type 0x99 does not exist
    frame = p.encode(p.OpMsg(bad), 3)
    assert frame[21:] == bad
    with pytest.raises(ProtocolError, match="invalid BSON in the OP_MSG body"):
        p.decode(frame)
    frame = p.encode(p.OpInsert("db.c", [DOC_ID1, {"_id": 2}]), 5)
    assert frame == GOLDEN_INSERT.replace(h("01000000"), h("00000000"), 1)


def test_encode_subclass_dispatch() -> None:
    class MyGetMore(p.OpGetMore):
        __slots__ = ()

    assert p.encode(MyGetMore("db.c", 42, 10), 3) == GOLDEN_GET_MORE


def test_optional_msg_flag_bits_are_kept() -> None:
    frame = p.encode(p.OpMsg({"ok": 1.0}, flags=1 << 20), 1)
    assert p.decode(frame)[1].flags == 1 << 20  # type: ignore[union-attr]


def test_codec_options() -> None:
    from bson.codec_options import CodecOptions
    from bson.son import SON

    opts: CodecOptions[Any] = CodecOptions(document_class=SON)
    _, m = p.decode(GOLDEN_MSG_PING, codec_options=opts)
    assert isinstance(m.body, SON)  # type: ignore[union-attr]
    reader = p.MessageReader(codec_options=opts)
    reader.feed(GOLDEN_REPLY)
    (item,) = list(reader)
    assert all(isinstance(d, SON) for d in item[1].documents)  # type: ignore[union-attr]
    assert p.encode(PING_MSG, 7, codec_options=opts) == GOLDEN_MSG_PING


# --------------------------------------------------------------------------- bad input


def frame_of(op_code: int, body: bytes, request_id: int = 1) -> bytes:
    return struct.pack("<iiii", 16 + len(body), request_id, 0, op_code) + body


MSG = p.OP_MSG
FLAGS0 = h("00000000")
BAD_FRAMES = [
    # (name, frame, text in the message, offset)
    ("short header", h("1000"), "truncated header: 2 of 16", 2),
    ("length < 16", h("0f000000 01000000 00000000 dd070000"), "less than the 16-byte header", 0),
    (
        "negative length",
        h("ffffffff 01000000 00000000 dd070000"),
        "less than the 16-byte header",
        0,
    ),
    ("length > limit", h("00000006 01000000 00000000 dd070000"), "exceeds the maximum", 0),
    ("truncated frame", GOLDEN_MSG_PING[:-1], "truncated frame", 50),
    ("trailing bytes", GOLDEN_MSG_PING + b"\x00", "1 trailing bytes", 51),
    ("unknown opcode", frame_of(2010, b""), "unknown opCode 2010", 12),
    ("OP_MSG empty", frame_of(MSG, b""), "truncated OP_MSG", 16),
    ("OP_MSG flags only", frame_of(MSG, FLAGS0), "truncated OP_MSG", 16),
    ("required bit", frame_of(MSG, h("04000000 00") + DOC_OK), "unknown required bits 0x0004", 16),
    ("required bit 15", frame_of(MSG, h("00800000 00") + DOC_OK), "unknown required bits", 16),
    ("section kind 2", frame_of(MSG, FLAGS0 + h("02") + DOC_OK), "section kind 2", 20),
    (
        "no body section",
        frame_of(MSG, FLAGS0 + h("01 20000000 6400") + DOC_EMPTY),
        "section size 32 runs past the end of the sections (11 bytes left)",
        21,
    ),
    (
        "only a sequence",
        frame_of(MSG, FLAGS0 + h("01 0b000000 6400") + DOC_EMPTY),
        "no kind-0 (body) section",
        20,
    ),
    (
        "two bodies",
        frame_of(MSG, FLAGS0 + h("00") + DOC_OK + h("00") + DOC_OK),
        "second kind-0",
        38,
    ),
    (
        "doc past frame",
        frame_of(MSG, FLAGS0 + h("00") + h("20000000") + DOC_OK[4:]),
        "body length 32 runs past the end",
        21,
    ),
    (
        "doc length < 5",
        frame_of(MSG, FLAGS0 + h("00 04000000 00")),
        "less than the minimum of 5",
        21,
    ),
    (
        "doc truncated length",
        frame_of(MSG, FLAGS0 + h("00") + DOC_OK + h("01 0500")),
        "truncated kind-1 section size",
        39,
    ),
    (
        "invalid bson",
        frame_of(MSG, FLAGS0 + h("00 0a000000 99 6100 00 00 00")),
        "invalid BSON in the OP_MSG body",
        21,
    ),
    (
        "bson bad string",
        frame_of(MSG, FLAGS0 + h("00 0e000000 02 6100 02000000 ff00 00")),
        "invalid BSON",
        21,
    ),
    (
        "sequence size < 5",
        frame_of(MSG, FLAGS0 + h("00") + DOC_OK + h("01 04000000")),
        "section size 4 is less than the minimum",
        39,
    ),
    (
        "identifier unterminated",
        frame_of(MSG, FLAGS0 + h("00") + DOC_OK + h("01 07000000 616263") + h("00")),
        "unterminated document sequence identifier",
        43,
    ),
    (
        "identifier not utf-8",
        frame_of(MSG, FLAGS0 + h("00") + DOC_OK + h("01 0700000061ff00")),
        "identifier is not valid UTF-8",
        44,
    ),
    (
        "sequence doc past section",
        # section claims 11 bytes (size, "d\0", 5 more) but its document says 17
        frame_of(MSG, FLAGS0 + h("00") + DOC_EMPTY + h("01 0b000000 6400") + DOC_OK),
        "length 17 runs past the end of its space (5 bytes left)",
        33,
    ),
    (
        "checksum missing",
        frame_of(MSG, h("01000000 00") + DOC_EMPTY[:3]),
        "checksumPresent checksum",
        20,
    ),
    (
        "bad checksum",
        frame_of(MSG, h("01000000 00") + DOC_EMPTY + h("00000000")),
        "checksum mismatch",
        26,
    ),
    ("query ns unterminated", frame_of(p.OP_QUERY, h("00000000 6162")), "unterminated", 20),
    ("query ns not utf-8", frame_of(p.OP_QUERY, h("00000000 61c300")), "not valid UTF-8", 21),
    ("query short", frame_of(p.OP_QUERY, h("00000000 6100 00000000")), "numberToSkip", 22),
    ("query no doc", frame_of(p.OP_QUERY, h("00000000 6100 00000000 00000000")), "truncated", 30),
    (
        "query three docs",
        frame_of(p.OP_QUERY, h("00000000 6100 00000000 00000000") + DOC_EMPTY * 2 + h("00")),
        "1 trailing bytes after the OP_QUERY",
        40,
    ),
    (
        "reply count",
        frame_of(p.OP_REPLY, h("00000000 0000000000000000 00000000 02000000") + DOC_EMPTY),
        "numberReturned is 2 but the message holds 1",
        32,
    ),
    ("reply short", frame_of(p.OP_REPLY, h("00000000 00")), "truncated OP_REPLY", 16),
    (
        "get_more trailing",
        frame_of(p.OP_GET_MORE, h("00000000 6100 00000000 0000000000000000 00")),
        "1 trailing bytes",
        34,
    ),
    (
        "kill count",
        frame_of(p.OP_KILL_CURSORS, h("00000000 02000000 0100000000000000")),
        "numberOfCursorIDs is 2 but 8 bytes",
        20,
    ),
    (
        "kill negative",
        frame_of(p.OP_KILL_CURSORS, h("00000000 ffffffff")),
        "numberOfCursorIDs is -1",
        20,
    ),
    (
        "insert bad doc",
        frame_of(p.OP_INSERT, h("00000000 6100") + DOC_EMPTY[:4]),
        "OP_INSERT document length 5 runs past",
        22,
    ),
    (
        "update no update",
        frame_of(p.OP_UPDATE, h("00000000 6100 00000000") + DOC_EMPTY),
        "OP_UPDATE update length",
        31,
    ),
    (
        "delete trailing",
        frame_of(p.OP_DELETE, h("00000000 6100 00000000") + DOC_EMPTY + h("00")),
        "1 trailing bytes after the OP_DELETE",
        31,
    ),
    ("compressed short", frame_of(p.OP_COMPRESSED, h("dd070000 05000000")), "truncated", 16),
    (
        "compressed negative size",
        frame_of(p.OP_COMPRESSED, h("dd070000 ffffffff 00")),
        "uncompressedSize -1 is negative",
        20,
    ),
]


@pytest.mark.parametrize("name, frame, text, offset", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames(name: str, frame: bytes, text: str, offset: int) -> None:
    with pytest.raises(ProtocolError) as info:
        p.decode(frame, max_message_size=100_000_000)
    assert text in str(info.value)
    assert info.value.offset == offset, str(info.value)
    assert info.value.side == "remote"
    assert f"(at offset {offset})" in str(info.value)


@pytest.mark.parametrize("name, frame, text, offset", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames_via_reader(name: str, frame: bytes, text: str, offset: int) -> None:
    reader = p.MessageReader(max_message_size=100_000_000)
    try:
        for i in range(len(frame)):
            reader.feed(frame[i : i + 1])
            reader.next_message()
        if name == "trailing bytes":  # not an error for a stream: the start of the next frame
            assert reader.buffered == 1
            return
        assert reader.next_message() is None  # truncated: waiting for more
        assert name.startswith(("truncated", "short header"))
    except ProtocolError as exc:
        assert text in str(exc)
        assert exc.offset == offset


def test_decode_body_length_must_match_header() -> None:
    header = p.unpack_header(GOLDEN_MSG_PING)
    with pytest.raises(ProtocolError, match="body is 34 bytes but messageLength 51 calls for 35"):
        p.decode_body(header, GOLDEN_MSG_PING[16:-1])
    with pytest.raises(ProtocolError, match="unknown opCode 7"):
        p.decode_body(p.Header(16, 0, 0, 7), b"")


def test_unpack_header_limits() -> None:
    data = struct.pack("<iiii", 1000, 1, 2, p.OP_MSG)
    assert p.unpack_header(data, 1000) == p.Header(1000, 1, 2, p.OP_MSG)
    with pytest.raises(ProtocolError, match="exceeds the maximum message size 999"):
        p.unpack_header(data, 999)
    with pytest.raises(ProtocolError, match="truncated header"):
        p.unpack_header(data[:15])
    assert p.unpack_header(memoryview(data + b"more")) == p.Header(1000, 1, 2, p.OP_MSG)


def test_no_read_past_declared_length() -> None:
    # An OP_MSG whose body document claims 2 more bytes than the frame holds: the bytes
    # that follow in the buffer (the next frame) must not be read as part of it.
    bad = frame_of(MSG, FLAGS0 + h("00") + h("13000000") + DOC_OK[4:])
    reader = p.MessageReader()
    reader.feed(bad + GOLDEN_MSG_PING)
    with pytest.raises(ProtocolError, match="runs past the end"):
        reader.next_message()


# --------------------------------------------------------------------------- compression


@pytest.mark.parametrize("compressor", ["noop", "zlib", p.CompressorId.zlib, 0])
def test_compress_round_trip(compressor: Any) -> None:
    for _, _, _, message in GOLDEN:
        if isinstance(message, p.OpCompressed):
            continue
        op = p.compress(message, compressor)
        assert op.original_opcode == message.op_code
        header, decoded = p.decode(p.encode(op, 5, 6))
        assert decoded == op
        assert p.decompress(decoded, header) == message
        assert p.decompress(decoded) == message


def test_compress_level_and_refusals() -> None:
    assert p.decompress(p.compress(PING_MSG, "zlib", 9)) == PING_MSG
    with pytest.raises(ConfigurationError, match="unknown compressor 'lz4'"):
        p.compress(PING_MSG, "lz4")
    with pytest.raises(ConfigurationError):
        p.compress(PING_MSG, 7)
    with pytest.raises(ProtocolError, match="cannot be compressed again"):
        p.compress(p.compress(PING_MSG), "zlib")
    with pytest.raises(ProtocolError, match="checksumPresent"):
        p.compress(SEQ_MSG)
    with pytest.raises(InvalidDocument):
        p.compress(p.OpMsg({"a": object()}))


def test_compressed_checksummed_msg_is_verified_with_header() -> None:
    frame = GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC + _crc_of_golden()
    body = frame[16:]
    op = p.OpCompressed(p.OP_MSG, len(body), 0, body)
    outer = p.Header(16 + 9 + len(body), 42, 0, p.OP_COMPRESSED)
    assert p.decompress(op, outer) == SEQ_MSG
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        p.decompress(op, outer.replace(request_id=43))


@pytest.mark.parametrize(
    "op, text",
    [
        (p.OpCompressed(p.OP_MSG, 36, 0, GOLDEN_MSG_PING[16:]), "decompresses to 35 bytes"),
        (p.OpCompressed(p.OP_COMPRESSED, 35, 0, GOLDEN_MSG_PING[16:]), "not a compressible"),
        (p.OpCompressed(99, 35, 0, GOLDEN_MSG_PING[16:]), "not a compressible"),
        (
            p.OpCompressed(p.OP_MSG, 35, 9, GOLDEN_MSG_PING[16:]),
            "unknown OP_COMPRESSED compressorId 9",
        ),
        (p.OpCompressed(p.OP_MSG, 100_000_000, 2, b"x"), "exceeds the maximum message size"),
        (p.OpCompressed(p.OP_MSG, 35, 2, b"not zlib"), "zlib data is corrupt"),
        (
            p.OpCompressed(p.OP_MSG, 35, 2, zlib.compress(GOLDEN_MSG_PING[16:]) + b"x"),
            "data after its end",
        ),
        (
            p.OpCompressed(p.OP_MSG, 35, 2, zlib.compress(GOLDEN_MSG_PING[16:])[:-3]),
            "truncated",
        ),
        (
            p.OpCompressed(p.OP_MSG, 10, 2, zlib.compress(GOLDEN_MSG_PING[16:])),
            "more than 11 bytes",
        ),
        (
            p.OpCompressed(p.OP_MSG, 35, 2, zlib.compress(bytes(4) + b"\x07" + bytes(30))),
            "section kind 7",
        ),
    ],
)
def test_decompress_errors(op: p.OpCompressed, text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        p.decompress(op)
    assert text in str(info.value)
    assert info.value.side == "remote"


def test_zlib_bomb_is_bounded() -> None:
    bomb = zlib.compress(b"\x00" * 50_000_000, 9)  # ~50 KB that inflates to 50 MB
    op = p.OpCompressed(p.OP_MSG, 100, 2, bomb)
    with pytest.raises(ProtocolError, match="more than 101 bytes"):
        p.decompress(op)


@pytest.mark.parametrize("name, package", [("snappy", "python-snappy"), ("zstd", "zstandard")])
def test_missing_optional_compressor(
    name: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "snappy" if name == "snappy" else "zstandard"
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ConfigurationError, match=package):
        p.compress(PING_MSG, name)
    op = p.OpCompressed(p.OP_MSG, 35, p.CompressorId[name], b"\x23whatever")
    with pytest.raises(ConfigurationError, match=package):
        p.decompress(op)


@pytest.mark.parametrize("name, module", [("snappy", "snappy"), ("zstd", "zstandard")])
def test_optional_compressors_round_trip(name: str, module: str) -> None:
    pytest.importorskip(module)
    for message in (PING_MSG, p.OpReply([{"x": "y" * 1000}] * 5)):
        op = p.compress(message, name)
        assert op.compressor_id == p.CompressorId[name]
        header, decoded = p.decode(p.encode(op, 1))
        assert p.decompress(decoded, header) == message
        short = decoded.replace(uncompressed_size=decoded.uncompressed_size - 1)  # type: ignore[union-attr]
        with pytest.raises(ProtocolError):
            p.decompress(short)


# --------------------------------------------------------------------------- MessageReader


def stream_of_three() -> bytes:
    return GOLDEN_MSG_PING + GOLDEN_REPLY + GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC + _crc_of_golden()


EXPECTED_THREE = [PING_MSG, GOLDEN[4][3], SEQ_MSG]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 17, 50, 1000])
def test_reader_any_chunking(chunk: int) -> None:
    data = stream_of_three()
    reader = p.MessageReader()
    got: List[Any] = []
    for i in range(0, len(data), chunk):
        reader.feed(data[i : i + chunk])
        got.extend(m for _, m in reader)
    assert got == EXPECTED_THREE
    assert reader.buffered == 0
    assert reader.next_message() is None


def test_reader_next_message_and_needs() -> None:
    reader = p.MessageReader()
    assert reader.next_message() is None
    assert reader.bytes_needed == 16
    reader.feed(GOLDEN_MSG_PING[:10])
    assert reader.bytes_needed == 6
    assert reader.next_message() is None
    reader.feed(memoryview(GOLDEN_MSG_PING)[10:20])
    assert reader.bytes_needed == 31
    reader.feed(bytearray(GOLDEN_MSG_PING[20:]) + GOLDEN_REPLY[:3])
    assert reader.bytes_needed == 0
    header, message = reader.next_message()  # type: ignore[misc]
    assert header == p.Header(51, 7, 0, p.OP_MSG)
    assert message == PING_MSG
    assert reader.buffered == 3
    assert reader.bytes_needed == 13
    reader.feed(GOLDEN_REPLY[3:])
    assert [m for _, m in reader] == [GOLDEN[4][3]]
    reader.feed(b"")
    assert list(reader) == []


def test_reader_checks_length_as_soon_as_header_is_in() -> None:
    reader = p.MessageReader(max_message_size=1000)
    reader.feed(struct.pack("<iiii", 1000, 1, 0, p.OP_MSG))  # exactly the limit: fine
    assert reader.bytes_needed == 984
    reader = p.MessageReader(max_message_size=1000)
    reader.feed(struct.pack("<iii", 1001, 1, 0))
    with pytest.raises(ProtocolError, match="exceeds the maximum message size 1000"):
        reader.feed(b"\xdd\x07\x00\x00")  # the 16th byte: refused before any body arrives
    with pytest.raises(ProtocolError, match="earlier"):
        reader.feed(b"\x00" * 10)
    with pytest.raises(ProtocolError, match="exceeds the maximum"):
        reader.next_message()


def test_reader_bad_next_header_reported_after_good_message() -> None:
    reader = p.MessageReader()
    reader.feed(GOLDEN_MSG_PING + h("0f000000 01000000 00000000 dd070000"))
    assert reader.next_message() == (p.Header(51, 7, 0, p.OP_MSG), PING_MSG)
    with pytest.raises(ProtocolError, match="less than the 16-byte header"):
        reader.next_message()


def test_reader_rejects_small_limit() -> None:
    with pytest.raises(ValueError):
        p.MessageReader(max_message_size=15)


def test_reader_unknown_opcode_is_sticky() -> None:
    reader = p.MessageReader()
    reader.feed(frame_of(2010, b"xx"))
    with pytest.raises(ProtocolError, match="unknown opCode 2010"):
        reader.next_message()
    with pytest.raises(ProtocolError):
        list(reader)


# --------------------------------------------------------------------------- CRC-32C

CRC_VECTORS = [
    (b"", 0x00000000),
    (b"123456789", 0xE3069283),
    (b"a", 0xC1D04330),
    (bytes(32), 0x8A9136AA),  # RFC 3720 B.4: 32 bytes of zeros
    (b"\xff" * 32, 0x62A8AB43),  # 32 bytes of ones
    (bytes(range(32)), 0x46DD794E),  # incrementing
    (bytes(range(31, -1, -1)), 0x113FDB5C),  # decrementing
]


@pytest.mark.parametrize("data, crc", CRC_VECTORS)
def test_crc32c_pure_python_vectors(data: bytes, crc: int) -> None:
    assert _crc32c.crc32c_py(data) == crc
    assert _crc32c.crc32c_py(bytearray(data)) == crc
    assert _crc32c.crc32c_py(data[5:], _crc32c.crc32c_py(data[:5])) == crc


@pytest.mark.parametrize("data, crc", CRC_VECTORS)
def test_crc32c_package_vectors(data: bytes, crc: int) -> None:
    crc32c = pytest.importorskip("crc32c")
    assert crc32c.crc32c(data) == crc
    assert _crc32c.crc32c(data) == crc


def test_crc32c_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("crc32c")
    assert _crc32c.backend()[0] == "crc32c"
    monkeypatch.setitem(sys.modules, "crc32c", None)
    _crc32c.backend.cache_clear()
    try:
        assert _crc32c.backend()[0] == "python"
        # The whole OP_MSG checksum path works on the pure-Python implementation too.
        frame = p.encode(SEQ_MSG, 42)
        assert frame == GOLDEN_MSG_SEQ_CHECKSUM_NO_CRC + h(GOLDEN_CRC_HEX)
        assert p.decode(frame)[1] == SEQ_MSG
    finally:
        _crc32c.backend.cache_clear()


def test_crc32c_pure_python_long_input() -> None:
    crc32c = pytest.importorskip("crc32c")
    data = bytes((i * 7 + 3) & 0xFF for i in range(10_007))
    assert _crc32c.crc32c_py(data) == crc32c.crc32c(data)


# --------------------------------------------------------------------------- import hygiene


def test_import_pulls_in_neither_socket_nor_pymongo() -> None:
    # wireclient/__init__.py imports the whole client (network.py needs socket), so stand in
    # an empty package module: what gets imported is the protocol package and its own imports only.
    code = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('wireclient')\n"
        "pkg = types.ModuleType('wireclient')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['wireclient'] = pkg\n"
        "import wireclient.protocol\n"
        "assert wireclient.protocol.encode(wireclient.protocol.OpMsg({}), 1)\n"
        "print(sorted(m for m in ('socket', 'ssl', 'pymongo', 'crc32c') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_docs_examples_run() -> None:
    import doctest
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "protocol.md")
    result = doctest.testfile(path, module_relative=False, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def _bson(document: Any) -> bytes:
    import bson

    return bson.encode(document)


@pytest.mark.parametrize(
    "body, flags, identifier, documents",
    [
        ({"ping": 1, "$db": "admin"}, 0, None, ()),
        ({"insert": "c", "$db": "d"}, 2, None, ()),
        (_bson({"insert": "c", "$db": "d"}), 0, "documents", [_bson({"x": 1})] * 3),
        ({"insert": "c", "$db": "d"}, 2, "documents", [{"x": 1}, _bson({"y": 2})]),
        ({"a": 1}, 1, "docs", [{"q": 1}]),  # checksumPresent: through encode
        ({"a": 1}, 1 << 16, None, ()),
        ({"a": 1}, 0, "é", [{"x": 1}]),  # not ASCII: checked as DocumentSequence checks it
    ],
)
def test_encode_msg_is_the_frame_of_the_message_it_describes(
    body: Any, flags: int, identifier: Any, documents: Any
) -> None:
    sequences = () if identifier is None else (p.DocumentSequence(identifier, documents),)
    expected = p.encode(p.OpMsg(body, sequences, flags), 77)
    assert p.encode_msg(77, body, flags, identifier, documents) == expected


def test_encode_msg_refuses_what_the_message_objects_refuse() -> None:
    with pytest.raises(ProtocolError):
        p.encode_msg(1, {"a": 1}, 0, "a\x00b", [{}])
    with pytest.raises(InvalidDocument):
        p.encode_msg(1, {"a": object()})
    with pytest.raises(ProtocolError):
        p.encode_msg(2**31, {"a": 1})
