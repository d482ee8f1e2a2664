"""gevent without threads, patched late: wireclient is imported before monkey.patch_all().

Connections made after patching must still be per greenlet and must not block the hub, so
wireclient must not have captured the unpatched socket, threading or time functions at
import time. gevent's own warnings about modules imported before patching are recorded.
Usage: patch_all_after.py URI [check ...]
"""

import warnings

import wireclient  # noqa: F401  (imported before patching, on purpose)
from wireclient import Connection  # noqa: F401

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from gevent import monkey

    monkey.patch_all()

import _gevent_checks as checks  # noqa: E402

checks.RESULTS["patch_warnings"] = [str(w.message).splitlines()[0] for w in caught]
for w in caught:
    print("patch warning:", str(w.message).splitlines()[0], flush=True)

checks.main(
    "patch_all_after",
    {
        "socket_per_greenlet": checks.check_socket_per_greenlet,
        "request_per_greenlet": checks.check_request_per_greenlet,
        "reclamation": checks.check_reclamation,
        "hub_not_blocked": checks.check_not_blocking_hub_with_ticker,
        "concurrency": checks.check_concurrency,
    },
)
