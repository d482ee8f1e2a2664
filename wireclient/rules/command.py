"""The command layer: how a command is put in a message, and what its reply means. No I/O.

Going down, ``build_message`` wraps a command document in the envelope its server expects:
OP_MSG with ``$db`` (and ``$readPreference``) for maxWireVersion >= 6, or OP_QUERY on
``db.$cmd`` for wire 4 and 5, where document sequences become arrays, a non-primary read
preference becomes the ``SlaveOk`` flag, and there is no fire-and-forget command (the w:0
reply is read instead). Coming up, ``reply_document`` takes the reply document out of an
OP_MSG or OP_REPLY, ``check_reply`` turns ``ok: 0`` into a typed error, and
``raise_write_errors`` does the same for a write command's ``writeErrors`` and
``writeConcernError``. The error-code tables live here, and nowhere else.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from wireclient import protocol
from wireclient.errors import (
    ConfigurationError,
    CursorNotFound,
    DuplicateKeyError,
    InvalidArgument,
    NotPrimaryError,
    OperationFailure,
    ProtocolError,
    WriteConcernError,
)
from wireclient.rules import replies
from wireclient.rules.arguments import check_int, check_optional_bool, check_str
from wireclient.rules.wire import INT32_MAX, OP_MSG_WIRE_VERSION

Document = Mapping[str, Any]

_OpMsg = protocol.OpMsg
_build_msg = protocol.OpMsg._build  # an OpMsg from fields already valid (no checks)
_MORE_TO_COME = int(protocol.MsgFlags.moreToCome)
_MSG_BODY_OFFSET = 21  # an OP_MSG frame's kind-0 body: after the header, flagBits, kind byte

# "This member is not, or no longer, the primary" (the SDAM spec's "not writable primary"
# and "node is recovering" codes). The shutdown codes among them mean the process is going
# away: every socket to it is useless.
NOT_PRIMARY_CODES = frozenset({10107, 13435, 13436, 11600, 11602, 189, 91, 10058})
SHUTDOWN_CODES = frozenset({11600, 91})
DUPLICATE_KEY_CODES = frozenset({11000, 11001, 12582})
CURSOR_NOT_FOUND_CODE = 43
AUTHENTICATION_FAILED_CODE = 18
_NOT_PRIMARY_MESSAGES = ("not master", "not primary", "node is recovering")


def build_message(
    dbname: str,
    spec: Document,
    sequences: Sequence[protocol.DocumentSequence],
    unacknowledged: bool,
    read_preference: Optional[Document],
    max_wire_version: int,
) -> Tuple[Union[protocol.OpMsg, protocol.OpQuery], bool]:
    """``(message, expect_reply)`` carrying ``spec`` to ``dbname`` on a server of
    ``max_wire_version``. ``read_preference`` is a ``{'mode': ..., 'tags': [...]}`` document
    or None (primary)."""
    if max_wire_version >= OP_MSG_WIRE_VERSION:
        body = _msg_body(dbname, spec, read_preference)
        if not sequences:  # a dict body, no sections, int flags: nothing for OpMsg to check
            return _build_msg(body, (), _MORE_TO_COME if unacknowledged else 0), not unacknowledged
        flags = protocol.MsgFlags.moreToCome if unacknowledged else 0
        return protocol.OpMsg(body, tuple(sequences), flags), not unacknowledged
    body = dict(spec)
    for seq in sequences:
        from bson.raw_bson import RawBSONDocument  # only OP_QUERY's sequences (wire 4-5)

        body[seq.identifier] = [
            RawBSONDocument(d) if isinstance(d, bytes) else d for d in seq.documents
        ]
    query_flags = 0
    if read_preference is not None and read_preference.get("mode") != "primary":
        query_flags = protocol.QueryFlags.SlaveOk
    message = protocol.OpQuery(dbname + ".$cmd", body, flags=query_flags, number_to_return=-1)
    return message, True  # wire 4-5 has no fire-and-forget command: read the w:0 reply


def _msg_body(dbname: str, spec: Document, read_preference: Optional[Document]) -> Dict[str, Any]:
    """The OP_MSG body: the command, ``$db`` and any ``$readPreference``."""
    body = dict(spec)
    body["$db"] = dbname
    if read_preference is not None:
        body["$readPreference"] = read_preference
    return body


def build_frame(
    dbname: str,
    spec: Document,
    sequences: Sequence[protocol.DocumentSequence],
    unacknowledged: bool,
    read_preference: Optional[Document],
    max_wire_version: int,
    request_id: int,
) -> Tuple[bytes, bool]:
    """``(frame, expect_reply)``: ``build_message``'s message encoded as its whole frame with
    ``request_id`` (the operation path's: a command without document sequences over OP_MSG
    is encoded from its parts, with no message object)."""
    if max_wire_version >= OP_MSG_WIRE_VERSION and not sequences:
        body = _msg_body(dbname, spec, read_preference)
        flags = _MORE_TO_COME if unacknowledged else 0
        return protocol.encode_msg(request_id, body, flags), not unacknowledged
    message, expect_reply = build_message(
        dbname, spec, sequences, unacknowledged, read_preference, max_wire_version
    )
    return protocol.encode(message, request_id), expect_reply


def write_envelopes(
    dbname: str, spec: Document, unacknowledged: bool, max_wire_version: int
) -> Optional[Tuple[bytes, int, bytes]]:
    """For a write sent in batches over OP_MSG: ``(body, flags, frame)``, the command's body
    encoded once for every batch (``protocol.encode_msg(request_id, body, flags, field,
    batch)`` frames each batch), its flagBits, and the frame of the command alone (what the
    limits measure the room by). None for wire 4 and 5 (the documents go inside the command:
    ``build_frame`` per batch)."""
    if max_wire_version < OP_MSG_WIRE_VERSION:
        return None
    flags = _MORE_TO_COME if unacknowledged else 0
    frame = protocol.encode_msg(0, _msg_body(dbname, spec, None), flags)
    return frame[_MSG_BODY_OFFSET:], flags, frame


def reply_document(message: Any) -> Dict[str, Any]:
    """The command reply document carried by an OP_MSG or OP_REPLY (exactly one document;
    a legacy query failure becomes ``ok: 0`` whatever its document says)."""
    if message.__class__ is _OpMsg:  # the usual reply, decoded by the reader's fast path
        body = message.body
        if body.__class__ is dict:
            return body
    if isinstance(message, protocol.OpMsg):
        body = message.body
        if not isinstance(body, dict):
            raise ProtocolError("OP_MSG reply body is not a document")
        return body
    if isinstance(message, protocol.OpReply):
        count = len(message.documents)
        if count != 1:
            if not count and message.response_flags & protocol.ReplyFlags.CursorNotFound:
                raise ProtocolError("OP_REPLY with CursorNotFound and no document")
            raise ProtocolError(f"OP_REPLY to a command carries {count} documents, not one")
        doc = message.documents[0]
        if message.response_flags & protocol.ReplyFlags.QueryFailure:
            return {**doc, "ok": 0}
        return dict(doc)
    raise ProtocolError(f"unexpected reply message {type(message).__name__} to a command")


def is_not_primary(code: Any, message: str) -> bool:
    """Whether an error (a failed reply, or a ``writeConcernError``) says the member is not,
    or no longer, the primary. A known code decides; the message is looked at only when the
    server sent no code (very old servers)."""
    if code is not None:
        return code in NOT_PRIMARY_CODES
    return message.startswith(_NOT_PRIMARY_MESSAGES)


def check_reply(
    reply: Document, command_name: str = "command", address: Optional[str] = None
) -> None:
    """Raise the typed error for a reply with ``ok`` other than 1 (a ``ProtocolError`` for
    a reply whose ``ok``, ``code`` or ``errmsg`` is malformed: see ``replies.envelope``)."""
    if replies.envelope(reply, replies.describe(command_name, address)):
        return
    message = str(reply.get("errmsg", reply.get("$err", "unknown error")))
    code = reply.get("code")
    if is_not_primary(code, message):
        raise NotPrimaryError(f"{command_name} failed: {message}", reply)
    if code in DUPLICATE_KEY_CODES:
        raise DuplicateKeyError(message, code, reply)
    if code == CURSOR_NOT_FOUND_CODE:
        raise CursorNotFound(message, code, reply)
    raise OperationFailure(f"{command_name} failed: {message}", code, reply)


def raise_write_errors(reply: Document, address: Optional[str] = None) -> None:
    """Turn a write command's ``writeErrors`` / ``writeConcernError`` into an exception (a
    ``ProtocolError`` when they are malformed: see ``replies.write``)."""
    replies.write(reply, replies.describe("write", address), acknowledged=False)
    write_errors = reply.get("writeErrors")
    if write_errors:
        error = write_errors[-1]
        code = error["code"]
        message = error["errmsg"]
        if code in DUPLICATE_KEY_CODES:
            raise DuplicateKeyError(message, code, error)
        raise OperationFailure(message, code, error)
    wc_error = reply.get("writeConcernError")
    if wc_error:
        raise WriteConcernError(wc_error["errmsg"], wc_error["code"], wc_error)


class WriteConcern:
    """A connection's default write concern, and the one a write's own options give."""

    __slots__ = ("safe", "w", "j", "wtimeout", "default")

    def __init__(self, safe: Optional[bool], w: Any, j: Optional[bool], wtimeout: Any) -> None:
        if w == 0 and j:
            raise ConfigurationError("w=0 (unacknowledged) cannot be combined with j=True")
        self.safe, self.w, self.j, self.wtimeout = safe, w, j, wtimeout
        #: ``resolve()`` of a write that sets none of its own options (the usual write),
        #: worked out once: (acknowledged, writeConcern document or None). The document is
        #: shared: copy it before handing it out.
        self.default: Tuple[bool, Optional[Dict[str, Any]]] = self.resolve(None, None)

    _KEYS = ("w", "j", "wtimeout", "fsync")

    @classmethod
    def from_document(cls, document: Any, name: str = "write_concern") -> WriteConcern:
        """A write concern from 2.8's dict form: ``{'w': 2, 'wtimeout': 1000, 'j': True}``
        (``fsync`` is taken as ``j``, as servers with a journal do); ``{}`` is the server's
        default (acknowledged), ``{'w': 0}`` unacknowledged. Checked as ``resolve`` checks."""
        if not isinstance(document, abc.Mapping):
            raise InvalidArgument(
                f"{name} must be a dict such as {{'w': 1}}, not {type(document).__name__}"
            )
        unknown = [key for key in document if key not in cls._KEYS]
        if unknown:
            raise ConfigurationError(
                f"{name}: unknown option {unknown[0]!r} (use w, j, wtimeout or fsync)"
            )
        j = document.get("j")
        if j is None:
            j = document.get("fsync")
        w, wtimeout = document.get("w"), document.get("wtimeout")
        cls(None, None, None, None).resolve(None, w, j, wtimeout)  # the checks, and w=0 with j
        return cls(None, w, j, wtimeout)

    def document(self) -> Dict[str, Any]:
        """2.8's ``write_concern`` dict: the options set (``{}``: the server's default)."""
        doc: Dict[str, Any] = {}
        if self.w is not None:
            doc["w"] = self.w
        elif self.safe is False and self.j is None and self.wtimeout is None:
            doc["w"] = 0
        if self.j is not None:
            doc["j"] = bool(self.j)
        if self.wtimeout is not None:
            doc["wtimeout"] = int(self.wtimeout)
        return doc

    def resolve(
        self,
        safe: Optional[bool],
        w: Optional[Union[int, str]],
        j: Optional[bool] = None,
        wtimeout: Optional[int] = None,
    ) -> Tuple[bool, Optional[Dict[str, Any]]]:
        """(acknowledged, writeConcern document or None) for a write's options.

        Checked first: ``safe`` and ``j`` None or a bool, ``w`` None, an int >= 0 or a
        non-empty str (a tag set name such as ``'majority'``), ``wtimeout`` None or an
        int >= 0 (milliseconds)."""
        if safe is None and w is None and j is None and wtimeout is None:
            if self.w is None and self.j is None and self.wtimeout is None:  # the default
                return (False, {"w": 0}) if self.safe is False else (True, None)
        check_optional_bool(safe, "safe")
        check_optional_bool(j, "j")
        if isinstance(w, str):
            check_str(w, "w")
        elif w is not None:
            if isinstance(w, bool) or not isinstance(w, int):
                raise InvalidArgument(
                    f"w must be an int >= 0 or a tag set name, not {type(w).__name__}"
                )
            check_int(w, "w", 0, INT32_MAX)
        if wtimeout is not None:
            check_int(wtimeout, "wtimeout", 0, INT32_MAX)
        if w is None and j is None and wtimeout is None:
            if safe is False or (safe is None and self.safe is False):
                return False, {"w": 0}
            w, j, wtimeout = self.w, self.j, self.wtimeout
        if w == 0:
            if j:
                raise ConfigurationError("w=0 (unacknowledged) cannot be combined with j=True")
            if safe is True:
                raise ConfigurationError("safe=True contradicts w=0")
            return False, {"w": 0}
        wc: Dict[str, Any] = {}
        if w is not None:
            wc["w"] = w
        if j is not None:
            wc["j"] = bool(j)
        if wtimeout is not None:
            wc["wtimeout"] = int(wtimeout)
        return True, (wc or None)
