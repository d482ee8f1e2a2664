"""`make demo`: the pymongo "Requests" page, on wireclient, against a real server.

Starts an embedded SecantusDB on a free port (or uses $WIRECLIENT_URI), then:
  1. runs the web-analytics counter example from the Requests page,
  2. has several threads do fire-and-forget updates inside requests and read them back,
  3. shows how many sockets the threads used with auto_start_request on and off.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Dict

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support")
sys.path.insert(0, SUPPORT)  # servers.py: how the tests start SecantusDB

from wireclient import Connection  # noqa: E402

THREADS = 8
UPDATES = 500


def section(title: str) -> None:
    print()
    print(title)
    print("-" * len(title))


def seeds_example(connection: Connection) -> None:
    section("1. The Requests page's web-analytics counters")
    counts = connection.demo.counts
    counts.drop()
    region, browser, os_name = "US", "Firefox", "Mac OS X"
    request = connection.start_request()
    try:
        counts.update(
            {"region": region, "browser": browser, "os": os_name},
            {"$inc": {"n": 1}},
            upsert=True,
            safe=False,  # fire-and-forget write
        )
        # always runs after update has completed
        count = sum([p["n"] for p in counts.find({"region": region})])
    finally:
        request.end()
    print(f"after one fire-and-forget update inside a request: count = {count}")
    print(f"connection.in_request() = {connection.in_request()}")
    with connection.start_request():
        counts.update(
            {"region": region, "browser": browser, "os": os_name},
            {"$inc": {"n": 1}},
            upsert=True,
            safe=False,
        )
        print(
            f"inside `with connection.start_request()`: count = "
            f"{sum([p['n'] for p in counts.find({'region': region})])}"
        )
    print(f"request automatically ended: in_request() = {connection.in_request()}")


def read_your_writes(connection: Connection) -> None:
    section(f"2. Read-your-writes: {THREADS} threads x {UPDATES} fire-and-forget $inc each")
    counts = connection.demo.thread_counts
    counts.drop()
    results: Dict[int, int] = {}

    def visitor(n: int) -> None:
        with connection.start_request():
            for _ in range(UPDATES):
                counts.update({"visitor": n}, {"$inc": {"n": 1}}, upsert=True, safe=False)
            doc = counts.find_one({"visitor": n})
            results[n] = doc["n"] if doc else 0

    start = time.perf_counter()
    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ok = all(v == UPDATES for v in results.values())
    for n in sorted(results):
        print(f"  thread {n}: read back n = {results[n]}")
    print(f"every thread saw all its writes: {ok}  ({THREADS * UPDATES} updates in {elapsed:.2f}s)")
    if not ok:
        raise SystemExit("read-your-writes did not hold")


def main() -> int:
    uri = os.environ.get("WIRECLIENT_URI")
    server = None
    if not uri:
        from servers import SecantusServer

        server = SecantusServer().start()
        uri = server.uri
        print(f"started an embedded SecantusDB at {server.address}")
    try:
        connection = Connection(uri, auto_start_request=False)
        seeds_example(connection)
        read_your_writes(connection)
        connection.close()
        section(f"3. Socket affinity of {THREADS} threads, with and without requests")
        from wireclient.toolkit import affinity  # the affinity lab (`wireclient affinity --help`)

        code = affinity.main(
            [uri, "--threads", str(THREADS), "--greenlets", "none", "--socket-greenlets",
             "none", "--modes", "on,off,explicit", "--units", "20", "--quiet"],
            prog="wireclient affinity",
        )  # fmt: skip
        print("  (on: auto_start_request; explicit: start_request() around each unit of work;")
        print("   affinity: the share of a thread's operations on the socket it used before)")
        if code != 0:
            raise SystemExit("the affinity run failed")
    finally:
        if server is not None:
            server.stop()
            print("\nstopped the embedded server")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
