"""The result objects of pymongo 4's write methods, with pymongo 4's names and rules.

``insert_one`` -> ``InsertOneResult``, ``insert_many`` -> ``InsertManyResult``,
``update_one`` / ``update_many`` / ``replace_one`` -> ``UpdateResult``, ``delete_one`` /
``delete_many`` -> ``DeleteResult``, ``bulk_write`` -> ``BulkWriteResult``. Each says
whether the write was ``acknowledged``; the counts of an unacknowledged write are unknown,
and reading one raises ``InvalidOperation`` (the ids the client chose are known either way).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from wireclient.errors import InvalidOperation


def update_result_document(reply: Mapping[str, Any]) -> Dict[str, Any]:
    """pymongo 2.8's update result (``ok``, ``n``, ``nModified``, ``updatedExisting``, and
    ``upserted``, the new ``_id``) from an update command's reply."""
    n = int(reply.get("n", 0))
    result: Dict[str, Any] = {
        "ok": reply.get("ok"),
        "n": n,
        "nModified": reply.get("nModified", 0),
        "updatedExisting": n > 0 and not reply.get("upserted"),
    }
    upserted = reply.get("upserted")
    if upserted:
        result["upserted"] = upserted[0].get("_id")
    return result


class _WriteResult:
    __slots__ = ("_acknowledged",)

    def __init__(self, acknowledged: bool) -> None:
        self._acknowledged = acknowledged

    @property
    def acknowledged(self) -> bool:
        """Whether the server acknowledged the write (False with ``w=0``)."""
        return self._acknowledged

    def _known(self, name: str) -> None:
        if not self._acknowledged:
            raise InvalidOperation(
                f"{name} is not known for an unacknowledged write (w=0): check acknowledged first"
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._shown())
        return f"{type(self).__name__}({fields}, acknowledged={self._acknowledged})"

    def _shown(self) -> List[str]:
        return []


class InsertOneResult(_WriteResult):
    __slots__ = ("_inserted_id",)

    def __init__(self, inserted_id: Any, acknowledged: bool) -> None:
        super().__init__(acknowledged)
        self._inserted_id = inserted_id

    @property
    def inserted_id(self) -> Any:
        """The ``_id`` of the document (the one given, or the ``ObjectId`` added)."""
        return self._inserted_id

    def _shown(self) -> List[str]:
        return ["inserted_id"]


class InsertManyResult(_WriteResult):
    __slots__ = ("_inserted_ids",)

    def __init__(self, inserted_ids: List[Any], acknowledged: bool) -> None:
        super().__init__(acknowledged)
        self._inserted_ids = inserted_ids

    @property
    def inserted_ids(self) -> List[Any]:
        """The ``_id`` of every document, in order (of those sent: a failed ordered insert
        raises ``BulkWriteError`` instead)."""
        return self._inserted_ids

    def _shown(self) -> List[str]:
        return ["inserted_ids"]


class _RawResult(_WriteResult):
    """A result that keeps the command's (or 2.8's) result document as ``raw_result``."""

    __slots__ = ("_raw",)

    def __init__(self, raw_result: Optional[Mapping[str, Any]], acknowledged: bool) -> None:
        super().__init__(acknowledged)
        self._raw = dict(raw_result or {})

    @property
    def raw_result(self) -> Dict[str, Any]:
        """For an update ``{'ok', 'n', 'nModified', 'updatedExisting'[, 'upserted']}``; for
        a delete ``{'ok', 'n'}``."""
        return self._raw

    def _shown(self) -> List[str]:
        return ["raw_result"]


class UpdateResult(_RawResult):
    __slots__ = ()

    @property
    def matched_count(self) -> int:
        self._known("matched_count")
        if self.upserted_id is not None:
            return 0
        return int(self._raw.get("n", 0))

    @property
    def modified_count(self) -> int:
        self._known("modified_count")
        return int(self._raw.get("nModified", 0))

    @property
    def upserted_id(self) -> Any:
        """The ``_id`` of the upserted document, or None."""
        self._known("upserted_id")
        return self._raw.get("upserted")


class DeleteResult(_RawResult):
    __slots__ = ()

    @property
    def deleted_count(self) -> int:
        self._known("deleted_count")
        return int(self._raw.get("n", 0))


class BulkWriteResult(_WriteResult):
    __slots__ = ("_result",)

    def __init__(self, bulk_api_result: Optional[Mapping[str, Any]], acknowledged: bool) -> None:
        super().__init__(acknowledged)
        self._result = dict(bulk_api_result or {})

    @property
    def bulk_api_result(self) -> Dict[str, Any]:
        """The 2.8 bulk API's result document (``nInserted``, ``nMatched``, ...)."""
        return self._result

    def _count(self, name: str, key: str) -> int:
        self._known(name)
        return int(self._result.get(key, 0))

    @property
    def inserted_count(self) -> int:
        return self._count("inserted_count", "nInserted")

    @property
    def matched_count(self) -> int:
        return self._count("matched_count", "nMatched")

    @property
    def modified_count(self) -> int:
        return self._count("modified_count", "nModified")

    @property
    def deleted_count(self) -> int:
        return self._count("deleted_count", "nRemoved")

    @property
    def upserted_count(self) -> int:
        return self._count("upserted_count", "nUpserted")

    @property
    def upserted_ids(self) -> Dict[int, Any]:
        """``{index of the operation in the bulk: _id of the upserted document}``."""
        self._known("upserted_ids")
        return {item["index"]: item["_id"] for item in self._result.get("upserted", [])}

    def _shown(self) -> List[str]:
        return ["bulk_api_result"]


__all__ = [
    "BulkWriteResult",
    "DeleteResult",
    "InsertManyResult",
    "InsertOneResult",
    "UpdateResult",
]
