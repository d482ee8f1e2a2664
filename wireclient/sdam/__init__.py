"""Server discovery and monitoring, pure: what the client knows of the servers it talks to.

The SDAM rules on plain values (``server_rules``), one member's description and immutable
snapshots of a replica set (``topology``) and of a sharded cluster's routers (``routers``),
max staleness (``staleness``), and read preferences with member selection
(``read_preferences``). Internal: not public API (``ReadPreference`` is re-exported by
``wireclient``). Pure: no socket, ssl, selectors or asyncio, no threads and no I/O; the
mutable cell, the monitor and the selectors that use these views live in ``engine``. This
layer imports only ``rules``, ``protocol`` and the base modules.
"""
