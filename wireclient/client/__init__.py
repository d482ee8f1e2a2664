"""Layer ``client``: the classes users hold. Internal as a package; public through ``wireclient``.

``Connection`` and ``ReplicaSetConnection`` (with ``Request``), ``Database``, ``Collection``,
``Cursor``, the bulk API, pymongo 4's request and result classes. They build command
documents and hand them to the ``engine``; none touches a pool or a socket. Import these names
from ``wireclient`` (``from wireclient import Connection``), not from this package's modules.
"""
