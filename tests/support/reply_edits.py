"""Replies edited field by field, and sent as raw OP_MSG frames (mockupdb would add ``ok``):
what the malformed-reply suites (tests/rules/test_replies.py, tests/transport/
test_replies_handshake.py) build their cases with."""

from __future__ import annotations

import struct
from typing import Any, Dict

import bson
from mock_server import Received

DELETE: Any = object()  # as a value: leave the field out


def changed(base: Dict[str, Any], path: str, value: Any) -> Dict[str, Any]:
    """A deep copy of ``base`` with the field at dotted ``path`` set to ``value`` (or
    removed, for DELETE); numeric parts index arrays."""
    doc = bson.decode(bson.encode(base))
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


def send_raw(cmd: Received, doc: Dict[str, Any]) -> None:
    """Answer ``cmd`` with an OP_MSG carrying ``doc`` exactly (mockupdb would add ``ok``)."""
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(doc)
    header = struct.pack("<iiii", 16 + len(body), 4242, cmd.request.request_id, 2013)
    cmd.request._client.sendall(header + body)
