"""Who is calling, for the asyncio client: the running asyncio Task.

Theory of operation
-------------------
``TaskIdentity`` keys requests by the Task object itself (``asyncio.current_task()``, a
builtin, looked up on every operation), and ``watch`` adds a done-callback to it, so a
Task that finishes inside a request gives its sockets back when it ends, never when the
garbage collector gets to it.

Why the Task and not a context variable: ``asyncio.create_task`` copies the creating
Task's context into the new Task, so a request kept in a ``ContextVar`` would follow a child
Task onto its parent's socket, and two Tasks on one socket interleave their frames. Keyed by
the Task, a child created inside a request is a caller of its own: it starts its own
request under ``auto_start_request`` and is in none otherwise (docs/asyncio.md).

Outside any Task (``asyncio.current_task()`` is None: code run by a bare callback, or no
loop at all) the caller has no identity an operation could run under, so its key is a
``RuntimeError`` raised here; the asyncio client's operations always run inside a Task.
The callback runs in the loop's thread, from the loop (never inside the pool's locked
sections: the asyncio client takes those locks only between awaits).
"""

from __future__ import annotations

import asyncio
from typing import Callable, Hashable

from wireclient.pooling.identity import DeathCallback


def _current_task() -> Hashable:
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("the asyncio client runs its operations inside an asyncio Task")
    return task


def _fast_current_task() -> Callable[[], Hashable]:
    """The running Task as a builtin call, where the interpreter allows it: every operation
    asks. Python 3.12 has ``_asyncio.current_task`` in C; before it, the running loop (C)
    looked up in asyncio's table of current Tasks, chained through ``map`` and ``iter`` so
    that no Python frame is entered. Elsewhere, ``asyncio.current_task``. None (no Task)
    never reaches an operation: every coroutine the asyncio client runs is in a Task."""
    import _asyncio

    current = getattr(_asyncio, "current_task", None)
    if current is not None:
        return current  # type: ignore[no-any-return]
    table = getattr(asyncio.tasks, "_current_tasks", None)
    if isinstance(table, dict):
        get_loop = asyncio.get_running_loop
        return map(table.get, iter(get_loop, None)).__next__
    return _current_task


class TaskIdentity:
    """Identity per asyncio Task (see the module notes)."""

    per_task = True  # the key is the Task itself (events name it: Requests.caller_task)

    def __init__(self) -> None:
        #: The caller's key: the running Task (``Identity.current``).
        self.current: Callable[[], Hashable] = _fast_current_task()
        self._watched: set[int] = set()  # ids of Tasks already watched (alive ones only)

    def watch(self, callback: DeathCallback) -> None:
        task = asyncio.current_task()
        if task is None or id(task) in self._watched:
            return
        key = id(task)
        self._watched.add(key)
        watched = self._watched

        def on_done(done: asyncio.Task[object]) -> None:
            watched.discard(key)
            callback(done)

        task.add_done_callback(on_done)

    def watched_count(self) -> int:
        """How many live Tasks are being watched (for tests and leak checks)."""
        return len(self._watched)


__all__ = ["TaskIdentity"]
