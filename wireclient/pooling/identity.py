"""Who is calling: the identity strategies a Pool keys its requests by.

Theory of operation
-------------------
A pool keeps request state per caller. A strategy answers two questions: ``current()``,
a hashable key for the caller (a thread, or a greenlet), and ``watch(callback)``, which
arranges for ``callback(key)`` to run once when that caller ends, so a request socket held
by a thread or greenlet that died without calling ``end_request`` goes back to the pool.

``ThreadIdentity`` keeps, in a ``threading.local``, a key object (unique per thread, never
reused) and a small sentinel. When the thread ends, Python clears its thread-locals, the
sentinel is collected, and a weakref callback fires with the thread's key. The callback is
handed in by the pool and must not hold the pool alive (the pool passes a function that
holds only a weak reference to itself).

Under ``gevent.monkey.patch_all()`` ``threading.local`` acts per greenlet, so
``ThreadIdentity`` becomes per-greenlet with no option. The name is looked up when the
strategy is built (not when this module is imported), so patching after importing
wireclient but before creating a Connection works.

A death callback may run in awkward places (inside the gevent hub, or in a garbage
collection that interrupts the pool's own locked section), so a callback must never block:
the pool's callback only takes its lock if it is free, and otherwise leaves the socket for
the next checkout to collect.

The strategy is chosen once, when a pool is built; the per-operation path never branches on
``use_greenlets``.
"""

from __future__ import annotations

import sys
import threading
import weakref
from typing import Callable, Dict, Hashable, Optional, Protocol, Tuple

DeathCallback = Callable[[Hashable], None]


class Identity(Protocol):
    """The interface a Pool needs from an identity strategy."""

    def current(self) -> Hashable:
        """A key for the caller, stable for as long as the caller lives."""
        ...

    def watch(self, callback: DeathCallback) -> None:
        """Call ``callback(key)`` once, when the current caller ends. Idempotent per caller."""
        ...


class _Sentinel:
    """A weakref-able object whose death marks the death of its owner thread."""

    __slots__ = ("__weakref__",)


class ThreadKey:
    """The key of one thread: a fresh object per thread, hashed by identity.

    Not ``threading.get_ident()``: idents are reused (under ``gevent.monkey.patch_all`` it is
    the greenlet's id, reused as soon as a greenlet is freed), and a death noticed late must
    never release state that belongs to a newer caller with the same ident.
    """

    __slots__ = ()


class ThreadIdentity:
    """Identity per thread (per greenlet once gevent has patched ``threading``)."""

    def __init__(self) -> None:
        from functools import partial

        # threading.local is looked up now, so a gevent patch made earlier counts. A local
        # subclass runs its __init__ once in each thread that touches it: that gives the
        # thread its key, so the key function needs no Python frame of its own.
        class _KeyLocal(threading.local):
            def __init__(self) -> None:
                self.key = ThreadKey()

        self._local = _KeyLocal()
        # The weakrefs must outlive the sentinels they watch, so we keep them here.
        self._refs: Dict[Hashable, weakref.ReferenceType[_Sentinel]] = {}
        #: The caller's key, a stable ``ThreadKey`` per thread: a builtin callable (every
        #: operation calls it), the ``Identity.current`` of the protocol.
        self.current: Callable[[], Hashable] = partial(getattr, self._local, "key")

    def watch(self, callback: DeathCallback) -> None:
        local = self._local
        if getattr(local, "sentinel", None) is not None:
            return
        key = self.current()
        sentinel = _Sentinel()
        refs = self._refs

        def on_death(ref: weakref.ReferenceType[_Sentinel]) -> None:
            refs.pop(key, None)
            callback(key)

        refs[key] = weakref.ref(sentinel, on_death)
        local.sentinel = sentinel

    def watched_count(self) -> int:
        """How many live callers are being watched (for tests and leak checks)."""
        return len(self._refs)


def gevent_seams() -> Tuple[Optional[Callable[[], int]], Optional[Callable[[float], None]]]:
    """What the pool must do differently when gevent has patched ``socket``.

    1. A gevent socket must stay in the OS thread (the hub) that made it: the real
       thread-ident function, so idle sockets are handed out only within their thread.
    2. With ``socket`` patched but ``threading`` not (``monkey.patch_socket()``), waiting on
       a real Condition would block every greenlet of the thread, including those that
       would give a socket back: waiters poll with ``gevent.sleep`` instead.
    Both are None without gevent. Decided once, when a pool is built.
    """
    if "gevent" not in sys.modules:  # not imported: socket is not patched (nor loaded here)
        return None, None
    import socket

    if "gevent" not in getattr(socket.socket, "__module__", ""):
        return None, None
    import gevent  # imported already: it patched socket
    from gevent.monkey import get_original, is_module_patched

    thread_ident = get_original("_thread", "get_ident")
    sleep = None if is_module_patched("threading") else gevent.sleep
    return thread_ident, sleep


def make_identity(use_greenlets: bool) -> Identity:
    """Build the identity strategy for ``use_greenlets``; raises ConfigurationError if the
    greenlet package is missing."""
    if not use_greenlets:
        return ThreadIdentity()
    from wireclient.errors import ConfigurationError

    try:
        from wireclient.pooling.greenlet_identity import GreenletIdentity
    except ImportError as exc:  # greenlet not installed
        raise ConfigurationError(
            "use_greenlets=True needs the 'greenlet' package (pip install wireclient[greenlet])"
        ) from exc
    return GreenletIdentity()
