"""One at-fork hook for every object that must reset itself in a forked child.

The child of ``os.fork()`` inherits the parent's sockets, locks held by threads that do not
exist in the child, and background tasks that were not copied. Pools, request tables and
replica-set monitors register here (weakly: registering keeps nothing alive) and their
``_after_fork()`` runs in the child, right after the fork, in the order they registered.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

_registered: weakref.WeakSet[Any] = weakref.WeakSet()


def reset_in_child(obj: Any) -> None:
    """Call ``obj._after_fork()`` in the child of every later ``os.fork()``."""
    _registered.add(obj)


def forget(obj: Any) -> None:
    """Undo ``reset_in_child``."""
    _registered.discard(obj)


def registered() -> list[Any]:
    """What is registered now (for tests and diagnostics)."""
    return list(_registered)


def _after_fork_in_child() -> None:
    for obj in list(_registered):
        obj._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
