"""Sort and index specifications: the key directions and index types, and
``index_document``, which turns the forms pymongo accepts (``'a'``, ``[('a', 1)]``, a
mapping) into one ordered ``{key: direction}`` document, checked before anything is sent.
Used by ``Cursor.sort``, ``create_index`` / ``drop_index`` and the modern helpers' ``sort``.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Dict, Optional

from wireclient.errors import ConfigurationError, InvalidArgument
from wireclient.rules.arguments import encode, type_name

__all__ = [
    "ASCENDING",
    "DESCENDING",
    "GEO2D",
    "GEOHAYSTACK",
    "GEOSPHERE",
    "HASHED",
    "TEXT",
    "index_document",
]

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
