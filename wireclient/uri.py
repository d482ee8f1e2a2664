"""``mongodb://`` connection strings and connection options.

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
6. the query is ``name=value`` pairs joined by ``&``. Names are case-insensitive and are
   normalised to their canonical camelCase spelling; values are converted to Python types.

Every component is percent-decoded strictly: a ``%`` not followed by two hex digits, or bytes
that are not UTF-8, raise ``ConfigurationError``. A ``+`` is a plus, not a space.

``validate_options`` applies the same names, aliases and checks to keyword arguments given
to ``Connection(...)``, except that values must already have their Python type (a real
``bool`` for a boolean, a real ``int`` for a number). It accepts its own output, so a merge
of ``parse_uri(...).options`` and keyword arguments can be validated again as a whole.

Every failure is a ``ConfigurationError`` whose message names the option or the part of the
URI at fault. Messages never repeat a password.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from wireclient.errors import ConfigurationError

__all__ = [
    "ParsedURI",
    "parse_uri",
    "split_hosts",
    "validate_options",
    "format_host",
    "is_unix_socket",
    "DEFAULT_PORT",
    "UNIX_SOCKET_PORT",
]

DEFAULT_PORT = 27017
UNIX_SOCKET_PORT = 0
"""The port recorded for a unix domain socket path (never a valid TCP port)."""

SCHEME = "mongodb://"
SRV_SCHEME = "mongodb+srv://"

_INT32_MAX = 2**31 - 1
_DIGITS = re.compile(r"-?[0-9]+")
_HEX = frozenset("0123456789abcdefABCDEF")
# Characters that can never appear in a host name (after percent-decoding).
_BAD_HOST_CHARS = frozenset("/\\?#@[]:,%")
# Characters MongoDB refuses in database names.
_BAD_DB_CHARS = frozenset('/\\. "$\x00')

Hosts = Tuple[Tuple[str, int], ...]


class ParsedURI:
    """The parts of a ``mongodb://`` URI (read-only).

    ``hosts`` keeps the order of the URI; host names are lower-cased, IPv6 literals are
    stored without brackets in compressed form, and a unix socket path has port 0.
    ``options`` maps canonical option names to typed values (see ``validate_options``).
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
        raise ConfigurationError(
            f"invalid percent-encoding in {what}: the decoded bytes are not UTF-8"
        ) from None


# --------------------------------------------------------------------------------- host lists


def is_unix_socket(host: str) -> bool:
    """True when ``host`` (as stored in ``ParsedURI.hosts``) is a unix domain socket path."""
    return host.lower().endswith(".sock")


def _check_port(text: str, entry: str) -> int:
    if not text:
        raise ConfigurationError(f"empty port in host {entry!r}")
    if not _DIGITS.fullmatch(text) or text.startswith("-"):
        raise ConfigurationError(f"port {text!r} in host {entry!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"port {port} in host {entry!r} is out of range (1-65535)")
    return port


def _check_hostname(name: str, entry: str) -> str:
    if not name:
        raise ConfigurationError(f"empty host name in {entry!r}")
    for char in name:
        if char in _BAD_HOST_CHARS or char.isspace() or not char.isprintable():
            raise ConfigurationError(f"invalid character {char!r} in host {entry!r}")
    return name.lower()


def _parse_host(entry: str, default_port: int) -> Tuple[str, int]:
    """One ``host[:port]`` entry of a host list, as written (not yet percent-decoded)."""
    if not entry:
        raise ConfigurationError("empty host in the host list")
    decoded = _unquote(entry, f"host {entry!r}")
    if is_unix_socket(decoded):
        # A socket path takes no port; inside a URI its '/' must be written %2F.
        if "\x00" in decoded:
            raise ConfigurationError(f"NUL character in unix socket path {entry!r}")
        return decoded, UNIX_SOCKET_PORT
    if entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise ConfigurationError(f"missing ']' after IPv6 address in host {entry!r}")
        literal = _unquote(entry[1:close], f"host {entry!r}")
        rest = entry[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ConfigurationError(f"unexpected {rest!r} after ']' in host {entry!r}")
        port = _check_port(rest[1:], entry) if rest else default_port
        try:
            import ipaddress  # only for IPv6 literals: keeps `import wireclient` light

            address = ipaddress.IPv6Address(literal)
        except ValueError:
            raise ConfigurationError(
                f"{literal!r} in host {entry!r} is not a valid IPv6 address"
            ) from None
        return str(address), port
    if entry.count(":") > 1:
        raise ConfigurationError(
            f"host {entry!r} has more than one ':'; an IPv6 address must be in brackets, "
            "as in [::1]:27017"
        )
    name, colon, port_text = entry.partition(":")
    port = _check_port(port_text, entry) if colon else default_port
    return _check_hostname(_unquote(name, f"host {entry!r}"), entry), port


def split_hosts(hosts: str, default_port: int = DEFAULT_PORT) -> Hosts:
    """Parse ``"a:1,b,[::1]:27018"`` into ``(("a", 1), ("b", default_port), ("::1", 27018))``.

    Entries are percent-decoded. An entry ending in ``.sock`` is a unix domain socket path
    and gets port 0 (``UNIX_SOCKET_PORT``); outside a URI its ``/`` may be written as is.
    """
    if not isinstance(hosts, str):
        raise ConfigurationError(f"the host list must be a str, not {type(hosts).__name__}")
    if isinstance(default_port, bool) or not isinstance(default_port, int):
        raise ConfigurationError(f"default_port must be an int, not {default_port!r}")
    if not 1 <= default_port <= 65535:
        raise ConfigurationError(f"default_port {default_port} is out of range (1-65535)")
    if "://" in hosts:
        raise ConfigurationError("split_hosts takes a host list, not a URI: use parse_uri")
    if not hosts:
        raise ConfigurationError("empty host list")
    return tuple(_parse_host(entry, default_port) for entry in hosts.split(","))


def format_host(host: str, port: int) -> str:
    """The inverse of one ``split_hosts`` entry, percent-encoded so it is safe in a URI."""
    if is_unix_socket(host):
        return "".join(
            c if c.isascii() and (c.isalnum() or c in "-._~") else _quote_char(c) for c in host
        )
    if ":" in host:
        return f"[{host.replace('%', '%25')}]:{port}"
    return f"{host}:{port}"


def _quote_char(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


# ------------------------------------------------------------------------ option validators

# Each validator takes (canonical name, value, from_uri) and returns the typed value. With
# from_uri=True the value is the percent-decoded string from the URI; otherwise it is a
# Python value given as a keyword argument (or the output of an earlier validation).
Validator = Callable[[str, Any, bool], Any]


def _type_error(name: str, value: Any, expected: str) -> ConfigurationError:
    return ConfigurationError(f"option {name!r} must be {expected}, not {value!r}")


def _boolean(name: str, value: Any, from_uri: bool) -> bool:
    if from_uri:
        lowered = value.lower()
        if lowered in ("true", "false"):
            return bool(lowered == "true")
        raise _type_error(name, value, "'true' or 'false'")
    if isinstance(value, bool):
        return value
    raise _type_error(name, value, "True or False")


def _integer(minimum: int) -> Validator:
    def check(name: str, value: Any, from_uri: bool) -> int:
        if from_uri:
            if not _DIGITS.fullmatch(value):
                raise _type_error(name, value, "an integer")
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = int(value)
        else:
            raise _type_error(name, value, "an int")
        if number < minimum:
            raise ConfigurationError(f"option {name!r} must be >= {minimum}, not {number}")
        if number > _INT32_MAX:
            raise ConfigurationError(f"option {name!r} must be <= {_INT32_MAX}, not {number}")
        return number

    return check


def _string(name: str, value: Any, from_uri: bool) -> str:
    if not isinstance(value, str):
        raise _type_error(name, value, "a str")
    if not value:
        raise ConfigurationError(f"option {name!r} must not be empty")
    return value


def _app_name(name: str, value: Any, from_uri: bool) -> str:
    text = _string(name, value, from_uri)
    if len(text.encode("utf-8", "surrogatepass")) > 128:
        raise ConfigurationError(f"option {name!r} must be at most 128 bytes in UTF-8")
    return text


def _write_concern_w(name: str, value: Any, from_uri: bool) -> Any:
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return _integer(0)(name, value, True)
        return _string(name, value, from_uri)
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(0)(name, value, False)
    raise _type_error(name, value, "a non-negative int or a tag set name such as 'majority'")


READ_PREFERENCE_MODES = (
    "primary",
    "primaryPreferred",
    "secondary",
    "secondaryPreferred",
    "nearest",
)
_MODES_BY_KEY = {mode.lower(): mode for mode in READ_PREFERENCE_MODES}


def _read_preference(name: str, value: Any, from_uri: bool) -> str:
    """A mode name (any case, underscores ignored), a pymongo-2.x int 0-4, an Enum member, or
    an object with a ``mode`` string such as ``wireclient.read_preferences.ReadPreference``."""
    mode_attribute = getattr(value, "mode", None)
    if isinstance(mode_attribute, str):
        value = mode_attribute
    elif isinstance(value, enum.Enum):
        value = value.name
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(READ_PREFERENCE_MODES):
            return READ_PREFERENCE_MODES[value]
        raise ConfigurationError(f"option {name!r}: no read preference numbered {value}")
    if isinstance(value, str):
        mode = _MODES_BY_KEY.get(value.replace("_", "").lower())
        if mode is not None:
            return mode
        raise ConfigurationError(
            f"option {name!r} must be one of {', '.join(READ_PREFERENCE_MODES)}, not {value!r}"
        )
    raise _type_error(name, value, "a read preference mode name")


def _tag_set(name: str, value: Any) -> Dict[str, str]:
    """One tag set: ``'dc:ny,rack:1'`` (``''`` is the empty set) or a mapping of str to str."""
    if isinstance(value, str):
        tags: Dict[str, str] = {}
        if not value:
            return tags
        for pair in value.split(","):
            key, colon, tag_value = pair.partition(":")
            if not colon:
                raise ConfigurationError(
                    f"option {name!r}: tag {pair!r} is not of the form name:value"
                )
            if key in tags:
                raise ConfigurationError(f"option {name!r}: tag {key!r} given twice")
            tags[key] = tag_value
    elif isinstance(value, Mapping):
        tags = dict(value)
    else:
        raise _type_error(name, value, "a tag set ('dc:ny,rack:1' or a dict)")
    for key, tag_value in tags.items():
        if not isinstance(key, str) or not isinstance(tag_value, str):
            raise ConfigurationError(
                f"option {name!r}: tag names and values must be str, not {key!r}: {tag_value!r}"
            )
        if not key or not tag_value:
            raise ConfigurationError(
                f"option {name!r}: tag {key!r}: {tag_value!r} has an empty name or value"
            )
    return tags


def _read_preference_tags(name: str, value: Any, from_uri: bool) -> List[Dict[str, str]]:
    """Keyword form: a list of tag sets, or one tag set string."""
    if isinstance(value, str):
        return [_tag_set(name, value)]
    if isinstance(value, (list, tuple)):
        return [_tag_set(name, item) for item in value]
    raise _type_error(name, value, "a list of tag sets")


def _enum_of(choices: Tuple[str, ...], case: Callable[[str], str]) -> Validator:
    by_key = {case(choice): choice for choice in choices}

    def check(name: str, value: Any, from_uri: bool) -> str:
        text = _string(name, value, from_uri)
        choice = by_key.get(case(text))
        if choice is None:
            raise ConfigurationError(
                f"option {name!r} must be one of {', '.join(choices)}, not {text!r}"
            )
        return choice

    return check


AUTH_MECHANISMS = (
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "MONGODB-CR",
    "MONGODB-X509",
    "PLAIN",
    "GSSAPI",
    "MONGODB-AWS",
)
COMPRESSORS = ("snappy", "zlib", "zstd")
_compressor = _enum_of(COMPRESSORS, str.lower)


def _compressors(name: str, value: Any, from_uri: bool) -> List[str]:
    """``'zstd,zlib'`` or a list of names; order is the client's preference, repeats dropped."""
    if isinstance(value, str):
        items: List[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _type_error(name, value, "a list of compressor names")
    result: List[str] = []
    for item in items:
        compressor = _compressor(name, item, from_uri)
        if compressor not in result:
            result.append(compressor)
    return result


# Canonical name -> validator. The order is the order of docs/uri.md.
_VALIDATORS: Dict[str, Validator] = {
    "replicaSet": _string,
    "directConnection": _boolean,
    "w": _write_concern_w,
    "wTimeoutMS": _integer(0),
    "journal": _boolean,
    "safe": _boolean,
    "retryWrites": _boolean,
    "maxPoolSize": _integer(1),
    "minPoolSize": _integer(0),
    "waitQueueTimeoutMS": _integer(0),
    "maxIdleTimeMS": _integer(0),
    "connectTimeoutMS": _integer(0),
    "socketTimeoutMS": _integer(0),
    "serverSelectionTimeoutMS": _integer(0),
    "heartbeatFrequencyMS": _integer(1),
    "localThresholdMS": _integer(0),
    "readPreference": _read_preference,
    "readPreferenceTags": _read_preference_tags,
    "authSource": _string,
    "authMechanism": _enum_of(AUTH_MECHANISMS, str.upper),
    "tls": _boolean,
    "tlsCAFile": _string,
    "tlsCertificateKeyFile": _string,
    "tlsAllowInvalidCertificates": _boolean,
    "tlsAllowInvalidHostnames": _boolean,
    "appName": _app_name,
    "compressors": _compressors,
    "autoStartRequest": _boolean,
    "useGreenlets": _boolean,
}

# Lower-cased spelling -> canonical name, for the URI and for keyword arguments.
_URI_NAMES: Dict[str, str] = {canonical.lower(): canonical for canonical in _VALIDATORS}
_URI_NAMES.update({"ssl": "tls", "j": "journal"})

# pymongo-2.x keyword spellings, accepted by validate_options only.
_KEYWORD_NAMES: Dict[str, str] = dict(_URI_NAMES)
_KEYWORD_NAMES.update(
    {
        "max_pool_size": "maxPoolSize",
        "auto_start_request": "autoStartRequest",
        "use_greenlets": "useGreenlets",
        "read_preference": "readPreference",
        "tag_sets": "readPreferenceTags",
        "secondary_acceptable_latency_ms": "localThresholdMS",
    }
)

_TLS_DEPENDENT = (
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
)


def _canonical(name: str, names: Mapping[str, str]) -> str:
    canonical = names.get(name.lower())
    if canonical is None:
        import difflib  # only on the error path

        hint = difflib.get_close_matches(name.lower(), list(names), n=1)
        suggestion = f"; did you mean {names[hint[0]]!r}?" if hint else ""
        raise ConfigurationError(f"unknown option {name!r}{suggestion}")
    return canonical


def _check_combinations(options: Mapping[str, Any]) -> None:
    """Checks between options that appear together in one URI or one set of keywords."""
    low, high = options.get("minPoolSize"), options.get("maxPoolSize")
    if low is not None and high is not None and low > high:
        raise ConfigurationError(
            f"option 'minPoolSize' ({low}) must not exceed 'maxPoolSize' ({high})"
        )
    if options.get("w") == 0 and options.get("journal") is True:
        raise ConfigurationError("options 'w=0' and 'journal=true' contradict each other")
    if options.get("tls") is False:
        for name in _TLS_DEPENDENT:
            if name in options:
                raise ConfigurationError(f"option {name!r} needs TLS, but 'tls' is false")
    tags = options.get("readPreferenceTags")
    if options.get("readPreference") == "primary" and tags and any(tags):
        raise ConfigurationError(
            "option 'readPreferenceTags' cannot be used with readPreference 'primary'"
        )


def _collect(
    pairs: Sequence[Tuple[str, Any]], names: Mapping[str, str], from_uri: bool
) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    seen: Dict[str, str] = {}  # canonical name -> the spelling that set it
    carried_tags: Any = None  # tag sets carried by a ReadPreference object
    for spelling, value in pairs:
        canonical = _canonical(spelling, names)
        if not from_uri and value is None:
            continue
        if canonical == "readPreference" and not from_uri:
            tag_sets = getattr(value, "tag_sets", None)
            if isinstance(tag_sets, (list, tuple)) and any(tag_sets):
                carried_tags = tag_sets
        validator = _VALIDATORS[canonical]
        if canonical == "readPreferenceTags" and from_uri:
            options.setdefault(canonical, []).append(_tag_set(canonical, value))
            continue
        if canonical in seen:
            first = seen[canonical]
            also = "" if first == spelling else f" (as {first!r} and {spelling!r})"
            raise ConfigurationError(f"option {canonical!r} given more than once{also}")
        seen[canonical] = spelling
        try:
            options[canonical] = validator(canonical, value, from_uri)
        except ConfigurationError as exc:
            if spelling.lower() != canonical.lower():
                raise ConfigurationError(f"{exc} (given as {spelling!r})") from None
            raise
    if carried_tags is not None:
        tags = _read_preference_tags("readPreferenceTags", carried_tags, False)
        if options.setdefault("readPreferenceTags", tags) != tags:
            raise ConfigurationError(
                "option 'readPreferenceTags' conflicts with the tag sets of 'readPreference'"
            )
    _check_combinations(options)
    return options


def validate_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """Validate and normalise keyword options for ``Connection(...)``.

    Names are the URI option names (case-insensitive; ``ssl`` and ``j`` are aliases) plus the
    pymongo-2.x spellings ``max_pool_size``, ``auto_start_request``, ``use_greenlets``,
    ``read_preference``, ``tag_sets`` and ``secondary_acceptable_latency_ms``. Values must have
    their Python type: booleans are real ``bool``, numbers real ``int``. ``None`` means "not
    given" and the option is left out. Returns a new dict keyed by canonical names.
    """
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"options must be a mapping, not {type(options).__name__}")
    pairs: List[Tuple[str, Any]] = []
    for key, value in options.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"option names must be str, not {key!r}")
        pairs.append((key, value))
    return _collect(pairs, _KEYWORD_NAMES, from_uri=False)


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
    options = _collect(_parse_query(query), _URI_NAMES, from_uri=True)
    if options.get("directConnection") and len(hosts) > 1:
        raise ConfigurationError("option 'directConnection=true' allows only one host")
    return ParsedURI(
        hosts=hosts,
        username=username,
        password=password,
        database=database,
        collection=collection,
        options=options,
    )
