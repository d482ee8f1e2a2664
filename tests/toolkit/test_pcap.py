"""wireclient.toolkit.pcap: TCP streams reassembled from segments in any order, with
retransmissions and overlaps, into the capture records that replay and decode read; and
pcap / pcapng files written with dpkt read back to the bytes they were made from."""

from __future__ import annotations

import random
import sys
from typing import Any, List, Tuple

import pytest
from pcap_writer import client_of, packets, write_pcap

from wireclient import protocol as p
from wireclient.toolkit import capture, pcap
from wireclient.toolkit.capture import CLIENT_BYTES, SERVER_BYTES, Record

CLIENT, SERVER = ("10.0.0.2", 40001), ("10.0.0.1", 27017)
BIG = p.encode(p.OpMsg({"insert": "c", "$db": "d", "pad": "x" * 5000}), request_id=3)
REPLY = p.encode(p.OpMsg({"n": 1, "ok": 1.0}), request_id=4, response_to=3)


def seg(seq: int, data: bytes, when: float = 1.0, syn: bool = False, out: bool = True) -> Any:
    source, destination = (CLIENT, SERVER) if out else (SERVER, CLIENT)
    return pcap.Segment(when, source, destination, seq, syn, False, data)


def client_bytes(records: List[Record]) -> bytes:
    return b"".join(r.payload for r in records if r.kind == CLIENT_BYTES)


def test_segments_out_of_order_wait_for_the_gap() -> None:
    data = BIG
    pieces = [(100 + i, data[i : i + 1000]) for i in range(0, len(data), 1000)]
    order = [seg(99, b"", syn=True)] + [seg(s, d) for s, d in reversed(pieces)]
    records, error = pcap.records_from_segments(order)
    assert error is None
    assert client_bytes(records) == data
    assert len(records) == 1  # nothing came out until the first segment filled the gap


def test_retransmissions_and_overlaps_add_only_new_bytes() -> None:
    data = BIG
    order = [
        seg(99, b"", syn=True),
        seg(100, data[:1500]),
        seg(100, data[:1500]),  # retransmitted whole
        seg(1100, data[1000:3000]),  # overlaps what came
        seg(600, data[500:1000]),  # old bytes only
        seg(3100, data[3000:]),
        seg(3100, data[3000:]),
    ]
    records, error = pcap.records_from_segments(order)
    assert error is None and client_bytes(records) == data


def test_a_message_split_across_segments_frames_whole() -> None:
    order = [seg(99, b"", syn=True), seg(100, BIG[:7]), seg(107, BIG[7:20]), seg(120, BIG[20:])]
    server_syn = pcap.Segment(1.0, SERVER, CLIENT, 499, True, True, b"")  # SYN-ACK
    order += [server_syn, seg(500, REPLY[:5], out=False)]
    order += [seg(505, REPLY[5:], out=False)]
    records, _ = pcap.records_from_segments(order)
    (conversation,) = capture.conversations(records)
    assert [f.frame.raw for f in conversation.requests] == [BIG]
    assert [f.frame.raw for f in conversation.replies] == [REPLY]


def test_sequence_numbers_wrap() -> None:
    start = 2**32 - 10
    order = [seg(start - 1, b"", syn=True), seg(start, BIG[:30]), seg(20, BIG[30:])]
    records, error = pcap.records_from_segments(order)
    assert error is None and client_bytes(records) == BIG


def test_without_a_syn_the_server_port_says_who_the_client_is() -> None:
    order = [seg(500, REPLY, out=False), seg(100, BIG)]  # the capture began mid-connection
    records, _ = pcap.records_from_segments(order)
    assert {(r.kind, r.payload) for r in records} == {(SERVER_BYTES, REPLY), (CLIENT_BYTES, BIG)}


def test_bytes_behind_a_missing_segment_are_reported() -> None:
    order = [seg(99, b"", syn=True), seg(100, BIG[:10]), seg(200, BIG[100:200])]
    records, error = pcap.records_from_segments(order)
    assert client_bytes(records) == BIG[:10]
    assert error is not None and "100 bytes" in error and "10.0.0.2:40001" in error


CONVERSATION = [
    Record(1, CLIENT_BYTES, 10.0, BIG),
    Record(2, CLIENT_BYTES, 10.1, BIG[:100]),
    Record(1, SERVER_BYTES, 10.2, REPLY),
    Record(2, CLIENT_BYTES, 10.3, BIG[100:]),
    Record(2, SERVER_BYTES, 10.4, REPLY),
]


def streams(records: List[Record]) -> List[Tuple[int, int, bytes]]:
    joined: dict = {}
    for r in records:
        joined[(r.connection, r.kind)] = joined.get((r.connection, r.kind), b"") + r.payload
    return sorted((c, k, v) for (c, k), v in joined.items())


@pytest.mark.parametrize("pcapng", [False, True], ids=["pcap", "pcapng"])
@pytest.mark.parametrize("handshake", [True, False], ids=["syn", "mid-connection"])
def test_a_packet_file_reads_back_to_its_streams(
    tmp_path: Any, pcapng: bool, handshake: bool
) -> None:
    frames = packets(
        CONVERSATION,
        segment_size=300,
        shuffle=random.Random(7),
        retransmit_every=3,
        handshake=handshake,
    )
    path = write_pcap(str(tmp_path / "t.pcap"), frames, pcapng=pcapng)
    records, error = pcap.read_pcap(path)
    assert error is None
    assert streams(records) == streams(CONVERSATION)
    assert {r.connection for r in records} == {1, 2}
    assert client_of(1) != client_of(2)


def test_not_a_packet_file(tmp_path: Any) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"hello there")
    with pytest.raises(pcap.PacketFileError, match="neither pcap nor pcapng"):
        pcap.read_segments(str(path))


def test_without_dpkt_the_error_names_the_extra(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pcap(str(tmp_path / "t.pcap"), packets(CONVERSATION))
    monkeypatch.setitem(sys.modules, "dpkt", None)  # import dpkt now raises ImportError
    with pytest.raises(pcap.PacketFileError, match=r"wireclient\[pcap\]"):
        pcap.read_pcap(path)


def test_importing_wireclient_loads_no_toolkit_module() -> None:
    import subprocess

    code = (
        "import sys, wireclient; print([m for m in sys.modules if 'toolkit' in m or m == 'dpkt'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
