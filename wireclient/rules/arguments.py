"""Checks of the public methods' arguments, made at the call, before anything is sent.

``Collection``, ``Cursor``, ``Database`` and ``WriteConcern.resolve`` check what they are
given here, so that a bad argument is a typed error naming it (see ``errors.py``): a wrong
type is ``InvalidArgument`` (a ``TypeError``), a wrong value ``ConfigurationError``, a value
that is not a document where one is wanted ``DocumentTypeError``, and a document bson cannot
encode ``InvalidDocument``. ``encode`` is the one place a document is turned into BSON for a
check: every error bson can raise for content (a reference cycle shows up as a
``RecursionError``) becomes ``InvalidDocument``.

Sort and index specifications are arguments too: ``index_document`` turns the forms pymongo
accepts (``'a'``, ``[('a', 1)]``, a mapping) into one ordered ``{key: direction}`` document,
checked before anything is sent (``Cursor.sort``, ``create_index`` / ``drop_index``, the
modern helpers' ``sort``). A read preference argument is checked by
``wireclient.sdam.read_preferences.check_read_preference``, beside the class that reads it.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from bson.errors import BSONError

from wireclient.errors import (
    ConfigurationError,
    DocumentTypeError,
    InvalidArgument,
    InvalidDocument,
)
from wireclient.protocol._common import _DEFAULT_OPTS, _dict_to_bson
from wireclient.rules.wire import INT64_MAX

# What bson raises for a document it cannot encode: its own errors, TypeError / ValueError
# for values and keys, OverflowError for ints beyond int64, RecursionError for a document
# that contains itself (or nests too deeply).
ENCODE_ERRORS = (BSONError, TypeError, ValueError, OverflowError, RecursionError)
_MAX_REASON = 200


def type_name(value: Any) -> str:
    return type(value).__name__


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a real ``bool``; ``1`` or ``'yes'`` are refused."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be True or False, not {type_name(value)}")
    return value


def check_optional_bool(value: Any, name: str) -> Optional[bool]:
    return None if value is None else check_bool(value, name)


def check_int(value: Any, name: str, minimum: int = -INT64_MAX, maximum: int = INT64_MAX) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, not {type_name(value)}")
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, not {value}")
    return int(value)


def check_str(value: Any, name: str) -> str:
    """``value`` if it is a non-empty ``str``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, not {type_name(value)}")
    if not value:
        raise ConfigurationError(f"{name} must not be empty")
    return value


def check_mapping(value: Any, name: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping (a document); anything else is a ``DocumentTypeError``."""
    if value.__class__ is not dict and not isinstance(value, abc.Mapping):
        raise DocumentTypeError(f"{name} must be a mapping (a document), not {type_name(value)}")
    return value


def encode(doc: Mapping[str, Any], name: str, check_keys: bool = False) -> bytes:
    """``doc`` as BSON; ``InvalidDocument`` naming ``name`` for anything bson refuses.

    With ``check_keys`` keys must not start with ``$`` nor contain ``.``, at any depth.
    """
    try:
        data: bytes = _dict_to_bson(doc, check_keys, _DEFAULT_OPTS)
    except RecursionError:
        reason = "it contains itself (a reference cycle) or is nested too deeply"
    except ENCODE_ERRORS as exc:
        reason = str(exc).removeprefix("Invalid document: ")
        if len(reason) > _MAX_REASON:  # bson may quote a whole value
            reason = reason[:_MAX_REASON] + "..."
    else:
        return data
    raise InvalidDocument(f"{name} cannot be sent: {reason}")


def encode_many(
    docs: Sequence[Mapping[str, Any]], name: Callable[[int], str], check_keys: bool = False
) -> List[bytes]:
    """Each of ``docs`` as BSON, as ``encode`` would give it, encoding them in one tight
    loop; the first one bson refuses raises ``encode``'s ``InvalidDocument``, named
    ``name(index)`` (only computed then)."""
    try:
        return [_dict_to_bson(doc, check_keys, _DEFAULT_OPTS) for doc in docs]
    except ENCODE_ERRORS:
        for index, doc in enumerate(docs):
            encode(doc, name(index), check_keys)  # raises for the first one refused
        raise


def check_document(value: Any, name: str) -> Mapping[str, Any]:
    """A mapping bson can encode (keys unchecked): a filter, a projection, a command."""
    encode(check_mapping(value, name), name)
    return value  # type: ignore[no-any-return]


# -- sort and index key documents ----------------------------------------------------------

ASCENDING = 1
DESCENDING = -1
GEO2D = "2d"
GEOHAYSTACK = "geoHaystack"
GEOSPHERE = "2dsphere"
HASHED = "hashed"
TEXT = "text"


def _check_key(key: Any, direction: Any) -> None:
    """A field name, and a direction: a number (1, -1), an index type ('2dsphere', 'text',
    'hashed') or a document (``{'$meta': 'textScore'}`` in a sort)."""
    if not isinstance(key, str):
        raise InvalidArgument(f"sort/index key names must be strings, not {type_name(key)}")
    if not key:
        raise ConfigurationError("sort/index key names must not be empty")
    if isinstance(direction, bool) or not isinstance(direction, (int, float, str, abc.Mapping)):
        raise InvalidArgument(
            f"the direction of key {key!r} must be 1, -1, an index type such as '2dsphere' "
            f"or a document, not {type_name(direction)}"
        )
    if isinstance(direction, str) and not direction:
        raise ConfigurationError(f"the direction of key {key!r} must not be empty")


def index_document(key_or_list: Any, direction: Optional[Any] = None) -> Dict[str, Any]:
    """``'a'`` / ``('a', 1)`` lists / a mapping -> an ordered ``{key: direction}`` document."""
    out: Dict[str, Any] = {}
    if isinstance(key_or_list, str):
        out[key_or_list] = ASCENDING if direction is None else direction
    elif isinstance(key_or_list, abc.Mapping):
        out = dict(key_or_list)
    elif isinstance(key_or_list, (list, tuple)):
        for item in key_or_list:
            if isinstance(item, str):
                out[item] = ASCENDING
            elif isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
                out[item[0]] = item[1]
            else:
                raise ConfigurationError(
                    f"bad sort/index key of type {type_name(item)}: use 'key' or (key, direction)"
                )
    else:
        raise InvalidArgument(
            "a sort/index specification must be a key name, a list of (key, direction) "
            f"pairs or a mapping, not {type_name(key_or_list)}"
        )
    if not out:
        raise ConfigurationError("empty sort/index key list")
    for key, value in out.items():
        _check_key(key, value)
    encode(out, "the sort/index specification")  # a direction may be a document
    return out


__all__ = [
    "ASCENDING",
    "DESCENDING",
    "ENCODE_ERRORS",
    "GEO2D",
    "GEOHAYSTACK",
    "GEOSPHERE",
    "HASHED",
    "TEXT",
    "check_bool",
    "check_document",
    "check_int",
    "check_mapping",
    "check_optional_bool",
    "check_str",
    "encode",
    "encode_many",
    "index_document",
    "type_name",
]
