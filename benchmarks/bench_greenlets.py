"""Greenlets under gevent: throughput, slow-operation overlap, and the identity's own cost.

Runs under ``gevent.monkey.patch_all()`` (applied before anything else is imported), on one
server, with every contender in the same run:

1. Throughput: G greenlets each run K ``find_one`` (or ``ping``) operations. Contenders:
   wireclient with requests per greenlet through patched thread-locals (the default),
   wireclient ``use_greenlets=True``, wireclient outside requests, pymongo, and a raw-socket
   floor (one gevent socket per greenlet sending a pre-built OP_MSG ping).
2. Overlap: N greenlets each run one ``find`` that the server holds for B ms (failCommand
   ``blockConnection``); the wall time over one such operation's is the ratio reported
   (1.0 is perfect overlap, N is fully serial).
3. Identity cost (no server): ``current()`` per call for ThreadIdentity and GreenletIdentity,
   and the cost of watching a greenlet that then dies.

    python benchmarks/bench_greenlets.py [--uri mongodb://...] [--greenlets 50] [--ops 200]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List  # noqa: E402

import gevent  # noqa: E402
import greenlet  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
sys.path.insert(0, HERE)

from _raw import raw_pinger  # noqa: E402

# -- contenders ----------------------------------------------------------------------------


def run_greenlets(make_op: Callable[[], Callable[[], Any]], greenlets: int, ops: int) -> float:
    """Wall seconds for ``greenlets`` greenlets each running ``ops`` operations."""
    per_greenlet = [make_op() for _ in range(greenlets)]

    def body(op: Callable[[], Any]) -> None:
        for _ in range(ops):
            op()

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(body, op) for op in per_greenlet], raise_error=True)
    return time.perf_counter() - start


def throughput(uri: str, greenlets: int, ops: int, rounds: int) -> Dict[str, Any]:
    import pymongo

    from wireclient import Connection
    from wireclient.rules.uri import parse_uri

    host, port = parse_uri(uri).hosts[0]
    wc = Connection(uri, max_pool_size=greenlets)
    wc_green = Connection(uri, max_pool_size=greenlets, use_greenlets=True)
    wc_noreq = Connection(uri, max_pool_size=greenlets, auto_start_request=False)
    pm = pymongo.MongoClient(host, port, directConnection=True, maxPoolSize=greenlets)
    wc.bench.greenlets.drop()
    wc.bench.greenlets.insert({"_id": 1, "name": "x", "n": 1})

    contenders: Dict[str, Callable[[], Callable[[], Any]]] = {
        "raw socket ping (floor)": lambda: raw_pinger(host, port),
        "wireclient ping (request per greenlet)": lambda: lambda: wc.admin.command("ping"),
        "wireclient ping (use_greenlets=True)": lambda: lambda: wc_green.admin.command("ping"),
        "wireclient ping (no request)": lambda: lambda: wc_noreq.admin.command("ping"),
        "pymongo ping": lambda: lambda: pm.admin.command("ping"),
        "wireclient find_one (request per greenlet)": lambda: (
            lambda: wc.bench.greenlets.find_one({"_id": 1})
        ),
        "pymongo find_one": lambda: lambda: pm.bench.greenlets.find_one({"_id": 1}),
    }
    for make_op in contenders.values():  # warm up: open every pool's sockets
        run_greenlets(make_op, greenlets, 20)
    walls: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, make_op in contenders.items():
            walls[name].append(run_greenlets(make_op, greenlets, ops))
    total = greenlets * ops
    med = {name: statistics.median(values) for name, values in walls.items()}
    floor = med["raw socket ping (floor)"]
    print(f"{greenlets} greenlets x {ops} operations, median of {rounds} rounds")
    print("(SecantusDB is a Python server: with this many callers it is the bottleneck, so")
    print(" contenders land near the floor or even under it; compare client CPU elsewhere)")
    print(f"{'contender':44} {'ops/s':>9} {'µs/op':>8} {'x floor':>8}")
    table = {}
    for name in contenders:
        rate = total / med[name]
        table[name] = {"ops_per_s": rate, "us_per_op": med[name] / total * 1e6}
        print(f"{name:44} {rate:9.0f} {med[name] / total * 1e6:8.1f} {med[name] / floor:8.2f}")
    wc.bench.greenlets.drop()
    for c in (wc, wc_green, wc_noreq):
        c.close()
    pm.close()
    return table


def overlap(uri: str, n: int, block_ms: int) -> Dict[str, Any]:
    import pymongo

    from wireclient import Connection
    from wireclient.rules.uri import parse_uri

    host, port = parse_uri(uri).hosts[0]
    admin = Connection(uri, auto_start_request=False)
    admin.bench.slow.drop()
    admin.bench.slow.insert({"x": 1})
    pm = pymongo.MongoClient(host, port, directConnection=True, maxPoolSize=n)
    contenders: Dict[str, Callable[[], Any]] = {
        # n + 1 sockets: the main greenlet's own request (auto_start_request) keeps one.
        "wireclient (request per greenlet)": lambda: Connection(uri, max_pool_size=n + 1),
        "wireclient (use_greenlets=True)": lambda: Connection(
            uri, max_pool_size=n + 1, use_greenlets=True
        ),
        "wireclient (no request)": lambda: Connection(
            uri, max_pool_size=n, auto_start_request=False
        ),
        "pymongo": lambda: pm,
    }
    results: Dict[str, Any] = {}
    print(f"\n{n} greenlets, one find each, held {block_ms} ms by the server")
    print(f"{'contender':36} {'one op s':>9} {'all s':>8} {'ratio':>7} {'cold s':>8} {'ratio':>7}")
    failpoint = {
        "configureFailPoint": "failCommand",
        "mode": {"times": 1 + 2 * n},
        "data": {"failCommands": ["find"], "blockConnection": True, "blockTimeMS": block_ms},
    }
    for name, make in contenders.items():
        client = make()
        find = client.bench.slow.find_one
        admin.admin.command(failpoint)
        try:
            start = time.perf_counter()
            find()
            single = time.perf_counter() - start
            start = time.perf_counter()
            gevent.joinall([gevent.spawn(find) for _ in range(n)], raise_error=True)
            cold = time.perf_counter() - start  # includes opening the sockets
            start = time.perf_counter()
            gevent.joinall([gevent.spawn(find) for _ in range(n)], raise_error=True)
            together = time.perf_counter() - start
        finally:
            admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        results[name] = {
            "single_s": single,
            "all_s": together,
            "ratio": together / single,
            "all_cold_s": cold,
            "ratio_cold": cold / single,
        }
        print(
            f"{name:36} {single:9.3f} {together:8.3f} {together / single:7.2f} "
            f"{cold:8.3f} {cold / single:7.2f}"
        )
        if client is not pm:
            client.close()
    admin.bench.slow.drop()
    admin.close()
    pm.close()
    return results


def identity_cost(calls: int, deaths: int) -> Dict[str, Any]:
    from wireclient.pooling.greenlet_identity import GreenletIdentity
    from wireclient.pooling.identity import ThreadIdentity

    results: Dict[str, Any] = {}
    print("\nidentity strategies (no server)")
    print(f"{'measure':52} {'ns':>8}")
    strategies = (
        ("ThreadIdentity (patched local)", ThreadIdentity),
        ("GreenletIdentity", GreenletIdentity),
    )
    for name, cls in strategies:
        ident = cls()
        current = ident.current
        current()
        start = time.perf_counter()
        for _ in range(calls):
            current()
        per_call = (time.perf_counter() - start) / calls * 1e9
        results[f"{name} current()"] = per_call
        print(f"{name + ' current()':52} {per_call:8.0f}")

    ident = GreenletIdentity()
    fired: List[Any] = []

    def watched() -> None:
        ident.current()
        ident.watch(fired.append)

    start = time.perf_counter()
    for _ in range(deaths):
        greenlet.greenlet(watched).switch()
    per_death = (time.perf_counter() - start) / deaths * 1e9
    assert len(fired) == deaths and ident.tracked_count() == 0
    results["GreenletIdentity raw greenlet: watch + death"] = per_death
    print(f"{'GreenletIdentity raw greenlet: watch + death':52} {per_death:8.0f}")

    fired.clear()
    start = time.perf_counter()
    gevent.joinall([gevent.spawn(watched) for _ in range(deaths)])
    while len(fired) < deaths:
        gevent.sleep(0)
    per_death = (time.perf_counter() - start) / deaths * 1e9
    results["GreenletIdentity gevent Greenlet: spawn + watch + death"] = per_death
    print(f"{'GreenletIdentity gevent Greenlet: spawn + watch + death':52} {per_death:8.0f}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri")
    parser.add_argument("--greenlets", type=int, default=50)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slow-greenlets", type=int, default=100)
    parser.add_argument("--block-ms", type=int, default=200)
    args = parser.parse_args()

    server = None
    uri = args.uri
    if not uri:
        from servers import SecantusServer

        server = SecantusServer().start()  # test commands on: the overlap part needs failCommand
        uri = server.uri
    try:
        results = {
            "uri": uri,
            "greenlets": args.greenlets,
            "ops_per_greenlet": args.ops,
            "throughput": throughput(uri, args.greenlets, args.ops, args.rounds),
            "overlap": overlap(uri, args.slow_greenlets, args.block_ms),
            "identity": identity_cost(200_000, 20_000),
        }
    finally:
        if server is not None:
            server.stop()
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "greenlets.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
