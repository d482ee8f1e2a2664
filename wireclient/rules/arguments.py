"""Checks of the public methods' arguments, made at the call, before anything is sent.

``Collection``, ``Cursor``, ``Database`` and ``WriteConcern.resolve`` check what they are
given here, so that a bad argument is a typed error naming it (see ``errors.py``): a wrong
type is ``InvalidArgument`` (a ``TypeError``), a wrong value ``ConfigurationError``, a value
that is not a document where one is wanted ``DocumentTypeError``, and a document bson cannot
encode ``InvalidDocument``. ``encode`` is the one place a document is turned into BSON for a
check: every error bson can raise for content (a reference cycle shows up as a
``RecursionError``) becomes ``InvalidDocument``.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Callable, List, Mapping, Optional, Sequence

from bson.errors import BSONError

from wireclient.errors import (
    ConfigurationError,
    DocumentTypeError,
    InvalidArgument,
    InvalidDocument,
)
from wireclient.protocol._common import _DEFAULT_OPTS, _dict_to_bson

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

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


def check_read_preference(value: Any, name: str = "read_preference") -> Any:
    """``value`` if it is None or something ``ReadPreference.from_value`` reads."""
    if value is not None:
        from wireclient.sdam.read_preferences import ReadPreference  # loaded only when given

        ReadPreference.from_value(value)
    return value


__all__ = [
    "ENCODE_ERRORS",
    "INT32_MAX",
    "INT64_MAX",
    "check_bool",
    "check_document",
    "check_int",
    "check_mapping",
    "check_optional_bool",
    "check_read_preference",
    "check_str",
    "encode",
    "encode_many",
    "type_name",
]
