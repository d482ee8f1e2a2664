"""``wireclient replay``: play a capture's requests against a server and compare the replies.

Theory of operation
-------------------
``load`` reads a capture (a ``wireclient proxy --capture`` file, or a pcap/pcapng file
through ``pcap.py``) into records, and ``plan`` turns the records into one
``ConnectionPlan`` per captured client connection: its requests in order, each an
``Exchange`` with the captured replies that answered it (matched by ``responseTo``; an
exhaust stream's replies follow their chain, or the original requestID, as SecantusDB
answers). Requests that must not be replayed are counted and left out: the handshake and
monitoring ``hello``/``isMaster`` (every connection of the replay does its own), the
authentication steps (``saslStart``, ``saslContinue``, ``authenticate``: a captured SCRAM
proof answers the captured server's challenge; each connection authenticates afresh with
the URI's credentials), and frames that do not decode.

``Replay.run`` plays each connection plan in a thread of its own, so the captured
concurrency is kept, each on its own socket to each side (``probe.open_session``: the
handshake and SCRAM done afresh, reopened after a network error). With ``speed`` a request
waits until its captured time, divided by ``speed``, has passed since the replay began;
without it, requests go as fast as replies come. Before sending, a request is rewritten
for the side it goes to: a new requestID, its ``$clusterTime`` dropped (it was signed by
the captured deployment), its session ids (``lsid``) replaced by fresh ones (``SessionMap``:
a server answers a retried write of a known session from memory), and the cursor ids of
getMore and killCursors (commands or legacy opcodes) mapped to that side's own ids. The
map (one ``compare.CursorCorrespondence`` per side, shared by the threads, since a cursor
opened on one connection may be read on another) is learnt from each reply: the captured reply's ids
paired with the side's ids at the same places. A getMore whose cursor another connection
has yet to open waits for it, bounded by the socket timeout.

Each reply is normalised and compared (``compare.py``): with one URI, the replayed reply
against the captured one; with ``against``, the two sides' replies against each other.
The result of each exchange (equal, different, an error, or sent without a reply for
``moreToCome``) and its latency per side go to a ``Results`` shared by the threads, from
which ``summary_lines`` and ``json_report`` are made.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from bson.binary import Binary
from bson.int64 import Int64

from wireclient import protocol
from wireclient.errors import ConfigurationError, ProtocolError, WireClientError
from wireclient.toolkit import capture, probe, trace
from wireclient.toolkit.compare import (
    MISSING,
    CursorCorrespondence,
    Difference,
    IgnoreList,
    cursor_ids,
    differences,
    learn_cursor_ids,
    normalise,
    reply_document,
)

HANDSHAKE_COMMANDS = frozenset({"hello", "ismaster"})
EQUAL, DIFFERENT, ERROR, UNANSWERED = "equal", "different", "error", "unanswered"
CAPTURE_SIDE = "capture"


class CaptureError(Exception):
    """A capture that cannot be replayed at all (unreadable, or not a capture)."""


# --------------------------------------------------------------------------- the plan


class Exchange(NamedTuple):
    """One captured request and the replies the captured server sent to it."""

    connection: int
    frame: int  # the request's place among its connection's requests, from 1
    command: str  # the command name, or the opcode's name for legacy messages
    timestamp: float
    message: protocol.Message
    expects_reply: bool
    replies: List[protocol.Message]


class ConnectionPlan(NamedTuple):
    connection: int
    exchanges: List[Exchange]


class Plan(NamedTuple):
    connections: List[ConnectionPlan]
    skipped: Counter[str]  # why -> how many requests
    start: float  # the capture's first timestamp
    problems: List[str]  # what was wrong with the capture (replayed up to there)


def load(path: str, server_ports: Sequence[int] = ()) -> Tuple[List[capture.Record], List[str]]:
    """The records of a capture or packet file, and what was wrong with it."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise CaptureError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if capture.is_capture(head):
        records, error = capture.read_capture(path)
    else:
        from wireclient.toolkit import pcap

        if not pcap.is_packet_file(head):
            raise CaptureError(
                f"{path!r} is neither a wireclient capture (WIRECAP1) nor a pcap/pcapng file"
            )
        try:
            records, error = pcap.read_pcap(path, server_ports or pcap.DEFAULT_SERVER_PORTS)
        except pcap.PacketFileError as exc:
            raise CaptureError(str(exc)) from None
    return records, [error] if error else []


def _expects_reply(message: Any) -> bool:
    if isinstance(message, protocol.OpMsg):
        return not message.more_to_come
    return isinstance(message, (protocol.OpQuery, protocol.OpGetMore))


def _unwrapped(message: Any) -> Any:
    if isinstance(message, protocol.OpCompressed):
        return protocol.decompress(message)
    return message


def plan(records: Sequence[capture.Record]) -> Plan:
    """What to replay: each connection's requests with their captured replies."""
    skipped: Counter[str] = Counter()
    problems: List[str] = []
    connections: List[ConnectionPlan] = []
    for conversation in capture.conversations(records):
        replies_to: Dict[int, List[Tuple[protocol.Header, protocol.Message]]] = defaultdict(list)
        for timed in conversation.replies:
            frame = timed.frame
            if frame.error is None and frame.header is not None:
                try:
                    replies_to[frame.header.response_to].append(
                        (frame.header, _unwrapped(frame.message))
                    )
                except (ProtocolError, ConfigurationError) as exc:
                    problems.append(f"conn {conversation.connection}: a reply: {exc}")
        exchanges: List[Exchange] = []
        for number, timed in enumerate(conversation.requests, 1):
            frame = timed.frame
            if frame.error is not None or frame.header is None:
                skipped["undecodable"] += 1
                continue
            try:
                message = _unwrapped(frame.message)
            except (ProtocolError, ConfigurationError):
                skipped["undecodable"] += 1
                continue
            name = trace.command_name(message)
            if name is not None and name.lower() in HANDSHAKE_COMMANDS:
                skipped["handshake"] += 1
                continue
            if trace.is_authentication(message):
                skipped["authentication"] += 1
                continue
            label = name or protocol.OPCODE_NAMES.get(message.op_code, str(message.op_code))
            expects = _expects_reply(message)
            replies = _captured_replies(frame.header.request_id, replies_to) if expects else []
            exchanges.append(
                Exchange(
                    conversation.connection,
                    number,
                    label,
                    timed.timestamp,
                    message,
                    expects,
                    replies,
                )
            )
        if exchanges:
            connections.append(ConnectionPlan(conversation.connection, exchanges))
    start = min((r.timestamp for r in records), default=0.0)
    return Plan(connections, skipped, start, problems)


def _captured_replies(
    request_id: int, replies_to: Dict[int, List[Tuple[protocol.Header, protocol.Message]]]
) -> List[protocol.Message]:
    """The reply to ``request_id``, and the rest of its exhaust stream."""
    replies: List[protocol.Message] = []
    answers = request_id
    while True:
        waiting = replies_to.get(answers) or replies_to.get(request_id)
        if not waiting:
            return replies
        header, reply = waiting.pop(0)
        replies.append(reply)
        if not (isinstance(reply, protocol.OpMsg) and reply.more_to_come):
            return replies
        answers = header.request_id


# --------------------------------------------------------------------------- rewriting


class CursorMap:
    """The captured cursor ids paired with one side's ids, shared by the connections;
    ids whose pairing failed are given up, so nothing waits for them."""

    def __init__(self, wait: float) -> None:
        self.pairs = CursorCorrespondence()
        self.wait = wait
        self._lock = threading.Condition()
        self._given_up: set[int] = set()

    def learn(self, captured: Dict[str, Any], replayed: Optional[Dict[str, Any]]) -> None:
        if replayed is not None:
            learn_cursor_ids(captured, replayed, self.pairs)
        for _, cursor in cursor_ids(captured):
            if cursor and self.pairs.right_of(cursor, wait=0) is None:
                with self._lock:
                    self._given_up.add(cursor)
                    self._lock.notify_all()

    def give_up(self, captured: Dict[str, Any]) -> None:
        self.learn(captured, None)

    def side_id(self, captured_id: int, created_in_capture: bool) -> int:
        """The side's id for a captured one: waited for when the capture shows which
        reply creates it (another connection may be about to receive it)."""
        if not created_in_capture:
            found = self.pairs.right_of(captured_id, wait=0)
            return captured_id if found is None else found
        deadline = time.monotonic() + self.wait
        while True:
            found = self.pairs.right_of(captured_id, wait=0.05)
            if found is not None:
                return found
            with self._lock:
                if captured_id in self._given_up or time.monotonic() >= deadline:
                    return captured_id


class SessionMap:
    """A fresh session id for each captured one, per side and per replay: a server
    remembers the retryable writes of a session (``lsid`` + ``txnNumber``), so a replay
    that reused the captured ids would see a second replay's writes answered from that
    memory instead of done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: Dict[bytes, Binary] = {}

    def session(self, lsid: Any) -> Any:
        if not isinstance(lsid, Mapping) or not isinstance(lsid.get("id"), bytes):
            return lsid
        with self._lock:
            fresh = self._ids.setdefault(bytes(lsid["id"]), Binary(uuid.uuid4().bytes, 4))
        return {**lsid, "id": fresh}


class Rewriter(NamedTuple):
    """How a request is rewritten for one side (see ``rewrite``)."""

    cursor_id: Callable[[int], int]  # captured cursor id -> the side's
    sessions: SessionMap


def rewrite(message: Any, rewriter: Rewriter) -> Any:
    """``message`` for the side it goes to: its getMore / killCursors cursor ids mapped,
    its session ids replaced, and no ``$clusterTime``."""
    p = protocol
    side_id = rewriter.cursor_id
    if isinstance(message, p.OpGetMore):
        return message.replace(cursor_id=side_id(message.cursor_id))
    if isinstance(message, p.OpKillCursors):
        return message.replace(cursor_ids=[side_id(c) for c in message.cursor_ids])
    if isinstance(message, p.OpMsg):
        return message.replace(body=_rewrite_command(message.body, rewriter))
    if isinstance(message, p.OpQuery) and message.full_collection_name.endswith(".$cmd"):
        return message.replace(query=_rewrite_command(message.query, rewriter))
    return message


def _rewrite_command(document: Any, rewriter: Rewriter) -> Dict[str, Any]:
    side_id, sessions = rewriter.cursor_id, rewriter.sessions
    command = {k: v for k, v in document.items() if k != "$clusterTime"}
    name = next(iter(command), "")
    if name == "getMore" and isinstance(command[name], int):
        command[name] = Int64(side_id(int(command[name])))
    elif name == "killCursors" and isinstance(command.get("cursors"), list):
        command["cursors"] = [
            Int64(side_id(int(c))) if isinstance(c, int) else c for c in command["cursors"]
        ]
    elif name == "endSessions" and isinstance(command[name], list):
        command[name] = [sessions.session(lsid) for lsid in command[name]]
    if "lsid" in command:
        command["lsid"] = sessions.session(command["lsid"])
    return command


# --------------------------------------------------------------------------- results


class Side(NamedTuple):
    name: str  # how the report names it (the URI's address)
    target: probe.Target


class Outcome(NamedTuple):
    replies: Optional[List[Dict[str, Any]]]  # None after an error
    error: Optional[str]
    seconds: float


class Found(NamedTuple):
    """A difference, where it was found."""

    connection: int
    frame: int
    command: str
    reply: int  # which reply of the exchange, from 1 (exhaust streams have several)
    difference: Difference


class Failure(NamedTuple):
    connection: int
    frame: int
    command: str
    side: str
    error: str


class Results:
    """What the replay found, filled by the connection threads."""

    def __init__(self, sides: Sequence[str]) -> None:
        self.sides = list(sides)  # the names compared: (capture, URI) or (URI, URI2)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()  # side -> replies with ok other than 1
        self.differences: List[Found] = []
        self.errors: List[Failure] = []
        self.latency: Dict[str, Dict[str, List[float]]] = defaultdict(lambda: defaultdict(list))

    def add(
        self,
        exchange: Exchange,
        verdict: str,
        found: Sequence[Found] = (),
        errors: Sequence[Failure] = (),
        latencies: Sequence[Tuple[str, float]] = (),
        refused_by: Sequence[str] = (),
    ) -> None:
        with self._lock:
            self.counts[verdict] += 1
            self.refusals.update(refused_by)
            self.differences.extend(found)
            self.errors.extend(errors)
            for side, seconds in latencies:
                self.latency[side][exchange.command].append(seconds * 1000.0)

    @property
    def replayed(self) -> int:
        return sum(self.counts.values())

    def status(self) -> int:
        """0 when every reply was equal, 1 otherwise."""
        return 0 if not self.differences and not self.errors else 1


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5: the median; 0.99: the value 99% of
    the values are at or below)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _where(item: Any) -> Tuple[int, int, int]:
    """Sort key of a ``Found`` or ``Failure``: connection, frame, reply."""
    return (item.connection, item.frame, getattr(item, "reply", 0))


# --------------------------------------------------------------------------- the replay


class Replay:
    """Replays a ``Plan`` to one side (compared with the capture) or two (compared with
    each other)."""

    def __init__(
        self,
        the_plan: Plan,
        sides: Sequence[Side],
        ignore: IgnoreList,
        speed: Optional[float] = None,
    ) -> None:
        if not 1 <= len(sides) <= 2:
            raise ValueError("replay to one server or two")
        if speed is not None and not speed > 0:
            raise ValueError("speed must be more than 0")
        self.plan = the_plan
        self.sides = list(sides)
        self.ignore = ignore
        self.speed = speed
        compared = [CAPTURE_SIDE, sides[0].name] if len(sides) == 1 else [s.name for s in sides]
        self.results = Results(compared)
        self._stop = threading.Event()
        self._maps = [
            CursorMap(side.target.socket_timeout or probe.DEFAULT_TIMEOUT) for side in sides
        ]
        self._sessions = [SessionMap() for _ in sides]
        self._side_pairs = CursorCorrespondence()  # side 1 <-> side 2, with --against
        self._created = {
            cursor
            for conn in the_plan.connections
            for exchange in conn.exchanges
            for reply in exchange.replies
            for _, cursor in cursor_ids(_document(reply))
            if cursor
        }
        self._started = 0.0

    def check_sides(self) -> None:
        """Connect (and authenticate) once to each side: a replay that cannot reach a
        server raises here, before anything is replayed."""
        for side in self.sides:
            probe.open_session(side.target).close()

    def run(self) -> Results:
        self._started = time.monotonic()
        threads = [
            threading.Thread(
                target=self._replay_connection,
                args=(conn,),
                name=f"wireclient-replay-{conn.connection}",
                daemon=True,
            )
            for conn in self.plan.connections
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)  # in steps, so Ctrl-C reaches the main thread
        except KeyboardInterrupt:
            self._stop.set()
            raise
        return self.results

    # -- one connection -----------------------------------------------------------------

    def _replay_connection(self, conn: ConnectionPlan) -> None:
        sessions: List[Any] = [None] * len(self.sides)
        try:
            for exchange in conn.exchanges:
                if self._stop.is_set() or not self._wait_for_turn(exchange):
                    return
                outcomes = [self._run_on(i, sessions, exchange) for i in range(len(self.sides))]
                self._judge(exchange, outcomes)
        finally:
            for session in sessions:
                if session is not None:
                    session.close()

    def _wait_for_turn(self, exchange: Exchange) -> bool:
        if self.speed is None:
            return True
        due = (exchange.timestamp - self.plan.start) / self.speed
        delay = due - (time.monotonic() - self._started)
        return delay <= 0 or not self._stop.wait(delay)

    def _run_on(self, index: int, sessions: List[Any], exchange: Exchange) -> Outcome:
        side, cursors = self.sides[index], self._maps[index]
        rewriter = Rewriter(
            lambda c: cursors.side_id(c, created_in_capture=c in self._created),
            self._sessions[index],
        )
        message = rewrite(exchange.message, rewriter)
        started = time.monotonic()
        try:
            if sessions[index] is None or sessions[index].closed:
                sessions[index] = probe.open_session(side.target)
                started = time.monotonic()
            replies = [
                _document(reply)
                for _, reply in probe.exchange(sessions[index], message, exchange.expects_reply)
            ]
        except (WireClientError, OSError) as exc:
            session = sessions[index]
            if session is not None:
                session.close()
            sessions[index] = None
            for reply in exchange.replies:
                cursors.give_up(_document(reply))
            return Outcome(None, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
        seconds = time.monotonic() - started
        captured = [_document(r) for r in exchange.replies]
        for i, document in enumerate(captured):
            cursors.learn(document, replies[i] if i < len(replies) else None)
        return Outcome(replies, None, seconds)

    def _judge(self, exchange: Exchange, outcomes: List[Outcome]) -> None:
        errors = [
            Failure(exchange.connection, exchange.frame, exchange.command, side.name, o.error)
            for side, o in zip(self.sides, outcomes)
            if o.error is not None
        ]
        latencies = [
            (side.name, o.seconds) for side, o in zip(self.sides, outcomes) if o.error is None
        ]
        refused_by = [  # equal or not, a server that refuses a request is worth knowing
            side.name
            for side, o in zip(self.sides, outcomes)
            if any(r.get("ok", 1) != 1 for r in o.replies or [])
        ]
        if errors:
            self.results.add(exchange, ERROR, errors=errors, latencies=latencies)
            return
        if not exchange.expects_reply:
            self.results.add(exchange, UNANSWERED, latencies=latencies)
            return
        if len(self.sides) == 1:
            left = [_document(r) for r in exchange.replies]
            right = outcomes[0].replies or []
            pairs = self._maps[0].pairs
            if not left:
                failure = Failure(
                    exchange.connection,
                    exchange.frame,
                    exchange.command,
                    CAPTURE_SIDE,
                    "the capture holds no reply to this request",
                )
                self.results.add(exchange, ERROR, errors=[failure], latencies=latencies)
                return
        else:
            left, right = outcomes[0].replies or [], outcomes[1].replies or []
            pairs = self._side_pairs
        found = [
            Found(exchange.connection, exchange.frame, exchange.command, number, difference)
            for number, difference in self._compare(left, right, pairs)
        ]
        verdict = DIFFERENT if found else EQUAL
        self.results.add(exchange, verdict, found, latencies=latencies, refused_by=refused_by)

    def _compare(
        self,
        left: List[Dict[str, Any]],
        right: List[Dict[str, Any]],
        pairs: CursorCorrespondence,
    ) -> List[Tuple[int, Difference]]:
        found: List[Tuple[int, Difference]] = []
        for number, (a, b) in enumerate(zip(left, right), 1):
            a_norm, b_norm = normalise(a, self.ignore), normalise(b, self.ignore)
            found += [(number, d) for d in differences(a_norm, b_norm, pairs)]
        if len(left) != len(right):
            found.append((min(len(left), len(right)) + 1, Difference("", len(left), len(right))))
        return found


def _document(message: Any) -> Dict[str, Any]:
    return reply_document(message)


# --------------------------------------------------------------------------- reports


def summary_lines(
    results: Results, plan_: Plan, sides: Sequence[Side], shown: int = 20
) -> List[str]:
    """The summary ``wireclient replay`` prints."""
    counts = results.counts
    names = " and ".join(side.name for side in sides)
    compared = "with each other" if len(sides) == 2 else "with the capture"
    connections = len(plan_.connections)
    lines = [
        f"replayed {results.replayed} requests of {connections} connection"
        f"{'' if connections == 1 else 's'} to {names}, compared {compared}",
        f"  equal {counts[EQUAL]}, different {counts[DIFFERENT]}, errors {counts[ERROR]}"
        + (f", sent without reply (moreToCome) {counts[UNANSWERED]}" if counts[UNANSWERED] else ""),
    ]
    skipped = plan_.skipped
    if skipped:
        parts = []
        if skipped["handshake"]:
            parts.append(f"{skipped['handshake']} hello (each connection does its own handshake)")
        if skipped["authentication"]:
            parts.append(
                f"{skipped['authentication']} authentication steps (captured SCRAM proofs are "
                "never replayed; the URI's credentials authenticate afresh)"
            )
        if skipped["undecodable"]:
            parts.append(f"{skipped['undecodable']} frames that do not decode")
        lines.append("  not replayed: " + "; ".join(parts))
    if results.refusals:
        lines.append(
            "  replies with ok other than 1: "
            + ", ".join(f"{side.name} {results.refusals[side.name]}" for side in sides)
        )
    for problem in plan_.problems:
        lines.append(f"  capture: {problem}")
    lines += _latency_lines(results, sides)
    if results.differences:
        lines.append(f"differences ({results.sides[0]} | {results.sides[1]}):")
        for item in sorted(results.differences, key=_where)[:shown]:
            lines.append("  " + _difference_line(item))
        if len(results.differences) > shown:
            lines.append(f"  ... {len(results.differences) - shown} more (--json FILE has all)")
    if results.errors:
        lines.append("errors:")
        for failure in sorted(results.errors, key=_where)[:shown]:
            lines.append(
                f"  conn {failure.connection} frame {failure.frame} {failure.command} "
                f"({failure.side}): {failure.error}"
            )
        if len(results.errors) > shown:
            lines.append(f"  ... {len(results.errors) - shown} more (--json FILE has all)")
    return lines


def _latency_lines(results: Results, sides: Sequence[Side]) -> List[str]:
    commands = sorted({c for side in sides for c in results.latency[side.name]})
    if not commands:
        return []
    width = max(len(c) for c in commands + ["command"])
    head = f"  {'command':<{width}}" + "".join(
        f"  {side.name + ' p50/p99 ms (n)':>34}" for side in sides
    )
    lines = ["latency:", head]
    for command in commands:
        row = f"  {command:<{width}}"
        for side in sides:
            values = results.latency[side.name].get(command, [])
            cell = (
                f"{percentile(values, 0.5):.2f} / {percentile(values, 0.99):.2f} ({len(values)})"
                if values
                else "-"
            )
            row += f"  {cell:>34}"
        lines.append(row)
    return lines


def _show(value: Any, other: Any) -> str:
    if value is MISSING:
        return "(missing)"
    relaxed = trace.to_json(value)
    if other is not MISSING and relaxed == trace.to_json(other):  # same text, other types
        return trace.to_json(value, mode="canonical")
    return relaxed


def _difference_line(item: Found) -> str:
    d = item.difference
    where = f"conn {item.connection} frame {item.frame} {item.command}"
    if item.reply > 1:
        where += f" reply {item.reply}"
    if d.path == "":
        return f"{where}: {d.left} replies | {d.right} replies"
    return f"{where}: {d.path}: {_show(d.left, d.right)} | {_show(d.right, d.left)}"


def json_report(results: Results, plan_: Plan, sides: Sequence[Side], source: str) -> str:
    """Every difference and error, with the summary, as JSON (the values compared as
    canonical Extended JSON, so that their BSON types show)."""
    differences_out = []
    for item in sorted(results.differences, key=_where):
        d = item.difference
        entry: Dict[str, Any] = {
            "connection": item.connection,
            "frame": item.frame,
            "command": item.command,
            "reply": item.reply,
            "path": d.path if d.path else "(reply count)",
        }
        for key, value in (("left", d.left), ("right", d.right)):
            if value is MISSING:
                entry["missing"] = key
            else:  # canonical Extended JSON: a value keeps its BSON type
                entry[key] = json.loads(trace.to_json(value, mode="canonical"))
        differences_out.append(entry)
    latency = {
        side.name: {
            command: {
                "count": len(values),
                "p50_ms": percentile(values, 0.5),
                "p99_ms": percentile(values, 0.99),
            }
            for command, values in sorted(results.latency[side.name].items())
        }
        for side in sides
    }
    report = {
        "capture": source,
        "left": results.sides[0],
        "right": results.sides[1],
        "summary": {
            "replayed": results.replayed,
            "equal": results.counts[EQUAL],
            "different": results.counts[DIFFERENT],
            "errors": results.counts[ERROR],
            "unanswered": results.counts[UNANSWERED],
            "refused": {side.name: results.refusals[side.name] for side in sides},
            "skipped": dict(plan_.skipped),
            "capture_problems": plan_.problems,
            "latency": latency,
        },
        "differences": differences_out,
        "errors": [failure._asdict() for failure in sorted(results.errors, key=_where)],
    }
    return json.dumps(report, indent=1)


__all__ = [
    "CAPTURE_SIDE",
    "HANDSHAKE_COMMANDS",
    "CaptureError",
    "ConnectionPlan",
    "CursorMap",
    "Exchange",
    "Failure",
    "Found",
    "Plan",
    "Replay",
    "Results",
    "Rewriter",
    "SessionMap",
    "Side",
    "json_report",
    "load",
    "percentile",
    "plan",
    "rewrite",
    "summary_lines",
]
