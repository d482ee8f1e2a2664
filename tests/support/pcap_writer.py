"""Packet files made from capture records with dpkt's writers, for the pcap reader's tests:
each direction's bytes cut into TCP segments, optionally delivered out of order and
retransmitted, behind a three-way handshake or without one."""

from __future__ import annotations

import random
import socket
from typing import Dict, List, Optional, Sequence, Tuple

import dpkt

from wireclient.toolkit.capture import CLIENT_BYTES, Record

SERVER = ("10.0.0.1", 27017)


def client_of(connection: int) -> Tuple[str, int]:
    return ("10.0.0.2", 40000 + connection)


def _packet(
    source: Tuple[str, int], destination: Tuple[str, int], seq: int, flags: int, data: bytes
) -> bytes:
    tcp = dpkt.tcp.TCP(
        sport=source[1], dport=destination[1], seq=seq % 2**32, ack=0, flags=flags, data=data
    )
    ip = dpkt.ip.IP(
        src=socket.inet_aton(source[0]), dst=socket.inet_aton(destination[0]), p=6, data=tcp
    )
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def packets(
    records: Sequence[Record],
    segment_size: int = 1460,
    shuffle: Optional[random.Random] = None,
    retransmit_every: int = 0,
    handshake: bool = True,
    first_seq: int = 1000,
) -> List[Tuple[float, bytes]]:
    """(timestamp, Ethernet frame) for every segment of ``records``' connections."""
    out: List[Tuple[float, bytes]] = []
    seqs: Dict[Tuple[int, int], int] = {}
    syn, ack = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK
    for record in records:
        if record.kind not in (0, 1):
            continue
        client, server = client_of(record.connection), SERVER
        source, destination = (client, server) if record.kind == CLIENT_BYTES else (server, client)
        key = (record.connection, record.kind)
        if key not in seqs:
            seqs[key] = first_seq
            if handshake:
                out.append(
                    (record.timestamp, _packet(source, destination, first_seq - 1, syn, b""))
                )
                if record.kind == CLIENT_BYTES:  # the server's SYN-ACK
                    seqs[(record.connection, 1)] = first_seq
                    out.append(
                        (record.timestamp, _packet(server, client, first_seq - 1, syn | ack, b""))
                    )
        segments = []
        data = record.payload
        for start in range(0, len(data), segment_size):
            seq = seqs[key] + start
            segments.append(
                _packet(source, destination, seq, ack, data[start : start + segment_size])
            )
        seqs[key] += len(data)
        if shuffle is not None:
            for i in range(0, len(segments) - 1, 2):
                if shuffle.random() < 0.5:
                    segments[i], segments[i + 1] = segments[i + 1], segments[i]
        for i, segment in enumerate(segments, 1):
            out.append((record.timestamp, segment))
            if retransmit_every and i % retransmit_every == 0:
                out.append((record.timestamp, segment))
    return out


def write_pcap(path: str, frames: Sequence[Tuple[float, bytes]], pcapng: bool = False) -> str:
    with open(path, "wb") as f:
        writer = dpkt.pcapng.Writer(f) if pcapng else dpkt.pcap.Writer(f)
        for timestamp, frame in frames:
            writer.writepkt(frame, ts=timestamp)
    return path
