"""SDAM events (wireclient.engine.topology_events): which events a topology's opening, view
changes and closing publish, and in what order (the SDAM monitoring specification's), on
immutable views built here: no server needed. The same events from real connections:
tests/test_monitoring.py."""

from __future__ import annotations

from typing import Any, List, Tuple

from wireclient import monitoring
from wireclient.engine.topology_events import TopologyEvents
from wireclient.sdam.topology import ServerDescription, TopologyView

A, B, C = ("a", 27017), ("b", 27017), ("c", 27017)


class Recorder(monitoring.ServerListener, monitoring.TopologyListener):
    def __init__(self) -> None:
        self.events: List[Tuple[str, Any]] = []

    def opened(self, event: Any) -> None:
        kind = "topology" if isinstance(event, monitoring.TopologyOpeningEvent) else "server"
        self.events.append((f"{kind}_opened", event))

    def closed(self, event: Any) -> None:
        kind = "topology" if isinstance(event, monitoring.TopologyClosedEvent) else "server"
        self.events.append((f"{kind}_closed", event))

    def description_changed(self, event: Any) -> None:
        topology = isinstance(event, monitoring.TopologyDescriptionChangedEvent)
        self.events.append(("topology_changed" if topology else "server_changed", event))

    def names(self) -> List[Tuple[str, Any]]:
        return [(name, getattr(event, "address", None)) for name, event in self.events]


def primary(address: Any, hosts: Any, rtt: float = 0.001) -> ServerDescription:
    reply = {
        "ok": 1,
        "isWritablePrimary": True,
        "setName": "rs",
        "hosts": [f"{h}:{p}" for h, p in hosts],
        "maxWireVersion": 17,
    }
    return ServerDescription.from_reply(address, reply, rtt)


def make() -> Tuple[TopologyEvents, Recorder]:
    recorder = Recorder()
    return TopologyEvents(monitoring.EventPublisher([recorder])), recorder


def test_opening_announces_the_topology_then_its_view_then_each_server() -> None:
    events, recorder = make()
    view = TopologyView.from_seeds([A, B], "rs")
    events.opened(view)
    assert recorder.names() == [
        ("topology_opened", None),
        ("topology_changed", None),
        ("server_opened", A),
        ("server_opened", B),
    ]
    changed = recorder.events[1][1]
    assert dict(changed.previous.members) == {} and changed.new is view
    ids = {event.topology_id for _, event in recorder.events}
    assert ids == {events.topology_id}
    events.opened(view)  # already open: nothing more
    assert len(recorder.events) == 4


def test_a_change_publishes_descriptions_then_added_and_removed_servers_then_the_view() -> None:
    events, recorder = make()
    old = TopologyView.from_seeds([A, B], "rs")
    events.opened(old)
    del recorder.events[:]
    new = old.apply(primary(A, [A, C]))  # A is primary, lists C, not B
    events.changed(old, new)
    assert recorder.names() == [
        ("server_changed", A),
        ("server_opened", C),
        ("server_closed", B),
        ("topology_changed", None),
    ]
    assert recorder.events[0][1].new.server_type.value == "Primary"
    assert recorder.events[-1][1].previous is old and recorder.events[-1][1].new is new


def test_a_new_round_trip_time_alone_is_no_news() -> None:
    events, recorder = make()
    seeds = TopologyView.from_seeds([A], "rs")
    events.opened(seeds)
    known = seeds.apply(primary(A, [A], rtt=0.001))
    events.changed(seeds, known)
    del recorder.events[:]
    again = known.apply(primary(A, [A], rtt=0.050))  # the next check, slower
    assert again is not known and again.members[A] != known.members[A]
    events.changed(known, again)
    assert recorder.events == []


def test_closing_closes_each_server_then_empties_the_view_then_the_topology() -> None:
    events, recorder = make()
    view = TopologyView.from_seeds([A, B], "rs")
    events.opened(view)
    del recorder.events[:]
    events.closed(view)
    assert recorder.names() == [
        ("server_closed", A),
        ("server_closed", B),
        ("topology_changed", None),
        ("topology_closed", None),
    ]
    assert dict(recorder.events[2][1].new.members) == {}
    del recorder.events[:]
    events.changed(view, view.apply(primary(A, [A, B])))  # closed: nothing is published
    events.closed(view)
    assert recorder.events == []
    events.opened(view)  # used again after closing: it opens again, with the same id
    assert recorder.names()[0] == ("topology_opened", None)
    assert recorder.events[0][1].topology_id == events.topology_id
