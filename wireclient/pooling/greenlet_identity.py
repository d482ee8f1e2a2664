"""Identity per greenlet: the strategy a Pool uses when built with ``use_greenlets=True``.

Theory of operation
-------------------
The caller is ``greenlet.getcurrent()``. Its key is a small ``GreenletKey`` object made the
first time the greenlet asks, never ``id(greenlet)``: an id is reused as soon as a dead
greenlet's memory is, and a death callback carrying a bare id could then release state that
belongs to a new greenlet at the same address. A key is a fresh object, compares by identity,
and holds no reference to its greenlet, so a late callback can only ever name its own caller.

Bookkeeping is one dict, ``id(greenlet) -> _Entry``. An entry holds the key and a *weak*
reference to the greenlet, never a strong one, so watching a greenlet does not keep it alive.
The id is safe as a dict key here (and only here) because of when entries leave: every path
that removes an entry runs while the old greenlet is still allocated (inside the weakref
callback, during its deallocation; in a gevent link, which is handed the greenlet; in
``reap()``, which holds it), so no new greenlet can own that id yet. ``current()`` also
checks that the entry's weakref still points at the caller.

Death is noticed in up to three ways; whichever comes first delivers ``callback(key)``, once:

* **gevent ``Greenlet``** (anything with ``rawlink``): a link, run by the hub soon after the
  greenlet finishes, even if the program still holds the Greenlet object (as ``joinall``
  lists do).
* **every greenlet** (raw greenlets, the main greenlet of each thread, gevent's raw
  greenlets): the weakref's callback, run when the greenlet is deallocated. A finished raw
  greenlet is freed as soon as it is unreferenced; the main greenlet of a thread is freed when
  the thread ends.
* **``reap()``**: a finished raw greenlet the program still references is not freed, so it
  keeps its request until it is; ``reap()`` looks for watched greenlets whose ``dead`` flag is
  set (a dead greenlet can never run again) and delivers their deaths. A pool may call it
  when it runs out of sockets, outside its own lock.

Where callbacks run. A death is noticed in awkward places: gevent runs links inside the hub,
where nothing may block (taking a contended gevent lock there raises BlockingSwitchOutError),
and a weakref fires in whatever code drops the last reference (gevent drops finished greenlets
in the hub; a garbage collection can run inside the pool's own locked section). So when the
caller noticing the death is the gevent hub, or a greenlet whose parent is the hub, the
callback is not run there but handed to a fresh greenlet (``gevent.spawn_raw``), which runs it
on the hub's next turn and may block on the pool's lock like any other greenlet. Otherwise
(threads' main greenlets, raw greenlets outside gevent) it runs at once, in the caller's
context: it should still be quick and must not need a lock that context may already
hold. Exceptions from deferred or weakref-run callbacks are reported by gevent / Python and
otherwise ignored.

This module is imported only by ``wireclient.pooling.identity.make_identity(use_greenlets=True)``;
importing wireclient never imports greenlet. gevent itself is never imported: a gevent
``Greenlet`` is recognised by its ``rawlink`` method.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Callable, Dict, Hashable, List, Optional

from greenlet import getcurrent

__all__ = ["GreenletIdentity", "GreenletKey"]

DeathCallback = Callable[[Hashable], None]


class GreenletKey:
    """The key of one greenlet: unique among all greenlets ever seen, hashed by identity.

    It holds no reference to the greenlet; ``gid`` (the greenlet's id at the time) is for
    ``repr`` and debugging only.
    """

    __slots__ = ("gid", "__weakref__")

    def __init__(self, gid: int) -> None:
        self.gid = gid

    def __repr__(self) -> str:
        return f"<GreenletKey greenlet=0x{self.gid:x} at 0x{id(self):x}>"


class _Entry:
    """What we know about one live greenlet. Never references the greenlet strongly."""

    __slots__ = ("gid", "key", "ref", "callback", "_once")

    def __init__(self, gid: int, key: GreenletKey) -> None:
        self.gid = gid
        self.key = key
        self.ref: weakref.ReferenceType[Any]  # set right after construction
        self.callback: Optional[DeathCallback] = None
        # A one-shot token: list.pop() is atomic, so exactly one death path wins it.
        self._once: List[bool] = [True]

    def claim(self) -> bool:
        """True for the first caller only: the one that delivers the death."""
        try:
            self._once.pop()
        except IndexError:
            return False
        return True


class GreenletIdentity:
    """Identity per greenlet, with death noticed by gevent links, weakrefs and ``reap()``."""

    def __init__(self) -> None:
        self._getcurrent: Callable[[], Any] = getcurrent
        self._entries: Dict[int, _Entry] = {}

    # -- the Identity protocol -----------------------------------------------------------

    def current(self) -> Hashable:
        """The caller's key: the same object for as long as the greenlet lives."""
        return self._entry_for(self._getcurrent()).key

    def watch(self, callback: DeathCallback) -> None:
        """Arrange for ``callback(key)`` to run once, when the current greenlet ends.

        Idempotent per greenlet: while a callback is registered for the caller, later calls
        do nothing (as with ``ThreadIdentity``, the first callback wins).
        """
        g = self._getcurrent()
        entry = self._entry_for(g)
        if entry.callback is not None:
            return
        entry.callback = callback
        rawlink = getattr(g, "rawlink", None)
        if rawlink is not None:
            entries = self._entries

            def on_link(greenlet: Any) -> None:
                _deliver(entries, entry)

            rawlink(on_link)

    # -- extras ----------------------------------------------------------------------------

    def reap(self) -> int:
        """Deliver the deaths of watched greenlets that have finished but are still referenced
        elsewhere (so neither a link nor the weakref has fired), and forget unwatched dead
        ones. Returns how many deaths it delivered (callbacks run, or scheduled when called
        from a greenlet the gevent hub runs). Call it outside any lock a callback takes.
        """
        delivered = 0
        first_error: Optional[Exception] = None
        for entry in list(self._entries.values()):
            g = entry.ref()
            if g is None or not g.dead:
                continue
            try:
                if _deliver(self._entries, entry):
                    delivered += 1
            except Exception as exc:  # deliver every death, then report the first failure
                if first_error is None:
                    first_error = exc
            del g
        if first_error is not None:
            raise first_error
        return delivered

    def watched_count(self) -> int:
        """How many live greenlets have a death callback pending (for tests and leak checks)."""
        return sum(1 for e in list(self._entries.values()) if e.callback is not None)

    def tracked_count(self) -> int:
        """How many greenlets this identity holds any state for (for tests and leak checks)."""
        return len(self._entries)

    # -- internals -------------------------------------------------------------------------

    def _entry_for(self, g: Any) -> _Entry:
        gid = id(g)
        entry = self._entries.get(gid)
        if entry is not None and entry.ref() is g:
            return entry
        entry = _Entry(gid, GreenletKey(gid))
        entries = self._entries

        def on_collected(ref: weakref.ReferenceType[Any]) -> None:
            _deliver(entries, entry)

        entry.ref = weakref.ref(g, on_collected)
        entries[gid] = entry
        return entry


def _deliver(entries: Dict[int, _Entry], entry: _Entry) -> bool:
    """Forget ``entry`` and, the first time only, run its death callback. Every caller holds
    (or is inside the deallocation of) the greenlet, so ``entry.gid`` cannot have been reused."""
    if not entry.claim():
        return False
    if entries.get(entry.gid) is entry:
        entries.pop(entry.gid, None)
    callback, entry.callback = entry.callback, None
    if callback is None:
        return False
    if not _defer_to_gevent(callback, entry.key):
        callback(entry.key)
    return True


def _defer_to_gevent(callback: DeathCallback, key: GreenletKey) -> bool:
    """When running in the gevent hub, or in a greenlet the hub runs, hand ``callback(key)``
    to a fresh greenlet instead (see "Where callbacks run"). gevent is never imported here:
    if the program has not imported it, there is no hub to worry about."""
    hub_module = sys.modules.get("gevent.hub")
    if hub_module is None:
        return False
    hub_type = hub_module.Hub
    current = getcurrent()
    if not (isinstance(current, hub_type) or isinstance(current.parent, hub_type)):
        return False
    hub_module.spawn_raw(callback, key)
    return True
