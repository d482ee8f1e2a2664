"""``Database.authenticate`` / ``logout`` (wireclient/engine/credentials.py) against SecantusDB
with ``--auth``: users are created first, then the server restarts on the same storage
with authentication required (it has no localhost exception). The credentials apply to
every socket of the connection: sockets opened later, other threads' sockets, the socket
of a request; a wrong password raises and leaves nothing behind; ``logout`` forgets them.
"""

from __future__ import annotations

import threading
from typing import Iterator, List

import pytest
from servers import SecantusServer, secantus_with_auth

from wireclient import Connection
from wireclient.errors import AuthenticationError, ConfigurationError, OperationFailure
from wireclient.transport.auth import SCRAM_SHA_1, SCRAM_SHA_256
from wireclient.transport.blocking import run


@pytest.fixture(scope="module")
def auth_server() -> Iterator[SecantusServer]:
    def setup(conn: Connection) -> None:
        both = [SCRAM_SHA_1, SCRAM_SHA_256]
        conn.admin.add_user("root", "root-pw", roles=["root"], mechanisms=both)
        conn.appdb.add_user("bob", "bob-pw", roles=["readWrite"], mechanisms=both)
        conn.appdb.add_user("carol", "carol-pw", roles=["readWrite"], mechanisms=both)
        conn.appdb.add_user("old", "old-pw", roles=["read"], mechanisms=[SCRAM_SHA_1])
        conn.otherdb.add_user("dave", "dave-pw", roles=["read"], mechanisms=both)
        conn.appdb.things.insert({"_id": 1, "x": 1})
        conn.otherdb.things.insert({"_id": 2, "y": 2})

    with secantus_with_auth(setup, prefix="wireclient-authenticate-") as server:
        yield server


@pytest.fixture()
def conn(auth_server: SecantusServer) -> Iterator[Connection]:
    c = Connection(auth_server.uri, auto_start_request=False)
    yield c
    c.close()


def can_read(conn: Connection, dbname: str = "appdb") -> bool:
    try:
        conn[dbname].things.find_one()
    except OperationFailure as exc:
        assert exc.code == 13, exc  # Unauthorized
        return False
    return True


def read_in_thread(conn: Connection) -> bool:
    result: List[bool] = []
    thread = threading.Thread(target=lambda: result.append(can_read(conn)))
    thread.start()
    thread.join(30)
    return result == [True]


def test_authenticate_applies_to_every_socket(conn: Connection) -> None:
    assert not can_read(conn)
    assert conn.appdb.authenticate("bob", "bob-pw") is True
    assert can_read(conn)
    assert read_in_thread(conn)  # another thread, another socket
    conn.close()  # every socket closed: the next one is authenticated as it is made
    assert can_read(conn)
    busy = [run(conn.pool.checkout()) for _ in range(3)]  # force new sockets
    for sock in busy:
        conn.pool.return_socket(sock)
    assert conn.pool.open_count >= 3
    for _ in range(3):
        assert read_in_thread(conn)
    conn.appdb.logout()
    assert not can_read(conn)
    assert not read_in_thread(conn)


def test_sockets_made_before_authenticate_are_replaced(conn: Connection) -> None:
    with conn.start_request():
        assert not can_read(conn)
        before = conn.request_socket()
        conn.appdb.authenticate("bob", "bob-pw")
        assert can_read(conn)  # in the same request, on a new, authenticated socket
        assert conn.request_socket() is not before and conn.in_request()


def test_a_wrong_password_raises_and_is_forgotten(conn: Connection) -> None:
    with pytest.raises(AuthenticationError):
        conn.appdb.authenticate("bob", "wrong-pw")
    assert not can_read(conn)  # not an AuthenticationError: the credentials are gone
    assert conn.appdb.authenticate("bob", "bob-pw")  # and the right ones may follow
    assert can_read(conn)


def test_one_user_per_database(conn: Connection) -> None:
    conn.appdb.authenticate("bob", "bob-pw")
    assert conn.appdb.authenticate("bob", "bob-pw") is True  # the same: nothing to do
    with pytest.raises(OperationFailure, match="already authenticated to database 'appdb'"):
        conn.appdb.authenticate("carol", "carol-pw")
    conn.appdb.logout()
    assert conn.appdb.authenticate("carol", "carol-pw")
    assert can_read(conn)


def test_users_of_two_databases(conn: Connection) -> None:
    conn.appdb.authenticate("bob", "bob-pw")
    conn.otherdb.authenticate("dave", "dave-pw")
    assert can_read(conn, "appdb") and can_read(conn, "otherdb")
    conn.close()
    assert can_read(conn, "appdb") and can_read(conn, "otherdb")  # both on new sockets
    conn.otherdb.logout()
    assert can_read(conn, "appdb") and not can_read(conn, "otherdb")


def test_source_and_mechanisms(conn: Connection, auth_server: SecantusServer) -> None:
    assert conn.appdb.authenticate("root", "root-pw", source="admin")
    assert can_read(conn, "appdb") and can_read(conn, "otherdb")
    other = Connection(auth_server.uri, auto_start_request=False)
    try:
        # only SCRAM-SHA-1 credentials: DEFAULT negotiates SHA-1
        assert other.appdb.authenticate("old", "old-pw")
        assert can_read(other)
        other.appdb.logout()
        with pytest.raises(AuthenticationError):
            other.appdb.authenticate("old", "old-pw", mechanism="SCRAM-SHA-256")
        assert other.appdb.authenticate("bob", "bob-pw", mechanism="SCRAM-SHA-256")
        assert can_read(other)
    finally:
        other.close()


def test_arguments_are_checked_before_anything_is_sent(conn: Connection) -> None:
    with pytest.raises(ConfigurationError, match="unknown authMechanism|not supported"):
        conn.appdb.authenticate("bob", "bob-pw", mechanism="MONGODB-CR")
    with pytest.raises(ConfigurationError, match="not supported"):
        conn.appdb.authenticate("bob", "bob-pw", gssapiServiceName="mongodb")
    with pytest.raises(ConfigurationError):
        conn.appdb.authenticate("bob")  # no password
    with pytest.raises(ConfigurationError):
        conn.appdb.authenticate(5, "pw")  # type: ignore[arg-type]
    conn.appdb.logout()  # nothing stored: nothing to do


def test_uri_credentials_stay_after_logout(auth_server: SecantusServer) -> None:
    c = Connection(f"mongodb://bob:bob-pw@{auth_server.address}/appdb", auto_start_request=False)
    try:
        assert can_read(c)
        with pytest.raises(OperationFailure, match="already authenticated"):
            c.appdb.authenticate("carol", "carol-pw")
        c.appdb.logout()  # the URI's credentials are the connection's own
        c.close()
        assert can_read(c)
        assert c.otherdb.authenticate("dave", "dave-pw")
        assert can_read(c, "otherdb") and can_read(c)
    finally:
        c.close()
