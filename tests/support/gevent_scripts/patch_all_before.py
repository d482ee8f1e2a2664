"""gevent without threads: monkey.patch_all() first, then import wireclient.

Threads are greenlets now, so a plain Connection() (use_greenlets=False) gives each
greenlet its own request socket through the patched thread-locals; use_greenlets=True
must behave the same. Usage: patch_all_before.py URI [check ...]
"""

from gevent import monkey

monkey.patch_all()

from functools import partial  # noqa: E402

import _gevent_checks as checks  # noqa: E402

checks.main(
    "patch_all_before",
    {
        "socket_per_greenlet": checks.check_socket_per_greenlet,
        "request_per_greenlet": checks.check_request_per_greenlet,
        "socket_per_greenlet_use_greenlets": partial(
            checks.check_socket_per_greenlet, use_greenlets=True
        ),
        "reclamation": checks.check_reclamation,
        "reclamation_use_greenlets": partial(checks.check_reclamation, use_greenlets=True),
        "hub_not_blocked": checks.check_not_blocking_hub_with_ticker,
        "concurrency": checks.check_concurrency,
        "connect_storm": checks.check_connect_storm,
    },
)
