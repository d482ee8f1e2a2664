"""Where wireclient's client CPU goes: cProfile of each of the six workloads.

Runs the workloads of bench_workloads.py for wireclient only, under cProfile with a CPU
clock (``process_time``: the wait for the server is not counted; cProfile slows Python code
down, C calls much less, so read the shares, not the µs), and records, per workload, the
functions with the most own time. The report shows them beside any missed target.

    python benchmarks/bench_profile.py [--uri URI] [--top 10] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from typing import Any, Dict, List

from _common import ROOT, server_uri, settle, table, write_json
from bench_workloads import WORKLOADS, prepare, reset_writes, seed, wireclient_ops


def where(filename: str) -> str:
    if filename.startswith(ROOT):
        return os.path.relpath(filename, ROOT)
    parts = filename.split(os.sep)
    return os.sep.join(parts[-2:]) if len(parts) > 1 else filename


def profile_workload(op: Any, args: List[Any], top: int) -> Dict[str, Any]:
    settle()
    profiler = cProfile.Profile(time.process_time)  # CPU, not the wait for the server
    profiler.enable()
    for a in args:
        op(a)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = float(stats.total_tt) or 1.0  # type: ignore[attr-defined]
    rows = []
    raw: Dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_, calls, own, cumulative, _) in raw.items():
        rows.append(
            {
                "function": f"{where(filename)}:{line}({name})" if line else name,
                "calls_per_op": calls / len(args),
                "own_share": own / total,
                "cumulative_share": cumulative / total,
            }
        )
    rows.sort(key=lambda r: -float(r["own_share"]))
    return {"ops": len(args), "profiled_us_per_op": total / len(args) * 1e6, "top": rows[:top]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    args = parser.parse_args()
    results: Dict[str, Any] = {"workloads": {}}
    with server_uri(args.uri) as uri:
        seed(uri)
        ops, close = wireclient_ops(uri)
        for name, n, quick_n in WORKLOADS:
            count = quick_n if args.quick else n
            for a in prepare(name, 2):  # warm up
                ops[name](a)
            results["workloads"][name] = profile_workload(ops[name], prepare(name, count), args.top)
            ops["ping"](None)
            reset_writes(uri)
            print(f"  {name} profiled", flush=True)
        close()
    for name, r in results["workloads"].items():
        print(f"\n{name}: {r['profiled_us_per_op']:.1f} µs/op under cProfile")
        rows = [
            [
                t["function"][-70:],
                t["calls_per_op"],
                t["own_share"] * 100,
                t["cumulative_share"] * 100,
            ]
            for t in r["top"]
        ]
        print(table(["function", "calls/op", "own %", "cumulative %"], rows))
    print("wrote", write_json("profile.json", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
