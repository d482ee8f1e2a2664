"""Requests: which callers are in a request, and the sockets their requests hold.

Theory of operation
-------------------
This module is the one place request state lives, for a single server and for a replica set
alike. ``Requests`` maps a caller's identity key (a thread, or a greenlet: the strategy is
chosen once, at construction) to a ``RequestState``. A caller has one of three states:

- no request: no entry;
- in a request, no socket yet: an entry whose ``sockets`` is empty (``start_request``
  takes no socket);
- bound: the entry holds, per pool (so per server), the socket the first operation on that
  server took. Every later operation of the caller on that server uses it.

``count`` is the nesting depth: ``end_request`` at depth one ends the request and gives
every bound socket back to its pool, where any caller can take it. ``pin`` belongs to the
server-selection strategy (a replica set pins a request's non-primary reads to one member).

Whether an operation starts a request by itself (``auto_start_request``) is decided in
``for_operation``, and nowhere else.

A bound socket is checked with its pool before each use (``Pool.usable``): one that broke
or that the server closed is dropped and the request binds a new one, so a request outlives
its sockets. One of an older pool generation (the pool was cleared for another caller's
fault) stays while it is alive: moving would lose read-your-writes for the unacknowledged
writes still queued on it. The pool closes it, rather than pooling it, when the request
ends.

When a caller dies inside a request, the identity strategy calls back (holding only a weak
reference to this table); its sockets go back to their pools without blocking
(``Pool.checkin_from_callback``) and its entry is forgotten.

Fork. In the child of ``os.fork()`` a caller that was in a request is still in it, with the
same depth; the sockets it held belonged to the parent and are forgotten (the pools close the
child's copies), so its next operation binds a new one.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Optional

from wireclient.pooling import forking
from wireclient.pooling.identity import Identity

if TYPE_CHECKING:
    from wireclient.monitoring import EventPublisher
    from wireclient.pooling.pool import Pool
    from wireclient.transport.network import SocketInfo


class RequestState:
    """One caller's request: nesting depth, a socket per pool, the strategy's read pin."""

    __slots__ = ("count", "sockets", "pin")

    def __init__(self) -> None:
        self.count = 1
        self.sockets: Dict[Pool, SocketInfo] = {}
        self.pin: Any = None


def _death_callback(table_ref: weakref.ReferenceType[Requests]) -> Callable[[Hashable], None]:
    def on_death(key: Hashable) -> None:
        table = table_ref()
        if table is not None:
            table._forget(key)

    return on_death


_NEVER = object()  # a sentinel no key function returns


class Requests:
    """Every caller's request state, keyed by the identity strategy."""

    def __init__(self, identity: Identity, auto_start: bool) -> None:
        self.identity = identity
        self.auto_start = auto_start
        self._current = identity.current
        self._states: Dict[Hashable, RequestState] = {}  # never rebound: see ``current``
        #: The caller's request, or None: ``self._states.get(self._current())`` as a builtin
        #: (``iter(f, sentinel)`` calls the key function on each ``next``, never meeting its
        #: sentinel; ``map`` looks the key up), so the operation path enters no Python frame
        #: here for a caller already in a request.
        self.current: Callable[[], Optional[RequestState]] = map(
            self._states.get, iter(self._current, _NEVER)
        ).__next__
        self._on_death = _death_callback(weakref.ref(self))
        self.events: Optional[EventPublisher] = None  # set by the owner: request events
        forking.reset_in_child(self)

    # -- the caller's request -----------------------------------------------------------

    def for_operation(self) -> Optional[RequestState]:
        """The caller's request for an operation about to run, starting one first when
        ``auto_start`` says so."""
        state = self._states.get(self._current())  # current(), inlined: every operation
        if state is None and self.auto_start:
            state = self._begin()
        return state

    def start(self) -> RequestState:
        state = self.current()
        if state is None:
            return self._begin()
        state.count += 1
        return state

    def _begin(self) -> RequestState:
        state = RequestState()
        key = self._current()
        self._states[key] = state
        self.identity.watch(self._on_death)
        if self.events is not None and self.events.pool is not None:
            self._publish("request_started", key, dead=False)
        return state

    def _publish(self, method: str, key: Hashable, dead: bool) -> None:
        from wireclient.monitoring import Caller, RequestEvent

        assert self.events is not None
        caller = None if dead else Caller(method == "request_started", self.caller_task())
        self.events.publish(self.events.pool, method, RequestEvent(key, caller))

    def end(self) -> None:
        """End one level of the caller's request; at depth zero give its sockets back."""
        key = self._current()
        state = self._states.get(key)
        if state is None:
            return
        state.count -= 1
        if state.count <= 0:
            del self._states[key]
            self._release(state)
            if self.events is not None and self.events.pool is not None:
                self._publish("request_ended", key, dead=False)

    def caller_task(self) -> Any:
        """The caller's asyncio Task, when callers are Tasks (the asyncio client); else
        None (for events: ``monitoring.Caller``)."""
        return self._current() if getattr(self.identity, "per_task", False) else None

    def in_request(self) -> bool:
        return self.current() is not None

    def count(self) -> int:
        """How many callers are in a request."""
        return len(self._states)

    # -- sockets ------------------------------------------------------------------------

    def bound_socket(self, pool: Pool) -> Optional[SocketInfo]:
        """The caller's request socket on ``pool``, if any (for tests and diagnostics)."""
        state = self.current()
        return state.sockets.get(pool) if state is not None else None

    def close_own(self) -> None:
        """Give back the caller's own bound sockets now (``close()`` from a thread in a
        request: the request stays, its next operation binds a new socket)."""
        state = self.current()
        if state is not None:
            sockets, state.sockets = state.sockets, {}
            for pool, sock in sockets.items():
                pool.return_socket(sock)

    def _release(self, state: RequestState) -> None:
        sockets, state.sockets = state.sockets, {}
        for pool, sock in sockets.items():
            pool.return_socket(sock)

    def _forget(self, key: Hashable) -> None:
        """The caller ``key`` died: end its request and give its sockets back, never
        blocking (this may run in the gevent hub or inside a garbage collection)."""
        state = self._states.pop(key, None)
        if state is None:
            return
        sockets, state.sockets = state.sockets, {}
        for pool, sock in sockets.items():
            pool.checkin_from_callback(sock)
        if self.events is not None and self.events.pool is not None:
            self._publish("request_ended", key, dead=True)

    def _after_fork(self) -> None:
        """In a forked child: keep every request and its depth, forget the parent's sockets
        (the pools closed the child's copies of them). Runs from an at-fork hook."""
        for state in self._states.values():
            state.sockets = {}

    def sockets(self) -> List[SocketInfo]:
        """Every socket bound to a request now (for diagnostics)."""
        return [sock for state in list(self._states.values()) for sock in state.sockets.values()]
