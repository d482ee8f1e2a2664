"""A tiny MongoDB server on wireclient.mock: python examples/tiny_server.py [PORT]"""

import sys
import threading

from wireclient import protocol
from wireclient.mock import MockServer, fail, hangup, ok


def answer(request):
    """What the server says to each request but hello (answered by the mock itself)."""
    name = (request.command_name or "").lower()
    if name in ("hello", "ismaster"):
        return None  # pass: the automatic hello answers it
    if request.opcode not in (protocol.OP_MSG, protocol.OP_QUERY):
        return hangup()  # legacy opcodes: hang up, as servers do
    if name == "ping":
        return ok()
    if name == "whatsmyuri":
        return ok(you="%s:%d" % request.client_address)
    if name == "buildinfo":
        return ok(version="0.0.1", versionArray=[0, 0, 1, 0])
    return fail(59, f"no such command: {request.command_name!r}")


def serve(port=0, host="127.0.0.1"):
    """A started server that answers every request with answer() (wire version 17)."""
    server = MockServer(max_wire_version=17, host=host, port=port).start()
    server.autoresponds(None, answer)
    return server


if __name__ == "__main__":
    with serve(int(sys.argv[1]) if sys.argv[1:] else 27017) as server:
        print(f"tiny server listening on port {server.port}", flush=True)
        threading.Event().wait()  # serve until interrupted
