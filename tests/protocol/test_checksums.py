"""protocol/checksums.py and MessageReader(verify_checksums=False), on golden bytes.

The checksummed frame is test_protocol's golden OP_MSG (an insert with a kind-1 sequence);
its CRC-32C, 0x77c8d30f little-endian at the end, was computed with the independent
``crc32c`` package (test_protocol.test_golden_checksum_literal re-checks it).
"""

from __future__ import annotations

import zlib

import pytest

from wireclient import protocol as p
from wireclient.errors import ProtocolError

GOLDEN = bytes.fromhex(
    "550000002a00000000000000dd07000001000000001f00000002696e7365727400020000006300022464"
    "62000300000064620000011c000000646f63756d656e7473000e000000105f69640001000000000fd3c877"
)
BAD = GOLDEN[:-1] + b"\x78"  # last CRC byte changed
PING = bytes.fromhex(
    "330000000700000000000000dd07000000000000001e0000001070696e67000100000002246462000600"
    "000061646d696e0000"
)


def _zlib_wrapped(frame: bytes) -> bytes:
    """``frame`` as OP_COMPRESSED/zlib, built by hand with zlib (not the codec)."""
    body = frame[16:]
    packed = zlib.compress(body)
    head = (25 + len(packed)).to_bytes(4, "little") + frame[4:12] + (2012).to_bytes(4, "little")
    inner = (2013).to_bytes(4, "little") + len(body).to_bytes(4, "little") + b"\x02"
    return head + inner + packed


def test_golden_frames_judged() -> None:
    assert p.checksum_ok(GOLDEN) is True
    assert p.checksum_ok(BAD) is False
    assert p.checksum_ok(bytearray(GOLDEN[:-4] + b"\x00\x00\x00\x00")) is False
    assert p.checksum_ok(PING) is None  # checksumPresent unset
    reply = p.encode(p.OpReply([{"ok": 1}]), 1)
    assert p.checksum_ok(reply) is None  # not an OP_MSG


def test_compressed_frames_judged_on_the_frame_they_stand_for() -> None:
    assert p.checksum_ok(_zlib_wrapped(GOLDEN)) is True
    assert p.checksum_ok(_zlib_wrapped(BAD)) is False
    assert p.checksum_ok(_zlib_wrapped(PING)) is None
    # the checksum covers the header: another requestID in the outer frame breaks it
    moved = bytearray(_zlib_wrapped(GOLDEN))
    moved[4] = 43
    assert p.checksum_ok(bytes(moved)) is False


def test_truncated_header_refused() -> None:
    with pytest.raises(ProtocolError, match="truncated header"):
        p.checksum_ok(GOLDEN[:10])


def test_reader_refuses_a_bad_checksum_by_default() -> None:
    reader = p.MessageReader()
    reader.feed(BAD)
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        reader.next_message()


@pytest.mark.parametrize("wrap", [False, True])
def test_reader_without_verification_decodes_and_strips_it(wrap: bool) -> None:
    reader = p.MessageReader(verify_checksums=False)
    reader.inflate = True
    for frame in (BAD, GOLDEN, PING):
        reader.feed(_zlib_wrapped(frame) if wrap else frame)
    messages = [m for _, m in reader]
    assert [m.body for m in messages] == [  # type: ignore[union-attr]
        {"insert": "c", "$db": "db"},
        {"insert": "c", "$db": "db"},
        {"ping": 1, "$db": "admin"},
    ]
    assert messages[0].sequences[0].documents == ({"_id": 1},)  # type: ignore[union-attr]
    assert reader.buffered == 0
