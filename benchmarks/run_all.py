"""`make bench`: run every benchmark script in this folder, one after another."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    failed = []
    for script in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
        name = os.path.basename(script)
        print(f"\n=== {name} ===", flush=True)
        if subprocess.call([sys.executable, script]) != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    print(f"\nresults written to {os.path.join(HERE, 'results')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
