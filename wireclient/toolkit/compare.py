"""Comparing two replies to one request, after normalising what legitimately differs.

Pure functions and small values; ``wireclient replay`` (``replay.py``) drives them.

Theory of operation
-------------------
A reply (OP_MSG or OP_REPLY) becomes one document with ``reply_document``: an OP_MSG's body
(with any kind-1 sequences as arrays under their identifiers), or an OP_REPLY's fields and
documents. ``normalise`` then removes the fields an ``IgnoreList`` names (the defaults,
``DEFAULT_IGNORED``, are the fields that differ between any two servers or connections:
cluster and operation times, election ids, connection ids, clocks, the client's address,
session ids) and wraps every cursor id in a ``CursorId``, since two servers never hand out
the same ids.

``differences`` walks two normalised documents side by side and lists each place where
they differ, by dotted path: a field on one side only, another type (a 64-bit ``5`` is not
a 32-bit ``5``, nor a double ``5.0``), another value, arrays of other lengths. Two cursor
ids are equal when they correspond: 0 (exhausted) only to 0, and a live id always to the
same id of the other side. ``CursorCorrespondence`` keeps those pairs, so a getMore that
came back with another server's id is still equal; and it is what rewrites a captured
getMore or killCursors for the server replayed to (``CursorMap`` in ``replay.py``).
"""

from __future__ import annotations

import math
import threading
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from wireclient import protocol

# The fields that differ between any two servers or runs (see docs/protocol-testing.md).
DEFAULT_IGNORED = (
    "$clusterTime",
    "operationTime",
    "electionId",
    "connectionId",
    "localTime",
    "you",
    "lsid",
)

# Where replies carry cursor ids: `cursor.id` (find, aggregate, getMore, listCollections,
# listIndexes ...), killCursors' four lists, and OP_REPLY's cursorID.
CURSOR_ID_LISTS = frozenset({"cursorsKilled", "cursorsNotFound", "cursorsAlive", "cursorsUnknown"})


class CursorId(NamedTuple):
    """A cursor id in a normalised reply: compared by correspondence, never by value."""

    value: int


class Difference(NamedTuple):
    path: str  # dotted, array indexes as numbers ("cursor.firstBatch.0.x"); "" the whole reply
    left: Any  # the value on each side; MISSING when the field is on one side only
    right: Any


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


# --------------------------------------------------------------------------- replies


def reply_document(message: Any) -> Dict[str, Any]:
    """One reply as a document: an OP_MSG's body (kind-1 sequences added as arrays under
    their identifiers), an OP_REPLY's fields and documents, OP_COMPRESSED unwrapped.
    ``ValueError`` for anything that is no reply."""
    if isinstance(message, protocol.OpCompressed):
        message = protocol.decompress(message)
    if isinstance(message, protocol.OpMsg):
        document = dict(message.body)
        for sequence in message.sequences:
            document[sequence.identifier] = list(sequence.documents)
        return document
    if isinstance(message, protocol.OpReply):
        return {
            "responseFlags": message.response_flags,
            "cursorID": message.cursor_id,
            "startingFrom": message.starting_from,
            "documents": list(message.documents),
        }
    raise ValueError(f"not a reply: {type(message).__name__}")


# --------------------------------------------------------------------------- what to ignore


class IgnoreList:
    """Paths whose values are left out of a comparison.

    A bare name (``operationTime``) matches a field of that name at any depth; a dotted
    path (``cursor.firstBatch.*.updatedAt``) matches from the reply's top, ``*`` standing
    for any one field name or array index.
    """

    def __init__(self, paths: Iterable[str] = DEFAULT_IGNORED) -> None:
        self.anywhere: frozenset[str] = frozenset()
        self.anchored: Tuple[Tuple[str, ...], ...] = ()
        anywhere, anchored = set(), []
        for path in paths:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"not a field path: {path!r}")
            if "." in path:
                anchored.append(tuple(path.split(".")))
            else:
                anywhere.add(path)
        self.anywhere = frozenset(anywhere)
        self.anchored = tuple(anchored)
        self.paths = tuple(paths)

    def extended(self, paths: Iterable[str]) -> IgnoreList:
        return IgnoreList(tuple(self.paths) + tuple(paths))

    def ignores(self, path: Sequence[str]) -> bool:
        if path and path[-1] in self.anywhere:
            return True
        return any(
            len(rule) == len(path) and all(r in ("*", p) for r, p in zip(rule, path))
            for rule in self.anchored
        )


def normalise(document: Mapping[str, Any], ignore: IgnoreList) -> Dict[str, Any]:
    """``document`` without the ignored fields, its cursor ids wrapped in ``CursorId``."""
    result = _normalise(document, (), ignore)
    assert isinstance(result, dict)
    return result


def _normalise(value: Any, path: Tuple[str, ...], ignore: IgnoreList) -> Any:
    if isinstance(value, Mapping):
        out: Dict[str, Any] = {}
        for key, item in value.items():
            where = path + (str(key),)
            if ignore.ignores(where):
                continue
            if _is_cursor_id(where, item):
                out[key] = CursorId(int(item))
            elif key in CURSOR_ID_LISTS and isinstance(item, list):
                out[key] = [CursorId(int(i)) if _is_int(i) else i for i in item]
            else:
                out[key] = _normalise(item, where, ignore)
        return out
    if isinstance(value, list):
        return [
            _normalise(item, path + (str(i),), ignore)
            for i, item in enumerate(value)
            if not ignore.ignores(path + (str(i),))
        ]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_cursor_id(path: Tuple[str, ...], value: Any) -> bool:
    if not _is_int(value):
        return False
    return path[-2:] == ("cursor", "id") or path == ("cursorID",)


def cursor_ids(document: Mapping[str, Any]) -> List[Tuple[str, int]]:
    """Every cursor id of a reply document, with its path (the list position included)."""
    found: List[Tuple[str, int]] = []

    def walk(value: Any, path: Tuple[str, ...]) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                where = path + (str(key),)
                if _is_cursor_id(where, item):
                    found.append((".".join(where), int(item)))
                elif key in CURSOR_ID_LISTS and isinstance(item, list):
                    found.extend(
                        (".".join(where + (str(i),)), int(c))
                        for i, c in enumerate(item)
                        if _is_int(c)
                    )
                else:
                    walk(item, where)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (str(i),))

    walk(document, ())
    return found


# --------------------------------------------------------------------------- cursor ids


class CursorCorrespondence:
    """Pairs of cursor ids, one of each side, that stand for the same cursor: 0 pairs with
    0 only, and an id once paired stays paired with the same id. Thread-safe: the
    connections of a replay share it (a cursor opened on one is read on another)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._right_of: Dict[int, int] = {}
        self._left_of: Dict[int, int] = {}

    def match(self, left: int, right: int) -> bool:
        """Whether ``left`` and ``right`` may be the same cursor; if so, they are paired."""
        if left == 0 or right == 0:
            return left == right
        with self._lock:
            known_right = self._right_of.get(left)
            known_left = self._left_of.get(right)
            if known_right is None and known_left is None:
                self._right_of[left] = right
                self._left_of[right] = left
                self._lock.notify_all()
                return True
            return known_right == right and known_left == left

    def right_of(self, left: int, wait: Optional[float] = None) -> Optional[int]:
        """The id paired with ``left`` (0 for 0), waiting up to ``wait`` seconds for the
        pair to be learnt; None when it is not known."""
        if left == 0:
            return 0
        with self._lock:
            self._lock.wait_for(lambda: left in self._right_of, timeout=wait)
            return self._right_of.get(left)


def learn_cursor_ids(
    left: Mapping[str, Any], right: Mapping[str, Any], pairs: CursorCorrespondence
) -> None:
    """Pair the cursor ids found at the same paths of two reply documents."""
    right_ids = dict(cursor_ids(right))
    for path, left_id in cursor_ids(left):
        right_id = right_ids.get(path)
        if right_id is not None:
            pairs.match(left_id, right_id)


# --------------------------------------------------------------------------- the diff


def differences(
    left: Any, right: Any, cursors: Optional[CursorCorrespondence] = None, path: str = ""
) -> List[Difference]:
    """Where two normalised documents differ (in the left document's field order, then
    the fields only the right one has). Field order itself is not compared."""
    found: List[Difference] = []
    _diff(left, right, cursors or CursorCorrespondence(), path, found)
    return found


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _diff(
    left: Any, right: Any, cursors: CursorCorrespondence, path: str, found: List[Difference]
) -> None:
    if isinstance(left, CursorId) and isinstance(right, CursorId):
        if not cursors.match(left.value, right.value):
            found.append(Difference(path, left.value, right.value))
        return
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        for key, item in left.items():
            if key in right:
                _diff(item, right[key], cursors, _join(path, key), found)
            else:
                found.append(Difference(_join(path, key), _plain(item), MISSING))
        for key, item in right.items():
            if key not in left:
                found.append(Difference(_join(path, key), MISSING, _plain(item)))
        return
    if isinstance(left, list) and isinstance(right, list):
        for i, (a, b) in enumerate(zip(left, right)):
            _diff(a, b, cursors, _join(path, i), found)
        for i in range(len(right), len(left)):
            found.append(Difference(_join(path, i), _plain(left[i]), MISSING))
        for i in range(len(left), len(right)):
            found.append(Difference(_join(path, i), MISSING, _plain(right[i])))
        return
    if not _same_scalar(left, right):
        found.append(Difference(path, _plain(left), _plain(right)))


def _same_scalar(left: Any, right: Any) -> bool:
    if type(left) is not type(right):  # int32 / Int64 / double, bool / int are other types
        return False
    if isinstance(left, float) and math.isnan(left) and math.isnan(right):
        return True
    return bool(left == right)


def _plain(value: Any) -> Any:
    """A normalised value back as BSON values (``CursorId`` unwrapped), for reporting."""
    if isinstance(value, CursorId):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "CURSOR_ID_LISTS",
    "DEFAULT_IGNORED",
    "MISSING",
    "CursorCorrespondence",
    "CursorId",
    "Difference",
    "IgnoreList",
    "cursor_ids",
    "differences",
    "learn_cursor_ids",
    "normalise",
    "reply_document",
]
