"""The operation path's quick acceptance of a reply: what ``replies.check`` would pass,
told by a few exact-class tests. Pure: no I/O.

``replies.check`` names the command and the server in every message it could raise, and
walks the reply field by field. Nearly every reply is a well-formed dict as ``bson`` decoded
it, so the path first asks ``passes_quickly``: a handful of exact-class tests (no
``isinstance`` against ABCs, no message formatted) that accept only what ``check`` would
accept. Anything it is unsure of (an error reply, a ``topologyVersion``, write errors, a
shape it does not know) goes through ``check`` in full, which raises or passes exactly as
before. ``tests/test_replies.py`` holds every malformed reply ``check`` refuses against it.
"""

from __future__ import annotations

from typing import Any

from bson import Int64

from wireclient.rules.replies import _SHAPES, INT64_MAX, INT64_MIN, Document

_INT_CLASSES = frozenset({int, Int64})  # the integers bson decodes (never a bool)
_NUMBER_CLASSES = frozenset({int, Int64, float})
_DICT_ONLY = frozenset({dict})


def _quick_cursor(reply: Document, batch: str) -> Any:
    """The cursor id when ``reply['cursor']`` certainly passes ``cursor``, else None."""
    doc = reply.get("cursor")
    if doc.__class__ is not dict:
        return None
    cursor_id = doc.get("id")
    if cursor_id.__class__ not in _INT_CLASSES or not INT64_MIN <= cursor_id <= INT64_MAX:
        return None
    ns = doc.get("ns", "")
    documents = doc.get(batch)
    if ns.__class__ is not str or documents.__class__ is not list:
        return None
    # every element a dict, tested in C (one set of the classes, not a loop in Python)
    if documents and set(map(type, documents)) != _DICT_ONLY:
        return None
    return cursor_id


def _quick_count(reply: Document, name: str) -> bool:
    value = reply.get(name)
    return value.__class__ in _INT_CLASSES and 0 <= value <= INT64_MAX


def passes_quickly(spec: Document, reply: Document, acknowledged: bool = True) -> bool:
    """True only when ``check(spec, reply, ..., acknowledged)`` would pass; False means
    "not sure": run ``check``. For the operation path: no message is formatted here."""
    if reply.__class__ is not dict:
        return False
    ok = reply.get("ok")
    if ok.__class__ not in _NUMBER_CLASSES or ok != 1:
        return False
    if "topologyVersion" in reply or "writeConcernError" in reply:
        return False
    if "explain" in spec:
        return True
    name = next(iter(spec), "command")
    if name not in _SHAPES:
        return True
    if name == "find" or name == "aggregate":
        return _quick_cursor(reply, "firstBatch") is not None
    if name == "getMore":
        cursor_id = _quick_cursor(reply, "nextBatch")
        return cursor_id is not None and (cursor_id == 0 or cursor_id == spec.get("getMore"))
    if name == "insert" or name == "update" or name == "delete":
        if "upserted" in reply or "writeErrors" in reply:
            return False
        if "nModified" in reply and not _quick_count(reply, "nModified"):
            return False
        if "n" not in reply:  # required only when acknowledged: let check decide
            return False
        return _quick_count(reply, "n")
    if name == "count":
        return _quick_count(reply, "n")
    return False  # listCollections, listIndexes, listDatabases, distinct: check in full


__all__ = ["passes_quickly"]
