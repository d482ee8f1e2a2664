"""Bad arguments to the public methods are typed errors at the call, naming the argument,
and nothing is sent (wireclient/rules/arguments.py and its users: collection.py, cursor.py,
database.py, command.WriteConcern.resolve).

Each class of fault has its own tests: documents that are not documents, arguments of the
wrong type, per-call write concerns, document content (cycles, keys, values bson refuses,
update and pipeline shapes the server refuses), and ``insert``'s ``_id``s on a refusal.
A Hypothesis fuzz then calls the read and write methods with hostile values: every call
either succeeds or raises a wireclient error, and a call refused at the client sends
nothing. "Nothing was sent" is checked with a sentinel: the connection has one socket, so
after a refused call a ``ping`` must be the very next request the server receives.
"""

from __future__ import annotations

import types
from concurrent.futures import Future
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import bson
import pytest
from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mock_server import MockServer, Received

from wireclient import Collection, Connection, errors

TIMEOUT = 15.0  # waits that end at once unless the test fails
CURSOR = {"id": 0, "ns": "test.things", "firstBatch": []}
# One reply that suits every command the fuzz can send (insert, update, delete, find,
# aggregate, count, distinct, createIndexes, dropIndexes, ...).
ANY_REPLY: Dict[str, Any] = {"n": 0, "nModified": 0, "cursor": CURSOR, "values": []}
REFUSALS = (errors.ConfigurationError, errors.InvalidDocument, errors.InvalidOperation)


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


@pytest.fixture()
def conn(mock: MockServer) -> Connection:
    return mock.connect(max_pool_size=1)  # one socket: requests arrive in call order


@pytest.fixture()
def coll(conn: Connection) -> Collection:
    return conn.test.things


def next_request(mock: MockServer, timeout: float) -> Optional[Received]:
    try:
        return Received(mock.server.receives(timeout=timeout))
    except AssertionError:  # mockupdb: nothing arrived in time
        return None


def answer(request: Received) -> None:
    if not request.more_to_come:
        request.reply(**ANY_REPLY)


def requests_before_ping(mock: MockServer, conn: Connection) -> List[Received]:
    """Send a ``ping`` on the connection's one socket; what arrives before it (answered)."""
    future = mock.run(conn.test.command, "ping")
    before: List[Received] = []
    for _ in range(50):
        request = next_request(mock, TIMEOUT)
        assert request is not None, "the ping never arrived"
        if request.command_name == "ping":
            request.reply()
            assert future.result(TIMEOUT) == {"ok": 1}
            return before
        before.append(request)
        answer(request)
    raise AssertionError(f"the ping did not arrive after {len(before)} requests")


def refused(
    mock: MockServer, conn: Connection, call: Callable[[], Any], error: Any, *fragments: str
) -> BaseException:
    """``call`` raises ``error`` (with ``fragments`` in its message) and sends nothing."""
    future: Future[Any] = mock.run(call)
    exc = future.exception(TIMEOUT)
    assert isinstance(exc, error), repr(exc)
    for fragment in fragments:
        assert fragment in str(exc), (fragment, str(exc))
    assert requests_before_ping(mock, conn) == []
    return exc


def cycle() -> Dict[str, Any]:
    doc: Dict[str, Any] = {"a": 1}
    doc["self"] = doc
    return doc


def list_cycle() -> Dict[str, Any]:
    items: List[Any] = [1]
    items.append(items)
    return {"items": items}


# -- documents that are not documents: DocumentTypeError (a TypeError and an InvalidDocument)

NOT_DOCUMENTS: Dict[str, Tuple[Callable[[Collection], Any], str]] = {
    "insert(None)": (lambda c: c.insert(None), "doc_or_docs"),
    "insert(5)": (lambda c: c.insert(5), "doc_or_docs"),
    "insert('str')": (lambda c: c.insert("str"), "doc_or_docs"),
    "insert(b'..')": (lambda c: c.insert(b"\x05\x00\x00\x00\x00"), "doc_or_docs"),
    "insert(1.5)": (lambda c: c.insert(1.5), "doc_or_docs"),
    "insert([doc, None])": (lambda c: c.insert([{"a": 1}, None]), "doc_or_docs[1]"),
    "insert([doc, 5])": (lambda c: c.insert([{"a": 1}, 5]), "doc_or_docs[1]"),
    "insert([[..]])": (lambda c: c.insert([[("a", 1)]]), "doc_or_docs[0]"),
    "save(7)": (lambda c: c.save(7), "to_save"),
    "save(None)": (lambda c: c.save(None), "to_save"),
    "update(5, ..)": (lambda c: c.update(5, {"$set": {"a": 1}}), "spec"),
    "update(.., 5)": (lambda c: c.update({}, 5), "document"),
    "update(.., [..])": (lambda c: c.update({}, [{"$set": {"a": 1}}]), "document"),
    "update $set: 1": (lambda c: c.update({}, {"$set": 1}), "document['$set']"),
    "find(5)": (lambda c: c.find(5), "spec"),
    "find('x')": (lambda c: c.find("x"), "spec"),
    "count(5)": (lambda c: c.count(5), "spec"),
    "distinct(k, 5)": (lambda c: c.distinct("k", 5), "spec"),
    "aggregate([1])": (lambda c: c.aggregate([1]), "pipeline[0]"),
    "aggregate([stage, 'x'])": (lambda c: c.aggregate([{"$match": {}}, "x"]), "pipeline[1]"),
}


@pytest.mark.parametrize("name", list(NOT_DOCUMENTS))
def test_a_non_document_is_a_document_type_error(
    mock: MockServer, conn: Connection, coll: Collection, name: str
) -> None:
    call, argument = NOT_DOCUMENTS[name]
    exc = refused(mock, conn, lambda: call(coll), errors.DocumentTypeError, argument)
    assert isinstance(exc, TypeError) and isinstance(exc, errors.InvalidDocument)
    assert isinstance(exc, errors.InvalidArgument)


# -- arguments of the wrong type: InvalidArgument (a TypeError and a ConfigurationError) --------

WRONG_TYPES: Dict[str, Tuple[Callable[[Connection], Any], str]] = {
    "aggregate(5)": (lambda c: c.test.things.aggregate(5), "pipeline"),
    "aggregate('$match')": (lambda c: c.test.things.aggregate("$match"), "pipeline"),
    "aggregate batch_size=True": (
        lambda c: c.test.things.aggregate([], batch_size=True),
        "batch_size",
    ),
    "create_index(5)": (lambda c: c.test.things.create_index(5), "sort/index"),
    "create_index(None)": (lambda c: c.test.things.create_index(None), "sort/index"),
    "create_index direction True": (
        lambda c: c.test.things.create_index([("a", True)]),
        "direction of key 'a'",
    ),
    "create_index direction None": (
        lambda c: c.test.things.create_index({"a": None}),
        "direction of key 'a'",
    ),
    "create_index key 5": (lambda c: c.test.things.create_index({5: 1}), "key names"),
    "create_index unique='yes'": (
        lambda c: c.test.things.create_index("a", unique="yes"),
        "unique",
    ),
    "create_index name=5": (lambda c: c.test.things.create_index("a", name=5), "name"),
    "drop_index(5)": (lambda c: c.test.things.drop_index(5), "name"),
    "distinct(5)": (lambda c: c.test.things.distinct(5), "key"),
    "distinct(None)": (lambda c: c.test.things.distinct(None), "key"),
    "command(5)": (lambda c: c.test.command(5), "command"),
    "command(None)": (lambda c: c.test.command(None), "command"),
    "command({1: 1})": (lambda c: c.test.command({1: 1}), "command name"),
    "command check='no'": (lambda c: c.test.command("ping", check="no"), "check"),
    "find batch_size=True": (lambda c: c.test.things.find(batch_size=True), "batch_size"),
    "find skip=1.5": (lambda c: c.test.things.find(skip=1.5), "skip"),
    "find limit='1'": (lambda c: c.test.things.find(limit="1"), "limit"),
    "find fields=5": (lambda c: c.test.things.find(fields=5), "fields"),
    "find fields=[1]": (lambda c: c.test.things.find(fields=[1]), "fields"),
    "find sort=5": (lambda c: c.test.things.find(sort=5), "sort/index"),
    ".batch_size(True)": (lambda c: c.test.things.find().batch_size(True), "batch_size"),
    ".skip(True)": (lambda c: c.test.things.find().skip(True), "skip"),
    ".limit(None)": (lambda c: c.test.things.find().limit(None), "limit"),
    ".sort(a, [1])": (lambda c: c.test.things.find().sort("a", [1]), "direction"),
    ".count('x')": (
        lambda c: c.test.things.find().count(with_limit_and_skip="x"),
        "with_limit_and_skip",
    ),
    "update upsert='x'": (
        lambda c: c.test.things.update({}, {"$set": {"a": 1}}, upsert="x"),
        "upsert",
    ),
    "update multi=1": (lambda c: c.test.things.update({}, {"$set": {"a": 1}}, multi=1), "multi"),
    "remove multi='x'": (lambda c: c.test.things.remove({}, multi="x"), "multi"),
    "remove([1])": (lambda c: c.test.things.remove([1]), "spec_or_id"),
    "remove({1, 2})": (lambda c: c.test.things.remove({1, 2}), "spec_or_id"),
    "find_one([1])": (lambda c: c.test.things.find_one([1]), "spec_or_id"),
    "find_one((1, 2))": (lambda c: c.test.things.find_one((1, 2)), "spec_or_id"),
    "insert manipulate='x'": (lambda c: c.test.things.insert({}, manipulate="x"), "manipulate"),
    "insert check_keys=1": (lambda c: c.test.things.insert({}, check_keys=1), "check_keys"),
    "insert continue_on_error=None": (
        lambda c: c.test.things.insert([{}], continue_on_error=None),
        "continue_on_error",
    ),
    "collection name 5": (lambda c: c.test[5], "collection name"),
    "database name 5": (lambda c: c[5], "database name"),
    "drop_collection(5)": (lambda c: c.test.drop_collection(5), "collection name"),
    "create_collection(None)": (lambda c: c.test.create_collection(None), "collection name"),
}


@pytest.mark.parametrize("name", list(WRONG_TYPES))
def test_a_wrong_type_is_an_invalid_argument(mock: MockServer, conn: Connection, name: str) -> None:
    call, argument = WRONG_TYPES[name]
    exc = refused(mock, conn, lambda: call(conn), errors.InvalidArgument, argument)
    assert isinstance(exc, TypeError) and isinstance(exc, errors.ConfigurationError)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.find(skip=-1),
        lambda c: c.find(skip=2**63),
        lambda c: c.find(limit=-(2**63)),
        lambda c: c.find(batch_size=-1),
        lambda c: c.find(batch_size=2**31),
        lambda c: c.find().skip(-5),
        lambda c: c.create_index(""),
        lambda c: c.create_index([]),
        lambda c: c.create_index({}),
        lambda c: c.create_index([("a", "")]),
        lambda c: c.create_index("a", name=""),
        lambda c: c.distinct(""),
        lambda c: c.database.command(""),
        lambda c: c.database.command("ping", read_preference="sometimes"),
        lambda c: c.find(read_preference=7),
    ],
    ids=[
        "skip<0",
        "skip>int64",
        "limit<-int64",
        "batch_size<0",
        "batch_size>int32",
        ".skip(-5)",
        "index key ''",
        "index []",
        "index {}",
        "direction ''",
        "index name ''",
        "distinct ''",
        "command ''",
        "command read_preference",
        "find read_preference",
    ],
)
def test_a_bad_value_is_refused_before_sending(
    mock: MockServer, conn: Connection, coll: Collection, call: Callable[[Collection], Any]
) -> None:
    exc = refused(
        mock,
        conn,
        lambda: call(coll),
        (errors.ConfigurationError, errors.InvalidOperation),
    )
    assert not isinstance(exc, TypeError)  # the type was right, the value was not


# -- per-call write concerns -----------------------------------------------------------------

WRITE_CALLS: Dict[str, Callable[..., Any]] = {
    "insert": lambda c, **kw: c.insert({"a": 1}, **kw),
    "update": lambda c, **kw: c.update({}, {"$set": {"a": 1}}, **kw),
    "remove": lambda c, **kw: c.remove({}, **kw),
    "save": lambda c, **kw: c.save({"_id": 1}, **kw),
}


@pytest.mark.parametrize("operation", list(WRITE_CALLS))
@pytest.mark.parametrize(
    "options, argument",
    [
        ({"wtimeout": "abc"}, "wtimeout"),
        ({"wtimeout": 1.5}, "wtimeout"),
        ({"wtimeout": True}, "wtimeout"),
        ({"j": "no"}, "j"),  # once sent as j: true
        ({"j": 1}, "j"),
        ({"w": 1.5}, "w"),
        ({"w": True}, "w"),
        ({"w": [1]}, "w"),
        ({"w": None, "safe": "yes"}, "safe"),
        ({"safe": 1}, "safe"),
    ],
)
def test_write_concern_arguments_of_the_wrong_type(
    mock: MockServer,
    conn: Connection,
    coll: Collection,
    operation: str,
    options: Dict[str, Any],
    argument: str,
) -> None:
    call = WRITE_CALLS[operation]
    refused(mock, conn, lambda: call(coll, **options), errors.InvalidArgument, argument)


@pytest.mark.parametrize("operation", list(WRITE_CALLS))
@pytest.mark.parametrize(
    "options",
    [{"w": -1}, {"w": 2**40}, {"w": ""}, {"wtimeout": -1}, {"w": 0, "j": True}],
    ids=["w<0", "w huge", "w empty", "wtimeout<0", "w0 with j"],
)
def test_write_concern_values_that_cannot_be(
    mock: MockServer, conn: Connection, coll: Collection, operation: str, options: Dict[str, Any]
) -> None:
    call = WRITE_CALLS[operation]
    exc = refused(mock, conn, lambda: call(coll, **options), errors.ConfigurationError)
    assert not isinstance(exc, errors.InvalidArgument)


# -- document content: InvalidDocument (a ValueError) ------------------------------------------

BAD_CONTENT: Dict[str, Tuple[Callable[[Collection], Any], str]] = {
    "insert cycle": (lambda c: c.insert(cycle()), "reference cycle"),
    "insert list cycle": (lambda c: c.insert(list_cycle()), "reference cycle"),
    "insert [doc, cycle]": (lambda c: c.insert([{"a": 1}, cycle()]), "doc_or_docs[1]"),
    "update spec cycle": (lambda c: c.update(cycle(), {"$set": {"a": 1}}), "spec"),
    "update $set cycle": (lambda c: c.update({}, {"$set": cycle()}), "reference cycle"),
    "update replacement cycle": (lambda c: c.update({}, cycle()), "document"),
    "remove cycle": (lambda c: c.remove(cycle()), "spec_or_id"),
    "find cycle": (lambda c: c.find(cycle()), "spec"),
    "find fields cycle": (lambda c: c.find({}, cycle()), "fields"),
    "find_one cycle": (lambda c: c.find_one(list_cycle()), "spec"),
    "sort direction cycle": (lambda c: c.find(sort={"a": cycle()}), "sort/index"),
    ".sort direction cycle": (lambda c: c.find().sort("a", cycle()), "sort/index"),
    "index direction cycle": (lambda c: c.create_index([("a", cycle())]), "sort/index"),
    "count cycle": (lambda c: c.count(cycle()), "spec"),
    "distinct cycle": (lambda c: c.distinct("k", cycle()), "spec"),
    "aggregate cycle": (lambda c: c.aggregate([{"$match": cycle()}]), "pipeline[0]"),
    "command cycle": (lambda c: c.database.command("ping", cycle()), "command"),
    "create_index options cycle": (lambda c: c.create_index("a", weights=cycle()), "command"),
    "insert key 1": (lambda c: c.insert({1: 2}), "string keys"),
    "insert nested key 1": (lambda c: c.insert({"a": {1: 2}}), "string keys"),
    "find key 1": (lambda c: c.find({1: 2}), "spec"),
    "update $set key 1": (lambda c: c.update({}, {"$set": {1: 2}}), "document"),
    "insert NUL key": (lambda c: c.insert({"a\x00b": 1}), "NUL"),
    "insert object()": (lambda c: c.insert({"a": object()}), "cannot encode"),
    "find a set": (lambda c: c.find({"a": {1, 2}}), "spec"),
    "find_one object()": (lambda c: c.find_one(object()), "spec_or_id"),
    "insert 2**64": (lambda c: c.insert({"a": 2**64}), "doc_or_docs"),
    "insert $ key": (lambda c: c.insert({"$a": 1}), "'$a'"),
    "insert nested $ key": (lambda c: c.insert({"a": {"$b": 1}}), "'$b'"),
    "insert . key": (lambda c: c.insert({"a.b": 1}), "'a.b'"),
    "insert [doc, $ key]": (lambda c: c.insert([{"a": 1}, {"$x": 1}]), "doc_or_docs[1]"),
    "replacement nested $": (lambda c: c.update({}, {"a": {"$b": 1}}), "'$b'"),
    "replacement . key": (lambda c: c.update({}, {"a.b": 1}), "'a.b'"),
    "save . key": (lambda c: c.save({"_id": 1, "a.b": 1}), "'a.b'"),
    "operators then a field": (
        lambda c: c.update({}, {"$set": {"a": 1}, "b": 1}),
        "mixes update operators",
    ),
    "a field then operators": (
        lambda c: c.update({}, {"b": 1, "$set": {"a": 1}}),
        "mixes update operators",
    ),
    "empty stage": (lambda c: c.aggregate([{}]), "exactly one field"),
    "two-field stage": (
        lambda c: c.aggregate([{"$match": {}, "$sort": {"a": 1}}]),
        "exactly one field",
    ),
    "stage without $": (lambda c: c.aggregate([{"match": {}}]), "exactly one field"),
    "insert []": (lambda c: c.insert([]), "empty list"),
    "insert iter([])": (lambda c: c.insert(iter([])), "empty list"),
}


@pytest.mark.parametrize("name", list(BAD_CONTENT))
def test_bad_document_content_is_an_invalid_document(
    mock: MockServer, conn: Connection, coll: Collection, name: str
) -> None:
    call, fragment = BAD_CONTENT[name]
    exc = refused(mock, conn, lambda: call(coll), errors.InvalidDocument, fragment)
    assert isinstance(exc, ValueError)
    assert not isinstance(exc, RecursionError)
    assert len(str(exc)) < 400  # bson may quote a whole value: the message is bounded


def test_a_huge_unencodable_value_gives_a_bounded_message(
    mock: MockServer, conn: Connection, coll: Collection
) -> None:
    exc = refused(
        mock, conn, lambda: coll.insert({"a": set(range(100_000))}), errors.InvalidDocument
    )
    assert len(str(exc)) < 400


def test_check_keys_false_lets_dollar_and_dotted_keys_through(
    mock: MockServer, conn: Connection, coll: Collection
) -> None:
    future = mock.run(coll.update, {"_id": 1}, {"a.b": 1, "c": {"$d": 1}}, check_keys=False)
    cmd = mock.receives("update")
    assert cmd.sequences["updates"][0]["u"] == {"a.b": 1, "c": {"$d": 1}}
    cmd.reply(n=1, nModified=1)
    assert future.result(TIMEOUT)["n"] == 1


# -- what is still accepted ----------------------------------------------------------------------


def test_operators_may_name_dotted_fields(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.update, {}, {"$set": {"a.b": 1}, "$inc": {"n": 1}})
    cmd = mock.receives("update")
    assert cmd.sequences["updates"][0]["u"] == {"$set": {"a.b": 1}, "$inc": {"n": 1}}
    cmd.reply(n=1, nModified=1)
    assert future.result(TIMEOUT)["nModified"] == 1


@pytest.mark.parametrize(
    "options, write_concern",
    [
        ({"w": "majority"}, {"w": "majority"}),
        ({"w": 0}, {"w": 0}),
        ({"safe": True, "j": False}, {"j": False}),
        ({"w": 2, "wtimeout": 0}, {"w": 2, "wtimeout": 0}),
    ],
)
def test_good_write_concerns_still_go_out(
    mock: MockServer, coll: Collection, options: Dict[str, Any], write_concern: Dict[str, Any]
) -> None:
    future = mock.run(coll.remove, {"a": 1}, **options)
    cmd = mock.receives("delete")
    assert cmd.body["writeConcern"] == write_concern
    if not cmd.more_to_come:
        cmd.reply(n=0)
    future.result(TIMEOUT)


def test_a_single_stage_is_a_pipeline_and_ids_need_not_be_documents(
    mock: MockServer, coll: Collection
) -> None:
    future = mock.run(lambda: list(coll.aggregate({"$match": {"a": 1}})))
    cmd = mock.receives("aggregate")
    assert cmd.body["pipeline"] == [{"$match": {"a": 1}}]
    cmd.reply(cursor=CURSOR)
    assert future.result(TIMEOUT) == []
    oid = ObjectId()
    for spec_or_id in (5, "x", oid, None):
        future = mock.run(coll.remove, spec_or_id)
        cmd = mock.receives("delete")
        expected = {} if spec_or_id is None else {"_id": spec_or_id}
        assert cmd.sequences["deletes"] == [{"q": expected, "limit": 0}]
        cmd.reply(n=0)
        future.result(TIMEOUT)


def test_index_directions_and_drop_by_key_list(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.create_index, [("loc", "2dsphere"), ("t", -1), ("s", 1.0)])
    cmd = mock.receives("createIndexes")
    assert cmd.body["indexes"][0]["key"] == {"loc": "2dsphere", "t": -1, "s": 1.0}
    cmd.reply()
    assert future.result(TIMEOUT) == "loc_2dsphere_t_-1_s_1.0"
    future = mock.run(coll.drop_index, [("a", 1), ("b", -1)])
    cmd = mock.receives("dropIndexes")
    assert cmd.body["index"] == "a_1_b_-1"
    cmd.reply()
    future.result(TIMEOUT)


def test_a_text_score_sort(mock: MockServer, coll: Collection) -> None:
    cursor = coll.find({"$text": {"$search": "x"}}).sort([("score", {"$meta": "textScore"})])
    future = mock.run(list, cursor)
    cmd = mock.receives("find")
    assert cmd.body["sort"] == {"score": {"$meta": "textScore"}}
    cmd.reply(cursor=CURSOR)
    assert future.result(TIMEOUT) == []


# -- insert and the caller's documents -------------------------------------------------------------


@pytest.mark.parametrize(
    "docs, options",
    [
        ([{"a": 1}, {"b": 2}, {"$bad": 1}], {}),
        ([{"a": 1}, {"b": 2}, cycle()], {}),
        ([{"a": 1}, {"b": 2}, {"c": object()}], {}),
        ([{"a": 1}, {"b": 2}], {"w": 1.5}),
        ([{"a": 1}, {"b": 2}], {"w": 0, "j": True}),
        ([{"a": 1}, {"b": 2}], {"safe": True, "w": 0}),
    ],
    ids=["bad key", "cycle", "unencodable", "w type", "w0 j", "safe w0"],
)
def test_a_refused_insert_adds_no_id_to_the_callers_documents(
    mock: MockServer, conn: Connection, coll: Collection, docs: List[Dict[str, Any]], options: Any
) -> None:
    before = [set(doc) for doc in docs]
    refused(mock, conn, lambda: coll.insert(docs, **options), errors.WireClientError)
    assert [set(doc) for doc in docs] == before
    refused(mock, conn, lambda: coll.insert(docs[-1], **options), errors.WireClientError)
    assert set(docs[-1]) == before[-1]


def test_an_insert_over_the_size_limit_adds_no_id() -> None:
    with MockServer(maxBsonObjectSize=1000) as mock:
        conn = mock.connect(max_pool_size=1)
        docs: List[Dict[str, Any]] = [{"a": 1}, {"pad": "x" * 1000}]
        refused(mock, conn, lambda: conn.test.things.insert(docs), errors.InvalidDocument, "1000")
        assert docs == [{"a": 1}, {"pad": "x" * 1000}]


def test_an_insert_lost_after_sending_keeps_its_ids(mock: MockServer, coll: Collection) -> None:
    """Once sent, the _id stays: a retry of the same documents is then idempotent."""
    docs: List[Dict[str, Any]] = [{"a": 1}]
    future = mock.run(coll.insert, docs)
    cmd = mock.receives("insert")
    cmd.request.hangup()
    with pytest.raises(errors.AutoReconnect):
        future.result(TIMEOUT)
    assert docs[0]["_id"] == cmd.sequences["documents"][0]["_id"]


def test_read_only_documents_are_sent_with_an_id_they_do_not_get(
    mock: MockServer, coll: Collection
) -> None:
    proxy = types.MappingProxyType({"a": 1})
    raw = RawBSONDocument(bson.encode({"b": 2}))
    future = mock.run(coll.insert, [proxy, raw])
    cmd = mock.receives("insert")
    sent = cmd.sequences["documents"]
    assert [set(d) for d in sent] == [{"_id", "a"}, {"_id", "b"}]
    cmd.reply(n=2)
    assert future.result(TIMEOUT) == [d["_id"] for d in sent]
    assert dict(proxy) == {"a": 1} and "_id" not in raw


def test_an_iterable_of_documents_is_accepted(mock: MockServer, coll: Collection) -> None:
    future = mock.run(coll.insert, ({"_id": i} for i in range(3)))
    cmd = mock.receives("insert")
    assert [d["_id"] for d in cmd.sequences["documents"]] == [0, 1, 2]
    cmd.reply(n=3)
    assert future.result(TIMEOUT) == [0, 1, 2]


# -- Hypothesis: any argument, a wireclient error or success; a refusal sends nothing ----------

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.sampled_from(["$set", "$x", "a.b", "_id", "", "\x00", "majority", "$match"]),
    st.builds(object),
    st.builds(ObjectId),
    st.frozensets(st.integers(0, 3), max_size=2),
)
_keys = st.one_of(
    st.text(max_size=3),
    st.sampled_from(["$set", "$inc", "$x", "a.b", "_id", "$match", "a\x00"]),
    st.integers(-2, 2),
    st.none(),
)


def _with_cycle(value: Any) -> Any:
    """``value`` put inside a dict that also contains itself."""
    outer: Dict[str, Any] = {"v": value}
    outer["loop"] = outer
    return outer


hostile = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(_keys, children, max_size=3),
        children.map(_with_cycle),
    ),
    max_leaves=8,
)
documents = st.dictionaries(st.text("abc", min_size=1, max_size=2), st.integers(0, 3), max_size=3)
updates = st.builds(lambda doc: {"$set": doc}, documents)
stages = st.lists(st.builds(lambda doc: {"$match": doc}, documents), max_size=2)
# Hostile values, and good ones often enough that calls get past the checks too.
arguments = st.one_of(
    hostile, documents, st.lists(documents, max_size=3), updates, stages, st.sampled_from("ab")
)

_KWARGS: Dict[str, Tuple[str, ...]] = {
    "insert": ("manipulate", "safe", "check_keys", "continue_on_error", "w", "j", "wtimeout"),
    "save": ("manipulate", "safe", "check_keys", "w", "j", "wtimeout"),
    "update": ("upsert", "multi", "safe", "w", "j", "wtimeout", "check_keys"),
    "remove": ("safe", "multi", "w", "j", "wtimeout"),
    "find": ("fields", "skip", "limit", "sort", "batch_size", "read_preference"),
    "find_one": ("fields", "skip", "sort", "read_preference"),
    "count": (),
    "distinct": (),
    "aggregate": ("batch_size",),
    "create_index": ("unique", "name", "sparse"),
    "drop_index": (),
    "command": ("check", "read_preference", "extra"),
}
# (fewest, most) positional arguments drawn for each operation
_POSITIONAL = {
    "update": (2, 2),
    "distinct": (1, 2),
    "command": (1, 2),
    "find": (0, 1),
    "find_one": (0, 1),
    "count": (0, 1),
    "remove": (0, 1),
}


def _run(coll: Collection, operation: str, args: List[Any], kwargs: Dict[str, Any]) -> Any:
    if operation == "command":
        return coll.database.command(*args, **kwargs)
    result = getattr(coll, operation)(*args, **kwargs)
    if operation in ("find", "aggregate"):
        return list(result)
    return result


@st.composite
def calls(draw: st.DrawFn) -> Tuple[str, List[Any], Dict[str, Any]]:
    operation = draw(st.sampled_from(sorted(_KWARGS)))
    fewest, most = _POSITIONAL.get(operation, (1, 1))
    args = [draw(arguments) for _ in range(draw(st.integers(fewest, most)))]
    names: List[str] = []
    if _KWARGS[operation]:
        names = draw(st.lists(st.sampled_from(_KWARGS[operation]), unique=True, max_size=3))
    plausible = st.one_of(st.sampled_from([True, False, None, 0, 1, 2, "x"]), hostile)
    kwargs = {name: draw(plausible) for name in names}
    return operation, args, kwargs


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Tuple[MockServer, Connection]]:
    with MockServer() as server:
        yield server, server.connect(max_pool_size=1)


def _id_keys(values: List[Any]) -> List[bool]:
    docs = [v for v in values if isinstance(v, dict)]
    for value in values:
        if isinstance(value, list):
            docs.extend(v for v in value if isinstance(v, dict))
    return ["_id" in doc for doc in docs]


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(call=calls())
def test_fuzz_public_methods_raise_only_wireclient_errors_and_refusals_send_nothing(
    fuzz_server: Tuple[MockServer, Connection], call: Tuple[str, List[Any], Dict[str, Any]]
) -> None:
    mock, conn = fuzz_server
    operation, args, kwargs = call
    ids_before = _id_keys(args)
    future = mock.run(_run, conn.test.things, operation, args, kwargs)
    sent: List[Received] = []
    for _ in range(100):  # bounded: an accepted call sends a message or two
        if future.done():
            break
        request = next_request(mock, 0.05)
        if request is not None:
            sent.append(request)
            answer(request)
    exc = future.exception(TIMEOUT)
    sent.extend(requests_before_ping(mock, conn))
    event(f"{operation}: {type(exc).__name__ if exc else 'accepted'}")
    if exc is None:
        return
    assert isinstance(exc, errors.WireClientError), repr(exc)
    assert not isinstance(exc, (RecursionError, KeyError, AttributeError, IndexError))
    if isinstance(exc, REFUSALS):
        assert sent == [], (exc, sent)
        if operation == "insert":
            assert _id_keys(args) == ids_before  # the caller's documents were not changed


@settings(max_examples=100, deadline=None)
@given(
    sort=hostile,
    skip=st.one_of(hostile, st.integers(-3, 3)),
    limit=st.one_of(hostile, st.integers(-3, 3)),
    batch_size=st.one_of(hostile, st.integers(-3, 3)),
)
def test_fuzz_cursor_modifiers(
    fuzz_server: Tuple[MockServer, Connection], sort: Any, skip: Any, limit: Any, batch_size: Any
) -> None:
    mock, conn = fuzz_server
    cursor = conn.test.things.find()
    for modifier, value in (
        (cursor.sort, sort),
        (cursor.skip, skip),
        (cursor.limit, limit),
        (cursor.batch_size, batch_size),
    ):
        try:
            assert modifier(value) is cursor
        except (errors.ConfigurationError, errors.InvalidDocument):  # anything else fails
            pass
    assert requests_before_ping(mock, conn) == []  # modifiers never send anything
