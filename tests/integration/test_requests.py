"""Design section 3, points 1-11, against a real SecantusDB server.

"Which socket" is observed from outside: ``whatsmyuri`` returns the client address of the
socket the command ran on, and ``serverStatus.connections.current`` counts open sockets.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest
from flavoured import FLAVOURS, Flavour, got
from stub_pool import FakeClock
from waiting import PATIENCE, wait_until

from wireclient import AsyncConnection, Connection
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    PoolTimeout,
)
from wireclient.pooling import pool as pool_module
from wireclient.transport.blocking import run


def whoami(conn: Connection) -> str:
    return str(conn.admin.command("whatsmyuri")["you"])


def server_connections(server: Any) -> int:
    """Open sockets as the server counts them (measured with a connection of its own)."""
    probe = Connection(server.uri, auto_start_request=False)
    try:
        return int(probe.admin.command("serverStatus")["connections"]["current"]) - 1
    finally:
        probe.close()


def wait_for(predicate: Any, timeout: float = PATIENCE) -> bool:
    return wait_until(predicate, timeout)


@pytest.fixture()
def auto_conn(server: Any) -> Iterator[Connection]:
    c = Connection(server.uri)
    yield c
    c.close()


# 1. Outside a request, concurrent operations never share a socket; a returned socket is reused.
def test_outside_request_concurrent_ops_use_distinct_sockets(conn: Connection, server: Any) -> None:
    barrier = threading.Barrier(4)
    seen: List[str] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        sock = run(conn.pool.checkout())  # hold one socket while the others take theirs
        try:
            reply = run(sock.command("admin", {"whatsmyuri": 1}))
            assert reply is not None
            with lock:
                seen.append(reply["you"])
            barrier.wait()
        finally:
            conn.pool.return_socket(sock)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    # Sequential operations reuse a returned socket.
    first = whoami(conn)
    assert whoami(conn) == first


# 2. start_request takes no socket; the first operation binds one; end_request returns it.
def test_request_binds_on_first_operation_and_returns_on_end(conn: Connection) -> None:
    whoami(conn)  # warm one idle socket
    idle_before = conn.pool.idle_count()
    req = conn.start_request()
    assert conn.in_request() and conn.request_socket() is None
    assert conn.pool.idle_count() == idle_before
    me = whoami(conn)
    assert conn.request_socket() is not None
    for _ in range(5):
        assert whoami(conn) == me
    req.end()
    assert not conn.in_request()
    # The next caller, from any thread, gets the socket the request used.
    other: List[str] = []
    t = threading.Thread(target=lambda: other.append(whoami(conn)))
    t.start()
    t.join()
    assert other == [me]


def test_request_socket_is_not_lent_to_other_threads(conn: Connection) -> None:
    with conn.start_request():
        mine = whoami(conn)
        theirs: List[str] = []

        def work() -> None:
            theirs.extend(whoami(conn) for _ in range(3))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert mine not in theirs
        assert whoami(conn) == mine


# 3. Request state is per thread.
def test_request_state_is_per_thread(conn: Connection) -> None:
    with conn.start_request():
        result: List[bool] = []
        t = threading.Thread(target=lambda: result.append(conn.in_request()))
        t.start()
        t.join()
        assert result == [False]
        assert conn.in_request()


# 4. Requests nest by count; Request.end() is idempotent; `with` after end() is harmless.
def test_requests_nest_and_end_is_idempotent(conn: Connection) -> None:
    outer = conn.start_request()
    inner = conn.start_request()
    inner.end()
    inner.end()
    assert conn.in_request()
    with conn.start_request() as r:
        r.end()
    assert conn.in_request()  # leaving the with block did not end the outer request
    outer.end()
    assert not conn.in_request()
    conn.end_request()  # extra end_request calls do nothing
    conn.end_request()
    assert not conn.in_request()


# 5. auto_start_request.
def test_auto_start_request(auto_conn: Connection, conn: Connection) -> None:
    assert not auto_conn.in_request()
    me = whoami(auto_conn)
    assert auto_conn.in_request()
    assert whoami(auto_conn) == me
    auto_conn.end_request()
    assert not auto_conn.in_request()
    whoami(auto_conn)
    assert auto_conn.in_request()  # a new request started by the next operation
    auto_conn.end_request()
    whoami(conn)
    assert not conn.in_request()


# 6. Read-your-writes with unacknowledged writes inside requests, many threads at once.
def test_read_your_writes_in_requests(auto_conn: Connection) -> None:
    coll = auto_conn.test_ryw.counters
    coll.drop()
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            with auto_conn.start_request():
                for _ in range(1000):
                    coll.update({"t": n}, {"$inc": {"n": 1}}, upsert=True, safe=False)
                doc = coll.find_one({"t": n})
                assert doc is not None and doc["n"] == 1000, doc
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(d["n"] for d in coll.find()) == 8000
    assert coll.count() == 8


def test_unacknowledged_writes_return_none_and_land(conn: Connection) -> None:
    coll = conn.test_unack.c
    coll.drop()
    with conn.start_request():
        assert coll.update({"a": 1}, {"$set": {"b": 2}}, upsert=True, w=0) is None
        assert coll.remove({"zzz": 1}, safe=False) is None
        assert coll.find_one({"a": 1})["b"] == 2


# 7. A thread that ends inside a request gives its socket back.
def test_dead_thread_returns_request_socket(server: Any) -> None:
    conn = Connection(server.uri, max_pool_size=2)
    try:
        base = server_connections(server)

        def work() -> None:
            whoami(conn)  # auto_start_request binds a socket; the thread ends without end_request

        for _ in range(10):
            t = threading.Thread(target=work)
            t.start()
            t.join()
        gc.collect()
        assert conn.request_count() == 0
        assert conn.pool.open_count <= 2
        # The constructor's socket is counted in base; a thread may open the pool's second
        # one (a dead thread's socket comes back when its death is noticed, which a busy
        # machine may do after the next thread has started): at most one more, not ten.
        # (At most, not exactly: base may still count another test's sockets the server has
        # not yet seen closed.)
        seen: List[int] = []
        assert wait_for(lambda: seen.append(server_connections(server)) or seen[-1] <= base + 1), (
            base,
            seen[-3:],
        )
    finally:
        conn.close()


# 8. max_pool_size bounds sockets; waiters time out; dead threads release, no deadlock.
def test_pool_bound_with_sixteen_threads_in_requests(server: Any) -> None:
    conn = Connection(server.uri, max_pool_size=4, auto_start_request=False)
    try:
        base = server_connections(server)
        peak: List[int] = []
        errors: List[BaseException] = []

        def work() -> None:
            try:
                with conn.start_request():
                    for _ in range(5):
                        whoami(conn)
                    peak.append(conn.pool.open_count)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "deadlock"
        assert not errors, errors
        assert max(peak) <= 4
        assert server_connections(server) <= base + 4
    finally:
        conn.close()


def test_pool_timeout_when_all_sockets_are_held(server: Any) -> None:
    conn = Connection(server.uri, max_pool_size=1, waitQueueTimeoutMS=100, auto_start_request=False)
    try:
        with conn.start_request():
            whoami(conn)
            result: List[BaseException] = []

            def work() -> None:
                try:
                    whoami(conn)
                except BaseException as exc:  # noqa: BLE001
                    result.append(exc)

            t = threading.Thread(target=work)
            t.start()
            t.join()
            assert len(result) == 1 and isinstance(result[0], PoolTimeout)
        whoami(conn)  # released: works again
    finally:
        conn.close()


def test_thread_holding_last_socket_dies_and_waiter_proceeds(server: Any) -> None:
    conn = Connection(server.uri, max_pool_size=1, waitQueueTimeoutMS=10000)
    try:
        ready = threading.Event()

        def holder() -> None:
            whoami(conn)  # auto request: holds the only socket, then the thread ends
            ready.set()

        t = threading.Thread(target=holder)
        t.start()
        ready.wait()
        t.join()
        del t
        gc.collect()
        out: List[str] = []
        w = threading.Thread(target=lambda: out.append(whoami(conn)))
        w.start()
        w.join(15)
        assert out, "waiter never got the dead thread's socket"
    finally:
        conn.close()


# 9. A socket closed under us is detected and replaced; the request continues.
def test_request_survives_server_closing_its_socket(conn: Connection) -> None:
    with conn.start_request():
        first = whoami(conn)
        conn.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": {"times": 1},
                "data": {"failCommands": ["ping"], "closeConnection": True},
            }
        )
        with pytest.raises(AutoReconnect):
            conn.admin.command("ping")
        assert conn.in_request()
        second = whoami(conn)
        assert second != first
        assert whoami(conn) == second
    assert conn.pool.open_count >= 1


def test_idle_socket_closed_by_server_restart_is_replaced(fresh_server: Any) -> None:
    conn = Connection(fresh_server.uri, auto_start_request=False)
    conn.pool.check_interval = 0.0
    try:
        whoami(conn)
        fresh_server.restart()
        assert conn.admin.command("ping")["ok"] == 1  # the dead idle socket was noticed
    finally:
        conn.close()


def test_request_socket_closed_by_server_restart_is_replaced(fresh_server: Any) -> None:
    conn = Connection(fresh_server.uri)
    conn.pool.check_interval = 0.0
    try:
        whoami(conn)
        assert conn.in_request()
        fresh_server.restart()
        assert conn.admin.command("ping")["ok"] == 1
        assert conn.in_request()
    finally:
        conn.close()


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def test_timeout_mid_reply_closes_socket(flavour: Flavour, server: Any) -> None:
    """socketTimeoutMS mid-reply, with both clients: NetworkTimeout, not before the
    deadline, and the half-read socket closed, never back in the pool."""

    async def you(conn: Any) -> str:
        return str((await got(conn.admin.command("whatsmyuri")))["you"])

    async def main() -> None:
        conn = await flavour.open(Connection, AsyncConnection, server.uri, auto_start_request=False)
        try:
            first = await you(conn)
            await got(
                conn.admin.command(
                    {
                        "configureFailPoint": "failCommand",
                        "mode": {"times": 1},
                        "data": {
                            "failCommands": ["ping"],
                            "blockConnection": True,
                            "blockTimeMS": 1000,
                        },
                    }
                )
            )
            # Only the ping's socket (the one idle socket) times out soon: what must
            # succeed is not bounded by a timeout a busy machine could miss.
            sock = await flavour.steps(conn.pool.checkout())
            sock.socket_timeout = 0.2
            conn.pool.return_socket(sock)
            start = time.monotonic()
            with pytest.raises(NetworkTimeout):
                await got(conn.admin.command("ping"))
            assert time.monotonic() - start >= 0.2 - 0.05  # not before the deadline
            assert sock.closed and conn.pool.open_count == 0
            assert await you(conn) != first  # the half-read socket never went back to the pool
        finally:
            await got(conn.close())

    flavour.run(main)


# 10. An OperationFailure neither closes the socket nor ends the request.
def test_operation_failure_keeps_socket_and_request(conn: Connection) -> None:
    coll = conn.test_opfail.c
    coll.drop()
    with conn.start_request():
        me = whoami(conn)
        coll.insert({"_id": 1})
        with pytest.raises(DuplicateKeyError):
            coll.insert({"_id": 1})
        with pytest.raises(OperationFailure):
            conn.admin.command("noSuchCommandAnywhere")
        assert conn.in_request()
        assert whoami(conn) == me


# 11. After fork the child never uses the parent's sockets.
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_uses_its_own_sockets(conn: Connection) -> None:
    with conn.start_request():
        parent = whoami(conn)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                child = whoami(conn)
                os.write(w, child.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        child = os.read(r, 100).decode()
        os.close(r)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert child and child != parent
        assert whoami(conn) == parent  # the parent's socket is untouched


def test_close_closes_every_socket_and_connection_reconnects(server: Any) -> None:
    conn = Connection(server.uri)
    base = server_connections(server)
    whoami(conn)
    conn.close()
    assert conn.pool.open_count == 0
    assert wait_for(lambda: server_connections(server) <= base - 1 or base == 0)
    assert conn.admin.command("ping")["ok"] == 1
    conn.close()


def test_with_block_closes(server: Any) -> None:
    with Connection(server.uri) as c:
        whoami(c)
    assert c.pool.open_count == 0


def _stats(conn: Connection) -> Dict[str, Any]:
    return conn.pool.stats()


# -- request leases (wireclient.pooling.requests) through the pool's factory seam -----------------
# The same rules as above, with stand-in sockets: the table that both connection classes
# use, the operation path's acquire/release, and death callbacks.


def _leases(**pool_options: Any) -> Any:
    from stub_pool import make_pool

    from wireclient.engine.executor import Executor, SingleServer
    from wireclient.pooling.identity import ThreadIdentity
    from wireclient.pooling.requests import Requests

    pool, factory = make_pool(**pool_options)
    executor = Executor(SingleServer(pool), Requests(ThreadIdentity(), auto_start=False))
    return executor, pool, factory


def _operation(executor: Any, pool: Any) -> Any:
    """What the operation path does around one message; returns the socket it used."""
    state = executor.requests.for_operation()
    sock = run(executor.acquire(pool, state))
    executor.release(pool, sock, state)
    return sock


def test_lease_binds_first_socket_and_keeps_it() -> None:
    executor, pool, factory = _leases()
    table = executor.requests
    table.start()
    assert table.in_request() and table.bound_socket(pool) is None  # no socket yet
    s = _operation(executor, pool)
    assert table.bound_socket(pool) is s
    for _ in range(3):
        assert _operation(executor, pool) is s
    table.end()
    assert not table.in_request()
    assert pool.idle_count() == 1 and run(pool.checkout()) is s


def test_leases_nest_by_count_and_extra_ends_are_harmless() -> None:
    executor, _, _ = _leases()
    table = executor.requests
    table.start()
    table.start()
    table.end()
    assert table.in_request()
    table.end()
    assert not table.in_request()
    table.end()
    assert not table.in_request()


def test_lease_state_is_per_thread() -> None:
    executor, _, _ = _leases()
    table = executor.requests
    table.start()
    seen = []
    t = threading.Thread(target=lambda: seen.append(table.in_request()))
    t.start()
    t.join()
    assert seen == [False] and table.in_request()
    table.end()


def test_auto_start_is_decided_by_the_table() -> None:
    executor, pool, _ = _leases()
    table = executor.requests
    assert not table.in_request()
    _operation(executor, pool)
    assert not table.in_request()  # auto_start off
    table.auto_start = True
    s = _operation(executor, pool)
    assert table.in_request() and table.bound_socket(pool) is s


def test_thread_dying_in_a_lease_returns_its_socket() -> None:
    executor, pool, _ = _leases()
    table = executor.requests
    held = []

    def work() -> None:
        table.start()
        held.append(_operation(executor, pool))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    del t
    gc.collect()
    assert table.count() == 0
    assert pool.idle_count() == 1 and run(pool.checkout()) is held[0]


def test_closed_socket_is_dropped_and_the_lease_rebinds() -> None:
    executor, pool, _ = _leases()
    table = executor.requests
    table.start()
    state = table.current()
    s = run(executor.acquire(pool, state))
    s.close()  # the network layer closes a socket on any error mid-conversation
    executor.release(pool, s, state)
    assert pool.open_count == 0 and table.in_request()
    t = _operation(executor, pool)
    assert t is not s and table.bound_socket(pool) is t
    table.end()


def test_cleared_pool_leaves_a_lease_its_live_socket() -> None:
    """A socket bound before the pool was cleared (a server fault seen by another thread)
    is of an older generation but alive: the request keeps it (moving would lose
    read-your-writes), and it is closed, not pooled, when the request ends."""
    executor, pool, _ = _leases()
    table = executor.requests
    table.start()
    s = _operation(executor, pool)
    pool.clear()
    assert _operation(executor, pool) is s and not s.closed
    assert table.bound_socket(pool) is s and pool.open_count == 1
    table.end()
    assert s.closed and pool.open_count == 0 and pool.idle_count() == 0


def test_cleared_pool_makes_a_lease_rebind_its_dead_socket_without_error() -> None:
    """The same, when the server closed that socket (a restart): the request quietly binds
    a new one."""
    executor, pool, _ = _leases()
    table = executor.requests
    table.start()
    s = _operation(executor, pool)
    pool.clear()
    s.dead = True
    t = _operation(executor, pool)
    assert t is not s and s.closed and table.bound_socket(pool) is t
    assert pool.open_count == 1
    table.end()


def test_close_while_leased_counts_each_socket_once() -> None:
    executor, pool, _ = _leases()
    table = executor.requests
    table.start()
    state = table.current()
    s = run(executor.acquire(pool, state))
    pool.close()
    executor.release(pool, s, state)
    table.end()
    assert pool.open_count == 0 and s.closed


def test_pool_and_table_are_not_kept_alive_by_identity_callbacks() -> None:
    import weakref

    executor, pool, _ = _leases()
    executor.requests.start()
    _operation(executor, pool)
    refs = [weakref.ref(pool), weakref.ref(executor.requests)]
    del executor, pool
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_death_while_pool_lock_is_held_leaves_socket_for_next_checkout() -> None:
    """A death callback never blocks (it may run in the gevent hub or inside a GC that
    interrupted the pool's locked section): with the lock taken, the socket is parked."""
    executor, pool, factory = _leases(max_size=1, wait_queue_timeout=5)
    table = executor.requests
    table.start()
    sock = _operation(executor, pool)
    key = table.identity.current()
    with pool._lock:
        table._forget(key)  # what the identity's callback calls
    assert table.count() == 0 and pool._orphans == [sock]
    assert run(pool.checkout()) is sock  # collected by the next checkout
    assert len(factory.made) == 1


def test_thread_keys_are_never_reused() -> None:
    executor, _, _ = _leases()
    identity = executor.requests.identity
    keys = []
    for _ in range(20):
        t = threading.Thread(target=lambda: keys.append(identity.current()))
        t.start()
        t.join()
    assert len(set(keys)) == 20  # distinct objects, even when thread idents repeat


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_keeps_the_lease_and_forgets_the_parents_socket() -> None:
    executor, pool, factory = _leases()
    table = executor.requests
    table.start()
    table.start()
    parent_sock = _operation(executor, pool)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            ok = table.in_request() and table.bound_socket(pool) is None
            child_sock = _operation(executor, pool)
            ok = ok and child_sock is not parent_sock and table.bound_socket(pool) is child_sock
            table.end()
            ok = ok and table.in_request()  # depth two: still in it after one end
            os.write(w, b"ok" if ok else b"bad")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    answer = os.read(r, 10)
    os.close(r)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert table.bound_socket(pool) is parent_sock and not parent_sock.closed


# -- options a single-server connection implements ------------------------------------------


def test_replica_set_name_on_a_plain_connection_is_checked(server: Any) -> None:
    """SecantusDB is a one-member set named 'secantus' (the spec's
    direct_connection_wrong_set_name case: a server of another set is refused)."""
    with Connection(server.uri, replicaSet="secantus", auto_start_request=False) as c:
        assert c.admin.command("ping")["ok"] == 1
    with pytest.raises(ConfigurationError, match="secantus"):
        Connection(server.uri, replicaSet="other", auto_start_request=False)


def test_min_pool_size_is_reached_lazily_without_a_thread(server: Any) -> None:
    threads = threading.active_count()
    with Connection(server.uri, minPoolSize=3, auto_start_request=False) as c:
        c.admin.command("ping")  # after an operation, the pool is topped up in this thread
        assert c.pool.open_count == 3 and c.pool.idle_count() == 3
        assert threading.active_count() == threads


def test_max_idle_time_replaces_an_idle_socket(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()  # the pool's clock: the socket ages when the test says so
    monkeypatch.setattr(pool_module, "_monotonic", clock)
    with Connection(server.uri, maxIdleTimeMS=100, auto_start_request=False) as c:
        first = whoami(c)
        clock.advance(0.09)
        assert whoami(c) == first  # idle for less than maxIdleTimeMS
        clock.advance(0.11)
        assert whoami(c) != first  # the idle socket was closed, not reused
        assert c.pool.open_count == 1
