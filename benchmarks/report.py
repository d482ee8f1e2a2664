"""Render docs/benchmarks.md and its charts from the JSON of the last `make bench`.

Reads benchmarks/results/*.json (run.json for the machine and the scripts' outcomes) and
writes docs/benchmarks.md with every table, and docs/bench-ratio.png (client CPU over the
floor, per workload, for both clients) and docs/bench-concurrency.png with matplotlib when
it is installed (the ``bench`` extra). A missing result file leaves its section saying so.

    python benchmarks/report.py [--results DIR] [--docs DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

RATIO_CHART = "bench-ratio.png"
CONCURRENCY_CHART = "bench-concurrency.png"
NAN = float("nan")


def load(results: str, name: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(results, name)) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return None


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:  # no such target, or no such figure
        return "-"
    if isinstance(value, bool):
        return "pass" if value else "**FAIL**"
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return lines + [""]


def machine_section(run: Optional[Dict[str, Any]]) -> List[str]:
    if not run:
        return ["(no benchmarks/results/run.json: run `make bench`)", ""]
    m = run["machine"]
    out = [
        f"Run of {m['date']} on wireclient `{m['wireclient_commit']}`"
        + (" (`--quick`)" if run.get("quick") else "")
        + f", {run['benchmark_seconds']:.0f} s for every script:",
        "",
        f"- machine: {m['cpus']} CPUs, {m['cpu_model']}; {m['platform']}",
        f"- Python {m['python']} ({m['python_implementation']}); bson from pymongo "
        f"{m['pymongo']} (C extension: {'yes' if m['bson_c_extension'] else 'no'}); "
        f"SecantusDB {m['SecantusDB']}; gevent {m['gevent']}",
        f"- load average (1, 5, 15 min) at the start {m.get('load_average_at_start', '?')}, "
        f"at the end {m.get('load_average_at_end', '?')}: the machine is shared, and a load "
        "above its CPU count inflates wall times more than client CPU",
        "- the server is SecantusDB (a MongoDB-compatible server written in Python) on the same "
        "machine, in its own process; client CPU (`time.process_time()` of the client process) "
        "is the figure compared, wall time depends on the server",
        "",
    ]
    out += md_table(
        ["script", "outcome", "seconds"],
        [
            [r["script"], "ok" if r["ok"] else f"**FAILED** ({r['status']})", f"{r['seconds']:.1f}"]
            for r in run["scripts"]
        ],
    )
    return out


def workloads_section(w: Optional[Dict[str, Any]], docs: str, charts: bool) -> List[str]:
    out = ["## Six workloads: client CPU per operation", ""]
    if not w:
        return out + ["(no workloads.json)", ""]
    out += [
        f"`benchmarks/bench_workloads.py`: medians of {w['rounds']} interleaved rounds "
        "(floor, wireclient, pymongo, round after round); operations per round: "
        + ", ".join(f"{k} {v:,}" for k, v in w["ops_per_round"].items())
        + ". Floor: one socket, pre-framed OP_MSG, one `bson.encode` per call, `sendall` / "
        "`recv_into`, one `bson.decode` (inserts make their `ObjectId`s too). pymongo: "
        "`MongoClient(retryWrites=False, directConnection=True)`; wireclient: `Connection(uri)`.",
        "",
    ]
    rows = []
    for name, r in w["workloads"].items():
        cpu = r["cpu_us"]
        rows.append(
            [
                name,
                cpu["floor"],
                cpu["pymongo"],
                cpu["wireclient"],
                r["wireclient_to_floor"],
                r["pymongo_to_floor"],
                r["wireclient_to_pymongo"],
                r["pass_floor"],
                r["pass_pymongo"],
            ]
        )
    out += md_table(
        [
            "workload",
            "floor µs",
            "pymongo µs",
            "wireclient µs",
            "wireclient / floor",
            "pymongo / floor",
            "wireclient / pymongo",
            "target ≤ 1.25x floor",
            "ahead of pymongo",
        ],
        rows,
    )
    walls = [
        [n, r["wall_us"]["floor"], r["wall_us"]["pymongo"], r["wall_us"]["wireclient"]]
        for n, r in w["workloads"].items()
    ]
    out += ["Wall time per operation (µs; mostly the server's):", ""]
    out += md_table(["workload", "floor", "pymongo", "wireclient"], walls)
    if charts:
        out += [f"![client CPU over the floor, per workload]({RATIO_CHART})", ""]
        from report_charts import ratio_chart

        ratio_chart(w, os.path.join(docs, RATIO_CHART))
    return out


ASYNC_COLUMNS = [  # (contender in asyncio.json, column header)
    ("floor", "floor µs"),
    ("floor async", "asyncio floor µs"),
    ("wireclient", "wireclient µs"),
    ("wireclient async", "AsyncConnection µs"),
    ("pymongo async", "pymongo async µs"),
    ("floor async, uvloop", "asyncio floor, uvloop µs"),
    ("wireclient async, uvloop", "AsyncConnection, uvloop µs"),
]


def asyncio_section(a: Optional[Dict[str, Any]]) -> List[str]:
    out = ["## asyncio: six workloads, client CPU per operation", ""]
    if not a:
        return out + ["(no asyncio.json)", ""]
    names = a["contenders"]
    out += [
        "`benchmarks/bench_asyncio.py`"
        + (
            f" (run of {a['date']} on wireclient `{a['wireclient_commit']}`"
            + (", `--quick`)" if a.get("quick") else ")")
            if "date" in a
            else ""
        )
        + ": the six workloads of `bench_workloads.py` (same "
        "operations, same prepared arguments), every contender in one process and one run, "
        f"medians of {a['rounds']} interleaved rounds; operations per round: "
        + ", ".join(f"{k} {v:,}" for k, v in a["ops_per_round"].items())
        + ". It shows what wireclient's asyncio client costs against pymongo's asyncio "
        "client and against wireclient's own blocking client doing the same operations. "
        "*AsyncConnection*: wireclient `AsyncConnection(uri)`, its defaults "
        "(`auto_start_request=True`, like `Connection`'s: the timing Task keeps one request "
        "socket); *pymongo async*: `pymongo.AsyncMongoClient(directConnection=True, "
        "retryWrites=False)`; *wireclient*: the blocking `Connection(uri)`; *floor*: the "
        "blocking bare-socket floor of the table above; *asyncio floor*: the same work over "
        "one `asyncio.BufferedProtocol` connection (`_raw.AsyncRawClient`: one `bson.encode` "
        "per command, one `transport.write`, the reply read by the loop into a reused buffer "
        "and decoded with one `bson.decode`), what asyncio itself costs one caller. The async "
        "contenders share one stdlib event loop"
        + (
            "; the uvloop columns run `AsyncConnection` and the asyncio floor on one uvloop loop"
            if a.get("uvloop")
            else ""
        )
        + ". Targets (issue 21): AsyncConnection at most "
        f"{a['target_pymongo']}x pymongo async and at most {a['target_blocking']}x the "
        "blocking wireclient on every workload; the ratios to the floors have none.",
        "",
    ]
    columns = [(n, h) for n, h in ASYNC_COLUMNS if n in names]
    rows = []
    for name, r in a["workloads"].items():
        rows.append(
            [name]
            + [r["cpu_us"][n] for n, _ in columns]
            + [
                r["async_to_pymongo"],
                r["async_to_blocking"],
                r["async_to_floor"],
                r["floor_async_to_floor"],
                r["pass_pymongo"],
                r["pass_blocking"],
            ]
        )
    out += md_table(
        ["workload"]
        + [h for _, h in columns]
        + [
            "AsyncConnection / pymongo async",
            "AsyncConnection / wireclient",
            "AsyncConnection / asyncio floor",
            "asyncio floor / floor",
            f"target ≤ {a['target_pymongo']}x pymongo async",
            f"target ≤ {a['target_blocking']}x wireclient",
        ],
        rows,
    )
    if a.get("uvloop"):
        out += ["Under uvloop (no target):", ""]
        out += md_table(
            [
                "workload",
                "AsyncConnection, uvloop / wireclient",
                "AsyncConnection, uvloop / asyncio floor, uvloop",
            ],
            [
                [name, r["uvloop_to_blocking"], r["uvloop_to_floor"]]
                for name, r in a["workloads"].items()
            ],
        )
    out += ["Wall time per operation (µs; mostly the server's):", ""]
    out += md_table(
        ["workload"] + [h.replace(" µs", "") for _, h in columns],
        [[n] + [r["wall_us"][c] for c, _ in columns] for n, r in a["workloads"].items()],
    )
    return out


OLD_KINDS = ["threads", "greenlets"]  # a concurrency.json from before the floor has no "kinds"


def concurrency_section(c: Optional[Dict[str, Any]], docs: str, charts: bool) -> List[str]:
    if not c:
        return ["## Concurrency", "", "(no concurrency.json)", ""]
    runs = []
    for key in c.get("kinds", OLD_KINDS):
        run = c[key]
        run.setdefault("noun", key)
        if "note" not in run:
            gevent = "in a subprocess after `gevent.monkey.patch_all()`"
            run["note"] = gevent if key == "greenlets" else "OS threads"
        runs.append(run)
    title = ", ".join(f"{r['callers']:,} {r['noun']}" for r in runs)
    out = [f"## Concurrency: {title}", ""]
    each = "; ".join(
        f"{r['callers']:,} {r['noun']} ({r['note']}) doing {r['ops_per_caller']} each" for r in runs
    )
    first = runs[0]
    out += [
        "`benchmarks/bench_concurrency.py`: all callers released at once, each doing a few "
        f"operations: {each}; against one caller doing {first['single_caller_ops']:,} alone "
        f"in the same run; medians of {first['rounds']} interleaved rounds. Client CPU per "
        "operation counts every thread of the process.",
        "",
        "The floor (`benchmarks/_raw.py`) is what the interpreter itself costs "
        "under the same concurrency: the same callers send the very commands wireclient "
        "sends, as OP_MSG frames built before the timing, and decode each reply with one "
        "`bson.decode`; they share as many sockets as the "
        "clients' pools hold (`min(callers, 100)`, 100 being both clients' default "
        "`maxPoolSize`), so waiting for a socket costs the floor too. Threads and greenlets "
        "(`RawPool`): blocking bare sockets through one `queue.SimpleQueue` (gevent's after "
        "`patch_all()`); Tasks (`AsyncRawPool`): `asyncio.BufferedProtocol` connections "
        "through one `asyncio.Queue`. *wireclient / floor* is the client's "
        "cost over that floor under the same concurrency; *floor many / alone* says how much "
        "of the growth from one caller to many the interpreter has anyway.",
        "",
        "Targets: threads and greenlets (issue 12), wireclient at most 1.1x its own single "
        "caller and at most 0.35x pymongo; 1,000 Tasks (issue 21), wireclient "
        "(`AsyncMongoClient`) at most 1.25x the floor under the same 1,000 Tasks; every "
        "run, as many sockets as pymongo or fewer. A `-` verdict: not a target of that run.",
        "",
    ]
    cpu = [
        ("floor alone µs", "floor_single_cpu_us"),
        ("floor µs", "floor_cpu_us"),
        ("wireclient alone µs", "wireclient_single_cpu_us"),
        ("wireclient µs", "wireclient_cpu_us"),
        ("pymongo µs", "pymongo_cpu_us"),
        ("floor many / alone", "floor_to_single"),
        ("wireclient many / alone", "wireclient_to_single"),
        ("wireclient / floor", "wireclient_to_floor"),
        ("pymongo / floor", "pymongo_to_floor"),
        ("wireclient / pymongo", "wireclient_to_pymongo"),
    ]
    if "floor_cpu_us" not in c["rows"][0]:
        out += ["(this concurrency.json is from before the floor: run the script again)", ""]
    out += ["Client CPU per operation, all callers at once (*alone*: one caller):", ""]
    out += md_table(
        ["run", "workload"] + [h for h, _ in cpu],
        [[r["run"], r["workload"]] + [r.get(k, NAN) for _, k in cpu] for r in c["rows"]],
    )
    out += [
        "Throughput, and sockets: opened over the run as the server counts them "
        "(`serverStatus` `totalCreated`; pymongo's include its monitor's), and pool sockets "
        "as each counts them (wireclient `pool.open_count`, pymongo CMAP "
        "`ConnectionCreatedEvent`s, the floor its pool's size). The sockets verdict compares "
        "every socket each client opened (the server's count); wireclient's include the "
        "main thread's request socket when it has one (`auto_start_request`), pymongo's its "
        "monitor's two.",
        "",
    ]
    rows = [
        [
            r["run"],
            r["workload"],
            r.get("floor_ops_per_s", NAN),
            r["wireclient_ops_per_s"],
            r["pymongo_ops_per_s"],
            sockets(r, ""),
            sockets(r, "_pool"),
            r["pass_self"],
            r["pass_pymongo"],
            r.get("pass_floor"),
            r["pass_sockets"],
        ]
        for r in c["rows"]
    ]
    out += md_table(
        [
            "run",
            "workload",
            "floor ops/s",
            "wireclient ops/s",
            "pymongo ops/s",
            "sockets (server) wc / pm / floor",
            "pool sockets wc / pm / floor",
            "target ≤ 1.1x alone",
            "target ≤ 0.35x pymongo",
            "target ≤ 1.25x floor",
            "same or fewer sockets",
        ],
        rows,
    )
    if charts:
        out += [f"![client CPU per operation under concurrency]({CONCURRENCY_CHART})", ""]
        from report_charts import concurrency_chart

        concurrency_chart(c, os.path.join(docs, CONCURRENCY_CHART))
    return out


def sockets(r: Dict[str, Any], pool: str) -> str:
    names = ["wireclient", "pymongo", "floor"]
    return " / ".join(str(r.get(f"{name}{pool}_sockets", "-")) for name in names)


def driver_section(d: Optional[Dict[str, Any]]) -> List[str]:
    out = ["## DriverBench subset (MB/s)", ""]
    if not d:
        return out + ["(no driverbench.json)", ""]
    out += [
        "`benchmarks/bench_driver.py`: the tasks of the MongoDB driver benchmarking "
        "specification, with stand-in TWEET (1,622 bytes of JSON, nested `user` and "
        "`entities`) and SMALL_DOC (275 bytes) documents generated to the spec's shape and "
        "size. Score: task size in MB over the median wall time of the iterations. **Scaled "
        f"down** to fit the time budget: {d['iterations']} iterations per task and client "
        "(the spec: at least a minute, up to 100), and the single-document tasks do "
        f"{d['single_doc_ops_per_iteration']:,} operations an iteration instead of 10,000 "
        "(their size scaled alike); the multi-document tasks are the spec's "
        f"({d['multi_doc_docs']:,} documents). Wall time here is mostly the server's.",
        "",
    ]
    rows = [
        [
            name,
            f"{t['size_mb']:.3f}",
            t["mb_per_s"]["wireclient"],
            t["mb_per_s"]["pymongo"],
            t["wireclient_to_pymongo"],
            t["median_client_cpu_s"]["wireclient"] * 1e3,
            t["median_client_cpu_s"]["pymongo"] * 1e3,
        ]
        for name, t in d["tasks"].items()
    ]
    return out + md_table(
        [
            "task",
            "size MB",
            "wireclient MB/s",
            "pymongo MB/s",
            "wireclient / pymongo",
            "wireclient CPU ms",
            "pymongo CPU ms",
        ],
        rows,
    )


def footprint_section(f: Optional[Dict[str, Any]]) -> List[str]:
    out = ["## Footprint", ""]
    if not f:
        return out + ["(no footprint.json)", ""]
    out += [
        f"`benchmarks/bench_footprint.py`: fresh interpreters, bytecode compiled for all; "
        f"medians of {f['rounds']} (imports). `import wireclient` loads the client on first "
        "use, so `from wireclient import Connection` is the figure held to the target.",
        "",
    ]
    out += md_table(["import", "ms"], [[k, v] for k, v in f["import_ms"].items()])
    out += md_table(
        ["resident memory (VmRSS) after", "MB"], [[k, v] for k, v in f["rss_mb"].items()]
    )
    out += md_table(
        ["threads started by connect + ping", "threads"],
        [[k, v] for k, v in f["threads_started"].items()],
    )
    out += md_table(
        ["target", "measured", "target", "verdict"],
        [
            [
                "client import above `import bson`",
                f"{f['import_ms_above_bson']:.1f} ms",
                "≤ 5 ms",
                f["pass_import"],
            ],
            [
                "memory above bson alone",
                f"{f['rss_mb_above_bson']:.2f} MB",
                "≤ 1 MB",
                f["pass_rss"],
            ],
            [
                "threads started by a single-server `Connection`",
                f["threads_started"].get("wireclient Connection (single server)"),
                "0",
                f["pass_threads"],
            ],
        ],
    )
    profile = f.get("import_profile_above_bson") or []
    if profile:
        out += [
            "Where the client's import time goes (`-X importtime`, on top of bson, top "
            "modules by self time):",
            "",
        ]
        out += md_table(
            ["module", "self µs", "cumulative µs"],
            [[p["module"], p["self_us"], p["cumulative_us"]] for p in profile],
        )
    return out


def profile_section(p: Optional[Dict[str, Any]], w: Optional[Dict[str, Any]]) -> List[str]:
    out = ["## Profiles of the workloads that miss 1.25x the floor", ""]
    if not p:
        return out + ["(no profile.json)", ""]
    missed = [n for n, r in (w or {}).get("workloads", {}).items() if not r["pass_floor"]]
    out += [
        "`benchmarks/bench_profile.py`: wireclient alone, each workload under cProfile with a "
        "CPU clock (the wait for the server is not counted; cProfile inflates Python calls "
        "more than C ones, so read the shares). Own %: time in the function itself; "
        "cumulative %: with what it calls.",
        "",
    ]
    if not missed:
        return out + ["Every workload meets its target.", ""]
    for name in missed:
        r = p["workloads"].get(name)
        if not r:
            continue
        out += [f"**{name}** ({r['profiled_us_per_op']:.1f} µs/op under the profiler):", ""]
        rows = [
            [
                f"`{t['function']}`",
                t["calls_per_op"],
                t["own_share"] * 100,
                t["cumulative_share"] * 100,
            ]
            for t in r["top"]
        ]
        out += md_table(["function", "calls / op", "own %", "cumulative %"], rows)
    return out


def others_section(results: str) -> List[str]:
    out = ["## Other benchmarks in the run", ""]
    events = load(results, "events.json")
    if events:
        out += ["`bench_events.py` (client CPU per ping + find_one, µs):", ""]
        base = events["medians_us"].get("no listener")
        out += md_table(
            ["listeners", "µs", "x no listener"],
            [[k, v, v / base if base else float("nan")] for k, v in events["medians_us"].items()],
        )
    greenlets = load(results, "greenlets.json")
    if greenlets and "overlap" in greenlets:
        out += [
            "`bench_greenlets.py`, overlap (N greenlets, one slow find each; 1.0 is perfect "
            "overlap):",
            "",
        ]
        out += md_table(
            ["contender", "ratio", "ratio cold"],
            [[k, v["ratio"], v["ratio_cold"]] for k, v in greenlets["overlap"].items()],
        )
    out += [
        "Full figures of `bench_codec.py`, `bench_affinity.py`, `bench_hostile.py` and "
        "`bench_pool_faults.py` are in their JSON files under `benchmarks/results/` and in the "
        "run's output.",
        "",
    ]
    return out


def targets_section(
    w: Optional[Dict[str, Any]],
    c: Optional[Dict[str, Any]],
    f: Optional[Dict[str, Any]],
    a: Optional[Dict[str, Any]] = None,
) -> List[str]:
    out = ["## Targets (issues 12 and 21) in this run", ""]
    rows: List[List[Any]] = []
    if w:
        for name, r in w["workloads"].items():
            rows.append(
                [f"{name}: client CPU / floor", r["wireclient_to_floor"], "≤ 1.25", r["pass_floor"]]
            )
    if a:
        for name, r in a["workloads"].items():
            rows.append(
                [
                    f"{name}: AsyncConnection CPU / pymongo async",
                    r["async_to_pymongo"],
                    f"≤ {a['target_pymongo']}",
                    r["pass_pymongo"],
                ]
            )
            rows.append(
                [
                    f"{name}: AsyncConnection CPU / blocking wireclient",
                    r["async_to_blocking"],
                    f"≤ {a['target_blocking']}",
                    r["pass_blocking"],
                ]
            )
    if c:
        for r in c["rows"]:
            for label, ratio, target, passed in [
                ("CPU / own single caller", "wireclient_to_single", "target_self", "pass_self"),
                ("CPU / pymongo", "wireclient_to_pymongo", "target_pymongo", "pass_pymongo"),
                ("CPU / floor", "wireclient_to_floor", "target_floor", "pass_floor"),
            ]:
                if r.get(passed) is None:  # not a target of this run
                    continue
                limit = r.get(target) or {"pass_self": 1.1, "pass_pymongo": 0.35}[passed]
                rows.append(
                    [f"{r['run']}, {r['workload']}: {label}", r[ratio], f"≤ {limit}", r[passed]]
                )
            rows.append(
                [
                    f"{r['run']}, {r['workload']}: sockets wc / pm",
                    f"{r['wireclient_sockets']} / {r['pymongo_sockets']}",
                    "≤",
                    r["pass_sockets"],
                ]
            )
    if f:
        rows.append(
            ["client import above bson (ms)", f["import_ms_above_bson"], "≤ 5", f["pass_import"]]
        )
        rows.append(["memory above bson (MB)", f["rss_mb_above_bson"], "≤ 1", f["pass_rss"]])
        rows.append(
            [
                "threads started by a Connection",
                f["threads_started"].get("wireclient Connection (single server)"),
                "0",
                f["pass_threads"],
            ]
        )
    passed = sum(1 for r in rows if r[3] is True)
    out += [f"{passed} of {len(rows)} targets met.", ""]
    return out + md_table(["target", "measured", "target", "verdict"], rows)


NO_CHARTS = "(charts not rendered: matplotlib is not installed; `make bench` installs it)"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def render(results: str, docs: str, charts: Optional[bool] = None) -> str:
    """The text of docs/benchmarks.md; the charts are written into ``docs`` (``charts``:
    None draws them when matplotlib is installed)."""
    if charts is None:
        charts = have_matplotlib()
    if not charts:
        print("matplotlib not installed (the bench extra): no charts", file=sys.stderr)
    run = load(results, "run.json")
    w = load(results, "workloads.json")
    c = load(results, "concurrency.json")
    f = load(results, "footprint.json")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/report.py` from the JSON of a `make bench` run "
        "(`benchmarks/results/`); do not edit by hand: run `make bench` (it starts its own "
        "SecantusDB, or uses `WIRECLIENT_URI`; under 10 minutes on 2 cores) or, to re-render "
        "only, `python benchmarks/report.py`. `make bench BENCH_ARGS=--quick` is a shorter "
        "run; `BENCH_ARGS='--only bench_workloads,bench_footprint'` runs some scripts only "
        "(the report then mixes their new JSON with the older files of the others).",
        "",
    ]
    lines += machine_section(run)
    if not charts:
        lines += [NO_CHARTS, ""]
    a = load(results, "asyncio.json")
    lines += targets_section(w, c, f, a)
    lines += workloads_section(w, docs, charts)
    lines += asyncio_section(a)
    lines += concurrency_section(c, docs, charts)
    lines += driver_section(load(results, "driverbench.json"))
    lines += footprint_section(f)
    lines += profile_section(load(results, "profile.json"), w)
    lines += others_section(results)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=os.path.join(HERE, "results"))
    parser.add_argument("--docs", default=os.path.join(ROOT, "docs"))
    args = parser.parse_args()
    text = render(args.results, args.docs)
    path = os.path.join(args.docs, "benchmarks.md")
    with open(path, "w") as out:
        out.write(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
