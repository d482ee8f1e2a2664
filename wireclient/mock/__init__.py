"""wireclient.mock: a scripted MongoDB server on wireclient's own codec, for protocol tests.

A test starts a ``MockServer``, points any client at ``server.uri``, runs the client's
call with ``server.go(fn, ...)`` (a ``concurrent.futures.Future``), takes what the client
sent with ``server.receives(matcher)`` and answers it (``request.ok(...)``,
``request.fail(code, errmsg)``, ``request.hangup()``, ``request.stream(batches)`` ...), or
sets answers up ahead with ``server.autoresponds(matcher, reply)``. ``ReplicaSet`` and
``Routers`` put several servers in one topology. See docs/mock.md.

Public, and never imported by ``import wireclient``: the client does not depend on it.
"""

from wireclient.mock.replies import (
    Reply,
    fail,
    hangup,
    ok,
    op_reply,
    reply,
    reply_frame,
    stream,
)
from wireclient.mock.requests import ABSENT, Matcher, Request
from wireclient.mock.server import MockServer, NoMatchingRequest
from wireclient.mock.topology import ReplicaSet, Routers

__all__ = [
    "ABSENT",
    "Matcher",
    "MockServer",
    "NoMatchingRequest",
    "ReplicaSet",
    "Reply",
    "Request",
    "Routers",
    "fail",
    "hangup",
    "ok",
    "op_reply",
    "reply",
    "reply_frame",
    "stream",
]
