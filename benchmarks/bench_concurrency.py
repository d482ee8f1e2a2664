"""Concurrency: many callers doing find_one and inserts, client CPU per operation.

Three runs: 16 OS threads; 1,000 gevent greenlets after ``gevent.monkey.patch_all()``
(in a subprocess of this script, since patching is global; there ``threading.Thread`` makes
greenlets, so the same code drives both); and 1,000 asyncio Tasks on one stdlib event loop.
In each run, for wireclient, pymongo and the bare-socket floor, in interleaved rounds: one
caller doing the operation alone, then every caller at once. Client CPU is
``time.process_time()`` of this process (all its threads) over the operations done. The
clients: for threads and greenlets wireclient's ``Connection(uri)`` (its defaults) and
pymongo's ``MongoClient(retryWrites=False, directConnection=True)``; for Tasks wireclient's
``AsyncMongoClient(uri)`` (``auto_start_request=False``: like pymongo, a Task takes any
pooled socket per operation) and pymongo's ``AsyncMongoClient(retryWrites=False,
directConnection=True)``.

The floor is what the interpreter itself costs under the same concurrency: the same
callers send the very commands wireclient sends, as OP_MSG frames built before the timing,
and decode each reply with one ``bson.decode``. For threads and greenlets (``_raw.RawPool``)
over blocking bare sockets shared through one ``queue.SimpleQueue`` (gevent's after
``patch_all()``); for Tasks (``_raw.AsyncRawPool``) over ``asyncio.BufferedProtocol``
connections shared through one ``asyncio.Queue``. The callers share ``min(callers, 100)``
sockets, 100 being both clients' default ``maxPoolSize``, rather than a socket each: so the
floor has the sockets the clients have (16 for 16 threads, 100 for 1,000 greenlets or
Tasks), and pays as they do for 900 callers waiting for a socket and being woken, and the
server sees as many connections. A socket per caller would measure another setup (1,000
connections, no waiting), and ``wireclient / floor`` would mix the client's own cost with
that of the pool size. With a socket per caller anyway (16 threads), the queue costs two C
calls per operation.

Sockets each client opened are counted by the server (``serverStatus`` connections
``totalCreated``, summed over the client's own time slots, so pymongo's monitor sockets
count too) and by the client (wireclient: ``pool.open_count``; pymongo: a CMAP listener's
``ConnectionCreatedEvent`` count, pool sockets only; the floor: its pool's size).

Targets, per kind (``Kind.target_*``). Threads and greenlets (issue 12): with many callers,
wireclient's CPU per operation at most 1.1x its own single-caller figure and at most 0.35x
pymongo's; there ``wireclient / floor`` and the floor's own ``many / alone`` have no target:
they say how much of the growth under concurrency the interpreter would have anyway. Tasks
(issue 21): wireclient's CPU per operation at most 1.25x the floor's under the same 1,000
Tasks. Every kind: the same number of sockets as pymongo or fewer.

A kind of run is a ``Kind`` in ``KINDS``: how its callers are released (a ``Runner``:
``Threads``, or ``Tasks`` for asyncio Tasks on one event loop), a factory per contender
(wireclient, pymongo, floor) giving a ``Contender`` (its operation per workload, its pool
sockets, its close; for Tasks the operations return awaitables and everything is opened
on ``runner.loop``) and its targets.

    python benchmarks/bench_concurrency.py [--uri URI] [--rounds 5] [--quick]
    python benchmarks/bench_concurrency.py --check-floors [--uri URI]
"""

from __future__ import annotations

import sys

GEVENT_FLAG = "--gevent-worker"
if GEVENT_FLAG in sys.argv:  # before anything imports socket or threading
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import (  # noqa: E402
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
)

import bson  # noqa: E402
from _common import host_port, median, server_uri, settle, table, verdict, write_json  # noqa: E402
from _raw import AsyncRawPool, RawPool, op_msg  # noqa: E402

DB = "bench_concurrency"
WORKLOADS = ["find_one", "insert"]
TARGET_SELF = 1.1
TARGET_PYMONGO = 0.35
TARGET_TASKS_FLOOR = 1.25  # issue 21: 1,000 Tasks, wireclient / the floor
POOL_SIZE = 100  # the default maxPoolSize of wireclient and of pymongo
T = TypeVar("T")


Op = Callable[[], Any]  # one operation; for Tasks, a function returning an awaitable


class Runner(Protocol):
    """How a kind of run releases its callers: ``runner(op, callers, ops)`` gives (client CPU
    seconds, wall seconds) of ``callers`` callers doing ``op`` ``ops`` times each, all
    released at once; ``close()`` when the kind's run is over."""

    def __call__(self, op: Op, callers: int, ops: int) -> Tuple[float, float]: ...

    def close(self) -> None: ...


class Threads:
    """Callers are ``threading.Thread``s: OS threads, or greenlets after ``patch_all()``."""

    def __call__(self, op: Op, callers: int, ops: int) -> Tuple[float, float]:
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
        raise_first(errors, callers)
        return cpu, wall

    def close(self) -> None:
        pass


class Tasks:
    """Callers are asyncio Tasks, ``op`` a function returning an awaitable. Everything of
    the run happens on the one loop this runner owns (``run``): connections belong to the
    loop they were opened on, so the contenders open theirs with ``runner.run(...)``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def __call__(self, op: Op, callers: int, ops: int) -> Tuple[float, float]:
        return self.run(self._callers(op, callers, ops))

    async def _callers(self, op: Op, callers: int, ops: int) -> Tuple[float, float]:
        go = asyncio.Event()
        errors: List[BaseException] = []

        async def body() -> None:
            await go.wait()
            try:
                for _ in range(ops):
                    await op()
            except Exception as exc:  # reported below, as the threads' are
                errors.append(exc)

        tasks = [asyncio.ensure_future(body()) for _ in range(callers)]
        await asyncio.sleep(0.05)  # every Task is waiting on the event
        settle()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        raise_first(errors, callers)
        return cpu, wall

    def close(self) -> None:
        self.loop.close()


def raise_first(errors: List[BaseException], callers: int) -> None:
    if errors:
        raise RuntimeError(f"{len(errors)} of {callers} callers failed, first: {errors[0]!r}")


@dataclass
class Contender:
    """One client under measurement: its operation for a workload, the pool sockets it has
    opened so far, and how to close it."""

    operation: Callable[[str], Op]
    pool_sockets: Callable[[], int]
    close: Callable[[], None]


# (uri, callers, the kind's runner) -> a Contender, opened and ready
Factory = Callable[[str, int, Any], Contender]


def wireclient_contender(uri: str, callers: int, runner: Any) -> Contender:
    from wireclient import Connection

    conn = Connection(uri)
    coll = conn[DB].docs
    ops: Dict[str, Op] = {
        "find_one": lambda: coll.find_one({"_id": 1}),
        "insert": lambda: coll.insert({"x": 1, "name": "concurrent"}),
    }
    return Contender(ops.__getitem__, lambda: conn.pool.open_count, conn.close)


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


def pymongo_contender(uri: str, callers: int, runner: Any) -> Contender:
    import pymongo

    listener, counts = cmap_counter()
    host, port = host_port(uri)
    client: Any = pymongo.MongoClient(
        host, port, directConnection=True, retryWrites=False, event_listeners=[listener]
    )
    coll = client[DB].docs
    ops: Dict[str, Op] = {
        "find_one": lambda: coll.find_one({"_id": 1}),
        "insert": lambda: coll.insert_one({"x": 1, "name": "concurrent"}),
    }
    return Contender(ops.__getitem__, lambda: counts["created"], client.close)


class FloorFrames:
    """The floor's requests, encoded before the timing: the very commands wireclient sends
    for ``find_one({"_id": 1})`` and ``insert({...})`` (seen with a command listener), as
    whole OP_MSG frames. An insert needs an ``_id`` of its own: ``insert()`` copies the
    frame and writes a new ObjectId's 12 bytes into it (as every client makes one)."""

    def __init__(self) -> None:
        find = {"find": "docs", "filter": {"_id": 1}, "limit": 1, "singleBatch": True}
        self.find_one = op_msg(bson.encode({**find, "$db": DB}))
        placeholder = bson.ObjectId()
        doc = {"_id": placeholder, "x": 1, "name": "concurrent"}
        insert = {"insert": "docs", "ordered": True, "$db": DB, "documents": [doc]}
        self.template = bytearray(op_msg(bson.encode(insert)))
        self.at = self.template.index(placeholder.binary)

    def insert(self) -> bytearray:
        frame = self.template[:]
        frame[self.at : self.at + 12] = bson.ObjectId().binary
        return frame


def floor_size(callers: int) -> int:
    return min(callers, POOL_SIZE)


def check_floor(workload: str, reply: Dict[str, Any]) -> None:
    """A floor that got error replies would be fast for nothing: its first reply to each
    workload is checked when it opens (and by ``--check-floors``)."""
    ok = reply.get("ok") == 1 and not reply.get("writeErrors")
    if workload == "find_one":
        ok = ok and reply["cursor"]["firstBatch"][:1] == [{"_id": 1, "name": "x", "n": 1}]
    else:
        ok = ok and reply.get("n") == 1
    if not ok:
        raise RuntimeError(f"floor {workload}: unexpected reply {reply!r}")


def floor_contender(uri: str, callers: int, runner: Any) -> Contender:
    """The floor for threads and greenlets: ``RawPool``, sized like the clients' pools."""
    pool = RawPool(*host_port(uri), floor_size(callers))
    frames = FloorFrames()
    ops: Dict[str, Op] = {
        "find_one": lambda: pool.round_trip(frames.find_one),
        "insert": lambda: pool.round_trip(frames.insert()),
    }
    for workload, op in ops.items():
        check_floor(workload, op())
    return Contender(ops.__getitem__, lambda: len(pool.clients), pool.close)


def async_floor_contender(uri: str, callers: int, runner: Tasks) -> Contender:
    """The floor for asyncio Tasks: ``AsyncRawPool`` on the runner's loop, sized like the
    clients' pools; its operations return coroutines."""
    pool = runner.run(AsyncRawPool.open(*host_port(uri), floor_size(callers)))
    frames = FloorFrames()
    ops: Dict[str, Op] = {
        "find_one": lambda: pool.round_trip(frames.find_one),
        "insert": lambda: pool.round_trip(frames.insert()),
    }
    for workload, op in ops.items():
        check_floor(workload, runner.run(op()))
    return Contender(ops.__getitem__, lambda: len(pool.protocols), pool.close)


def async_wireclient_contender(uri: str, callers: int, runner: Tasks) -> Contender:
    """wireclient for asyncio Tasks: ``AsyncMongoClient(uri)`` (``auto_start_request=False``,
    as pymongo has no requests: a Task takes any pooled socket per operation), opened on the
    runner's loop; its operations return coroutines."""
    from wireclient import AsyncMongoClient

    async def open_() -> Any:
        conn = AsyncMongoClient(uri)
        await conn.connect()
        return conn

    async def pool_sockets() -> int:  # the pool is looked up for the running Task
        return int(conn.pool.open_count)

    conn = runner.run(open_())
    coll = conn[DB].docs
    ops: Dict[str, Op] = {
        "find_one": lambda: coll.find_one({"_id": 1}),
        "insert": lambda: coll.insert({"x": 1, "name": "concurrent"}),
    }
    return Contender(
        ops.__getitem__, lambda: runner.run(pool_sockets()), lambda: runner.run(conn.close())
    )


def async_pymongo_contender(uri: str, callers: int, runner: Tasks) -> Contender:
    """pymongo's ``AsyncMongoClient(retryWrites=False, directConnection=True)`` on the
    runner's loop, its pool sockets counted by a CMAP listener."""
    import pymongo

    listener, counts = cmap_counter()
    host, port = host_port(uri)

    async def open_() -> Any:
        client = pymongo.AsyncMongoClient(
            host, port, directConnection=True, retryWrites=False, event_listeners=[listener]
        )
        await client.aconnect()
        return client

    client = runner.run(open_())
    coll = client[DB].docs
    ops: Dict[str, Op] = {
        "find_one": lambda: coll.find_one({"_id": 1}),
        "insert": lambda: coll.insert_one({"x": 1, "name": "concurrent"}),
    }
    return Contender(ops.__getitem__, lambda: counts["created"], lambda: runner.run(client.close()))


@dataclass(frozen=True)
class Kind:
    """One concurrency run: ``callers`` callers of one kind, each doing ``ops`` operations
    (``--quick``, full), against one caller doing ``single_ops`` alone."""

    key: str  # its key in concurrency.json and its --kind value
    noun: str  # "threads": the run is called "16 threads"
    note: str  # how the callers are made, for the docs
    callers: int
    ops: Tuple[int, int]
    runner: Callable[[], Runner]  # made in the interpreter that measures
    contenders: Dict[str, Factory]  # "wireclient", "pymongo", "floor" (summarize reads these)
    gevent: bool = False  # measured in a fresh interpreter that runs patch_all() first
    # the kind's targets for wireclient (None: no target): many callers / its own single
    # caller, / pymongo, / the floor
    target_self: Optional[float] = TARGET_SELF
    target_pymongo: Optional[float] = TARGET_PYMONGO
    target_floor: Optional[float] = None

    @property
    def label(self) -> str:
        return f"{self.callers} {self.noun}"


SYNC_CONTENDERS: Dict[str, Factory] = {
    "wireclient": wireclient_contender,
    "pymongo": pymongo_contender,
    "floor": floor_contender,
}
ASYNC_CONTENDERS: Dict[str, Factory] = {
    "wireclient": async_wireclient_contender,
    "pymongo": async_pymongo_contender,
    "floor": async_floor_contender,
}
KINDS = [
    Kind("threads", "threads", "OS threads", 16, (30, 50), Threads, SYNC_CONTENDERS),
    Kind(
        "greenlets",
        "greenlets",
        "`threading.Thread`s in a subprocess after `gevent.monkey.patch_all()`",
        1000,
        (2, 3),
        Threads,
        SYNC_CONTENDERS,
        gevent=True,
    ),
    Kind(
        "tasks",
        "Tasks",
        "asyncio Tasks on one stdlib event loop; wireclient `AsyncMongoClient(uri)`, pymongo "
        "`AsyncMongoClient(retryWrites=False, directConnection=True)`, the floor "
        "`AsyncRawPool`",
        1000,
        (3, 5),
        Tasks,
        ASYNC_CONTENDERS,
        target_self=None,
        target_pymongo=None,
        target_floor=TARGET_TASKS_FLOOR,
    ),
]


def server_created(probe: Any) -> int:
    return int(probe.admin.command("serverStatus")["connections"]["totalCreated"])


def measure(uri: str, kind: Kind, ops: int, single_ops: int, rounds: int) -> Dict[str, Any]:
    from wireclient import Connection

    probe = Connection(uri, auto_start_request=False)
    probe.drop_database(DB)
    probe[DB].docs.insert({"_id": 1, "name": "x", "n": 1})
    runner = kind.runner()
    callers = kind.callers
    sockets_server = {name: 0 for name in kind.contenders}
    contenders: Dict[str, Contender] = {}
    for name, factory in kind.contenders.items():
        before = server_created(probe)
        contenders[name] = factory(uri, callers, runner)
        for workload in WORKLOADS:  # warm up, single caller
            runner(contenders[name].operation(workload), 1, 50)
        time.sleep(0.2)  # pymongo's monitor connects in the background
        sockets_server[name] += server_created(probe) - before
    samples: Dict[str, List[float]] = {}
    for _ in range(rounds):
        for workload in WORKLOADS:
            for name, contender in contenders.items():
                op = contender.operation(workload)
                before = server_created(probe)
                cpu, wall = runner(op, 1, single_ops)
                samples.setdefault(f"{name} {workload} single cpu", []).append(cpu / single_ops)
                cpu, wall = runner(op, callers, ops)
                total = callers * ops
                samples.setdefault(f"{name} {workload} many cpu", []).append(cpu / total)
                samples.setdefault(f"{name} {workload} many rate", []).append(total / wall)
                sockets_server[name] += server_created(probe) - before
        probe[DB].drop_collection("docs_unused")  # keeps the probe's socket warm
    figures: Dict[str, Any] = {}
    for workload in WORKLOADS:
        for name in contenders:
            figures[f"{name} {workload}"] = {
                "single_cpu_us": median(samples[f"{name} {workload} single cpu"]) * 1e6,
                "many_cpu_us": median(samples[f"{name} {workload} many cpu"]) * 1e6,
                "ops_per_s": median(samples[f"{name} {workload} many rate"]),
            }
    pool_sockets = {name: c.pool_sockets() for name, c in contenders.items()}
    for contender in contenders.values():
        contender.close()
    runner.close()
    probe.drop_database(DB)
    probe.close()
    return {
        "kind": kind.key,
        "label": kind.label,
        "noun": kind.noun,
        "note": kind.note,
        "callers": callers,
        "ops_per_caller": ops,
        "single_caller_ops": single_ops,
        "rounds": rounds,
        "figures": figures,
        "sockets_server": sockets_server,
        "sockets_pool": pool_sockets,
        "target_self": kind.target_self,
        "target_pymongo": kind.target_pymongo,
        "target_floor": kind.target_floor,
    }


def passes(ratio: float, target: Optional[float]) -> Optional[bool]:
    """The verdict on a ratio, None when the kind has no such target."""
    return None if target is None else ratio <= target


def summarize(run: Dict[str, Any]) -> List[Dict[str, Any]]:
    target_self = run.get("target_self", TARGET_SELF)
    target_pymongo = run.get("target_pymongo", TARGET_PYMONGO)
    target_floor = run.get("target_floor")
    rows = []
    for workload in WORKLOADS:
        wc = run["figures"][f"wireclient {workload}"]
        pm = run["figures"][f"pymongo {workload}"]
        fl = run["figures"][f"floor {workload}"]
        to_self = wc["many_cpu_us"] / wc["single_cpu_us"]
        to_pymongo = wc["many_cpu_us"] / pm["many_cpu_us"]
        to_floor = wc["many_cpu_us"] / fl["many_cpu_us"]
        sockets_ok = run["sockets_server"]["wireclient"] <= run["sockets_server"]["pymongo"]
        rows.append(
            {
                "run": run["label"],
                "workload": workload,
                "wireclient_single_cpu_us": wc["single_cpu_us"],
                "wireclient_cpu_us": wc["many_cpu_us"],
                "pymongo_single_cpu_us": pm["single_cpu_us"],
                "pymongo_cpu_us": pm["many_cpu_us"],
                "floor_single_cpu_us": fl["single_cpu_us"],
                "floor_cpu_us": fl["many_cpu_us"],
                "wireclient_to_single": to_self,
                "wireclient_to_pymongo": to_pymongo,
                "wireclient_to_floor": to_floor,
                "pymongo_to_floor": pm["many_cpu_us"] / fl["many_cpu_us"],
                "floor_to_single": fl["many_cpu_us"] / fl["single_cpu_us"],
                "wireclient_ops_per_s": wc["ops_per_s"],
                "pymongo_ops_per_s": pm["ops_per_s"],
                "floor_ops_per_s": fl["ops_per_s"],
                "wireclient_sockets": run["sockets_server"]["wireclient"],
                "pymongo_sockets": run["sockets_server"]["pymongo"],
                "floor_sockets": run["sockets_server"]["floor"],
                "wireclient_pool_sockets": run["sockets_pool"]["wireclient"],
                "pymongo_pool_sockets": run["sockets_pool"]["pymongo"],
                "floor_pool_sockets": run["sockets_pool"]["floor"],
                "target_self": target_self,
                "target_pymongo": target_pymongo,
                "target_floor": target_floor,
                "pass_self": passes(to_self, target_self),
                "pass_pymongo": passes(to_pymongo, target_pymongo),
                "pass_floor": passes(to_floor, target_floor),
                "pass_sockets": sockets_ok,
            }
        )
    return rows


def print_rows(rows: List[Dict[str, Any]]) -> None:
    cpu = [
        ("floor 1", "floor_single_cpu_us"),
        ("floor", "floor_cpu_us"),
        ("wc 1", "wireclient_single_cpu_us"),
        ("wc", "wireclient_cpu_us"),
        ("pm", "pymongo_cpu_us"),
        ("floor/own 1", "floor_to_single"),
        ("wc/own 1", "wireclient_to_single"),
        ("wc/floor", "wireclient_to_floor"),
        ("pm/floor", "pymongo_to_floor"),
        ("wc/pm", "wireclient_to_pymongo"),
    ]
    print("\nclient CPU µs per operation (all callers at once vs one caller alone), medians")
    print(table(["run", "workload"] + [h for h, _ in cpu], [row(r, cpu) for r in rows]))
    other = [("floor ops/s", "floor_ops_per_s"), ("wc ops/s", "wireclient_ops_per_s")]
    other += [("pm ops/s", "pymongo_ops_per_s")]
    body = [
        row(r, other)
        + [
            f"{r['wireclient_sockets']}/{r['pymongo_sockets']}/{r['floor_sockets']}",
            maybe_verdict(r["pass_self"]),
            maybe_verdict(r["pass_pymongo"]),
            maybe_verdict(r["pass_floor"]),
            verdict(r["pass_sockets"]),
        ]
        for r in rows
    ]
    headers = ["run", "workload"] + [h for h, _ in other]
    headers += ["sockets wc/pm/floor", "<=1.1x own", "<=0.35x pm", "<=1.25x floor"]
    headers += ["sockets wc<=pm"]
    print()
    print(table(headers, body))


def maybe_verdict(ok: Optional[bool]) -> str:
    return "-" if ok is None else verdict(ok)


def row(r: Dict[str, Any], columns: List[Tuple[str, str]]) -> List[Any]:
    return [r["run"], r["workload"]] + [r[key] for _, key in columns]


def kind_run(kind: Kind, uri: str, ops: int, single_ops: int, rounds: int) -> Dict[str, Any]:
    """``measure`` here, or for a gevent kind in this script again, in a fresh interpreter
    that patches everything first (patching is global)."""
    if not kind.gevent:
        return measure(uri, kind, ops, single_ops, rounds)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    try:
        cmd = [sys.executable, os.path.abspath(__file__), GEVENT_FLAG, "--uri", uri]
        cmd += ["--kind", kind.key, "--ops", str(ops), "--single-ops", str(single_ops)]
        cmd += ["--rounds", str(rounds), "--worker-out", out]
        subprocess.run(cmd, check=True, timeout=600)
        with open(out) as f:
            return dict(json.load(f))
    finally:
        os.unlink(out)


def check_floors(uri: str) -> None:
    """``--check-floors``: both floors, many callers at once, then the documents they
    inserted counted on the server (every reply is also checked by ``check_floor``)."""
    from wireclient import Connection

    probe = Connection(uri, auto_start_request=False)
    probe.drop_database(DB)
    probe[DB].docs.insert({"_id": 1, "name": "x", "n": 1})
    floors: List[Tuple[Runner, Factory]] = [(Threads(), floor_contender)]
    floors.append((Tasks(), async_floor_contender))
    for runner, factory in floors:
        floor = factory(uri, 200, runner)  # 200 callers on 100 sockets: some callers wait
        before = probe[DB].docs.count()
        runner(floor.operation("find_one"), 200, 3)
        runner(floor.operation("insert"), 200, 3)
        inserted = probe[DB].docs.count() - before
        floor.close()
        runner.close()
        name = type(runner).__name__
        if inserted != 600:
            raise RuntimeError(f"{name} floor: {inserted} documents inserted, not 600")
        print(f"{name} floor ({floor.pool_sockets()} sockets): ok, 600 find_one, 600 inserts")
    probe.drop_database(DB)
    probe.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer operations per caller")
    parser.add_argument("--check-floors", action="store_true", help="only check the floors work")
    parser.add_argument(GEVENT_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--ops", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--single-ops", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    kinds = {kind.key: kind for kind in KINDS}
    if args.worker_out:  # a gevent kind's subprocess
        run = measure(args.uri, kinds[args.kind], args.ops, args.single_ops, args.rounds)
        with open(args.worker_out, "w") as f:
            json.dump(run, f)
        return 0
    single_ops = 300 if args.quick else 400  # operations for the one caller alone
    runs: Dict[str, Any] = {}
    with server_uri(args.uri) as uri:
        if args.check_floors:
            check_floors(uri)
            return 0
        for kind in KINDS:
            print(f"{kind.label} ({kind.note}) ...", flush=True)
            ops = kind.ops[0] if args.quick else kind.ops[1]
            runs[kind.key] = kind_run(kind, uri, ops, single_ops, args.rounds)
    rows = [r for run in runs.values() for r in summarize(run)]
    print_rows(rows)
    print("sockets: opened over the run, counted by the server (pymongo's include its monitor)")
    write_json("concurrency.json", {"kinds": list(runs), **runs, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
