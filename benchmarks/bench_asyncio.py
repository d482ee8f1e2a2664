"""The six workloads under asyncio, client CPU per operation: wireclient's ``AsyncConnection``
against pymongo's ``AsyncMongoClient`` and the blocking clients, in one run.

The workloads, operations per round and prepared arguments are ``bench_workloads.py``'s
(ping; find_one by _id; insert one, w=1; insert one, w=0; iterate find() over 10,000
documents; insert 10,000 documents in one call). Contenders, all in this one process:

- ``floor``: the blocking bare-socket floor (``_raw.RawClient``), and ``wireclient``: the
  blocking ``Connection(uri)``, exactly as in ``bench_workloads.py``;
- ``floor async``: the asyncio floor for one caller (``_raw.AsyncRawClient``: one
  ``asyncio.BufferedProtocol`` connection doing what the blocking floor does, one
  ``bson.encode`` per command, one ``transport.write``, the reply read into a reused buffer
  by the loop and decoded with one ``bson.decode``);
- ``wireclient async``: ``AsyncConnection(uri)``, its defaults (``auto_start_request=True``,
  as ``Connection``'s: the timing Task keeps one request socket);
- ``pymongo async``: ``pymongo.AsyncMongoClient(directConnection=True, retryWrites=False)``;
- with uvloop installed, ``floor async`` and ``wireclient async`` again on a uvloop loop.

The async contenders run on one stdlib event loop (``asyncio.new_event_loop()``), the uvloop
rows on one uvloop loop; each timed loop of operations is one coroutine, timed inside it.
Rounds interleave every contender, workload by workload, as ``bench_workloads.py`` does;
client CPU is ``time.process_time()``, medians of the rounds are reported.

Targets (issue 21): ``wireclient async`` at most 0.5x ``pymongo async`` and at most 1.25x
the blocking ``wireclient`` on all six workloads. ``wireclient async / floor async`` and
the uvloop rows have no target.

    python benchmarks/bench_asyncio.py [--uri URI] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

from _common import (
    ROOT,
    host_port,
    median,
    server_uri,
    settle,
    table,
    time_ops,
    verdict,
    write_json,
)
from _raw import AsyncRawClient
from bench_workloads import (
    BULK,
    DB,
    WORKLOADS,
    floor_ops,
    prepare,
    pymongo_workloads,
    reset_writes,
    seed,
    wireclient_ops,
    wireclient_workloads,
)

TARGET_PYMONGO = 0.5  # wireclient async / pymongo async
TARGET_BLOCKING = 1.25  # wireclient async / wireclient blocking

FLOOR, WIRECLIENT = "floor", "wireclient"
FLOOR_ASYNC, WIRECLIENT_ASYNC, PYMONGO_ASYNC = "floor async", "wireclient async", "pymongo async"
FLOOR_UVLOOP, WIRECLIENT_UVLOOP = "floor async, uvloop", "wireclient async, uvloop"

Ops = Dict[str, Callable[[Any], Any]]  # async contenders: functions returning awaitables


@dataclass
class Contender:
    """One client: its operation per workload, the loop it runs on (None: blocking) and
    how to close it."""

    ops: Ops
    loop: Optional[asyncio.AbstractEventLoop]
    close: Callable[[], None]

    def call(self, workload: str, arg: Any) -> Any:
        if self.loop is None:
            return self.ops[workload](arg)
        return self.loop.run_until_complete(self.ops[workload](arg))

    def time(self, workload: str, args: Sequence[Any]) -> Tuple[float, float]:
        """(client CPU µs per op, wall µs per op)."""
        if self.loop is None:
            return time_ops(self.ops[workload], args)
        return self.loop.run_until_complete(time_ops_async(self.ops[workload], args))


async def time_ops_async(op: Callable[[Any], Awaitable[Any]], args: Sequence[Any]) -> Any:
    """``_common.time_ops`` for an op returning an awaitable, timed inside one coroutine."""
    settle()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for a in args:
        await op(a)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return cpu / len(args) * 1e6, wall / len(args) * 1e6


async def async_iterate(cursor: Any) -> int:
    n = 0
    async for _ in cursor:
        n += 1
    return n


def blocking(maker: Callable[[str], Tuple[Ops, Callable[[], None]]], uri: str) -> Contender:
    ops, close = maker(uri)
    return Contender(ops, None, close)


def floor_async(uri: str, loop: asyncio.AbstractEventLoop) -> Contender:
    from bson import ObjectId

    raw = loop.run_until_complete(AsyncRawClient.open(*host_port(uri)))

    def insert_one(doc: Dict[str, Any]) -> Awaitable[Any]:
        doc["_id"] = ObjectId()
        return raw.command({"insert": "ins1", "documents": [doc]}, DB)

    async def insert_one_w0(doc: Dict[str, Any]) -> None:
        doc["_id"] = ObjectId()
        raw.fire_and_forget({"insert": "ins0", "documents": [doc], "writeConcern": {"w": 0}}, DB)

    def insert_many(docs: List[Dict[str, Any]]) -> Awaitable[Any]:
        for doc in docs:
            doc["_id"] = ObjectId()
        return raw.command({"insert": "bulk", "documents": docs}, DB)

    async def find_one(_: Any) -> Any:
        return (await raw.command(find, DB))["cursor"]["firstBatch"][0]

    find = {"find": "one", "filter": {"_id": 1}, "limit": 1, "singleBatch": True}
    ops: Ops = {
        "ping": lambda _: raw.command({"ping": 1}, "admin"),
        "find_one by _id": find_one,
        "insert one, w=1": insert_one,
        "insert one, w=0": insert_one_w0,
        "iterate find() over 10,000 docs": lambda _: raw.find_all(DB, "many"),
        "insert 10,000 docs in one call": insert_many,
    }
    return Contender(ops, loop, raw.close)


def wireclient_async(uri: str, loop: asyncio.AbstractEventLoop) -> Contender:
    from wireclient import AsyncConnection

    async def open_() -> Any:
        conn = AsyncConnection(uri)
        await conn.connect()
        return conn

    conn = loop.run_until_complete(open_())
    ops = wireclient_workloads(conn, async_iterate)
    return Contender(ops, loop, lambda: loop.run_until_complete(conn.close()))


def pymongo_async(uri: str, loop: asyncio.AbstractEventLoop) -> Contender:
    import pymongo
    from pymongo.write_concern import WriteConcern

    host, port = host_port(uri)

    async def open_() -> Any:
        client = pymongo.AsyncMongoClient(host, port, directConnection=True, retryWrites=False)
        await client.aconnect()
        return client

    client = loop.run_until_complete(open_())
    ops = pymongo_workloads(client, WriteConcern, async_iterate)
    return Contender(ops, loop, lambda: loop.run_until_complete(client.close()))


def uvloop_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop()


def open_contenders(uri: str) -> Tuple[Dict[str, Contender], List[asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    loops = [loop]
    contenders = {
        FLOOR: blocking(floor_ops, uri),
        WIRECLIENT: blocking(wireclient_ops, uri),
        FLOOR_ASYNC: floor_async(uri, loop),
        WIRECLIENT_ASYNC: wireclient_async(uri, loop),
        PYMONGO_ASYNC: pymongo_async(uri, loop),
    }
    uv = uvloop_loop()
    if uv is not None:
        loops.append(uv)
        contenders[FLOOR_UVLOOP] = floor_async(uri, uv)
        contenders[WIRECLIENT_UVLOOP] = wireclient_async(uri, uv)
    return contenders, loops


def run(uri: str, rounds: int, quick: bool) -> Dict[str, Any]:
    seed(uri)
    contenders, loops = open_contenders(uri)
    names = list(contenders)
    sizes = {name: (quick_n if quick else n) for name, n, quick_n in WORKLOADS}
    cpu: Dict[str, Dict[str, List[float]]] = {w: {c: [] for c in names} for w in sizes}
    wall: Dict[str, Dict[str, List[float]]] = {w: {c: [] for c in names} for w in sizes}
    for contender in contenders.values():  # warm up every path
        for workload in sizes:
            for arg in prepare(workload, 1 if "10,000" in workload else 50):
                contender.call(workload, arg)
        contender.call("ping", None)
    reset_writes(uri)
    for r in range(rounds):
        for workload, n in sizes.items():
            for name, contender in contenders.items():
                c, w = contender.time(workload, prepare(workload, n))
                cpu[workload][name].append(c)
                wall[workload][name].append(w)
                contender.call("ping", None)  # w=0: wait until the server has read them all
        reset_writes(uri)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    for contender in contenders.values():
        contender.close()
    for loop in loops:
        loop.close()
    return summarize(names, cpu, wall, rounds, sizes)


def summarize(
    names: List[str],
    cpu: Dict[str, Dict[str, List[float]]],
    wall: Dict[str, Dict[str, List[float]]],
    rounds: int,
    sizes: Dict[str, int],
) -> Dict[str, Any]:
    uv = WIRECLIENT_UVLOOP in names
    results: Dict[str, Any] = {
        "rounds": rounds,
        "ops_per_round": sizes,
        "bulk_docs": BULK,
        "contenders": names,
        "uvloop": uv,
        "target_pymongo": TARGET_PYMONGO,
        "target_blocking": TARGET_BLOCKING,
        "workloads": {},
    }
    rows = []
    for workload in sizes:
        med = {name: median(cpu[workload][name]) for name in names}
        wc = med[WIRECLIENT_ASYNC]
        r = {
            "cpu_us": med,
            "wall_us": {name: median(wall[workload][name]) for name in names},
            "rounds_cpu_us": cpu[workload],
            "async_to_pymongo": wc / med[PYMONGO_ASYNC],
            "async_to_blocking": wc / med[WIRECLIENT],
            "async_to_floor": wc / med[FLOOR_ASYNC],
            "pymongo_to_floor": med[PYMONGO_ASYNC] / med[FLOOR_ASYNC],
            "floor_async_to_floor": med[FLOOR_ASYNC] / med[FLOOR],
            "uvloop_to_blocking": med[WIRECLIENT_UVLOOP] / med[WIRECLIENT] if uv else None,
            "uvloop_to_floor": med[WIRECLIENT_UVLOOP] / med[FLOOR_UVLOOP] if uv else None,
        }
        r["pass_pymongo"] = r["async_to_pymongo"] <= TARGET_PYMONGO
        r["pass_blocking"] = r["async_to_blocking"] <= TARGET_BLOCKING
        results["workloads"][workload] = r
        rows.append(
            [workload]
            + [med[name] for name in names]
            + [
                r["async_to_pymongo"],
                r["async_to_blocking"],
                r["async_to_floor"],
                r["floor_async_to_floor"],
                verdict(r["pass_pymongo"]),
                verdict(r["pass_blocking"]),
            ]
        )
    print(f"\nclient CPU µs per operation, medians of {rounds} interleaved rounds")
    headers = ["workload"] + [SHORT.get(n, n) for n in names]
    headers += ["wca/pma", "wca/wc", "wca/fla", "fla/fl", "<=0.5x pma", "<=1.25x wc"]
    print(table(headers, rows))
    print("wca: wireclient AsyncConnection; pma: pymongo AsyncMongoClient; fla: asyncio floor")
    return results


SHORT = {
    FLOOR: "floor",
    WIRECLIENT: "wc",
    FLOOR_ASYNC: "fla",
    WIRECLIENT_ASYNC: "wca",
    PYMONGO_ASYNC: "pma",
    FLOOR_UVLOOP: "fla uv",
    WIRECLIENT_UVLOOP: "wca uv",
}


def provenance(quick: bool) -> Dict[str, Any]:
    """When and on what this run was made: the report says so, as this file may be newer
    than the rest of the results (``run_all.py --only``, or the script run alone)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "wireclient_commit": commit or "unknown",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "quick": quick,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer operations per round")
    args = parser.parse_args()
    with server_uri(args.uri) as uri:
        results = run(uri, args.rounds, args.quick)
    results.update(provenance(args.quick))
    print("wrote", write_json("asyncio.json", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
