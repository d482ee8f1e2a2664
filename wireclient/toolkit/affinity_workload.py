"""The affinity lab's measuring core: one configuration, in this process.

Theory of operation
-------------------
``measure(uri, config, workload)`` runs one bounded workload and returns its figures as a
JSON-ready dict. The caller (``wireclient.toolkit.affinity``) runs it in a fresh worker process per
configuration, after the monkey-patching that configuration needs; tests call it directly
for thread configurations.

Every caller (a thread, a gevent greenlet, or an asyncio Task) owns one document
``{_id: i, n: 0}`` and runs ``units`` units of work: ``k`` unacknowledged (``safe=False`` /
``w=0``) ``{$inc: {n: 1}}`` updates of its document, then a read of it (and, with
``verify``, a ``whatsmyuri``). The
read must see the count the caller has sent so far; a read that sees less is *stale*. All
callers wait at a gate and start together. With ``think_ms``, a caller spends a random
0..2*think_ms (the same draws in every mode) away from the database before each unit, outside
the unit's request (mode ``explicit``), so callers no longer all use the database at once.

Callers that are asyncio Tasks (kind ``tasks``) run on one event loop in the measuring
thread (``asyncio.run``), with the asyncio flavour of each client
(``affinity_clients.AsyncClient``) and the same unit, its operations awaited
(``CallerState.run_unit_async``); the probe's sampler is a thread beside the loop, so the
loop runs the callers only.

Which socket each operation used is observed per message, in the caller's own thread,
greenlet or Task (``wireclient.toolkit.affinity_clients``: command events, for wireclient and
for pymongo). ``verify`` checks the
observation itself: each ``whatsmyuri`` reply (the server's view of the client's address)
must match the socket observed for that command.

Sockets are counted twice, independently: by the server (``serverStatus.connections``:
``totalCreated`` before and after, and ``current`` sampled every 50 ms by a probe
connection opened before the window) and by the client's pool events (created, closed).

Interrupted (a ``KeyboardInterrupt`` in this process, or a worker's ``StopRequest``), the
measurement stops its callers at their next unit, waits (bounded) for their writes to land,
drops its database, and raises ``KeyboardInterrupt``: a write still queued at the server
would otherwise create the database again after the drop.

pymongo is imported only when a pymongo configuration runs (``affinity_clients``); gevent
only when a gevent configuration does (in a worker that has already patched).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import signal
import threading
import time
from functools import partial
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from wireclient.toolkit.affinity_clients import (
    AsyncClient,
    Client,
    SocketCounter,
    as_caller,
    make_async_client,
    make_client,
    release_caller,
)

KINDS = ("threads", "gevent", "gevent-socket", "tasks")
MODES = ("on", "off", "explicit", "pymongo")
SAMPLE_INTERVAL = 0.05
JOIN_SLICE = 0.1  # seconds between two looks at a stop request while callers run
SETTLE_TIMEOUT = 5.0


class Config(NamedTuple):
    """Who calls (``kind``: threads, gevent after patch_all, gevent-socket after
    patch_socket with use_greenlets=True, tasks: asyncio Tasks on one event loop), how many,
    and the client mode."""

    kind: str
    callers: int
    mode: str


class Workload(NamedTuple):
    """The unit of work and the bounds shared by every configuration of a run."""

    k: int = 5
    units: int = 50
    max_ops: int = 3000
    max_pool_size: int = 100
    timeout: float = 60.0
    op_timeout_ms: int = 20000
    verify: bool = False
    think_ms: int = 0  # mean time away from the database before each unit

    def ops_per_unit(self) -> int:
        return self.k + 1 + (1 if self.verify else 0)

    def units_for(self, callers: int) -> int:
        """Units per caller: ``units``, fewer when ``max_ops`` would be exceeded, at least 1."""
        return max(1, min(self.units, self.max_ops // (callers * self.ops_per_unit())))


# -- one caller ---------------------------------------------------------------------------


class CallerState:
    """What one caller did and saw. ``observed`` gets one socket key per message sent (the
    observer appends to it); ``log`` gets one ``(kind, socket key)`` per operation, kind
    ``w`` (update), ``r`` (read) or ``v`` (whatsmyuri)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.observed: List[Optional[str]] = []
        self.log: List[Tuple[str, Optional[str]]] = []
        self.expected = 0
        self.reads = 0
        self.stale = 0
        self.overcounts = 0
        self.reads_off_write_socket = 0
        self.extra_messages = 0
        self.latencies: List[float] = []
        self.verify_pairs: List[Tuple[Optional[str], str]] = []
        self.errors: List[str] = []
        self.timed_out = False
        # sockets that carried this caller's writes with no reply read on them since: a
        # reply on a socket means every write sent before it on that socket was applied
        self._unconfirmed: Set[Optional[str]] = set()

    # What an operation did, recorded once it returned: the same for a plain call and an
    # awaited one (the ``*_async`` methods below are the asyncio Tasks' driving of it).

    def _logged(self, kind: str, before: int) -> Optional[str]:
        """Log the operation whose messages were observed from index ``before`` on; its
        socket key (its last message's)."""
        sent = len(self.observed) - before
        key = self.observed[-1] if sent else None
        self.extra_messages += max(0, sent - 1)
        self.log.append((kind, key))
        return key

    def _wrote(self, key: Optional[str]) -> None:
        self.expected += 1  # sent: the server has it (or will, in order on that socket)
        self._unconfirmed.add(key)

    def _read(self, n: int, key: Optional[str]) -> None:
        self.reads += 1
        if n < self.expected:
            self.stale += 1
        elif n > self.expected:
            self.overcounts += 1  # more than this caller wrote: someone else wrote its doc
        if self._unconfirmed - {key}:  # a write not yet known applied went on another socket
            self.reads_off_write_socket += 1
        self._unconfirmed.discard(key)

    def _verified(self, you: Any, vkey: Optional[str]) -> None:
        self.verify_pairs.append((vkey, str(you)))
        self._unconfirmed.discard(vkey)

    def _op(self, kind: str, fn: Callable[[int], Any]) -> Tuple[Any, Optional[str]]:
        before = len(self.observed)
        value = fn(self.index)
        return value, self._logged(kind, before)

    def write_phase(self, client: Client, k: int) -> None:
        for _ in range(k):
            _, key = self._op("w", client.update)
            self._wrote(key)

    def read_phase(self, client: Client, verify: bool) -> None:
        n, key = self._op("r", client.read)
        self._read(n, key)
        if verify:
            self._verified(*self._op("v", client.whatsmyuri))

    def run_unit(self, client: Client, k: int, verify: bool, explicit: bool) -> None:
        start = time.perf_counter()
        with client.request() if explicit else contextlib.nullcontext():
            self.write_phase(client, k)
            self.read_phase(client, verify)
        self.latencies.append(time.perf_counter() - start)

    async def _op_async(
        self, kind: str, fn: Callable[[int], Awaitable[Any]]
    ) -> Tuple[Any, Optional[str]]:
        before = len(self.observed)
        value = await fn(self.index)
        return value, self._logged(kind, before)

    async def write_phase_async(self, client: AsyncClient, k: int) -> None:
        for _ in range(k):
            _, key = await self._op_async("w", client.update)
            self._wrote(key)

    async def read_phase_async(self, client: AsyncClient, verify: bool) -> None:
        n, key = await self._op_async("r", client.read)
        self._read(n, key)
        if verify:
            self._verified(*await self._op_async("v", client.whatsmyuri))

    async def run_unit_async(
        self, client: AsyncClient, k: int, verify: bool, explicit: bool
    ) -> None:
        start = time.perf_counter()
        with client.request() if explicit else contextlib.nullcontext():  # per Task
            await self.write_phase_async(client, k)
            await self.read_phase_async(client, verify)
        self.latencies.append(time.perf_counter() - start)


# -- callers: threads or greenlets --------------------------------------------------------


class Spawner:
    """Threads (real ones, or greenlets after patch_all) or gevent greenlets in one thread."""

    def __init__(self, kind: str) -> None:
        self.greenlets = kind == "gevent-socket"

    def event(self) -> Any:
        if self.greenlets:
            import gevent.event

            return gevent.event.Event()
        return threading.Event()

    def spawn(self, fn: Callable[[], None], name: str) -> Any:
        if self.greenlets:
            import gevent

            return gevent.spawn(fn)
        thread = threading.Thread(target=fn, name=name, daemon=True)
        thread.start()
        return thread

    def sleep(self, seconds: float) -> None:
        if self.greenlets:  # time.sleep is not patched by patch_socket: it would block all
            import gevent

            gevent.sleep(seconds)
        else:
            time.sleep(seconds)

    def join(
        self, handles: Sequence[Any], timeout: float, until: Optional[Callable[[], bool]] = None
    ) -> int:
        """Wait up to ``timeout`` seconds, or until ``until()`` is true (looked at every
        ``JOIN_SLICE`` seconds); how many are still running."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            running = self._join(handles, left if until is None else min(left, JOIN_SLICE))
            if not running or not left or (until is not None and until()):
                return running

    def _join(self, handles: Sequence[Any], timeout: float) -> int:
        if self.greenlets:
            import gevent

            gevent.joinall(list(handles), timeout=max(0.0, timeout))
            return sum(1 for g in handles if not g.dead)
        deadline = time.monotonic() + timeout
        for thread in handles:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(1 for t in handles if t.is_alive())


class StopRequest:
    """A request to stop a measurement, made from a signal handler (a worker's SIGTERM):
    only a plain attribute is set there, as a handler may run in any greenlet after gevent's
    ``patch_all`` and must not raise in a caller's. The measurement looks at it while it
    waits for its callers and stops as on a ``KeyboardInterrupt``."""

    def __init__(self) -> None:
        self.requested = False

    def handler(self, signum: int, frame: Any) -> None:
        self.requested = True


# -- one configuration --------------------------------------------------------------------


def database_name(config: Config, tag: str = "") -> str:
    """The database a configuration writes to: ``affinity_<pid>_...`` (``tag``: what tells
    the configurations of one run apart, such as its number)."""
    parts = [str(os.getpid()), tag, config.kind.replace("-", "_"), config.mode]
    return "affinity_" + "_".join(p for p in parts if p)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ctrl-C is ignored inside (a bounded clean-up that a second Ctrl-C must not break);
    nothing changes outside the main thread, where signals cannot be handled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def measure(
    uri: str,
    config: Config,
    workload: Workload,
    extra_listeners: Sequence[Any] = (),
    dbname: Optional[str] = None,
    stop: Optional[StopRequest] = None,
) -> Dict[str, Any]:
    """Run one configuration in this process and return its figures (see the module notes).
    ``extra_listeners`` (wireclient modes) are given to the measured connection too;
    ``dbname``: the database to write to (default ``database_name(config)``).

    A ``KeyboardInterrupt``, or ``stop`` requested while the callers run, stops the callers
    at their next unit, waits (bounded) for the writes they sent to land, drops the
    database and raises ``KeyboardInterrupt``."""
    from wireclient import Connection
    from wireclient.errors import WireClientError

    if config.kind not in KINDS or config.mode not in MODES or config.callers < 1:
        raise ValueError(f"bad configuration {config}")
    dbname = dbname or database_name(config)
    units = workload.units_for(config.callers)
    spawner = Spawner(config.kind)
    states = [CallerState(i) for i in range(config.callers)]
    probe = Connection(
        uri,
        auto_start_request=False,
        socketTimeoutMS=workload.op_timeout_ms,
        connectTimeoutMS=workload.op_timeout_ms,
    )
    try:
        coll = probe[dbname].counters
        try:
            probe.drop_database(dbname)
            coll.insert([{"_id": i, "n": 0} for i in range(config.callers)])
            before = probe.admin.command("serverStatus")["connections"]
            counter = SocketCounter()
            client: Any
            if config.kind == "tasks":
                session = _TasksSession(uri, dbname, config, workload, counter, extra_listeners)
                client, run, after, missing = session.run(units, states, probe, coll, stop)
            else:
                client = make_client(uri, dbname, config, workload, counter, extra_listeners)
                try:
                    run = _run_callers(
                        config, workload, units, states, client, spawner, probe, stop
                    )
                    after = probe.admin.command("serverStatus")["connections"]
                    missing = _settle(coll, states)
                finally:
                    client.close()
        except KeyboardInterrupt:
            with sigint_ignored():
                try:  # a write still on its way would create the database again
                    _settle(coll, states)
                    probe.drop_database(dbname)
                except WireClientError:
                    pass  # the caller checks, and says whether the database is gone
            raise
        probe.drop_database(dbname)
    finally:
        probe.close()
    result = figures(run["states"], verify_exact=config.mode != "pymongo")
    result.update(
        kind=config.kind,
        callers=config.callers,
        mode=config.mode,
        client=client.name,
        observed_by=client.observed_by,
        k=workload.k,
        units_per_caller=units,
        max_pool_size=workload.max_pool_size,
        verify=workload.verify,
        wall_s=run["wall"],
        ops_per_s=result["ops"] / run["wall"] if run["wall"] > 0 else None,
        cpu_us_per_op=run["cpu"] / result["ops"] * 1e6 if result["ops"] else None,
        sockets_created_server=int(after["totalCreated"]) - int(before["totalCreated"]),
        sockets_created_events=counter.created,
        peak_open_events=counter.peak,
        peak_open_server=max(run["samples"], default=0) - int(before["current"]),
        server_samples=len(run["samples"]),
        writes_missing=missing,
        callers_unfinished=run["unfinished"],
    )
    result["ok"] = _ok(result)
    return result


def _run_callers(
    config: Config,
    workload: Workload,
    units: int,
    states: Sequence[CallerState],
    client: Client,
    spawner: Spawner,
    probe: Any,
    stop_request: Optional[StopRequest] = None,
) -> Dict[str, Any]:
    """Run the callers; on a ``KeyboardInterrupt`` (or ``stop_request``) stop them at their
    next unit (waiting for them at most one operation timeout) and raise it."""
    gate, stop, halt = spawner.event(), spawner.event(), spawner.event()
    explicit = config.mode == "explicit"
    deadline = time.monotonic() + workload.timeout

    def caller(state: CallerState) -> None:
        token = as_caller(state)
        try:
            if not gate.wait(workload.timeout):
                state.errors.append("the start gate never opened")
                return
            pauses = random.Random(state.index)  # the same pauses in every mode
            for _ in range(units):
                if workload.think_ms:
                    spawner.sleep(pauses.uniform(0, 2 * workload.think_ms) / 1000)
                if halt.is_set():
                    break
                if time.monotonic() > deadline:
                    state.timed_out = True
                    break
                state.run_unit(client, workload.k, workload.verify, explicit)
        except Exception as exc:  # recorded: the result says which caller failed and how
            state.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            release_caller(token)

    samples: List[int] = []
    handles = [spawner.spawn(partial(caller, s), f"affinity-caller-{s.index}") for s in states]
    sampling = spawner.spawn(partial(_sample, probe, stop, samples), "affinity-sampler")
    cpu, start = time.process_time(), time.perf_counter()
    gate.set()

    def stop_requested() -> bool:
        return stop_request is not None and stop_request.requested

    try:
        unfinished = spawner.join(
            handles,
            workload.timeout + workload.op_timeout_ms / 1000 + 5,
            until=None if stop_request is None else stop_requested,
        )
        if stop_requested():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        with sigint_ignored():
            halt.set()
            stop.set()
            spawner.join(handles, workload.op_timeout_ms / 1000 + 5)
            spawner.join([sampling], workload.op_timeout_ms / 1000 + 5)
        raise
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    stop.set()
    spawner.join([sampling], workload.op_timeout_ms / 1000 + 5)
    return {
        "states": states,
        "wall": wall,
        "cpu": cpu,
        "samples": samples,
        "unfinished": unfinished,
    }


def _sample(probe: Any, stop: Any, samples: List[int]) -> None:
    """The server's ``connections.current`` every ``SAMPLE_INTERVAL`` until ``stop`` is set."""
    while not stop.is_set():
        try:
            samples.append(int(probe.admin.command("serverStatus")["connections"]["current"]))
        except Exception:  # a missed sample only lowers the sampled peak
            pass
        stop.wait(SAMPLE_INTERVAL)


class _Stopped(Exception):
    """A stop request seen on the Tasks' loop: it ends ``asyncio.run`` as an ordinary
    exception (the client closed on the way out) and becomes a ``KeyboardInterrupt`` after."""


class _TasksSession:
    """One configuration's window with asyncio Tasks as callers: ``run`` makes the client
    on a new event loop (``asyncio.run``, in this thread), runs the callers, reads the
    server's counts and waits for the writes (the probe's blocking calls in a thread, off
    the loop), closes the client and returns as the threads' window does."""

    def __init__(
        self,
        uri: str,
        dbname: str,
        config: Config,
        workload: Workload,
        counter: SocketCounter,
        extra_listeners: Sequence[Any],
    ) -> None:
        self.uri, self.dbname, self.config, self.workload = uri, dbname, config, workload
        self.counter, self.extra_listeners = counter, extra_listeners

    def run(
        self,
        units: int,
        states: Sequence[CallerState],
        probe: Any,
        coll: Any,
        stop: Optional[StopRequest],
    ) -> Tuple[AsyncClient, Dict[str, Any], Dict[str, Any], int]:
        try:
            return asyncio.run(self._window(units, states, probe, coll, stop))
        except _Stopped:
            raise KeyboardInterrupt from None

    async def _window(
        self,
        units: int,
        states: Sequence[CallerState],
        probe: Any,
        coll: Any,
        stop: Optional[StopRequest],
    ) -> Tuple[AsyncClient, Dict[str, Any], Dict[str, Any], int]:
        c, w = self.config, self.workload
        client = await make_async_client(
            self.uri, self.dbname, c, w, self.counter, self.extra_listeners
        )
        try:
            run = await _run_tasks(c, w, units, states, client, probe, stop)
            status = await asyncio.to_thread(probe.admin.command, "serverStatus")
            missing = await asyncio.to_thread(_settle, coll, states)
        finally:
            await client.close()
        return client, run, status["connections"], missing


async def _run_tasks(
    config: Config,
    workload: Workload,
    units: int,
    states: Sequence[CallerState],
    client: AsyncClient,
    probe: Any,
    stop_request: Optional[StopRequest] = None,
) -> Dict[str, Any]:
    """``_run_callers`` for asyncio Tasks: one Task per caller on the running loop, the
    sampler in a thread. On a stop request (or the loop's main Task cancelled: Ctrl-C under
    ``asyncio.run``) the callers stop at their next unit; those still running after an
    operation timeout are cancelled; then ``_Stopped`` (or the cancellation) is raised.
    Callers still running at the configuration's time limit are cancelled and counted
    unfinished (a loop cannot be left with Tasks running, as threads can)."""
    gate, halt = asyncio.Event(), asyncio.Event()
    stop = threading.Event()
    explicit = config.mode == "explicit"
    deadline = time.monotonic() + workload.timeout
    op_timeout = workload.op_timeout_ms / 1000

    async def caller(state: CallerState) -> None:
        as_caller(state)  # in this Task's own context only: nothing to reset
        try:
            await gate.wait()
            pauses = random.Random(state.index)  # the same pauses in every mode
            for _ in range(units):
                if workload.think_ms:
                    await asyncio.sleep(pauses.uniform(0, 2 * workload.think_ms) / 1000)
                if halt.is_set():
                    break
                if time.monotonic() > deadline:
                    state.timed_out = True
                    break
                await state.run_unit_async(client, workload.k, workload.verify, explicit)
        except Exception as exc:  # recorded: the result says which caller failed and how
            state.errors.append(f"{type(exc).__name__}: {exc}")

    async def wait(tasks: Sequence[asyncio.Task[None]], timeout: float) -> int:
        """Wait up to ``timeout`` seconds, looking at ``stop_request`` every ``JOIN_SLICE``
        seconds; how many are still running."""
        limit = time.monotonic() + timeout
        pending = {t for t in tasks if not t.done()}
        while pending and time.monotonic() < limit:
            slice_ = min(JOIN_SLICE, max(0.0, limit - time.monotonic()))
            _, pending = await asyncio.wait(pending, timeout=slice_)
            if stop_request is not None and stop_request.requested:
                raise _Stopped
        return len(pending)

    async def finish(tasks: Sequence[asyncio.Task[None]]) -> None:
        """Cancel what still runs and wait for it to end."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    tasks = [asyncio.create_task(caller(s), name=f"affinity-caller-{s.index}") for s in states]
    samples: List[int] = []
    sampling = Spawner("threads").spawn(partial(_sample, probe, stop, samples), "affinity-sampler")
    cpu, start = time.process_time(), time.perf_counter()
    gate.set()
    try:
        unfinished = await wait(tasks, workload.timeout + op_timeout + 5)
    except (_Stopped, asyncio.CancelledError):
        with sigint_ignored():
            halt.set()
            stop.set()
            _, pending = await asyncio.wait(tasks, timeout=op_timeout + 5)
            await finish(list(pending))
            sampling.join(op_timeout + 5)  # stopped: it ends within one sample
        raise
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    halt.set()
    await finish(tasks)  # the unfinished ones, past the time limit
    stop.set()
    sampling.join(op_timeout + 5)
    return {
        "states": states,
        "wall": wall,
        "cpu": cpu,
        "samples": samples,
        "unfinished": unfinished,
    }


def _settle(coll: Any, states: Sequence[CallerState]) -> int:
    """Wait (bounded) for every unacknowledged write to land; how many never did."""
    expected = {s.index: s.expected for s in states}
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        seen = {doc["_id"]: int(doc["n"]) for doc in coll.find()}
        missing = sum(max(0, n - seen.get(i, 0)) for i, n in expected.items())
        if missing == 0 or time.monotonic() > deadline:
            return missing
        time.sleep(0.05)


def percentile(values: Sequence[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def figures(states: Sequence[CallerState], verify_exact: bool = True) -> Dict[str, Any]:
    """The figures computed from what the callers did and saw (no server involved).
    ``verify_exact``: the observed socket key is the client's address, so it must equal
    whatsmyuri's reply (wireclient); otherwise keys and replies must only map one to one."""
    pairs = same = unobserved = 0
    owners: Dict[str, Set[int]] = {}
    per_caller: List[int] = []
    for state in states:
        keys = [key for _, key in state.log]
        unobserved += sum(1 for key in keys if key is None)
        for a, b in zip(keys, keys[1:]):
            if a is not None and b is not None:
                pairs += 1
                same += a == b
        distinct = {key for key in keys if key is not None}
        per_caller.append(len(distinct))
        for key in distinct:
            owners.setdefault(key, set()).add(state.index)
    mismatches = 0
    key_to_you: Dict[Optional[str], str] = {}
    you_to_key: Dict[str, Optional[str]] = {}
    for state in states:
        for vkey, you in state.verify_pairs:
            wrong = vkey is None or (verify_exact and vkey != you)
            wrong = wrong or key_to_you.setdefault(vkey, you) != you
            wrong = wrong or you_to_key.setdefault(you, vkey) != vkey
            mismatches += wrong
    latencies = [x * 1000 for s in states for x in s.latencies]
    reads = sum(s.reads for s in states)
    stale = sum(s.stale for s in states)
    errors = [f"caller {s.index}: {e}" for s in states for e in s.errors]
    return {
        "ops": sum(len(s.log) for s in states),
        "units": len(latencies),
        "affinity": same / pairs if pairs else None,
        "affinity_pairs": pairs,
        "sockets_used": len(owners),
        "sockets_per_caller_max": max(per_caller, default=0),
        "shared_sockets": sum(1 for callers in owners.values() if len(callers) > 1),
        "reads": reads,
        "stale_reads": stale,
        "stale_share": stale / reads if reads else None,
        "reads_off_write_socket": sum(s.reads_off_write_socket for s in states),
        "overcounts": sum(s.overcounts for s in states),
        "unobserved_ops": unobserved,
        "extra_messages": sum(s.extra_messages for s in states),
        "verified": sum(len(s.verify_pairs) for s in states),
        "verify_mismatches": mismatches,
        "unit_latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
        "errors": errors[:20],
        "error_count": len(errors),
        "timed_out": any(s.timed_out for s in states),
    }


def _ok(result: Dict[str, Any]) -> bool:
    """A measurement that can be trusted: every figure's inputs are complete."""
    return not (
        result["error_count"]
        or result["timed_out"]
        or result["callers_unfinished"]
        or result["unobserved_ops"]
        or result["verify_mismatches"]
        or result["overcounts"]
        or result["writes_missing"]
    )
