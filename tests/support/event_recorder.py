"""A listener that records every event of every kind, in order, as (name, event): the
command and heartbeat listeners' shared method names, and the server and topology ones, are
told apart by the event's class."""

from __future__ import annotations

import threading
from typing import Any, List, Tuple

from wireclient import monitoring


class Recorder(
    monitoring.CommandListener,
    monitoring.FrameListener,
    monitoring.PoolListener,
    monitoring.ServerListener,
    monitoring.TopologyListener,
    monitoring.HeartbeatListener,
):
    """Records (method, event) for every event of every kind."""

    def __init__(self) -> None:
        self.events: List[Tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _add(self, name: str, event: Any) -> None:
        with self.lock:
            self.events.append((name, event))

    def names(self) -> List[str]:
        with self.lock:
            return [name for name, _ in self.events]

    def of(self, name: str) -> List[Any]:
        with self.lock:
            return [e for n, e in self.events if n == name]


for _name in (
    "pool_created",
    "pool_ready",
    "pool_closed",
    "connection_created",
    "connection_ready",
    "connection_check_out_started",
    "connection_check_out_failed",
    "connection_checked_out",
    "connection_checked_in",
    "connection_closed",
    "pool_cleared",
    "request_started",
    "request_ended",
    "sent",
    "received",
):
    setattr(Recorder, _name, lambda self, event, _n=_name: self._add(_n, event))

# The command and heartbeat listeners share method names: record them by kind.
Recorder.started = lambda self, e: self._add(  # type: ignore[method-assign]
    "heartbeat_started" if isinstance(e, monitoring.HeartbeatEvent) else "command_started", e
)
Recorder.succeeded = lambda self, e: self._add(  # type: ignore[method-assign]
    "heartbeat_succeeded" if isinstance(e, monitoring.HeartbeatEvent) else "command_succeeded",
    e,
)
Recorder.failed = lambda self, e: self._add(  # type: ignore[method-assign]
    "heartbeat_failed" if isinstance(e, monitoring.HeartbeatEvent) else "command_failed", e
)
Recorder.description_changed = lambda self, e: self._add(  # type: ignore[method-assign]
    "topology_changed"
    if isinstance(e, monitoring.TopologyDescriptionChangedEvent)
    else "server_changed",
    e,
)
# ...and so do the server and topology listeners: opened / closed.
Recorder.opened = lambda self, e: self._add(  # type: ignore[method-assign]
    "topology_opened" if isinstance(e, monitoring.TopologyOpeningEvent) else "server_opened", e
)
Recorder.closed = lambda self, e: self._add(  # type: ignore[method-assign]
    "topology_closed" if isinstance(e, monitoring.TopologyClosedEvent) else "server_closed", e
)
