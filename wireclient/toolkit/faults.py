"""The proxy's fault rules: their grammar, which command each one hits, and what it does.

Theory of operation
-------------------
A rule is written ``NAME:ORDINAL:ACTION[=ARGUMENT]`` and read by ``FaultRule.parse``, the
one place the grammar lives:

- ``NAME``: a command name (``find``, ``insert``, ``getMore`` ...; compared without regard
  to case), or ``*`` for every command;
- ``ORDINAL``: ``N`` hits the N-th matching command of each client connection once,
  ``N+`` the N-th and every one after it, ``*`` every matching command;
- ``ACTION``: ``error=CODE`` answers the command with ``{ok: 0, code: CODE, codeName,
  errmsg}`` built by the proxy (the server never sees the command); ``close`` closes the
  client connection instead of forwarding the command; ``delay=DURATION`` (``300ms``,
  ``1.5s``, or a bare number of milliseconds) holds the command that long, then forwards
  it; ``drop`` swallows it: not forwarded, never answered, so the client waits for its own
  timeout.

``ConnectionFaults`` is the state of one client connection: how many commands each rule
has matched so far. ``match(name)`` counts the command against every rule whose name
matches and returns the first rule (in the order given) whose ordinal it is, or None. With
``spare_monitors`` (the default), ``hello`` / ``isMaster`` sent on a connection that has
sent nothing else (a monitoring connection, or a connection's handshake) are neither
counted nor faulted; the first other command makes the connection an application
connection, and from then on every command counts.

``command_name(message)`` says which command a decoded request is: the first key of an
OP_MSG body, or of an OP_QUERY on ``*.$cmd`` (inside ``$query`` if wrapped), looking inside
OP_COMPRESSED; other messages are no command and are never faulted. ``error_reply`` frames
the injected error as the reply the client expects: an OP_MSG for an OP_MSG, an OP_REPLY
for an OP_QUERY, none for a ``moreToCome`` message. This module does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError

ACTIONS = ("error", "close", "delay", "drop")
MONITOR_COMMANDS = frozenset({"hello", "ismaster"})
MAX_DELAY_SECONDS = 3600.0

# Names of the server error codes a fault is most often asked for (codeName in the reply).
CODE_NAMES = {
    2: "BadValue",
    6: "HostUnreachable",
    7: "HostNotFound",
    11: "UserNotFound",
    13: "Unauthorized",
    18: "AuthenticationFailed",
    26: "NamespaceNotFound",
    43: "CursorNotFound",
    50: "MaxTimeMSExpired",
    59: "CommandNotFound",
    89: "NetworkTimeout",
    91: "ShutdownInProgress",
    112: "WriteConflict",
    189: "PrimarySteppedDown",
    262: "ExceededTimeLimit",
    9001: "SocketException",
    10107: "NotWritablePrimary",
    11000: "DuplicateKey",
    11600: "InterruptedAtShutdown",
    11602: "InterruptedDueToReplStateChange",
    13435: "NotPrimaryNoSecondaryOk",
    13436: "NotPrimaryOrSecondary",
}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")
_ORDINAL = re.compile(r"^(\d+)(\+?)$")


def _bad(text: str, why: str) -> ConfigurationError:
    return ConfigurationError(
        f"bad fault rule {text!r}: {why} (rules are NAME:ORDINAL:ACTION, e.g. "
        "'find:2:error=91', 'insert:*:close', '*:5:delay=300ms', 'getMore:3+:drop')"
    )


@dataclass(frozen=True)
class FaultRule:
    """One rule (see the module docstring); ``FaultRule.parse("find:2:error=91")``."""

    name: str  # lower-cased command name, or "*"
    first: int  # the first ordinal hit (1-based); 1 with every
    every: bool  # hit every matching command from ``first`` on
    action: str  # one of ACTIONS
    code: int = 0  # error=CODE
    delay: float = 0.0  # delay=DURATION, in seconds
    text: str = ""  # the rule as written

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        parts = text.strip().split(":")
        if len(parts) != 3 or not all(parts):
            raise _bad(text, "it needs three parts separated by ':'")
        name, ordinal, action = (part.strip() for part in parts)
        if name != "*" and not re.fullmatch(r"[A-Za-z_$][\w$.-]*", name):
            raise _bad(text, f"{name!r} is not a command name or '*'")
        if ordinal == "*":
            first, every = 1, True
        else:
            m = _ORDINAL.match(ordinal)
            if m is None or int(m.group(1)) < 1:
                raise _bad(text, f"ordinal {ordinal!r} is not N, N+ (N from 1) or '*'")
            first, every = int(m.group(1)), bool(m.group(2))
        verb, equals, argument = action.partition("=")
        verb = verb.strip().lower()
        code, delay = 0, 0.0
        if verb not in ACTIONS:
            raise _bad(text, f"unknown action {verb!r} (known: {', '.join(ACTIONS)})")
        if verb == "error":
            try:
                code = int(argument, 0)
            except ValueError:
                raise _bad(text, "error takes a numeric code, as in error=91") from None
            if not -(2**31) <= code < 2**31:
                raise _bad(text, f"error code {code} does not fit an int32")
        elif verb == "delay":
            m = _DURATION.match(argument.strip().lower())
            if m is None:
                raise _bad(text, "delay takes a duration: 300ms, 1.5s, or milliseconds")
            delay = float(m.group(1)) / (1.0 if m.group(2) == "s" else 1000.0)
            if delay > MAX_DELAY_SECONDS:
                raise _bad(text, f"a delay of more than {MAX_DELAY_SECONDS:g} s")
        elif equals:
            raise _bad(text, f"{verb} takes no argument")
        return cls(name.lower(), first, every, verb, code, delay, text.strip())

    def matches_name(self, name: str) -> bool:
        return self.name == "*" or self.name == name.lower()

    def hits(self, ordinal: int) -> bool:
        """Whether the ``ordinal``-th matching command (1-based) is hit."""
        return ordinal >= self.first if self.every else ordinal == self.first

    def __str__(self) -> str:
        return self.text or f"{self.name}:{self.first}{'+' if self.every else ''}:{self.action}"


RuleLike = Union[str, FaultRule]


def parse_rules(rules: Iterable[RuleLike]) -> List[FaultRule]:
    """Rules from text or ``FaultRule`` objects; ``ConfigurationError`` on a bad one."""
    return [rule if isinstance(rule, FaultRule) else FaultRule.parse(rule) for rule in rules]


class ConnectionFaults:
    """What the rules have counted on one client connection."""

    __slots__ = ("rules", "spare_monitors", "counts", "hello_only")

    def __init__(self, rules: Sequence[FaultRule], spare_monitors: bool = True) -> None:
        self.rules = rules
        self.spare_monitors = spare_monitors
        self.counts = [0] * len(rules)
        self.hello_only = True  # nothing but hello / isMaster sent yet

    def match(self, name: str) -> Optional[FaultRule]:
        """Count the command ``name`` and return the rule that hits it, if any."""
        lowered = name.lower()
        if lowered in MONITOR_COMMANDS:
            if self.hello_only and self.spare_monitors:
                return None
        else:
            self.hello_only = False
        hit = None
        for i, rule in enumerate(self.rules):
            if rule.matches_name(lowered):
                self.counts[i] += 1
                if hit is None and rule.hits(self.counts[i]):
                    hit = rule
        return hit


def command_name(message: Any) -> Optional[str]:
    """The command a request carries (see the module docstring), or None."""
    if isinstance(message, protocol.OpCompressed):
        try:
            message = protocol.decompress(message)
        except (ProtocolError, ConfigurationError):
            return None
    if isinstance(message, protocol.OpMsg):
        return next(iter(message.body), None)
    if isinstance(message, protocol.OpQuery) and message.full_collection_name.endswith(".$cmd"):
        query = message.query
        first = next(iter(query), None)
        if first in ("$query", "query") and isinstance(query[first], dict):
            return next(iter(query[first]), None)
        return first
    return None


def error_document(rule: FaultRule) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "ok": 0.0,
        "errmsg": f"fault injected by the wireclient proxy (rule {rule})",
        "code": rule.code,
    }
    if rule.code in CODE_NAMES:
        doc["codeName"] = CODE_NAMES[rule.code]
    return doc


def error_reply(
    rule: FaultRule, request: Any, request_id: int, response_to: int
) -> Optional[bytes]:
    """The frame answering ``request`` with the rule's error; None when the request asked
    for no reply (``moreToCome``) or is no command."""
    if isinstance(request, protocol.OpCompressed):
        try:
            request = protocol.decompress(request)
        except (ProtocolError, ConfigurationError):
            return None
    doc = error_document(rule)
    reply: protocol.Message
    if isinstance(request, protocol.OpMsg):
        if request.more_to_come:
            return None
        reply = protocol.OpMsg(doc)
    elif isinstance(request, protocol.OpQuery):
        reply = protocol.OpReply([doc])
    else:
        return None
    return protocol.encode(reply, request_id, response_to)


__all__ = [
    "ACTIONS",
    "CODE_NAMES",
    "MONITOR_COMMANDS",
    "ConnectionFaults",
    "FaultRule",
    "RuleLike",
    "command_name",
    "error_document",
    "error_reply",
    "parse_rules",
]
