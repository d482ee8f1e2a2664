"""What a ``Connection``'s ``host`` argument names: the hosts, and a URI's options.

``host`` is ``None`` (``localhost``), ``'db.example:27018'``, ``'h1,h2:27018'``, a
``mongodb://`` URI, or (pymongo 2.8's form) a list or tuple of such strings, whose hosts
are joined in order (repeats dropped): a URI's options apply, a later entry's winning, and
the first URI that names a database or a user gives it. ``port`` is the default port of
hosts written without one.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from wireclient.errors import ConfigurationError
from wireclient.rules.uri import DEFAULT_PORT, parse_uri, split_hosts

Address = Tuple[str, int]
UserInfo = Tuple[Optional[str], Optional[str]]
# (hosts, URI options, database, (username, password))
ParsedHosts = Tuple[Tuple[Address, ...], Dict[str, Any], Optional[str], UserInfo]

DEFAULT_HOST = "localhost"


def parse_host_argument(host: Any, port: Optional[int]) -> ParsedHosts:
    """The hosts ``host`` names (see the module notes); ``ConfigurationError`` if bad."""
    if host is None:
        host = DEFAULT_HOST
    if isinstance(host, (list, tuple)):
        return _parse_list(host, port)
    if not isinstance(host, str):
        # the type only: a bytes URI would show its password
        raise ConfigurationError(
            f"host must be a string or a list of strings, not {type(host).__name__}"
        )
    if host[:14].lower().startswith(("mongodb://", "mongodb+srv://")):
        parsed = parse_uri(host, port or DEFAULT_PORT)
        userinfo = (parsed.username, parsed.password)
        return tuple(parsed.hosts), dict(parsed.options), parsed.database, userinfo
    return tuple(split_hosts(host, port or DEFAULT_PORT)), {}, None, (None, None)


def _parse_list(entries: Any, port: Optional[int]) -> ParsedHosts:
    if not entries:
        raise ConfigurationError("host must not be an empty list")
    hosts: List[Address] = []
    options: Dict[str, Any] = {}
    database: Optional[str] = None
    userinfo: UserInfo = (None, None)
    for entry in entries:
        if not isinstance(entry, str):
            raise ConfigurationError(
                f"each host in a list must be a string, not {type(entry).__name__}"
            )
        found, found_options, found_database, found_userinfo = parse_host_argument(entry, port)
        hosts.extend(found)
        options.update(found_options)
        database = database or found_database
        if userinfo[0] is None:
            userinfo = found_userinfo
    return tuple(dict.fromkeys(hosts)), options, database, userinfo


__all__ = ["DEFAULT_HOST", "ParsedHosts", "parse_host_argument"]
