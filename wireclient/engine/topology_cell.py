"""``Topology``: the one mutable cell that holds a replica set's current ``TopologyView``.

Theory of operation
-------------------
Views (``wireclient.sdam.topology``) are immutable: applying what a member said builds a new
one. Two kinds of writers produce those descriptions at the same time: the monitor, after
each check, and operations that meet a network error or a "not primary" reply. Each writer
calls ``Topology.apply`` (or ``mark_unknown``), which applies the change to the *current*
view under a lock and swaps the result in as a whole, so no update is lost when two writers
race. Readers take ``topology.view`` once, with no lock, and work on that snapshot.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:  # the names are needed for types only
    from wireclient.rules.uri import Address
    from wireclient.sdam.server_rules import TopologyVersion
    from wireclient.sdam.topology import ServerDescription, TopologyView

ViewListener = Callable[["TopologyView", "TopologyView"], None]


class Topology:
    """The one mutable cell holding the current ``TopologyView``.

    ``apply`` and ``mark_unknown`` update the current view under a lock and swap it as a whole;
    ``view`` reads the current snapshot without a lock. ``listener(old, new)``, if given, is
    called (outside the lock) after every change, e.g. to open pools for new members and close
    those of removed ones. It must not hold a strong reference to the monitor's owner if the
    owner relies on being garbage-collected.
    """

    def __init__(self, view: TopologyView, listener: Optional[ViewListener] = None) -> None:
        self._view = view
        self._lock = threading.Lock()
        self._listener = listener

    @property
    def view(self) -> TopologyView:
        return self._view

    def apply(self, description: ServerDescription) -> TopologyView:
        return self._update(lambda view: view.apply(description))

    def mark_unknown(
        self, address: Address, error: str, topology_version: Optional[TopologyVersion] = None
    ) -> TopologyView:
        """See ``TopologyView.mark_unknown``; the view is unchanged when the error is stale."""
        return self._update(lambda view: view.mark_unknown(address, error, topology_version))

    def _update(self, change: Callable[[TopologyView], TopologyView]) -> TopologyView:
        with self._lock:
            old = self._view
            new = self._view = change(old)
        if new is not old and self._listener is not None:
            self._listener(old, new)
        return new

    def reset_after_fork(self) -> None:
        """A fresh lock in a forked child (another thread may have held it at fork time)."""
        self._lock = threading.Lock()


__all__ = ["Topology", "ViewListener"]
