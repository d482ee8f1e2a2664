"""A short socket-affinity run (wireclient.toolkit.affinity) for `make bench`.

Threads (1, 8), greenlets after patch_all (10, 100) and after patch_socket with
use_greenlets=True (10, 100), in every mode (auto_start_request on, off, off with a request
per unit, and pymongo 4 as the reference), each in a worker process of its own; k=5
unacknowledged updates and one read per unit, 20 units per caller, at most 1500 operations
per configuration. Prints the table and writes benchmarks/results/affinity.json. Measures
whichever wireclient is first on sys.path.

    python benchmarks/bench_affinity.py [--uri mongodb://127.0.0.1:27017/] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", help="a loopback server (default: start a SecantusDB)")
    parser.add_argument("--plot", help="charts as PNG (needs matplotlib)")
    args = parser.parse_args()

    from wireclient.toolkit import affinity

    server = None
    uri = args.uri
    if not uri:
        from servers import SecantusServer

        server = SecantusServer().start()
        uri = server.uri
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    argv = [
        uri,
        *("--threads", "1,8", "--greenlets", "10,100", "--socket-greenlets", "10,100"),
        *("-k", "5", "--units", "20", "--max-ops", "1500", "--timeout", "60"),
        *("--json", os.path.join(out_dir, "affinity.json")),
    ]
    if args.plot:
        argv += ["--plot", args.plot]
    start = time.perf_counter()
    try:
        status = affinity.main(argv)
    finally:
        if server is not None:
            server.stop()
    print(f"\naffinity run: {time.perf_counter() - start:.0f}s, exit status {status}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
