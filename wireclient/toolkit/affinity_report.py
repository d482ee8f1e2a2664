"""The affinity lab's output: progress lines, the terminal table, JSON, and charts.

``plot`` imports matplotlib only when called (it is an optional extra: ``pip install
wireclient[plot]``) and raises ``PlotUnavailable`` with a one-line reason without it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from wireclient.toolkit.affinity_workload import KINDS, MODES, Workload

KIND_LABEL = {
    "threads": "threads",
    "gevent": "gevent patch_all greenlets",
    "gevent-socket": "gevent patch_socket greenlets, use_greenlets=True",
    "tasks": "asyncio Tasks on one event loop (AsyncConnection / AsyncMongoClient)",
}
MODE_LABEL = {
    "on": "auto_start_request on",
    "off": "auto_start_request off",
    "explicit": "off + start_request per unit",
    "pymongo": "pymongo 4 (no requests)",
}

# (title, how to read one figure from a result) for the charts, one chart per figure.
CHARTS: Tuple[Tuple[str, str], ...] = (
    ("sockets created (server)", "sockets_created_server"),
    ("affinity (%)", "affinity_pct"),
    ("stale reads (%)", "stale_pct"),
    ("operations per second", "ops_per_s"),
    ("unit latency p99 (ms)", "p99"),
    ("client CPU per operation (µs)", "cpu_us_per_op"),
)


TASKS_NOTE = (
    ". asyncio Tasks: on = AsyncConnection, off and explicit = AsyncMongoClient (requests "
    "per Task), pymongo = pymongo's AsyncMongoClient"
)


class PlotUnavailable(Exception):
    """``--plot`` without matplotlib."""


def value(result: Dict[str, Any], name: str) -> Optional[float]:
    """One figure of a result, as a number (None when not measured)."""
    if name == "affinity_pct":
        x = result.get("affinity")
        return None if x is None else 100.0 * x
    if name == "stale_pct":
        x = result.get("stale_share")
        return None if x is None else 100.0 * x
    if name in ("p50", "p99"):
        latency = result.get("unit_latency_ms") or {}
        return latency.get(name)
    x = result.get(name)
    return None if x is None else float(x)


def _num(x: Optional[float], digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}"


def progress_line(i: int, total: int, result: Dict[str, Any]) -> str:
    head = f"affinity [{i}/{total}] {result.get('kind')} x{result.get('callers')} "
    head += f"{result.get('mode')}: "
    if result.get("failure"):
        return head + f"FAILED: {result['failure']}"
    line = (
        f"{result['ops']} ops in {result['wall_s']:.2f}s, "
        f"affinity {_num(value(result, 'affinity_pct'), 1)}%, "
        f"{result['stale_reads']}/{result['reads']} stale, "
        f"{result['sockets_created_server']} sockets"
    )
    if not result.get("ok"):
        line += " (NOT OK: " + ", ".join(problems(result)) + ")"
    return head + line


def problems(result: Dict[str, Any]) -> List[str]:
    """Why a result is not ok, in words."""
    if result.get("failure"):
        return [str(result["failure"])]
    found = []
    for name, words in (
        ("error_count", "operation errors"),
        ("callers_unfinished", "callers unfinished"),
        ("unobserved_ops", "operations with no socket observed"),
        ("verify_mismatches", "whatsmyuri mismatches"),
        ("overcounts", "reads above the caller's own count"),
        ("writes_missing", "writes that never landed"),
    ):
        if result.get(name):
            found.append(f"{result[name]} {words}")
    if result.get("timed_out"):
        found.append("timed out")
    if result.get("errors"):
        found.append(f"first error: {result['errors'][0]}")
    return found


COLUMNS = (
    ("callers", 8),
    ("mode", 9),
    ("ops", 6),
    ("created srv/ev", 14),
    ("peak ev/srv", 11),
    ("affinity", 8),
    ("stale", 9),
    ("ops/s", 6),
    ("p50 ms", 7),
    ("p99 ms", 7),
    ("cpu µs/op", 9),
)


def _row(result: Dict[str, Any]) -> List[str]:
    if result.get("failure"):
        return [str(result.get("callers")), str(result.get("mode")), "FAILED: " + result["failure"]]
    return [
        str(result["callers"]),
        result["mode"],
        str(result["ops"]),
        f"{result['sockets_created_server']}/{result['sockets_created_events']}",
        f"{result['peak_open_events']}/{result['peak_open_server']}",
        _num(value(result, "affinity_pct"), 1) + "%",
        f"{result['stale_reads']}/{result['reads']}",
        _num(result["ops_per_s"]),
        _num(value(result, "p50"), 1),
        _num(value(result, "p99"), 1),
        _num(result["cpu_us_per_op"]),
    ] + ([] if result.get("ok") else ["NOT OK: " + "; ".join(problems(result))])


def table(results: Sequence[Dict[str, Any]], markdown: bool = False) -> str:
    """One table per kind of caller: text for a terminal, or Markdown for docs."""
    out: List[str] = []
    for kind in KINDS:
        rows = [_row(r) for r in results if r.get("kind") == kind]
        if not rows:
            continue
        heads = [name for name, _ in COLUMNS]
        if markdown:
            out.append(f"**{KIND_LABEL[kind]}**\n")
            out.append("| " + " | ".join(heads) + " |")
            out.append("|" + "|".join("---:" for _ in heads) + "|")
            out.extend("| " + " | ".join(row) + " |" for row in rows)
        else:
            out.append(KIND_LABEL[kind])
            widths = [width for _, width in COLUMNS]
            out.append("  ".join(h.rjust(w) for h, w in zip(heads, widths)))
            for row in rows:
                cells = [c.rjust(w) for c, w in zip(row, widths)] + row[len(widths) :]
                out.append("  ".join(cells))
        out.append("")
    out.append(
        "created srv/ev: sockets created, seen by the server (totalCreated) / by pool events; "
        "peak ev/srv: most sockets open at once, by pool events / sampled by the server; "
        "affinity: consecutive operations of a caller on the same socket; stale: reads that "
        "missed the caller's own writes; p50/p99: latency per unit (k updates + 1 read); "
        "cpu: worker process CPU per operation. Modes: "
        + "; ".join(f"{m} = {MODE_LABEL[m]}" for m in MODES)
        + (TASKS_NOTE if any(r.get("kind") == "tasks" for r in results) else "")
    )
    return "\n".join(out)


def document(
    command: Sequence[str],
    uri: str,
    workload: Workload,
    results: Sequence[Dict[str, Any]],
    notes: Sequence[str] = (),
) -> Dict[str, Any]:
    """Everything a JSON file of a run holds (``command``: the command line, as run;
    ``notes``: what the run left out, and why)."""
    return {
        "tool": "wireclient.toolkit.affinity",
        "command": [without_password(x) if x == uri else x for x in command],
        "uri": without_password(uri),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "workload": workload._asdict(),
        "notes": list(notes),
        "results": list(results),
    }


def without_password(uri: str) -> str:
    """The URI with any password replaced by ``***`` (JSON files get shared)."""
    scheme, sep, rest = uri.partition("://")
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return uri
    userinfo, _, hosts = authority.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{hosts}{slash}{tail}"


def write_json(path: str, doc: Dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


def series(
    results: Sequence[Dict[str, Any]], kind: str, figure: str
) -> Dict[str, Tuple[List[int], List[float]]]:
    """For one chart: per mode, the caller counts and the figure's values (ok results
    with a value only), sorted by caller count."""
    out: Dict[str, Tuple[List[int], List[float]]] = {}
    for mode in MODES:
        points = sorted(
            (int(r["callers"]), v)
            for r in results
            if r.get("kind") == kind and r.get("mode") == mode and r.get("ok")
            for v in [value(r, figure)]
            if v is not None
        )
        if points:
            out[mode] = ([x for x, _ in points], [y for _, y in points])
    return out


# One look per mode, so that modes with equal values stay visible where their lines lie on
# one another: wider lines and larger hollow markers are drawn first, and each mode's points
# sit slightly to one side of the caller count (DODGE: a factor, the same on a log axis).
STYLES: Dict[str, Dict[str, Any]] = {
    "on": {"marker": "o", "linestyle": "-", "linewidth": 3.2, "markersize": 11},
    "off": {"marker": "s", "linestyle": "--", "linewidth": 2.4, "markersize": 8},
    "explicit": {"marker": "^", "linestyle": "-.", "linewidth": 1.7, "markersize": 7},
    "pymongo": {"marker": "D", "linestyle": ":", "linewidth": 1.2, "markersize": 5},
}
DODGE = 1.035
LEGEND_WIDTH = 2.0  # inches beside the charts
SINGLE_COUNT_SPAN = 1.3  # a chart of one caller count spans count/1.3 .. count*1.3
CAPTION = (
    "One line per mode; failed configurations are left out. Modes with equal values draw "
    "their lines on one another: each has its own marker, line style and width, and its "
    "points are moved slightly sideways from the caller count, so that every mode shows."
)


def describe_workload(results: Sequence[Dict[str, Any]], workload: Optional[Workload]) -> str:
    """The pool size and the workload of a run, in words (the charts' title)."""
    if workload is None:  # from the results: what every configuration was run with
        pools = sorted({int(r["max_pool_size"]) for r in results if "max_pool_size" in r})
        ks = sorted({int(r["k"]) for r in results if "k" in r})
        pool = "/".join(map(str, pools)) or "?"
        k = "/".join(map(str, ks)) or "?"
        return f"pool of {pool} sockets (max_pool_size); units of k={k} updates + 1 read"
    text = (
        f"pool of {workload.max_pool_size} sockets (max_pool_size); units of "
        f"k={workload.k} unacknowledged $inc updates + 1 read of the caller's own document, "
        f"{workload.units} units per caller (fewer above {workload.max_ops} operations)"
    )
    if workload.think_ms:
        text += f", think time {workload.think_ms} ms on average before each unit"
    if workload.verify:
        text += ", whatsmyuri after each read"
    return text


def figure(
    results: Sequence[Dict[str, Any]], workload: Optional[Workload] = None, pyplot: Any = None
) -> Any:
    """The charts as a matplotlib figure: one chart per figure (rows) and kind of caller
    (columns), the figure against the number of callers, one line per mode; the title names
    the pool size and the workload. ``pyplot``: ``matplotlib.pyplot``, imported here when
    not given."""
    import textwrap

    plt = pyplot if pyplot is not None else _pyplot()
    kinds = [k for k in KINDS if any(r.get("kind") == k for r in results)]
    if not kinds:
        raise PlotUnavailable("nothing to plot: no result")
    width = 5.0 * len(kinds) + LEGEND_WIDTH
    fig, axes = plt.subplots(
        len(CHARTS),
        len(kinds),
        figsize=(width, 3.0 * len(CHARTS) + 1.4),
        squeeze=False,
        layout="constrained",  # titles, tick labels, legend and caption never overlap
    )
    # The title and the caption stay over the charts, clear of the legend beside them.
    charts = 5.0 * len(kinds)
    middle = charts / 2 / width
    title = "Socket affinity lab: " + describe_workload(results, workload)
    fig.suptitle(textwrap.fill(title, int(charts * 12)), x=middle, fontsize=10)
    fig.supxlabel(textwrap.fill(CAPTION, int(charts * 14)), x=middle, fontsize=8)
    drawn = [m for m in MODES if any(r.get("mode") == m for r in results)]
    shift = {m: DODGE ** (i - (len(drawn) - 1) / 2) for i, m in enumerate(drawn)}
    handles: Dict[str, Any] = {}
    for col, kind in enumerate(kinds):
        for row, (chart_title, name) in enumerate(CHARTS):
            ax = axes[row][col]
            lines = series(results, kind, name)
            for mode, (xs, ys) in lines.items():
                (line,) = ax.plot(
                    [x * shift[mode] for x in xs],
                    ys,
                    label=MODE_LABEL[mode],
                    markerfacecolor="none",
                    markeredgewidth=1.5,
                    **STYLES[mode],
                )
                handles.setdefault(mode, line)
            counts = sorted({x for xs, _ in lines.values() for x in xs})
            if counts and counts[-1] >= 10 * counts[0]:
                ax.set_xscale("log")
            ax.minorticks_off()  # a log axis would label its minor ticks over the counts
            if counts:
                ax.set_xticks(counts)
                ax.set_xticklabels([str(c) for c in counts])
            if len(counts) == 1:  # else the axis would span the sideways offsets only
                ax.set_xlim(counts[0] / SINGLE_COUNT_SPAN, counts[0] * SINGLE_COUNT_SPAN)
            ax.set_title(f"{chart_title}\n{KIND_LABEL[kind]}", fontsize=9)
            ax.set_xlabel("callers")
            ax.grid(True, alpha=0.3)
            if name in ("affinity_pct", "stale_pct"):
                ax.set_ylim(-5, 105)
    if handles:
        modes = [m for m in MODES if m in handles]
        fig.legend(
            [handles[m] for m in modes],
            [MODE_LABEL[m] for m in modes],
            loc="outside right upper",  # at the top or bottom it would cover the title
            fontsize=8,
        )
    return fig


def _pyplot() -> Any:
    import importlib

    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")  # no display needed
        return importlib.import_module("matplotlib.pyplot")
    except ImportError as exc:
        raise PlotUnavailable(f"--plot needs matplotlib ({exc})") from None


def plot(results: Sequence[Dict[str, Any]], path: str, workload: Optional[Workload] = None) -> None:
    """``figure(results, workload)`` written to ``path`` (PNG, or SVG when the name ends in
    .svg). Needs matplotlib; ``PlotUnavailable`` without it."""
    plt = _pyplot()
    fig = figure(results, workload, plt)
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
