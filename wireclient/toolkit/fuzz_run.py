"""The fuzzer's runner: send each case, see what the server did, check it still answers.

Theory of operation
-------------------
``run(target, cases, ...)`` takes the cases ``fuzz.generate_all`` makes and, for each one:

1. opens a new connection to the server *without* a handshake (the probe's session,
   ``handshake=False``: the case's frame is the first thing the server reads, TLS and all
   when the URI asks for it), sends the frame as it is, and reads what comes back with the
   probe's ``send_raw_and_wait``, within ``timeout`` seconds;
2. names the outcome: ``reply`` (a frame came back, decodable or not), ``close`` (the server
   closed or reset the connection), or ``silence`` (nothing within the timeout; the right
   answer to ``moreToCome``, and what a server waiting for the rest of a frame does);
3. checks that the server still answers: a ``ping`` on a fresh, handshaken connection. If it
   fails ``PING_ATTEMPTS`` times running, the case's outcome becomes ``dead``, its frame is
   saved to a file that ``wireclient send URI FILE`` replays, and the run stops (a dead
   server answers nothing more, and the next case would only time out).

A run is bounded in count (the cases given) and in time: ``time_limit`` seconds, after which
no new case starts. ``Report`` holds every ``CaseResult`` in order, the counts, the time,
and where dead cases were saved; ``text_lines`` and ``to_json`` render it, and
``survived`` is what the exit status says.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, TextIO

from wireclient import protocol
from wireclient.errors import WireClientError
from wireclient.rules import command
from wireclient.toolkit import probe
from wireclient.toolkit.fuzz import CLASS_NAMES, Case

OUTCOMES = ("reply", "close", "silence", "dead")
PING_ATTEMPTS = 3
_HEX_SHOWN = 64  # bytes of a frame the text report shows


class CaseResult(NamedTuple):
    case: Case
    outcome: str  # one of OUTCOMES
    detail: str  # what came back, or how it ended
    saved: Optional[str] = None  # the frame file of a dead case


class Report:
    """What a run did, case by case (see the module docstring)."""

    def __init__(self, server: str, run_seed: int, planned: int, timeout: float) -> None:
        self.server = server
        self.run_seed = run_seed
        self.planned = planned
        self.timeout = timeout
        self.results: List[CaseResult] = []
        self.elapsed = 0.0
        self.stopped: Optional[str] = None  # why the run ended before its last case

    @property
    def survived(self) -> bool:
        return not any(r.outcome == "dead" for r in self.results)

    def counts(self) -> Dict[str, Dict[str, int]]:
        """class -> outcome -> cases, every class and outcome present (zeros included)."""
        table = {cls: dict.fromkeys(OUTCOMES, 0) for cls in CLASS_NAMES}
        for result in self.results:
            table[result.case.mutation.cls][result.outcome] += 1
        return table

    def totals(self) -> Dict[str, int]:
        totals = dict.fromkeys(OUTCOMES, 0)
        for result in self.results:
            totals[result.outcome] += 1
        return totals

    # -- rendering ------------------------------------------------------------------------

    def summary_lines(self) -> List[str]:
        ran = len(self.results)
        verdict = (
            "the server answered a ping after every case"
            if self.survived
            else "the server DIED (no ping answered after a case)"
        )
        lines = [
            f"fuzz: {ran} of {self.planned} cases, seed {self.run_seed}, against {self.server}, "
            f"in {self.elapsed:.1f} s: {verdict}"
        ]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        width = max(len(c) for c in CLASS_NAMES)
        lines.append(f"  {'class':<{width}}  " + "  ".join(f"{o:>7}" for o in OUTCOMES))
        for cls, row in self.counts().items():
            lines.append(f"  {cls:<{width}}  " + "  ".join(f"{row[o]:>7}" for o in OUTCOMES))
        totals = self.totals()
        lines.append(f"  {'total':<{width}}  " + "  ".join(f"{totals[o]:>7}" for o in OUTCOMES))
        return lines

    def to_json(self) -> Dict[str, Any]:
        return {
            "server": self.server,
            "seed": self.run_seed,
            "cases_planned": self.planned,
            "cases_run": len(self.results),
            "timeout": self.timeout,
            "elapsed": round(self.elapsed, 3),
            "survived": self.survived,
            "stopped_early": self.stopped,
            "totals": self.totals(),
            "by_class": self.counts(),
            "cases": [
                {
                    "index": r.case.number,
                    "class": r.case.mutation.cls,
                    "mutation": r.case.mutation.name,
                    "description": r.case.mutation.description,
                    "seed": r.case.seed_name,
                    "frame_hex": r.case.mutation.frame.hex(),
                    "outcome": r.outcome,
                    "detail": r.detail,
                    "saved": r.saved,
                }
                for r in self.results
            ],
        }

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=1)
            f.write("\n")


# --------------------------------------------------------------------------- one case


def case_lines(result: CaseResult) -> List[str]:
    """The report's lines for one case: what was sent, and what the server did."""
    m = result.case.mutation
    frame = m.frame
    shown = frame[:_HEX_SHOWN].hex()
    more = f" ... ({len(frame)} bytes)" if len(frame) > _HEX_SHOWN else f" ({len(frame)} bytes)"
    lines = [
        f"case {result.case.number} {m.cls}/{m.name} (seed {result.case.seed_name}): "
        f"{m.description}",
        f"  frame {shown}{more}",
        f"  -> {result.outcome}: {result.detail}",
    ]
    if result.saved is not None:
        lines.append(f"  saved as {result.saved} (replay: wireclient send URI {result.saved})")
    return lines


def describe_reply(frames: List[Any]) -> str:
    """A short account of the frames that came back."""
    parts = []
    for frame in frames:
        if frame.error is not None or frame.message is None:
            parts.append(f"an undecodable frame ({frame.error or 'partial'})")
            continue
        message = frame.message
        if isinstance(message, (protocol.OpMsg, protocol.OpReply)):
            try:
                doc = command.reply_document(message)
            except WireClientError as exc:
                parts.append(f"{type(message).__name__} ({exc})")
                continue
            if doc.get("ok") == 1:
                parts.append("ok 1")
            else:
                text = str(doc.get("errmsg", ""))[:100]
                parts.append(f"ok 0, code {doc.get('code')} {doc.get('codeName', '')}: {text}")
        else:
            parts.append(protocol.OPCODE_NAMES.get(message.op_code, str(message.op_code)))
    return "; ".join(parts)


def send_case(target: probe.Target, case: Case, timeout: float) -> CaseResult:
    """Send one case on a new connection: its outcome, before the health check."""
    try:
        session = probe.open_session(target, handshake=False)
    except (WireClientError, OSError) as exc:
        return CaseResult(case, "dead", f"cannot connect: {exc}")
    try:
        outcome = probe.send_raw_and_wait(session, case.mutation.frame, 1, timeout)
    except (WireClientError, OSError) as exc:  # the send itself failed: a reset
        session.close()
        return CaseResult(case, "close", f"connection lost while sending: {exc}")
    if outcome.ending in ("replied", "undecodable") or outcome.frames:
        detail = describe_reply(outcome.frames)
        if outcome.ending == "closed":
            detail += ", then closed"
        return CaseResult(case, "reply", detail)
    if outcome.ending == "closed":
        return CaseResult(case, "close", outcome.detail)
    return CaseResult(case, "silence", outcome.detail)


def server_answers(target: probe.Target) -> Optional[str]:
    """None when a ping on a fresh connection succeeds, else why it did not."""
    try:
        session = probe.open_session(target)
    except (WireClientError, OSError) as exc:
        return f"cannot connect: {exc}"
    try:
        message, _ = probe.command_message("admin", {"ping": 1}, (), session.max_wire_version)
        for _header, reply in probe.exchange(session, message):
            if probe.failed(reply):
                return "ping answered ok: 0"
        return None
    except (WireClientError, OSError) as exc:
        return f"ping failed: {exc}"
    finally:
        session.close()


def save_frame(directory: str, run_seed: int, case: Case) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"fuzz-seed{run_seed}-case{case.number}.bin")
    with open(path, "wb") as f:
        f.write(case.mutation.frame)
    return path


def run(
    target: probe.Target,
    cases: Iterable[Case],
    *,
    run_seed: int,
    planned: int,
    timeout: float = 1.0,
    time_limit: float = 600.0,
    save_dir: str = ".",
    on_case: Optional[Callable[[CaseResult], None]] = None,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Run ``cases`` against ``target`` (see the module docstring)."""
    from wireclient.rules.uri import format_address

    report = Report(format_address(target.address), run_seed, planned, timeout)
    started = clock()
    check_target = target._replace(connect_timeout=timeout, socket_timeout=timeout)
    try:
        for case in cases:
            if clock() - started >= time_limit:
                report.stopped = f"the time limit of {time_limit:g} s was reached"
                break
            result = send_case(check_target, case, timeout)
            if result.outcome != "dead":
                failure = None
                for _ in range(PING_ATTEMPTS):
                    failure = server_answers(check_target)
                    if failure is None:
                        break
                if failure is not None:
                    result = result._replace(
                        outcome="dead",
                        detail=f"{result.outcome} ({result.detail}); then no ping answered: "
                        f"{failure}",
                    )
            if result.outcome == "dead":
                result = result._replace(saved=save_frame(save_dir, run_seed, case))
            report.results.append(result)
            if on_case is not None:
                on_case(result)
            if result.outcome == "dead":
                report.stopped = f"the server died at case {case.number}"
                break
    finally:
        report.elapsed = clock() - started
    return report


def write_lines(stream: TextIO) -> Callable[[List[str]], None]:
    def write(lines: List[str]) -> None:
        stream.write("\n".join(lines) + "\n")
        stream.flush()

    return write


__all__ = [
    "OUTCOMES",
    "PING_ATTEMPTS",
    "CaseResult",
    "Report",
    "case_lines",
    "describe_reply",
    "run",
    "save_frame",
    "send_case",
    "server_answers",
    "write_lines",
]
