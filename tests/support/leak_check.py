"""``no_leaked_socket()``: fail when a socket is left for the garbage collector to close.

CPython warns (``ResourceWarning: unclosed <socket...>``) when it finalizes a socket that
is still open. Inside the block every such warning is recorded (``-W error::ResourceWarning``
cannot make a finalizer's warning fail a test: it is raised where nobody can catch it);
at the end of the block the garbage collector runs, and any recorded warning fails the
test. Drop every reference to what the block raised (``del`` the ``ExceptionInfo`` and
any future) before the block ends, so its traceback cannot keep a leaked socket alive. The
collector also runs before the block, so garbage from before it is not blamed on it.
"""

from __future__ import annotations

import gc
import warnings
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def no_leaked_socket() -> Iterator[None]:
    # Garbage made before the block is collected before it: a socket another test left in a
    # reference cycle is not blamed on this one because the collector happened to find it
    # here (when that happens depends on allocations, and so on a busy machine's timing).
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, f"left for the garbage collector: {leaks}"
