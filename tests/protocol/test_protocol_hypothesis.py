"""wireclient.protocol properties (Hypothesis): round trips for every message class, and
a decoder fuzz (random and mutated frames, any chunking) that accepts only a decoded message
or a ProtocolError. The strategies are imported by test_protocol_mockupdb too.
"""

from __future__ import annotations

import os
import struct
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wireclient import protocol as p
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.protocol import _crc32c

INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**32 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)

# Text BSON can carry: no lone surrogates; keys and cstrings also no NUL.
_chars = st.characters(blacklist_categories=("Cs",))
_cstring_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.text(_chars, max_size=12)
cstrings = st.text(_cstring_chars, max_size=12)
keys = st.text(_cstring_chars, max_size=8)

scalars = st.one_of(
    INT64,
    text,
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=12,
)
documents: st.SearchStrategy[Dict[str, Any]] = st.dictionaries(keys, values, max_size=5)
document_lists: st.SearchStrategy[List[Dict[str, Any]]] = st.lists(documents, max_size=4)

# OP_MSG flagBits: any combination of the defined required bits and of the optional bits.
msg_flags = st.builds(
    lambda required, optional: required | (optional << 16),
    st.sampled_from([0, 1, 2, 3]),
    st.integers(0, 0xFFFF),
)

sequences = st.builds(p.DocumentSequence, cstrings, document_lists)

op_msgs = st.builds(p.OpMsg, documents, st.lists(sequences, max_size=3), msg_flags)
op_queries = st.builds(p.OpQuery, cstrings, documents, UINT32, INT32, INT32, st.none() | documents)
op_replies = st.builds(p.OpReply, document_lists, UINT32, INT64, INT32)
op_get_mores = st.builds(p.OpGetMore, cstrings, INT64, INT32)
op_kill_cursors = st.builds(p.OpKillCursors, st.lists(INT64, max_size=5))
op_inserts = st.builds(p.OpInsert, cstrings, document_lists, UINT32)
op_updates = st.builds(p.OpUpdate, cstrings, documents, documents, UINT32)
op_deletes = st.builds(p.OpDelete, cstrings, documents, UINT32)
op_compressed = st.builds(
    p.OpCompressed,
    INT32,
    st.integers(0, 2**31 - 1),
    st.integers(0, 255),
    st.binary(max_size=40),
)

STRATEGIES = {
    "OpMsg": op_msgs,
    "OpQuery": op_queries,
    "OpReply": op_replies,
    "OpGetMore": op_get_mores,
    "OpKillCursors": op_kill_cursors,
    "OpInsert": op_inserts,
    "OpUpdate": op_updates,
    "OpDelete": op_deletes,
    "OpCompressed": op_compressed,
}

messages: st.SearchStrategy[p.Message] = st.one_of(*STRATEGIES.values())


# --------------------------------------------------------------------------- round trips

ROUND_TRIP = settings(max_examples=150, deadline=None)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_round_trip_every_class(name: str) -> None:
    @ROUND_TRIP
    @given(STRATEGIES[name], INT32, INT32)
    def check(message: p.Message, request_id: int, response_to: int) -> None:
        frame = p.encode(message, request_id, response_to)
        header = p.Header(len(frame), request_id, response_to, message.op_code)
        assert p.decode(frame) == (header, message)
        assert p.unpack_header(frame) == header
        assert p.decode_body(header, memoryview(frame)[16:]) == message
        # Encoding is deterministic, so a decoded message encodes to the same bytes.
        assert p.encode(p.decode(frame)[1], request_id, response_to) == frame

    check()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(messages, INT32), min_size=1, max_size=5), st.data())
def test_reader_round_trip_any_chunking(items: List[Any], data: st.DataObject) -> None:
    stream = b"".join(p.encode(m, rid) for m, rid in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    reader = p.MessageReader()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)]):
        reader.feed(stream[a:b])
        got.extend(reader)
    assert [(m, h.request_id) for h, m in got] == items
    assert reader.buffered == 0


@settings(max_examples=100, deadline=None)
@given(
    messages.filter(lambda m: not isinstance(m, p.OpCompressed)), st.sampled_from(["noop", "zlib"])
)
def test_compress_round_trip(message: p.Message, compressor: str) -> None:
    if isinstance(message, p.OpMsg) and message.flags & p.MsgFlags.checksumPresent:
        message = message.replace(flags=message.flags & ~1)
    op = p.compress(message, compressor)
    header, decoded = p.decode(p.encode(op, 1, 2))
    assert decoded == op
    assert p.decompress(decoded, header) == message  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_crc32c_implementations_agree(data: bytes, start: int) -> None:
    crc32c = pytest.importorskip("crc32c")
    assert _crc32c.crc32c_py(data, start) == crc32c.crc32c(data, start)


# --------------------------------------------------------------------------- fuzzing

INTERESTING_INT32 = [0, 1, 4, 5, 15, 16, 17, 255, 2**31 - 1, -1, -(2**31), 100_000]


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    """A valid frame with a few mutations: flipped bytes, truncation, new lengths, junk."""
    message = draw(messages)
    frame = bytearray(p.encode(message, draw(INT32), draw(INT32)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["flip", "set", "int32", "truncate", "append", "insert", "cut"])
        )
        i = draw(st.integers(0, max(len(frame) - 1, 0)))
        if kind == "flip" and frame:
            frame[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and frame:
            frame[i] = draw(st.integers(0, 255))
        elif kind == "int32" and len(frame) >= 4:
            i = min(i, len(frame) - 4)
            value = draw(st.sampled_from(INTERESTING_INT32) | st.integers(-64, len(frame) + 64))
            frame[i : i + 4] = struct.pack("<i", value)
        elif kind == "truncate":
            del frame[i:]
        elif kind == "append":
            frame += draw(st.binary(min_size=1, max_size=8))
        elif kind == "insert":
            frame[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "cut":
            del frame[i : i + draw(st.integers(1, 8))]
    if len(frame) >= 4 and draw(st.booleans()):
        # Keep messageLength truthful so that the mutation is met by the body decoders.
        frame[0:4] = struct.pack("<i", len(frame))
    return bytes(frame)


def _decode_or_protocol_error(frame: bytes) -> Any:
    try:
        return p.decode(frame, max_message_size=1_000_000)
    except ProtocolError as exc:
        assert exc.side == "remote"
        assert exc.offset is None or 0 <= exc.offset <= max(len(frame), 16)
        return exc


# WIRECLIENT_FUZZ_EXAMPLES=20000 for a long run; the default keeps the suite quick.
FUZZ_EXAMPLES = int(os.environ.get("WIRECLIENT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@FUZZ
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_or_protocol_error(data)
    _decode_or_protocol_error(struct.pack("<i", len(data) + 16) + data[:12].ljust(12, b"\0") + data)


@FUZZ
@given(st.binary(max_size=48), st.sampled_from(sorted(p.OPCODE_NAMES)))
def test_fuzz_random_bodies(body: bytes, op_code: int) -> None:
    frame = struct.pack("<iiii", 16 + len(body), 1, 0, op_code) + body
    _decode_or_protocol_error(frame)
    try:
        p.decode_body(p.Header(16 + len(body), 1, 0, op_code), body)
    except ProtocolError:
        pass


@FUZZ
@given(mutated_frames())
def test_fuzz_mutated_frames(frame: bytes) -> None:
    result = _decode_or_protocol_error(frame)
    if isinstance(result, tuple):
        header, message = result
        # Whatever decodes re-encodes, and that frame decodes and re-encodes to itself
        # (compared as bytes: a decoded NaN is not equal to itself).
        again = p.encode(message, header.request_id, header.response_to)
        assert p.encode(p.decode(again)[1], header.request_id, header.response_to) == again
        if isinstance(message, p.OpCompressed):
            try:
                p.decompress(message, header, max_message_size=1_000_000)
            except (ProtocolError, ConfigurationError):
                pass


@FUZZ
@given(st.lists(mutated_frames(), min_size=1, max_size=4), st.data())
def test_fuzz_reader_random_chunking(frames: List[bytes], data: st.DataObject) -> None:
    stream = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    reader = p.MessageReader(max_message_size=1_000_000)
    got = []
    try:
        for a, b in zip([0, *cuts], [*cuts, len(stream)]):
            reader.feed(stream[a:b])
            got.extend(reader)
    except ProtocolError as exc:
        assert exc.side == "remote"
        with pytest.raises(ProtocolError):  # a broken stream stays broken
            reader.next_message()
        return
    # No error: what was read is what decode() makes of the same bytes, frame by frame.
    pos = 0
    for header, message in got:
        assert p.decode(stream[pos : pos + header.message_length], 1_000_000) == (header, message)
        pos += header.message_length
    assert reader.buffered == len(stream) - pos
