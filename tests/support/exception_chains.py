"""Every exception a test provokes has a finite cause chain.

A logger or an error reporter walks ``__cause__`` and ``__context__`` until it finds None;
an exception that is its own cause (``raise exc from exc``) sends it round forever. The
suite's conftest wraps ``pytest.raises`` with ``checked_raises``, so each exception a test
expects is walked, and a cycle fails the test that provoked it.
"""

from __future__ import annotations

from typing import Any, List, Optional

import pytest

_original_raises = pytest.raises


def cycle_in_chain(exc: BaseException) -> Optional[List[BaseException]]:
    """The exceptions of a cycle reachable from ``exc`` through ``__cause__`` and
    ``__context__`` (None: every path ends). The same exception reached twice by two
    paths (a cause that is also the context) is not a cycle; coming back to one on the
    current path is."""
    path: List[BaseException] = []
    on_path: set[int] = set()
    done: set[int] = set()

    def visit(e: BaseException) -> Optional[List[BaseException]]:
        if id(e) in on_path:
            return path[[id(p) for p in path].index(id(e)) :] + [e]
        if id(e) in done:
            return None
        path.append(e)
        on_path.add(id(e))
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        on_path.discard(id(e))
        done.add(id(e))
        return None

    return visit(exc)


def check_chain(exc: BaseException) -> None:
    cycle = cycle_in_chain(exc)
    if cycle is not None:
        shown = " -> ".join(f"{type(e).__name__}({e})" for e in cycle)
        raise AssertionError(f"the exception's cause chain is a cycle: {shown}")


class _Checked:
    """``pytest.raises(...)`` as a context manager, checking the caught exception's chain."""

    def __init__(self, context: Any) -> None:
        self._context = context

    def __enter__(self) -> Any:
        return self._context.__enter__()

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> Any:
        suppressed = self._context.__exit__(kind, value, traceback)
        if suppressed and value is not None:
            check_chain(value)
        return suppressed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def checked_raises(*args: Any, **kwargs: Any) -> Any:
    result = _original_raises(*args, **kwargs)
    if hasattr(result, "__exit__"):
        return _Checked(result)
    check_chain(result.value)  # the callable form returns the ExceptionInfo itself
    return result
