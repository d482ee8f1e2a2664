"""Concurrency: many callers doing find_one and inserts, client CPU per operation.

Two runs: 16 OS threads, and 1,000 gevent greenlets after ``gevent.monkey.patch_all()``
(in a subprocess of this script, since patching is global; there ``threading.Thread`` makes
greenlets, so the same code drives both). In each run, for wireclient (``Connection(uri)``,
its defaults) and pymongo (``MongoClient(retryWrites=False, directConnection=True)``), in
interleaved rounds: one caller doing the operation alone, then every caller at once. Client
CPU is ``time.process_time()`` of this process (all its threads) over the operations done.

Sockets each client opened are counted by the server (``serverStatus`` connections
``totalCreated``, summed over the client's own time slots, so pymongo's monitor sockets
count too) and by the client (wireclient: ``pool.open_count``; pymongo: a CMAP listener's
``ConnectionCreatedEvent`` count, pool sockets only).

Targets (issue 12): with many callers, wireclient's CPU per operation at most 1.1x its own
single-caller figure and at most 0.35x pymongo's, with the same number of sockets or fewer.

    python benchmarks/bench_concurrency.py [--uri URI] [--rounds 5] [--quick]
"""

from __future__ import annotations

import sys

if "--greenlets" in sys.argv:  # before anything imports socket or threading
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable, Dict, List, Tuple  # noqa: E402

from _common import host_port, median, server_uri, settle, table, verdict, write_json  # noqa: E402

DB = "bench_concurrency"
WORKLOADS = ["find_one", "insert"]
CLIENTS = ["wireclient", "pymongo"]
TARGET_SELF = 1.1
TARGET_PYMONGO = 0.35


def cmap_counter() -> Tuple[Any, Dict[str, int]]:
    """A pymongo CMAP listener counting the pool sockets created (every other event
    ignored) and the dict it counts in."""
    from pymongo import monitoring

    counts = {"created": 0}
    base = monitoring.ConnectionPoolListener
    methods: Dict[str, Any] = {
        name: (lambda self, event: None) for name in dir(base) if not name.startswith("_")
    }

    def connection_created(self: Any, event: Any) -> None:
        counts["created"] += 1

    methods["connection_created"] = connection_created
    return type("CreatedCounter", (base,), methods)(), counts


def make_client(name: str, uri: str) -> Tuple[Any, Callable[[], int]]:
    """(client, a function giving the pool sockets it has created so far)."""
    if name == "wireclient":
        from wireclient import Connection

        conn = Connection(uri)
        return conn, lambda: conn.pool.open_count
    import pymongo

    listener, counts = cmap_counter()
    host, port = host_port(uri)
    client: Any = pymongo.MongoClient(
        host, port, directConnection=True, retryWrites=False, event_listeners=[listener]
    )
    return client, lambda: counts["created"]


def operation(name: str, client: Any, workload: str) -> Callable[[], Any]:
    coll = client[DB].docs
    if workload == "find_one":
        return lambda: coll.find_one({"_id": 1})
    insert = coll.insert if name == "wireclient" else coll.insert_one
    return lambda: insert({"x": 1, "name": "concurrent"})


def run_callers(op: Callable[[], Any], callers: int, ops: int) -> Tuple[float, float]:
    """(client CPU seconds, wall seconds) of ``callers`` threads (or greenlets) doing ``ops``
    operations each, all released at once."""
    go = threading.Event()
    errors: List[BaseException] = []

    def body() -> None:
        go.wait()
        try:
            for _ in range(ops):
                op()
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)

    workers = [threading.Thread(target=body) for _ in range(callers)]
    for w in workers:
        w.start()
    time.sleep(0.05)  # every caller is waiting on the event
    settle()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    go.set()
    for w in workers:
        w.join()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if errors:
        raise RuntimeError(f"{len(errors)} callers failed, first: {errors[0]!r}")
    return cpu, wall


def server_created(probe: Any) -> int:
    return int(probe.admin.command("serverStatus")["connections"]["totalCreated"])


def measure(uri: str, callers: int, ops: int, single_ops: int, rounds: int) -> Dict[str, Any]:
    from wireclient import Connection

    probe = Connection(uri, auto_start_request=False)
    probe.drop_database(DB)
    probe[DB].docs.insert({"_id": 1, "name": "x", "n": 1})
    sockets_server = {name: 0 for name in CLIENTS}
    clients = {}
    for name in CLIENTS:
        before = server_created(probe)
        clients[name] = make_client(name, uri)
        for workload in WORKLOADS:  # warm up, single caller
            op = operation(name, clients[name][0], workload)
            for _ in range(50):
                op()
        time.sleep(0.2)  # pymongo's monitor connects in the background
        sockets_server[name] += server_created(probe) - before
    samples: Dict[str, Dict[str, List[float]]] = {}
    for _ in range(rounds):
        for workload in WORKLOADS:
            for name in CLIENTS:
                op = operation(name, clients[name][0], workload)
                before = server_created(probe)
                cpu, wall = run_callers(op, 1, single_ops)
                samples.setdefault(f"{name} {workload} single cpu", []).append(cpu / single_ops)
                cpu, wall = run_callers(op, callers, ops)
                total = callers * ops
                samples.setdefault(f"{name} {workload} many cpu", []).append(cpu / total)
                samples.setdefault(f"{name} {workload} many rate", []).append(total / wall)
                sockets_server[name] += server_created(probe) - before
        probe[DB].drop_collection("docs_unused")  # keeps the probe's socket warm
    figures: Dict[str, Any] = {}
    for workload in WORKLOADS:
        for name in CLIENTS:
            figures[f"{name} {workload}"] = {
                "single_cpu_us": median(samples[f"{name} {workload} single cpu"]) * 1e6,
                "many_cpu_us": median(samples[f"{name} {workload} many cpu"]) * 1e6,
                "ops_per_s": median(samples[f"{name} {workload} many rate"]),
            }
    pool_sockets = {name: clients[name][1]() for name in CLIENTS}
    for name in CLIENTS:
        clients[name][0].close()
    probe.drop_database(DB)
    probe.close()
    return {
        "callers": callers,
        "ops_per_caller": ops,
        "single_caller_ops": single_ops,
        "rounds": rounds,
        "figures": figures,
        "sockets_server": sockets_server,
        "sockets_pool": pool_sockets,
    }


def summarize(kind: str, run: Dict[str, Any]) -> List[Dict[str, Any]]:
    rows = []
    for workload in WORKLOADS:
        wc = run["figures"][f"wireclient {workload}"]
        pm = run["figures"][f"pymongo {workload}"]
        to_self = wc["many_cpu_us"] / wc["single_cpu_us"]
        to_pymongo = wc["many_cpu_us"] / pm["many_cpu_us"]
        sockets_ok = run["sockets_server"]["wireclient"] <= run["sockets_server"]["pymongo"]
        rows.append(
            {
                "run": f"{run['callers']} {kind}",
                "workload": workload,
                "wireclient_single_cpu_us": wc["single_cpu_us"],
                "wireclient_cpu_us": wc["many_cpu_us"],
                "pymongo_single_cpu_us": pm["single_cpu_us"],
                "pymongo_cpu_us": pm["many_cpu_us"],
                "wireclient_to_single": to_self,
                "wireclient_to_pymongo": to_pymongo,
                "wireclient_ops_per_s": wc["ops_per_s"],
                "pymongo_ops_per_s": pm["ops_per_s"],
                "wireclient_sockets": run["sockets_server"]["wireclient"],
                "pymongo_sockets": run["sockets_server"]["pymongo"],
                "wireclient_pool_sockets": run["sockets_pool"]["wireclient"],
                "pymongo_pool_sockets": run["sockets_pool"]["pymongo"],
                "pass_self": to_self <= TARGET_SELF,
                "pass_pymongo": to_pymongo <= TARGET_PYMONGO,
                "pass_sockets": sockets_ok,
            }
        )
    return rows


def print_rows(rows: List[Dict[str, Any]]) -> None:
    headers = [
        "run",
        "workload",
        "wc 1 µs",
        "wc µs",
        "pm µs",
        "wc/own 1",
        "wc/pm",
        "wc ops/s",
        "pm ops/s",
        "sockets wc/pm",
        "<=1.1x own",
        "<=0.35x pm",
        "sockets",
    ]
    body = [
        [
            r["run"],
            r["workload"],
            r["wireclient_single_cpu_us"],
            r["wireclient_cpu_us"],
            r["pymongo_cpu_us"],
            r["wireclient_to_single"],
            r["wireclient_to_pymongo"],
            r["wireclient_ops_per_s"],
            r["pymongo_ops_per_s"],
            f"{r['wireclient_sockets']}/{r['pymongo_sockets']}",
            verdict(r["pass_self"]),
            verdict(r["pass_pymongo"]),
            verdict(r["pass_sockets"]),
        ]
        for r in rows
    ]
    print(table(headers, body))


def greenlet_run(uri: str, callers: int, ops: int, single_ops: int, rounds: int) -> Dict[str, Any]:
    """This script again, in a fresh interpreter that patches everything first."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        cmd = [sys.executable, os.path.abspath(__file__), "--greenlets", "--uri", uri]
        cmd += ["--callers", str(callers), "--ops", str(ops), "--single-ops", str(single_ops)]
        cmd += ["--rounds", str(rounds), "--worker-out", out]
        subprocess.run(cmd, check=True, timeout=600)
        with open(out) as f:
            return dict(json.load(f))
    finally:
        os.unlink(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer operations per caller")
    parser.add_argument("--greenlets", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--callers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ops", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--single-ops", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_out:  # the greenlet subprocess
        run = measure(args.uri, args.callers, args.ops, args.single_ops, args.rounds)
        with open(args.worker_out, "w") as f:
            json.dump(run, f)
        return 0
    # operations per thread, per greenlet, and for the one caller alone
    thread_ops, greenlet_ops, single_ops = (30, 2, 300) if args.quick else (50, 3, 400)
    with server_uri(args.uri) as uri:
        print("16 threads ...", flush=True)
        threads = measure(uri, 16, thread_ops, single_ops, args.rounds)
        print("1,000 greenlets after patch_all() (subprocess) ...", flush=True)
        greenlets = greenlet_run(uri, 1000, greenlet_ops, single_ops, args.rounds)
    rows = summarize("threads", threads) + summarize("greenlets", greenlets)
    print("\nclient CPU µs per operation (all callers at once vs one caller alone), medians")
    print_rows(rows)
    print("sockets: opened over the run, counted by the server (pymongo's include its monitor)")
    write_json("concurrency.json", {"threads": threads, "greenlets": greenlets, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
