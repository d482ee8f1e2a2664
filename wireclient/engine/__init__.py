"""Layer ``engine``: the operation path. Internal (not public API).

The one path every message goes through (select a server, take the caller's socket, frame,
send, read, check, handle errors, give the socket back), exhaust streams, the selectors (one
server, a replica set, mongos routers), the replica-set monitor and its checker, and the
assembly of a client's parts from its options. The public classes in ``client`` build command
documents and hand them here.
"""
