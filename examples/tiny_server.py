"""A complete tiny MongoDB server on wireclient's codec: python examples/tiny_server.py [PORT]"""

import itertools
import socketserver
import sys

from wireclient import protocol as p
from wireclient.errors import ProtocolError

HELLO = {"isWritablePrimary": True, "helloOk": True, "minWireVersion": 0, "maxWireVersion": 17,
         "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000}  # fmt: skip
request_ids = itertools.count(1)


def answer(command, client):
    name = next(iter(command), "").lower()
    if name in ("hello", "ismaster"):
        return {**HELLO, "ismaster": True, "ok": 1.0}
    if name == "ping":
        return {"ok": 1.0}
    if name == "whatsmyuri":
        return {"you": client, "ok": 1.0}
    if name == "buildinfo":
        return {"version": "0.0.1", "versionArray": [0, 0, 1, 0], "ok": 1.0}
    return {"ok": 0.0, "errmsg": f"no such command: {name!r}", "code": 59}


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        reader, client = p.MessageReader(), ":".join(map(str, self.client_address[:2]))
        while data := self.request.recv(65536):
            try:
                reader.feed(data)
                for header, message in reader:
                    if isinstance(message, p.OpQuery):  # a client's first hello
                        reply = p.OpReply([answer(message.query, client)])
                    elif isinstance(message, p.OpMsg):
                        if message.more_to_come:
                            continue
                        reply = p.OpMsg(answer(message.body, client))
                    else:  # legacy opcodes: hang up, as servers do
                        return
                    frame = p.encode(reply, next(request_ids), response_to=header.request_id)
                    self.request.sendall(frame)
            except ProtocolError:  # a frame that breaks the protocol: hang up
                return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address, daemon_threads = True, True


if __name__ == "__main__":
    with Server(("127.0.0.1", int(sys.argv[1]) if sys.argv[1:] else 27017), Handler) as server:
        print(f"tiny server listening on port {server.server_address[1]}", flush=True)
        server.serve_forever()
