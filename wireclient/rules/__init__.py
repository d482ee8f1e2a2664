"""The rules: pure facts MongoDB requires of a client, each in one home.

Wire versions and a server's default limits (``wire``); the ``mongodb://`` grammar, the one
``Address`` type and its one parser and formatter (``uri``); the option table and its
validators (``options``); argument checks (``arguments``); the command envelope, error codes
and write concern (``command``); what a reply must look like (``replies``); size limits and
the one batch splitter (``limits``). Internal: not public API, and free to change between
releases (the public names are re-exported by ``wireclient``). Pure: no socket, ssl,
selectors or asyncio, no I/O; this layer imports only ``protocol`` and the base modules.
"""
