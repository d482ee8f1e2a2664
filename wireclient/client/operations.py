"""The request classes of pymongo 4's ``bulk_write``, and ``ReturnDocument``.

``coll.bulk_write([InsertOne({...}), UpdateOne({'a': 1}, {'$set': {...}}, upsert=True),
ReplaceOne(...), UpdateMany(...), DeleteOne(...), DeleteMany(...)])``. A request holds its
arguments and adds itself to a bulk (``bulk.Bulk``), where they are checked, as the 2.8 bulk
API's are. ``ReturnDocument.BEFORE`` / ``AFTER`` choose what ``find_one_and_update`` and
``find_one_and_replace`` return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    from wireclient.client.bulk import Bulk


class ReturnDocument:
    """What ``find_one_and_update`` / ``find_one_and_replace`` return: the document as it
    was (``BEFORE``, the default) or as it is after the change (``AFTER``)."""

    BEFORE = False
    AFTER = True


class _Request:
    __slots__ = ()
    _fields: Sequence[str] = ()

    def _add_to(self, bulk: Bulk) -> None:
        raise NotImplementedError

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._values() == other._values()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        args = ", ".join(repr(getattr(self, name)) for name in self._fields)
        return f"{type(self).__name__}({args})"


class InsertOne(_Request):
    __slots__ = ("document",)
    _fields = ("document",)

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def _add_to(self, bulk: Bulk) -> None:
        bulk.add_insert(self.document)


class _Update(_Request):
    __slots__ = ("filter", "update", "upsert", "collation", "array_filters", "hint")
    _fields = ("filter", "update", "upsert", "collation", "array_filters", "hint")
    _multi = False

    def __init__(
        self,
        filter: Mapping[str, Any],
        update: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]],
        upsert: bool = False,
        collation: Optional[Mapping[str, Any]] = None,
        array_filters: Optional[Sequence[Mapping[str, Any]]] = None,
        hint: Any = None,
    ) -> None:
        self.filter = filter
        self.update = update
        self.upsert = upsert
        self.collation = collation
        self.array_filters = array_filters
        self.hint = hint

    def _add_to(self, bulk: Bulk) -> None:
        bulk.add_update(
            self.filter,
            self.update,
            multi=self._multi,
            upsert=self.upsert,
            collation=self.collation,
            array_filters=self.array_filters,
            hint=self.hint,
        )


class UpdateOne(_Update):
    """Update the first document matching ``filter`` (``update``: operators, or a pipeline)."""

    __slots__ = ()


class UpdateMany(_Update):
    """Update every document matching ``filter``."""

    __slots__ = ()
    _multi = True


class ReplaceOne(_Request):
    """Replace the first document matching ``filter`` with ``replacement``."""

    __slots__ = ("filter", "replacement", "upsert", "collation", "hint")
    _fields = ("filter", "replacement", "upsert", "collation", "hint")

    def __init__(
        self,
        filter: Mapping[str, Any],
        replacement: Mapping[str, Any],
        upsert: bool = False,
        collation: Optional[Mapping[str, Any]] = None,
        hint: Any = None,
    ) -> None:
        self.filter = filter
        self.replacement = replacement
        self.upsert = upsert
        self.collation = collation
        self.hint = hint

    def _add_to(self, bulk: Bulk) -> None:
        bulk.add_replace(
            self.filter,
            self.replacement,
            upsert=self.upsert,
            collation=self.collation,
            hint=self.hint,
        )


class _Delete(_Request):
    __slots__ = ("filter", "collation", "hint")
    _fields = ("filter", "collation", "hint")
    _limit = 1

    def __init__(
        self,
        filter: Mapping[str, Any],
        collation: Optional[Mapping[str, Any]] = None,
        hint: Any = None,
    ) -> None:
        self.filter = filter
        self.collation = collation
        self.hint = hint

    def _add_to(self, bulk: Bulk) -> None:
        bulk.add_delete(self.filter, self._limit, collation=self.collation, hint=self.hint)


class DeleteOne(_Delete):
    """Delete the first document matching ``filter``."""

    __slots__ = ()


class DeleteMany(_Delete):
    """Delete every document matching ``filter``."""

    __slots__ = ()
    _limit = 0


__all__ = [
    "DeleteMany",
    "DeleteOne",
    "InsertOne",
    "ReplaceOne",
    "ReturnDocument",
    "UpdateMany",
    "UpdateOne",
]
