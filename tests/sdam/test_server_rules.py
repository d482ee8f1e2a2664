"""The SDAM rules on plain values: the (electionId, setVersion) order and the wire range."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from bson import ObjectId

from wireclient.rules import wire
from wireclient.rules.wire import (
    MAX_SUPPORTED_WIRE_VERSION,
    MIN_SUPPORTED_WIRE_VERSION,
    wire_version_error,
)
from wireclient.sdam import server_rules
from wireclient.sdam.server_rules import (
    ELECTION_ID_FIRST_WIRE_VERSION,
    PrimaryVerdict,
    int_or_none,
    judge_primary,
)


def oid(n: int) -> ObjectId:
    return ObjectId(f"{n:024x}")


MODERN = ELECTION_ID_FIRST_WIRE_VERSION  # 6.0
OLD = ELECTION_ID_FIRST_WIRE_VERSION - 1


def test_constants() -> None:
    assert MIN_SUPPORTED_WIRE_VERSION == wire.MIN_SUPPORTED_WIRE_VERSION == 4
    assert MAX_SUPPORTED_WIRE_VERSION == 25
    assert ELECTION_ID_FIRST_WIRE_VERSION == 17
    # one home for each (rules.wire's, sdam.server_rules'): tests/project/test_one_home.py
    assert server_rules.ServerType.PRIMARY.value == "Primary"


# (electionId, setVersion) of the primary, then the topology's maxima, then the verdict
# (stale, new maxElectionId, new maxSetVersion).
MODERN_CASES = [
    # nothing known yet: anything is accepted and becomes the maxima
    ((None, None), (None, None), (False, None, None)),
    ((1, 1), (None, None), (False, 1, 1)),
    # electionId decides first
    ((2, 1), (1, 5), (False, 2, 1)),  # the maxima follow the accepted primary, downwards too
    ((1, 5), (2, 1), (True, 2, 1)),
    ((None, 5), (1, 1), (True, 1, 1)),  # a missing electionId is older than any
    ((1, None), (None, 5), (False, 1, None)),
    # the same electionId: setVersion decides
    ((1, 2), (1, 1), (False, 1, 2)),
    ((1, 1), (1, 1), (False, 1, 1)),  # equal is not older
    ((1, 1), (1, 2), (True, 1, 2)),
    ((1, None), (1, 2), (True, 1, 2)),  # a missing setVersion is older than any
    ((None, 1), (None, 2), (True, None, 2)),
    ((None, 3), (None, 2), (False, None, 3)),
]

PRE_6_0_CASES = [
    ((None, None), (None, None), (False, None, None)),
    ((1, 1), (None, None), (False, 1, 1)),
    # setVersion decides first, when both sides have both values
    ((1, 2), (2, 1), (False, 1, 2)),
    ((2, 1), (1, 2), (True, 1, 2)),
    ((1, 1), (2, 1), (True, 2, 1)),  # equal setVersion: the electionId decides
    ((2, 1), (2, 1), (False, 2, 1)),
    ((3, 1), (2, 1), (False, 3, 1)),
    # not judged without both values on both sides
    ((None, 1), (2, 5), (False, 2, 5)),  # the maxima keep the greater setVersion ...
    ((None, 7), (2, 5), (False, 2, 7)),  # ... and grow with a greater one
    ((1, 1), (None, 5), (False, 1, 5)),  # the electionId is recorded though none was before
    ((1, None), (2, 5), (False, 2, 5)),
]


def expand(value: Optional[int]) -> Any:
    return None if value is None else oid(value)


def run_case(wire: int, server: Any, maxima: Any, expected: Any) -> None:
    verdict = judge_primary(wire, expand(server[0]), server[1], expand(maxima[0]), maxima[1])
    stale, election, set_version = expected
    assert verdict == PrimaryVerdict(stale, expand(election), set_version)


@pytest.mark.parametrize("server, maxima, expected", MODERN_CASES)
def test_modern_order(server: Any, maxima: Any, expected: Any) -> None:
    run_case(MODERN, server, maxima, expected)
    run_case(MAX_SUPPORTED_WIRE_VERSION, server, maxima, expected)


@pytest.mark.parametrize("server, maxima, expected", PRE_6_0_CASES)
def test_pre_6_0_order(server: Any, maxima: Any, expected: Any) -> None:
    run_case(OLD, server, maxima, expected)
    run_case(MIN_SUPPORTED_WIRE_VERSION, server, maxima, expected)


def test_election_ids_compare_as_bytes() -> None:
    low, high = ObjectId(b"\xfe" + bytes(11)), ObjectId(b"\xff" + bytes(11))
    assert judge_primary(MODERN, low, 1, high, 1).stale
    assert not judge_primary(MODERN, high, 1, low, 1).stale
    assert judge_primary(MODERN, b"\x00" * 12, 1, b"\x01" * 12, 1).stale


def test_an_election_id_of_no_known_kind_counts_as_missing() -> None:
    verdict = judge_primary(MODERN, "not-an-oid", 1, oid(1), 1)  # never raises TypeError
    assert verdict.stale
    assert not judge_primary(MODERN, oid(1), 1, "not-an-oid", 1).stale


def test_int_or_none() -> None:
    assert int_or_none(3) == 3 and int_or_none(3.0) == 3 and int_or_none("4") == 4
    for bad in (None, True, "x", [1]):
        assert int_or_none(bad) is None


# -- wire versions -----------------------------------------------------------------------


def test_overlapping_ranges_have_no_error() -> None:
    for low, high in [(0, 4), (0, 17), (25, 30), (4, 4), (0, 1000)]:
        assert wire_version_error("h:1", low, high) is None


def test_server_requiring_too_new_a_wire_version() -> None:
    message = wire_version_error("h:1", 26, 30) or ""
    assert message.startswith("server at h:1 requires wire version 26 or newer")
    assert "26 to 30" in message and "4 to 25" in message


def test_server_too_old() -> None:
    message = wire_version_error("h:1", 0, 3) or ""
    assert message.startswith("server at h:1 speaks only wire versions 0 to 3")
    assert "needs wire version 4 or newer (MongoDB 3.2+" in message and "4 to 25" in message
