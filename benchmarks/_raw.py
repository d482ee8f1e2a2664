"""The bare-socket floor the benchmarks compare against: no client can do less.

One handshaken socket. Each operation encodes its command with one ``bson.encode`` call,
prefixes a header packed by a precompiled ``struct`` (the only per-call framing work), sends
it with one ``sendall``, reads the reply into a reused buffer with ``recv_into`` and decodes
it with one ``bson.decode``. No checks, no options, no pool, no error handling: what is left
of a driver when everything a driver is for is taken away.

For many callers at once (``bench_concurrency.py``) the floor is a few such sockets shared
through the least a pool can be: ``RawPool`` (threads, and greenlets after gevent's
``patch_all()``) hands them out through one ``queue.SimpleQueue``, and ``AsyncRawPool``
(asyncio Tasks) through one ``asyncio.Queue`` of ``asyncio.BufferedProtocol`` connections.
Both send frames built before the timing (``op_msg``) as they are. For one asyncio caller
(``bench_asyncio.py``), ``AsyncRawClient`` does what ``RawClient`` does over one such
connection.
"""

from __future__ import annotations

import asyncio
import queue
import socket
import struct
from typing import Any, Callable, Dict, List, Mapping, Optional, Union, cast

import bson

_HEADER = struct.Struct("<iiiiI")  # messageLength, requestID, responseTo, opCode, flagBits
_SEQ = struct.Struct("<i")
OP_MSG = 2013
MORE_TO_COME = 2
HELLO = {"hello": 1, "client": {"driver": {"name": "raw", "version": "0"}}}
Frame = Union[bytes, bytearray]


def op_msg(body: bytes, request_id: int = 1, flags: int = 0) -> bytes:
    """A whole OP_MSG frame with one kind-0 section, ``body`` being the encoded command
    (``$db`` included): built once, sent as often as wanted (the server does not mind a
    requestID used again, each reply only answering the request before it on its socket)."""
    return _HEADER.pack(21 + len(body), request_id, 0, OP_MSG, flags) + b"\x00" + body


class RawClient:
    """OP_MSG over one socket, with nothing a real client adds."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 16)
        self.request_id = 0
        # The same handshake a client makes (servers may treat handshaken sockets differently).
        self.command(HELLO, "admin")

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

    def round_trip(self, frame: Frame) -> Dict[str, Any]:
        """A whole frame built beforehand (``op_msg``): one ``sendall``, then the reply."""
        self.sock.sendall(frame)
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


class RawPool:
    """``size`` handshaken ``RawClient`` sockets shared by any number of callers.

    A caller takes a socket from one ``queue.SimpleQueue`` (C code under threads; gevent's
    cooperative one after ``patch_all()``), waiting while every socket is out, sends a frame
    built beforehand, reads the reply and puts the socket back. The sockets are blocking
    (no timeout), as a client's are with no ``socketTimeoutMS``: a socket with a timeout
    costs a ``poll`` before every ``recv``.
    """

    def __init__(self, host: str, port: int, size: int) -> None:
        self.clients = [RawClient(host, port) for _ in range(size)]
        self.idle: queue.SimpleQueue[RawClient] = queue.SimpleQueue()
        for client in self.clients:
            client.sock.settimeout(None)
            self.idle.put(client)

    def round_trip(self, frame: Frame) -> Dict[str, Any]:
        client = self.idle.get()
        try:
            return client.round_trip(frame)
        finally:
            self.idle.put(client)

    def close(self) -> None:
        for client in self.clients:
            client.close()


class _FloorProtocol(asyncio.BufferedProtocol):
    """One connection of an ``AsyncRawPool``: the event loop reads into one reused buffer;
    once a whole reply is in, it is decoded and handed to the one caller waiting for it."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buf = bytearray(1 << 16)
        self.have = 0
        self.waiter: Optional[asyncio.Future[Dict[str, Any]]] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buf)[self.have :]

    def buffer_updated(self, nbytes: int) -> None:
        self.have += nbytes
        if self.have < 4:
            return
        length = _SEQ.unpack_from(self.buf, 0)[0]
        if length > len(self.buf):  # a new buffer, the old one may still be exported
            self.buf = self.buf[: self.have] + bytearray(length - self.have)
        if self.have < length:
            return
        self.have = 0  # one request in flight per connection: nothing follows the reply
        reply = bson.decode(memoryview(self.buf)[21:length])
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(reply)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("connection closed"))

    async def round_trip(self, frame: Frame) -> Dict[str, Any]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(frame)
        return await self.waiter


class AsyncRawPool:
    """The asyncio floor: ``size`` handshaken connections (``asyncio.BufferedProtocol``,
    which asyncio keeps registered for reading: no ``add_reader``/``remove_reader`` and no
    failed ``recv`` per reply, as ``loop.sock_recv`` has) shared by any number of Tasks
    through one ``asyncio.Queue``. Open it with ``await AsyncRawPool.open(...)`` on the loop
    that will use it (its transports belong to that loop)."""

    def __init__(self, protocols: List[_FloorProtocol]) -> None:
        self.protocols = protocols
        self.idle: asyncio.Queue[_FloorProtocol] = asyncio.Queue()
        for protocol in protocols:
            self.idle.put_nowait(protocol)

    @classmethod
    async def open(cls, host: str, port: int, size: int) -> AsyncRawPool:
        loop = asyncio.get_running_loop()
        hello = op_msg(bson.encode({**HELLO, "$db": "admin"}))
        protocols = []
        for _ in range(size):  # asyncio sets TCP_NODELAY on its TCP transports
            _, protocol = await loop.create_connection(_FloorProtocol, host, port)
            await protocol.round_trip(hello)
            protocols.append(protocol)
        return cls(protocols)

    async def round_trip(self, frame: Frame) -> Dict[str, Any]:
        protocol = await self.idle.get()
        try:
            return await protocol.round_trip(frame)
        finally:
            self.idle.put_nowait(protocol)

    def close(self) -> None:
        for protocol in self.protocols:
            if protocol.transport is not None:
                protocol.transport.close()


class AsyncRawClient:
    """The asyncio floor for one caller (``bench_asyncio.py``): one ``_FloorProtocol``
    connection on the running loop doing what ``RawClient`` does (one ``bson.encode`` per
    command, a header packed by a precompiled ``struct``, one ``transport.write``, the reply
    read by the loop into a reused buffer and decoded with one ``bson.decode``). Open it with
    ``await AsyncRawClient.open(...)`` on the loop that will use it."""

    def __init__(self, protocol: _FloorProtocol) -> None:
        self.protocol = protocol
        self.request_id = 0

    @classmethod
    async def open(cls, host: str, port: int) -> AsyncRawClient:
        _, protocol = await asyncio.get_running_loop().create_connection(_FloorProtocol, host, port)
        client = cls(protocol)
        await client.command(HELLO, "admin")
        return client

    def _frame(self, body: bytes, flags: int = 0) -> bytes:
        self.request_id += 1
        header = _HEADER.pack(21 + len(body), self.request_id, 0, OP_MSG, flags)
        return b"".join((header, b"\x00", body))

    async def command(self, doc: Mapping[str, Any], db: str) -> Dict[str, Any]:
        return await self.protocol.round_trip(self._frame(bson.encode({**doc, "$db": db})))

    def fire_and_forget(self, doc: Mapping[str, Any], db: str) -> None:
        """moreToCome: the server sends no reply (w=0); the loop writes what the socket
        did not take at once."""
        frame = self._frame(bson.encode({**doc, "$db": db}), MORE_TO_COME)
        assert self.protocol.transport is not None
        self.protocol.transport.write(frame)

    async def find_all(self, db: str, coll: str) -> int:
        reply = await self.command({"find": coll, "filter": {}}, db)
        cursor = reply["cursor"]
        count = len(cursor["firstBatch"])
        while cursor["id"]:
            more = await self.command({"getMore": cursor["id"], "collection": coll}, db)
            cursor = more["cursor"]
            count += len(cursor["nextBatch"])
        return count

    def close(self) -> None:
        if self.protocol.transport is not None:
            self.protocol.transport.close()
