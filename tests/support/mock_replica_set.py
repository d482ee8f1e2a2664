"""A replica set of mockupdb servers, for the monitor and ReplicaSetConnection tests.

``MockReplicaSet`` runs one mockupdb server per member; every server answers ``hello`` and
``isMaster`` from one shared, changeable description of the set, so a test can elect a new
primary, take a member down, or move one to another set, and watch the client notice.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, Generator, List, Mapping, Optional, Tuple

import bson
from bson import ObjectId
from mockupdb import OP_MSG_FLAGS, MockupDB, OpMsg

from wireclient.errors import AutoReconnect
from wireclient.rules.uri import Address, format_address


class Member:
    """One mockupdb server and what it says about itself."""

    def __init__(self, rs: MockReplicaSet, index: int) -> None:
        self.rs = rs
        self.index = index
        self.server = MockupDB(request_timeout=5)
        self.server.run()
        # mockupdb binds IPv4 only; "localhost" could reach someone else's server on ::1
        self.address: Address = ("127.0.0.1", self.server.port)
        self.role = "secondary"  # primary | secondary | arbiter | hidden | passive | other
        self.up = True
        self.tags: Dict[str, str] = {}
        self.set_name: Optional[str] = None  # None: the set's name; "" : a standalone
        self.delay = 0.0  # seconds before answering hello (to fake a round-trip time)
        # hold() makes hello wait until release(): a check that hangs exactly as long as the
        # test wants, however slow the machine is; `held` is set once a hello is waiting.
        self._gate: Optional[threading.Event] = None
        self.held = threading.Event()
        self.hello_count = 0
        self.extra: Dict[str, Any] = {}
        self.log: List[Tuple[str, Dict[str, Any], int]] = []  # (command, doc, client port)
        self.next_reply: Optional[Dict[str, Any]] = None  # one-shot reply to the next command
        # Responders run most recent first: hello/isMaster before the catch-all.
        self.server.autoresponds(self._answer_command)
        for name in ("hello", "ismaster"):
            self.server.autoresponds(name, self._answer_hello)

    @property
    def host(self) -> str:
        return format_address(self.address)

    def _answer_hello(self, request: Any) -> bool:
        self.hello_count += 1
        if not self.up:
            return bool(request.hangup())
        gate = self._gate
        if gate is not None:
            self.held.set()
            gate.wait(120)
        if self.delay:
            time.sleep(self.delay)
        return bool(request.replies(self.rs.hello_for(self)))

    def hold(self) -> None:
        """From now on hello is not answered until release() (see ``held``)."""
        self.held.clear()
        self._gate = threading.Event()

    def release(self) -> None:
        """Answer the held hellos, and the next ones at once."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def _answer_command(self, request: Any) -> bool:
        """A tiny data member: writes on the primary only, reads where the read preference
        allows, ``whatsmyuri``, and ``ok`` for anything else. Every command is logged."""
        if not self.up:
            return bool(request.hangup())
        doc = dict(request.doc)
        name = str(request.command_name)
        self.log.append((name, doc, request.client_port))
        if self.next_reply is not None:
            reply, self.next_reply = self.next_reply, None
            return bool(request.replies(reply))
        if isinstance(request, OpMsg):
            secondary_ok = (doc.get("$readPreference") or {}).get("mode", "primary") != "primary"
        else:  # OP_QUERY (wire 4-5): the SlaveOk flag
            secondary_ok = bool(request.slave_ok)
        primary = self.role == "primary"
        if name in ("insert", "update", "delete", "findAndModify", "create", "drop"):
            if isinstance(request, OpMsg) and request.flags & OP_MSG_FLAGS["moreToCome"]:
                return True  # fire-and-forget: no reply
            if not primary:
                return bool(request.replies(ok=0, code=10107, errmsg="not primary"))
            return bool(request.replies(n=len(doc.get("documents", doc.get("updates", [])))))
        if name in ("find", "count", "aggregate", "distinct", "getMore"):
            if not primary and not secondary_ok:
                return bool(
                    request.replies(ok=0, code=13435, errmsg="not primary and secondaryOk=false")
                )
            if name == "count":
                return bool(request.replies(n=self.index))
            batch = [{"_id": self.index, "member": self.index, "port": request.client_port}]
            key = "nextBatch" if name == "getMore" else "firstBatch"
            return bool(request.replies(cursor={"id": 0, "ns": "db.c", key: batch}))
        if name == "whatsmyuri":
            return bool(request.replies(you=f"127.0.0.1:{request.client_port}"))
        return bool(request.replies(ok=1))

    def commands(self, name: str) -> List[Dict[str, Any]]:
        return [doc for command, doc, _ in self.log if command == name]

    def ports(self, name: str) -> List[int]:
        return [port for command, _, port in self.log if command == name]

    def stop(self) -> None:
        self.release()
        self.server.stop()


class MockReplicaSet:
    """``n`` members; member 0 starts as primary, the rest as secondaries."""

    def __init__(self, n: int = 3, set_name: str = "rs", max_wire_version: int = 17) -> None:
        self.set_name = set_name
        self.max_wire_version = max_wire_version
        self.members: List[Member] = [Member(self, i) for i in range(n)]
        self.members[0].role = "primary"
        self.election_id = ObjectId()
        self.set_version = 1

    def __getitem__(self, index: int) -> Member:
        return self.members[index]

    @property
    def seeds(self) -> str:
        return ",".join(m.host for m in self.members)

    @property
    def uri(self) -> str:
        return f"mongodb://{self.seeds}/?replicaSet={self.set_name}"

    def by_address(self, address: Address) -> Member:
        return next(m for m in self.members if m.address == address)

    def elect(self, index: Optional[int]) -> None:
        """Make member ``index`` primary (None: no primary); the old primary steps down."""
        for m in self.members:
            if m.role == "primary":
                m.role = "secondary"
        if index is not None:
            self.members[index].role = "primary"
            self.election_id = ObjectId()

    def hello_for(self, member: Member) -> Dict[str, Any]:
        if member.set_name == "":  # a standalone
            return {
                "ok": 1,
                "isWritablePrimary": True,
                "ismaster": True,
                "maxWireVersion": self.max_wire_version,
            }
        listed = [m for m in self.members if m.role not in ("hidden",)]
        reply: Dict[str, Any] = {
            "ok": 1,
            "setName": member.set_name or self.set_name,
            "hosts": [m.host for m in listed if m.role not in ("arbiter", "passive")],
            "passives": [m.host for m in listed if m.role == "passive"],
            "arbiters": [m.host for m in listed if m.role == "arbiter"],
            "me": member.host,
            "setVersion": self.set_version,
            "isWritablePrimary": member.role == "primary",
            "ismaster": member.role == "primary",
            "secondary": member.role in ("secondary", "hidden", "passive"),
            "maxWireVersion": self.max_wire_version,
            "minWireVersion": 0,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48000000,
            "maxWriteBatchSize": 100000,
            "localTime": None,
        }
        del reply["localTime"]
        primary = next((m for m in self.members if m.role == "primary"), None)
        if primary is not None:
            reply["primary"] = primary.host
        if member.role == "primary":
            reply["electionId"] = self.election_id
        if member.role == "arbiter":
            reply["arbiterOnly"] = True
        if member.role == "hidden":
            reply["hidden"] = True
        if member.role == "passive":
            reply["passive"] = True
        if member.tags:
            reply["tags"] = dict(member.tags)
        reply.update(member.extra)
        return reply

    def close(self) -> None:
        # mockupdb's stop() waits for its polling threads; stop the members in parallel
        stoppers = [threading.Thread(target=m.stop) for m in self.members]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()


def raw_hello(address: Address, timeout: float = 10.0) -> Tuple[Mapping[str, Any], float]:
    """Send ``hello`` as OP_QUERY on ``admin.$cmd`` over a fresh socket (no wireclient code),
    return ``(reply, seconds)``; ``AutoReconnect`` on any socket error."""
    started = time.monotonic()
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            body = struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1)
            body += bson.encode({"hello": 1})
            sock.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, 2004) + body)
            header = _recv_exactly(sock, 16)
            length, _, _, opcode = struct.unpack("<iiii", header)
            payload = _recv_exactly(sock, length - 16)
    except OSError as exc:
        raise AutoReconnect(f"{format_address(address)}: {exc}") from None
    if opcode != 1:
        raise AutoReconnect(f"unexpected opcode {opcode}")
    return bson.decode(payload[20:]), time.monotonic() - started


def as_step(
    check: Callable[[Address], Tuple[Mapping[str, Any], float]],
) -> Callable[[Address], Generator[Any, Any, Tuple[Mapping[str, Any], float]]]:
    """A blocking check function (``raw_hello``) as the monitor's ``check`` step: it blocks
    the monitor's thread, as a thread-flavoured monitor may (never an asyncio one's)."""

    def step(address: Address) -> Generator[Any, Any, Tuple[Mapping[str, Any], float]]:
        return check(address)
        yield  # a generator: the monitor runs it with ``yield from``

    return step


#: ``raw_hello`` as a check step.
hello_step = as_step(raw_hello)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed by server")
        chunks += chunk
    return chunks


def monitor_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wireclient-monitor")]
