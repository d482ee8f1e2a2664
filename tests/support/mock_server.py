"""One mockupdb server for the API tests (test_collection, test_cursor, test_database,
test_connection): it records every frame exactly as it arrives, so a test can check the
command documents the public API builds.

``MockServer(max_wire=17, **hello_fields)`` answers the handshake (``hello`` and
``isMaster``) itself, recording each one in ``hellos``; every other request waits in a queue
for the test: ``server.receives("insert")`` pops the next one as a ``Received``, which holds
the frame taken apart by a parser of our own (not wireclient's): the OP_MSG flags, the
kind-0 ``body`` and the kind-1 ``sequences`` kept apart, or the OP_QUERY namespace. The
client's call runs in a thread (``server.run(fn, ...)`` returns a ``concurrent.futures``
future, which keeps exception attributes, unlike ``mockupdb.go``) while the test answers.

mockupdb merges kind-1 sequences into the command document and drops the raw bytes, so
this module wraps ``mockupdb.mock_server_receive_request`` (the function its server loop
calls for each frame) with one that also keeps the frame on the request as ``.frame``.
"""

from __future__ import annotations

import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import bson
import mockupdb
from bson import Int64
from bson.codec_options import CodecOptions

from wireclient import Connection

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
CHECKSUM_PRESENT, MORE_TO_COME = 1, 2
TIMEOUT = 15.0  # waits that end at once unless the test fails; socket timeouts of what must work


def _receive_and_keep_frame(client: Any, server: Any) -> Any:
    """mockupdb's ``mock_server_receive_request``, keeping the whole frame as ``.frame``."""
    header = mockupdb.mock_server_receive(client, 16)
    length, request_id, _, op_code = struct.unpack("<iiii", header)
    body = mockupdb.mock_server_receive(client, length - 16)
    if op_code not in mockupdb.OPCODES:
        raise NotImplementedError(f"mockupdb cannot unpack opcode {op_code}")
    request = mockupdb.OPCODES[op_code].unpack(body, client, server, request_id)
    request.frame = header + body
    return request


mockupdb.mock_server_receive_request = _receive_and_keep_frame


def typed(value: Any) -> Any:
    """``value`` with every number tagged by its BSON type, so that comparisons tell
    ``True`` from ``1`` and an int32 from an int64 (Python's ``==`` does not). A Python int
    outside the int32 range can only be sent as an int64, so it is tagged int64."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, Int64):
        return ("int64", int(value))
    if isinstance(value, int):
        return ("int32" if -(2**31) <= value < 2**31 else "int64", value)
    if isinstance(value, float):
        return ("double", value)
    if isinstance(value, Mapping):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [typed(item) for item in value]
    return value


class Doc(Dict[str, Any]):
    """A received document: equal to a mapping only if the BSON types match too (see
    ``typed``); every nested document decodes as a Doc as well."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return bool(typed(self) == typed(other))

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]


_DECODE = CodecOptions(document_class=Doc)


def parse_op_msg(frame: bytes) -> Tuple[int, Dict[str, Any], Dict[str, List[Dict[str, Any]]]]:
    """(flags, kind-0 body, {identifier: documents} of the kind-1 sections) of an OP_MSG."""
    (flags,) = struct.unpack_from("<I", frame, 16)
    end = len(frame) - (4 if flags & CHECKSUM_PRESENT else 0)
    pos = 20
    body: Optional[Dict[str, Any]] = None
    sequences: Dict[str, List[Dict[str, Any]]] = {}
    while pos < end:
        kind = frame[pos]
        pos += 1
        (size,) = struct.unpack_from("<i", frame, pos)
        if kind == 0:
            assert body is None, "an OP_MSG with two kind-0 sections"
            body = bson.decode(frame[pos : pos + size], _DECODE)
        elif kind == 1:
            name_end = frame.index(b"\x00", pos + 4)
            identifier = frame[pos + 4 : name_end].decode()
            assert identifier not in sequences, f"two kind-1 sections named {identifier!r}"
            sequences[identifier] = bson.decode_all(frame[name_end + 1 : pos + size], _DECODE)
        else:
            raise AssertionError(f"OP_MSG section of kind {kind}")
        pos += size
    assert pos == end, "OP_MSG sections do not fill the frame"
    assert body is not None, "an OP_MSG without a kind-0 section"
    return flags, body, sequences


def parse_op_query(frame: bytes) -> Tuple[int, str, int, int, Dict[str, Any]]:
    """(flags, full collection name, numberToSkip, numberToReturn, query) of an OP_QUERY."""
    (flags,) = struct.unpack_from("<I", frame, 16)
    name_end = frame.index(b"\x00", 20)
    namespace = frame[20:name_end].decode()
    skip, number_to_return = struct.unpack_from("<ii", frame, name_end + 1)
    start = name_end + 9
    (size,) = struct.unpack_from("<i", frame, start)
    return (
        flags,
        namespace,
        skip,
        number_to_return,
        bson.decode(frame[start : start + size], _DECODE),
    )


class Received:
    """One request as it arrived: ``op_code``, ``flags``, ``body`` (the kind-0 document of an
    OP_MSG, or the query of an OP_QUERY), ``sequences`` (kind-1, by identifier; always empty
    for OP_QUERY), ``namespace`` (OP_QUERY only: ``db.$cmd``), ``number_to_return``,
    ``port`` (the client's TCP port: which socket), and ``request`` (mockupdb's)."""

    def __init__(self, request: Any) -> None:
        self.request = request
        frame: bytes = request.frame
        self.op_code: int = struct.unpack_from("<i", frame, 12)[0]
        self.namespace: Optional[str] = None
        self.number_to_return: Optional[int] = None
        self.sequences: Dict[str, List[Dict[str, Any]]] = {}
        if self.op_code == OP_MSG:
            self.flags, self.body, self.sequences = parse_op_msg(frame)
        elif self.op_code == OP_QUERY:
            self.flags, self.namespace, _, self.number_to_return, self.body = parse_op_query(frame)
        else:
            raise AssertionError(f"unexpected opcode {self.op_code}")
        self.port: int = request.client_port

    @property
    def command_name(self) -> str:
        return next(iter(self.body))

    @property
    def more_to_come(self) -> bool:
        return self.op_code == OP_MSG and bool(self.flags & MORE_TO_COME)

    def reply(self, *args: Any, **fields: Any) -> None:
        """Answer (``ok: 1`` is added unless given)."""
        assert not self.more_to_come, "a moreToCome message gets no reply"
        self.request.replies(*args, **fields)

    def error(self, code: int, errmsg: str = "mock failure", **fields: Any) -> None:
        self.reply(ok=0, code=code, errmsg=errmsg, **fields)

    def __repr__(self) -> str:
        return f"<Received op={self.op_code} flags={self.flags} body={self.body!r}>"


def hello_reply(max_wire: int = 17, **extra: Any) -> Dict[str, Any]:
    reply: Dict[str, Any] = {
        "ok": 1,
        "isWritablePrimary": True,
        "ismaster": True,
        "helloOk": True,
        "maxWireVersion": max_wire,
        "minWireVersion": 0,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "connectionId": 1,
    }
    reply.update(extra)
    return reply


class MockServer:
    """A MockupDB that answers handshakes and queues everything else for the test."""

    def __init__(self, max_wire: int = 17, **hello_fields: Any) -> None:
        self.max_wire = max_wire
        self.hello = hello_reply(max_wire, **hello_fields)
        self.hellos: List[Received] = []
        self.server = mockupdb.MockupDB(request_timeout=TIMEOUT)
        self.server.autoresponds(self._answer_hello)
        self.server.run()
        # mockupdb binds IPv4 only; "localhost" could reach another server on ::1
        self.address = ("127.0.0.1", self.server.port)
        self.uri = f"mongodb://127.0.0.1:{self.server.port}"
        self._executor = ThreadPoolExecutor(max_workers=8)
        self._connections: List[Connection] = []

    def _answer_hello(self, request: Any) -> bool:
        if str(request.command_name).lower() not in ("hello", "ismaster"):
            return False
        self.hellos.append(Received(request))
        return bool(request.replies(self.hello))

    def connect(self, *args: Any, **kwargs: Any) -> Connection:
        """``Connection(self.uri, auto_start_request=False, socketTimeoutMS=15000, ...)``."""
        kwargs.setdefault("auto_start_request", False)
        kwargs.setdefault("socketTimeoutMS", int(TIMEOUT * 1000))
        kwargs.setdefault("connectTimeoutMS", int(TIMEOUT * 1000))
        conn = Connection(*(args or (self.uri,)), **kwargs)
        self._connections.append(conn)
        return conn

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Call ``fn`` in another thread (the test answers it meanwhile)."""
        return self._executor.submit(fn, *args, **kwargs)

    def receives(
        self, name: Optional[str] = None, db: str = "test", timeout: float = TIMEOUT
    ) -> Received:
        """The next request, checked to be a command ``name`` on database ``db``, sent the
        way this server's wire version asks: OP_MSG with ``$db`` (wire 6+), or OP_QUERY on
        ``db.$cmd`` without ``$db`` (wire 4 and 5)."""
        got = Received(self.server.receives(timeout=timeout))
        if name is not None:
            assert got.command_name == name, got  # the command name is the first key
        if self.max_wire >= 6:
            assert got.op_code == OP_MSG, got
            assert got.body.get("$db") == db, got
            assert (got.flags & ~MORE_TO_COME) == 0, got
        else:
            assert got.op_code == OP_QUERY, got
            assert got.namespace == f"{db}.$cmd", got
            assert got.number_to_return == -1, got
            assert "$db" not in got.body, got
        return got

    def assert_nothing_received(self, timeout: float = 0.3) -> None:
        assert not self.server.got(timeout=timeout), "the server received a request"

    def stop(self) -> None:
        for conn in self._connections:
            conn.close()
        self._executor.shutdown(wait=False)
        # stop() closes the sockets at once, then waits up to 1 s for mockupdb's accept
        # loop (it polls once a second): let that wait happen in the background.
        threading.Thread(target=self.server.stop, daemon=True).start()

    def __enter__(self) -> MockServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
