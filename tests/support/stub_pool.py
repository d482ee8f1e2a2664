"""A Pool with stand-in sockets (its factory seam): the pool's unit tests, its model check and
the request table's tests drive it without a server."""

from __future__ import annotations

from typing import Any, List

from waiting import wait_until

from wireclient.pooling.pool import Pool
from wireclient.transport.steps import Steps


class StubSocket:
    """The parts of SocketInfo the pool touches."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.dead = False
        self.connection_id = 1000 + n  # "the server's" number, as a handshake gives it
        self.local_address = ("127.0.0.1", 40000 + n)

    def is_dead(self) -> bool:
        return self.dead or self.closed

    def close(self) -> None:
        self.closed = True


class Factory:
    def __init__(self) -> None:
        self.made: List[StubSocket] = []
        self.fail = False

    def __call__(self) -> Steps[Any]:
        """The pool's connector: a step (it needs no I/O) making a stand-in socket."""
        if self.fail:
            raise OSError("refused")
        sock = StubSocket(len(self.made))
        self.made.append(sock)
        return sock
        yield  # makes this a generator


def make_pool(**kwargs: Any) -> tuple[Pool, Factory]:
    factory = Factory()
    return Pool(("h", 1), factory, **kwargs), factory


def wait_for_waiters(pool: Pool, n: int) -> None:
    """Return once ``n`` threads are queued in ``pool``'s wait queue (``stats()["waiting"]``;
    a waiter joins the queue under the pool's lock and lets go of it only to sleep, so once
    counted it is waiting as far as any other pool call can tell)."""
    assert wait_until(lambda: pool.stats()["waiting"] >= n), f"{n} waiters never queued"


class FakeClock:
    """A monotonic clock the test moves by hand: ``monkeypatch.setattr(pool_module,
    "_monotonic", clock)`` then ``clock.advance(seconds)``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
