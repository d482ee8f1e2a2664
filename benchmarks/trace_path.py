"""How far one operation wanders through wireclient's modules: files entered, file-to-file hops.

Traces with ``sys.setprofile``, after a warm-up (so lazy imports, the handshake and the first
socket are not counted):

* ``insert``: ``coll.insert(doc)`` of one document (acknowledged, the default);
* ``find``: ``list(coll.find(batch_size=2))`` over five documents: the find and two getMores.

For each it prints the wireclient files entered (in the order first entered) and the hops: a
hop is two consecutive profiled call/return events of wireclient code in different files
(``call hops`` counts the call events only: a descent into another file, not the way back).
Only the public API is used, so the script measures whichever wireclient ``PYTHONPATH``
names (it prints which): ``PYTHONPATH=. python benchmarks/trace_path.py`` for this tree.

    PYTHONPATH=. python benchmarks/trace_path.py [--uri URI] [--files]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, List, Tuple

from _common import server_uri

DB = "trace_path"


def _hops(files: List[str]) -> int:
    return sum(1 for a, b in zip(files, files[1:]) if a != b)


def trace(action: Callable[[], Any], root: str) -> Tuple[List[str], int, int]:
    """The wireclient files ``action`` enters (first-entered order), its hops and call hops."""
    events: List[Tuple[str, str]] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event in ("call", "return"):
            filename = frame.f_code.co_filename
            if filename.startswith(root):
                events.append((event, filename))

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    files = list(dict.fromkeys(f for _, f in events))
    hops = _hops([f for _, f in events])
    call_hops = _hops([f for e, f in events if e == "call"])
    return [os.path.relpath(f, os.path.dirname(root)) for f in files], hops, call_hops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", default=None)
    parser.add_argument("--files", action="store_true", help="list the files entered")
    args = parser.parse_args()

    import wireclient
    from wireclient import Connection

    root = os.path.dirname(os.path.abspath(wireclient.__file__)) + os.sep
    with server_uri(args.uri) as uri:
        conn = Connection(uri)
        try:
            coll = conn[DB]["path"]
            coll.drop()
            coll.insert({"warm": 1})  # warm-up: imports, handshake, the request's socket
            coll.insert([{"i": i} for i in range(5)])
            list(coll.find({"i": {"$gte": 0}}, batch_size=2))
            coll.remove({"warm": 1})

            results = [
                ("insert one document", trace(lambda: coll.insert({"x": 1}), root)),
                (
                    "find + 2 getMores",
                    trace(lambda: list(coll.find({"i": {"$gte": 0}}, batch_size=2)), root),
                ),
            ]
            coll.drop()
        finally:
            conn.close()
    print(f"wireclient at {root}")
    for name, (files, hops, call_hops) in results:
        print(f"{name:22} {len(files):3} files {hops:4} hops {call_hops:4} call hops")
        if args.files:
            for f in files:
                print(f"    {f}")


if __name__ == "__main__":
    main()
