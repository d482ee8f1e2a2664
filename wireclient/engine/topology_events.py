"""SDAM events: a topology and its servers opening, changing and closing, in the spec's order.

Theory of operation
-------------------
Every selector (one server, a replica set, routers) owns at most one ``TopologyEvents``,
made only when a ``ServerListener`` or ``TopologyListener`` listens, so a connection with
no such listener builds no view for events and pays nothing. It publishes what the SDAM
monitoring specification lists, in its order, from snapshots of the view
(``TopologyView``, or ``RouterView``) the selector hands it:

* ``opened(view)``: ``TopologyOpening``; ``TopologyDescriptionChanged`` from an empty view
  to ``view`` (its servers Unknown); one ``ServerOpening`` per server;
* ``changed(old, new)``: ``ServerDescriptionChanged`` for each server in both views whose
  description says something new (``same_description``: a new round-trip time alone is not
  news), ``ServerOpening`` for each server added, ``ServerClosed`` for each removed, then
  ``TopologyDescriptionChanged``; nothing at all when nothing changed;
* ``closed(view)``: ``ServerClosed`` for each server, ``TopologyDescriptionChanged`` to an
  empty view, ``TopologyClosed``.

It is a small state machine with two states, open and closed: ``opened`` in the open state
and ``changed`` / ``closed`` in the closed one publish nothing. A connection closed and then
used again opens again (a new ``TopologyOpening``, same ``topology_id``), since
``Connection.close()`` leaves the connection usable. Every event carries the topology's id
(a bson ``ObjectId``), so a listener of several connections can tell them apart.

The selectors call it where the view changes: the replica set's (and the routers') view
listener, ``Topology``'s, runs outside the cell's lock, in the thread that changed the view;
a one-server ``Connection`` describes its server from each new socket's handshake and
marks it Unknown when a socket fails (``SingleServer``). Events of one topology are
published in the order its view changed only as far as those threads are ordered.
"""

from __future__ import annotations

import threading
import types
from typing import TYPE_CHECKING, Any, Optional

from bson import ObjectId

from wireclient.sdam.topology import same_description

if TYPE_CHECKING:
    from wireclient.monitoring import EventPublisher
    from wireclient.sdam.topology import TopologyView


def wants_topology_events(events: Optional[EventPublisher]) -> bool:
    """Whether anyone listens to server or topology events."""
    return events is not None and (events.server is not None or events.topology is not None)


class TopologyEvents:
    """The SDAM events of one topology (see the module notes)."""

    __slots__ = ("_events", "topology_id", "is_open", "_lock")

    def __init__(self, events: EventPublisher) -> None:
        self._events = events
        self.topology_id = ObjectId()
        self.is_open = False
        self._lock = threading.Lock()  # opened / closed race with a closing connection

    def opened(self, view: TopologyView) -> None:
        from wireclient.monitoring import (
            ServerOpeningEvent,
            TopologyDescriptionChangedEvent,
            TopologyOpeningEvent,
        )

        with self._lock:
            if self.is_open:
                return
            self.is_open = True
        events, topology_id = self._events, self.topology_id
        events.publish(events.topology, "opened", TopologyOpeningEvent(topology_id))
        described = TopologyDescriptionChangedEvent(_empty(view), view, topology_id)
        events.publish(events.topology, "description_changed", described)
        for address in view.members:
            events.publish(events.server, "opened", ServerOpeningEvent(address, topology_id))

    def changed(self, old: TopologyView, new: TopologyView) -> None:
        from wireclient.monitoring import (
            ServerClosedEvent,
            ServerDescriptionChangedEvent,
            ServerOpeningEvent,
            TopologyDescriptionChangedEvent,
        )

        if not self.is_open:
            return
        events, topology_id = self._events, self.topology_id
        news = False
        for address, after in new.members.items():
            before = old.members.get(address)
            if before is not None and not same_description(before, after):
                news = True
                event: Any = ServerDescriptionChangedEvent(address, before, after, topology_id)
                events.publish(events.server, "description_changed", event)
        for address in new.members:
            if address not in old.members:
                news = True
                events.publish(events.server, "opened", ServerOpeningEvent(address, topology_id))
        for address in old.members:
            if address not in new.members:
                news = True
                events.publish(events.server, "closed", ServerClosedEvent(address, topology_id))
        if news or _topology_news(old, new):
            event = TopologyDescriptionChangedEvent(old, new, topology_id)
            events.publish(events.topology, "description_changed", event)

    def closed(self, view: TopologyView) -> None:
        from wireclient.monitoring import (
            ServerClosedEvent,
            TopologyClosedEvent,
            TopologyDescriptionChangedEvent,
        )

        with self._lock:
            if not self.is_open:
                return
            self.is_open = False
        events, topology_id = self._events, self.topology_id
        for address in view.members:
            events.publish(events.server, "closed", ServerClosedEvent(address, topology_id))
        described = TopologyDescriptionChangedEvent(view, _empty(view), topology_id)
        events.publish(events.topology, "description_changed", described)
        events.publish(events.topology, "closed", TopologyClosedEvent(topology_id))


def _empty(view: TopologyView) -> TopologyView:
    """``view`` with no servers (before opening, after closing)."""
    return view._replace(members=types.MappingProxyType({}), primary=None, compatibility_error=None)


def _topology_news(old: TopologyView, new: TopologyView) -> bool:
    """What a topology's view may change besides its servers' descriptions."""
    return (
        old.set_name != new.set_name
        or old.primary != new.primary
        or old.max_election_id != new.max_election_id
        or old.max_set_version != new.max_set_version
        or old.compatibility_error != new.compatibility_error
    )


__all__ = ["TopologyEvents", "wants_topology_events"]
