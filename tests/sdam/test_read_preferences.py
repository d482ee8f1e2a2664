"""ReadPreference values and member selection over TopologyView snapshots (no I/O)."""

from __future__ import annotations

import pickle
import random
from typing import Any, Dict, Optional

import pytest

from wireclient.errors import ConfigurationError
from wireclient.rules.uri import Address, format_address
from wireclient.sdam.read_preferences import ReadPreference, choose, select
from wireclient.sdam.topology import ServerDescription, TopologyView

P, S1, S2, S3, H, ARB = ("p", 1), ("s1", 2), ("s2", 3), ("s3", 4), ("h", 5), ("arb", 6)
ALL = (P, S1, S2, S3, H, ARB)


def reply(kind: str, tags: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "ok": 1,
        "setName": "rs",
        "hosts": [format_address(a) for a in (P, S1, S2, S3)],
        "passives": [format_address(H)],
        "arbiters": [format_address(ARB)],
        "maxWireVersion": 17,
        "tags": tags or {},
    }
    doc.update(
        {
            "primary": dict(isWritablePrimary=True),
            "secondary": dict(secondary=True),
            "hidden": dict(secondary=True, hidden=True),
            "arbiter": dict(arbiterOnly=True),
        }[kind]
    )
    return doc


def make_view(rtts: Optional[Dict[Address, float]] = None, primary: bool = True) -> TopologyView:
    """p primary (ny), s1 (ny, 10 ms), s2 (sf, 12 ms), s3 (sf, 50 ms), hidden, arbiter."""
    rtts = {P: 0.005, S1: 0.010, S2: 0.012, S3: 0.050, H: 0.001, ARB: 0.001, **(rtts or {})}
    view = TopologyView.from_seeds([P], "rs")
    answers = [
        (P, "primary", {"dc": "ny", "role": "main"}),
        (S1, "secondary", {"dc": "ny"}),
        (S2, "secondary", {"dc": "sf", "rack": "2"}),
        (S3, "secondary", {"dc": "sf"}),
        (H, "hidden", {"dc": "ny"}),
        (ARB, "arbiter", {}),
    ]
    if not primary:
        answers = answers[1:]
        view = TopologyView.from_seeds(ALL, "rs")
    for address, kind, tags in answers:
        view = view.apply(ServerDescription.from_reply(address, reply(kind, tags), rtts[address]))
    return view


# -- the value ---------------------------------------------------------------------------


def test_constants_and_modes() -> None:
    assert ReadPreference.PRIMARY.mode == "primary"
    assert ReadPreference.PRIMARY_PREFERRED.mode == "primaryPreferred"
    assert ReadPreference.SECONDARY.mode == "secondary"
    assert ReadPreference.SECONDARY_PREFERRED.mode == "secondaryPreferred"
    assert ReadPreference.NEAREST.mode == "nearest"
    assert ReadPreference.SECONDARY_PREFERRED.name == "SECONDARY_PREFERRED"
    assert repr(ReadPreference.NEAREST) == "ReadPreference.NEAREST"
    assert not ReadPreference.PRIMARY.secondary_ok and ReadPreference.NEAREST.secondary_ok


def test_equality_hash_and_immutability() -> None:
    tagged = ReadPreference.SECONDARY.with_tag_sets([{"dc": "ny"}, {}])
    assert tagged == ReadPreference("SECONDARY", tag_sets=[{"dc": "ny"}, {}])
    assert tagged != ReadPreference.SECONDARY
    assert len({tagged, ReadPreference("secondary", [{"dc": "ny"}, {}])}) == 1
    assert ReadPreference.SECONDARY.tag_sets == [{}]
    with pytest.raises(AttributeError):
        ReadPreference.SECONDARY.mode = "primary"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(tagged)) == tagged


def test_from_value() -> None:
    assert ReadPreference.from_value(ReadPreference.NEAREST) is ReadPreference.NEAREST
    assert ReadPreference.from_value("secondaryPreferred") == ReadPreference.SECONDARY_PREFERRED
    assert ReadPreference.from_value("PRIMARY_PREFERRED") == ReadPreference.PRIMARY_PREFERRED
    assert ReadPreference.from_value(2) == ReadPreference.SECONDARY  # pymongo 2.x integers
    for bad in ("sometimes", 7, None, True):
        with pytest.raises(ConfigurationError):
            ReadPreference.from_value(bad)


def test_invalid_tag_sets() -> None:
    with pytest.raises(ConfigurationError):
        ReadPreference("primary", tag_sets=[{"dc": "ny"}])
    with pytest.raises(ConfigurationError):
        ReadPreference("secondary", tag_sets={"dc": "ny"})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ReadPreference("secondary", tag_sets=[])
    with pytest.raises(ConfigurationError):
        ReadPreference("secondary", tag_sets=["dc"])  # type: ignore[list-item]
    assert ReadPreference("primary", tag_sets=[{}]) == ReadPreference.PRIMARY


def test_document() -> None:
    assert ReadPreference.SECONDARY.document() == {"mode": "secondary"}
    assert ReadPreference.PRIMARY.document() == {"mode": "primary"}
    tagged = ReadPreference.NEAREST.with_tag_sets([{"dc": "ny", "rack": "1"}, {}])
    assert tagged.document() == {"mode": "nearest", "tags": [{"dc": "ny", "rack": "1"}, {}]}


# -- selection ---------------------------------------------------------------------------


def test_primary() -> None:
    view = make_view()
    assert select(view, ReadPreference.PRIMARY) == [P]
    assert select(make_view(primary=False), ReadPreference.PRIMARY) == []


def test_primary_preferred() -> None:
    assert select(make_view(), ReadPreference.PRIMARY_PREFERRED) == [P]
    assert select(make_view(primary=False), ReadPreference.PRIMARY_PREFERRED) == [S1, S2]
    tagged = ReadPreference.PRIMARY_PREFERRED.with_tag_sets([{"dc": "sf"}])
    assert select(make_view(), tagged) == [P]  # tags never apply to the primary
    assert select(make_view(primary=False), tagged) == [S2]


def test_secondary_latency_window() -> None:
    view = make_view()
    # s1 10 ms, s2 12 ms within 15 ms of the fastest; s3 at 50 ms is not
    assert select(view, ReadPreference.SECONDARY) == [S1, S2]
    assert select(view, ReadPreference.SECONDARY, local_threshold_ms=100) == [S1, S2, S3]
    assert select(view, ReadPreference.SECONDARY, local_threshold_ms=0) == [S1]


def test_hidden_and_arbiters_are_never_chosen() -> None:
    view = make_view()
    for pref in (
        ReadPreference.SECONDARY,
        ReadPreference.NEAREST,
        ReadPreference.SECONDARY_PREFERRED,
        ReadPreference.PRIMARY_PREFERRED,
    ):
        chosen = select(view, pref, local_threshold_ms=10_000)
        assert H not in chosen and ARB not in chosen, pref


def test_secondary_with_no_secondaries() -> None:
    view = TopologyView.from_seeds([P], "rs").apply(
        ServerDescription.from_reply(P, reply("primary"), 0.001)
    )
    assert select(view, ReadPreference.SECONDARY) == []
    assert select(view, ReadPreference.SECONDARY_PREFERRED) == [P]


def test_first_matching_tag_set_wins() -> None:
    view = make_view()
    sf_first = ReadPreference.SECONDARY.with_tag_sets([{"dc": "sf"}, {"dc": "ny"}])
    assert select(view, sf_first) == [S2]  # s3 is sf too but out of the window (50 ms vs 12 ms)
    assert select(view, sf_first, local_threshold_ms=100) == [S2, S3]
    none_first = ReadPreference.SECONDARY.with_tag_sets([{"dc": "tokyo"}, {"dc": "ny"}])
    assert select(view, none_first) == [S1]
    all_tags = ReadPreference.SECONDARY.with_tag_sets([{"dc": "sf", "rack": "2"}])
    assert select(view, all_tags) == [S2]
    nothing = ReadPreference.SECONDARY.with_tag_sets([{"dc": "tokyo"}])
    assert select(view, nothing) == []


def test_window_applies_after_tags() -> None:
    view = make_view({S2: 0.100, S3: 0.110})
    sf = ReadPreference.SECONDARY.with_tag_sets([{"dc": "sf"}])
    assert select(view, sf) == [S2, S3]  # 100 and 110 ms: both within 15 ms of the fastest sf


def test_tag_sets_argument_overrides() -> None:
    view = make_view()
    assert select(view, ReadPreference.SECONDARY, tag_sets=[{"dc": "sf"}]) == [S2]


def test_secondary_preferred_falls_back_to_primary_when_tags_match_nothing() -> None:
    view = make_view()
    pref = ReadPreference.SECONDARY_PREFERRED.with_tag_sets([{"dc": "tokyo"}])
    assert select(view, pref) == [P]


def test_nearest_includes_the_primary() -> None:
    view = make_view()
    assert select(view, ReadPreference.NEAREST) == [P, S1, S2]
    main = ReadPreference.NEAREST.with_tag_sets([{"role": "main"}])
    assert select(view, main) == [P]
    ny = ReadPreference.NEAREST.with_tag_sets([{"dc": "ny"}])
    assert select(view, ny) == [P, S1]


def test_unknown_members_are_not_chosen() -> None:
    view = make_view().mark_unknown(S1, "down")
    assert select(view, ReadPreference.SECONDARY) == [S2]
    view = view.mark_unknown(P, "down")
    assert select(view, ReadPreference.PRIMARY) == []
    assert select(view, ReadPreference.NEAREST) == [S2]


def test_choose_is_random_within_window() -> None:
    view = make_view()
    rng = random.Random(7)
    seen = {choose(view, ReadPreference.SECONDARY, rng=rng) for _ in range(200)}
    assert seen == {S1, S2}
    assert choose(view, ReadPreference.SECONDARY.with_tag_sets([{"dc": "x"}])) is None
    assert choose(view) == P
