"""`make bench`: every benchmark, against one server, then the report.

Starts one SecantusDB on a free port (test commands on: the greenlet overlap run needs
``failCommand``) unless ``WIRECLIENT_URI`` names a server, and runs each script in its own
interpreter with a progress line before and after; each prints its tables and writes its JSON
under benchmarks/results/. A script that fails (or runs past its time limit) is reported
and the run goes on; the exit status is 1 if any failed. Then ``report.py`` renders
docs/benchmarks.md and its charts from the JSON of this run (``--no-report`` skips that).
The scripts that need servers of their own (a restarted one, a hostile one) start them.

    python benchmarks/run_all.py [--quick] [--only NAME[,NAME...]] [--no-report]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from typing import Any, Dict, List, Tuple

from _common import HERE, ROOT, server_uri, write_json

# (script, arguments): "{uri}" stands for the shared server; the scripts not given it start
# servers of their own (hostile: a misbehaving one; pool faults: one it restarts)
SCRIPTS: List[Tuple[str, List[str]]] = [
    ("bench_workloads.py", ["--uri", "{uri}"]),
    ("bench_asyncio.py", ["--uri", "{uri}"]),
    ("bench_concurrency.py", ["--uri", "{uri}"]),
    ("bench_driver.py", ["--uri", "{uri}"]),
    ("bench_footprint.py", ["--uri", "{uri}"]),
    ("bench_profile.py", ["--uri", "{uri}"]),
    ("bench_codec.py", ["--quick"]),
    ("bench_events.py", ["--uri", "{uri}", "--rounds", "5", "--ops", "2000"]),
    ("bench_greenlets.py", ["--uri", "{uri}", "--ops", "50", "--rounds", "3"]),
    ("bench_affinity.py", ["--uri", "{uri}"]),
    ("bench_hostile.py", []),
    ("bench_pool_faults.py", ["--trials", "2", "--seconds", "2"]),
]
TIME_LIMIT_S = 240


def version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> Dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                model,
            )
    except OSError:
        pass
    import bson

    import wireclient

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "bson_c_extension": bool(bson.has_c()),
        "pymongo": version("pymongo"),
        "SecantusDB": version("SecantusDB"),
        "gevent": version("gevent"),
        "wireclient": wireclient.__version__,
        "wireclient_commit": commit or "unknown",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run_script(index: int, total: int, name: str, argv: List[str]) -> Dict[str, Any]:
    print(f"\n[{index}/{total}] {name} {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    status: Any
    try:
        status = subprocess.call(
            [sys.executable, os.path.join(HERE, name), *argv], cwd=ROOT, timeout=TIME_LIMIT_S
        )
    except subprocess.TimeoutExpired:
        status = f"timed out after {TIME_LIMIT_S} s"
    seconds = time.perf_counter() - start
    ok = status == 0
    outcome = "ok" if ok else f"FAILED ({status})"
    print(f"[{index}/{total}] {name}: {outcome} in {seconds:.1f} s", flush=True)
    return {"script": name, "ok": ok, "status": str(status), "seconds": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick where supported")
    parser.add_argument("--only", help="comma-separated script names (bench_x or bench_x.py)")
    parser.add_argument("--no-report", action="store_true", help="do not render the docs")
    args = parser.parse_args()
    chosen = SCRIPTS
    if args.only:
        wanted = {n if n.endswith(".py") else n + ".py" for n in args.only.split(",")}
        chosen = [s for s in SCRIPTS if s[0] in wanted]
    start = time.perf_counter()
    info = machine()
    print(f"machine: {info['cpus']} CPUs, {info['cpu_model']}, Python {info['python']}")
    print(f"pymongo {info['pymongo']}, SecantusDB {info['SecantusDB']}", end=", ")
    print(f"wireclient {info['wireclient_commit']}")
    runs = []
    with server_uri(None) as uri:
        print(f"server: {uri}" + (" (WIRECLIENT_URI)" if os.environ.get("WIRECLIENT_URI") else ""))
        for i, (name, template) in enumerate(chosen, 1):
            argv = [a.replace("{uri}", uri) for a in template]
            quick = "--quick"
            if args.quick and name in QUICK_CAPABLE and quick not in argv:
                argv.append(quick)
            runs.append(run_script(i, len(chosen), name, argv))
    total = time.perf_counter() - start
    failed = [r["script"] for r in runs if not r["ok"]]
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary = {
        "machine": info,
        "quick": args.quick,
        "scripts": runs,
        "benchmark_seconds": round(total, 1),
    }
    write_json("run.json", summary)
    print(f"\nbenchmarks: {len(runs) - len(failed)}/{len(runs)} ok in {total:.0f} s")
    if not args.no_report:
        report = subprocess.call([sys.executable, os.path.join(HERE, "report.py")], cwd=ROOT)
        if report != 0:
            failed.append("report.py")
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    print(f"results in {os.path.join(HERE, 'results')}")
    return 0


QUICK_CAPABLE = {
    "bench_workloads.py",
    "bench_asyncio.py",
    "bench_concurrency.py",
    "bench_driver.py",
    "bench_footprint.py",
    "bench_profile.py",
    "bench_codec.py",
}

if __name__ == "__main__":
    sys.exit(main())
