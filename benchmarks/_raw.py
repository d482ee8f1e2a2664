"""The bare-socket floor the benchmarks compare against: no client can do less.

One handshaken socket. Each operation encodes its command with one ``bson.encode`` call,
prefixes a header packed by a precompiled ``struct`` (the only per-call framing work), sends
it with one ``sendall``, reads the reply into a reused buffer with ``recv_into`` and decodes
it with one ``bson.decode``. No checks, no options, no pool, no error handling: what is left
of a driver when everything a driver is for is taken away.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable, Dict, Mapping

import bson

_HEADER = struct.Struct("<iiiiI")  # messageLength, requestID, responseTo, opCode, flagBits
_SEQ = struct.Struct("<i")
OP_MSG = 2013
MORE_TO_COME = 2


class RawClient:
    """OP_MSG over one socket, with nothing a real client adds."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 16)
        self.request_id = 0
        # The same handshake a client makes (servers may treat handshaken sockets differently).
        self.command({"hello": 1, "client": {"driver": {"name": "raw", "version": "0"}}}, "admin")

    def _send(self, body: bytes, flags: int = 0) -> None:
        self.request_id += 1
        header = _HEADER.pack(21 + len(body), self.request_id, 0, OP_MSG, flags)
        self.sock.sendall(b"".join((header, b"\x00", body)))

    def _receive(self) -> Dict[str, Any]:
        sock, buf = self.sock, self.buf
        view = memoryview(buf)
        have = sock.recv_into(view)
        while have < 4:
            have += sock.recv_into(view[have:])
        length = _SEQ.unpack_from(buf, 0)[0]
        if length > len(buf):
            self.buf = buf = bytearray(length)
            buf[:have] = view[:have]
            view = memoryview(buf)
        while have < length:
            have += sock.recv_into(view[have:length])
        return bson.decode(view[21:length])  # header + flagBits + section kind 0

    def command(self, doc: Mapping[str, Any], db: str) -> Dict[str, Any]:
        body = bson.encode({**doc, "$db": db})
        self._send(body)
        return self._receive()

    def command_body(self, body: bytes) -> Dict[str, Any]:
        """A command already encoded (``$db`` included): framing and the round trip only."""
        self._send(body)
        return self._receive()

    def fire_and_forget(self, doc: Mapping[str, Any], db: str) -> None:
        """moreToCome: the server sends no reply (w=0)."""
        self._send(bson.encode({**doc, "$db": db}), MORE_TO_COME)

    def find_all(self, db: str, coll: str) -> int:
        """find with an empty filter, then getMore until the cursor is exhausted."""
        reply = self.command({"find": coll, "filter": {}}, db)
        cursor = reply["cursor"]
        count = len(cursor["firstBatch"])
        while cursor["id"]:
            cursor = self.command({"getMore": cursor["id"], "collection": coll}, db)["cursor"]
            count += len(cursor["nextBatch"])
        return count

    def close(self) -> None:
        self.sock.close()


def raw_pinger(host: str, port: int) -> Callable[[], None]:
    """A ping over its own socket, the command pre-encoded: for the greenlet benchmarks."""
    client = RawClient(host, port)
    body = bson.encode({"ping": 1, "$db": "admin"})

    def op() -> None:
        client.command_body(body)

    return op
