"""Checker: the replica-set monitor's ``check(address)``, a ``hello`` per member.

Theory of operation
-------------------
The monitor (``monitor.py``) runs the step ``check(address)`` for each member, one at a
time, from its own task (a thread, a greenlet, or an asyncio Task: the step is the same).
The checker keeps one dedicated monitoring socket per member, opened (and handshaken: the
handshake's hello is the first check) when first needed and replaced when it breaks; it runs
``hello`` (``isMaster`` for servers that do not know it, remembered per socket by
``SocketInfo.run_hello``) and returns the reply with its round-trip time. A member whose
wire range misses wireclient's is checked like any other (its monitoring socket is not
refused): its hello classifies it, and the view marks the topology incompatible. After a
successful check it calls ``on_checked(address, reply)``, and runs the step it returns, if
any (the selector tops up that member's pool to ``minPoolSize``), and it publishes heartbeat
events when they are listened to. A check that fails on a monitoring socket that had worked
is retried once at once, on a new socket (SDAM: one dead idle socket does not make a member
Unknown); a check that still fails on the network calls ``on_failed(address, error)`` (the
selector clears and pauses that member's pool: if the monitor's socket is bad, the pool's
are likely bad too). It holds no reference to the connection, so a dropped connection's
monitor can end. In a forked child the parent's monitoring sockets are forgotten (closed
locally) before first use.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

from wireclient.errors import AutoReconnect
from wireclient.rules.uri import Address
from wireclient.transport import network
from wireclient.transport.steps import Steps

if TYPE_CHECKING:
    from wireclient.monitoring import EventPublisher


class Checker:
    """The monitor's ``check(address)``: ``hello`` over one monitoring socket per member.

    Used by the monitor task only (and by the constructor before the monitor starts). It
    holds no reference to the connection.
    """

    def __init__(
        self,
        connect_timeout: Optional[float],
        ssl_context: Any,
        app_name: Optional[str],
        on_checked: Callable[[Address, Mapping[str, Any]], Optional[Steps[None]]],
        events: Optional[EventPublisher] = None,
        compression: Any = None,
        on_failed: Optional[Callable[[Address, BaseException], None]] = None,
    ) -> None:
        self._events = events
        self._on_failed = on_failed  # clears and pauses the member's pool (weak: selector)
        # Offered in each monitoring socket's handshake, as on every socket (the handshake
        # and compression specs); its hellos are never compressed, replies may be.
        self._compression = compression
        self._on_checked = on_checked  # tops up member pools to minPoolSize (weak: selector)
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._app_name = app_name
        self._sockets: Dict[Address, network.SocketInfo] = {}
        self._pid = os.getpid()

    def check(self, address: Address) -> Steps[Tuple[Mapping[str, Any], float]]:
        events = self._events
        if events is None or events.heartbeat is None:
            return (yield from self._check(address))
        from wireclient.monitoring import HeartbeatEvent

        events.publish(events.heartbeat, "started", HeartbeatEvent(address))
        try:
            reply, rtt = yield from self._check(address)
        except Exception as exc:
            events.publish(events.heartbeat, "failed", HeartbeatEvent(address, failure=exc))
            raise
        events.publish(events.heartbeat, "succeeded", HeartbeatEvent(address, reply, rtt))
        return reply, rtt

    def _check(self, address: Address) -> Steps[Tuple[Mapping[str, Any], float]]:
        try:
            return (yield from self._check_with_retry(address))
        except AutoReconnect as exc:  # on the network (timeouts included), after any retry
            if self._on_failed is not None:
                self._on_failed(address, exc)
            raise

    def _check_with_retry(self, address: Address) -> Steps[Tuple[Mapping[str, Any], float]]:
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            sockets, self._sockets = self._sockets, {}
            self._pid = os.getpid()
            for old in sockets.values():
                old.close()
        sock = self._sockets.get(address)
        if sock is not None and not sock.closed:
            try:
                return (yield from self._hello_on(address, sock))
            except AutoReconnect:  # a socket that worked broke: retry once, on a new one
                if not sock.closed:
                    raise  # not the network's fault (the socket is intact): no retry
        return (yield from self._hello_on_new_socket(address))

    def _hello_on(
        self, address: Address, sock: network.SocketInfo
    ) -> Steps[Tuple[Mapping[str, Any], float]]:
        started = time.monotonic()
        try:
            reply = yield from sock.run_hello()
        finally:
            if sock.closed:
                self._sockets.pop(address, None)
        rtt = time.monotonic() - started
        yield from self._checked(address, reply)
        return reply, rtt

    def _hello_on_new_socket(self, address: Address) -> Steps[Tuple[Mapping[str, Any], float]]:
        """Open the member's monitoring socket: its handshake's hello is the check."""
        started = time.monotonic()
        sock = yield from network.connect(
            address,
            self._connect_timeout,
            self._connect_timeout,
            self._ssl_context,
            app_name=self._app_name,
            events=self._events,
            compression=self._compression,
            # a member outside our wire range keeps its type in the view, which then
            # refuses selection saying why (``TopologyView.compatibility_error``)
            refuse_incompatible=False,
        )
        self._sockets[address] = sock
        rtt = time.monotonic() - started  # the handshake is a hello
        yield from self._checked(address, sock.hello)
        return sock.hello, rtt

    def _checked(self, address: Address, reply: Mapping[str, Any]) -> Steps[None]:
        """Tell ``on_checked``, and run the step it returns (filling a pool), if any."""
        then = self._on_checked(address, reply)
        if then is not None:
            yield from then

    def forget(self, address: Address) -> None:
        sock = self._sockets.pop(address, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        sockets, self._sockets = self._sockets, {}
        for sock in sockets.values():
            sock.close()
