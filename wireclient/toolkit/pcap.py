"""MongoDB traffic from pcap and pcapng files, as capture records (``capture.Record``).

Needs dpkt (``pip install wireclient[pcap]``), imported only when a packet file is read.

Theory of operation
-------------------
``read_segments`` reads every packet with dpkt (pcap or pcapng, told apart by their magic
numbers; Ethernet, Linux cooked v1 and v2, BSD loopback and raw IP link types), keeps the
TCP segments of IPv4 and IPv6, and gives each to the ``_TcpFlow`` of its direction (source
address and port, destination address and port).

A flow reassembles one direction of a TCP connection by sequence number: its start is the
SYN's sequence number plus one, or, when the capture began mid-connection, the lowest
sequence number the file holds for it (a first pass over the segments finds both). Segments
are kept by offset from that start; the bytes up to the first gap are handed out, in order,
each time a segment fills a gap, so a segment that arrives out of order waits for the one
before it, and a retransmission (or any overlap) adds only the bytes not yet handed out.
Sequence numbers wrap at 2**32, which the offsets absorb. Bytes still waiting behind a gap
when the file ends are reported, not guessed.

The two flows of a connection make one connection number (in the order their first bytes
appear). The client is the side that sent the SYN (or received the SYN-ACK); without one,
the side that is not on a server port (``server_ports``, 27017 by default); failing both,
the side with the higher port. Each in-order run of bytes becomes a ``Record`` stamped with
the time of the packet that completed it, so records come out in capture order, as the proxy
writes them.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from wireclient.toolkit.capture import CLIENT_BYTES, SERVER_BYTES, Record

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
DEFAULT_SERVER_PORTS = (27017,)
_SEQ_SPACE = 1 << 32

Endpoint = Tuple[str, int]


class PacketFileError(Exception):
    """A packet file that cannot be read (not pcap or pcapng, a link type not handled, or
    dpkt missing)."""


class Segment(NamedTuple):
    """One TCP segment: where it came from and went to, and what it carried."""

    timestamp: float
    source: Endpoint
    destination: Endpoint
    seq: int
    syn: bool
    ack: bool
    payload: bytes


def is_packet_file(data: bytes) -> bool:
    return data[:4] in PCAP_MAGICS or data[:4] == PCAPNG_MAGIC


def _dpkt() -> Any:
    try:
        import dpkt
    except ImportError:
        raise PacketFileError(
            "reading pcap files needs dpkt: pip install 'wireclient[pcap]' (or dpkt)"
        ) from None
    return dpkt


def read_segments(path: str) -> List[Segment]:
    """Every TCP segment of a pcap or pcapng file (``PacketFileError`` if unreadable)."""
    dpkt = _dpkt()
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        try:
            if magic == PCAPNG_MAGIC:
                reader = dpkt.pcapng.Reader(f)
            elif magic in PCAP_MAGICS:
                reader = dpkt.pcap.Reader(f)
            else:
                raise PacketFileError(f"{path!r} is neither pcap nor pcapng")
            decode_link = _link_decoder(dpkt, reader.datalink())
            segments = []
            for timestamp, buffer in reader:
                segment = _segment(dpkt, decode_link(buffer), float(timestamp))
                if segment is not None:
                    segments.append(segment)
        except (dpkt.dpkt.Error, ValueError) as exc:
            raise PacketFileError(f"{path!r}: {exc}") from None
    return segments


def _link_decoder(dpkt: Any, link_type: int) -> Any:
    if link_type == dpkt.pcap.DLT_EN10MB:
        return dpkt.ethernet.Ethernet
    if link_type == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL
    if link_type == getattr(dpkt.pcap, "DLT_LINUX_SLL2", 276):
        return dpkt.sll2.SLL2
    if link_type in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        return dpkt.loopback.Loopback
    if link_type in (dpkt.pcap.DLT_RAW, 12, 14, 101, 228, 229):  # raw IP, IPv4, IPv6

        def raw_ip(buffer: bytes) -> Any:
            return (
                dpkt.ip6.IP6(buffer) if buffer[:1] and buffer[0] >> 4 == 6 else dpkt.ip.IP(buffer)
            )

        return raw_ip
    raise PacketFileError(
        f"link type {link_type} is not handled (Ethernet, Linux, loopback, raw IP)"
    )


def _segment(dpkt: Any, packet: Any, timestamp: float) -> Optional[Segment]:
    ip = packet
    while ip is not None and not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
        ip = getattr(ip, "data", None)
        if isinstance(ip, (bytes, str)):
            return None
    if ip is None or not isinstance(ip.data, dpkt.tcp.TCP):
        return None
    tcp = ip.data
    source, destination = dpkt.utils.inet_to_str(ip.src), dpkt.utils.inet_to_str(ip.dst)
    return Segment(
        timestamp,
        (source, int(tcp.sport)),
        (destination, int(tcp.dport)),
        int(tcp.seq),
        bool(tcp.flags & dpkt.tcp.TH_SYN),
        bool(tcp.flags & dpkt.tcp.TH_ACK),
        bytes(tcp.data),
    )


# --------------------------------------------------------------------------- reassembly


class _TcpFlow:
    """One direction of a TCP connection, reassembled (see the module docstring)."""

    def __init__(self, start: int) -> None:
        self.start = start  # the sequence number of the first byte
        self.delivered = 0  # bytes handed out, from start
        self.pending: Dict[int, bytes] = {}  # offset -> bytes, beyond a gap

    def add(self, segment: Segment) -> bytes:
        """The bytes this segment makes available in order (often none)."""
        if segment.syn or not segment.payload:
            return b""
        offset = _signed((segment.seq - self.start) % _SEQ_SPACE)
        end = offset + len(segment.payload)
        if end <= self.delivered:
            return b""  # a retransmission of bytes already handed out
        data = segment.payload
        if offset < self.delivered:
            data, offset = data[self.delivered - offset :], self.delivered
        if len(data) > len(self.pending.get(offset, b"")):
            self.pending[offset] = data
        return self._drain()

    def _drain(self) -> bytes:
        out = bytearray()
        while True:
            ready = [o for o in self.pending if o <= self.delivered]
            if not ready:
                return bytes(out)
            for offset in sorted(ready):
                data = self.pending.pop(offset)
                skip = self.delivered - offset
                if skip < len(data):
                    out += data[skip:]
                    self.delivered += len(data) - skip

    @property
    def waiting(self) -> int:
        """Bytes held back behind a gap."""
        return sum(len(d) for d in self.pending.values())


def _signed(offset: int) -> int:
    """A sequence-number distance, modulo 2**32, as -2**31 .. 2**31 - 1."""
    return offset - _SEQ_SPACE if offset >= _SEQ_SPACE // 2 else offset


Flow = Tuple[Endpoint, Endpoint]


def _flow_starts(segments: Sequence[Segment]) -> Dict[Flow, int]:
    """Where each direction's bytes start: after its SYN, or, for a connection whose start
    the capture missed, at the lowest sequence number seen (reordering included)."""
    starts: Dict[Flow, int] = {}
    syn_seen = set()
    for segment in segments:
        flow = (segment.source, segment.destination)
        if segment.syn:
            starts[flow] = (segment.seq + 1) % _SEQ_SPACE
            syn_seen.add(flow)
        elif flow not in starts:
            starts[flow] = segment.seq
        elif flow not in syn_seen and segment.payload:
            if _signed((segment.seq - starts[flow]) % _SEQ_SPACE) < 0:
                starts[flow] = segment.seq
    return starts


def _clients(segments: Sequence[Segment], server_ports: frozenset[int]) -> Dict[Flow, Endpoint]:
    """The client end of each connection (keyed by its two ends, sorted)."""
    decided: Dict[Flow, Endpoint] = {}
    guessed: Dict[Flow, Endpoint] = {}
    for segment in segments:
        ends = tuple(sorted((segment.source, segment.destination)))
        key = (ends[0], ends[1])
        if segment.syn and key not in decided:
            decided[key] = segment.destination if segment.ack else segment.source
        elif key not in guessed:
            guessed[key] = _client_side(segment, server_ports)
    return {**guessed, **decided}


def records_from_segments(
    segments: Iterable[Segment], server_ports: Iterable[int] = DEFAULT_SERVER_PORTS
) -> Tuple[List[Record], Optional[str]]:
    """The records of every TCP connection in ``segments``, and what could not be
    reassembled (None: everything was)."""
    segments = list(segments)
    starts = _flow_starts(segments)
    clients = _clients(segments, frozenset(server_ports))
    numbers: Dict[Flow, int] = {}  # a connection (its two ends, sorted) -> its number
    flows: Dict[Flow, _TcpFlow] = {}
    records: List[Record] = []
    for segment in segments:
        flow = (segment.source, segment.destination)
        reassembly = flows.get(flow)
        if reassembly is None:
            reassembly = flows[flow] = _TcpFlow(starts[flow])
        data = reassembly.add(segment)
        if not data:
            continue
        ends = tuple(sorted(flow))
        key = (ends[0], ends[1])
        number = numbers.setdefault(key, len(numbers) + 1)
        kind = CLIENT_BYTES if segment.source == clients[key] else SERVER_BYTES
        records.append(Record(number, kind, segment.timestamp, data))
    gaps = [
        f"{source[0]}:{source[1]} -> {destination[0]}:{destination[1]}: {flow.waiting} bytes"
        for (source, destination), flow in flows.items()
        if flow.waiting
    ]
    error = None
    if gaps:
        error = "bytes after a gap (segments missing from the capture): " + "; ".join(gaps)
    return records, error


def _client_side(segment: Segment, server_ports: frozenset[int]) -> Endpoint:
    if segment.syn:
        return segment.destination if segment.ack else segment.source
    if segment.destination[1] in server_ports and segment.source[1] not in server_ports:
        return segment.source
    if segment.source[1] in server_ports and segment.destination[1] not in server_ports:
        return segment.destination
    return max((segment.source, segment.destination), key=lambda end: end[1])


def read_pcap(
    path: str, server_ports: Iterable[int] = DEFAULT_SERVER_PORTS
) -> Tuple[List[Record], Optional[str]]:
    """The MongoDB connections of a pcap or pcapng file, as capture records."""
    return records_from_segments(read_segments(path), server_ports)


__all__ = [
    "DEFAULT_SERVER_PORTS",
    "PacketFileError",
    "Segment",
    "is_packet_file",
    "read_pcap",
    "read_segments",
    "records_from_segments",
]
