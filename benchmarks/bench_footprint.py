"""Footprint: import time, resident memory after connect + ping, threads a Connection starts.

Every figure comes from fresh interpreters (``python -c ...``), rounds interleaving the
contenders, medians reported; bytecode is compiled first for wireclient, bson and pymongo
(so no contender pays the compiler).

- Import: the interpreter times its own ``import`` with ``perf_counter`` (its start-up is
  not counted): ``import bson`` alone, ``import wireclient`` (the package loads its client
  on first use, so this one does not even load bson), ``from wireclient import Connection``
  (the client, bson included: its one dependency), and ``import pymongo``. Target: the
  client (``from wireclient import Connection``) at most 5 ms above bson alone, timed in one
  interpreter that has imported bson first (two interpreters' medians would carry bson's own
  spread, larger than the target).
- Memory: ``VmRSS`` from ``/proc/self/status`` after ``import bson`` alone, and after
  import + connect + ping for wireclient (``Connection(uri)``) and pymongo
  (``MongoClient(directConnection=True)``). Target: wireclient at most 1 MB above bson.
- Threads: ``threading.active_count()`` before and after a single-server ``Connection``
  connects and pings (target: none started), with pymongo's count beside it.

    python benchmarks/bench_footprint.py [--uri URI] [--rounds 15] [--quick]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import subprocess
import sys
from typing import Dict, List

from _common import ROOT, median, server_uri, table, verdict, write_json

IMPORT_MS_ABOVE_BSON = 5.0
RSS_MB_ABOVE_BSON = 1.0

TIMER = "import time\nt = time.perf_counter()\n{stmt}\nprint((time.perf_counter() - t) * 1000)\n"
IMPORTS = {
    "import bson": "import bson",
    "import wireclient": "import wireclient",
    "from wireclient import Connection": "from wireclient import Connection",
    "import pymongo": "import pymongo",
}
# The target's figure: bson imported first, then only the client's own import timed, in the
# same interpreter. Subtracting two fresh interpreters' medians instead mixes in bson's own
# spread (22 to 38 ms between runs here), which is larger than the target itself.
ABOVE_BSON = (
    "import time\nimport bson\nt = time.perf_counter()\nfrom wireclient import Connection\n"
    "print((time.perf_counter() - t) * 1000)\n"
)

RSS = """
import sys
uri = sys.argv[1]
{stmt}
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")))
"""
MEMORY = {
    "bson alone": "import bson",
    "wireclient: import + connect + ping": (
        "import wireclient\nc = wireclient.Connection(uri)\nc.admin.command('ping')"
    ),
    "pymongo: import + connect + ping": (
        "import pymongo\nfrom wireclient.rules.uri import parse_uri\n"
        "host, port = parse_uri(uri).hosts[0]\n"
        "c = pymongo.MongoClient(host, port, directConnection=True)\nc.admin.command('ping')"
    ),
}

THREADS = """
import sys, threading, time
uri = sys.argv[1]
{imp}
before = threading.active_count()
{connect}
c.admin.command("ping")
time.sleep(0.3)
print(threading.active_count() - before)
"""
THREAD_CLIENTS = {
    "wireclient Connection (single server)": (
        "import wireclient",
        "c = wireclient.Connection(uri)",
    ),
    "pymongo MongoClient (directConnection)": (
        "import pymongo\nfrom wireclient.rules.uri import parse_uri",
        "host, port = parse_uri(uri).hosts[0]\n"
        "c = pymongo.MongoClient(host, port, directConnection=True)",
    ),
}


def fresh(code: str, *args: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_profile(top: int = 12) -> List[Dict[str, object]]:
    """``-X importtime`` of the client imported on top of bson: the modules costing most
    (self time, µs), to show where the import time above bson goes."""
    code = "import bson\nfrom wireclient import Connection"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows: List[Dict[str, object]] = []
    after_bson = False
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:"):
            continue
        name = parts[2].strip()
        if after_bson:
            try:
                self_us, total_us = int(parts[0].split(":")[1]), int(parts[1])
            except ValueError:
                continue
            rows.append({"module": name, "self_us": self_us, "cumulative_us": total_us})
        if name == "bson" and parts[2].rstrip() == " bson":
            after_bson = True
    rows.sort(key=lambda r: -int(str(r["self_us"])))
    return rows[:top]


def compile_all() -> None:
    """Bytecode for every package measured (an installed package has its .pyc files)."""
    compileall.compile_dir(os.path.join(ROOT, "wireclient"), quiet=1)
    for name in ("bson", "pymongo"):
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                compileall.compile_dir(folder, quiet=1)


def interleaved(contenders: Dict[str, str], rounds: int, *args: str) -> Dict[str, List[float]]:
    samples: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, code in contenders.items():
            samples[name].append(fresh(code, *args))
    return samples


def run(uri: str, rounds: int) -> Dict[str, object]:
    compile_all()
    contenders = {n: TIMER.format(stmt=s) for n, s in IMPORTS.items()}
    contenders["Connection, on top of an imported bson"] = ABOVE_BSON
    imports = interleaved(contenders, rounds)
    memory = interleaved(
        {n: RSS.format(stmt=s) for n, s in MEMORY.items()}, max(3, rounds // 3), uri
    )
    threads = {
        name: int(fresh(THREADS.format(imp=imp, connect=connect), uri))
        for name, (imp, connect) in THREAD_CLIENTS.items()
    }
    profile = import_profile()
    import_ms = {name: median(values) for name, values in imports.items()}
    rss_mb = {name: median(values) / 1024 for name, values in memory.items()}
    import_above = import_ms["Connection, on top of an imported bson"]
    rss_above = rss_mb["wireclient: import + connect + ping"] - rss_mb["bson alone"]
    wc_threads = threads["wireclient Connection (single server)"]

    print(f"\nimport time, ms (median of {rounds} fresh interpreters)")
    print(table(["import", "ms"], [[n, v] for n, v in import_ms.items()]))
    print(f"\nresident memory, MB (VmRSS, median of {max(3, rounds // 3)} interpreters)")
    print(table(["after", "MB"], [[n, v] for n, v in rss_mb.items()]))
    print("\nimport profile of the client on top of bson (-X importtime, top modules)")
    print(table(["module", "self µs", "cumulative µs"], [list(r.values()) for r in profile]))
    print("\nthreads started by connect + ping")
    print(table(["client", "threads"], [[n, v] for n, v in threads.items()]))
    checks = [
        ["from wireclient import Connection - bson", f"{import_above:.1f} ms", "<= 5 ms"],
        ["RSS wireclient - bson alone", f"{rss_above:.2f} MB", "<= 1 MB"],
        ["threads started by Connection", str(wc_threads), "0"],
    ]
    passes = [import_above <= IMPORT_MS_ABOVE_BSON, rss_above <= RSS_MB_ABOVE_BSON, wc_threads == 0]
    print()
    print(
        table(
            ["target", "measured", "target", ""], [c + [verdict(p)] for c, p in zip(checks, passes)]
        )
    )
    return {
        "rounds": rounds,
        "import_ms": import_ms,
        "import_samples_ms": imports,
        "import_profile_above_bson": profile,
        "rss_mb": rss_mb,
        "threads_started": threads,
        "import_ms_above_bson": import_above,
        "rss_mb_above_bson": rss_above,
        "pass_import": passes[0],
        "pass_rss": passes[1],
        "pass_threads": passes[2],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", help="a running server (default: start a SecantusDB)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--quick", action="store_true", help="fewer interpreters (9 rounds)")
    args = parser.parse_args()
    rounds = args.rounds or (9 if args.quick else 15)
    with server_uri(args.uri) as uri:
        results = run(uri, rounds)
    print("wrote", write_json("footprint.json", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
