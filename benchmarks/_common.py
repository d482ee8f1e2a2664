"""Shared pieces of the benchmark scripts: the server to measure against, timing, tables and
the JSON results.

Every script takes ``--uri`` (a running server; ``make bench`` passes the one it started)
and otherwise starts a SecantusDB of its own for the run. Client CPU is the figure that
counts: ``time.process_time()`` of the client process, the server being another process, so
a busy server or a noisy neighbour shows in wall time but hardly in the client's CPU.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))  # servers.py

Op = Callable[[Any], Any]


@contextlib.contextmanager
def server_uri(uri: Optional[str], test_commands: bool = True) -> Iterator[str]:
    """``uri``, ``$WIRECLIENT_URI``, or a SecantusDB started here for the duration."""
    uri = uri or os.environ.get("WIRECLIENT_URI")
    if uri:
        yield uri
        return
    from servers import SecantusServer

    server = SecantusServer(test_commands=test_commands).start()
    try:
        yield server.uri
    finally:
        server.stop()


def host_port(uri: str) -> tuple[str, int]:
    from wireclient.rules.uri import parse_uri

    host, port = parse_uri(uri).hosts[0]
    return str(host), int(port)


def settle() -> None:
    """Before a timed section, untimed: a full garbage collection, so every contender starts
    with the collector in the same state (the collector stays on while timing: the garbage
    a client makes is part of its cost)."""
    gc.collect()


def time_ops(op: Op, args: Sequence[Any]) -> tuple[float, float]:
    """(client CPU µs per op, wall µs per op) of ``op(a)`` for each prepared ``a``."""
    settle()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for a in args:
        op(a)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return cpu / len(args) * 1e6, wall / len(args) * 1e6


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, columns right-aligned except the first."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(parts))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def write_json(name: str, data: Dict[str, Any], out_dir: str = RESULTS) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    return path


def interleave(rounds: int, names: List[str], run: Callable[[str], None]) -> None:
    """A B C A B C ...: every round runs each contender once, in the same order."""
    for _ in range(rounds):
        for name in names:
            run(name)
