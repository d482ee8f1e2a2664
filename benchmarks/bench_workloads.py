"""Six workloads, client CPU per operation: wireclient, pymongo and the bare-socket floor.

Workloads: ping; find_one by _id; insert one (w=1); insert one (w=0); iterate find() over
10,000 documents; insert 10,000 documents in one call. Contenders: the floor (``_raw``:
pre-framed OP_MSG, one ``bson.encode`` per call (for the bulk insert too: the
whole command, documents included), ``sendall`` / ``recv_into``, one
``bson.decode``), wireclient (``Connection(uri)``, its defaults) and pymongo 4
(``MongoClient(retryWrites=False, directConnection=True)``). Every contender is given the
same prepared arguments (fresh documents made before the clock starts, so building them is
not counted); inserted documents get their ``_id`` from the client, and the floor makes an
``ObjectId`` per document too, as any client must.

Rounds interleave (A B C A B C ...); each round times a loop of operations per contender and
reports client CPU (``time.process_time()``) and wall time per operation; medians of the
rounds are reported. Targets (issue 12): client CPU at most 1.25x the floor on every
workload, and below pymongo's.

    python benchmarks/bench_workloads.py [--uri URI] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, Tuple

from _common import host_port, median, server_uri, table, time_ops, verdict, write_json
from _raw import RawClient

DB = "bench"
BULK = 10_000
FLOOR, WIRECLIENT, PYMONGO = "floor", "wireclient", "pymongo"
CONTENDERS = [FLOOR, WIRECLIENT, PYMONGO]
TARGET_FLOOR = 1.25

# (name, operations per round, operations per round with --quick)
WORKLOADS: List[Tuple[str, int, int]] = [
    ("ping", 1000, 500),
    ("find_one by _id", 1000, 500),
    ("insert one, w=1", 1000, 500),
    ("insert one, w=0", 1000, 500),
    ("iterate find() over 10,000 docs", 4, 2),
    ("insert 10,000 docs in one call", 2, 1),
]


def small_doc(i: int) -> Dict[str, Any]:
    return {"x": i, "name": "benchmark", "tags": ["a", "b"], "score": 1.5}


def prepare(workload: str, n: int) -> List[Any]:
    """The arguments of n operations, made before timing (fresh documents for inserts)."""
    if workload.startswith("insert one"):
        return [small_doc(i) for i in range(n)]
    if workload.startswith("insert 10,000"):
        return [[small_doc(i) for i in range(BULK)] for _ in range(n)]
    return [None] * n


Ops = Dict[str, Callable[[Any], Any]]


def floor_ops(uri: str) -> Tuple[Ops, Callable[[], None]]:
    from bson import ObjectId

    raw = RawClient(*host_port(uri))

    def insert_one(doc: Dict[str, Any]) -> None:
        doc["_id"] = ObjectId()
        raw.command({"insert": "ins1", "documents": [doc]}, DB)

    def insert_one_w0(doc: Dict[str, Any]) -> None:
        doc["_id"] = ObjectId()
        raw.fire_and_forget({"insert": "ins0", "documents": [doc], "writeConcern": {"w": 0}}, DB)

    def insert_many(docs: List[Dict[str, Any]]) -> None:
        for doc in docs:
            doc["_id"] = ObjectId()
        raw.command({"insert": "bulk", "documents": docs}, DB)

    find_one = {"find": "one", "filter": {"_id": 1}, "limit": 1, "singleBatch": True}
    ops: Ops = {
        "ping": lambda _: raw.command({"ping": 1}, "admin"),
        "find_one by _id": lambda _: raw.command(find_one, DB)["cursor"]["firstBatch"][0],
        "insert one, w=1": insert_one,
        "insert one, w=0": insert_one_w0,
        "iterate find() over 10,000 docs": lambda _: raw.find_all(DB, "many"),
        "insert 10,000 docs in one call": insert_many,
    }
    return ops, raw.close


def iterate(cursor: Any) -> int:
    n = 0
    for _ in cursor:
        n += 1
    return n


def wireclient_ops(uri: str) -> Tuple[Ops, Callable[[], None]]:
    from wireclient import Connection

    conn = Connection(uri)
    ops = wireclient_workloads(conn, iterate)
    return ops, conn.close


def pymongo_ops(uri: str) -> Tuple[Ops, Callable[[], None]]:
    import pymongo
    from pymongo.write_concern import WriteConcern

    host, port = host_port(uri)
    client: Any = pymongo.MongoClient(host, port, directConnection=True, retryWrites=False)
    return pymongo_workloads(client, WriteConcern, iterate), client.close


def wireclient_workloads(conn: Any, iterate: Callable[[Any], Any]) -> Ops:
    """The six workloads on a wireclient connection (``Connection`` or ``AsyncConnection``:
    the async one's operations return awaitables, and ``iterate`` drains its cursors)."""
    db = conn[DB]
    one, ins1, ins0, many, bulk = db.one, db.ins1, db.ins0, db.many, db.bulk
    return {
        "ping": lambda _: conn.admin.command("ping"),
        "find_one by _id": lambda _: one.find_one({"_id": 1}),
        "insert one, w=1": lambda doc: ins1.insert(doc),
        "insert one, w=0": lambda doc: ins0.insert(doc, w=0),
        "iterate find() over 10,000 docs": lambda _: iterate(many.find()),
        "insert 10,000 docs in one call": lambda docs: bulk.insert(docs),
    }


def pymongo_workloads(client: Any, write_concern: Any, iterate: Callable[[Any], Any]) -> Ops:
    """The six workloads on a pymongo client (``MongoClient`` or ``AsyncMongoClient``:
    the async one's operations return awaitables, and ``iterate`` drains its cursors)."""
    db = client[DB]
    one, ins1, many, bulk = db.one, db.ins1, db.many, db.bulk
    ins0 = db.get_collection("ins0", write_concern=write_concern(w=0))
    return {
        "ping": lambda _: client.admin.command("ping"),
        "find_one by _id": lambda _: one.find_one({"_id": 1}),
        "insert one, w=1": lambda doc: ins1.insert_one(doc),
        "insert one, w=0": lambda doc: ins0.insert_one(doc),
        "iterate find() over 10,000 docs": lambda _: iterate(many.find()),
        "insert 10,000 docs in one call": lambda docs: bulk.insert_many(docs),
    }


def seed(uri: str) -> None:
    from wireclient import Connection

    with Connection(uri, auto_start_request=False) as conn:
        conn.drop_database(DB)
        db = conn[DB]
        db.one.insert({"_id": 1, "name": "x", "n": 1})
        db.many.insert([{"_id": i, **small_doc(i)} for i in range(BULK)])


def reset_writes(uri: str) -> None:
    """Between rounds, untimed: the insert collections start empty again."""
    from wireclient import Connection

    with Connection(uri, auto_start_request=False) as conn:
        for name in ("ins1", "ins0", "bulk"):
            conn[DB].drop_collection(name)


def run(uri: str, rounds: int, quick: bool) -> Dict[str, Any]:
    seed(uri)
    makers = {FLOOR: floor_ops, WIRECLIENT: wireclient_ops, PYMONGO: pymongo_ops}
    opened = {name: makers[name](uri) for name in CONTENDERS}
    ops = {name: pair[0] for name, pair in opened.items()}
    sizes = {name: (quick_n if quick else n) for name, n, quick_n in WORKLOADS}
    cpu: Dict[str, Dict[str, List[float]]] = {w: {c: [] for c in CONTENDERS} for w in sizes}
    wall: Dict[str, Dict[str, List[float]]] = {w: {c: [] for c in CONTENDERS} for w in sizes}
    for name in CONTENDERS:  # warm up every path (and open the sockets)
        for workload in sizes:
            for arg in prepare(workload, 1 if "10,000" in workload else 50):
                ops[name][workload](arg)
        ops[name]["ping"](None)
    reset_writes(uri)
    for r in range(rounds):
        for workload, n in sizes.items():
            for name in CONTENDERS:
                args = prepare(workload, n)
                c, w = time_ops(ops[name][workload], args)
                cpu[workload][name].append(c)
                wall[workload][name].append(w)
                ops[name]["ping"](None)  # w=0: wait until the server has read them all
        reset_writes(uri)
        print(f"  round {r + 1}/{rounds} done", flush=True)
    for _, close in opened.values():
        close()

    results: Dict[str, Any] = {"rounds": rounds, "ops_per_round": sizes, "workloads": {}}
    rows = []
    for workload in sizes:
        med = {name: median(cpu[workload][name]) for name in CONTENDERS}
        med_wall = {name: median(wall[workload][name]) for name in CONTENDERS}
        to_floor = med[WIRECLIENT] / med[FLOOR]
        to_pymongo = med[WIRECLIENT] / med[PYMONGO]
        results["workloads"][workload] = {
            "cpu_us": med,
            "wall_us": med_wall,
            "rounds_cpu_us": cpu[workload],
            "wireclient_to_floor": to_floor,
            "pymongo_to_floor": med[PYMONGO] / med[FLOOR],
            "wireclient_to_pymongo": to_pymongo,
            "pass_floor": to_floor <= TARGET_FLOOR,
            "pass_pymongo": to_pymongo < 1.0,
        }
        rows.append(
            [
                workload,
                med[FLOOR],
                med[PYMONGO],
                med[WIRECLIENT],
                to_floor,
                to_pymongo,
                verdict(to_floor <= TARGET_FLOOR),
                verdict(to_pymongo < 1.0),
            ]
        )
    print(f"\nclient CPU µs per operation, medians of {rounds} interleaved rounds")
    headers = ["workload", "floor µs", "pymongo µs", "wireclient µs", "wc/floor", "wc/pymongo"]
    print(table(headers + ["<=1.25x floor", "< pymongo"], rows))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer operations per round")
    args = parser.parse_args()
    with server_uri(args.uri) as uri:
        results = run(uri, args.rounds, args.quick)
    print("wrote", write_json("workloads.json", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
