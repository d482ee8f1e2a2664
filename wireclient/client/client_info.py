"""What a Connection tells about its server from the server's own ``hello``.

pymongo 2.8 users read ``is_primary``, ``is_mongos``, ``max_bson_size``,
``max_message_size``, ``max_write_batch_size``, ``min_wire_version``, ``max_wire_version``
and ``nodes`` off the connection, and call ``alive()``.

Where the values come from: the handshake of the newest socket the connection opened to
that server (for a replica set, to its primary). Every pool socket is opened by the
connection's connector (``Connection._connector``), which records the handshake reply in a
``HelloLog`` as it returns the socket, so the pools keep no extra state and nothing but
the connection reads it. When the log has nothing for that server yet (a replica-set
connection has only its monitor's sockets until its first operation), one ``ping`` runs on
the operation path: it opens a pool socket, whose handshake the connector records. A
replica set without a primary reports 2.8's defaults (16 MB documents, wire version 0)
instead of waiting for one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, FrozenSet, List, Mapping, Optional

from wireclient.errors import ConnectionFailure
from wireclient.rules.uri import Address
from wireclient.rules.wire import (
    DEFAULT_MAX_BSON_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_WRITE_BATCH_SIZE,
)

if TYPE_CHECKING:
    from wireclient.engine.executor import Executor


class HelloLog:
    """The latest handshake reply per server address, recorded by the connector."""

    __slots__ = ("_replies", "_lock")

    def __init__(self) -> None:
        self._replies: Dict[Address, Dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, address: Address, reply: Mapping[str, Any]) -> None:
        with self._lock:
            self._replies[address] = dict(reply)

    def latest(self, address: Address) -> Optional[Dict[str, Any]]:
        with self._lock:
            return self._replies.get(address)


class ServerInfo:
    """The pymongo 2.8 properties a Connection reads from its server's handshake."""

    _hello_log: HelloLog
    _executor: Executor

    def _hello_address(self) -> Optional[Address]:
        """The server whose handshake answers (None: a replica set without a primary)."""
        return self._executor.selector.primary_address()

    def _server_hello(self) -> Dict[str, Any]:
        address = self._hello_address()
        if address is None:
            return {}
        hello = self._hello_log.latest(address)
        if hello is None:  # no pool socket opened yet: open one on the operation path
            self._executor.run("admin", {"ping": 1})
            hello = self._hello_log.latest(address) or {}
        return hello

    @property
    def is_primary(self) -> bool:
        """Whether the server (a replica set's primary) accepts writes, by its handshake."""
        hello = self._server_hello()
        return bool(hello.get("isWritablePrimary") or hello.get("ismaster"))

    @property
    def is_mongos(self) -> bool:
        """Whether the server is a mongos (its handshake says ``msg: 'isdbgrid'``)."""
        return self._server_hello().get("msg") == "isdbgrid"

    @property
    def max_bson_size(self) -> int:
        """The largest document the server accepts (``maxBsonObjectSize``), in bytes."""
        return int(self._server_hello().get("maxBsonObjectSize", DEFAULT_MAX_BSON_SIZE))

    @property
    def max_message_size(self) -> int:
        """The largest message the server accepts (``maxMessageSizeBytes``), in bytes."""
        hello = self._server_hello()
        return int(hello.get("maxMessageSizeBytes", DEFAULT_MAX_MESSAGE_SIZE))

    @property
    def max_write_batch_size(self) -> int:
        """The most statements one write command may carry (``maxWriteBatchSize``)."""
        hello = self._server_hello()
        return int(hello.get("maxWriteBatchSize", DEFAULT_MAX_WRITE_BATCH_SIZE))

    @property
    def min_wire_version(self) -> int:
        return int(self._server_hello().get("minWireVersion", 0))

    @property
    def max_wire_version(self) -> int:
        return int(self._server_hello().get("maxWireVersion", 0))

    @property
    def nodes(self) -> FrozenSet[Address]:
        """Every server this connection knows: ``{(host, port)}`` (a replica set: all its
        members)."""
        return frozenset(pool.address for pool in self._executor.selector.pools())

    # pymongo 4's MongoClient answers these for any deployment; a connection to one server
    # is not a replica-set connection, so it has no primary, secondaries or arbiters.
    # (ReplicaSetConnection answers them from its view: replica_set_info.py.)

    @property
    def primary(self) -> Optional[Address]:
        return None

    @property
    def secondaries(self) -> List[Address]:
        return []

    @property
    def arbiters(self) -> List[Address]:
        return []

    def _alive_target(self) -> bool:
        """Whether there is a server to ask (a replica set may have no primary now)."""
        return True

    def alive(self) -> bool:
        """Whether the server (a replica set's primary) answers now: one ``ping`` on the
        caller's socket (its request's, if it is in one). False on any connection error,
        and at once for a replica set that has no primary."""
        if not self._alive_target():
            return False
        try:
            self._executor.run("admin", {"ping": 1})
        except ConnectionFailure:
            return False
        return True


__all__ = ["HelloLog", "ServerInfo"]
