"""Topologies of mock servers: a replica set, or a list of mongos routers.

Theory of operation: each member is a plain ``MockServer`` whose automatic hello carries
the topology's fields (``set_hello``); the topology object owns the one description of
who is primary and rewrites every member's fields whenever it changes, so a client's next
hello (a heartbeat, or the check after a "not primary" error) sees the new state. A
replica set's primary carries an ``electionId`` that grows with each election, so a
client that follows the (electionId, setVersion) rule accepts the newest primary and not a
stale one. No thread of its own: the members' threads do the serving.
"""

from __future__ import annotations

import itertools
from concurrent.futures import Future
from typing import Any, Callable, List, Optional, TypeVar

from bson import ObjectId

from wireclient.mock.server import MockServer

T = TypeVar("T")


class _Topology:
    servers: List[MockServer]

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __getitem__(self, index: int) -> MockServer:
        return self.servers[index]

    def __len__(self) -> int:
        return len(self.servers)

    @property
    def hosts(self) -> List[str]:
        return [server.address_string for server in self.servers]

    def go(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """``MockServer.go`` on the first member's executor."""
        return self.servers[0].go(fn, *args, **kwargs)


class ReplicaSet(_Topology):
    """``members`` mock servers forming the replica set ``set_name``; ``primary`` is the
    index of the first primary (None: no primary yet). Other keywords go to each
    ``MockServer``. Started on construction; a context manager."""

    def __init__(
        self,
        members: int = 3,
        set_name: str = "rs",
        primary: Optional[int] = 0,
        **server_options: Any,
    ) -> None:
        if members < 1:
            raise ValueError("a replica set needs at least one member")
        self.set_name = set_name
        self.set_version = 1
        self._elections = itertools.count(1)
        self.servers = []
        try:
            for _ in range(members):
                self.servers.append(MockServer(**server_options).start())
        except BaseException:
            self.close()
            raise
        self._primary: Optional[int] = None
        self._election_id: Optional[ObjectId] = None
        if primary is None:
            self._publish()
        else:
            self.elect(primary)

    @property
    def uri(self) -> str:
        return f"mongodb://{','.join(self.hosts)}/?replicaSet={self.set_name}"

    @property
    def primary(self) -> Optional[MockServer]:
        return None if self._primary is None else self.servers[self._primary]

    @property
    def secondaries(self) -> List[MockServer]:
        return [s for i, s in enumerate(self.servers) if i != self._primary]

    def elect(self, member: Any) -> MockServer:
        """Make ``member`` (an index or a member) the primary, with a new electionId."""
        index = member if isinstance(member, int) else self.servers.index(member)
        self._primary = index
        self._election_id = ObjectId(next(self._elections).to_bytes(12, "big"))
        self._publish()
        return self.servers[index]

    def step_down(self) -> None:
        """The primary becomes a secondary; the set has no primary until ``elect``."""
        self._primary = None
        self._publish()

    def _publish(self) -> None:
        hosts = self.hosts
        primary = None if self._primary is None else hosts[self._primary]
        for index, server in enumerate(self.servers):
            is_primary = index == self._primary
            server.set_hello(
                setName=self.set_name,
                setVersion=self.set_version,
                hosts=hosts,
                me=hosts[index],
                primary=primary,
                isWritablePrimary=is_primary,
                secondary=not is_primary,
                electionId=self._election_id if is_primary else None,
            )


class Routers(_Topology):
    """``count`` mock servers answering hello as mongos routers (``msg: "isdbgrid"``)."""

    def __init__(self, count: int = 2, **server_options: Any) -> None:
        self.servers = []
        try:
            for _ in range(count):
                server = MockServer(**server_options).start()
                server.set_hello(msg="isdbgrid")
                self.servers.append(server)
        except BaseException:
            self.close()
            raise

    @property
    def uri(self) -> str:
        return f"mongodb://{','.join(self.hosts)}"


__all__ = ["ReplicaSet", "Routers"]
