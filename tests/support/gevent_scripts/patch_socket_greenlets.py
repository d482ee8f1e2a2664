"""gevent with threads: only monkey.patch_socket(), and Connection(use_greenlets=True).

threading is not patched, so the pool keys requests by greenlet itself (GreenletIdentity)
and must never block the thread while a greenlet waits. Real threads may use the same
Connection. Usage: patch_socket_greenlets.py URI [check ...]
"""

from gevent import monkey

monkey.patch_socket()

from functools import partial  # noqa: E402

import _gevent_checks as checks  # noqa: E402

checks.main(
    "patch_socket_greenlets",
    {
        "socket_per_greenlet": partial(checks.check_socket_per_greenlet, use_greenlets=True),
        "request_per_greenlet": partial(checks.check_request_per_greenlet, use_greenlets=True),
        "hub_not_blocked": partial(checks.check_not_blocking_hub_with_ticker, use_greenlets=True),
        "concurrency": partial(checks.check_concurrency, use_greenlets=True),
        "reclamation": partial(checks.check_reclamation, use_greenlets=True),
        "thread_beside_greenlets": partial(
            checks.check_thread_beside_greenlets, use_greenlets=True
        ),
    },
)
