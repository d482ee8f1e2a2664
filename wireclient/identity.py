"""Who is calling: the identity strategies a Pool keys its requests by.

Theory of operation
-------------------
A pool keeps request state per caller. A strategy answers two questions: ``current()``,
a hashable key for the caller (a thread, or a greenlet), and ``watch(callback)``, which
arranges for ``callback(key)`` to run once when that caller ends, so a request socket held
by a thread or greenlet that died without calling ``end_request`` goes back to the pool.

``ThreadIdentity`` stores a small sentinel object in a ``threading.local``. When the thread
ends, Python clears its thread-locals, the sentinel is collected, and a weakref callback
fires with the thread's key. The callback is handed in by the pool and must not hold the
pool alive (the pool passes a function that holds only a weak reference to itself).

Under ``gevent.monkey.patch_all()`` ``threading.local`` and ``threading.get_ident`` act per
greenlet, so ``ThreadIdentity`` becomes per-greenlet with no option. Both names are looked
up when the strategy is built (not when this module is imported), so patching after importing
wireclient but before creating a Connection works.

The strategy is chosen once, when a pool is built; the per-operation path never branches on
``use_greenlets``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Dict, Hashable, Protocol

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


class ThreadIdentity:
    """Identity per thread (per greenlet once gevent has patched ``threading``)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._get_ident: Callable[[], int] = threading.get_ident  # looked up once, patch-aware
        # The weakrefs must outlive the sentinels they watch, so we keep them here.
        self._refs: Dict[Hashable, "weakref.ReferenceType[_Sentinel]"] = {}

    def current(self) -> Hashable:
        return self._get_ident()

    def watch(self, callback: DeathCallback) -> None:
        if getattr(self._local, "sentinel", None) is not None:
            return
        key = self.current()
        sentinel = _Sentinel()
        refs = self._refs

        def on_death(ref: "weakref.ReferenceType[_Sentinel]") -> None:
            if refs.get(key) is ref:
                del refs[key]
            callback(key)

        refs[key] = weakref.ref(sentinel, on_death)
        self._local.sentinel = sentinel

    def watched_count(self) -> int:
        """How many live callers are being watched (for tests and leak checks)."""
        return len(self._refs)


def make_identity(use_greenlets: bool) -> Identity:
    """Build the identity strategy for ``use_greenlets``; raises ConfigurationError if the
    greenlet package is missing."""
    if not use_greenlets:
        return ThreadIdentity()
    from wireclient.errors import ConfigurationError

    try:
        from wireclient.greenlet_identity import GreenletIdentity
    except ImportError as exc:  # greenlet not installed
        raise ConfigurationError(
            "use_greenlets=True needs the 'greenlet' package (pip install wireclient[greenlet])"
        ) from exc
    return GreenletIdentity()
