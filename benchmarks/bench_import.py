"""Start-up cost: how long `import wireclient` takes, beside `import bson` and `import pymongo`.

Each measurement is a fresh interpreter (`python -c ...`) that times its own import with
perf_counter, so interpreter start-up is not counted. Bytecode is compiled first (an
installed package has its .pyc files; a PYTHONDONTWRITEBYTECODE environment would otherwise
measure the compiler). Rounds interleave the contenders; medians are reported. "on top of
bson" imports bson first and times wireclient alone: wireclient's own cost, since bson is its
one dependency.

    python benchmarks/bench_import.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TIMER = (
    "import time\n"
    "{before}\n"
    "t = time.perf_counter()\n"
    "{stmt}\n"
    "print((time.perf_counter() - t) * 1000)\n"
)

CONTENDERS = {
    "import bson (the dependency)": ("", "import bson"),
    "import wireclient": ("", "import wireclient"),
    "import wireclient, on top of bson": ("import bson", "import wireclient"),
    "from wireclient import ReplicaSetConnection": (
        "",
        "from wireclient import ReplicaSetConnection",
    ),
    "import pymongo": ("", "import pymongo"),
}


def once(before: str, stmt: str) -> float:
    code = TIMER.format(before=before, stmt=stmt)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()

    compileall.compile_dir(os.path.join(ROOT, "wireclient"), quiet=1)
    samples: Dict[str, List[float]] = {name: [] for name in CONTENDERS}
    for _ in range(args.rounds):
        for name, (before, stmt) in CONTENDERS.items():
            samples[name].append(once(before, stmt))
    medians = {name: statistics.median(values) for name, values in samples.items()}

    print(f"median of {args.rounds} fresh interpreters each")
    print(f"{'import':<46}{'ms':>8}")
    for name, ms in medians.items():
        print(f"{name:<46}{ms:>8.1f}")
    own = medians["import wireclient, on top of bson"]
    print(
        f"\nwireclient's own import cost = {own:.1f} ms"
        f" ({own / medians['import pymongo']:.2f} of pymongo's whole import)"
    )

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "import.json"), "w") as f:
        json.dump({"rounds": args.rounds, "median_ms": medians}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
