"""Waiting on a condition instead of sleeping for a guessed time.

A test that waits for something to happen asks ``wait_until(predicate)``: it returns as soon
as the predicate holds, so its deadline (``PATIENCE``, generous on purpose) only costs time
when the test is failing anyway. A test must never depend on the machine being fast: a
sleep that has to be "long enough", or an upper bound on how long an operation took, fails
on a busy machine (issue 20, point 7). An expected timeout is asserted by its error, and at
most by a lower bound (a timeout must not fire early).
"""

from __future__ import annotations

import time
from typing import Callable

# How long a test waits for something that normally happens at once. Only a failing test
# waits this long.
PATIENCE = 30.0


def wait_until(
    predicate: Callable[[], object], timeout: float = PATIENCE, interval: float = 0.005
) -> bool:
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)
