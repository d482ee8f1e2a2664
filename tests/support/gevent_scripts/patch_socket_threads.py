"""gevent with threads: only monkey.patch_socket(), and Connection(use_greenlets=False).

Requests are per OS thread, so greenlets of one thread share that thread's request socket
(the documented trade-off). Outside requests (auto_start_request=False) each operation
checks out its own socket, so greenlets still run concurrently without blocking the hub.
Usage: patch_socket_threads.py URI [check ...]
"""

from gevent import monkey

monkey.patch_socket()

from functools import partial  # noqa: E402

import _gevent_checks as checks  # noqa: E402

checks.main(
    "patch_socket_threads",
    {
        "shared_thread_request": checks.check_greenlets_share_thread_request,
        "hub_not_blocked": partial(checks.check_not_blocking_hub_with_ticker, use_greenlets=False),
        "concurrency": partial(checks.check_concurrency, use_greenlets=False),
    },
)
