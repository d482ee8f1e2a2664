"""wireclient.toolkit.compare: replies as documents, what is ignored, cursor ids by
correspondence, and the differences listed by path, with their BSON types."""

from __future__ import annotations

import threading

import pytest
from bson.int64 import Int64
from bson.timestamp import Timestamp

from wireclient import protocol as p
from wireclient.toolkit.compare import (
    DEFAULT_IGNORED,
    MISSING,
    CursorCorrespondence,
    CursorId,
    Difference,
    IgnoreList,
    cursor_ids,
    differences,
    learn_cursor_ids,
    normalise,
    reply_document,
)

IGNORE = IgnoreList()


def diff(left: dict, right: dict, ignore: IgnoreList = IGNORE, cursors=None) -> list:
    return differences(normalise(left, ignore), normalise(right, ignore), cursors)


def test_the_default_list_is_the_documented_one() -> None:
    assert DEFAULT_IGNORED == (
        "$clusterTime",
        "operationTime",
        "electionId",
        "connectionId",
        "localTime",
        "you",
        "lsid",
    )


def test_fields_that_legitimately_differ_are_ignored_at_any_depth() -> None:
    left = {"ok": 1.0, "operationTime": Timestamp(1, 1), "$clusterTime": {"t": 1}, "you": "a:1"}
    right = {"ok": 1.0, "operationTime": Timestamp(9, 9), "$clusterTime": {"t": 2}, "you": "b:2"}
    assert diff(left, right) == []
    nested = {"inprog": [{"lsid": {"id": 1}, "op": "query"}]}
    assert diff(nested, {"inprog": [{"lsid": {"id": 2}, "op": "query"}]}) == []


def test_a_dotted_ignore_path_is_anchored_and_star_matches_one_step() -> None:
    ignore = IGNORE.extended(["cursor.firstBatch.*.at"])
    left = {"cursor": {"firstBatch": [{"at": 1, "x": 1}], "id": 0}, "at": 1}
    right = {"cursor": {"firstBatch": [{"at": 2, "x": 1}], "id": 0}, "at": 2}
    assert diff(left, right, ignore) == [Difference("at", 1, 2)]  # only under the path


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a."])
def test_an_empty_path_step_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        IgnoreList([bad])


def test_values_types_and_missing_fields_are_differences_by_path() -> None:
    left = {"n": 5, "f": 1.0, "b": True, "only": "left", "docs": [{"a": 1}, {"a": 2}]}
    right = {"n": Int64(5), "f": 1, "b": 1, "docs": [{"a": 1}, {"a": 3}, {"a": 4}], "new": 0}
    assert diff(left, right) == [
        Difference("n", 5, Int64(5)),
        Difference("f", 1.0, 1),
        Difference("b", True, 1),
        Difference("only", "left", MISSING),
        Difference("docs.1.a", 2, 3),
        Difference("docs.2", MISSING, {"a": 4}),
        Difference("new", MISSING, 0),
    ]


def test_field_order_is_not_a_difference_and_nan_equals_nan() -> None:
    assert diff({"a": 1, "b": float("nan")}, {"b": float("nan"), "a": 1}) == []


def test_cursor_ids_correspond_rather_than_match() -> None:
    cursors = CursorCorrespondence()
    first = {"cursor": {"id": Int64(111), "firstBatch": []}}
    assert diff(first, {"cursor": {"id": Int64(999), "firstBatch": []}}, cursors=cursors) == []
    again = {"cursor": {"id": Int64(111), "nextBatch": []}}
    assert diff(again, {"cursor": {"id": Int64(999), "nextBatch": []}}, cursors=cursors) == []
    other = diff(again, {"cursor": {"id": Int64(555), "nextBatch": []}}, cursors=cursors)
    assert other == [Difference("cursor.id", 111, 555)]  # 111 is 999's already
    exhausted = diff(again, {"cursor": {"id": Int64(0), "nextBatch": []}}, cursors=cursors)
    assert exhausted == [Difference("cursor.id", 111, 0)]  # live on one side only


def test_kill_cursors_lists_and_op_reply_cursor_ids_are_cursor_ids() -> None:
    reply = {"cursorsKilled": [Int64(7)], "cursorsNotFound": [], "ok": 1.0}
    assert normalise(reply, IGNORE)["cursorsKilled"] == [CursorId(7)]
    legacy = reply_document(p.OpReply([{"x": 1}], cursor_id=42))
    assert normalise(legacy, IGNORE)["cursorID"] == CursorId(42)
    assert cursor_ids(legacy) == [("cursorID", 42)]
    assert cursor_ids({"cursor": {"id": 3}, "cursorsAlive": [4, 5]}) == [
        ("cursor.id", 3),
        ("cursorsAlive.0", 4),
        ("cursorsAlive.1", 5),
    ]


def test_learn_pairs_the_ids_at_the_same_places() -> None:
    pairs = CursorCorrespondence()
    learn_cursor_ids({"cursor": {"id": 10}}, {"cursor": {"id": 20}}, pairs)
    assert pairs.right_of(10) == 20 and pairs.right_of(0) == 0
    assert pairs.right_of(11, wait=0) is None


def test_a_pair_learnt_on_another_thread_wakes_the_waiter() -> None:
    pairs = CursorCorrespondence()
    got = []
    waiter = threading.Thread(target=lambda: got.append(pairs.right_of(5, wait=30)))
    waiter.start()
    assert pairs.match(5, 50)
    waiter.join(30)
    assert got == [50]


def test_reply_documents_of_every_reply_kind() -> None:
    msg = p.OpMsg({"ok": 1.0}, [p.DocumentSequence("docs", [{"a": 1}])])
    assert reply_document(msg) == {"ok": 1.0, "docs": [{"a": 1}]}
    assert reply_document(p.compress(p.OpMsg({"ok": 1.0}))) == {"ok": 1.0}
    assert reply_document(p.OpReply([{"ok": 1}], response_flags=8))["responseFlags"] == 8
    with pytest.raises(ValueError):
        reply_document(p.OpKillCursors([1]))
