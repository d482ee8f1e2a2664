"""Connection options: the one option table, its validators, and the merge of URI and keywords.

Theory of operation
-------------------
Every option has one canonical camelCase name and one validator, in ``_VALIDATORS``. Options
come from two places, and each is validated on its own terms:

* a URI query (``uri.parse_uri`` hands over the percent-decoded ``(name, value)`` strings to
  ``validate_uri_options``): names are case-insensitive, ``ssl`` and ``j`` are aliases,
  values are strings converted to Python types, and ``readPreferenceTags`` may repeat;
* keyword arguments (``validate_options``): the same names plus the pymongo-2.x spellings
  (``max_pool_size``, ``tag_sets``, ...); values must already have their Python type (a real
  ``bool``, a real ``int``), and ``None`` means "not given".

A validator takes ``(canonical name, value, from_uri)`` and returns the typed value. It
accepts its own output, so typed options (``parse_uri(...).options``) validate again as is.

Checks between options (``_check_combinations``: minPoolSize above maxPoolSize, ``w=0`` with
``journal``, ``tls=false`` with a ``tls*`` option, tags with ``readPreference=primary``) need
a complete set. A URI must make sense by itself, so ``validate_uri_options`` runs them on the
URI's options; ``validate_options`` runs them on one mapping of keywords; ``merge_options``
validates the keywords, lets each one replace the same option from the URI, and runs them
once on the merged result, which is the set a ``Connection`` uses. The checks forbid two
options being present together, and a positive ``maxStalenessSeconds`` without a
``readPreference`` other than ``primary`` (so that one may pass merged with a URI's mode).

The authentication mechanisms wireclient knows are listed here too: those it implements (in
``transport.auth``, which imports hashlib and hmac and so stays out of this pure layer), the
``DEFAULT`` negotiation, and those MongoDB has that it refuses, with the reason; ``auth`` and
the ``authMechanism`` validator share that one list and one check. So is the
``maxStalenessSeconds`` rule on the value (``max_staleness_value``), which ``ReadPreference``
applies too; what a max staleness means for a replica set is ``sdam.staleness``'s.

Every failure is a ``ConfigurationError`` naming the option (and the spelling it was given
as, when that differs from the canonical name).
"""

from __future__ import annotations

import enum
import re
import warnings
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

from wireclient.errors import ConfigurationError
from wireclient.rules.wire import INT32_MAX

__all__ = [
    "DEFAULT_HEARTBEAT_FREQUENCY_MS",
    "DEFAULT_LOCAL_THRESHOLD_MS",
    "DEFAULT_SERVER_SELECTION_TIMEOUT_MS",
    "DEFAULT_MAX_CONNECTING",
    "AUTH_MECHANISMS",
    "COMPRESSORS",
    "DEFAULT_MECHANISM",
    "READ_PREFERENCE_MODES",
    "SCRAM_SHA_1",
    "SCRAM_SHA_256",
    "UNSUPPORTED_MECHANISMS",
    "check_auth_mechanism",
    "NO_MAX_STALENESS",
    "check_auth_options",
    "check_direct_connection",
    "max_staleness_value",
    "merge_options",
    "validate_options",
    "validate_uri_options",
]

_DIGITS = re.compile(r"-?[0-9]+")

# Each validator takes (canonical name, value, from_uri) and returns the typed value. With
# from_uri=True the value is the percent-decoded string from the URI; otherwise it is a
# Python value given as a keyword argument (or the output of an earlier validation).
Validator = Callable[[str, Any, bool], Any]


# ------------------------------------------------------------------- authentication mechanisms

SCRAM_SHA_1 = "SCRAM-SHA-1"
SCRAM_SHA_256 = "SCRAM-SHA-256"
AUTH_MECHANISMS = (SCRAM_SHA_256, SCRAM_SHA_1)
"""The mechanisms wireclient implements (in ``auth``), in order of preference."""

# The defaults of the server-selection and monitoring options, as the specifications give
# them (one home: the selectors, the monitor and the read-preference rules import them).
DEFAULT_LOCAL_THRESHOLD_MS = 15  # localThresholdMS: the latency window
DEFAULT_HEARTBEAT_FREQUENCY_MS = 10_000  # heartbeatFrequencyMS: between a member's checks
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 30_000  # serverSelectionTimeoutMS
DEFAULT_MAX_CONNECTING = 2  # CMAP's maxConnecting: connects in progress at once, per pool

DEFAULT_MECHANISM = "DEFAULT"
"""``authMechanism=DEFAULT``: negotiate (SCRAM-SHA-256 when the server lists it)."""

UNSUPPORTED_MECHANISMS: Mapping[str, str] = {
    "MONGODB-CR": "MongoDB 4.0 removed it and wireclient does not implement it; "
    "SCRAM-SHA-1 replaces it",
    "MONGODB-X509": "wireclient does not implement client-certificate (X.509) authentication",
    "PLAIN": "wireclient does not implement LDAP (PLAIN) authentication",
    "GSSAPI": "wireclient does not implement Kerberos (GSSAPI) authentication",
    "MONGODB-AWS": "wireclient does not implement AWS IAM authentication",
    "MONGODB-OIDC": "wireclient does not implement OIDC authentication",
}
"""Mechanisms MongoDB knows and wireclient refuses, with the reason given."""


def check_auth_mechanism(mechanism: str) -> str:
    """The canonical (upper-case) spelling of ``mechanism``: one of ``AUTH_MECHANISMS`` or
    ``DEFAULT_MECHANISM``. A mechanism MongoDB knows but wireclient does not implement, or an
    unknown one, raises ``ConfigurationError`` naming it and what is supported."""
    canonical = mechanism.upper()
    if canonical in AUTH_MECHANISMS or canonical == DEFAULT_MECHANISM:
        return canonical
    supported = ", ".join(AUTH_MECHANISMS)
    reason = UNSUPPORTED_MECHANISMS.get(canonical)
    if reason is not None:
        raise ConfigurationError(
            f"authMechanism {canonical!r} is not supported by wireclient ({reason}); "
            f"supported: {supported} (or {DEFAULT_MECHANISM} to negotiate)"
        )
    raise ConfigurationError(
        f"unknown authMechanism {mechanism!r}; supported: {supported} "
        f"(or {DEFAULT_MECHANISM} to negotiate)"
    )


# ------------------------------------------------------------------------ option validators


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
        if number > INT32_MAX:
            raise ConfigurationError(f"option {name!r} must be <= {INT32_MAX}, not {number}")
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


def _auth_mechanism(name: str, value: Any, from_uri: bool) -> str:
    return check_auth_mechanism(_string(name, value, from_uri))


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
    an object with a ``mode`` string such as ``wireclient.sdam.read_preferences.ReadPreference``."""
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


COMPRESSORS = ("snappy", "zlib", "zstd")
_COMPRESSORS_BY_KEY = {name: name for name in COMPRESSORS}


def _compressors(name: str, value: Any, from_uri: bool) -> List[str]:
    """``'zstd,zlib'`` or a list of names; order is the client's preference, repeats dropped.
    An unknown name is left out with a warning (the compression and connection-string specs:
    it MUST warn and MUST NOT be offered), so the result may be empty."""
    if isinstance(value, str):
        items: List[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise _type_error(name, value, "a list of compressor names")
    result: List[str] = []
    for item in items:
        text = _string(name, item, from_uri)
        compressor = _COMPRESSORS_BY_KEY.get(text.strip().lower())
        if compressor is None:
            known = ", ".join(COMPRESSORS)
            message = f"option {name!r}: unknown compressor {text!r} ignored ({known})"
            warnings.warn(message, stacklevel=2)
        elif compressor not in result:
            result.append(compressor)
    return result


def _zlib_level(name: str, value: Any, from_uri: bool) -> int:
    """-1 (zlib's default, 6) to 9 (best compression); 0 stores without compressing."""
    number = int(_integer(-1)(name, value, from_uri))
    if number > 9:
        raise ConfigurationError(f"option {name!r} must be between -1 and 9, not {number}")
    return number


NO_MAX_STALENESS = -1
"""``maxStalenessSeconds=-1``: no maximum (the default)."""


def max_staleness_value(
    value: Any, name: str = "maxStalenessSeconds", from_text: bool = False
) -> int:
    """``value`` as a max staleness in seconds: ``-1`` (also for ``None``) or a positive int;
    with ``from_text`` (a URI's value) a string of digits. Anything else (``0``, another
    negative number, a float, a bool) raises ``ConfigurationError``. (The rules a replica set
    adds, a minimum and the members' wire versions, are ``sdam.staleness``'s.)"""
    if value is None:
        return NO_MAX_STALENESS
    if isinstance(value, str) and from_text:
        if not _DIGITS.fullmatch(value):
            raise ConfigurationError(
                f"option {name!r} must be an integer number of seconds, not {value!r}"
            )
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"option {name!r} must be an integer number of seconds (or -1), not {value!r}"
        )
    if value == NO_MAX_STALENESS:
        return NO_MAX_STALENESS
    if value <= 0:
        raise ConfigurationError(
            f"option {name!r} must be a positive number of seconds, or -1 for no maximum, "
            f"not {value}"
        )
    return int(value)


def _max_staleness(name: str, value: Any, from_uri: bool) -> int:
    """Text only from a URI."""
    return max_staleness_value(value, name, from_text=from_uri)


# ------------------------------------------------------------------------------ the table

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
    "maxStalenessSeconds": _max_staleness,
    "authSource": _string,
    "authMechanism": _auth_mechanism,
    "tls": _boolean,
    "tlsCAFile": _string,
    "tlsCertificateKeyFile": _string,
    "tlsAllowInvalidCertificates": _boolean,
    "tlsAllowInvalidHostnames": _boolean,
    "appName": _app_name,
    "compressors": _compressors,
    "zlibCompressionLevel": _zlib_level,
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
        "wtimeout": "wTimeoutMS",  # pymongo 2.x's keyword for the default write concern
    }
)

_TLS_DEPENDENT = (
    "tlsCAFile",
    "tlsCertificateKeyFile",
    "tlsAllowInvalidCertificates",
    "tlsAllowInvalidHostnames",
)


# ------------------------------------------------------------------------------ validation


def _canonical(name: str, names: Mapping[str, str]) -> str:
    canonical = names.get(name.lower())
    if canonical is None:
        import difflib  # only on the error path

        hint = difflib.get_close_matches(name.lower(), list(names), n=1)
        suggestion = f"; did you mean {names[hint[0]]!r}?" if hint else ""
        raise ConfigurationError(f"unknown option {name!r}{suggestion}")
    return canonical


def _check_combinations(options: Mapping[str, Any]) -> None:
    """Checks between options of one complete set (see the module docstring)."""
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
    if options.get("maxStalenessSeconds", NO_MAX_STALENESS) != NO_MAX_STALENESS:
        if options.get("readPreference", "primary") == "primary":
            raise ConfigurationError(
                "option 'maxStalenessSeconds' needs a readPreference other than 'primary' "
                "(the default)"
            )


def _collect(
    pairs: Sequence[Tuple[str, Any]], names: Mapping[str, str], from_uri: bool
) -> Dict[str, Any]:
    """Validate one source of options (no checks between options)."""
    options: Dict[str, Any] = {}
    seen: Dict[str, str] = {}  # canonical name -> the spelling that set it
    carried_tags: Any = None  # tag sets carried by a ReadPreference object
    carried_staleness: Any = None  # and its max staleness
    for spelling, value in pairs:
        canonical = _canonical(spelling, names)
        if not from_uri and value is None:
            continue
        if canonical == "readPreference" and not from_uri:
            tag_sets = getattr(value, "tag_sets", None)
            if isinstance(tag_sets, (list, tuple)) and any(tag_sets):
                carried_tags = tag_sets
            staleness = getattr(value, "max_staleness", None)
            if isinstance(staleness, int) and staleness != NO_MAX_STALENESS:
                carried_staleness = staleness
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
    if carried_staleness is not None:  # already checked by the ReadPreference
        if options.setdefault("maxStalenessSeconds", carried_staleness) != carried_staleness:
            raise ConfigurationError("option 'maxStalenessSeconds' conflicts with 'readPreference'")
    return options


def _typed(options: Mapping[str, Any], what: str, names: Mapping[str, str]) -> Dict[str, Any]:
    """Validate a mapping of typed options (keyword form), without checks between them."""
    if not isinstance(options, Mapping):
        raise ConfigurationError(f"{what} must be a mapping, not {type(options).__name__}")
    pairs: List[Tuple[str, Any]] = []
    for key, value in options.items():
        if not isinstance(key, str):
            raise ConfigurationError(f"option names must be str, not {key!r}")
        pairs.append((key, value))
    return _collect(pairs, names, from_uri=False)


def validate_uri_options(pairs: Sequence[Tuple[str, str]]) -> Dict[str, Any]:
    """Validate the percent-decoded ``(name, value)`` pairs of a URI query, in order.

    Names are case-insensitive (``ssl`` and ``j`` are aliases); each option may appear once,
    except ``readPreferenceTags``, whose tag sets are kept in order. Returns a new dict keyed
    by canonical names, with typed values.
    """
    options = _collect(pairs, _URI_NAMES, from_uri=True)
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
    result = _typed(options, "options", _KEYWORD_NAMES)
    _check_combinations(result)
    return result


def merge_options(
    uri_options: Mapping[str, Any], keyword_options: Mapping[str, Any]
) -> Dict[str, Any]:
    """The options a ``Connection`` uses: the URI's, with each keyword option replacing the
    same option from the URI, validated once as a whole.

    ``uri_options`` are typed options under their URI names (``parse_uri(...).options``);
    they are validated again, so a hand-made mapping is held to the same rules.
    ``keyword_options`` are validated as by ``validate_options``. A keyword that sets an
    option the URI also sets is an override, not a repeat (two spellings of one option among
    the keywords still are). Checks between options run once, on the merged result. Returns
    a new dict keyed by canonical names.
    """
    merged = _typed(uri_options, "uri_options", _URI_NAMES)
    merged.update(_typed(keyword_options, "keyword_options", _KEYWORD_NAMES))
    _check_combinations(merged)
    return merged


def check_auth_options(username: Any, options: Mapping[str, Any]) -> None:
    """``authMechanism`` and ``authSource`` need a user to authenticate."""
    if username is None and (options.get("authMechanism") or options.get("authSource")):
        raise ConfigurationError("authMechanism/authSource given without a username")


def check_direct_connection(options: Mapping[str, Any], host_count: int) -> None:
    """``directConnection=true`` allows only one host."""
    if options.get("directConnection") and host_count > 1:
        raise ConfigurationError("option 'directConnection=true' allows only one host")
