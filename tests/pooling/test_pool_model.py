"""A rule-based model check of the pool, the request table and the operation path's leases.

Hypothesis drives a real ``Pool`` (stand-in sockets through its factory seam), a real
``Requests`` table and a real ``Executor``'s ``acquire``/``release`` from a few simulated
callers, in any order: requests started (nested) and ended, operations begun and finished
(several in flight at once, one per caller), operations whose socket breaks, callers that
die, server faults (``pool.clear()``: a new generation), the server closing a socket under
us, ``close()``, and ``fork`` (simulated: the pool's and the table's after-fork paths). A
small model of design section 3 (items 1-11) and of the generation rules predicts which
socket each operation gets, and after every step the real objects must agree with it:

- outside a request, operations in flight never share a socket; a socket given back is the
  next one handed out (the idle list is LIFO);
- inside a request every operation uses the request's socket until it breaks, the server
  closes it, the request ends, or ``close()`` outdates it: a clear for a fault elsewhere
  leaves the request its live socket of the old generation, closed when the request ends;
  ``in_request`` and the depth follow the nesting counts;
- an ended request, or a dead caller's, gives its socket back to the pool;
- ``open_count`` never exceeds ``max_size`` and equals the sockets not closed; no closed
  socket is ever handed out, and no socket of an old generation except to the request that
  holds it; idle sockets are all open, current and held by no one.

The callers are keys of an identity whose ``current()`` the test sets, so a run depends on
its steps alone and needs no threads; a caller that dies comes back as a new key (thread
keys are never reused). Fixed scenarios at the end run the same machine through the
sequences that matter most, so those are exercised on every run, not only when Hypothesis
happens to draw them.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from stub_pool import Factory

from wireclient.engine.executor import Executor, SingleServer
from wireclient.errors import PoolTimeout
from wireclient.pooling.pool import Pool
from wireclient.pooling.requests import Requests, RequestState
from wireclient.transport.blocking import run

CALLERS = 3
MAX_SIZE = 2  # fewer sockets than callers: some of them meet a full pool


class ControlledIdentity:
    """An Identity (wireclient/pooling/identity.py) whose caller is whoever the test says."""

    def __init__(self) -> None:
        self.key: Hashable = None
        self.callbacks: Dict[Hashable, Callable[[Hashable], None]] = {}

    def current(self) -> Hashable:
        return self.key

    def watch(self, callback: Callable[[Hashable], None]) -> None:
        self.callbacks.setdefault(self.key, callback)  # once per caller, like threads

    def die(self, key: Hashable) -> None:
        """The caller ``key`` ended: its death callback runs (if it ever watched)."""
        callback = self.callbacks.pop(key, None)
        if callback is not None:
            callback(key)


class Caller:
    """The model of one caller: its request depth, the socket its request holds, and the
    operation it has in flight (the socket, the request state it ran in)."""

    def __init__(self) -> None:
        self.key = object()
        self.depth = 0
        self.bound: Optional[Any] = None
        self.op: Optional[Tuple[Any, Optional[RequestState]]] = None


class PoolModel(RuleBasedStateMachine):
    @initialize(auto_start=st.booleans())
    def build(self, auto_start: bool) -> None:
        self.factory = Factory()
        # check_interval=-1: every reuse polls the socket, however short its idle time (so
        # no clock is involved); wait_queue_timeout=0: who would wait gets PoolTimeout at once.
        self.pool = Pool(
            ("h", 1), self.factory, max_size=MAX_SIZE, wait_queue_timeout=0, check_interval=-1
        )
        self.identity = ControlledIdentity()
        self.table = Requests(self.identity, auto_start=auto_start)
        self.executor = Executor(SingleServer(self.pool), self.table)
        self.auto_start = auto_start
        self.callers = [Caller() for _ in range(CALLERS)]
        # The model of the pool: its generation, the sockets it owns, its idle LIFO.
        self.generation = 0
        self.request_floor = 0  # raised by close(): older request sockets are replaced
        self.generation_of: Dict[Any, int] = {}
        self.owned: List[Any] = []
        self.idle: List[Any] = []

    def act_as(self, caller: Caller) -> None:
        self.identity.key = caller.key

    # -- the model's pool ---------------------------------------------------------------

    def forget(self, sock: Any) -> None:
        """The pool closes ``sock`` and forgets it."""
        if sock in self.owned:
            self.owned.remove(sock)
        if sock in self.idle:
            self.idle.remove(sock)

    def current(self, sock: Any) -> bool:
        """Whether a request may go on with its bound ``sock``: alive, and of a generation no
        ``close()`` outdated (a clear for a fault does not)."""
        return (
            sock in self.owned
            and self.generation_of[sock] >= self.request_floor
            and not sock.closed
            and not sock.dead
        )

    def expect_checkout(self) -> Optional[Any]:
        """What ``checkout`` hands out: the top healthy idle socket, else a new one, else
        None (PoolTimeout). Dead idle sockets met on the way are dropped."""
        while self.idle:
            sock = self.idle.pop()
            if sock.dead:
                self.forget(sock)
                continue
            return sock
        if len(self.owned) < MAX_SIZE:
            return "new"
        return None

    def expect_checkin(self, sock: Any) -> None:
        """``return_socket``: kept idle if the pool owns it, open, and of this generation."""
        if sock in self.owned and not sock.closed and self.generation_of[sock] == self.generation:
            self.idle.append(sock)
        else:
            self.forget(sock)

    def release_request(self, caller: Caller) -> None:
        bound, caller.bound = caller.bound, None
        if bound is not None:
            self.expect_checkin(bound)

    # -- rules --------------------------------------------------------------------------
    # A caller does one thing at a time: only a caller with no operation in flight starts,
    # ends, operates, closes or dies; ``n`` picks one among those the rule applies to.

    def free(self, n: int) -> Caller:
        free = [c for c in self.callers if c.op is None]
        return free[n % len(free)]

    def busy(self, n: int) -> Caller:
        busy = [c for c in self.callers if c.op is not None]
        return busy[n % len(busy)]

    def any_free(self) -> bool:
        return any(c.op is None for c in self.callers)

    def any_busy(self) -> bool:
        return any(c.op is not None for c in self.callers)

    @precondition(any_free)
    @rule(n=st.integers(0, CALLERS - 1))
    def start_request(self, n: int) -> None:
        caller = self.free(n)
        self.act_as(caller)
        self.table.start()
        caller.depth += 1

    @precondition(any_free)
    @rule(n=st.integers(0, CALLERS - 1))
    def end_request(self, n: int) -> None:
        caller = self.free(n)
        self.act_as(caller)
        self.table.end()
        if caller.depth > 0:  # extra ends do nothing
            caller.depth -= 1
            if caller.depth == 0:
                self.release_request(caller)

    @precondition(any_free)
    @rule(n=st.integers(0, CALLERS - 1))
    def begin_operation(self, n: int) -> None:
        """Acquire: the operation stays in flight while other callers act."""
        self.begin(self.free(n))

    @precondition(any_free)
    @rule(n=st.integers(0, CALLERS - 1), breaks=st.booleans())
    def operation(self, n: int, breaks: bool) -> None:
        """One whole operation (acquire, then release), its socket perhaps broken on the way."""
        caller = self.free(n)
        if self.begin(caller):
            if breaks:
                caller.op[0].close()  # type: ignore[index]
            self.finish(caller)

    @precondition(any_busy)
    @rule(n=st.integers(0, CALLERS - 1), breaks=st.booleans())
    def end_operation(self, n: int, breaks: bool) -> None:
        """Release an operation in flight; a broken one's socket was closed by the network
        layer first (it closes a socket on any error mid-conversation)."""
        caller = self.busy(n)
        if breaks:
            caller.op[0].close()  # type: ignore[index]
        self.finish(caller)

    def begin(self, caller: Caller) -> bool:
        """``Executor.acquire`` for ``caller``, checked against the model; False when the
        model (and the pool) said PoolTimeout."""
        self.act_as(caller)
        if caller.depth == 0 and self.auto_start:
            caller.depth = 1
        in_request = caller.depth > 0
        expected: Optional[Any] = None
        if in_request and caller.bound is not None:
            if self.current(caller.bound):
                expected = caller.bound
            else:  # broken, stale or closed by the server: dropped, a new one is bound
                self.forget(caller.bound)
                caller.bound = None
        if expected is None:
            expected = self.expect_checkout()
        state = self.table.for_operation()
        assert (state is not None) is in_request
        if expected is None:
            try:
                run(self.executor.acquire(self.pool, state))
            except PoolTimeout:
                return False
            raise AssertionError("a socket was handed out beyond max_size")
        made = len(self.factory.made)
        sock = run(self.executor.acquire(self.pool, state))
        if expected == "new":
            assert len(self.factory.made) == made + 1 and sock is self.factory.made[-1]
            self.owned.append(sock)
            self.generation_of[sock] = self.generation
        else:
            assert sock is expected, "not the socket the model expected"
        assert not sock.closed, "a closed socket was handed out"
        if sock is not caller.bound:
            assert self.pool.generation_of(sock) == self.pool.generation, "an old socket"
        if in_request:
            caller.bound = sock
        caller.op = (sock, state)
        return True

    def finish(self, caller: Caller) -> None:
        """``Executor.release``: a request keeps its socket unless it broke."""
        sock, state = caller.op  # type: ignore[misc]
        caller.op = None
        self.executor.release(self.pool, sock, state)
        if state is not None and caller.bound is sock and caller.depth > 0:
            if sock.closed:  # broken: dropped, the request binds a new one next time
                self.forget(sock)
                caller.bound = None
            return
        self.expect_checkin(sock)

    @precondition(any_free)
    @rule(n=st.integers(0, CALLERS - 1))
    def caller_dies(self, n: int) -> None:
        """A thread ends (in a request or not): its identity's death callback runs."""
        caller = self.free(n)
        self.identity.die(caller.key)
        caller.depth = 0
        self.release_request(caller)
        self.callers[self.callers.index(caller)] = Caller()  # a new thread: a new key

    @rule(n=st.integers(0, 50))
    def server_closes_a_socket(self, n: int) -> None:
        """A server restart or idle timeout: the peer is gone, which a poll sees."""
        alive = [s for s in self.factory.made if not s.closed and not s.dead]
        if alive:
            alive[n % len(alive)].dead = True

    @rule()
    def server_fault(self) -> None:
        """What the error handler does on a network error: clear the pool."""
        assert self.pool.clear() == self.generation + 1
        self.cleared()

    def cleared(self) -> None:
        """The model of ``Pool.clear()``: a new generation, the idle sockets closed now (the
        lent ones when they come back, or when their request next uses them)."""
        self.generation += 1
        for sock in list(self.idle):
            self.forget(sock)

    @precondition(any_free)
    @rule(n=st.integers(0, CALLERS - 1))
    def close(self, n: int) -> None:
        """``Connection.close()`` by one caller: the pool is cleared, the caller's own request
        sockets go now (its request stays), the others' when they come back."""
        caller = self.free(n)
        self.act_as(caller)
        self.executor.close()
        self.cleared()
        self.request_floor = self.generation
        self.release_request(caller)

    @rule()
    def fork(self) -> None:
        """In the child no socket of the parent's is used; requests keep their depth."""
        self.pool._after_fork()
        self.table._after_fork()
        for caller in self.callers:  # the parent's sockets are forgotten at once
            self.act_as(caller)
            assert self.table.bound_socket(self.pool) is None
            caller.bound = None
        self.generation += 1
        self.owned, self.idle = [], []

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def sockets_are_counted(self) -> None:
        pool = self.pool
        assert pool.open_count <= MAX_SIZE
        not_closed = [s for s in self.factory.made if not s.closed]
        assert pool.open_count == len(not_closed) == len(self.owned)
        assert set(map(id, not_closed)) == set(map(id, self.owned))

    @invariant()
    def idle_sockets_are_open_current_and_free(self) -> None:
        idle = self.pool._idle
        assert idle == self.idle, "the idle list is not the model's (LIFO)"
        held = {id(c.op[0]) for c in self.callers if c.op is not None}
        held |= {id(c.bound) for c in self.callers if c.bound is not None}
        for sock in idle:
            assert not sock.closed and self.pool.generation_of(sock) == self.pool.generation
            assert id(sock) not in held, "an idle socket is also in use"

    @invariant()
    def no_two_callers_share_a_socket(self) -> None:
        in_use: List[int] = []
        for caller in self.callers:
            mine = {id(c) for c in (caller.bound, caller.op and caller.op[0]) if c}
            in_use.extend(mine)
        assert len(in_use) == len(set(in_use)), "two callers hold one socket"

    @invariant()
    def requests_follow_the_model(self) -> None:
        for caller in self.callers:
            self.act_as(caller)
            state = self.table.current()
            assert self.table.in_request() is (caller.depth > 0)
            assert (state.count if state is not None else 0) == caller.depth
            if caller.bound is not None:
                assert self.table.bound_socket(self.pool) is caller.bound
        assert self.table.count() == sum(1 for c in self.callers if c.depth > 0)


PoolModel.TestCase.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestPoolModel = PoolModel.TestCase


# -- fixed scenarios through the same machine: the model's rules, always exercised ----------

INVARIANTS = [
    "sockets_are_counted",
    "idle_sockets_are_open_current_and_free",
    "no_two_callers_share_a_socket",
    "requests_follow_the_model",
]


def run_steps(steps: List[Tuple[str, Dict[str, Any]]], auto_start: bool = False) -> PoolModel:
    """Run ``steps`` (rule name, arguments) on a fresh machine, checking every invariant
    after each, as Hypothesis does."""
    machine = PoolModel()
    machine.build(auto_start=auto_start)
    for name, arguments in steps:
        getattr(machine, name)(**arguments)
        for invariant_name in INVARIANTS:
            getattr(machine, invariant_name)()
    return machine


def test_scenario_a_cleared_pool_leaves_the_request_its_live_socket() -> None:
    m = run_steps(
        [
            ("start_request", {"n": 0}),
            ("operation", {"n": 0, "breaks": False}),
            ("server_fault", {}),
            ("operation", {"n": 0, "breaks": False}),
        ]
    )
    (kept,) = m.factory.made
    assert m.callers[0].bound is kept and not kept.closed
    m.end_request(0)
    assert kept.closed and m.pool.idle_count() == 0  # of an old generation: not pooled


def test_scenario_a_cleared_pool_replaces_the_requests_dead_socket() -> None:
    m = run_steps(
        [
            ("start_request", {"n": 0}),
            ("operation", {"n": 0, "breaks": False}),
            ("server_fault", {}),
            ("server_closes_a_socket", {"n": 0}),
            ("operation", {"n": 0, "breaks": False}),
        ]
    )
    old, new = m.factory.made
    assert old.closed and m.callers[0].bound is new


def test_scenario_close_makes_other_requests_bind_a_new_socket() -> None:
    m = run_steps(
        [
            ("start_request", {"n": 0}),
            ("operation", {"n": 0, "breaks": False}),
            ("close", {"n": 1}),
            ("operation", {"n": 0, "breaks": False}),
        ]
    )
    old, new = m.factory.made
    assert old.closed and m.callers[0].bound is new


def test_scenario_a_socket_the_server_closed_is_replaced_in_the_request() -> None:
    m = run_steps(
        [
            ("operation", {"n": 0, "breaks": False}),
            ("server_closes_a_socket", {"n": 0}),
            ("operation", {"n": 0, "breaks": False}),
        ],
        auto_start=True,
    )
    assert len(m.factory.made) == 2 and m.factory.made[0].closed


def test_scenario_sockets_given_back_are_reused_last_in_first_out() -> None:
    m = run_steps(
        [
            ("begin_operation", {"n": 0}),
            ("begin_operation", {"n": 0}),  # the first free caller: caller 1
            ("end_operation", {"n": 1, "breaks": False}),  # caller 1 gives back first
            ("end_operation", {"n": 0, "breaks": False}),
            ("begin_operation", {"n": 2}),  # caller 2: the socket given back last
        ]
    )
    assert m.callers[2].op is not None and m.callers[2].op[0] is m.factory.made[0]


def test_scenario_a_full_pool_times_out_until_a_dead_callers_socket_comes_back() -> None:
    m = run_steps(
        [
            ("start_request", {"n": 0}),
            ("operation", {"n": 0, "breaks": False}),  # caller 0's request holds socket 0
            ("begin_operation", {"n": 1}),  # caller 1 holds socket 1
            ("operation", {"n": 2, "breaks": False}),  # caller 2 (the third free one): full
            ("caller_dies", {"n": 0}),
            ("operation", {"n": 2, "breaks": False}),
        ]
    )
    assert len(m.factory.made) == 2 and m.pool.idle_count() == 1


def test_scenario_fork_with_operations_in_flight() -> None:
    m = run_steps(
        [
            ("start_request", {"n": 0}),
            ("start_request", {"n": 0}),
            ("begin_operation", {"n": 0}),
            ("begin_operation", {"n": 0}),  # caller 1, outside any request
            ("fork", {}),
            ("end_operation", {"n": 0, "breaks": False}),
            ("end_operation", {"n": 0, "breaks": False}),
            ("operation", {"n": 0, "breaks": False}),
            ("end_request", {"n": 0}),
        ]
    )
    assert m.callers[0].depth == 1 and m.pool.open_count == 1
    assert all(s.closed for s in m.factory.made[:2])
