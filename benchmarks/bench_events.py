"""What events cost: client CPU per operation with no listener, with no-op listeners of
every kind, and (``--before TREE``) on a wireclient tree without any event code, in one run.

The claim to check (toolkit issue): with no listener registered the hot path pays nothing
measurable. Rounds interleave the contenders; medians of the rounds are reported. Client
CPU is ``time.process_time()`` of a process that does nothing else (the server is another
process), far less noisy than wall time on a shared machine.

    python benchmarks/bench_events.py [--ops 3000] [--rounds 7] [--before /path/to/tree]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))


def measure(uri: str, ops: int, listeners: str) -> float:
    """µs of client CPU per (ping + find_one) pair, in this process."""
    from wireclient import Connection

    kwargs: Dict[str, Any] = {}
    if listeners == "all":
        from wireclient import monitoring

        class Quiet(
            monitoring.CommandListener,
            monitoring.FrameListener,
            monitoring.PoolListener,
        ):
            def sent(self, event: Any) -> None:
                pass

            def received(self, event: Any) -> None:
                pass

        kwargs["event_listeners"] = [Quiet()]
    with Connection(uri, auto_start_request=False, **kwargs) as c:
        coll = c.bench_events.docs
        coll.update({"_id": 1}, {"$set": {"x": 1}}, upsert=True)
        for _ in range(200):
            c.admin.command("ping")
        start = time.process_time()
        for _ in range(ops):
            c.admin.command("ping")
            coll.find_one({"_id": 1})
        return (time.process_time() - start) / ops * 1e6


def in_subprocess(tree: str, uri: str, ops: int, listeners: str) -> float:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", uri, str(ops), listeners],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tree,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return float(out.stdout.strip())


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        uri, ops, listeners = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        print(measure(uri, ops, listeners))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--before", help="a wireclient tree without event code, to compare")
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    args = parser.parse_args()
    from servers import SecantusServer

    server = None if args.uri else SecantusServer().start()
    uri = args.uri or server.uri
    contenders: Dict[str, List[float]] = {"no listener": [], "no-op listeners": []}
    if args.before:
        contenders["before events existed"] = []
    try:
        for _ in range(args.rounds):
            contenders["no listener"].append(in_subprocess(ROOT, uri, args.ops, "none"))
            contenders["no-op listeners"].append(in_subprocess(ROOT, uri, args.ops, "all"))
            if args.before:
                contenders["before events existed"].append(
                    in_subprocess(args.before, uri, args.ops, "none")
                )
    finally:
        if server is not None:
            server.stop()
    medians = {name: statistics.median(values) for name, values in contenders.items()}
    base = medians["no listener"]
    print("client CPU per ping + find_one (µs), medians of interleaved rounds")
    for name, value in medians.items():
        print(f"  {name:24} {value:8.1f}   x{value / base:.3f}")
    results: Dict[str, Optional[Any]] = {"medians_us": medians, "rounds": contenders}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "events.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
