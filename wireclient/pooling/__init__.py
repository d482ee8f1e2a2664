"""Layer ``pooling``: the sockets to one server, and who holds them. Internal (not public API).

The pool (idle LIFO, fair waiters, generations), the request table (which caller is in a
request and the socket its request holds), the identity strategies a pool keys requests by
(thread, greenlet), and the one at-fork hook. It opens sockets through ``transport`` and knows
nothing of commands or servers' roles.
"""
