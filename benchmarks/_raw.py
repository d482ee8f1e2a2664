"""The bare-socket floor the benchmarks compare against: no client can do less."""

from __future__ import annotations

import socket
import struct
from typing import Callable

import bson


def raw_pinger(host: str, port: int) -> Callable[[], None]:
    """One handshaken socket sending a pre-built OP_MSG ping (only the requestID is patched
    in) and reading the reply's bytes without decoding them."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # The same handshake a client makes (servers may treat handshaken sockets differently).
    hello = bson.encode({"hello": 1, "helloOk": True, "client": {"driver": {"name": "raw"}}})
    query = struct.pack("<iI", 0, 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + hello
    sock.sendall(struct.pack("<iiii", 16 + len(query), 1, 0, 2004) + query)
    sock.recv(65536)
    body = bson.encode({"ping": 1, "$db": "admin"})
    frame = bytearray(struct.pack("<iiiiI", 21 + len(body), 0, 0, 2013, 0) + b"\x00" + body)
    buf = bytearray(65536)
    view = memoryview(buf)
    counter = [0]

    def op() -> None:
        counter[0] += 1
        struct.pack_into("<i", frame, 4, counter[0])
        sock.sendall(frame)
        have = sock.recv_into(view)
        length = struct.unpack_from("<i", buf, 0)[0]
        while have < length:
            have += sock.recv_into(view[have:])

    return op
