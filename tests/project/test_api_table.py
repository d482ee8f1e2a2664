"""docs/api.md's table of names (pymongo 2.8, pymongo 4, wireclient) against the code: every
name marked provided exists (found without running ``__getattr__``, so a database or
collection made from the name does not count), and every other one raises
``InvalidOperation`` or ``AttributeError``, never returning a Database or a Collection. The
refusals of ``wireclient/client/legacy.py`` and the table agree, both ways."""

from __future__ import annotations

import inspect
import os
import re
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import wireclient
from wireclient import Collection, Connection, Cursor, Database, ReplicaSetConnection
from wireclient.client.bulk import BulkOperationBuilder, BulkUpsertOperation, BulkWriteOperation
from wireclient.client.legacy import REFUSED
from wireclient.errors import InvalidOperation

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api.md")
Row = Tuple[List[str], str]  # (the names of the row, its status)


def table_rows() -> List[Row]:
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    start = text.index("<!-- names-table -->")
    rows: List[Row] = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] in ("pymongo 2.8", "---"):
            continue
        assert len(cells) == 3, line
        names = [re.sub(r"\(\)$", "", c.strip("`")) for c in cells[:2] if c != "—"]
        assert names and all(c == "—" or c.startswith("`") for c in cells[:2]), line
        assert cells[2] == "provided" or cells[2].startswith("not provided: "), line
        rows.append((names, cells[2]))
    return rows


ROWS = table_rows()


@pytest.fixture(scope="module")
def objects(server: Any) -> Iterator[Dict[str, Any]]:
    conn = Connection(server.uri, auto_start_request=False)
    rsc = ReplicaSetConnection(server.uri, auto_start_request=False)
    coll = conn.test_api_table.things
    bulk = coll.initialize_ordered_bulk_op()
    yield {
        "pymongo": wireclient,
        "MongoClient": conn,
        "MongoReplicaSetClient": rsc,
        "Database": conn.test_api_table,
        "Collection": coll,
        "Cursor": coll.find(),
        "BulkOperationBuilder": bulk,
        "BulkWriteOperation": bulk.find({}),
        "BulkUpsertOperation": bulk.find({}).upsert(),
    }
    conn.close()
    rsc.close()


def test_the_table_is_complete() -> None:
    assert len(ROWS) > 200
    provided = [names for names, status in ROWS if status == "provided"]
    refused = {name for names, status in ROWS if status != "provided" for name in names}
    table_refusals = {
        f"{ {'Connection': 'MongoClient'}.get(owner, owner) }.{name}"
        for owner, names in REFUSED.items()
        for name in names
    }
    assert refused == table_refusals  # legacy.py and the table say the same
    for required in (
        "MongoClient.alive",
        "MongoClient.is_primary",
        "MongoReplicaSetClient.refresh",
        "Database.authenticate",
        "Collection.find_and_modify",
        "Collection.insert_one",
        "Collection.bulk_write",
        "Cursor.max_scan",
        "BulkUpsertOperation.replace_one",
    ):
        assert any(required in names for names in provided), required


@pytest.mark.parametrize("names, status", ROWS, ids=[" / ".join(names) for names, _ in ROWS])
def test_each_name(objects: Dict[str, Any], names: List[str], status: str) -> None:
    for full in names:
        owner, _, attribute = full.partition(".")
        target = objects[owner]
        if status == "provided":
            if owner == "pymongo":
                assert attribute in wireclient.__all__
                assert getattr(wireclient, attribute) is not None
            else:
                inspect.getattr_static(target, attribute)  # no __getattr__: really there
            continue
        with pytest.raises((InvalidOperation, AttributeError)) as info:
            value = getattr(target, attribute)
            assert not isinstance(value, (Database, Collection, Cursor)), full
        if isinstance(info.value, InvalidOperation):
            assert status.removeprefix("not provided: ") in str(info.value)


def test_table_objects_are_what_they_claim(objects: Dict[str, Any]) -> None:
    assert isinstance(objects["Collection"], Collection)
    assert isinstance(objects["BulkOperationBuilder"], BulkOperationBuilder)
    assert isinstance(objects["BulkWriteOperation"], BulkWriteOperation)
    assert isinstance(objects["BulkUpsertOperation"], BulkUpsertOperation)
