"""mongos routers made of mockupdb servers, for the tests of a Connection to several hosts.

``MockRouters(n)`` runs ``n`` mockupdb servers that answer ``hello`` / ``isMaster`` as mongos
routers (``msg: "isdbgrid"``). Each one is a ``mock_replica_set.Member`` (the same tiny
data server: every command logged with the client's port, writes and reads answered, a
``find`` answering with the router's index and the client port, ``up`` / ``delay`` to take
it down or slow its ``hello``), whose ``hello`` comes from here; ``kind`` turns one into a
standalone server or a replica-set member instead.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List

from mock_replica_set import Member


class MockRouters:
    """``n`` mongos routers (see the module notes)."""

    def __init__(self, n: int = 3, max_wire_version: int = 17) -> None:
        self.max_wire_version = max_wire_version
        self.members: List[Member] = [Member(self, i) for i in range(n)]  # type: ignore[arg-type]
        self.kinds: Dict[int, str] = {}  # index -> "standalone" | "member" (default: mongos)
        for member in self.members:
            member.role = "primary"  # a router takes writes and reads alike

    def __getitem__(self, index: int) -> Member:
        return self.members[index]

    @property
    def seeds(self) -> str:
        return ",".join(m.host for m in self.members)

    @property
    def uri(self) -> str:
        return f"mongodb://{self.seeds}"

    def hello_for(self, member: Member) -> Dict[str, Any]:
        reply: Dict[str, Any] = {
            "ok": 1,
            "isWritablePrimary": True,
            "ismaster": True,
            "helloOk": True,
            "maxWireVersion": self.max_wire_version,
            "minWireVersion": 0,
            "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000,
        }
        kind = self.kinds.get(member.index, "mongos")
        if kind == "mongos":
            reply["msg"] = "isdbgrid"
        elif kind == "member":
            reply.update(setName="rs", hosts=[member.host], me=member.host, setVersion=1)
        reply.update(member.extra)
        return reply

    def close(self) -> None:
        # mockupdb's stop() waits for its polling threads; stop the routers in parallel
        stoppers = [threading.Thread(target=m.stop) for m in self.members]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
