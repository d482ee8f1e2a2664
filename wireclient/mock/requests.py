"""What a client sent (``Request``) and how a test picks one out (``Matcher``).

A ``Request`` is one message as the mock server received it: the decoded message, the
frame's bytes as they arrived (compressed or not), what the frame said about itself
(opcode, flags, header, compressor, checksum verdict) and who sent it. ``doc`` is the
request as one document, the way a tester reads it: an OP_MSG's body with every kind-1
sequence merged in as a list under its identifier (``insert``'s ``documents``), an
OP_QUERY's query (unwrapped from ``$query``), and for the legacy write and cursor opcodes a
small document of their fields. Replying is done through the request (``ok``, ``fail``,
``reply``, ``hangup``, ``reply_frame``, ``stream``, or ``replies`` with any reply of
``wireclient.mock.replies``); the connection it came on sends the frames.

A ``Matcher`` is what ``receives`` and ``autoresponds`` select with: a command name, a
database, a subset of ``doc`` (nested mappings are subsets too; ``ABSENT`` says a key must
be missing), an opcode, flag bits that must be set, or any predicate. ``as_matcher`` turns
the short forms (a command name, a subset document, a callable) into one.
"""

from __future__ import annotations

import threading
from collections import abc
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from wireclient import protocol
from wireclient.mock.replies import Reply, as_reply, fail, hangup, ok, reply, reply_frame, stream
from wireclient.protocol import (
    DocumentSequence,
    Header,
    Message,
    MsgFlags,
    OpDelete,
    OpGetMore,
    OpInsert,
    OpKillCursors,
    OpMsg,
    OpQuery,
    OpUpdate,
)

if TYPE_CHECKING:
    from wireclient.mock.server import ClientConnection

#: A section of an OP_MSG as ``Request.sections`` lists it: (0, body) or (1, sequence).
Section = Tuple[int, Union[Mapping[str, Any], DocumentSequence]]


def _request_doc(message: Message) -> Dict[str, Any]:
    if isinstance(message, OpMsg):
        doc = dict(message.body)
        for seq in message.sequences:
            doc[seq.identifier] = list(seq.documents)
        return doc
    if isinstance(message, OpQuery):
        query = dict(message.query)
        inner = query.get("$query")
        return dict(inner) if isinstance(inner, abc.Mapping) else query
    if isinstance(message, OpInsert):
        return {"documents": list(message.documents)}
    if isinstance(message, OpUpdate):
        return {"q": dict(message.selector), "u": dict(message.update)}
    if isinstance(message, OpDelete):
        return {"q": dict(message.selector)}
    if isinstance(message, OpGetMore):
        return {"cursorId": message.cursor_id, "numberToReturn": message.number_to_return}
    if isinstance(message, OpKillCursors):
        return {"cursorIds": list(message.cursor_ids)}
    return {}


class Request:
    """One message a client sent to a ``MockServer`` (see the module notes)."""

    def __init__(
        self,
        header: Header,
        message: Message,
        frame: bytes,
        *,
        compressed_with: Optional[str],
        checksum_ok: Optional[bool],
        client_address: Tuple[str, int],
        connection: Optional[ClientConnection] = None,
    ) -> None:
        self.header = header
        self.message = message
        self.frame = frame
        self.compressed_with = compressed_with
        self.checksum_ok = checksum_ok
        self.client_address = client_address
        self.connection = connection
        self.opcode: int = message.op_code
        self.doc: Dict[str, Any] = _request_doc(message)
        namespace = getattr(message, "full_collection_name", None)
        self.namespace: Optional[str] = namespace
        if isinstance(message, OpMsg):
            db = message.body.get("$db")
            self.database: Optional[str] = db if isinstance(db, str) else None
        elif namespace is not None:
            self.database = namespace.split(".", 1)[0]
        else:
            self.database = None
        is_command = isinstance(message, OpMsg) or (
            isinstance(message, OpQuery) and namespace is not None and namespace.endswith(".$cmd")
        )
        self.command_name: Optional[str] = next(iter(self.doc), None) if is_command else None
        self._replied = False
        self._lock = threading.Lock()

    # -- what the frame said ------------------------------------------------------------

    @property
    def flags(self) -> int:
        """The message's flag bits (OP_MSG flagBits, OP_QUERY / OP_INSERT / ... flags)."""
        return int(getattr(self.message, "flags", 0))

    @property
    def request_id(self) -> int:
        return self.header.request_id

    @property
    def sections(self) -> Tuple[Section, ...]:
        """An OP_MSG's sections in order: (0, body), then (1, DocumentSequence) each."""
        if not isinstance(self.message, OpMsg):
            return ()
        body: Section = (0, self.message.body)
        return (body, *((1, seq) for seq in self.message.sequences))

    @property
    def more_to_come(self) -> bool:
        """True for an OP_MSG with moreToCome: the client reads no reply to it."""
        return isinstance(self.message, OpMsg) and self.message.more_to_come

    @property
    def exhaust_allowed(self) -> bool:
        return isinstance(self.message, OpMsg) and bool(self.flags & MsgFlags.exhaustAllowed)

    @property
    def replied(self) -> bool:
        return self._replied

    def __repr__(self) -> str:
        name = protocol.OPCODE_NAMES.get(self.opcode, str(self.opcode))
        extra = f" compressed_with={self.compressed_with}" if self.compressed_with else ""
        return f"<Request {name} {self.doc!r} from {self.client_address}{extra}>"

    def matches(self, matcher: Any = None) -> bool:
        return as_matcher(matcher).matches(self)

    # -- replying -------------------------------------------------------------------------

    def replies(self, reply: Union[Reply, Mapping[str, Any]]) -> None:
        """Answer with ``reply`` (a ``Reply``, or a document for ``reply(doc)``). A request
        is answered once; a moreToCome request never (``AssertionError``)."""
        the_reply = as_reply(reply)
        with self._lock:
            if self._replied:
                raise AssertionError(f"{self!r} was already answered")
            self._replied = True
        if self.connection is None:
            raise AssertionError(f"{self!r} came on no connection: nothing to answer on")
        self.connection.answer(self, the_reply)

    def ok(self, **fields: Any) -> None:
        """Answer ``{"ok": 1.0, **fields}``."""
        self.replies(ok(**fields))

    def reply(self, doc: Mapping[str, Any]) -> None:
        """Answer with ``doc`` as it is."""
        self.replies(reply(doc))  # the module's reply(), not this method

    def fail(self, code: int, errmsg: str = "mock failure", **fields: Any) -> None:
        """Answer ``{"ok": 0.0, "code": code, "errmsg": errmsg, **fields}``."""
        self.replies(fail(code, errmsg, **fields))

    def hangup(self) -> None:
        """Close the connection instead of answering."""
        self.replies(hangup())

    def reply_frame(self, frame: bytes) -> None:
        """Send ``frame`` as it is, whatever it holds."""
        self.replies(reply_frame(frame))

    def stream(self, batches: Iterable[Union[Mapping[str, Any], Reply]]) -> None:
        """Answer an exhaustAllowed request with a moreToCome stream of ``batches``."""
        self.replies(stream(batches))  # type: ignore[arg-type]


class _Absent:
    """The ``ABSENT`` marker: in a subset document, the key must not be there."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def is_subset(expected: Any, actual: Any) -> bool:
    """``expected`` found in ``actual``: mappings key by key (recursively, ``ABSENT`` for a
    missing key), sequences element by element with equal lengths, values by ``==``."""
    if isinstance(expected, abc.Mapping):
        if not isinstance(actual, abc.Mapping):
            return False
        for key, value in expected.items():
            if value is ABSENT:
                if key in actual:
                    return False
            elif key not in actual or not is_subset(value, actual[key]):
                return False
        return True
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)) or len(expected) != len(actual):
            return False
        return all(is_subset(e, a) for e, a in zip(expected, actual))
    return bool(expected == actual)


class Matcher:
    """Selects requests: every criterion given must hold (see the module notes).

    ``command`` compares without case (``isMaster`` and ``ismaster`` are one command);
    ``flags`` are bits that must all be set; ``predicate`` is any test of the request.
    """

    __slots__ = ("command", "database", "doc", "opcode", "flags", "predicate")

    def __init__(
        self,
        command: Optional[str] = None,
        *,
        database: Optional[str] = None,
        doc: Optional[Mapping[str, Any]] = None,
        opcode: Optional[int] = None,
        flags: int = 0,
        predicate: Optional[Callable[[Request], bool]] = None,
    ) -> None:
        self.command = command
        self.database = database
        self.doc = doc
        self.opcode = opcode
        self.flags = flags
        self.predicate = predicate

    def matches(self, request: Request) -> bool:
        if self.command is not None and (
            request.command_name is None or request.command_name.lower() != self.command.lower()
        ):
            return False
        if self.database is not None and request.database != self.database:
            return False
        if self.opcode is not None and request.opcode != self.opcode:
            return False
        if self.flags and request.flags & self.flags != self.flags:
            return False
        if self.doc is not None and not is_subset(self.doc, request.doc):
            return False
        return self.predicate is None or bool(self.predicate(request))

    def __repr__(self) -> str:
        parts = [
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if getattr(self, name) not in (None, 0)
        ]
        return f"Matcher({', '.join(parts)})"


MatcherSpec = Union[None, str, Mapping[str, Any], Matcher, Callable[[Request], bool]]


def as_matcher(spec: MatcherSpec) -> Matcher:
    """A ``Matcher`` from its short forms: None (any request), a command name, a subset of
    ``doc``, a ``Matcher``, or a predicate."""
    if spec is None:
        return Matcher()
    if isinstance(spec, Matcher):
        return spec
    if isinstance(spec, str):
        return Matcher(spec)
    if isinstance(spec, abc.Mapping):
        return Matcher(doc=spec)
    if callable(spec):
        return Matcher(predicate=spec)
    raise TypeError(f"not a matcher: {spec!r}")


__all__ = ["ABSENT", "Matcher", "MatcherSpec", "Request", "Section", "as_matcher", "is_subset"]
