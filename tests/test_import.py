"""`import wireclient` is light: no thread, no ssl, no replica-set machinery until asked for.

Embedders count milliseconds at start-up (benchmarks/bench_footprint.py measures them); these
tests keep the *reasons* for the cost from creeping back, in a fresh interpreter each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from servers import SecantusServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Modules wireclient must not load for `import wireclient` (each costs milliseconds, or
# starts something): TLS, logging, the replica-set stack, and the optional packages.
HEAVY = [
    "ssl",
    "logging",
    "dataclasses",
    "difflib",
    "wireclient.client.replica_set",
    "wireclient.engine.monitor",
    "wireclient.sdam.topology",
    "wireclient.sdam.read_preferences",
    "wireclient.transport.auth",
    "greenlet",
    "gevent",
    "pymongo",
]


# What a plain Connection (one server; no auth, TLS, compression, read preference or event
# listener) never uses: neither `from wireclient import Connection` nor its connect + ping
# loads it (each is a module's import time and memory: benchmarks/bench_footprint.py).
NOT_FOR_A_PLAIN_CONNECTION = [
    "importlib",  # wireclient's lazy names use __import__
    "base64",  # SASL payloads sent as text (rules.replies.sasl)
    "bson.raw_bson",  # OP_QUERY document sequences (wire 4-5)
    "wireclient.sdam",  # read preferences and topology: only when a read preference is given
    "wireclient.sdam.read_preferences",
    "wireclient.sdam.staleness",
    "wireclient.transport.tls",  # tls=true
    "wireclient.transport.compressors",  # compressors=...
    "wireclient.protocol.compression",
    "wireclient.monitoring",  # event listeners (given, or registered with monitoring)
    "wireclient.transport.auth",  # a username
    "wireclient.engine.router_selector",  # several hosts
    "wireclient.engine.exhaust",
    "wireclient.client.collection",  # a ping needs no collection
    "wireclient.client.cursor",
]


def run(code: str, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_import_loads_nothing_heavy_and_starts_no_thread() -> None:
    result = run(
        "import json, sys, threading\n"
        "before = set(sys.modules)\n"
        "import wireclient\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules and m not in before]\n"
        "print(json.dumps({'heavy': heavy, 'threads': threading.active_count()}))\n"
    )
    assert result == {"heavy": [], "threads": 1}


def test_replica_set_names_load_on_first_use() -> None:
    result = run(
        "import json, sys, wireclient\n"
        "lazy = 'wireclient.client.replica_set' not in sys.modules\n"
        "from wireclient import ReplicaSetConnection, ReadPreference\n"
        "from wireclient.client.replica_set import ReplicaSetConnection as direct\n"
        "heavy = [m for m in ('ssl', 'logging', 'dataclasses') if m in sys.modules]\n"
        "print(json.dumps({'lazy': lazy, 'same': ReplicaSetConnection is direct,\n"
        "    'mode': ReadPreference.SECONDARY.mode, 'heavy': heavy}))\n"
    )
    # even the replica-set stack loads without ssl, logging (only on a monitor bug) or
    # dataclasses
    assert result == {"lazy": True, "same": True, "mode": "secondary", "heavy": []}


def test_star_import_and_unknown_names() -> None:
    result = run(
        "import json\n"
        "from wireclient import *\n"
        "import wireclient\n"
        "try:\n"
        "    wireclient.NoSuchThing\n"
        "    missing = None\n"
        "except AttributeError as exc:\n"
        "    missing = str(exc)\n"
        "print(json.dumps({'rsc': ReplicaSetConnection.__name__, 'missing': missing}))\n"
    )
    assert result["rsc"] == "ReplicaSetConnection"
    assert "NoSuchThing" in result["missing"]


def test_codec_imports_alone_without_io_modules() -> None:
    """The codec is sans-IO when imported too: `import wireclient.protocol` runs the package
    `__init__`, which must not pull in the client (and with it socket, ssl, selectors)."""
    result = run(
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import wireclient.protocol as p\n"
        "frame = p.encode(p.OpMsg({'ping': 1, '$db': 'admin'}), request_id=1)\n"
        "p.decode(frame)\n"
        "io = [m for m in ('socket', 'ssl', 'selectors', 'select',\n"
        "      'wireclient.transport.network', 'wireclient.client.connection',\n"
        "      'wireclient.pooling.pool')\n"
        "      if m in sys.modules and m not in before]\n"
        "print(json.dumps({'io': io}))\n"
    )
    assert result == {"io": []}


def test_client_names_load_on_first_use() -> None:
    result = run(
        "import json, sys, wireclient\n"
        "lazy = 'wireclient.client.connection' not in sys.modules and 'socket' not in sys.modules\n"
        "from wireclient import Connection, Collection, Cursor, Database, Request, ASCENDING\n"
        "print(json.dumps({'lazy': lazy, 'names': [Connection.__name__, Request.__name__],\n"
        "    'asc': ASCENDING, 'dir': 'Connection' in dir(wireclient)}))\n"
    )
    assert result == {"lazy": True, "names": ["Connection", "Request"], "asc": 1, "dir": True}


def test_the_2_8_client_classes_load_like_the_others() -> None:
    result = run(
        "import json, sys, wireclient\n"
        "from wireclient import MongoClient, InsertOne, ReturnDocument, InsertOneResult\n"
        "one_server = 'wireclient.client.replica_set' not in sys.modules\n"
        "from wireclient import MongoReplicaSetClient\n"
        "from wireclient.client.replica_set import MongoReplicaSetClient as direct\n"
        "print(json.dumps({'one_server': one_server, 'same': MongoReplicaSetClient is direct,\n"
        "    'client': MongoClient.__mro__[1].__name__}))\n"
    )
    assert result == {"one_server": True, "same": True, "client": "Connection"}


def test_a_plain_connection_loads_only_what_it_uses(server: SecantusServer) -> None:
    """`from wireclient import Connection` loads no socket module (the first connect does),
    and a connect + ping loads nothing a plain connection never uses."""
    result = run(
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "from wireclient import Connection\n"
        "at_import = 'socket' in sys.modules and 'socket' not in before\n"
        "c = Connection(sys.argv[1])\n"
        "c.admin.command('ping')\n"
        f"unused = [m for m in {NOT_FOR_A_PLAIN_CONNECTION!r}\n"
        "          if m in sys.modules and m not in before]\n"
        "c.close()\n"
        "print(json.dumps({'socket_at_import': at_import, 'unused': unused,\n"
        "    'socket_after_connect': 'socket' in sys.modules}))\n",
        server.uri,
    )
    assert result == {"socket_at_import": False, "unused": [], "socket_after_connect": True}
