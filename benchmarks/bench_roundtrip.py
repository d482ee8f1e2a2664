"""Per-operation cost: wireclient vs pymongo vs a bare socket, in one run, on one server.

The bare-socket floor makes the same hello handshake, then sends a pre-built OP_MSG frame
(only the requestID is patched in) and reads the reply frame's bytes without decoding them:
no client can do less. "Client cost"
is an operation's time minus that floor. Rounds interleave the contenders so that a noisy
neighbour slows all of them alike; medians of per-round means are reported.

Targets (issue 3): wireclient within 1.25x of the floor, and wireclient's client cost under
half of pymongo's.

    python benchmarks/bench_roundtrip.py [--uri mongodb://...] [--ops 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from _raw import raw_pinger  # noqa: E402


def time_op(op: Callable[[], None], n: int) -> Tuple[float, float]:
    """(wall µs per op, client CPU µs per op). The server is another process, so the
    client's CPU time is the client's own cost, far less noisy than wall time here."""
    cpu0 = time.thread_time()
    start = time.perf_counter()
    for _ in range(n):
        op()
    wall = (time.perf_counter() - start) / n * 1e6
    return wall, (time.thread_time() - cpu0) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    server = None
    uri = args.uri
    if not uri:
        from servers import SecantusServer

        server = SecantusServer(test_commands=False).start()
        uri = server.uri
    try:
        return run(uri, args.ops, args.rounds)
    finally:
        if server is not None:
            server.stop()


def run(uri: str, ops: int, rounds: int) -> int:
    import pymongo

    from wireclient import Connection
    from wireclient.uri import parse_uri

    host, port = parse_uri(uri).hosts[0]
    wc = Connection(uri)  # auto_start_request: the thread's request socket
    wc_noreq = Connection(uri, auto_start_request=False)
    pm = pymongo.MongoClient(host, port, directConnection=True)
    coll_name = "bench_roundtrip"
    wc.bench[coll_name].drop()
    wc.bench[coll_name].insert({"_id": 1, "name": "x", "n": 1})
    pm_coll = pm.bench[coll_name]
    wc_coll = wc.bench[coll_name]

    contenders: Dict[str, Callable[[], Any]] = {
        "raw socket (floor)": raw_pinger(host, port),
        "wireclient ping (in request)": lambda: wc.admin.command("ping"),
        "wireclient ping (no request)": lambda: wc_noreq.admin.command("ping"),
        "pymongo ping": lambda: pm.admin.command("ping"),
        "wireclient find_one": lambda: wc_coll.find_one({"_id": 1}),
        "pymongo find_one": lambda: pm_coll.find_one({"_id": 1}),
    }
    for op in contenders.values():  # warm up
        for _ in range(200):
            op()
    walls: Dict[str, List[float]] = {name: [] for name in contenders}
    cpus: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, op in contenders.items():
            wall, cpu = time_op(op, ops)
            walls[name].append(wall)
            cpus[name].append(cpu)
    med = {name: statistics.median(values) for name, values in walls.items()}
    cpu_med = {name: statistics.median(values) for name, values in cpus.items()}
    floor = med["raw socket (floor)"]
    cpu_floor = cpu_med["raw socket (floor)"]

    print(f"{'operation':32} {'wall µs':>8} {'x floor':>8} {'CPU µs':>8} {'x floor':>8}")
    for name in contenders:
        print(
            f"{name:32} {med[name]:8.1f} {med[name] / floor:8.2f} "
            f"{cpu_med[name]:8.1f} {cpu_med[name] / cpu_floor:8.2f}"
        )
    key = "wireclient ping (in request)"
    ratio_floor = med[key] / floor
    cpu_ratio_floor = cpu_med[key] / cpu_floor
    ratio_pm = (cpu_med[key] - cpu_floor) / (cpu_med["pymongo ping"] - cpu_floor)
    print()
    print(f"wireclient ping / floor, wall             = {ratio_floor:.3f}   (target <= 1.25)")
    print(f"wireclient ping / floor, client CPU       = {cpu_ratio_floor:.3f}")
    print(f"wireclient / pymongo client CPU over floor = {ratio_pm:.3f}   (target < 0.5)")
    results = {
        "uri": uri,
        "ops_per_round": ops,
        "rounds": rounds,
        "median_wall_us_per_op": med,
        "median_client_cpu_us_per_op": cpu_med,
        "wall_ratio_to_floor": ratio_floor,
        "cpu_ratio_to_floor": cpu_ratio_floor,
        "client_cpu_over_floor_ratio_to_pymongo": ratio_pm,
    }
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "roundtrip.json"), "w") as f:
        json.dump(results, f, indent=2)
    wc.close()
    wc_noreq.close()
    pm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
