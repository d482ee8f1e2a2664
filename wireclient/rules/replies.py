"""What a server's reply must look like before the client acts on it. Pure: no I/O.

Theory of operation
-------------------
A reply is a document the server chose. wireclient reads some of its fields to decide what
to do next: how large a message may be, which cursor to continue, which error to raise,
which member is primary. Every such field is checked here before anything reads it. A
field of the wrong type, a required field that is missing, or a value out of its range is a
``ProtocolError`` (``side="remote"``) whose message names the field (``cursor.id``,
``writeErrors.0.code``), the command and the server's address: never a ``KeyError`` or a
``TypeError`` from deep inside. Fields wireclient does not read are not looked at, so what a
newer server adds never breaks it.

Types are BSON's as ``bson`` decodes them: an integer is an int32 or an int64 (``int`` or
``bson.Int64``; a ``bool`` or a double is not an integer), a string is ``str``, a document a
mapping, an array a list. ``ok`` is any number (servers send a double) but not a bool. A
null is a value of the wrong type, not a missing field.

Where the checks run:

* ``check(spec, reply, where)``, on the operation path (``Executor.run`` and
  ``Executor.write``), for every reply to a checked command, before its socket goes back
  (unless ``passes_quickly`` vouches that it would pass, see below):
  the envelope every reply shares (``envelope``: ``ok``; ``errmsg``, ``code``,
  ``codeName``, ``errorLabels`` of a failure; ``topologyVersion``; ``writeConcernError``),
  then, for a successful reply, the shape its command's reply has (``_SHAPES``: cursors,
  writes, ``count``, ``distinct``, ``listDatabases``). A malformed reply document means the
  conversation cannot be trusted, as a malformed frame does: the path closes that socket
  and hands the error to its error handler (the pool is cleared; a replica set marks the
  member Unknown), so a socket that answered nonsense never goes back to a pool.
* ``hello(reply, where)``: the handshake, every later hello of the replica-set monitor
  (``SocketInfo.run_hello``, which closes the socket on a malformed one) and
  ``ServerDescription.from_reply``. Limits a reply leaves out take their defaults (old
  servers and test doubles omit them); a limit of the wrong type or out of range is refused.
* ``sasl(reply, where)``: each ``saslStart`` / ``saslContinue`` reply (``auth.py``).

The quick acceptance. ``check`` names the command and the server in every message it could
raise, and walks the reply field by field. Nearly every reply is a well-formed dict as
``bson`` decoded it, so the path first asks ``passes_quickly``: a handful of exact-class
tests (no ``isinstance`` against ABCs, no message formatted) that accept only what ``check``
would accept. It reads the same rules: the integer and number classes (``_INT_CLASSES``,
``_NUMBER_CLASSES``), the ranges, and one table, ``_SHAPES``, that pairs each command's full
check with its quick one (None: always in full). Anything it is unsure of (an error reply, a
``topologyVersion``, write errors, a shape without a quick check) goes through ``check``,
which raises or passes exactly as before. ``tests/rules/test_replies.py`` holds every malformed
reply ``check`` refuses against it.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from bson import Int64, ObjectId

from wireclient.errors import ConfigurationError, ProtocolError
from wireclient.rules.uri import parse_host
from wireclient.rules.wire import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

Document = Mapping[str, Any]

MIN_MESSAGE_SIZE = 16  # a message header: no smaller limit can mean anything

_MISSING: Any = object()
_KINDS = (
    (bool, "a bool"),
    (int, "an integer"),
    (float, "a double"),
    (str, "a string"),
    (bytes, "binary data"),
    (ObjectId, "an ObjectId"),
    (abc.Mapping, "a document"),
    (list, "an array"),
)


def describe(command: str, address: Optional[str]) -> str:
    """How messages name a reply: ``'find reply from host:27017'``."""
    return f"{command} reply from {address}" if address else f"{command} reply"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for cls, name in _KINDS:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def fail(where: str, field: str, problem: str) -> ProtocolError:
    """The error for one bad field; ``where`` comes from ``describe``."""
    return ProtocolError(f"{where}: field {field!r} {problem}", side="remote")


def _join(path: str, name: Any) -> str:
    return f"{path}.{name}" if path else str(name)


def _get(doc: Document, name: str, where: str, path: str, required: bool) -> Any:
    value = doc.get(name, _MISSING)
    if value is _MISSING and required:
        raise fail(where, _join(path, name), "is missing")
    return value


def _wrong(where: str, field: str, wanted: str, value: Any) -> ProtocolError:
    return fail(where, field, f"must be {wanted}, not {_kind(value)}")


# -- one field ----------------------------------------------------------------------------


# What bson decodes an int32 / int64 as (``Int64`` is an ``int``; a bool never counts), and
# the numbers ``ok`` may be (servers send a double). The quick checks test these exact
# classes; the full ones admit subclasses too (a reply built by hand), bools excepted.
_INT_CLASSES = frozenset({int, Int64})
_NUMBER_CLASSES = _INT_CLASSES | {float}


def is_integer(value: Any) -> bool:
    """An int32 or int64 as decoded (``bson.Int64`` is an ``int``); never a bool."""
    return value.__class__ in _INT_CLASSES or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def _is_number(value: Any) -> bool:
    return value.__class__ in _NUMBER_CLASSES or (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    )


def _surely_integer(value: Any, low: int, high: int) -> bool:
    """The quick form of ``integer``: an integer of an exact class in ``low..high``."""
    return value.__class__ in _INT_CLASSES and low <= value <= high


def integer(
    doc: Document,
    name: str,
    where: str,
    path: str = "",
    low: int = INT64_MIN,
    high: int = INT64_MAX,
    required: bool = True,
) -> Optional[int]:
    """An integer field in ``low..high``; None when it is missing and not ``required``."""
    value = _get(doc, name, where, path, required)
    if value is _MISSING:
        return None
    if not is_integer(value):
        raise _wrong(where, _join(path, name), "an integer", value)
    if not low <= value <= high:
        raise fail(where, _join(path, name), f"is {int(value)}, outside {low}..{high}")
    return int(value)


def required_integer(
    doc: Document,
    name: str,
    where: str,
    path: str = "",
    low: int = INT64_MIN,
    high: int = INT64_MAX,
) -> int:
    value = integer(doc, name, where, path, low, high)
    assert value is not None
    return value


def _typed(
    doc: Document, name: str, where: str, path: str, required: bool, kind: Any, wanted: str
) -> Any:
    """The field if it is of ``kind``; ``_MISSING`` when absent and not ``required``."""
    value = _get(doc, name, where, path, required)
    if value is not _MISSING and not isinstance(value, kind):
        raise _wrong(where, _join(path, name), wanted, value)
    return value


def string(
    doc: Document, name: str, where: str, path: str = "", required: bool = False
) -> Optional[str]:
    value = _typed(doc, name, where, path, required, str, "a string")
    return None if value is _MISSING else value


def boolean(doc: Document, name: str, where: str, path: str = "", required: bool = False) -> bool:
    """A bool field (False when missing and not ``required``)."""
    value = _typed(doc, name, where, path, required, bool, "a bool")
    return False if value is _MISSING else value


def document(
    doc: Document, name: str, where: str, path: str = "", required: bool = False
) -> Optional[Document]:
    value = _typed(doc, name, where, path, required, abc.Mapping, "a document")
    return None if value is _MISSING else value


def array(
    doc: Document,
    name: str,
    where: str,
    path: str = "",
    required: bool = False,
    of: Optional[str] = None,
) -> Optional[List[Any]]:
    """An array field; with ``of`` ('document' or 'string') every element is checked too."""
    value = _get(doc, name, where, path, required)
    if value is _MISSING:
        return None
    field = _join(path, name)
    if not isinstance(value, (list, tuple)):
        raise _wrong(where, field, "an array", value)
    if of is not None:
        cls, wanted = (abc.Mapping, "a document") if of == "document" else (str, "a string")
        for index, item in enumerate(value):
            if not isinstance(item, cls):
                raise _wrong(where, _join(field, index), wanted, item)
    return list(value)


def _documents(doc: Document, name: str, where: str, path: str = "") -> List[Document]:
    value = array(doc, name, where, path, required=True, of="document")
    assert value is not None
    return value


def _addresses(doc: Document, name: str, where: str, many: bool) -> None:
    values = array(doc, name, where, of="string") if many else [string(doc, name, where)]
    for index, text in enumerate(values or ()):
        if text is None:
            continue
        try:
            parse_host(text)
        except ConfigurationError as exc:
            field = _join(name, index) if many else name
            raise fail(where, field, f"is not a host address: {exc}") from None


def topology_version(doc: Document, where: str) -> None:
    """``topologyVersion``, when present: ``{processId: ObjectId, counter: integer >= 0}``."""
    tv = document(doc, "topologyVersion", where)
    if tv is not None:
        value = _get(tv, "processId", where, "topologyVersion", True)
        if not isinstance(value, ObjectId):
            raise _wrong(where, "topologyVersion.processId", "an ObjectId", value)
        integer(tv, "counter", where, "topologyVersion", low=0)


# -- the envelope of every reply ----------------------------------------------------------


def envelope(reply: Document, where: str) -> bool:
    """Check what every command reply shares; True when its ``ok`` is 1."""
    if not isinstance(reply, abc.Mapping):
        raise ProtocolError(f"{where}: the reply is not a document", side="remote")
    ok = _get(reply, "ok", where, "", True)
    if not _is_number(ok):
        raise _wrong(where, "ok", "a number", ok)
    if ok != 1:
        for name in ("errmsg", "codeName", "$err"):
            string(reply, name, where)
        integer(reply, "code", where, low=INT32_MIN, high=INT32_MAX, required=False)
        array(reply, "errorLabels", where, of="string")
    topology_version(reply, where)
    _write_concern_error(reply, where)
    return bool(ok == 1)


def _write_concern_error(reply: Document, where: str) -> None:
    wc_error = document(reply, "writeConcernError", where)
    if wc_error is not None:
        _error_document(wc_error, where, "writeConcernError")


def _error_document(error: Document, where: str, path: str) -> None:
    """A write error or write concern error: an integer ``code`` and a string ``errmsg``."""
    integer(error, "code", where, path, INT32_MIN, INT32_MAX)
    string(error, "errmsg", where, path, required=True)
    document(error, "errInfo", where, path)


# -- replies to particular commands -------------------------------------------------------


def cursor(reply: Document, batch: str, where: str) -> Tuple[int, List[Document]]:
    """``cursor: {id: integer, ns: string (if present), <batch>: [documents]}``."""
    doc = document(reply, "cursor", where, required=True)
    assert doc is not None
    cursor_id = required_integer(doc, "id", where, "cursor")
    string(doc, "ns", where, "cursor")
    return cursor_id, _documents(doc, batch, where, "cursor")


_DICT_ONLY = frozenset({dict})


def _surely_cursor(reply: Document, batch: str) -> Any:
    """The quick form of ``cursor``: the cursor id when ``reply['cursor']`` certainly
    passes it, else None."""
    doc = reply.get("cursor")
    if doc.__class__ is not dict:
        return None
    cursor_id = doc.get("id")
    if not _surely_integer(cursor_id, INT64_MIN, INT64_MAX):
        return None
    documents = doc.get(batch)
    if doc.get("ns", "").__class__ is not str or documents.__class__ is not list:
        return None
    # every element a dict, tested in C (one set of the classes, not a loop in Python)
    if documents and set(map(type, documents)) != _DICT_ONLY:
        return None
    return cursor_id


def _continues(spec: Document, cursor_id: Any) -> bool:
    """A getMore's reply continues the cursor asked for, or ends it (id 0)."""
    return bool(cursor_id == 0 or cursor_id == spec.get("getMore"))


Shape = Callable[[Document, Document, str, bool], None]
Quick = Callable[[Document, Document, bool], bool]


class _Shape:
    """A command's reply shape: its full check, and its quick acceptance (None: none). (A
    slotted class: a NamedTuple class costs about ten times as much to create at import.)"""

    __slots__ = ("check", "quick")

    def __init__(self, check: Shape, quick: Optional[Quick]) -> None:
        self.check = check
        self.quick = quick


def _first_batch(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    cursor(reply, "firstBatch", where)


def _quick_first_batch(spec: Document, reply: Document, acknowledged: bool) -> bool:
    return _surely_cursor(reply, "firstBatch") is not None


def _next_batch(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    cursor_id, _ = cursor(reply, "nextBatch", where)
    if not _continues(spec, cursor_id):
        asked = spec.get("getMore")
        raise fail(where, "cursor.id", f"is {cursor_id}, not the cursor continued ({asked})")


def _quick_next_batch(spec: Document, reply: Document, acknowledged: bool) -> bool:
    cursor_id = _surely_cursor(reply, "nextBatch")
    return cursor_id is not None and _continues(spec, cursor_id)


def _named(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    """listCollections / listIndexes: a cursor of documents that each have a name."""
    _, batch = cursor(reply, "firstBatch", where)
    for index, item in enumerate(batch):
        string(item, "name", where, f"cursor.firstBatch.{index}", required=True)


def _databases(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    for index, item in enumerate(_documents(reply, "databases", where)):
        string(item, "name", where, f"databases.{index}", required=True)


def _count(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    integer(reply, "n", where, low=0)


def _quick_count(spec: Document, reply: Document, acknowledged: bool) -> bool:
    return _surely_integer(reply.get("n"), 0, INT64_MAX)


def _distinct(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    array(reply, "values", where, required=True)


def write(reply: Document, where: str, acknowledged: bool = True) -> None:
    """An insert / update / delete reply: ``n`` (required when the write was acknowledged
    and reports no ``writeErrors``: a reply that only reports its errors may leave the count
    out, as the SDAM specification's ``write_errors_ignored`` case does, and its errors are
    what the caller sees), ``nModified``, ``upserted`` (``[{index, _id}]``) and
    ``writeErrors`` (``[{index, code, errmsg}]``) and ``writeConcernError`` (``{code,
    errmsg}``)."""
    _write_concern_error(reply, where)
    integer(reply, "n", where, low=0, required=acknowledged and "writeErrors" not in reply)
    integer(reply, "nModified", where, low=0, required=False)
    for index, item in enumerate(array(reply, "upserted", where, of="document") or ()):
        integer(item, "index", where, f"upserted.{index}", low=0)
        _get(item, "_id", where, f"upserted.{index}", True)
    for index, item in enumerate(array(reply, "writeErrors", where, of="document") or ()):
        path = f"writeErrors.{index}"
        integer(item, "index", where, path, low=0, required=False)
        _error_document(item, where, path)


def _write(spec: Document, reply: Document, where: str, acknowledged: bool) -> None:
    concern = spec.get("writeConcern")
    if isinstance(concern, abc.Mapping) and concern.get("w") == 0:
        acknowledged = False
    write(reply, where, acknowledged)


def _quick_write(spec: Document, reply: Document, acknowledged: bool) -> bool:
    """Only a reply with a count ``n`` (required when acknowledged: without one, ``check``
    decides), a good ``nModified`` if any, and no ``upserted`` nor ``writeErrors``."""
    if "upserted" in reply or "writeErrors" in reply or "n" not in reply:
        return False
    if "nModified" in reply and not _surely_integer(reply["nModified"], 0, INT64_MAX):
        return False
    return _surely_integer(reply["n"], 0, INT64_MAX)


_SHAPES: Dict[str, _Shape] = {
    "find": _Shape(_first_batch, _quick_first_batch),
    "aggregate": _Shape(_first_batch, _quick_first_batch),
    "getMore": _Shape(_next_batch, _quick_next_batch),
    "listCollections": _Shape(_named, None),
    "listIndexes": _Shape(_named, None),
    "listDatabases": _Shape(_databases, None),
    "count": _Shape(_count, _quick_count),
    "distinct": _Shape(_distinct, None),
    "insert": _Shape(_write, _quick_write),
    "update": _Shape(_write, _quick_write),
    "delete": _Shape(_write, _quick_write),
}


def check(
    spec: Document, reply: Document, address: Optional[str], acknowledged: bool = True
) -> None:
    """Check the reply to the command ``spec`` (see the module notes); ``acknowledged`` is
    False for a write sent with ``w: 0`` whose reply was read anyway (wire 4 and 5)."""
    name = next(iter(spec), "command")
    where = describe(name, address)
    if not envelope(reply, where) or "explain" in spec:
        return  # a failed reply raises its own error; an explanation has no cursor
    shape = _SHAPES.get(name)
    if shape is not None:
        shape.check(spec, reply, where, acknowledged)


def passes_quickly(spec: Document, reply: Document, acknowledged: bool = True) -> bool:
    """True only when ``check(spec, reply, ..., acknowledged)`` would pass; False means
    "not sure": run ``check``. For the operation path: no message is formatted here."""
    if reply.__class__ is not dict:
        return False
    ok = reply.get("ok")
    if ok.__class__ not in _NUMBER_CLASSES or ok != 1:
        return False
    if "topologyVersion" in reply or "writeConcernError" in reply:
        return False  # the envelope's optional parts: check them in full
    if "explain" in spec:
        return True
    shape = _SHAPES.get(next(iter(spec), "command"))
    if shape is None:
        return True
    quick = shape.quick
    return quick is not None and quick(spec, reply, acknowledged)


# -- hello --------------------------------------------------------------------------------


class HelloLimits(NamedTuple):
    """The limits a hello reply sets for its socket; None where the reply says nothing."""

    max_wire_version: int
    min_wire_version: int
    max_bson_size: Optional[int]
    max_message_size: Optional[int]
    max_write_batch_size: Optional[int]
    connection_id: Optional[int]


_HELLO_BOOLS = (
    "isWritablePrimary",
    "ismaster",
    "secondary",
    "hidden",
    "passive",
    "arbiterOnly",
    "isreplicaset",
    "helloOk",
)


def hello(reply: Document, where: str) -> Optional[HelloLimits]:
    """Check a ``hello`` / ``isMaster`` reply; its limits, or None when its ``ok`` is not 1.

    Checked: the envelope; wire versions (0..2**31-1, ``minWireVersion`` not above
    ``maxWireVersion``); ``maxBsonObjectSize`` >= 1, ``maxMessageSizeBytes`` >= 16,
    ``maxWriteBatchSize`` >= 1 (all at most 2**31-1); ``connectionId``; the member's view
    of its set (``setName``, ``hosts``, ``passives``, ``arbiters``, ``primary``, ``me``
    as host addresses, ``tags`` of strings, ``electionId``, ``setVersion``,
    ``topologyVersion``, ``msg``); the role flags; ``saslSupportedMechs``.
    """
    if not envelope(reply, where):
        return None
    max_wire = integer(reply, "maxWireVersion", where, low=0, high=INT32_MAX, required=False)
    min_wire = integer(reply, "minWireVersion", where, low=0, high=INT32_MAX, required=False)
    max_wire, min_wire = max_wire or 0, min_wire or 0
    if min_wire > max_wire:
        raise fail(where, "minWireVersion", f"is {min_wire}, above maxWireVersion {max_wire}")
    limits = HelloLimits(
        max_wire,
        min_wire,
        integer(reply, "maxBsonObjectSize", where, low=1, high=INT32_MAX, required=False),
        integer(
            reply,
            "maxMessageSizeBytes",
            where,
            low=MIN_MESSAGE_SIZE,
            high=INT32_MAX,
            required=False,
        ),
        integer(reply, "maxWriteBatchSize", where, low=1, high=INT32_MAX, required=False),
        integer(reply, "connectionId", where, required=False),
    )
    for name in _HELLO_BOOLS:
        boolean(reply, name, where)
    for name in ("setName", "msg"):
        string(reply, name, where)
    for name in ("hosts", "passives", "arbiters"):
        _addresses(reply, name, where, many=True)
    for name in ("primary", "me"):
        _addresses(reply, name, where, many=False)
    tags = document(reply, "tags", where)
    for key, value in (tags or {}).items():
        if not isinstance(value, str):
            raise _wrong(where, _join("tags", key), "a string", value)
    election_id = reply.get("electionId", _MISSING)
    if election_id is not _MISSING and not isinstance(election_id, ObjectId):
        raise _wrong(where, "electionId", "an ObjectId", election_id)
    integer(reply, "setVersion", where, required=False)
    array(reply, "saslSupportedMechs", where, of="string")
    return limits


# -- SASL ---------------------------------------------------------------------------------


class SaslReply(NamedTuple):
    conversation_id: int
    payload: bytes
    done: bool


def sasl(reply: Document, where: str) -> Optional[SaslReply]:
    """A ``saslStart`` / ``saslContinue`` reply: ``conversationId`` (an integer),
    ``payload`` (binary data, or base64 text as some servers send) and ``done`` (a bool);
    None when its ``ok`` is not 1 (its envelope checked)."""
    if not envelope(reply, where):
        return None
    conversation_id = required_integer(reply, "conversationId", where)
    payload = reply.get("payload", _MISSING)
    if payload is _MISSING or payload is None:
        problem = "is missing" if payload is _MISSING else "is null"
        raise fail(where, "payload", f"{problem}: the server's reply has no SASL payload")
    if isinstance(payload, str):
        import base64  # only SASL (authentication) uses it: a plain connection never loads it

        try:
            payload = base64.b64decode(payload, validate=True)
        except ValueError:
            raise fail(where, "payload", "is text but not base64") from None
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _wrong(where, "payload", "binary data", payload)
    return SaslReply(conversation_id, bytes(payload), boolean(reply, "done", where, required=True))


__all__ = [
    "HelloLimits",
    "SaslReply",
    "check",
    "cursor",
    "describe",
    "envelope",
    "fail",
    "hello",
    "is_integer",
    "passes_quickly",
    "sasl",
    "topology_version",
    "write",
]
