"""Checks shared by the gevent scripts (one script per monkey-patching mode).

Import this module only after the script has applied its monkey-patching: it imports
gevent and wireclient. Each check raises AssertionError with the numbers it saw, and
records them in RESULTS; ``finish()`` prints RESULTS as one ``RESULT {json}`` line, which
tests/integration/test_gevent.py reads back.

The scripts run in subprocesses started by tests/integration/test_gevent.py, with the server URI as
argv[1]; they can also be run by hand against any server started with
``--enable-test-commands`` (for the failCommand failpoint).
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import gevent
import gevent.event
import gevent.lock

from wireclient import Connection, monitoring

RESULTS: Dict[str, Any] = {}
SWALLOWED: List[str] = []
TIMEOUT = float(os.environ.get("GEVENT_CHECK_TIMEOUT", "120"))


def start(mode: str) -> str:
    """Common start of a script: a watchdog for hangs, and the server URI from argv."""
    # A deadlock (a real lock or condition blocking the hub's thread) would hang the
    # script: dump every thread's stack and exit instead, so the test shows where.
    faulthandler.dump_traceback_later(TIMEOUT, exit=True)
    RESULTS["mode"] = mode
    # Errors nobody sees otherwise: exceptions in weakref callbacks and in the gevent hub's
    # callbacks (links) are printed and swallowed. Any of them fails the script in finish().
    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        name = info.exc_type.__name__
        SWALLOWED.append(f"unraisable in {info.object!r}: {name}: {info.exc_value}")
        previous_hook(info)

    sys.unraisablehook = unraisable
    hub = gevent.get_hub()
    previous_handle_error = hub.handle_error

    def handle_error(context: Any, exc_type: Any, value: Any, tb: Any) -> None:
        SWALLOWED.append(f"hub error in {context!r}: {exc_type.__name__}: {value}")
        previous_handle_error(context, exc_type, value, tb)

    hub.handle_error = handle_error
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: {sys.argv[0]} mongodb://host:port/")
    return sys.argv[1]


def main(mode: str, checks: Dict[str, Callable[[str], None]]) -> None:
    """Run the checks named in argv[2:] (all of them when none is named), in that order."""
    uri = start(mode)
    names = sys.argv[2:] or list(checks)
    unknown = [name for name in names if name not in checks]
    if unknown:
        raise SystemExit(f"unknown checks {unknown}; this script has {sorted(checks)}")
    for name in names:
        checks[name](uri)
    finish()


def finish() -> None:
    faulthandler.cancel_dump_traceback_later()
    RESULTS["swallowed_errors"] = SWALLOWED
    print("RESULT " + json.dumps(RESULTS, sort_keys=True), flush=True)
    if SWALLOWED:
        raise SystemExit(
            f"{len(SWALLOWED)} errors were raised in callbacks and swallowed; first: "
            + SWALLOWED[0]
        )


def step(name: str) -> None:
    print(f"-- {name}", flush=True)


def db_name(tag: str) -> str:
    return f"gevent_{RESULTS['mode']}_{tag}_{os.getpid()}"


def whatsmyuri(conn: Connection) -> str:
    return str(conn.admin.command("whatsmyuri")["you"])


def settle(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Let the hub run (links, local cleanup) until ``condition()`` holds or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.005)
    return True


def identity_tracked(conn: Connection) -> Optional[int]:
    """How many callers the request table's identity strategy still tracks, when it can tell."""
    ident = conn._requests.identity
    for name in ("tracked_count", "watched_count"):
        counter = getattr(ident, name, None)
        if counter is not None:
            return int(counter())
    return None


# -- items 2 and 3: a socket per greenlet ---------------------------------------------------


def check_socket_per_greenlet(uri: str, n: int = 10, **conn_kw: Any) -> None:
    """With auto_start_request (the default), each greenlet is pinned to its own socket,
    and its request ends (socket back to the pool) when the greenlet ends."""
    step(f"socket per greenlet {conn_kw}")
    conn = Connection(uri, **conn_kw)
    coll = conn[db_name("own")].docs
    all_in = gevent.event.Event()
    arrived: List[int] = []
    in_request_counts: List[int] = []

    def body(i: int) -> Tuple[str, str, str]:
        assert not conn.in_request(), "a new greenlet started inside a request"
        first = whatsmyuri(conn)
        assert conn.in_request(), "auto_start_request did not start a request"
        arrived.append(i)
        if len(arrived) == n:
            in_request_counts.append(conn.request_count())
            all_in.set()
        assert all_in.wait(30), "greenlets did not all get a socket"
        coll.insert({"g": i})
        doc = coll.find_one({"g": i})
        assert doc is not None and doc["g"] == i
        gevent.sleep(0.01)
        second = whatsmyuri(conn)
        coll.update({"g": i}, {"$set": {"seen": True}})
        third = whatsmyuri(conn)
        return first, second, third

    jobs = [gevent.spawn(body, i) for i in range(n)]
    gevent.joinall(jobs, raise_error=True)
    uris = [job.value for job in jobs]
    for trio in uris:
        assert len(set(trio)) == 1, f"a greenlet changed sockets inside its request: {trio}"
    distinct = {trio[0] for trio in uris}
    assert len(distinct) == n, f"{n} live greenlets shared sockets: {len(distinct)} distinct"
    assert in_request_counts == [n], f"request map while all were alive: {in_request_counts}"
    assert not conn.in_request(), "the spawning greenlet was put in a request"
    released = settle(lambda: conn.request_count() == 0)
    assert released, f"finished greenlets left {conn.request_count()} requests behind"
    idle = conn.pool.idle_count()
    assert idle >= n, f"sockets of finished greenlets not back in the pool: idle={idle}"
    # The next caller gets one of those sockets back.
    assert whatsmyuri(conn) in distinct
    RESULTS.setdefault("socket_per_greenlet", []).append(
        {"options": repr(conn_kw), "greenlets": n, "distinct_sockets": len(distinct)}
    )
    conn.drop_database(db_name("own"))
    conn.close()


def check_request_per_greenlet(uri: str, **conn_kw: Any) -> None:
    """start_request in one greenlet does not put another greenlet in a request."""
    step(f"request per greenlet {conn_kw}")
    conn = Connection(uri, auto_start_request=False, **conn_kw)
    a_started = gevent.event.Event()
    b_done = gevent.event.Event()
    seen: Dict[str, Any] = {}

    def a() -> None:
        with conn.start_request():
            first = whatsmyuri(conn)
            a_started.set()
            assert b_done.wait(30)
            assert conn.in_request()
            seen["a"] = {first, whatsmyuri(conn), whatsmyuri(conn)}
        assert not conn.in_request()

    def b() -> None:
        assert a_started.wait(30)
        seen["b_in_request"] = conn.in_request()
        seen["b_uri"] = whatsmyuri(conn)
        b_done.set()

    gevent.joinall([gevent.spawn(a), gevent.spawn(b)], raise_error=True)
    assert len(seen["a"]) == 1, f"socket changed inside a request: {seen['a']}"
    assert seen["b_in_request"] is False, "greenlet A's request leaked into greenlet B"
    assert seen["b_uri"] not in seen["a"], "B used A's request socket while A held it"
    conn.close()


def check_greenlets_share_thread_request(uri: str) -> None:
    """use_greenlets=False with only the socket patched: greenlets of one thread are one
    caller, so they share the thread's request and its socket (the documented trade-off);
    another OS thread has its own."""
    step("greenlets share the thread's request (use_greenlets=False)")
    conn = Connection(uri, use_greenlets=False)  # auto_start_request=True
    # Operations on a shared socket must not overlap, so they take turns.
    turn = gevent.lock.Semaphore()

    def body(i: int) -> List[str]:
        uris = []
        for _ in range(3):
            with turn:
                uris.append(whatsmyuri(conn))
            gevent.sleep(0.001)
        return uris

    jobs = [gevent.spawn(body, i) for i in range(10)]
    gevent.joinall(jobs, raise_error=True)
    uris = {u for job in jobs for u in job.value}
    uris.add(whatsmyuri(conn))  # the thread's main greenlet is the same caller
    assert len(uris) == 1, f"greenlets of one thread used {len(uris)} sockets: {uris}"
    assert conn.in_request()

    other: Dict[str, Any] = {}

    def in_thread() -> None:
        try:
            other["in_request_before"] = conn.in_request()
            other["uri"] = whatsmyuri(conn)
            other["uri2"] = whatsmyuri(conn)
        except BaseException as exc:  # reported by the assertions below
            other["error"] = repr(exc)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join(60)
    assert "error" not in other, other.get("error")
    assert other["in_request_before"] is False, "the thread inherited the main thread's request"
    assert other["uri"] == other["uri2"] and other["uri"] not in uris, other

    # start_request in one greenlet puts its sibling greenlets in the request too.
    conn2 = Connection(uri, use_greenlets=False, auto_start_request=False)
    conn2.start_request()
    sibling = gevent.spawn(conn2.in_request)
    sibling.join()
    assert sibling.value is True, "greenlets of one thread did not share the request"
    conn2.end_request()
    assert gevent.spawn(conn2.in_request).get() is False
    RESULTS["shared_thread_socket"] = {"greenlet_sockets": len(uris)}
    conn.close()
    conn2.close()


def check_thread_beside_greenlets(uri: str, **conn_kw: Any) -> None:
    """Only the socket is patched: a real thread and greenlets use one Connection at once,
    each with its own socket."""
    step(f"a thread beside greenlets {conn_kw}")
    conn = Connection(uri, **conn_kw)
    out: Dict[str, Any] = {}
    # Nobody ends (and so gives its request socket back) before everyone is done: on a busy
    # machine a caller could otherwise finish before another starts, which may then reuse
    # its socket, rightly, and "each with its own" would not hold by chance.
    greenlets_done = threading.Event()
    finished: List[int] = []
    all_finished = gevent.event.Event()

    def in_thread() -> None:
        try:
            out["thread"] = {whatsmyuri(conn) for _ in range(20)}
        except BaseException as exc:
            out["error"] = repr(exc)
        greenlets_done.wait(60)

    t = threading.Thread(target=in_thread)
    t.start()

    def body() -> set:
        uris = set()
        for _ in range(5):
            uris.add(whatsmyuri(conn))
            gevent.sleep(0.001)
        finished.append(1)
        if len(finished) == 5:
            all_finished.set()
        all_finished.wait(60)
        return uris

    jobs = [gevent.spawn(body) for _ in range(5)]
    gevent.joinall(jobs, raise_error=True)
    greenlets_done.set()
    t.join(60)
    assert "error" not in out, out.get("error")
    assert len(out["thread"]) == 1, f"the thread changed sockets: {out['thread']}"
    greenlet_uris = [job.value for job in jobs]
    assert all(len(u) == 1 for u in greenlet_uris), greenlet_uris
    flat = {u for s in greenlet_uris for u in s}
    assert len(flat) == 5 and not (flat & out["thread"]), (flat, out["thread"])
    conn.close()


# -- CMAP's maxConnecting ---------------------------------------------------------------------


class ConnectsInFlight(monitoring.PoolListener):
    """Connects in progress, from the pool's events: created opens one, ready or closed (a
    failed connect) ends it; the most ever seen at once."""

    def __init__(self) -> None:
        self.pending: Set[int] = set()
        self.most = 0
        self.created = 0

    def connection_created(self, event: monitoring.PoolEvent) -> None:
        assert event.driver_connection_id is not None
        self.pending.add(event.driver_connection_id)
        self.created += 1
        self.most = max(self.most, len(self.pending))

    def connection_ready(self, event: monitoring.PoolEvent) -> None:
        self.pending.discard(event.driver_connection_id)  # type: ignore[arg-type]

    def connection_closed(self, event: monitoring.PoolEvent) -> None:
        self.pending.discard(event.driver_connection_id)  # type: ignore[arg-type]


def check_connect_storm(uri: str, n: int = 1000, **conn_kw: Any) -> None:
    """n greenlets arrive at once on an empty pool (max_pool_size 100): no storm of
    connects, at most two in progress at any moment (CMAP's maxConnecting); every
    greenlet's operation succeeds."""
    step(f"{n} greenlets at once on an empty pool {conn_kw}")
    counter = ConnectsInFlight()
    conn = Connection(uri, auto_start_request=False, event_listeners=[counter], **conn_kw)
    jobs = [gevent.spawn(conn.admin.command, "ping") for _ in range(n)]
    gevent.joinall(jobs, timeout=TIMEOUT * 0.75)
    unfinished = sum(1 for job in jobs if not job.dead)
    failed = [repr(job.exception) for job in jobs if job.dead and job.exception is not None]
    stats = {
        "greenlets": n,
        "most_connects_in_flight": counter.most,
        "sockets_created": counter.created,
        "open_after": conn.pool.open_count,
    }
    RESULTS.setdefault("connect_storm", []).append(stats)
    print(json.dumps(stats), flush=True)
    conn.close()
    assert unfinished == 0 and not failed, f"{unfinished} unfinished, failures: {failed[:3]}"
    assert counter.most <= 2, f"more than two connects at once: {stats}"
    assert counter.created <= conn.pool.max_size, stats


# -- item 4: reclamation ----------------------------------------------------------------------


def check_reclamation(uri: str, n: int = 1000, max_pool_size: int = 10, **conn_kw: Any) -> None:
    """n short-lived greenlets, each doing one operation in a request and ending without
    end_request, leave at most max_pool_size sockets open and no request behind."""
    step(f"reclamation of {n} greenlets, max_pool_size={max_pool_size} {conn_kw}")
    observer = Connection(uri, max_pool_size=1, auto_start_request=False)

    def server_current() -> int:
        return int(observer.admin.command("serverStatus")["connections"]["current"])

    before = server_current()
    conn = Connection(uri, max_pool_size=max_pool_size, auto_start_request=False, **conn_kw)
    coll = conn[db_name("reclaim")].docs
    peak = [0]
    failures: List[str] = []

    def body(i: int) -> None:
        try:
            conn.start_request()
            if i % 2:
                coll.insert({"i": i})
            else:
                coll.find_one({"i": i - 1})
            assert conn.in_request()
            peak[0] = max(peak[0], conn.pool.open_count)
        except BaseException as exc:
            failures.append(repr(exc))
            raise
        # no end_request: the greenlet's death must give the socket back

    t0 = time.monotonic()
    jobs = [gevent.spawn(body, i) for i in range(n)]  # all held until joinall returns
    gevent.joinall(jobs, timeout=TIMEOUT * 0.75)
    elapsed = time.monotonic() - t0
    unfinished = sum(1 for job in jobs if not job.dead)
    assert not failures, f"{len(failures)} greenlets failed, first: {failures[0]}"
    assert unfinished == 0, f"{unfinished} greenlets still waiting for a socket (deadlock?)"
    settled = settle(lambda: conn.request_count() == 0)
    del jobs
    after = server_current()
    stats = {
        "options": repr(conn_kw),
        "greenlets": n,
        "max_pool_size": max_pool_size,
        "peak_open": peak[0],
        "open_after": conn.pool.open_count,
        "idle_after": conn.pool.idle_count(),
        "server_connections_before": before,
        "server_connections_after": after,
        "server_delta": after - before,
        "request_count_after": conn.request_count(),
        "identity_tracked_after": identity_tracked(conn),
        "seconds": round(elapsed, 3),
    }
    RESULTS.setdefault("reclamation", []).append(stats)
    print(json.dumps(stats), flush=True)
    assert settled, f"request map not empty: {stats}"
    assert peak[0] <= max_pool_size and conn.pool.open_count <= max_pool_size, stats
    assert conn.pool.idle_count() == conn.pool.open_count, f"sockets lost, not idle: {stats}"
    assert after - before <= max_pool_size, f"server sees too many sockets: {stats}"
    assert coll.count() == n // 2, "not every insert arrived"
    conn.drop_database(db_name("reclaim"))
    conn.close()
    observer.close()


# -- item 5: operations do not block the hub --------------------------------------------------


def _failpoint(conn: Connection, times: int, block_ms: int) -> None:
    conn.admin.command(
        {
            "configureFailPoint": "failCommand",
            "mode": {"times": times},
            "data": {"failCommands": ["find"], "blockConnection": True, "blockTimeMS": block_ms},
        }
    )


def _failpoint_off(conn: Connection) -> None:
    conn.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def check_concurrency(
    uri: str, n: int = 100, block_ms: int = 200, max_ratio: float = 25.0, **conn_kw: Any
) -> None:
    """n greenlets each run one find that the server holds for block_ms: the wall time is
    close to one operation's, not n times it."""
    step(f"{n} concurrent slow finds {conn_kw}")
    conn = Connection(uri, auto_start_request=False, max_pool_size=n, **conn_kw)
    coll = conn[db_name("slow")].docs
    coll.insert({"x": 1})

    # Open sockets first, so the timing measures operations, not connection set-up: n
    # concurrent pings each check out a socket while the others wait on the network.
    gevent.joinall([gevent.spawn(conn.admin.command, "ping") for _ in range(n)], raise_error=True)
    warmed = conn.pool.open_count

    def timed_find() -> float:
        t = time.monotonic()
        doc = coll.find_one()
        assert doc is not None and doc["x"] == 1
        return time.monotonic() - t

    try:
        _failpoint(conn, times=1 + n + n, block_ms=block_ms)
        single = timed_find()
        assert single >= block_ms / 1000.0 * 0.9, f"failpoint did not block: {single:.3f}s"

        t0 = time.monotonic()
        jobs = [gevent.spawn(timed_find) for _ in range(n)]
        gevent.joinall(jobs, raise_error=True)
        warm_total = time.monotonic() - t0

        # Once more with cold sockets: connection set-up included.
        conn.close()
        t0 = time.monotonic()
        jobs = [gevent.spawn(timed_find) for _ in range(n)]
        gevent.joinall(jobs, raise_error=True)
        cold_total = time.monotonic() - t0
    finally:
        _failpoint_off(conn)
    stats = {
        "options": repr(conn_kw),
        "greenlets": n,
        "sockets_warmed": warmed,
        "block_ms": block_ms,
        "single_op_s": round(single, 4),
        "concurrent_warm_s": round(warm_total, 4),
        "ratio_warm": round(warm_total / single, 2),
        "concurrent_cold_s": round(cold_total, 4),
        "ratio_cold": round(cold_total / single, 2),
        "serial_would_be_s": round(single * n, 2),
    }
    RESULTS.setdefault("concurrency", []).append(stats)
    print(json.dumps(stats), flush=True)
    # Serial, n operations take n times one (a ratio of 100); interleaved, about one plus the
    # overhead of n operations, which a busy machine can make several times the block: the
    # bound sits far from both.
    assert warm_total / single < max_ratio, f"operations did not interleave: {stats}"
    conn.drop_database(db_name("slow"))
    conn.close()


def check_not_blocking_hub_with_ticker(uri: str, **conn_kw: Any) -> None:
    """While a greenlet waits on a slow find, another greenlet keeps ticking."""
    step(f"the hub keeps running during a slow find {conn_kw}")
    conn = Connection(uri, **conn_kw)
    coll = conn[db_name("tick")].docs
    coll.insert({"x": 1})
    ticks: List[float] = []
    stop = gevent.event.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    t = gevent.spawn(ticker)
    gevent.sleep(0)
    try:
        _failpoint(conn, times=1, block_ms=1000)
        coll.find_one()
    finally:
        stop.set()
        t.join()
        _failpoint_off(conn)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    # A blocked hub shows one gap as long as the 1 s block and a couple of ticks; the
    # margins below leave room for a busy machine (a process may wait its turn for a few
    # hundred ms) and still catch that.
    assert len(ticks) >= 10 and max(gaps) < 0.75, f"hub blocked: {len(ticks)} ticks, {gaps}"
    RESULTS.setdefault("ticker", []).append({"options": repr(conn_kw), "ticks": len(ticks)})
    conn.drop_database(db_name("tick"))
    conn.close()
