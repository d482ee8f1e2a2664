"""wireclient.toolkit.trace: FrameStream (frames with their exact bytes, in any chunking, past a
bad body, not past a bad header), describe, hex dumps, TracingSocket; and the capture
format of wireclient.toolkit.capture."""

from __future__ import annotations

import io
import socket
import struct
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wireclient import protocol as p
from wireclient.toolkit import capture, trace

FRAMES = [
    p.encode(p.OpMsg({"ping": 1, "$db": "admin"}), request_id=1),
    p.encode(p.OpReply([{"ok": 1.0}]), request_id=2, response_to=1),
    p.encode(p.OpQuery("admin.$cmd", {"hello": 1}), request_id=3),
    p.encode(
        p.OpMsg({"insert": "c", "$db": "d"}, [p.DocumentSequence("documents", [{"a": 1}])]), 4
    ),
]
STREAM = b"".join(FRAMES)


def chunked(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_frames_come_out_whole_in_any_chunking(cuts: List[int]) -> None:
    stream = trace.FrameStream()
    frames: List[trace.Frame] = []
    for chunk in chunked(STREAM, cuts):
        frames += stream.feed(chunk)
    assert [f.raw for f in frames] == FRAMES
    assert all(f.error is None for f in frames)
    assert [f.header.request_id for f in frames if f.header] == [1, 2, 3, 4]
    assert stream.flush() == [] and stream.buffered == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_raw_bytes_add_up_to_the_stream_whatever_it_holds(junk: bytes, cuts: List[int]) -> None:
    data = FRAMES[0] + junk + FRAMES[1]
    stream = trace.FrameStream()
    frames: List[trace.Frame] = []
    for chunk in chunked(data, cuts):
        frames += stream.feed(chunk)
    frames += stream.flush()
    assert b"".join(f.raw for f in frames) == data  # what lets the proxy forward frames


def test_a_bad_body_is_skipped_by_its_length() -> None:
    bad = FRAMES[0][:-1] + b"\xff"
    frames = trace.frames_of(bad + FRAMES[1])
    assert [f.raw for f in frames] == [bad, FRAMES[1]]
    assert frames[0].error is not None and "invalid BSON" in frames[0].error
    assert frames[0].header == p.Header(51, 1, 0, p.OP_MSG)
    assert isinstance(frames[1].message, p.OpReply)


def test_a_bad_header_breaks_the_stream_for_good() -> None:
    bad = struct.pack("<i", 7) + FRAMES[0][4:]
    stream = trace.FrameStream()
    [frame] = stream.feed(bad)
    assert frame.error is not None and "messageLength 7" in frame.error
    assert frame.header is not None and frame.header.message_length == 7
    assert stream.broken
    [later] = stream.feed(FRAMES[1])
    assert later.header is None and later.raw == FRAMES[1]
    assert later.error is not None and "unframed" in later.error
    assert stream.feed(b"") == []


def test_flush_returns_the_partial_frame() -> None:
    stream = trace.FrameStream()
    assert stream.feed(FRAMES[0][:5]) == []
    [partial] = stream.flush()
    assert partial.header is None and partial.error == "incomplete frame: 5 of 16 bytes"
    stream.feed(FRAMES[0][:20])
    [partial] = stream.flush()
    assert partial.error == "incomplete frame: 20 of 51 bytes"


def test_flag_names() -> None:
    assert trace.flag_names(0, p.MsgFlags) == "0x00000000 (none)"
    flags = p.MsgFlags.moreToCome | p.MsgFlags.exhaustAllowed
    assert trace.flag_names(flags, p.MsgFlags) == "0x00010002 moreToCome|exhaustAllowed"
    assert trace.flag_names(0x5, p.MsgFlags) == "0x00000005 checksumPresent|unknown(0x4)"
    assert trace.flag_names(2, p.ReplyFlags) == "0x00000002 QueryFailure"


def test_describe_and_hexdump() -> None:
    [frame] = trace.frames_of(FRAMES[3])
    text = trace.describe(frame, "frame 1", hex_dump=True)
    lines = text.splitlines()
    assert lines[0] == (
        f"frame 1  OP_MSG  messageLength={len(FRAMES[3])} requestID=4 responseTo=0 opCode=2013"
    )
    assert lines[1:4] == [
        "  flagBits: 0x00000000 (none)",
        '  section kind 0 body: {"insert": "c", "$db": "d"}',
        "  section kind 1 'documents' (1 document):",
    ]
    assert lines[4] == '    {"a": 1}'
    assert lines[5].startswith("    00000000  ")
    assert len(lines) - 5 == (len(FRAMES[3]) + 15) // 16
    assert trace.hexdump(b"AB\x00") == ["    00000000  41 42 00" + " " * 42 + "|AB.|"]


def test_describe_unknown_compressor_and_opcode() -> None:
    message = p.OpCompressed(p.OP_MSG, 10, 9, b"xx")
    text = "\n".join(trace.describe_message(message))
    assert "compressorId: unknown(9)" in text and "cannot decompress" in text
    bad = FRAMES[0][:12] + struct.pack("<i", 42) + FRAMES[0][16:]
    [frame] = trace.frames_of(bad)
    assert trace.describe(frame, "x").startswith("x  unknown opCode  messageLength=51")


def test_tracing_socket_prints_both_directions() -> None:
    a, b = socket.socketpair()
    out = io.StringIO()
    tracer = trace.Tracer(trace.write_to(out))
    traced = trace.TracingSocket(a, tracer)
    try:
        traced.sendall(FRAMES[0][:10])
        assert out.getvalue() == ""  # not a whole frame yet
        traced.sendall(FRAMES[0][10:])
        assert out.getvalue().startswith("client -> server  OP_MSG")
        assert b.recv(100) == FRAMES[0]
        b.sendall(FRAMES[1])
        assert traced.recv(1000) == FRAMES[1]
        assert "server -> client  OP_REPLY" in out.getvalue()
        b.sendall(FRAMES[2][:9])
        buf = bytearray(100)
        assert traced.recv_into(buf) == 9
        tracer.finish()
        assert "incomplete frame: 9 of 16 bytes" in out.getvalue()
        assert traced.fileno() == a.fileno()  # everything else is the socket's
    finally:
        a.close()
        b.close()


# -- capture -------------------------------------------------------------------------------


def test_capture_round_trip() -> None:
    buf = io.BytesIO()
    writer = capture.CaptureWriter(buf)
    writer.event(1, "opened")
    writer.record(1, capture.CLIENT_BYTES, FRAMES[0], timestamp=5.5)
    writer.record(2, capture.SERVER_BYTES, b"")
    data = buf.getvalue()
    writer.close()
    writer.record(1, capture.CLIENT_BYTES, b"after close")  # ignored, no error
    assert capture.is_capture(data) and data.startswith(b"WIRECAP1")
    records, error = capture.read_capture(data)
    assert error is None
    assert [(r.connection, r.kind, r.payload) for r in records] == [
        (1, capture.EVENT, b"opened"),
        (1, capture.CLIENT_BYTES, FRAMES[0]),
        (2, capture.SERVER_BYTES, b""),
    ]
    assert records[1].timestamp == 5.5


@pytest.mark.parametrize(
    "data, error",
    [
        (capture.MAGIC + b"\x01\x00", "truncated record header at offset 8"),
        (capture.MAGIC + capture.pack_record(1, 7, b"x", 0.0), "unknown record kind 7"),
        (capture.MAGIC + capture.pack_record(1, 0, b"xyz", 0.0)[:-1], "2 of 3 bytes"),
        (FRAMES[0], "not a capture"),
    ],
)
def test_broken_captures(data: bytes, error: str) -> None:
    records, found = capture.read_capture(data)
    assert records == [] and found is not None and error in found


def test_no_frame_looks_like_a_capture() -> None:
    length = struct.unpack("<i", capture.MAGIC[:4])[0]
    assert length > p.DEFAULT_MAX_MESSAGE_SIZE
    [frame] = trace.frames_of(capture.MAGIC + b"\x00" * 8)
    assert frame.error is not None
