"""Pool faults: a server restart under threads in requests, disconnect() beside working
threads, and fairness between threads waiting for a socket.

Measures whichever ``wireclient`` is first on ``sys.path`` (printed first), against a
SecantusDB of its own (test commands on), so the same script gives "before" and "after":

    PYTHONPATH=/path/to/tree python benchmarks/bench_pool_faults.py [--out FILE]

a. Restart: T threads each ``start_request()`` and bind a socket (``whatsmyuri``), wait on
   a barrier; the server is restarted on the same port (stop + start); then every thread
   runs K ``find_one``. Counted: AutoReconnect (network errors; NotPrimaryError apart),
   threads still in their request at the end, pool generation bumps. Three modes:

   - ``together``: every thread's first operation after the restart runs at once, with
     the dead-socket poll off (``check_interval`` very long, so the dead sockets are found
     only by using them, which is what pool generations are for). Operations already past
     the socket check when the first error clears the pool fail too: the target is "one,
     or a small number".
   - ``one by one``: the same, but the first operation after the restart runs one thread
     at a time (pymongo 2.8 test_server_disconnect: one thread meets the dead socket, the
     others run after it). Target: exactly one AutoReconnect.
   - ``default poll``: every thread at once with the default ``check_interval`` (1 s): a
     socket idle that long is polled before use, and one the server closed is replaced
     without an error, generations or not.

b. disconnect() loop: W threads in requests alternate ``insert`` and ``find_one`` for S
   seconds while the main thread calls ``conn.disconnect()`` every D ms (5 and 50 by
   default). Reported: operations, the share that failed (AutoReconnect or other),
   disconnect() calls.

c. Fairness: N threads, ``max_pool_size`` P, back-to-back short requests
   (``with conn.start_request(): find_one()``) for S seconds: operations per thread.
   Counted in a window that opens 0.5 s after the start (in the first round every thread
   may get a socket once before the pool is full). Two shapes: 8 threads / 2 sockets, and
   32 threads / 4 sockets with ``waitQueueTimeoutMS=2000`` (threads that got no operation
   in the window, or at all; PoolTimeouts).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))

from servers import SecantusServer, wait_until_serving  # noqa: E402

import wireclient  # noqa: E402
from wireclient import Connection  # noqa: E402
from wireclient.errors import AutoReconnect, NotPrimaryError, PoolTimeout  # noqa: E402

JOIN_TIMEOUT = 60.0


def _describe_wireclient() -> Dict[str, Any]:
    path = os.path.dirname(os.path.abspath(wireclient.__file__))
    try:
        commit = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"path": path, "commit": commit}


def _join(threads: List[threading.Thread]) -> None:
    for t in threads:
        t.join(JOIN_TIMEOUT)
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        raise RuntimeError(f"threads still running after {JOIN_TIMEOUT}s: {stuck}")


_wait_until_serving = wait_until_serving


# -- a. restart under threads in requests ---------------------------------------------------


def restart_trial(server: SecantusServer, threads: int, ops: int, mode: str) -> Dict[str, Any]:
    conn = Connection(
        server.uri, auto_start_request=False, max_pool_size=threads + 2, socketTimeoutMS=10000
    )
    if mode != "default poll":
        conn.pool.check_interval = 3600.0  # dead sockets are found only by using them
    coll = conn.bench.faults
    bound = threading.Barrier(threads + 1)
    go = threading.Barrier(threads + 1)
    turn = threading.Lock()
    rows: List[Dict[str, Any]] = [
        {"ok": 0, "auto_reconnect": 0, "not_primary": 0, "other": [], "in_request": None}
        for _ in range(threads)
    ]

    def one(row: Dict[str, Any]) -> None:
        try:
            coll.find_one()
            row["ok"] += 1
        except NotPrimaryError:
            row["not_primary"] += 1
        except AutoReconnect:
            row["auto_reconnect"] += 1
        except Exception as exc:  # reported, not raised: the count is the measurement
            row["other"].append(repr(exc))

    def work(i: int) -> None:
        row = rows[i]
        conn.start_request()
        try:
            conn.admin.command("whatsmyuri")  # binds the request's socket
            bound.wait(30)
            go.wait(30)
            for k in range(ops):
                if k == 0 and mode == "one by one":
                    with turn:
                        one(row)
                else:
                    one(row)
            row["in_request"] = conn.in_request()
        finally:
            conn.end_request()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in workers:
        t.start()
    bound.wait(30)
    generation = conn.pool.generation
    start = time.monotonic()
    server.restart()  # stop + start on the same port
    _wait_until_serving(server)
    restart_s = time.monotonic() - start
    go.wait(30)
    _join(workers)
    result = {
        "mode": mode,
        "restart_s": restart_s,
        "auto_reconnect": sum(r["auto_reconnect"] for r in rows),
        "not_primary": sum(r["not_primary"] for r in rows),
        "other_errors": sum(len(r["other"]) for r in rows),
        "other_examples": [e for r in rows for e in r["other"]][:3],
        "ops_ok": sum(r["ok"] for r in rows),
        "ops": threads * ops,
        "threads_failing": sum(1 for r in rows if r["auto_reconnect"] or r["other"]),
        "threads_in_request": sum(1 for r in rows if r["in_request"]),
        "generation_bumps": conn.pool.generation - generation,
    }
    conn.close()
    return result


def restart_part(server: SecantusServer, threads: int, ops: int, trials: int) -> Dict[str, Any]:
    print(f"a. server restart under {threads} threads in requests, then {ops} find_one each")
    print(
        f"{'mode':14} {'trial':>5} {'AutoReconnect':>13} {'threads hit':>11} "
        f"{'other':>5} {'ok ops':>9} {'in request':>10} {'gen +':>5} {'restart s':>9}"
    )
    results: Dict[str, List[Dict[str, Any]]] = {}
    for mode in ("together", "one by one", "default poll"):
        results[mode] = []
        for trial in range(1, trials + 1):
            r = restart_trial(server, threads, ops, mode)
            results[mode].append(r)
            print(
                f"{mode:14} {trial:5} {r['auto_reconnect']:13} {r['threads_failing']:11} "
                f"{r['other_errors'] + r['not_primary']:5} {r['ops_ok']:>4}/{r['ops']:<4} "
                f"{r['threads_in_request']:>6}/{threads:<3} {r['generation_bumps']:5} "
                f"{r['restart_s']:9.2f}"
            )
            for example in r["other_examples"]:
                print(f"    other error: {example}")
    return results


# -- b. disconnect() beside working threads -----------------------------------------------


def disconnect_part(uri: str, threads: int, seconds: float, interval_ms: float) -> Dict[str, Any]:
    conn = Connection(uri, auto_start_request=False, socketTimeoutMS=10000)
    coll = conn.bench.disconnect
    coll.drop()
    stop = threading.Event()
    ready = threading.Barrier(threads + 1)
    rows: List[Dict[str, Any]] = [
        {"ok": 0, "auto_reconnect": 0, "other": 0, "examples": []} for _ in range(threads)
    ]

    def work(i: int) -> None:
        row = rows[i]
        with conn.start_request():
            conn.admin.command("whatsmyuri")
            ready.wait(30)
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    if n % 2:
                        coll.insert({"t": i, "n": n})
                    else:
                        coll.find_one({"t": i})
                    row["ok"] += 1
                except AutoReconnect as exc:
                    row["auto_reconnect"] += 1
                    if len(row["examples"]) < 2:
                        row["examples"].append(repr(exc))
                except Exception as exc:  # counted: the share of failures is the measurement
                    row["other"] += 1
                    if len(row["examples"]) < 2:
                        row["examples"].append(repr(exc))

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in workers:
        t.start()
    ready.wait(30)
    calls = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.disconnect()
        calls += 1
        time.sleep(interval_ms / 1000.0)
    stop.set()
    _join(workers)
    conn.close()
    ok = sum(r["ok"] for r in rows)
    reconnect = sum(r["auto_reconnect"] for r in rows)
    other = sum(r["other"] for r in rows)
    total = ok + reconnect + other
    result = {
        "threads": threads,
        "seconds": seconds,
        "interval_ms": interval_ms,
        "disconnect_calls": calls,
        "operations": total,
        "ok": ok,
        "auto_reconnect": reconnect,
        "other_errors": other,
        "failed_share": (reconnect + other) / total if total else 0.0,
        "examples": [e for r in rows for e in r["examples"]][:4],
    }
    print(
        f"\nb. disconnect() every {interval_ms:g} ms for {seconds:g} s beside {threads} "
        "threads in requests (insert / find_one)"
    )
    print(f"{'operations':>10} {'AutoReconnect':>13} {'other':>6} {'failed %':>8} {'calls':>6}")
    print(f"{total:10} {reconnect:13} {other:6} {100 * result['failed_share']:8.2f} {calls:6}")
    for example in result["examples"]:
        print(f"    e.g. {example}")
    return result


# -- c. fairness ---------------------------------------------------------------------------


def fairness_run(
    uri: str,
    threads: int,
    pool_size: int,
    seconds: float,
    wait_queue_ms: Optional[int],
    warmup: float = 0.5,
) -> Dict[str, Any]:
    """Operations per thread in a window of ``seconds`` that opens ``warmup`` seconds after
    every thread has started (so the first round, when every thread may get one socket
    before the pool is full, does not hide starvation)."""
    options: Dict[str, Any] = {"auto_start_request": False, "max_pool_size": pool_size}
    if wait_queue_ms is not None:
        options["waitQueueTimeoutMS"] = wait_queue_ms
    conn = Connection(uri, **options)
    coll = conn.bench.fairness
    coll.drop()
    coll.insert({"_id": 1})
    start = threading.Barrier(threads + 1)
    ops = [0] * threads  # the whole run
    in_window = [0] * threads
    timeouts = [0] * threads
    other = [0] * threads
    window: List[float] = [0.0, 0.0]

    def work(i: int) -> None:
        start.wait(30)
        opens, closes = window
        while True:
            now = time.monotonic()
            if now >= closes:
                return
            try:
                with conn.start_request():
                    coll.find_one({"_id": 1})
                ops[i] += 1
                if opens <= now and time.monotonic() <= closes:
                    in_window[i] += 1
            except PoolTimeout:
                timeouts[i] += 1
            except Exception:  # counted
                other[i] += 1

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in workers:
        t.start()
    t0 = time.monotonic()
    window[:] = [t0 + warmup, t0 + warmup + seconds]
    start.wait(30)
    _join(workers)
    conn.close()
    mean = statistics.mean(in_window)
    return {
        "threads": threads,
        "max_pool_size": pool_size,
        "wait_queue_timeout_ms": wait_queue_ms,
        "warmup_s": warmup,
        "window_s": seconds,
        "ops_in_window_per_thread": sorted(in_window, reverse=True),
        "ops_per_thread": sorted(ops, reverse=True),
        "window_ops": sum(in_window),
        "min": min(in_window),
        "max": max(in_window),
        "mean": mean,
        "min_over_mean": min(in_window) / mean if mean else 0.0,
        "threads_without_an_op_in_window": sum(1 for n in in_window if n == 0),
        "threads_without_an_op_at_all": sum(1 for n in ops if n == 0),
        "pool_timeouts": sum(timeouts),
        "other_errors": sum(other),
    }


def fairness_part(uri: str, seconds: float) -> Dict[str, Any]:
    print(f"\nc. fairness: back-to-back short requests, {seconds:g} s window after 0.5 s")
    print(
        f"{'threads':>7} {'pool':>4} {'waitQ ms':>8} {'ops':>6} {'min':>5} {'max':>5} "
        f"{'min/mean':>8} {'no op in window':>15} {'no op at all':>12} {'PoolTimeout':>11} "
        f"{'other':>5}"
    )
    results = {}
    for threads, pool_size, wait_queue_ms in ((8, 2, None), (32, 4, 2000)):
        r = fairness_run(uri, threads, pool_size, seconds, wait_queue_ms)
        results[f"{threads} threads, max_pool_size={pool_size}"] = r
        print(
            f"{threads:7} {pool_size:4} {str(wait_queue_ms or '-'):>8} {r['window_ops']:6} "
            f"{r['min']:5} {r['max']:5} {r['min_over_mean']:8.2f} "
            f"{r['threads_without_an_op_in_window']:15} {r['threads_without_an_op_at_all']:12} "
            f"{r['pool_timeouts']:11} {r['other_errors']:5}"
        )
        print(f"    ops per thread in the window: {r['ops_in_window_per_thread']}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=10, help="a: threads in requests")
    parser.add_argument("--ops", type=int, default=20, help="a: operations per thread")
    parser.add_argument("--trials", type=int, default=3, help="a: restarts per mode")
    parser.add_argument("--workers", type=int, default=4, help="b: working threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="b and c: duration")
    parser.add_argument(
        "--interval-ms", default="5,50", help="b: disconnect() every (comma-separated list)"
    )
    parser.add_argument("--parts", default="abc", help="which parts to run (a, b, c)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pool_faults.json"))
    args = parser.parse_args()

    described = _describe_wireclient()
    print(f"wireclient from {described['path']} (commit {described['commit'] or '?'})\n")
    results: Dict[str, Any] = {"wireclient": described}
    server = SecantusServer().start()  # test commands on; part a restarts it
    try:
        if "a" in args.parts:
            results["restart"] = restart_part(server, args.threads, args.ops, args.trials)
            print()
        if "b" in args.parts:
            results["disconnect"] = [
                disconnect_part(server.uri, args.workers, args.seconds, float(interval))
                for interval in args.interval_ms.split(",")
            ]
        if "c" in args.parts:
            results["fairness"] = fairness_part(server.uri, args.seconds)
    finally:
        server.stop()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
