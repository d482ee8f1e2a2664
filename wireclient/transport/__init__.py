"""Layer ``transport``: one socket to one server. Internal (not public API).

Dialling (TCP or Unix), TLS, the handshake, SCRAM/SASL authentication, compression on a
socket, and the one boundary where ``OSError`` becomes wireclient's own error. It knows bytes,
frames and the handshake, never what a command means. It imports the layers below it
(``protocol``, ``rules``, ``sdam``) and nothing above. ``SocketInfo`` objects reach users
through ``Connection.pool.get_socket()``; import the public names from ``wireclient``.
"""
