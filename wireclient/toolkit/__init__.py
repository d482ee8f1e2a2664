"""Layer ``toolkit``: the protocol tester's tools. Public (their documented Python API).

``cli`` (the ``wireclient`` command), ``probe`` (one socket driven by hand), ``proxy`` (a
tracing, fault-injecting proxy), ``trace`` and ``capture`` (frames as a tester reads them, and
the capture file format), ``replay`` with ``compare`` and ``pcap`` (captures and packet files
replayed against servers, replies compared), and the socket-affinity lab (``affinity`` and its
parts). The toolkit sits on top: it uses the client's public API and the codec, and nothing in
the client imports it.
"""
