"""maxStalenessSeconds: the staleness formulas, selection, validation, and the wire.

The cases follow the rules of the "Max Staleness" and "Server Selection" specifications
(their worked examples, and the situations of their test directories, with our own numbers):
pure functions on hand-made descriptions first, then ``ReplicaSetConnection`` against
mockupdb replica sets whose members report ``lastWrite`` dates of different ages, then a
real SecantusDB member's ``lastWriteDate``.
"""

from __future__ import annotations

import datetime
import pickle
import re
import time
import types
from typing import Any, Dict, List, Optional

import pytest
from bson.datetime_ms import DatetimeMS
from mock_replica_set import MockReplicaSet
from servers import SecantusServer
from waiting import wait_until

from wireclient.client.replica_set import ReplicaSetConnection
from wireclient.errors import ConfigurationError, ServerSelectionTimeout
from wireclient.rules.options import (
    NO_MAX_STALENESS,
    max_staleness_value,
    merge_options,
    validate_options,
)
from wireclient.rules.uri import Address, parse_uri
from wireclient.sdam.read_preferences import ReadPreference, select
from wireclient.sdam.server_rules import ServerType
from wireclient.sdam.staleness import (
    IDLE_WRITE_PERIOD,
    MAX_STALENESS_WIRE_VERSION,
    SMALLEST_MAX_STALENESS,
    check_max_staleness,
    check_wire_versions,
    estimate_staleness,
    last_write_date,
    staleness_with_primary,
    staleness_without_primary,
)
from wireclient.sdam.topology import ServerDescription, TopologyView

P: Address = ("p", 27017)
S1: Address = ("s1", 27017)
S2: Address = ("s2", 27017)
S3: Address = ("s3", 27017)


def member(
    address: Address,
    kind: ServerType = ServerType.SECONDARY,
    write: Optional[float] = None,
    update: Optional[float] = 0.0,
    rtt: float = 0.005,
    tags: Optional[Dict[str, str]] = None,
    wire: int = 17,
) -> ServerDescription:
    return ServerDescription(
        address=address,
        server_type=kind,
        set_name="rs",
        tags=tags or {},
        max_wire_version=wire,
        round_trip_time=rtt,
        last_write_date=write,
        last_update_time=update,
    )


def primary(write: Optional[float] = None, update: Optional[float] = 0.0, **kw: Any) -> Any:
    return member(P, ServerType.PRIMARY, write, update, **kw)


def view(*descriptions: ServerDescription) -> TopologyView:
    members = {sd.address: sd for sd in descriptions}
    primaries = [sd.address for sd in descriptions if sd.server_type is ServerType.PRIMARY]
    return TopologyView(
        set_name="rs",
        members=types.MappingProxyType(members),
        primary=primaries[0] if primaries else None,
    )


def rp(mode: str, max_staleness: int = 100, tags: Any = None) -> ReadPreference:
    return ReadPreference(mode, tags, max_staleness)


# -- the formulas -------------------------------------------------------------------------


def test_constants() -> None:
    assert (NO_MAX_STALENESS, SMALLEST_MAX_STALENESS) == (-1, 90)
    assert IDLE_WRITE_PERIOD == 10.0
    assert MAX_STALENESS_WIRE_VERSION == 5


def test_the_spec_example_with_a_primary() -> None:
    # The primary's clock is 50 s ahead of the client's; heartbeat 10 s. Checked at 60:
    p, s = primary(write=10, update=60), member(S1, write=0, update=60)
    assert staleness_with_primary(s, p, 10) == 20
    s = member(S1, write=5, update=70)  # re-checked at 70: 5 s further behind
    assert staleness_with_primary(s, p, 10) == 25
    p = primary(write=30, update=80)  # the primary's answer arrives at 80: still 25
    assert staleness_with_primary(s, p, 10) == 25


def test_the_spec_example_without_a_primary() -> None:
    s1, s2 = member(S1, write=20), member(S2, write=5)
    estimates = estimate_staleness(view(s1, s2), 10)
    assert estimates == {S1: 10, S2: 25}
    assert staleness_without_primary(s2, 20, 10) == 25


def test_clock_skew_between_client_and_primary_does_not_matter() -> None:
    hour = 3600.0
    for skew in (0.0, hour, -hour):
        p = primary(write=1000 + skew, update=5.0)
        s = member(S1, write=970 + skew, update=5.5)
        assert staleness_with_primary(s, p, 10) == pytest.approx(30.5 + 10)


def test_missing_dates_give_no_estimate() -> None:
    assert staleness_with_primary(member(S1, write=None), primary(write=5), 10) is None
    assert staleness_with_primary(member(S1, write=5), primary(write=None), 10) is None
    assert staleness_with_primary(member(S1, write=5, update=None), primary(write=5), 10) is None
    assert staleness_without_primary(member(S1, write=None), 20, 10) is None
    assert staleness_without_primary(member(S1, write=3), None, 10) is None
    # without a primary, SMax is the newest secondary that reported a date
    estimates = estimate_staleness(view(member(S1, write=20), member(S2)), 10)
    assert estimates == {S1: 10, S2: None}
    assert estimate_staleness(view(member(S1), member(S2)), 10) == {S1: None, S2: None}


def test_last_write_date_is_read_from_hello() -> None:
    epoch = datetime.datetime(1970, 1, 1)
    naive = epoch + datetime.timedelta(seconds=1_700_000_000.25)  # bson's default: naive UTC
    aware = naive.replace(tzinfo=datetime.timezone.utc)
    assert last_write_date({"lastWrite": {"lastWriteDate": naive}}) == 1_700_000_000.25
    assert last_write_date({"lastWrite": {"lastWriteDate": aware}}) == 1_700_000_000.25
    other_zone = aware.astimezone(datetime.timezone(datetime.timedelta(hours=5)))
    assert last_write_date({"lastWrite": {"lastWriteDate": other_zone}}) == 1_700_000_000.25
    assert last_write_date({"lastWrite": {"lastWriteDate": DatetimeMS(1500)}}) == 1.5
    for junk in ({}, {"lastWrite": None}, {"lastWrite": {}}, {"lastWrite": "x"}):
        assert last_write_date(junk) is None
    for value in ("2024-01-01", True, None, [1]):
        assert last_write_date({"lastWrite": {"lastWriteDate": value}}) is None


def test_server_description_records_last_write_and_update_time() -> None:
    when = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    reply = {
        "ok": 1,
        "setName": "rs",
        "secondary": True,
        "hosts": ["s1:27017"],
        "maxWireVersion": 17,
        "lastWrite": {"lastWriteDate": when, "opTime": {"ts": 1, "t": 1}},
    }
    before = time.monotonic()
    sd = ServerDescription.from_reply(S1, reply, 0.001)
    assert sd.last_write_date == when.timestamp()
    assert sd.last_update_time is not None and before <= sd.last_update_time <= time.monotonic()
    explicit = ServerDescription.from_reply(S1, reply, 0.001, last_update_time=7.0)
    assert explicit.last_update_time == 7
    del reply["lastWrite"]
    assert ServerDescription.from_reply(S1, reply, 0.001).last_write_date is None
    assert ServerDescription.unknown(S1).last_write_date is None


# -- validation of the value --------------------------------------------------------------


def test_value_rules() -> None:
    assert max_staleness_value(None) == -1
    assert max_staleness_value(-1) == max_staleness_value("-1", from_text=True) == -1
    assert max_staleness_value(120) == max_staleness_value("120", from_text=True) == 120
    assert max_staleness_value(1) == 1  # small values pass here: the set's rules come later
    for bad in (0, "0", -2, "-5", 1.5, "1.5", "abc", "", True, [120], " 120"):
        with pytest.raises(ConfigurationError, match="maxStalenessSeconds"):
            max_staleness_value(bad, from_text=True)
    with pytest.raises(ConfigurationError, match="integer"):
        max_staleness_value("120")  # text only from a URI


def test_smallest_values_for_a_replica_set() -> None:
    check_max_staleness(-1, 1000.0)  # no maximum: always fine
    check_max_staleness(90, 10.0)
    check_max_staleness(90, 0.5)
    check_max_staleness(100, 90.0)  # exactly heartbeat + idle write period
    with pytest.raises(ConfigurationError, match="at least 90"):
        check_max_staleness(89, 0.5)
    with pytest.raises(ConfigurationError, match=r"heartbeatFrequencyMS \+ 10 s = 100 s"):
        check_max_staleness(99, 90.0)


def test_wire_version_rule_counts_available_members_only() -> None:
    old = member(S1, write=1, wire=MAX_STALENESS_WIRE_VERSION - 1)
    check_wire_versions(view(primary(write=1), old), NO_MAX_STALENESS)
    with pytest.raises(ConfigurationError, match="maxWireVersion 4"):
        check_wire_versions(view(primary(write=1), old), 90)
    unknown = ServerDescription.unknown(S2)  # maxWireVersion 0, but not available
    check_wire_versions(view(primary(write=1), member(S1, write=1), unknown), 90)


# -- selection on hand-made views ---------------------------------------------------------

# heartbeat 10 s, max staleness 100 s; the primary wrote at 1000 and was checked at 0
FRESH = member(S1, write=980)  # staleness 20 + 10 = 30
EDGE = member(S2, write=910)  # 90 + 10 = 100: exactly the maximum, still eligible
STALE = member(S3, write=900)  # 100 + 10 = 110


def test_secondary_mode_drops_the_stale_ones() -> None:
    topology = view(primary(write=1000), FRESH, EDGE, STALE)
    assert set(select(topology, rp("secondary"), local_threshold_ms=1e9)) == {S1, S2}
    assert set(select(topology, rp("secondary", -1), local_threshold_ms=1e9)) == {S1, S2, S3}
    assert select(view(primary(write=1000), STALE), rp("secondary")) == []  # no fallback


def test_secondary_preferred_falls_back_to_the_primary_when_all_are_stale() -> None:
    assert select(view(primary(write=1000), STALE), rp("secondaryPreferred")) == [P]
    assert select(view(primary(write=1000), FRESH, STALE), rp("secondaryPreferred")) == [S1]


def test_nearest_keeps_the_primary_and_the_fresh() -> None:
    topology = view(primary(write=1000), FRESH, STALE)
    assert set(select(topology, rp("nearest"), local_threshold_ms=1e9)) == {P, S1}


def test_primary_preferred_uses_fresh_secondaries_only_without_a_primary() -> None:
    with_primary = view(primary(write=1000), FRESH, STALE)
    assert select(with_primary, rp("primaryPreferred")) == [P]
    # no primary: measured from the newest secondary (S1 at 980): S3 is 80 + 10 = 90 behind
    no_primary = view(FRESH, STALE, member(S2, write=870))
    assert set(select(no_primary, rp("primaryPreferred"), local_threshold_ms=1e9)) == {S1, S3}


def test_no_primary_and_no_dates_means_no_eligible_secondary() -> None:
    assert select(view(member(S1), member(S2)), rp("secondary")) == []
    assert select(view(member(S1), member(S2)), rp("secondary", -1), local_threshold_ms=1e9)


def test_a_secondary_without_a_date_is_not_eligible() -> None:
    topology = view(primary(write=1000), member(S1), FRESH._replace(address=S2))
    assert select(topology, rp("secondary")) == [S2]
    assert select(view(primary(write=None), FRESH), rp("secondaryPreferred")) == [P]


def test_staleness_is_applied_before_tag_sets() -> None:
    nyc = FRESH._replace(address=S1, tags={"dc": "nyc"}, last_write_date=800)  # stale
    tokyo = FRESH._replace(address=S2, tags={"dc": "tokyo"})
    tags = [{"dc": "nyc"}, {"dc": "tokyo"}]
    topology = view(primary(write=1000), nyc, tokyo)
    # tags first would pick nyc (the first tag set that matches) and then find it stale
    assert select(topology, rp("secondary", tags=tags)) == [S2]
    assert select(topology, rp("secondaryPreferred", tags=tags)) == [S2]
    assert select(topology, rp("secondary", -1, tags=tags)) == [S1]


def test_staleness_is_applied_before_the_latency_window() -> None:
    fast_but_stale = STALE._replace(round_trip_time=0.001)
    slow_but_fresh = FRESH._replace(round_trip_time=0.030)
    topology = view(primary(write=1000, rtt=0.100), fast_but_stale, slow_but_fresh)
    # the window measured from the stale one (1 ms + 15 ms) would leave nothing
    assert select(topology, rp("secondary")) == [S1]


def test_the_heartbeat_frequency_enters_the_estimate() -> None:
    topology = view(primary(write=1000), member(S1, write=920))  # 80 s behind
    assert select(topology, rp("secondary"), heartbeat_frequency=10) == [S1]  # 90 <= 100
    assert select(topology, rp("secondary"), heartbeat_frequency=20.5) == []  # 100.5 > 100


def test_selection_raises_for_values_the_set_cannot_honour() -> None:
    topology = view(primary(write=1000), FRESH)
    with pytest.raises(ConfigurationError, match="at least 90"):
        select(topology, rp("secondary", 60), heartbeat_frequency=0.5)
    with pytest.raises(ConfigurationError, match="heartbeatFrequencyMS"):
        select(topology, rp("nearest", 100), heartbeat_frequency=95)
    # checked whatever the mode would have chosen (primaryPreferred with a primary too)
    with pytest.raises(ConfigurationError):
        select(topology, rp("primaryPreferred", 60))
    old = view(primary(write=1000, wire=4), FRESH)
    with pytest.raises(ConfigurationError, match="wire version 5"):
        select(old, rp("secondaryPreferred", 120))
    assert select(old, rp("secondaryPreferred", -1)) == [S1]


# -- the ReadPreference object -------------------------------------------------------------


def test_read_preference_carries_max_staleness() -> None:
    pref = ReadPreference("secondary", max_staleness=120)
    assert pref.max_staleness == 120
    assert ReadPreference.SECONDARY.max_staleness == -1
    assert ReadPreference("nearest", max_staleness=None).max_staleness == -1
    assert pref.document() == {"mode": "secondary", "maxStalenessSeconds": 120}
    assert type(pref.document()["maxStalenessSeconds"]) is int  # an int32 on the wire
    assert ReadPreference.SECONDARY.document() == {"mode": "secondary"}
    tagged = ReadPreference("nearest", [{"dc": "ny"}, {}], 90)
    assert tagged.document() == {
        "mode": "nearest",
        "tags": [{"dc": "ny"}, {}],
        "maxStalenessSeconds": 90,
    }
    expected = "ReadPreference('nearest', tag_sets=[{'dc': 'ny'}, {}], max_staleness=90)"
    assert repr(tagged) == expected
    assert repr(pref) == "ReadPreference('secondary', max_staleness=120)"
    assert pref == ReadPreference.SECONDARY.with_max_staleness(120)
    assert pref != ReadPreference.SECONDARY and hash(pref) != hash(ReadPreference.SECONDARY)
    assert pickle.loads(pickle.dumps(tagged)) == tagged
    assert tagged.with_tag_sets([{"dc": "sf"}]).max_staleness == 90
    assert tagged.with_max_staleness(-1).tag_sets == [{"dc": "ny"}, {}]
    assert tagged.with_max_staleness(None) == ReadPreference("nearest", [{"dc": "ny"}, {}])


def test_read_preference_validation() -> None:
    ReadPreference("primary", max_staleness=-1)  # "no maximum" is fine with primary
    with pytest.raises(ConfigurationError, match="PRIMARY cannot have a max staleness"):
        ReadPreference("primary", max_staleness=120)
    for bad in (0, -2, 1.5, True, "120"):
        with pytest.raises(ConfigurationError, match="max_staleness"):
            ReadPreference("secondary", max_staleness=bad)


def test_read_preference_from_options() -> None:
    options = {"readPreference": "nearest", "readPreferenceTags": [{"dc": "ny"}]}
    assert ReadPreference.from_options(options).max_staleness == -1
    options["maxStalenessSeconds"] = 150
    assert ReadPreference.from_options(options) == ReadPreference("nearest", [{"dc": "ny"}], 150)
    assert ReadPreference.from_options({}) == ReadPreference.PRIMARY


# -- the option, in the URI and as a keyword ----------------------------------------------


def test_uri_option() -> None:
    uri = "mongodb://host/?readPreference=secondary&maxStalenessSeconds=120"
    assert parse_uri(uri).options["maxStalenessSeconds"] == 120
    uri = "mongodb://host/?readPreference=secondary&MAXSTALENESSSECONDS=-1"
    assert parse_uri(uri).options["maxStalenessSeconds"] == -1
    parse_uri("mongodb://host/?readPreference=primary&maxStalenessSeconds=-1")  # valid
    parse_uri("mongodb://host/?maxStalenessSeconds=-1")
    # a small value is not an error when parsed: only a replica set gives the 90 s rule
    assert (
        parse_uri("mongodb://h/?readPreference=nearest&maxStalenessSeconds=1").options[
            "maxStalenessSeconds"
        ]
        == 1
    )


@pytest.mark.parametrize(
    "query, message",
    [
        ("maxStalenessSeconds=120", "other than 'primary'"),
        ("readPreference=primary&maxStalenessSeconds=120", "other than 'primary'"),
        ("readPreference=secondary&maxStalenessSeconds=0", "positive"),
        ("readPreference=secondary&maxStalenessSeconds=-2", "positive"),
        ("readPreference=secondary&maxStalenessSeconds=1.5", "integer"),
        ("readPreference=secondary&maxStalenessSeconds=", "integer"),
        ("readPreference=secondary&maxStalenessSeconds=90&maxStalenessSeconds=90", "once"),
    ],
)
def test_invalid_uris(query: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_uri(f"mongodb://host/?{query}")


def test_keyword_option() -> None:
    options = validate_options({"read_preference": "secondary", "maxStalenessSeconds": 120})
    assert options["maxStalenessSeconds"] == 120
    with pytest.raises(ConfigurationError, match="must be an int"):
        validate_options({"readPreference": "secondary", "maxStalenessSeconds": "120"})
    with pytest.raises(ConfigurationError, match="other than 'primary'"):
        validate_options({"maxStalenessSeconds": 120})
    # the URI's mode and a keyword's max staleness make one valid set
    uri = parse_uri("mongodb://h/?readPreference=nearest").options
    assert merge_options(uri, {"maxStalenessSeconds": 100})["maxStalenessSeconds"] == 100
    # a ReadPreference object brings its max staleness along
    carried = validate_options({"read_preference": ReadPreference("nearest", max_staleness=95)})
    assert carried == {"readPreference": "nearest", "maxStalenessSeconds": 95}
    with pytest.raises(ConfigurationError, match="conflicts"):
        validate_options(
            {
                "read_preference": ReadPreference("nearest", max_staleness=95),
                "maxStalenessSeconds": 100,
            }
        )


# -- against mockupdb replica sets --------------------------------------------------------


def written(seconds_ago: float, skew: float = 0.0) -> Dict[str, Any]:
    """A hello's ``lastWrite`` for a member whose last write is ``seconds_ago`` old, by a
    primary clock ``skew`` seconds ahead of ours."""
    when = datetime.datetime.now(datetime.timezone.utc)
    when += datetime.timedelta(seconds=skew - seconds_ago)
    return {"lastWrite": {"lastWriteDate": when, "opTime": {"ts": 1, "t": 1}}}


def set_lag(rs: MockReplicaSet, lags: List[Optional[float]], skew: float = 0.0) -> None:
    for m, lag in zip(rs.members, lags):
        m.extra.pop("lastWrite", None)
        if lag is not None:
            m.extra.update(written(lag, skew))


def connect(rs: MockReplicaSet, **kw: Any) -> ReplicaSetConnection:
    kw.setdefault("replicaSet", "rs")
    kw.setdefault("connectTimeoutMS", 2000)
    kw.setdefault("serverSelectionTimeoutMS", 1500)
    kw.setdefault("heartbeatFrequencyMS", 500)
    kw.setdefault("auto_start_request", False)  # a request would pin reads to one member
    kw.setdefault("localThresholdMS", 10_000)  # a slow first check must not leave the window
    return ReplicaSetConnection(rs.seeds, **kw)


def finds(rs: MockReplicaSet) -> List[int]:
    return [len(m.commands("find")) for m in rs.members]


def read_many(c: ReplicaSetConnection, n: int = 30, **kw: Any) -> None:
    for _ in range(n):
        c.db.c.find_one(**kw)


def test_a_stale_secondary_is_not_read_from(rs: MockReplicaSet) -> None:
    set_lag(rs, [0, 5, 200], skew=3600)  # the primary's clock an hour ahead: no matter
    with connect(rs, readPreference="secondary", maxStalenessSeconds=90) as c:
        assert c.read_preference == ReadPreference("secondary", max_staleness=90)
        read_many(c)
        assert finds(rs) == [0, 30, 0]
        # every find told the member the read preference, max staleness included
        sent = rs[1].commands("find")[-1]["$readPreference"]
        assert sent == {"mode": "secondary", "maxStalenessSeconds": 90}
        # the stale member catches up: after a check it is read from too
        set_lag(rs, [0, 5, 5], skew=3600)
        c.refresh()
        read_many(c, 40)
        assert finds(rs)[0] == 0 and finds(rs)[2] > 0


def test_without_max_staleness_the_stale_secondary_serves_reads(rs: MockReplicaSet) -> None:
    set_lag(rs, [0, 5, 200])
    with connect(rs, readPreference="secondary") as c:
        read_many(c, 40)
        assert finds(rs)[1] > 0 and finds(rs)[2] > 0
        assert "maxStalenessSeconds" not in rs[1].commands("find")[-1]["$readPreference"]


def test_per_operation_max_staleness(rs: MockReplicaSet) -> None:
    set_lag(rs, [0, 5, 200])
    with connect(rs, readPreference="secondary") as c:
        read_many(c, 20, read_preference=ReadPreference("secondary", max_staleness=120))
        assert finds(rs) == [0, 20, 0]
        coll = c.db.get_collection("c", read_preference=ReadPreference("nearest", None, 120))
        for _ in range(20):
            coll.find_one()
        assert finds(rs)[2] == 0


def test_all_stale_secondary_preferred_reads_from_the_primary(rs: MockReplicaSet) -> None:
    set_lag(rs, [0, 150, 200])
    with connect(rs, readPreference="secondaryPreferred", maxStalenessSeconds=120) as c:
        read_many(c, 10)
        assert finds(rs) == [10, 0, 0]
    set_lag(rs, [0, 150, 200])
    with connect(rs, readPreference="secondary", maxStalenessSeconds=120) as c:
        with pytest.raises(ServerSelectionTimeout, match="max_staleness=120") as info:
            c.db.c.find_one()
        message = str(info.value)
        assert "estimated staleness (max 120 s): " in message
        # 150 s and 200 s behind, plus the 0.5 s heartbeat
        assert re.search(rf"{rs[1].host} 15[01] s\b", message), message
        assert re.search(rf"{rs[2].host} 20[01] s\b", message), message


def test_no_primary_measures_from_the_newest_secondary(rs: MockReplicaSet) -> None:
    rs.elect(None)
    set_lag(rs, [1000, 1000 + 50, 1000 + 150])  # all far behind "now": only the gaps count
    with connect(rs, readPreference="primaryPreferred", maxStalenessSeconds=100) as c:
        assert c.primary is None
        read_many(c, 40)
        assert finds(rs)[0] > 0 and finds(rs)[1] > 0 and finds(rs)[2] == 0
        view = c.view
        assert view.members[rs[0].address].last_write_date is not None


def test_a_member_without_last_write_is_not_eligible(rs: MockReplicaSet) -> None:
    set_lag(rs, [0, None, 5])
    with connect(rs, readPreference="secondary", maxStalenessSeconds=90) as c:
        read_many(c, 20)
        assert finds(rs) == [0, 0, 20]


def test_too_small_for_the_heartbeat_is_refused_when_configured(rs: MockReplicaSet) -> None:
    uri = f"mongodb://{rs.seeds}/?replicaSet=rs&readPreference=secondary&maxStalenessSeconds=90"
    with pytest.raises(ConfigurationError, match="heartbeatFrequencyMS"):
        ReplicaSetConnection(uri, heartbeatFrequencyMS=85_000)
    with pytest.raises(ConfigurationError, match="at least 90"):
        connect(rs, readPreference="nearest", maxStalenessSeconds=30)
    with pytest.raises(ConfigurationError, match="other than 'primary'"):
        connect(rs, maxStalenessSeconds=120)
    with connect(rs, readPreference="secondary", maxStalenessSeconds=-1) as c:
        assert c.read_preference.max_staleness == -1
        with pytest.raises(ConfigurationError, match="at least 90"):
            c.read_preference = ReadPreference("secondary", max_staleness=60)
        assert c.read_preference == ReadPreference.SECONDARY
        # a per-operation value is checked when the read selects a member
        with pytest.raises(ConfigurationError, match="at least 90"):
            c.db.c.find_one(read_preference=ReadPreference("secondary", max_staleness=60))


def test_old_members_refuse_max_staleness_at_selection() -> None:
    rs = MockReplicaSet(2, max_wire_version=4)  # MongoDB 3.2: no lastWrite yet
    try:
        with connect(rs, readPreference="secondaryPreferred", maxStalenessSeconds=90) as c:
            with pytest.raises(ConfigurationError, match="wire version 5"):
                c.db.c.find_one()
            c.db.c.find_one(read_preference=ReadPreference.SECONDARY_PREFERRED)  # fine
    finally:
        rs.close()


# -- a real server ------------------------------------------------------------------------


def test_secantus_reports_last_write_date(server: SecantusServer) -> None:
    with ReplicaSetConnection(
        server.uri,
        replicaSet="secantus",
        heartbeatFrequencyMS=500,
        readPreference="nearest",
        maxStalenessSeconds=90,
    ) as c:
        first = c.view.members[c.view.primary].last_write_date
        assert first is not None and abs(first - time.time()) < 60
        c.test.staleness.insert({"x": 1})
        assert c.test.staleness.find_one({"x": 1}) is not None  # the primary is never stale

        def write_is_later() -> bool:  # once the server's clock has ticked past the first
            c.test.staleness.insert({"x": 2})
            c.refresh()
            later = c.view.members[c.view.primary].last_write_date
            return later is not None and later > first

        assert wait_until(write_is_later, interval=0.05)
        later = c.view.members[c.view.primary].last_write_date
        assert later is not None and first < later < first + 30
        doc = c.test.staleness.find_one(
            read_preference=ReadPreference("secondaryPreferred", max_staleness=120)
        )
        assert doc is not None


def test_a_one_server_connection(server: SecantusServer) -> None:
    from wireclient import Connection

    with Connection(server.uri, maxStalenessSeconds=-1) as c:  # "no maximum": valid, no effect
        assert c.read_preference == ReadPreference.PRIMARY
    with pytest.raises(ConfigurationError, match="replica set"):
        Connection(server.uri, readPreference="secondary", maxStalenessSeconds=120)
    with pytest.raises(ConfigurationError, match="other than 'primary'"):
        Connection(f"{server.uri}?maxStalenessSeconds=120")


def test_settings_keep_the_max_staleness(server: SecantusServer) -> None:
    with ReplicaSetConnection(
        server.uri, replicaSet="secantus", readPreference="nearest", maxStalenessSeconds=150
    ) as c:
        c.tag_sets = [{"dc": "ny"}, {}]
        assert c.read_preference == ReadPreference("nearest", [{"dc": "ny"}, {}], 150)
        db = c.get_database("test", read_preference=ReadPreference("secondary", None, 200))
        assert db.test.read_preference.max_staleness == 200
