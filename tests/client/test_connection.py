"""Connection (wireclient/client/connection.py) through the public API, against a mockupdb server
that records exactly what arrives (tests/support/mock_server.py): construction (the host forms, the
handshake, refusing servers older than wire 4, bad options), ``auto_start_request`` on and
off and explicit requests (observed through the client port of the socket each command
arrives on), ``close``, ``socketTimeoutMS``, and ``database_names`` / ``drop_database`` /
``server_info``."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import pytest
from mock_server import OP_QUERY, MockServer

import wireclient
from wireclient import Connection, Database, Request, errors

TIMEOUT = 5


@pytest.fixture()
def mock() -> Iterator[MockServer]:
    with MockServer() as server:
        yield server


class Thread:
    """One thread of our own, so request state (per thread) is under the test's control."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1)

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._executor.submit(fn, *args, **kwargs)

    def close(self) -> None:
        self._executor.shutdown(wait=False)


@pytest.fixture()
def threads() -> Iterator[Callable[[], Thread]]:
    made = []

    def make() -> Thread:
        made.append(Thread())
        return made[-1]

    yield make
    for thread in made:
        thread.close()


def ping_port(mock: MockServer, thread: Thread, conn: Connection) -> int:
    """Run a ping in ``thread``; the client port of the socket it arrived on."""
    future = thread(conn.test.command, "ping")
    cmd = mock.receives("ping")
    cmd.reply()
    assert future.result(TIMEOUT) == {"ok": 1}
    return cmd.port


# -- construction -----------------------------------------------------------------------------


def test_construction_opens_one_socket_with_only_a_handshake(mock: MockServer) -> None:
    conn = mock.connect()
    assert len(mock.hellos) == 1
    hello = mock.hellos[0]
    assert hello.op_code == OP_QUERY and hello.namespace == "admin.$cmd"
    assert hello.number_to_return == -1
    assert hello.command_name == "hello"
    assert hello.body["helloOk"] is True
    client = hello.body["client"]
    assert client["driver"] == {"name": "wireclient", "version": wireclient.__version__}
    assert client["os"]["type"] and client["platform"].startswith("Python ")
    assert "application" not in client
    mock.assert_nothing_received()
    # the handshake socket is the one the first operation uses
    future = mock.run(conn.test.command, "ping")
    cmd = mock.receives("ping")
    assert cmd.port == hello.port
    cmd.reply()
    future.result(TIMEOUT)
    assert len(mock.hellos) == 1


def test_app_name_goes_in_the_handshake(mock: MockServer) -> None:
    mock.connect(f"{mock.uri}/?appName=my-app")
    assert mock.hellos[0].body["client"]["application"] == {"name": "my-app"}


@pytest.mark.parametrize("form", ["uri", "host and port", "host:port"])
def test_host_forms(mock: MockServer, form: str) -> None:
    host, port = mock.address
    args = {
        "uri": (f"mongodb://{host}:{port}",),
        "host and port": (host, port),
        "host:port": (f"{host}:{port}",),
    }[form]
    conn = mock.connect(*args)
    assert (conn.host, conn.port, conn.address) == (host, port, (host, port))
    assert len(mock.hellos) == 1
    assert repr(conn) == f"Connection({host!r}, {port})"


@pytest.mark.parametrize("max_wire", [0, 2, 3])
def test_servers_older_than_wire_4_are_refused_at_construction(max_wire: int) -> None:
    with MockServer(max_wire=max_wire) as mock:
        with pytest.raises(errors.ConfigurationError, match=f"maxWireVersion {max_wire}"):
            mock.connect()
        assert len(mock.hellos) == 1
        mock.assert_nothing_received()


@pytest.mark.parametrize("max_wire", [4, 5, 6, 25])
def test_wire_4_and_newer_are_accepted(max_wire: int) -> None:
    with MockServer(max_wire=max_wire) as mock:
        conn = mock.connect()
        future = mock.run(conn.test.command, "ping")
        mock.receives("ping").reply()  # OP_QUERY below 6, OP_MSG from 6 (receives checks)
        assert future.result(TIMEOUT) == {"ok": 1}


def test_an_unreachable_server_fails_at_construction() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(errors.ConnectionFailure):
        Connection(f"mongodb://127.0.0.1:{port}", connectTimeoutMS=1000)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("127.0.0.1", "27017"), {}),
        (("127.0.0.1", True), {}),
        ((42,), {}),
        (("mongodb://127.0.0.1:1,127.0.0.1:2/?replicaSet=rs",), {}),
        (("mongodb://127.0.0.1:1",), {"w": 0, "j": True}),
        (("mongodb://127.0.0.1:1/?journal=true",), {"w": 0}),
        (("mongodb://127.0.0.1:1",), {"noSuchOption": 1}),
        (("mongodb://127.0.0.1:1/?noSuchOption=1",), {}),
        (("mongodb://127.0.0.1:1",), {"max_pool_size": -1}),
    ],
    ids=[
        "port a string",
        "port a bool",
        "host not a string",
        "two hosts with replicaSet",
        "w=0 and j",
        "w=0 and journal in the URI",
        "unknown keyword",
        "unknown URI option",
        "negative pool size",
    ],
)
def test_bad_arguments_are_refused_before_connecting(args: Any, kwargs: Any) -> None:
    with pytest.raises(errors.ConfigurationError):
        Connection(*args, **kwargs)  # port 1: connecting would fail differently


def test_databases(mock: MockServer) -> None:
    conn = mock.connect(f"{mock.uri}/analytics")
    db = conn["test"]
    assert isinstance(db, Database) and db.name == "test" and db.connection is conn
    assert conn.test is db  # one Database object per name
    assert conn.get_default_database().name == "analytics"
    with pytest.raises(errors.ConfigurationError):
        mock.connect().get_default_database()
    with pytest.raises(AttributeError):
        getattr(conn, "_private")  # noqa: B009 - attribute access is the test
    mock.assert_nothing_received(timeout=0.05)


# -- requests -------------------------------------------------------------------------------


def test_auto_start_request_is_on_by_default(mock: MockServer, threads: Any) -> None:
    conn = Connection(mock.uri, socketTimeoutMS=5000)
    try:
        assert conn.auto_start_request is True
        a, b = threads(), threads()
        assert a(conn.in_request).result(TIMEOUT) is False  # no request before an operation
        port_a = ping_port(mock, a, conn)
        assert a(conn.in_request).result(TIMEOUT) is True  # the first operation started one
        assert conn.in_request() is False  # only for that thread
        # thread A's socket stays bound to A's request, idle or not: B gets another
        port_b = ping_port(mock, b, conn)
        assert port_b != port_a
        assert ping_port(mock, a, conn) == port_a
        assert ping_port(mock, b, conn) == port_b
        # after end_request, A's next operation starts a new request
        a(conn.end_request).result(TIMEOUT)
        assert a(conn.in_request).result(TIMEOUT) is False
        ping_port(mock, a, conn)
        assert a(conn.in_request).result(TIMEOUT) is True
    finally:
        conn.close()


def test_auto_start_request_off_shares_idle_sockets(mock: MockServer, threads: Any) -> None:
    conn = mock.connect(auto_start_request=False)
    assert conn.auto_start_request is False
    a, b = threads(), threads()
    port = ping_port(mock, a, conn)
    assert a(conn.in_request).result(TIMEOUT) is False
    assert ping_port(mock, b, conn) == port  # A's socket went back to the pool
    assert ping_port(mock, a, conn) == port
    assert len(mock.hellos) == 1  # one socket in all


def test_auto_start_request_from_the_uri(mock: MockServer, threads: Any) -> None:
    conn = mock.connect(f"{mock.uri}/?autoStartRequest=false", auto_start_request=None)
    assert conn.auto_start_request is False
    a = threads()
    ping_port(mock, a, conn)
    assert a(conn.in_request).result(TIMEOUT) is False


def test_an_explicit_request_pins_its_thread_to_one_socket(mock: MockServer, threads: Any) -> None:
    conn = mock.connect(auto_start_request=False)
    a, b = threads(), threads()
    request = a(conn.start_request).result(TIMEOUT)
    assert isinstance(request, Request)
    assert len(mock.hellos) == 1  # start_request takes no new socket
    port_a = ping_port(mock, a, conn)
    port_b = ping_port(mock, b, conn)  # A holds its socket: B needs another
    assert port_b != port_a and len(mock.hellos) == 2
    assert ping_port(mock, a, conn) == port_a
    # requests nest by count
    a(conn.start_request).result(TIMEOUT)
    a(conn.end_request).result(TIMEOUT)
    assert a(conn.in_request).result(TIMEOUT) is True
    a(request.end).result(TIMEOUT)
    a(request.end).result(TIMEOUT)  # idempotent for this Request object
    assert a(conn.in_request).result(TIMEOUT) is False
    a(conn.end_request).result(TIMEOUT)  # an extra end_request does nothing
    # A's socket is back in the pool: B (now idle too) and A share the two sockets
    assert ping_port(mock, b, conn) in (port_a, port_b)
    assert len(mock.hellos) == 2


def test_a_request_as_a_with_block(mock: MockServer, threads: Any) -> None:
    conn = mock.connect(auto_start_request=False)
    a = threads()

    def in_a_request() -> bool:
        with conn.start_request():
            return conn.in_request()

    assert a(in_a_request).result(TIMEOUT) is True
    assert a(conn.in_request).result(TIMEOUT) is False


# -- close and timeouts -----------------------------------------------------------------------


def test_close_closes_the_sockets_and_the_connection_stays_usable(mock: MockServer) -> None:
    conn = mock.connect()
    first = mock.hellos[0].port
    conn.close()
    future = mock.run(conn.test.command, "ping")
    cmd = mock.receives("ping")
    assert len(mock.hellos) == 2 and cmd.port == mock.hellos[1].port != first
    cmd.reply()
    assert future.result(TIMEOUT) == {"ok": 1}


def test_with_block_closes_the_connection(mock: MockServer) -> None:
    with mock.connect() as conn:
        assert len(mock.hellos) == 1
    future = mock.run(conn.test.command, "ping")
    cmd = mock.receives("ping")
    assert len(mock.hellos) == 2 and cmd.port == mock.hellos[1].port  # a new socket
    cmd.reply()
    future.result(TIMEOUT)


def test_socket_timeout(mock: MockServer) -> None:
    # 1 s: the next ping below, answered by this thread through mockupdb, must beat it
    conn = mock.connect(socketTimeoutMS=1000)
    started = time.monotonic()
    future = mock.run(conn.test.command, "ping")
    silent = mock.receives("ping")  # and never answered
    with pytest.raises(errors.NetworkTimeout):
        future.result(TIMEOUT)
    assert time.monotonic() - started >= 1.0  # not before socketTimeoutMS
    # the timed-out socket is not reused: the next command comes on a new one
    future = mock.run(conn.test.command, "ping")
    cmd = mock.receives("ping")
    assert cmd.port != silent.port and len(mock.hellos) == 2
    cmd.reply()
    assert future.result(TIMEOUT) == {"ok": 1}


# -- server helpers -----------------------------------------------------------------------------


def test_database_names(mock: MockServer) -> None:
    conn = mock.connect()
    future = mock.run(conn.database_names)
    cmd = mock.receives("listDatabases", db="admin")
    assert cmd.body == {"listDatabases": 1, "nameOnly": True, "$db": "admin"}
    cmd.reply(databases=[{"name": "admin"}, {"name": "test"}, {"name": "local"}])
    assert future.result(TIMEOUT) == ["admin", "test", "local"]
    future = mock.run(conn.database_names)
    mock.receives("listDatabases", db="admin").error(13, "not authorized on admin")
    with pytest.raises(errors.OperationFailure) as info:
        future.result(TIMEOUT)
    assert info.value.code == 13


@pytest.mark.parametrize("by", ["name", "database"])
def test_drop_database(mock: MockServer, by: str) -> None:
    conn = mock.connect()
    future = mock.run(conn.drop_database, "gone" if by == "name" else conn.gone)
    cmd = mock.receives("dropDatabase", db="gone")
    assert cmd.body == {"dropDatabase": 1, "$db": "gone"}
    cmd.reply(dropped="gone")
    assert future.result(TIMEOUT) is None
    future = mock.run(conn.drop_database, "gone")
    mock.receives("dropDatabase", db="gone").error(13, "unauthorized")
    with pytest.raises(errors.OperationFailure):
        future.result(TIMEOUT)


def test_server_info(mock: MockServer) -> None:
    conn = mock.connect()
    future = mock.run(conn.server_info)
    cmd = mock.receives("buildinfo", db="admin")
    assert cmd.body == {"buildinfo": 1, "$db": "admin"}
    cmd.reply(version="7.0.0", versionArray=[7, 0, 0, 0])
    assert future.result(TIMEOUT) == {"ok": 1, "version": "7.0.0", "versionArray": [7, 0, 0, 0]}


def test_old_servers_get_the_server_helpers_as_op_query() -> None:
    with MockServer(max_wire=4) as mock:
        conn = mock.connect()
        future = mock.run(conn.database_names)
        cmd = mock.receives("listDatabases", db="admin")
        assert cmd.body == {"listDatabases": 1, "nameOnly": True}
        cmd.reply(databases=[{"name": "x"}])
        assert future.result(TIMEOUT) == ["x"]


@pytest.mark.parametrize("value, expected", [(None, 2), ("1", 1), ("5", 5)])
def test_max_connecting_from_the_uri(mock: MockServer, value: Any, expected: int) -> None:
    """CMAP's ``maxConnecting`` URI option (default 2) bounds each pool's connects at once."""
    uri = mock.uri if value is None else f"{mock.uri.rstrip('/')}/?maxConnecting={value}"
    conn = Connection(uri, auto_start_request=False, _connect=False)
    try:
        assert conn.pool.max_connecting == expected
    finally:
        conn.close()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_max_connecting_must_be_a_positive_integer(value: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="maxConnecting"):
        Connection(f"mongodb://localhost:27017/?maxConnecting={value}", _connect=False)
