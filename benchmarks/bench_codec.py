"""Per-operation codec cost: OP_MSG encode of a small command, decode of a small reply.

Times wireclient.protocol beside pymongo's own OP_MSG code (pymongo.message._op_msg, its C
encoder, and _OpMsg.unpack + unpack_response, the path a pymongo command reply takes) and
beside bare bson.encode / bson.decode of the same document, the floor any codec pays.
Prints a table of µs per message (best of several runs) and writes
benchmarks/results/codec.json.

    python benchmarks/bench_codec.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import timeit
from typing import Any, Callable, Dict, List, Optional, Tuple

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS

from wireclient import protocol as p

COMMAND = {"ping": 1, "$db": "admin"}
REPLIES = {
    "ok reply": {"ok": 1.0},
    "find reply": {
        "cursor": {"firstBatch": [{"_id": 1, "x": "abc"}, {"_id": 2, "x": "def"}], "id": 0},
        "ns": "db.c",
        "ok": 1.0,
    },
}


def best_us(fns: List[Callable[[], Any]], repeat: int, min_time: float) -> List[float]:
    """Best µs per call of each function, over `repeat` rounds of loops of about `min_time` s.

    The rounds interleave the functions, so that a burst of load on a shared machine hits
    them alike rather than one of them.
    """
    timers = [timeit.Timer(fn) for fn in fns]
    numbers = [max(1, int(t.autorange()[0] * min_time / 0.2)) for t in timers]
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, (timer, number) in enumerate(zip(timers, numbers)):
            best[i] = min(best[i], timer.timeit(number) / number * 1e6)
    return best


def pymongo_cases(reply_frames: Dict[str, bytes]) -> List[Tuple[str, str, Callable[[], Any]]]:
    try:
        from pymongo import message as pm
    except ImportError:
        return []
    cases: List[Tuple[str, str, Callable[[], Any]]] = []
    opts = DEFAULT_CODEC_OPTIONS

    def op_msg() -> Any:  # what pymongo runs per command (adds $db, random request id)
        return pm._op_msg(0, {"ping": 1}, "admin", None, opts)

    cases.append(("encode", "pymongo message._op_msg (C encoder inside)", op_msg))
    c_op_msg = getattr(getattr(pm, "_cmessage", None), "_op_msg", None)
    if c_op_msg is not None:
        cases.append(
            (
                "encode",
                "pymongo _cmessage._op_msg (C only)",
                lambda: c_op_msg(0, COMMAND, "", None, opts),
            )
        )
    unpack_header = struct.Struct("<iiii").unpack
    for name, frame in reply_frames.items():

        def decode_reply(frame: bytes = frame) -> Any:
            length, _, response_to, op_code = unpack_header(frame[:16])
            reply = pm._OpMsg.unpack(frame[16:])
            return reply.unpack_response(codec_options=opts)[0]

        cases.append((f"decode {name}", "pymongo _OpMsg.unpack + unpack_response", decode_reply))
    return cases


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    repeat, min_time = (3, 0.05) if args.quick else (9, 0.1)

    message = p.OpMsg(COMMAND)
    command_doc = bson.encode(COMMAND)
    reply_frames = {name: p.encode(p.OpMsg(doc), 1, 1) for name, doc in REPLIES.items()}

    cases: List[Tuple[str, str, Callable[[], Any]]] = [
        ("encode", "bson.encode(command) alone (floor)", lambda: bson.encode(COMMAND)),
        ("encode", "wireclient encode(prebuilt OpMsg)", lambda: p.encode(message, 1)),
        ("encode", "wireclient encode(OpMsg(command))", lambda: p.encode(p.OpMsg(COMMAND), 1)),
        (
            "encode",
            "wireclient encode(OpMsg(pre-encoded bytes))",
            lambda: p.encode(p.OpMsg(command_doc), 1),
        ),
    ]
    for name, frame in reply_frames.items():
        doc = frame[21:]
        reader = p.MessageReader()

        def via_reader(frame: bytes = frame, reader: p.MessageReader = reader) -> Any:
            reader.feed(frame)
            return reader.next_message()

        cases += [
            (f"decode {name}", "bson.decode(body) alone (floor)", lambda doc=doc: bson.decode(doc)),
            (f"decode {name}", "wireclient decode(frame)", lambda frame=frame: p.decode(frame)),
            (
                f"decode {name}",
                "wireclient unpack_header + decode_body",
                lambda frame=frame: p.decode_body(p.unpack_header(frame[:16]), frame[16:]),
            ),
            (f"decode {name}", "wireclient MessageReader feed + next", via_reader),
        ]
    cases += pymongo_cases(reply_frames)
    order = ["encode", "decode ok reply", "decode find reply"]
    cases.sort(key=lambda case: order.index(case[0]))  # stable: floor, wireclient, pymongo

    timings = best_us([fn for _, _, fn in cases], repeat, min_time)
    results = [
        {"operation": group, "implementation": label, "us_per_message": round(us, 4)}
        for (group, label, _), us in zip(cases, timings)
    ]

    width = max(len(r["implementation"]) for r in results)
    print(f"{'operation':<18} {'implementation':<{width}} {'µs/msg':>8}")
    print("-" * (28 + width))
    for r in results:
        print(f"{r['operation']:<18} {r['implementation']:<{width}} {r['us_per_message']:>8.3f}")

    try:
        import pymongo

        pymongo_version: Optional[str] = pymongo.version
    except ImportError:
        pymongo_version = None
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "codec.json")
    with open(path, "w") as f:
        json.dump(
            {
                "benchmark": "codec",
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "pymongo": pymongo_version,
                "bson_has_c": bson.has_c(),
                "command": COMMAND,
                "replies": REPLIES,
                "results": results,
            },
            f,
            indent=2,
        )
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
