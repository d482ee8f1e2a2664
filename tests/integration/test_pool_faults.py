"""Pool faults against a real SecantusDB: server restarts, disconnect() beside working
threads, fair waiting, error codes and failpoints, fork in a request.

The rules (issue "Pool and topology behave as the driver specifications and pymongo 2.8
promise"):

- a network error on a socket of the pool's current generation clears the pool (new
  generation; idle sockets closed now, lent ones when they come back); an error from an
  older-generation socket changes nothing; a request whose bound socket is of an older
  generation keeps it while it is alive (the fault was another caller's), and quietly binds
  a new one when it is dead (the server restarted); a network timeout after the handshake
  does not clear the pool; the shutdown codes 91 and 11600 clear it, "not primary" from a
  server of wire version 8 or more does not;
- so a server restart under ten threads in requests costs one AutoReconnect, not ten
  (pymongo 2.8 test_threads.test_server_disconnect, PYTHON-345);
- ``close()`` / ``disconnect()`` break no operation in flight;
- waiters for a socket are served first come, first served;
- after ``os.fork()`` a thread in a request is still in it, with the same depth, and binds a
  socket of the child's own.

Sockets the server closed are normally noticed by a poll before use (``check_interval``);
the restart tests turn that poll off, so the dead sockets are found only by using them,
which is the case pool generations are for.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
from servers import wait_until_serving
from waiting import PATIENCE, wait_until

from wireclient import Connection
from wireclient.errors import AutoReconnect, NetworkTimeout, NotPrimaryError, PoolTimeout
from wireclient.transport.blocking import run

JOIN_TIMEOUT = PATIENCE
NO_POLL = 3600.0  # check_interval: idle sockets are never polled before use


def whoami(conn: Connection) -> str:
    return str(conn.admin.command("whatsmyuri")["you"])


def bound_socket(conn: Connection) -> Any:
    """The calling thread's request socket (Connection.request_socket; the pool's before)."""
    if hasattr(type(conn), "request_socket"):  # not conn's: that would be a Database
        return conn.request_socket()
    return conn.pool.request_socket()  # type: ignore[attr-defined]


def run_threads(targets: List[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    join_all(threads)


def join_all(threads: List[threading.Thread]) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], "threads still running"


def idle_sockets(conn: Connection, n: int) -> List[Any]:
    """Open ``n`` sockets and leave them idle in the pool; returns them."""
    pool = conn.pool
    sockets = [run(pool.checkout()) for _ in range(n)]
    for sock in sockets:
        pool.return_socket(sock)
    assert pool.idle_count() == n
    return sockets


@pytest.fixture()
def fail_command(server: Any) -> Iterator[Callable[..., None]]:
    """``fail_command(mode, **data)`` sets the failCommand failpoint; it is off afterwards."""
    admin = Connection(server.uri, auto_start_request=False)

    def configure(mode: Any, **data: Any) -> None:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})

    try:
        yield configure
    finally:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        admin.close()


_wait_until_serving = wait_until_serving


# -- a. a server restart under ten threads in requests --------------------------------------


def _restart_under_threads(server: Any, one_by_one: bool, threads: int = 10, ops: int = 5) -> Any:
    """``threads`` threads in requests bind a socket; the server restarts; each runs
    ``ops`` operations. Returns (per-thread rows, generation bumps)."""
    conn = Connection(server.uri, auto_start_request=False, max_pool_size=threads + 2)
    conn.pool.check_interval = NO_POLL
    coll = conn.test_pool_faults.c
    bound = threading.Barrier(threads + 1)
    go = threading.Barrier(threads + 1)
    turn = threading.Lock()
    rows: List[Dict[str, Any]] = [{"errors": [], "ok": 0} for _ in range(threads)]

    def work(i: int) -> None:
        row = rows[i]
        conn.start_request()
        try:
            row["before"] = whoami(conn)
            bound.wait(JOIN_TIMEOUT)
            go.wait(JOIN_TIMEOUT)
            for k in range(ops):
                try:
                    if k == 0 and one_by_one:
                        with turn:
                            coll.find_one()
                    else:
                        coll.find_one()
                    row["ok"] += 1
                except Exception as exc:
                    row["errors"].append((k, exc))
            row["after"] = whoami(conn)
            row["in_request"] = conn.in_request()
        finally:
            conn.end_request()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    with conn:
        for t in workers:
            t.start()
        bound.wait(JOIN_TIMEOUT)
        generation = conn.pool.generation
        server.restart()  # stop + start on the same port: every bound socket is dead
        _wait_until_serving(server)
        go.wait(JOIN_TIMEOUT)
        join_all(workers)
        return rows, conn.pool.generation - generation


def test_restart_under_ten_threads_in_requests_costs_one_auto_reconnect(
    fresh_server: Any,
) -> None:
    """pymongo 2.8 test_server_disconnect: the first operation after the restart meets a
    dead socket and raises AutoReconnect; the others, run after it, get fresh sockets."""
    rows, bumps = _restart_under_threads(fresh_server, one_by_one=True)
    errors = [(k, exc) for row in rows for k, exc in row["errors"]]
    assert len(errors) <= 1, errors
    assert all(isinstance(exc, AutoReconnect) and k == 0 for k, exc in errors), errors
    assert all(row["in_request"] for row in rows)
    assert all(row["after"] != row["before"] for row in rows)  # a new socket each
    assert bumps == 1


def test_restart_with_all_threads_at_once_clears_the_pool_once(fresh_server: Any) -> None:
    """Every thread's first operation at once: those already past the socket check when the
    first error cleared the pool fail too (each on its first operation only), but their
    errors come from sockets of the old generation and clear nothing again."""
    rows, bumps = _restart_under_threads(fresh_server, one_by_one=False)
    for row in rows:
        assert [k for k, _ in row["errors"]] in ([], [0]), row["errors"]
        assert all(isinstance(exc, AutoReconnect) for _, exc in row["errors"])
        assert row["in_request"]
        assert row["after"] != row["before"]
    assert bumps == 1


@pytest.mark.parametrize(
    "fault", [{"closeConnection": True}, {"errorCode": 11600}], ids=["closed", "shutdown"]
)
def test_a_request_keeps_its_socket_through_other_threads_faults(
    server: Any, fail_command: Callable[..., None], fault: Dict[str, Any]
) -> None:
    """Three threads' pings meet a fault (the server closes their connection, or answers
    "interrupted at shutdown"): each of their errors on a socket of the current generation
    clears the pool. Meanwhile a thread in a request does w=0 ``$inc`` then a read, at least
    50 times and until the pool has been cleared 15 times: its socket, alive, stays with its
    request (no move, no stale read), and is closed, not pooled, when the request ends."""
    clears_wanted, ops_wanted = 15, 50
    with Connection(server.uri, auto_start_request=False, max_pool_size=20) as conn:
        coll = conn.test_pool_faults.keep_socket
        coll.drop()
        coll.insert_one({"_id": 1, "n": 0})
        start = conn.pool.generation
        stop = threading.Event()
        faults: List[BaseException] = []
        row: Dict[str, Any] = {"ops": 0, "stale": [], "moves": 0}

        def faulty() -> None:
            while not stop.is_set():
                try:
                    conn.admin.command("ping")
                except AutoReconnect as exc:
                    faults.append(exc)

        def in_request() -> None:
            try:
                with conn.start_request():
                    coll.find_one()
                    sock = row["sock"] = bound_socket(conn)
                    deadline = time.monotonic() + JOIN_TIMEOUT
                    while conn.pool.generation - start < clears_wanted or row["ops"] < ops_wanted:
                        assert time.monotonic() < deadline, "the faults did not come"
                        coll.update({"_id": 1}, {"$inc": {"n": 1}}, w=0)
                        row["ops"] += 1
                        seen = coll.find_one({"_id": 1})["n"]
                        if seen != row["ops"]:
                            row["stale"].append((row["ops"], seen))
                        if bound_socket(conn) is not sock:
                            row["moves"] += 1
                            sock = bound_socket(conn)
                    row["kept until the end"] = not sock.closed
            except BaseException as exc:
                row["error"] = exc
            finally:
                stop.set()

        fail_command("alwaysOn", failCommands=["ping"], **fault)
        workers = [threading.Thread(target=faulty, daemon=True) for _ in range(3)]
        workers.append(threading.Thread(target=in_request, daemon=True))
        for t in workers:
            t.start()
        for t in workers:  # the request thread stops the others, within JOIN_TIMEOUT
            t.join(2 * JOIN_TIMEOUT)
        assert not [t for t in workers if t.is_alive()], "threads still running"
        print(f"\n{row['ops']} ops in a request across {conn.pool.generation - start} clears")
        assert "error" not in row, row["error"]
        assert conn.pool.generation - start >= clears_wanted and len(faults) >= clears_wanted
        assert row["ops"] > 0
        assert row["moves"] == 0
        assert row["stale"] == []
        assert row["kept until the end"]
        assert row["sock"].closed  # of an old generation: closed when the request ended
        assert row["sock"] not in conn.pool._idle


# -- b. disconnect() beside working threads -------------------------------------------------


def test_disconnect_in_a_loop_breaks_no_operation(server: Any) -> None:
    conn = Connection(server.uri, auto_start_request=False, socketTimeoutMS=3000)
    coll = conn.test_pool_faults.disconnect
    coll.drop()
    stop = threading.Event()
    ready = threading.Barrier(7)
    rows: List[Dict[str, Any]] = [{"ok": 0, "errors": []} for _ in range(6)]

    def work(i: int, in_request: bool) -> None:
        row = rows[i]
        if in_request:
            conn.start_request()
        try:
            whoami(conn)
            ready.wait(JOIN_TIMEOUT)
            n = 0
            while not stop.is_set() and len(row["errors"]) < 20:
                n += 1
                try:
                    if n % 2:
                        coll.insert({"t": i, "n": n})
                    else:
                        coll.find_one({"t": i})
                    row["ok"] += 1
                except Exception as exc:
                    row["errors"].append(exc)
            row["in_request"] = conn.in_request()
        finally:
            if in_request:
                conn.end_request()

    # Four threads in requests (their bound sockets), two outside (sockets lent per op).
    workers = [
        threading.Thread(target=work, args=(i, i < 4), daemon=True) for i in range(len(rows))
    ]
    with conn:
        for t in workers:
            t.start()
        ready.wait(JOIN_TIMEOUT)
        calls = 0
        # Disconnect until enough of both has happened (not for a fixed time: a busy machine
        # does fewer operations per second, not fewer before the end).
        deadline = time.monotonic() + PATIENCE
        try:
            while time.monotonic() < deadline and (
                calls <= 50 or not all(row["ok"] > 10 or row["errors"] for row in rows)
            ):
                conn.disconnect()
                calls += 1
                time.sleep(0.005)
        finally:
            stop.set()
            join_all(workers)
        coll.drop()
    assert conn.pool.open_count == 0  # every socket of an older generation was closed
    assert calls > 50
    assert [row["errors"] for row in rows] == [[]] * len(rows)
    assert all(row["ok"] > 10 for row in rows), [row["ok"] for row in rows]
    assert [row["in_request"] for row in rows] == [True] * 4 + [False] * 2


def test_close_closes_idle_sockets_now_and_lent_ones_when_they_come_back(server: Any) -> None:
    with Connection(server.uri, auto_start_request=False) as conn:
        pool = conn.pool
        lent = run(pool.checkout())  # lent out for one operation
        have_bound = threading.Event()
        closed = threading.Event()
        seen: Dict[str, Any] = {}

        def in_request() -> None:
            with conn.start_request():
                seen["before"] = whoami(conn)
                seen["sock"] = bound_socket(conn)
                have_bound.set()
                closed.wait(JOIN_TIMEOUT)
                seen["open after close()"] = not seen["sock"].closed
                seen["after"] = whoami(conn)  # the old socket is dropped, a new one bound
                seen["in_request"] = conn.in_request()

        thread = threading.Thread(target=in_request, daemon=True)
        thread.start()
        assert have_bound.wait(JOIN_TIMEOUT)
        idle = idle_sockets(conn, 2)
        conn.close()
        try:
            assert all(sock.closed for sock in idle)
            assert pool.idle_count() == 0
            assert not lent.closed
        finally:
            closed.set()
        join_all([thread])
        assert seen["open after close()"]
        assert seen["after"] != seen["before"] and seen["in_request"]
        assert seen["sock"].closed
        pool.return_socket(lent)
        assert lent.closed and pool.idle_count() == 1  # only the request's new socket


# -- c. fair waiting ------------------------------------------------------------------------


def _ops_per_thread(
    server: Any,
    threads: int,
    pool_size: int,
    per_thread: int = 20,
    warmup: int = 2,
    **options: Any,
) -> Dict[str, List[int]]:
    """Back-to-back short requests: per thread, operations done in a window, and
    PoolTimeouts. The window opens once every thread has done ``warmup`` operations (at the
    start every thread may get a socket once before the pool is full) and closes when
    ``threads * per_thread`` operations were done in it: counted in operations, not seconds,
    so a busy machine makes it longer, not emptier."""
    conn = Connection(server.uri, auto_start_request=False, max_pool_size=pool_size, **options)
    coll = conn.test_pool_faults.fair
    counts = {"ops": [0] * threads, "timeouts": [0] * threads, "errors": [0] * threads}
    done = [0] * threads
    start = threading.Barrier(threads + 1)
    opened = threading.Event()
    closed = threading.Event()
    lock = threading.Lock()

    def work(i: int) -> None:
        start.wait(JOIN_TIMEOUT)
        deadline = time.monotonic() + PATIENCE
        while not closed.is_set() and time.monotonic() < deadline:
            counting = opened.is_set()
            try:
                with conn.start_request():
                    coll.find_one()
            except PoolTimeout:
                counts["timeouts"][i] += 1
                continue
            except Exception:
                counts["errors"][i] += 1
                continue
            with lock:
                done[i] += 1
                if counting and not closed.is_set():
                    counts["ops"][i] += 1
                    if sum(counts["ops"]) >= threads * per_thread:
                        closed.set()
                elif min(done) >= warmup:
                    opened.set()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    with conn:
        for t in workers:
            t.start()
        start.wait(JOIN_TIMEOUT)
        join_all(workers)
    assert closed.is_set(), counts  # the window closed by its count, not by PATIENCE
    return counts


def test_eight_threads_two_sockets_each_get_a_fair_share(server: Any) -> None:
    counts = _ops_per_thread(server, threads=8, pool_size=2)
    ops = counts["ops"]
    mean = sum(ops) / len(ops)
    assert sum(counts["errors"]) == 0
    assert min(ops) >= 0.25 * mean, ops  # first come, first served: about equal shares


def test_thirty_two_threads_four_sockets_every_thread_is_served(server: Any) -> None:
    # 10 s: a first-come-first-served wait is the few operations queued ahead of it; only
    # starving a thread (or a machine far too busy to test on) takes that long.
    counts = _ops_per_thread(
        server, threads=32, pool_size=4, per_thread=4, waitQueueTimeoutMS=10000
    )
    assert sum(counts["errors"]) == 0
    assert min(counts["ops"]) >= 1, counts["ops"]
    assert sum(counts["timeouts"]) == 0


def test_waiters_are_served_in_arrival_order(server: Any) -> None:
    with Connection(server.uri, auto_start_request=False, max_pool_size=1) as conn:
        order: List[int] = []
        threads = []

        def wait_turn(i: int) -> None:
            with conn.start_request():
                conn.admin.command("ping")
                order.append(i)

        with conn.start_request():
            whoami(conn)  # the one socket is bound here
            for i in range(5):
                t = threading.Thread(target=wait_turn, args=(i,), daemon=True)
                t.start()
                threads.append(t)
                # queued before the next one arrives ("waiting" in the stats, if counted)
                assert wait_until(lambda n=i + 1: conn.pool.stats()["waiting"] == n)
        join_all(threads)
        assert order == [0, 1, 2, 3, 4]


# -- d. what clears the pool: error codes, timeouts, failpoints ----------------------------


@pytest.mark.parametrize("code", [91, 11600])  # ShutdownInProgress, InterruptedAtShutdown
def test_shutdown_error_clears_the_pool(
    server: Any, fail_command: Callable[..., None], code: int
) -> None:
    with Connection(server.uri, auto_start_request=False) as conn:
        idle = idle_sockets(conn, 3)
        generation = conn.pool.generation
        fail_command({"times": 1}, failCommands=["ping"], errorCode=code)
        with pytest.raises(NotPrimaryError):
            conn.admin.command("ping")
        assert conn.pool.generation == generation + 1
        assert conn.pool.idle_count() == 0
        assert all(sock.closed for sock in idle)
        assert conn.admin.command("ping")["ok"] == 1


def test_not_primary_from_a_modern_server_keeps_the_pool(
    server: Any, fail_command: Callable[..., None]
) -> None:
    with Connection(server.uri, auto_start_request=False) as conn:
        idle = idle_sockets(conn, 3)
        assert min(sock.max_wire_version for sock in idle) >= 8
        generation = conn.pool.generation
        fail_command({"times": 1}, failCommands=["ping"], errorCode=10107)  # NotWritablePrimary
        with pytest.raises(NotPrimaryError):
            conn.admin.command("ping")
        assert conn.pool.generation == generation
        assert conn.pool.idle_count() == 3
        assert not any(sock.closed for sock in idle)


def test_network_timeout_drops_only_its_socket(
    server: Any, fail_command: Callable[..., None]
) -> None:
    with Connection(server.uri, auto_start_request=False) as conn:
        idle = idle_sockets(conn, 3)
        # Only the socket the ping will run on (the last returned: the idle list is LIFO)
        # gets a short timeout; everything else must succeed, however busy the machine.
        idle[-1].socket_timeout = 0.3
        generation = conn.pool.generation
        fail_command({"times": 1}, failCommands=["ping"], blockConnection=True, blockTimeMS=1500)
        with pytest.raises(NetworkTimeout):
            conn.admin.command("ping")
        assert conn.pool.generation == generation
        assert [sock.closed for sock in idle] == [False, False, True]  # the one the ping ran on
        assert conn.pool.idle_count() == 2
        assert conn.admin.command("ping")["ok"] == 1


def test_connection_closed_by_the_server_clears_the_pool_once(
    server: Any, fail_command: Callable[..., None]
) -> None:
    with Connection(server.uri, auto_start_request=False) as conn:
        idle = idle_sockets(conn, 3)
        generation = conn.pool.generation
        fail_command({"times": 1}, failCommands=["ping"], closeConnection=True)
        with pytest.raises(AutoReconnect) as info:
            conn.admin.command("ping")
        assert not isinstance(info.value, NetworkTimeout)
        assert conn.pool.generation == generation + 1
        assert all(sock.closed for sock in idle)
        assert conn.admin.command("ping")["ok"] == 1
        assert conn.pool.generation == generation + 1


def test_network_error_on_an_older_generation_socket_is_ignored(
    server: Any, fail_command: Callable[..., None]
) -> None:
    """A thread's operation is held by the server; meanwhile another operation's network
    error clears the pool; then the held operation's socket breaks too. That second error
    comes from a socket of the old generation: the pool is not cleared again, and the
    thread's request binds a new socket."""
    with Connection(server.uri, auto_start_request=False) as conn:
        held: Dict[str, Any] = {}
        sent = threading.Event()

        def slow() -> None:
            with conn.start_request():
                held["before"] = whoami(conn)
                held["sock"] = bound_socket(conn)
                sent.set()
                try:
                    conn.admin.command("ping")  # held by the server for 5 s
                except Exception as exc:
                    held["error"] = exc
                held["after"] = whoami(conn)
                held["in_request"] = conn.in_request()

        # The held ping is the only failpoint: the clearing error below is a socket the test
        # breaks itself, so no second configureFailPoint can replace this one before the
        # ping has reached it (however long that takes).
        fail_command({"times": 1}, failCommands=["ping"], blockConnection=True, blockTimeMS=5000)
        thread = threading.Thread(target=slow, daemon=True)
        thread.start()
        assert sent.wait(JOIN_TIMEOUT)
        assert wait_until(lambda: ping_in_progress(server))  # the ping is at the server, held
        generation = conn.pool.generation
        with conn.start_request():
            whoami(conn)
            bound_socket(conn).sock.shutdown(socket.SHUT_RDWR)  # a current-generation socket
            with pytest.raises(AutoReconnect):
                conn.admin.command("buildinfo")
        assert conn.pool.generation == generation + 1
        held["sock"].sock.shutdown(socket.SHUT_RDWR)  # the held operation's socket breaks
        join_all([thread])
        assert isinstance(held.get("error"), AutoReconnect), held.get("error")
        assert conn.pool.generation == generation + 1  # not cleared a second time
        assert held["after"] != held["before"] and held["in_request"]


def ping_in_progress(server: Any) -> bool:
    """Whether the server is running a ping now (currentOp, from a client of its own)."""
    with Connection(server.uri, auto_start_request=False) as probe:
        inprog = probe.admin.command("currentOp")["inprog"]
    return any(op.get("active") and op.get("op") == "ping" for op in inprog)


def test_network_error_during_the_handshake_clears_the_pool(
    server: Any, fail_command: Callable[..., None]
) -> None:
    with Connection(server.uri, auto_start_request=False) as conn:
        pool = conn.pool
        lent = [run(pool.checkout()) for _ in range(2)]  # nothing idle: the next one connects
        generation = pool.generation
        fail_command(
            {"times": 1}, failCommands=["hello", "isMaster", "ismaster"], closeConnection=True
        )
        with pytest.raises(AutoReconnect):
            run(pool.checkout())
        for sock in lent:
            pool.return_socket(sock)
        assert pool.generation == generation + 1
        assert all(sock.closed for sock in lent)


# -- e. fork in a request -------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_in_a_nested_request(server: Any) -> None:
    """pymongo 2.8 test_request_with_fork: the child is still in the request (same depth)
    and binds a socket of its own; the parent's socket is untouched."""
    with Connection(server.uri, auto_start_request=False) as conn:
        conn.start_request()
        conn.start_request()
        try:
            parent = whoami(conn)
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: report, then leave without running any cleanup
                code = 1
                try:
                    report = [
                        str(conn.in_request()),
                        whoami(conn),
                        whoami(conn),
                    ]
                    conn.end_request()
                    report.append(str(conn.in_request()))
                    report.append(whoami(conn))
                    conn.end_request()
                    report.append(str(conn.in_request()))
                    os.write(w, "\n".join(report).encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            data = b""
            deadline = time.monotonic() + JOIN_TIMEOUT
            while time.monotonic() < deadline:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                data += chunk
            os.close(r)
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            in_req, first, second, still_in, third, after_both = data.decode().split("\n")
            assert in_req == "True"
            assert first != parent and second == first  # its own socket, bound
            assert still_in == "True" and third == first  # one end_request: still in it
            assert after_both == "False"
            assert conn.in_request()
            assert whoami(conn) == parent  # the parent's socket is untouched
        finally:
            conn.end_request()
            conn.end_request()
        assert not conn.in_request()
