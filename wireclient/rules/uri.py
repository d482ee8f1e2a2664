"""``mongodb://`` connection strings: the grammar, host lists, addresses, and what a
``Connection``'s ``host`` argument names.

Theory of operation
-------------------
A connection string has the shape::

    mongodb://[username[:password]@]host[:port][,host[:port]...][/[database[.collection]][?options]]

``parse_uri`` splits it in that order, with no backtracking:

1. the scheme must be ``mongodb://`` (``mongodb+srv://`` is refused: it needs DNS);
2. the *authority* runs up to the first ``/``; a ``?`` inside it is an error (options must
   follow a ``/``), and an ``@`` after it is an error too (it means an unescaped ``/`` in a
   password, or an ``@`` in a database name that should be written ``%40``);
3. the userinfo is everything before the *last* ``@`` of the authority; a second ``@`` or a
   second ``:`` in it means a character that should have been percent-encoded;
4. ``split_hosts`` parses the host list: bracketed IPv6 literals, ``host:port``, and unix
   domain socket paths (percent-encoded, ending in ``.sock``), which get port 0;
5. the path is ``database`` or ``database.collection``;
6. the query is ``name=value`` pairs joined by ``&``, percent-decoded here and handed to
   ``options.validate_uri_options``, which owns the option table: names are normalised to
   their canonical camelCase spelling and values converted to Python types.

Every component is percent-decoded strictly: a ``%`` not followed by two hex digits, or bytes
that are not UTF-8, raise ``ConfigurationError``. A ``+`` is a plus, not a space.

An address is an ``Address``, ``(host, port)``, defined here for the whole package. Addresses
have one parser and one formatter, used by the whole package: ``parse_host`` reads one
``host[:port]`` (also the addresses servers report, and the command line's), ``split_hosts``
reads a comma-separated list of them, and ``format_address`` writes one back so that both
read it as the same address (in messages too: an address is shown as a URI would name it).
The one difference between a single address and an entry of a list: a bare IPv6 literal
such as ``::1`` is a whole address for ``parse_host`` (never ``address:port``), while in a
host list the connection
string specification requires the brackets, since ``::1:27017`` would be ambiguous there.

Every failure is a ``ConfigurationError`` whose message names the part of the URI at fault
(option errors come from ``wireclient.rules.options``). Messages never repeat a password, nor
carry one in a chained exception: the userinfo is never quoted, a host list (or address)
holding an ``@`` is refused quoting only its userinfo, masked (``redact_uri``: ``u:***@...``),
and a host entry is quoted only up to its ``:`` unless a port number follows, since
``mongodb://user:password`` (its ``@host`` left out) reads as host ``user``, port ``password``.
``validate_options`` is re-exported from ``wireclient.rules.options`` for compatibility.

A ``Connection``'s ``host`` argument (``parse_host_argument``) is ``None`` (``localhost``),
``'db.example:27018'``, ``'h1,h2:27018'``, a ``mongodb://`` URI, or (pymongo 2.8's form) a
list or tuple of such strings, whose hosts are joined in order (repeats dropped): a URI's
options apply, a later entry's winning, and the first URI that names a database or a user
gives it. ``port`` is the default port of hosts written without one.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

from wireclient.errors import ConfigurationError
from wireclient.rules.options import check_direct_connection, validate_options, validate_uri_options

__all__ = [
    "ParsedURI",
    "parse_uri",
    "split_hosts",
    "parse_host",
    "validate_options",
    "format_address",
    "is_unix_socket",
    "redact_uri",
    "Address",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "Hosts",
    "ParsedHosts",
    "parse_host_argument",
    "UNIX_SOCKET_PORT",
]

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 27017
UNIX_SOCKET_PORT = 0
"""The port recorded for a unix domain socket path (never a valid TCP port)."""

SCHEME = "mongodb://"
SRV_SCHEME = "mongodb+srv://"

_HEX = frozenset("0123456789abcdefABCDEF")
# Characters that can never appear in a host name (after percent-decoding).
_BAD_HOST_CHARS = frozenset("/\\?#@[]:,%")
# What an IPv6 literal is written with (a host entry of only these is quoted whole).
_IPV6_TEXT = frozenset("0123456789abcdefABCDEF:.")
_SCHEME_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Characters MongoDB refuses in database names.
_BAD_DB_CHARS = frozenset('/\\. "$\x00')

Address = Tuple[str, int]
"""A server's address: ``(host, port)``; a unix domain socket is ``(path, UNIX_SOCKET_PORT)``."""
Hosts = Tuple[Address, ...]
UserInfo = Tuple[Optional[str], Optional[str]]
# (hosts, URI options, database, (username, password))
ParsedHosts = Tuple[Hosts, Dict[str, Any], Optional[str], UserInfo]


class ParsedURI:
    """The parts of a ``mongodb://`` URI (read-only).

    ``hosts`` keeps the order of the URI; host names are lower-cased, IPv6 literals are
    stored without brackets in compressed form, and a unix socket path has port 0.
    ``options`` maps canonical option names to typed values (see ``wireclient.rules.options``).
    The password is left out of ``repr``.
    """

    __slots__ = ("hosts", "username", "password", "database", "collection", "options")
    hosts: Hosts
    username: Optional[str]
    password: Optional[str]
    database: Optional[str]
    collection: Optional[str]
    options: Dict[str, Any]

    def __init__(
        self,
        hosts: Hosts,
        username: Optional[str] = None,
        password: Optional[str] = None,
        database: Optional[str] = None,
        collection: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
    ) -> None:
        values = (hosts, username, password, database, collection, options or {})
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"ParsedURI is read-only: cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ParsedURI is read-only: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParsedURI):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # options is a dict

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "password"
        )
        return f"ParsedURI({shown})"


# --------------------------------------------------------------------------- percent-decoding


def _unquote(text: str, what: str, secret: bool = False) -> str:
    """Strictly percent-decode ``text``; ``what`` names the part in error messages."""
    if "%" not in text:
        return text
    decoded = _percent_decode(text, what, secret)
    if decoded is None:  # raised here, not in an except block: no chained error holds the text
        raise ConfigurationError(
            f"invalid percent-encoding in {what}: the decoded bytes are not UTF-8"
        )
    return decoded


def _percent_decode(text: str, what: str, secret: bool) -> Optional[str]:
    out = bytearray()
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not (pair[0] in _HEX and pair[1] in _HEX):
                shown = "" if secret else f" ({text[i : i + 3]!r})"
                raise ConfigurationError(
                    f"invalid percent-encoding in {what}{shown}: '%' must be followed by "
                    "two hex digits (write a literal '%' as %25)"
                )
            out.append(int(pair, 16))
            i += 3
        else:
            out += char.encode("utf-8", "surrogatepass")
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def redact_uri(text: str) -> str:
    """``text`` (a URI, or what was meant as one) with its password masked:
    ``mongodb://u:pw@h`` -> ``mongodb://u:***@h``. Everything between the username's ``:``
    and the last ``@`` is masked; with no clear username (a ``/`` in it), all of the
    userinfo is; with no ``:``, there is no password and the text is returned as is."""
    at = text.rfind("@")
    if at < 0:
        return text
    scheme = _SCHEME_PREFIX.match(text)
    start = scheme.end() if scheme is not None and scheme.end() <= at else 0
    userinfo = text[start:at]
    user, colon, _ = userinfo.partition(":")
    if "/" in user:  # no clear username: all of it may be the password
        return f"{text[:start]}***{text[at:]}"
    return f"{text[:start]}{user}:***{text[at:]}" if colon else text


# ------------------------------------------------------------------------ hosts and addresses


def is_unix_socket(host: str) -> bool:
    """True when ``host`` (as stored in ``ParsedURI.hosts``) is a unix domain socket path: it
    ends in ``.sock`` and has a ``/`` in it. Without a ``/`` it is a host name
    (``mongodb-27017.sock``, as the connection-string specification's tests read it)."""
    return "/" in host and host.lower().endswith(".sock")


def _shown(entry: str) -> str:
    """A host entry as messages quote it: whole if it reads as an address (no ':', a port
    number after it, brackets, an IPv6 literal), else only up to its ':' (see the top)."""
    name, colon, rest = entry.partition(":")
    numeric = rest.isascii() and rest.isdigit()
    if not colon or numeric or entry.startswith("[") or _IPV6_TEXT.issuperset(entry):
        return entry
    return f"{name}:..."


def _refuse_userinfo(text: str) -> None:
    """A host list (or address) is refused if it holds an ``@``, quoted with its userinfo
    masked and nothing after the ``@`` (where a password with an ``@`` in it may go on)."""
    if "@" not in text:
        return
    shown = redact_uri(text).rpartition("@")[0] + "@..."
    raise ConfigurationError(
        f"a host list holds no username or password (found '@' in {shown!r}); "
        "give them in a URI: mongodb://user:password@host"
    )


def _check_port(text: str, entry: str, lowest: int = 1) -> int:
    if not text:
        raise ConfigurationError(f"empty port in host {entry!r}")
    if not (text.isascii() and text.isdigit()):
        raise ConfigurationError(f"the port in host {entry!r} is not a number")
    port = int(text)
    if not lowest <= port <= 65535:
        raise ConfigurationError(f"port {port} in host {entry!r} is out of range ({lowest}-65535)")
    return port


def _check_default_port(default_port: int) -> None:
    if isinstance(default_port, bool) or not isinstance(default_port, int):
        raise ConfigurationError(f"default_port must be an int, not {default_port!r}")
    if not 1 <= default_port <= 65535:
        raise ConfigurationError(f"default_port {default_port} is out of range (1-65535)")


def _check_hostname(name: str, entry: str) -> str:
    if not name:
        raise ConfigurationError(f"empty host name in {entry!r}")
    for char in name:
        if char in _BAD_HOST_CHARS or char.isspace() or not char.isprintable():
            raise ConfigurationError(f"invalid character {char!r} in host {entry!r}")
    return name.lower()


def _ipv6(literal: str, entry: str) -> str:
    """The compressed, lower-case form of an IPv6 literal (a zone such as ``%eth0`` kept)."""
    import ipaddress  # only for IPv6 literals: keeps `import wireclient` light

    try:
        return str(ipaddress.IPv6Address(literal))
    except ValueError:
        pass  # raised below, so that no chained error quotes the text
    raise ConfigurationError(f"{_shown(literal)!r} in host {entry!r} is not a valid IPv6 address")


def _parse_host(entry: str, default_port: int, in_list: bool, lowest_port: int = 1) -> Address:
    """One ``host[:port]``, as written (not yet percent-decoded); see ``parse_host``."""
    if not entry:
        raise ConfigurationError("empty host in the host list" if in_list else "empty host")
    shown = _shown(entry)
    decoded = _unquote(entry, f"host {shown!r}", secret=shown != entry)
    if is_unix_socket(decoded):
        # A socket path takes no port; inside a URI its '/' must be written %2F.
        if "\x00" in decoded:
            raise ConfigurationError(f"NUL character in unix socket path {shown!r}")
        return decoded, UNIX_SOCKET_PORT
    if entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise ConfigurationError(f"missing ']' after IPv6 address in host {shown!r}")
        literal = _unquote(entry[1:close], f"host {shown!r}")
        rest = entry[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ConfigurationError(f"unexpected {_shown(rest)!r} after ']' in host {shown!r}")
        port = _check_port(rest[1:], shown, lowest_port) if rest else default_port
        return _ipv6(literal, shown), port
    if entry.count(":") > 1:
        if not in_list:
            try:
                return _ipv6(decoded, shown), default_port
            except ConfigurationError:
                pass  # not an address by itself: perhaps address:port, which needs brackets
        raise ConfigurationError(
            f"host {shown!r} has more than one ':'; an IPv6 address must be in brackets, "
            "as in [::1]:27017"
        )
    name, colon, port_text = entry.partition(":")
    port = _check_port(port_text, shown, lowest_port) if colon else default_port
    return _check_hostname(_unquote(name, f"host {shown!r}"), shown), port


def parse_host(text: str, default_port: int = DEFAULT_PORT, lowest_port: int = 1) -> Address:
    """Parse one address: ``'Host:27018'`` -> ``('host', 27018)``; ``'h'`` -> ``('h', 27017)``.

    The address parser of the package (``split_hosts``, the topology and the command line
    use it). Host names are lower-cased; IPv6 literals are read from ``[...]`` (or bare, as a
    whole address with no port) and stored without brackets in compressed form; a path (with
    a ``/``) ending in ``.sock`` is a unix domain socket (case kept) with port 0. The text is
    percent-decoded, so ``format_address`` output reads back as the same address. Ports are
    decimal, 1-65535 (``lowest_port=0`` admits port 0: "any free port", for a listening
    address).
    """
    if not isinstance(text, str):
        raise ConfigurationError(f"the address must be a str, not {type(text).__name__}")
    _check_default_port(default_port)
    if "://" in text:
        raise ConfigurationError("parse_host takes one address, not a URI: use parse_uri")
    _refuse_userinfo(text)
    return _parse_host(text, default_port, False, lowest_port)


def split_hosts(hosts: str, default_port: int = DEFAULT_PORT) -> Hosts:
    """Parse ``"a:1,b,[::1]:27018"`` into ``(("a", 1), ("b", default_port), ("::1", 27018))``.

    Entries are read as by ``parse_host``, except that an IPv6 literal must be in brackets.
    An entry with a ``/`` ending in ``.sock`` is a unix domain socket path and gets port 0
    (``UNIX_SOCKET_PORT``); outside a URI its ``/`` may be written as is.
    """
    if not isinstance(hosts, str):
        raise ConfigurationError(f"the host list must be a str, not {type(hosts).__name__}")
    _check_default_port(default_port)
    if "://" in hosts:
        raise ConfigurationError("split_hosts takes a host list, not a URI: use parse_uri")
    _refuse_userinfo(hosts)
    if not hosts:
        raise ConfigurationError("empty host list")
    return tuple(_parse_host(entry, default_port, in_list=True) for entry in hosts.split(","))


def format_address(address: Address) -> str:
    """One address as ``parse_host`` and ``split_hosts`` read it back, safe in a URI:
    ``host:port``, ``[v6]:port`` (a zone's ``%`` written ``%25``), or a unix domain socket's
    path, percent-encoded. Messages and reprs show addresses this way too."""
    host, port = address
    if is_unix_socket(host):
        return "".join(
            c if c.isascii() and (c.isalnum() or c in "-._~") else _quote_char(c) for c in host
        )
    if ":" in host:
        return f"[{host.replace('%', '%25')}]:{port}"
    return f"{host}:{port}"


def _quote_char(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------- a Connection's host argument


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


# ------------------------------------------------------------------------------- parse_uri


def _parse_userinfo(userinfo: str) -> Tuple[str, Optional[str]]:
    if "@" in userinfo:
        raise ConfigurationError(
            "the username or password contains an unescaped '@'; write it as %40"
        )
    user_text, colon, password_text = userinfo.partition(":")
    if ":" in password_text:
        raise ConfigurationError("the password contains an unescaped ':'; write it as %3A")
    if not user_text:
        raise ConfigurationError("empty username before '@'")
    username = _unquote(user_text, "the username")
    password = _unquote(password_text, "the password", secret=True) if colon else None
    return username, password


def _parse_namespace(path: str) -> Tuple[Optional[str], Optional[str]]:
    if not path:
        return None, None
    namespace = _unquote(path, "the database name")
    database, dot, collection = namespace.partition(".")
    if not database:
        raise ConfigurationError(f"empty database name in {namespace!r}")
    for char in database:
        if char in _BAD_DB_CHARS:
            raise ConfigurationError(f"invalid character {char!r} in database name {database!r}")
    if dot and not collection:
        raise ConfigurationError(f"empty collection name after {database!r}.")
    return database, (collection if dot else None)


def _parse_query(query: str) -> List[Tuple[str, str]]:
    pairs: List[Tuple[str, str]] = []
    if not query:
        return pairs
    for item in query.split("&"):
        if not item:
            raise ConfigurationError("empty option in the query string ('&&' or a trailing '&')")
        raw_name, equals, raw_value = item.partition("=")
        name = _unquote(raw_name, f"option name {raw_name!r}")
        if not equals:
            raise ConfigurationError(f"option {name!r} has no '=value'")
        if not name:
            raise ConfigurationError("option with an empty name in the query string")
        pairs.append((name, _unquote(raw_value, f"the value of option {name!r}")))
    return pairs


def parse_uri(uri: str, default_port: int = DEFAULT_PORT) -> ParsedURI:
    """Parse a ``mongodb://`` connection string. See the module docstring for the grammar."""
    if not isinstance(uri, str):
        raise ConfigurationError(f"the URI must be a str, not {type(uri).__name__}")
    if uri[: len(SRV_SCHEME)].lower() == SRV_SCHEME:
        raise ConfigurationError(
            "mongodb+srv:// URIs are not supported (they need DNS SRV and TXT lookups); "
            "list the hosts in a mongodb:// URI instead"
        )
    if uri[: len(SCHEME)].lower() != SCHEME:
        scheme, found, _ = uri.partition("://")
        looks_like_scheme = found and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,20}", scheme)
        given = f", not {scheme + found!r}" if looks_like_scheme else ""
        raise ConfigurationError(f"the URI must begin with 'mongodb://'{given}")
    rest = uri[len(SCHEME) :]
    authority, slash, path = rest.partition("/")
    if "?" in authority:
        raise ConfigurationError(
            "found '?' before the '/' that must come before options (write "
            "mongodb://host/?name=value); a '?' in a username or password must be written %3F"
        )
    namespace_text, _, query = path.partition("?")
    if "@" in namespace_text:
        raise ConfigurationError(
            "found '@' after the host list: a '/' in a username or password must be written "
            "%2F, and an '@' in a database name must be written %40"
        )
    username: Optional[str] = None
    password: Optional[str] = None
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
        username, password = _parse_userinfo(userinfo)
    if not authority:
        raise ConfigurationError("the URI has no host")
    hosts = split_hosts(authority, default_port)
    database, collection = _parse_namespace(namespace_text)
    options = validate_uri_options(_parse_query(query))
    check_direct_connection(options, len(hosts))
    return ParsedURI(
        hosts=hosts,
        username=username,
        password=password,
        database=database,
        collection=collection,
        options=options,
    )
