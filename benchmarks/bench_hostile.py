"""Hostile-server figures: time past the timeout under a slow drip, and peak memory for a
header that claims 1 GiB and for a real 48 MB reply frame.

Each client runs in a fresh process (``PYTHONPATH`` set to the tree under test) against a
hostile server of tests/support/hostile_server.py running here. Memory is the growth of the peak
resident set while the one operation runs: the peak is reset (``/proc/self/clear_refs``)
just before it, and ``VmHWM`` read just after. Give ``--before TREE`` to measure an older
tree in the same run; each scenario runs ``--runs`` times and the median is reported.

    python benchmarks/bench_hostile.py [--before /work/wt/before] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

from hostile_server import HostileServer, hello_reply  # noqa: E402

CLIENT = r"""
import json, sys, time
scenario, uri, timeout_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
import wireclient
from wireclient import Connection

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key))

def attempt(fn):
    start = time.monotonic()
    try:
        fn()
        error = None
    except Exception as exc:
        error = type(exc).__name__
    return error, time.monotonic() - start

if scenario == "handshake drip":
    opts = dict(connectTimeoutMS=timeout_ms, auto_start_request=False)
    error, elapsed = attempt(lambda: Connection(uri, **opts))
    growth = None
else:
    conn = Connection(uri, auto_start_request=False, socketTimeoutMS=timeout_ms)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set size
    base = status("VmRSS")
    keep = []
    error, elapsed = attempt(lambda: keep.append(conn.admin.command("ping")))
    growth = status("VmHWM") - base
print(json.dumps({"error": error, "elapsed": elapsed, "rss_growth_kb": growth,
                  "wireclient": wireclient.__file__}))
"""

LARGE = 47_999_900  # a binary value whose reply frame is 47,999,949 bytes, just under 48 MB

# (name, server options, mode and its parameters, timeout in ms for the client)
SCENARIOS: List[Tuple[str, Dict[str, Any], Dict[str, Any], int]] = [
    ("slow drip", {}, {"mode": "drip", "interval": 0.1, "reply": {"ok": 1.0, "p": "x" * 40}}, 1000),
    (
        "handshake drip",
        {"handshake": False},
        {"mode": "drip", "interval": 0.02, "reply": hello_reply()},
        1000,
    ),
    (
        "1 GiB claim, 1 MB, stall",
        {"max_message_size": 2**31 - 1},
        {"mode": "claim", "claim": 2**30, "send": 1_000_000, "then": "stall"},
        2000,
    ),
    (
        "1 GiB claim, 1 MB, close",
        {"max_message_size": 2**31 - 1},
        {"mode": "claim", "claim": 2**30, "send": 1_000_000, "then": "close"},
        2000,
    ),
    ("48 MB reply", {}, {"mode": "large", "size": LARGE}, 60_000),
]


def run_client(tree: str, scenario: str, uri: str, timeout_ms: int) -> Dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, scenario, uri, str(timeout_ms)],
        capture_output=True,
        env=env,
        timeout=120,
        text=True,
        check=False,
        cwd=tree,  # sys.path[0] is the working directory: it must be the tree under test
    )
    if out.returncode != 0:
        raise RuntimeError(f"client failed in {tree}: {out.stderr[-2000:]}")
    result: Dict[str, Any] = json.loads(out.stdout)
    assert result["wireclient"].startswith(os.path.abspath(tree)), result["wireclient"]
    return result


def measure(tree: str, runs: int) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    for name, server_opts, mode, timeout_ms in SCENARIOS:
        samples = []
        for _ in range(runs):
            params = dict(mode)
            with HostileServer(params.pop("mode"), lifetime=120, **server_opts, **params) as srv:
                samples.append(run_client(tree, name, srv.uri, timeout_ms))
        growths = [s["rss_growth_kb"] for s in samples if s["rss_growth_kb"] is not None]
        results[name] = {
            "timeout_s": timeout_ms / 1000,
            "errors": sorted({str(s["error"]) for s in samples}),
            "median_elapsed_s": statistics.median(s["elapsed"] for s in samples),
            "median_past_timeout_s": statistics.median(
                s["elapsed"] - timeout_ms / 1000 for s in samples
            ),
            "median_rss_growth_mb": statistics.median(growths) / 1024 if growths else None,
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="an older tree to measure beside this one")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    trees = {"this tree": os.path.dirname(HERE)}
    if args.before:
        trees = {"before": args.before, **trees}
    figures = {label: measure(tree, args.runs) for label, tree in trees.items()}

    print(f"{'scenario':27} {'tree':10} {'error':16} {'elapsed s':>9} {'past s':>7} {'RSS MB':>7}")
    for name, _, _, _ in SCENARIOS:
        for label in trees:
            r = figures[label][name]
            rss = "" if r["median_rss_growth_mb"] is None else f"{r['median_rss_growth_mb']:.1f}"
            print(
                f"{name:27} {label:10} {','.join(r['errors']):16} {r['median_elapsed_s']:9.2f}"
                f" {r['median_past_timeout_s']:7.2f} {rss:>7}"
            )
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "hostile.json")
    with open(path, "w") as f:
        json.dump({"benchmark": "hostile", "trees": trees, "results": figures}, f, indent=2)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
