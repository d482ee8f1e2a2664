"""TopologyView and ServerDescription, driven by hello reply dicts (no I/O)."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, List, Optional

import pytest
from bson import ObjectId

from wireclient.engine.topology_cell import Topology
from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.rules import uri
from wireclient.rules.uri import Address, format_address
from wireclient.rules.uri import parse_host as parse_address
from wireclient.rules.wire import MAX_SUPPORTED_WIRE_VERSION, MIN_SUPPORTED_WIRE_VERSION
from wireclient.sdam.server_rules import (
    NEWER_PRIMARY_ERROR,
    STALE_PRIMARY_ERROR,
    ServerType,
    parse_topology_version,
    topology_version_is_older,
)
from wireclient.sdam.topology import ServerDescription, TopologyView

A, B, C, D = ("a", 1), ("b", 2), ("c", 3), ("d", 4)


def hello(
    kind: str = "secondary",
    set_name: Optional[str] = "rs",
    hosts: Iterable[Address] = (A, B, C),
    **extra: Any,
) -> Dict[str, Any]:
    reply: Dict[str, Any] = {"ok": 1, "maxWireVersion": 17, "minWireVersion": 0}
    if set_name is not None:
        reply["setName"] = set_name
        reply["hosts"] = [format_address(h) for h in hosts]
    if kind == "primary":
        reply.update(isWritablePrimary=True, ismaster=True, secondary=False)
    elif kind == "secondary":
        reply.update(isWritablePrimary=False, secondary=True)
    elif kind == "arbiter":
        reply.update(isWritablePrimary=False, secondary=False, arbiterOnly=True)
    elif kind == "hidden":
        reply.update(isWritablePrimary=False, secondary=True, hidden=True)
    elif kind == "standalone":
        reply.update(isWritablePrimary=True, ismaster=True)
    elif kind == "other":
        reply.update(isWritablePrimary=False, secondary=False)
    reply.update(extra)
    return reply


def sd(
    address: Address, kind: str = "secondary", rtt: float = 0.01, **kw: Any
) -> ServerDescription:
    return ServerDescription.from_reply(address, hello(kind, **kw), rtt)


def seeded(*seeds: Address, set_name: Optional[str] = "rs") -> TopologyView:
    return TopologyView.from_seeds(seeds or (A,), set_name)


# -- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Host:27018", ("host", 27018)),
        ("host", ("host", 27017)),
        ("[::1]:27019", ("::1", 27019)),
        ("[::1]", ("::1", 27017)),
        ("::1", ("::1", 27017)),
    ],
)
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host:x", "host:0", "host:70000", "[::1", ":27017"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_address(text)


def test_format_address_round_trips() -> None:
    for address in [("h", 1), ("::1", 27017)]:
        assert parse_address(format_address(address)) == address


# parse_address is uri.parse_host; these inputs are where the two parsers used to disagree.
TRICKY_ADDRESSES = [
    "[::1]:27019",
    "[::1]",
    "[0:0::1]",
    "[0:0::1]:5",
    "[2001:DB8::0001]:1",
    "[fe80::1%25eth0]:5",
    "::1",
    "0:0::1",
    "2001:DB8::1",
    "::1:27017",
    "/tmp/x.sock",
    "/Tmp/X.sock",
    "%2Ftmp%2Fx.sock",
    "x.sock",
    "Host:27018",
    "DB.Example.COM",
    "h:",
    "h:0",
    "h:65536",
    "h:x",
    "h:+1",
    "h: 1",
    "h:1.0",
    "h:\u0661",
    "[::1]:",
    "[::1]:x",
    "[::1",
    "[::1]x",
    "[127.0.0.1]",
    "",
    ":27017",
    " h",
    "h ",
]


def _outcome(parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except ConfigurationError as exc:
        return ConfigurationError, str(exc)


@pytest.mark.parametrize("text", TRICKY_ADDRESSES)
def test_parse_address_agrees_with_the_uri_parser(text: str) -> None:
    assert _outcome(parse_address, text) == _outcome(uri.parse_host, text)
    for port in (1, 27018):
        assert _outcome(parse_address, text, port) == _outcome(uri.parse_host, text, port)


@pytest.mark.parametrize("text", TRICKY_ADDRESSES)
def test_parse_address_agrees_with_a_host_list_entry(text: str) -> None:
    """The same address as split_hosts, but for bare IPv6, which a host list refuses."""
    bare_ipv6 = text.count(":") > 1 and not text.startswith("[")
    if not text or bare_ipv6:
        with pytest.raises(ConfigurationError, match="brackets|empty host list"):
            uri.split_hosts(text)
        return
    listed = _outcome(uri.split_hosts, text)
    parsed = _outcome(parse_address, text)
    if parsed[0] is ConfigurationError:
        assert listed[0] is ConfigurationError, listed
    else:
        assert listed == (parsed,)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[0:0::1]", ("::1", 27017)),
        ("[2001:DB8::0001]:1", ("2001:db8::1", 1)),
        ("2001:DB8::1", ("2001:db8::1", 27017)),
        ("[fe80::1%25eth0]:5", ("fe80::1%eth0", 5)),
        ("/tmp/x.sock", ("/tmp/x.sock", 0)),
        ("/Tmp/X.sock", ("/Tmp/X.sock", 0)),  # a path keeps its case
        ("%2Ftmp%2Fx.sock", ("/tmp/x.sock", 0)),
        ("DB.Example.COM", ("db.example.com", 27017)),
    ],
)
def test_parse_address_tricky_values(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["h:", "h:+1", "h: 1", "h:1.0", "::1:27017", "[127.0.0.1]", " h", "h "]
)
def test_parse_address_refuses_what_the_uri_parser_refuses(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_address(text)


@pytest.mark.parametrize(
    "address",
    [("h", 1), ("::1", 27017), ("2001:db8::1", 2), ("fe80::1%eth0", 5), ("/tmp/X y.sock", 0)],
)
def test_format_address_round_trips_every_kind(address: Address) -> None:
    assert parse_address(format_address(address)) == address
    assert uri.split_hosts(format_address(address)) == (address,)


def test_one_default_port() -> None:
    assert parse_address("h")[1] == uri.DEFAULT_PORT == 27017


# -- classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("primary", ServerType.PRIMARY),
        ("secondary", ServerType.SECONDARY),
        ("arbiter", ServerType.ARBITER),
        ("hidden", ServerType.HIDDEN),
        ("other", ServerType.OTHER),
    ],
)
def test_classifies_replica_set_members(kind: str, expected: ServerType) -> None:
    d = sd(A, kind)
    assert d.server_type is expected
    assert d.set_name == "rs"
    assert d.hosts == {A, B, C}
    assert d.max_wire_version == 17
    assert d.round_trip_time == 0.01


def test_legacy_ismaster_reply_is_understood() -> None:
    d = ServerDescription.from_reply(A, {"ok": 1.0, "ismaster": True, "setName": "rs"}, 0.0)
    assert d.server_type is ServerType.PRIMARY


def test_classifies_standalone_mongos_ghost_and_failure() -> None:
    assert sd(A, "standalone", set_name=None).server_type is ServerType.STANDALONE
    mongos = ServerDescription.from_reply(A, {"ok": 1, "msg": "isdbgrid"}, 0.0)
    assert mongos.server_type is ServerType.MONGOS
    ghost = ServerDescription.from_reply(A, {"ok": 1, "isreplicaset": True}, 0.0)
    assert ghost.server_type is ServerType.GHOST
    failed = ServerDescription.from_reply(A, {"ok": 0, "errmsg": "boom"}, 0.0)
    assert failed.server_type is ServerType.UNKNOWN and "boom" in (failed.error or "")


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("ok", "1", "ok"),
        ("hosts", "a:1", "hosts"),
        ("hosts", ["a:1", 2], "hosts.1"),
        ("hosts", ["a:port"], "hosts.0"),
        ("passives", [None], "passives.0"),
        ("arbiters", {"e": 5}, "arbiters"),
        ("setName", 5, "setName"),
        ("setVersion", "1", "setVersion"),
        ("setVersion", True, "setVersion"),
        ("electionId", "7fffffff0000000000000001", "electionId"),
        ("topologyVersion", {"processId": 1, "counter": 1}, "topologyVersion.processId"),
        ("topologyVersion", {"processId": ObjectId(), "counter": "1"}, "topologyVersion.counter"),
        ("maxWireVersion", True, "maxWireVersion"),
        ("maxWireVersion", "17", "maxWireVersion"),
        ("minWireVersion", 18, "minWireVersion"),
        ("tags", {"dc": 1}, "tags.dc"),
        ("tags", ["dc"], "tags"),
        ("primary", 5, "primary"),
        ("me", "h:0", "me"),
        ("secondary", "yes", "secondary"),
        ("isWritablePrimary", 1, "isWritablePrimary"),
        ("msg", ["isdbgrid"], "msg"),
    ],
)
def test_a_malformed_hello_is_a_protocol_error(field: str, value: Any, named: str) -> None:
    """What the monitor would act on is checked first; the monitor makes the member Unknown
    with the message (test_replies_handshake.py)."""
    reply = hello("secondary")
    reply[field] = value
    with pytest.raises(ProtocolError) as info:
        ServerDescription.from_reply(A, reply, 0.01)
    assert info.value.side == "remote"
    assert f"hello reply from a:1: field '{named}' " in str(info.value)


def test_a_failed_hello_with_a_malformed_error_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="field 'errmsg'"):
        ServerDescription.from_reply(A, {"ok": 0, "errmsg": 5}, 0.01)
    with pytest.raises(ProtocolError, match="field 'topologyVersion'"):
        ServerDescription.from_reply(A, {"ok": 0, "errmsg": "x", "topologyVersion": 4}, 0.01)


def test_description_fields() -> None:
    oid = ObjectId()
    d = sd(
        A,
        "secondary",
        passives=["d:4"],
        arbiters=["E:5"],
        tags={"dc": "ny"},
        primary="b:2",
        me="a:1",
        electionId=oid,
        setVersion=3,
    )
    assert d.all_hosts == {A, B, C, D, ("e", 5)}
    assert d.tags == {"dc": "ny"}
    assert d.primary == B and d.me == A
    assert d.election_id == oid and d.set_version == 3
    assert d.is_readable and d.is_data_bearing
    assert not sd(A, "hidden").is_readable and sd(A, "hidden").is_data_bearing
    assert not sd(A, "arbiter").is_data_bearing
    assert "a:1 (Secondary" in str(d)


def test_description_is_frozen() -> None:
    d = sd(A)
    with pytest.raises(AttributeError):
        d.server_type = ServerType.PRIMARY  # type: ignore[misc]


# -- discovery ---------------------------------------------------------------------------


def test_from_seeds_needs_a_seed_and_dedups() -> None:
    with pytest.raises(ConfigurationError):
        TopologyView.from_seeds([], "rs")
    view = TopologyView.from_seeds([A, A, B], "rs")
    assert list(view.members) == [A, B]
    assert all(m.server_type is ServerType.UNKNOWN for m in view.members.values())


def test_primary_seed_discovers_the_set() -> None:
    view = seeded(A)
    new = view.apply(sd(A, "primary", passives=["d:4"]))
    assert set(new.members) == {A, B, C, D}
    assert new.primary == A
    assert new.members[B].server_type is ServerType.UNKNOWN
    # the old view is unchanged
    assert set(view.members) == {A} and view.primary is None


def test_secondary_seed_discovers_members_without_primary() -> None:
    view = seeded(B).apply(sd(B, "secondary", primary="a:1"))
    assert set(view.members) == {A, B, C}
    assert view.primary is None
    assert view.members[B].primary == A
    view = view.apply(sd(A, "primary"))
    assert view.primary == A


def test_set_name_learned_from_first_member_when_not_given() -> None:
    view = seeded(A, set_name=None).apply(sd(A, "secondary"))
    assert view.set_name == "rs"


def test_primary_removes_members_it_does_not_list() -> None:
    view = seeded(A, B, C, D).apply(sd(A, "primary", hosts=(A, B)))
    assert set(view.members) == {A, B}


def test_secondary_never_removes_members() -> None:
    view = seeded(A, B, C, D).apply(sd(A, "secondary", hosts=(A, B)))
    assert set(view.members) == {A, B, C, D}


def test_secondary_with_primary_known_adds_nobody() -> None:
    view = seeded(A).apply(sd(A, "primary", hosts=(A, B)))
    view = view.apply(sd(B, "secondary", hosts=(A, B, C)))
    assert set(view.members) == {A, B}


def test_late_answer_of_removed_member_is_ignored() -> None:
    view = seeded(A, D).apply(sd(A, "primary"))
    assert D not in view.members
    assert view.apply(sd(D, "secondary")) is view


def test_member_known_by_another_name_is_removed() -> None:
    view = seeded(("alias", 1)).apply(sd(("alias", 1), "secondary", me="a:1"))
    assert ("alias", 1) not in view.members
    assert set(view.members) == {A, B, C}


# -- refusals ----------------------------------------------------------------------------


def test_member_of_another_set_is_refused_with_a_clear_message() -> None:
    view = seeded(A, B).apply(sd(A, "primary", hosts=(A, B)))
    view = view.apply(sd(B, "secondary", set_name="other"))
    assert B not in view.members
    assert view.primary == A
    assert view.errors and "b:2 is a member of replica set 'other', not 'rs'" in view.errors[-1]
    assert "'other'" in view.describe()


def assert_reseeded(view: TopologyView, reason: str) -> None:
    """Every member was refused, so the seeds are back as Unknown, carrying the reason."""
    assert set(view.members) == set(view.seeds)
    for member in view.members.values():
        assert member.server_type is ServerType.UNKNOWN
        assert reason in (member.error or "")


def test_wrong_set_name_given_by_user_refuses_seed() -> None:
    view = seeded(A, set_name="expected").apply(sd(A, "primary"))
    assert view.primary is None
    assert_reseeded(view, "expected")
    assert "not 'expected'" in view.errors[-1]


def test_standalone_is_refused() -> None:
    view = seeded(A, B).apply(sd(A, "standalone", set_name=None))
    assert A not in view.members
    assert "a:1 is a standalone server" in view.errors[-1]


def test_last_member_refused_brings_back_the_seeds() -> None:
    """A one-member set whose member answers as a standalone while it shuts down (SecantusDB
    does) must not leave the connection with nobody to check, ever again."""
    view = seeded(A).apply(sd(A, "primary", hosts=(A,)))
    view = view.apply(sd(A, "standalone", set_name=None))
    assert_reseeded(view, "standalone")
    view = view.apply(sd(A, "primary", hosts=(A,)))  # back after its restart
    assert view.primary == A


def test_members_learned_from_the_primary_are_not_brought_back() -> None:
    view = seeded(A).apply(sd(A, "primary", hosts=(A, B)))
    view = view.apply(sd(A, "standalone", set_name=None))
    assert set(view.members) == {B}  # B is still there to check: no re-seeding


def test_mongos_is_refused() -> None:
    view = seeded(A).apply(ServerDescription.from_reply(A, {"ok": 1, "msg": "isdbgrid"}, 0.0))
    assert "mongos" in view.errors[-1]
    assert_reseeded(view, "mongos")


def test_errors_are_bounded() -> None:
    view = seeded(*[("h", p) for p in range(1, 30)])
    for p in range(1, 30):
        view = view.apply(sd(("h", p), "standalone", set_name=None))
    assert len(view.errors) == 10


def test_repeated_refusal_is_recorded_once() -> None:
    view = seeded(A, B).apply(sd(A, "primary", hosts=(A, B)))
    for _ in range(3):
        view = view.apply(sd(B, "secondary", set_name="other"))
        view = view.apply(sd(A, "primary", hosts=(A, B)))  # the primary lists B again
    assert len(view.errors) == 1


def test_ghost_is_kept_but_teaches_nothing() -> None:
    view = seeded(A).apply(ServerDescription.from_reply(A, {"ok": 1, "isreplicaset": True}, 0.0))
    assert view.members[A].server_type is ServerType.GHOST and set(view.members) == {A}


def test_ghost_naming_a_set_and_hosts_still_teaches_nothing() -> None:
    """A member not yet configured may already report a setName and hosts; neither counts:
    it is not refused for another set's name, and adds no member."""
    reply = {"ok": 1, "isreplicaset": True, "setName": "other", "hosts": ["b:27017"]}
    view = seeded(A).apply(ServerDescription.from_reply(A, reply, 0.0))
    assert view.members[A].server_type is ServerType.GHOST and set(view.members) == {A}
    assert view.errors == () and view.set_name == "rs"


# -- primaries ---------------------------------------------------------------------------


def test_unknown_primary_clears_primary() -> None:
    view = seeded(A).apply(sd(A, "primary"))
    view = view.mark_unknown(A, "connection refused")
    assert view.primary is None
    assert view.members[A].error == "connection refused"
    assert set(view.members) == {A, B, C}


def test_primary_becoming_secondary_clears_primary() -> None:
    view = seeded(A).apply(sd(A, "primary")).apply(sd(A, "secondary"))
    assert view.primary is None


def test_two_primaries_newer_wins() -> None:
    old, new = ObjectId(), ObjectId()
    view = seeded(A).apply(sd(A, "primary", electionId=old, setVersion=1))
    view = view.apply(sd(B, "primary", electionId=new, setVersion=1))
    assert view.primary == B
    assert view.members[A].server_type is ServerType.UNKNOWN
    assert "elected" in (view.members[A].error or "")
    assert view.max_election_id == new


def test_stale_primary_is_ignored() -> None:
    old, new = ObjectId(), ObjectId()
    view = seeded(A).apply(sd(A, "primary", electionId=new, setVersion=2))
    assert view.primary == A
    stale = view.apply(sd(B, "primary", electionId=old, setVersion=2))
    assert stale.primary == A
    assert stale.members[B].server_type is ServerType.UNKNOWN
    assert "stale primary" in (stale.members[B].error or "")


def test_same_election_lower_set_version_is_stale() -> None:
    oid = ObjectId()
    view = seeded(A).apply(sd(A, "primary", electionId=oid, setVersion=5))
    stale = view.apply(sd(B, "primary", electionId=oid, setVersion=4))
    assert stale.primary == A
    newer = view.apply(sd(B, "primary", electionId=oid, setVersion=6))
    assert newer.primary == B and newer.max_set_version == 6


def test_primary_without_election_id_replaces_old_primary() -> None:
    view = seeded(A).apply(sd(A, "primary")).apply(sd(B, "primary"))
    assert view.primary == B
    assert view.members[A].server_type is ServerType.UNKNOWN


# -- round-trip times --------------------------------------------------------------------


def test_round_trip_time_is_a_moving_average() -> None:
    view = seeded(A).apply(sd(A, "primary", rtt=0.010))
    assert view.members[A].round_trip_time == pytest.approx(0.010)
    view = view.apply(sd(A, "primary", rtt=0.110))
    assert view.members[A].round_trip_time == pytest.approx(0.2 * 0.110 + 0.8 * 0.010)


def test_round_trip_time_restarts_after_unknown() -> None:
    view = seeded(A).apply(sd(A, "primary", rtt=0.5)).mark_unknown(A, "down")
    view = view.apply(sd(A, "primary", rtt=0.01))
    assert view.members[A].round_trip_time == pytest.approx(0.01)


# -- views are immutable -----------------------------------------------------------------


def test_view_members_cannot_be_mutated() -> None:
    view = seeded(A)
    with pytest.raises(TypeError):
        view.members[B] = ServerDescription.unknown(B)  # type: ignore[index]
    with pytest.raises(AttributeError):
        view.primary = A  # type: ignore[misc]


def test_view_helpers() -> None:
    view = seeded(A).apply(sd(A, "primary", hosts=(A, B, C, D)))
    view = view.apply(sd(B, "secondary", hosts=(A, B, C, D)))
    view = view.apply(sd(C, "arbiter", hosts=(A, B, C, D)))
    view = view.apply(sd(D, "hidden", hosts=(A, B, C, D)))
    assert view.primary_description is not None and view.primary_description.address == A
    assert [m.address for m in view.secondaries] == [B]
    assert sorted(view.data_members) == [A, B, D]
    assert "replica set rs" in view.describe()


# -- topologyVersion ---------------------------------------------------------------------

PROCESS, RESTARTED = ObjectId(), ObjectId()


def tv(counter: int, process: Any = PROCESS) -> Dict[str, Any]:
    return {"topologyVersion": {"processId": process, "counter": counter}}


def test_topology_version_is_parsed() -> None:
    assert sd(A, "primary", **tv(3)).topology_version == (PROCESS, 3)
    assert sd(A, "primary").topology_version is None
    for bad in [None, 5, {"counter": 1}, {"processId": PROCESS}, {"processId": 1, "counter": "x"}]:
        assert parse_topology_version(bad) is None
    failed = ServerDescription.from_reply(A, {"ok": 0, "errmsg": "no", **tv(4)}, None)
    assert failed.server_type is ServerType.UNKNOWN and failed.topology_version == (PROCESS, 4)


@pytest.mark.parametrize(
    "new, current, older, older_or_equal",
    [
        ((PROCESS, 1), (PROCESS, 2), True, True),
        ((PROCESS, 2), (PROCESS, 2), False, True),
        ((PROCESS, 3), (PROCESS, 2), False, False),
        ((RESTARTED, 0), (PROCESS, 2), False, False),  # another process: not comparable
        (None, (PROCESS, 2), False, False),
        ((PROCESS, 1), None, False, False),
    ],
)
def test_topology_version_order(new: Any, current: Any, older: bool, older_or_equal: bool) -> None:
    assert topology_version_is_older(new, current) is older
    assert topology_version_is_older(new, current, or_equal=True) is older_or_equal


def test_older_hello_of_the_same_process_is_ignored() -> None:
    view = seeded(A).apply(sd(A, "primary", **tv(2)))
    assert view.apply(sd(A, "secondary", **tv(1))) is view
    assert view.apply(sd(A, "secondary", **tv(2))).primary is None  # equal: applied
    assert view.apply(sd(A, "secondary", **tv(0, RESTARTED))).primary is None
    assert view.apply(sd(A, "secondary")).primary is None  # no version: applied


def test_stale_not_primary_error_changes_nothing() -> None:
    view = seeded(A).apply(sd(A, "primary", **tv(2)))
    assert view.mark_unknown(A, "not primary", (PROCESS, 1)) is view
    assert view.mark_unknown(A, "not primary", (PROCESS, 2)) is view
    assert view.mark_unknown(A, "not primary", (PROCESS, 3)).primary is None
    assert view.mark_unknown(A, "not primary", (RESTARTED, 0)).primary is None
    assert view.mark_unknown(A, "not primary").primary is None  # no version: not stale


def test_unknown_from_a_newer_error_ignores_older_hellos() -> None:
    """A hello sent before the step-down can arrive after the error that reported it."""
    view = seeded(A).apply(sd(A, "primary", **tv(2)))
    view = view.mark_unknown(A, "not primary", (PROCESS, 3))
    assert view.members[A].topology_version == (PROCESS, 3)
    assert view.apply(sd(A, "primary", **tv(2))) is view  # in flight from before
    assert view.apply(sd(A, "secondary", **tv(3))).members[A].server_type is ServerType.SECONDARY


def test_topology_mark_unknown_stale_error_leaves_the_view() -> None:
    seen: List[Any] = []
    topology = Topology(seeded(A), listener=lambda old, new: seen.append((old, new)))
    view = topology.apply(sd(A, "primary", **tv(2)))
    assert topology.mark_unknown(A, "not primary", (PROCESS, 2)) is view
    assert topology.view is view and len(seen) == 1
    assert topology.mark_unknown(A, "not primary", (PROCESS, 5)) is not view
    assert topology.view.primary is None and len(seen) == 2


# -- the mutable cell --------------------------------------------------------------------


def test_topology_swaps_whole_views_and_tells_listener() -> None:
    seen: List[Any] = []
    topology = Topology(seeded(A), listener=lambda old, new: seen.append((old, new)))
    first = topology.view
    new = topology.apply(sd(A, "primary"))
    assert topology.view is new and first.primary is None and new.primary == A
    assert seen == [(first, new)]
    topology.apply(sd(D, "primary"))  # not a member: no change, no call
    assert len(seen) == 1
    topology.mark_unknown(A, "gone")
    assert topology.view.primary is None and len(seen) == 2


def test_topology_concurrent_updates_are_not_lost() -> None:
    hosts = [("h", p) for p in range(1, 41)]
    topology = Topology(TopologyView.from_seeds(hosts, "rs"))

    def work(address: Address) -> None:
        for _ in range(50):
            topology.apply(sd(address, "secondary", hosts=hosts))

    threads = [threading.Thread(target=work, args=(h,)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(m.server_type is ServerType.SECONDARY for m in topology.view.members.values())


# -- stale primaries: (electionId, setVersion) -------------------------------------------
#
# Cases after the SDAM specification's rules for a primary's reply (updateRSFromPrimary) and
# its rs/ scenarios; the data is ours. MongoDB 6.0+ (maxWireVersion >= 17) orders electionId
# first, a missing value being older; older servers order setVersion first and judge only
# primaries that report both.

MODERN, PRE_6_0 = 17, 16


def oid(n: int) -> ObjectId:
    return ObjectId(f"{n:024x}")


def primary(
    address: Address,
    election: Optional[int] = None,
    set_version: Optional[int] = None,
    wire: int = MODERN,
    **kw: Any,
) -> ServerDescription:
    extra: Dict[str, Any] = {"maxWireVersion": wire}
    if election is not None:
        extra["electionId"] = oid(election)
    if set_version is not None:
        extra["setVersion"] = set_version
    return sd(address, "primary", **extra, **kw)


def assert_primary(view: TopologyView, address: Address) -> None:
    assert view.primary == address
    assert [m.address for m in view.of_type(ServerType.PRIMARY)] == [address]


def assert_stale(view: TopologyView, address: Address) -> None:
    member = view.members[address]
    assert member.server_type is ServerType.UNKNOWN
    assert (member.error or "").startswith(STALE_PRIMARY_ERROR)


def assert_demoted(view: TopologyView, address: Address) -> None:
    member = view.members[address]
    assert member.server_type is ServerType.UNKNOWN
    assert (member.error or "").startswith(NEWER_PRIMARY_ERROR)


def test_the_error_wordings_are_the_specifications() -> None:
    assert STALE_PRIMARY_ERROR == "primary marked stale due to electionId/setVersion mismatch"
    assert NEWER_PRIMARY_ERROR == "primary marked stale due to discovery of newer primary"


def test_greater_election_id_wins_and_the_old_primary_is_stale_afterwards() -> None:
    view = seeded(A).apply(primary(A, election=1))
    assert view.max_election_id == oid(1)
    view = view.apply(primary(B, election=2))
    assert_primary(view, B)
    assert_demoted(view, A)
    assert view.max_election_id == oid(2)
    # A has not heard of the election yet and still claims to be primary
    late = view.apply(primary(A, election=1))
    assert_primary(late, B)
    assert_stale(late, A)
    assert late.max_election_id == oid(2)
    assert set(late.members) == {A, B, C}  # a stale primary teaches nothing


def test_same_election_greater_set_version_wins() -> None:
    view = seeded(A).apply(primary(A, election=1, set_version=1))
    view = view.apply(primary(B, election=1, set_version=2))
    assert_primary(view, B)
    assert_demoted(view, A)
    assert (view.max_election_id, view.max_set_version) == (oid(1), 2)
    late = view.apply(primary(A, election=1, set_version=1))
    assert_primary(late, B)
    assert_stale(late, A)


def test_equal_election_id_and_set_version_is_not_stale() -> None:
    view = seeded(A).apply(primary(A, election=1, set_version=1))
    view = view.apply(primary(B, election=1, set_version=1))
    assert_primary(view, B)
    assert_demoted(view, A)


def test_stale_primary_that_was_the_primary_leaves_no_primary() -> None:
    view = seeded(A).apply(primary(A, election=1, set_version=1))
    view = view.apply(primary(B, election=3))
    view = view.mark_unknown(B, "connection reset")
    assert view.primary is None
    assert_stale(view.apply(primary(A, election=2)), A)
    assert view.apply(primary(A, election=2)).primary is None


def test_missing_election_id_is_older_than_any_on_modern_servers() -> None:
    view = seeded(A).apply(primary(A, election=1, set_version=1))
    stale = view.apply(primary(B, set_version=2))  # a newer config, but no electionId
    assert_primary(stale, A)
    assert_stale(stale, B)
    assert (stale.max_election_id, stale.max_set_version) == (oid(1), 1)
    newer = stale.apply(primary(A, election=2, set_version=1))
    assert_primary(newer, A)
    assert (newer.max_election_id, newer.max_set_version) == (oid(2), 1)


def test_set_version_alone_orders_primaries_without_election_ids_on_modern_servers() -> None:
    view = seeded(A).apply(primary(A, set_version=2))
    assert (view.max_election_id, view.max_set_version) == (None, 2)
    assert_stale(view.apply(primary(B, set_version=1)), B)
    assert_stale(view.apply(primary(B)), B)  # no setVersion at all: older still
    equal = view.apply(primary(B, set_version=2))
    assert_primary(equal, B)
    assert equal.max_set_version == 2
    greater = view.apply(primary(B, set_version=3))
    assert_primary(greater, B)
    assert greater.max_set_version == 3


def test_election_id_takes_precedence_over_set_version_on_modern_servers() -> None:
    view = seeded(A).apply(primary(A, election=2, set_version=1))
    stale = view.apply(primary(B, election=1, set_version=2))
    assert_primary(stale, A)
    assert_stale(stale, B)
    assert (stale.max_election_id, stale.max_set_version) == (oid(2), 1)


def test_accepted_primary_replaces_the_maxima_even_downwards() -> None:
    """6.0+: a newer election may come with an older setVersion; the maxima follow it."""
    view = seeded(A).apply(primary(A, election=1, set_version=2))
    view = view.apply(primary(B, election=2, set_version=1))
    assert_primary(view, B)
    assert (view.max_election_id, view.max_set_version) == (oid(2), 1)
    late = view.apply(primary(A, election=1, set_version=2))
    assert_stale(late, A)
    assert (late.max_election_id, late.max_set_version) == (oid(2), 1)
    # and a primary without a setVersion but with a newer election clears the setVersion
    bare = view.apply(primary(C, election=3))
    assert_primary(bare, C)
    assert (bare.max_election_id, bare.max_set_version) == (oid(3), None)


def test_set_version_comes_first_before_mongodb_6() -> None:
    view = seeded(A).apply(primary(A, election=2, set_version=1, wire=PRE_6_0))
    newer = view.apply(primary(B, election=1, set_version=2, wire=PRE_6_0))
    assert_primary(newer, B)  # the same replies on 6.0+ would make B stale
    assert_demoted(newer, A)
    assert (newer.max_election_id, newer.max_set_version) == (oid(1), 2)
    assert_stale(newer.apply(primary(A, election=2, set_version=1, wire=PRE_6_0)), A)


def test_same_set_version_lower_election_id_is_stale_before_mongodb_6() -> None:
    view = seeded(A).apply(primary(A, election=2, set_version=1, wire=PRE_6_0))
    stale = view.apply(primary(B, election=1, set_version=1, wire=PRE_6_0))
    assert_primary(stale, A)
    assert_stale(stale, B)
    assert_primary(view.apply(primary(B, election=3, set_version=1, wire=PRE_6_0)), B)


def test_set_version_without_election_id_is_not_judged_before_mongodb_6() -> None:
    view = seeded(A).apply(primary(A, set_version=2, wire=PRE_6_0))
    view = view.apply(primary(B, set_version=1, wire=PRE_6_0))
    assert_primary(view, B)
    assert_demoted(view, A)
    assert view.max_set_version == 2  # the greatest seen, not B's


def test_max_set_version_is_recorded_from_a_primary_without_election_id_before_6() -> None:
    view = seeded(A).apply(primary(A, election=1, set_version=1, wire=PRE_6_0))
    view = view.apply(primary(B, set_version=2, wire=PRE_6_0))
    assert_primary(view, B)
    assert (view.max_election_id, view.max_set_version) == (oid(1), 2)
    # A's late reply of a re-election: its setVersion shows it preceded B's config
    late = view.apply(primary(A, election=2, set_version=1, wire=PRE_6_0))
    assert_primary(late, B)
    assert_stale(late, A)


def test_primaries_with_and_without_election_ids_before_mongodb_6() -> None:
    view = seeded(A).apply(primary(A, set_version=1, wire=PRE_6_0))
    assert view.max_election_id is None
    view = view.apply(primary(B, election=2, set_version=1, wire=PRE_6_0))
    assert_primary(view, B)
    assert view.max_election_id == oid(2)  # recorded though there was none before
    view = view.apply(primary(A, set_version=1, wire=PRE_6_0))  # no electionId: trusted
    assert_primary(view, A)
    view = view.apply(primary(C, election=1, set_version=1, wire=PRE_6_0))
    assert_primary(view, A)  # C's election is older than B's, which we remember
    assert_stale(view, C)


def test_new_primary_of_another_set_is_removed_and_the_primary_stays() -> None:
    view = seeded(A).apply(primary(A, election=1, hosts=(A, B)))
    view = view.apply(primary(B, election=2, set_name="wrong", hosts=(A, B)))
    assert_primary(view, A)
    assert B not in view.members
    assert view.max_election_id == oid(1)


def test_secondary_election_id_is_ignored() -> None:
    view = seeded(A).apply(primary(A, election=1))
    view = view.apply(sd(B, "secondary", electionId=oid(5), setVersion=9))
    assert (view.max_election_id, view.max_set_version) == (oid(1), None)
    assert_primary(view.apply(primary(C, election=2)), C)


# -- wire-version compatibility ----------------------------------------------------------


def wired(
    address: Address, kind: str, low: Optional[int], high: Optional[int], **kw: Any
) -> ServerDescription:
    """A reply with the wire range ``low`` to ``high``; None leaves the field out."""
    reply = hello(kind, **kw)
    for field, value in (("minWireVersion", low), ("maxWireVersion", high)):
        if value is None:
            del reply[field]
        else:
            reply[field] = value
    return ServerDescription.from_reply(address, reply, 0.01)


def test_fresh_and_ordinary_views_are_compatible() -> None:
    view = seeded(A, B)
    assert view.compatible and view.compatibility_error is None
    view.check_compatible()
    view = view.apply(wired(A, "primary", 0, 17)).apply(wired(B, "secondary", 0, 21))
    assert view.compatible
    view.check_compatible()


def test_unknown_members_do_not_count() -> None:
    view = seeded(A, B).apply(wired(A, "primary", 0, 21, hosts=(A, B)))
    assert view.members[B].server_type is ServerType.UNKNOWN  # min and max 0, unchecked
    assert view.compatible


def test_member_requiring_a_newer_wire_version_makes_the_view_incompatible() -> None:
    view = seeded(A, B).apply(wired(A, "primary", 0, 17, hosts=(A, B)))
    view = view.apply(wired(B, "secondary", 999, 1000, hosts=(A, B)))
    assert view.members[B].server_type is ServerType.SECONDARY  # keeps its type
    assert_primary(view, A)
    assert not view.compatible
    message = view.compatibility_error or ""
    assert "b:2" in message and "999 to 1000" in message
    assert f"{MIN_SUPPORTED_WIRE_VERSION} to {MAX_SUPPORTED_WIRE_VERSION}" in message
    with pytest.raises(ConfigurationError) as raised:
        view.check_compatible()
    assert str(raised.value) == message
    assert message in view.describe()


def test_member_too_old_makes_the_view_incompatible() -> None:
    view = seeded(A, B).apply(wired(A, "primary", 0, 17, hosts=(A, B)))
    view = view.apply(wired(B, "secondary", None, None, hosts=(A, B)))  # defaults: 0 and 0
    assert view.members[B].server_type is ServerType.SECONDARY
    message = view.compatibility_error or ""
    assert "b:2" in message and "0 to 0" in message and "MongoDB 3.2" in message
    assert f"{MIN_SUPPORTED_WIRE_VERSION} to {MAX_SUPPORTED_WIRE_VERSION}" in message
    with pytest.raises(ConfigurationError, match="b:2"):
        view.check_compatible()


@pytest.mark.parametrize(
    "low, high, compatible",
    [
        (0, MIN_SUPPORTED_WIRE_VERSION - 1, False),
        (0, MIN_SUPPORTED_WIRE_VERSION, True),
        (MAX_SUPPORTED_WIRE_VERSION, MAX_SUPPORTED_WIRE_VERSION + 5, True),
        (MAX_SUPPORTED_WIRE_VERSION + 1, MAX_SUPPORTED_WIRE_VERSION + 5, False),
    ],
)
def test_wire_range_edges(low: int, high: int, compatible: bool) -> None:
    view = seeded(A).apply(wired(A, "primary", low, high))
    assert view.compatible is compatible


@pytest.mark.parametrize("kind", ["arbiter", "other", "hidden", "primary"])
def test_every_known_member_type_counts(kind: str) -> None:
    view = seeded(A, B).apply(wired(A, "primary", 0, 17, hosts=(A, B)))
    assert not view.apply(wired(B, kind, 0, 1, hosts=(A, B))).compatible


def test_incompatible_ghost_counts() -> None:
    view = seeded(A, B).apply(wired(A, "primary", 0, 17, hosts=(A, B)))
    ghost = ServerDescription.from_reply(
        B, {"ok": 1, "isreplicaset": True, "minWireVersion": 0, "maxWireVersion": 1}, 0.0
    )
    view = view.apply(ghost)
    assert view.members[B].server_type is ServerType.GHOST
    assert not view.compatible


def test_view_becomes_compatible_again_when_the_member_changes_or_leaves() -> None:
    view = seeded(A, B).apply(wired(A, "primary", 0, 17, hosts=(A, B)))
    bad = view.apply(wired(B, "secondary", 999, 1000, hosts=(A, B)))
    assert not bad.compatible
    assert bad.apply(wired(B, "secondary", 0, 17, hosts=(A, B))).compatible  # upgraded
    assert bad.mark_unknown(B, "connection refused").compatible  # unreachable: unknown
    assert bad.apply(wired(A, "primary", 0, 17, hosts=(A,))).compatible  # removed by primary
    still = bad.apply(wired(A, "primary", 0, 17, hosts=(A, B)))
    assert not still.compatible  # an unrelated change keeps the error
