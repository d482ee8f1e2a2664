"""`make demo`, part 2: the protocol-testing toolkit in a few lines (docs/protocol-testing.md).

Starts an embedded SecantusDB on a free port (or uses $WIRECLIENT_URI), then:
  1. `wireclient ping URI --trace`: every frame of the connection, the handshake included,
  2. `wireclient decode --hex -`: one frame, an OP_MSG insert with a document sequence,
     decoded offline from hex.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support")
sys.path.insert(0, SUPPORT)  # servers.py: how the tests start SecantusDB

from wireclient import protocol  # noqa: E402
from wireclient.toolkit import cli  # noqa: E402


def section(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def main() -> int:
    uri = os.environ.get("WIRECLIENT_URI")
    server = None
    if not uri:
        from servers import SecantusServer

        server = SecantusServer().start()
        uri = server.uri
        print(f"started an embedded SecantusDB at {server.address}")
    try:
        section(f"1. wireclient ping {uri} --trace")
        with contextlib.redirect_stderr(sys.stdout):  # the trace: in order with the reply
            status = cli.main(["ping", uri, "--trace"])
        insert = protocol.OpMsg(
            {"insert": "visits", "$db": "demo"},
            [protocol.DocumentSequence("documents", [{"page": "/"}, {"page": "/about"}])],
        )
        hex_text = protocol.encode(insert, request_id=42).hex()
        section(f"2. echo {hex_text[:24]}... | wireclient decode --hex -")
        stdin, sys.stdin = sys.stdin, io.TextIOWrapper(io.BytesIO(hex_text.encode()))
        try:
            status |= cli.main(["decode", "--hex", "-"])
        finally:
            sys.stdin = stdin
    finally:
        if server is not None:
            server.stop()
            print("\nstopped the embedded server")
    print("(more: docs/protocol-testing.md, and `python -m wireclient --help`)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
