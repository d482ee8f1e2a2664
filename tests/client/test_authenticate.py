"""``Database.authenticate`` / ``logout`` (wireclient/engine/credentials.py) against SecantusDB
with ``--auth``: users are created first, then the server restarts on the same storage
with authentication required (it has no localhost exception). The credentials apply to
every socket of the connection: sockets opened later, other threads' sockets, the socket
of a request; a wrong password raises and leaves nothing behind; ``logout`` forgets them.

Each test runs on both clients (the ``flavour`` fixture, ``flavoured.py``); "another
caller" is another thread for the blocking client, another Task for the asyncio one.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from flavoured import FLAVOURS, Flavour, got
from servers import SecantusServer, secantus_with_auth

from wireclient import AsyncConnection, Connection
from wireclient.errors import AuthenticationError, ConfigurationError, OperationFailure
from wireclient.transport.auth import SCRAM_SHA_1, SCRAM_SHA_256


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


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


def connection(flavour: Flavour, target: str) -> Any:
    """A ``Connection`` or ``AsyncConnection`` without auto_start_request, unconnected (the
    server refuses nothing before a command)."""
    return flavour.make(Connection, AsyncConnection, target, auto_start_request=False)


def run_with(flavour: Flavour, target: str, body: Any) -> None:
    """``await body(conn)`` with a connection to ``target``, closed after."""

    async def main() -> None:
        conn = connection(flavour, target)
        try:
            await body(conn)
        finally:
            await got(conn.close())

    flavour.run(main)


@pytest.fixture()
def uri(auth_server: SecantusServer) -> str:
    return auth_server.uri


async def can_read(conn: Any, dbname: str = "appdb") -> bool:
    try:
        await got(conn[dbname].things.find_one())
    except OperationFailure as exc:
        assert exc.code == 13, exc  # Unauthorized
        return False
    return True


async def read_elsewhere(flavour: Flavour, conn: Any) -> bool:
    """``can_read`` by another caller: another thread, or another Task."""
    return bool(await flavour.go(can_read, conn))


def test_authenticate_applies_to_every_socket(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        assert not await can_read(conn)
        assert await got(conn.appdb.authenticate("bob", "bob-pw")) is True
        assert await can_read(conn)
        assert await read_elsewhere(flavour, conn)  # another caller, another socket
        await got(conn.close())  # every socket closed: the next is authenticated as made
        assert await can_read(conn)
        busy = [await flavour.steps(conn.pool.checkout()) for _ in range(3)]  # new sockets
        for sock in busy:
            conn.pool.return_socket(sock)
        assert conn.pool.open_count >= 3
        for _ in range(3):
            assert await read_elsewhere(flavour, conn)
        conn.appdb.logout()
        assert not await can_read(conn)
        assert not await read_elsewhere(flavour, conn)

    run_with(flavour, uri, body)


def test_sockets_made_before_authenticate_are_replaced(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        with conn.start_request():
            assert not await can_read(conn)
            before = conn.request_socket()
            await got(conn.appdb.authenticate("bob", "bob-pw"))
            assert await can_read(conn)  # in the same request, on a new, authenticated socket
            assert conn.request_socket() is not before and conn.in_request()

    run_with(flavour, uri, body)


def test_a_wrong_password_raises_and_is_forgotten(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        with pytest.raises(AuthenticationError):
            await got(conn.appdb.authenticate("bob", "wrong-pw"))
        assert not await can_read(conn)  # not an AuthenticationError: the credentials are gone
        assert await got(conn.appdb.authenticate("bob", "bob-pw"))  # the right ones may follow
        assert await can_read(conn)

    run_with(flavour, uri, body)


def test_one_user_per_database(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        await got(conn.appdb.authenticate("bob", "bob-pw"))
        assert await got(conn.appdb.authenticate("bob", "bob-pw")) is True  # the same: nothing
        with pytest.raises(OperationFailure, match="already authenticated to database 'appdb'"):
            await got(conn.appdb.authenticate("carol", "carol-pw"))
        conn.appdb.logout()
        assert await got(conn.appdb.authenticate("carol", "carol-pw"))
        assert await can_read(conn)

    run_with(flavour, uri, body)


def test_users_of_two_databases(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        await got(conn.appdb.authenticate("bob", "bob-pw"))
        await got(conn.otherdb.authenticate("dave", "dave-pw"))
        assert await can_read(conn, "appdb") and await can_read(conn, "otherdb")
        await got(conn.close())
        assert await can_read(conn, "appdb") and await can_read(conn, "otherdb")  # new sockets
        conn.otherdb.logout()
        assert await can_read(conn, "appdb") and not await can_read(conn, "otherdb")

    run_with(flavour, uri, body)


def test_source_and_mechanisms(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        assert await got(conn.appdb.authenticate("root", "root-pw", source="admin"))
        assert await can_read(conn, "appdb") and await can_read(conn, "otherdb")
        other = connection(flavour, uri)
        try:
            # only SCRAM-SHA-1 credentials: DEFAULT negotiates SHA-1
            assert await got(other.appdb.authenticate("old", "old-pw"))
            assert await can_read(other)
            other.appdb.logout()
            with pytest.raises(AuthenticationError):
                await got(other.appdb.authenticate("old", "old-pw", mechanism="SCRAM-SHA-256"))
            assert await got(other.appdb.authenticate("bob", "bob-pw", mechanism="SCRAM-SHA-256"))
            assert await can_read(other)
        finally:
            await got(other.close())

    run_with(flavour, uri, body)


def test_arguments_are_checked_before_anything_is_sent(uri: str, flavour: Flavour) -> None:
    async def body(conn: Any) -> None:
        with pytest.raises(ConfigurationError, match="unknown authMechanism|not supported"):
            await got(conn.appdb.authenticate("bob", "bob-pw", mechanism="MONGODB-CR"))
        with pytest.raises(ConfigurationError, match="not supported"):
            await got(conn.appdb.authenticate("bob", "bob-pw", gssapiServiceName="mongodb"))
        with pytest.raises(ConfigurationError):
            await got(conn.appdb.authenticate("bob"))  # no password
        with pytest.raises(ConfigurationError):
            await got(conn.appdb.authenticate(5, "pw"))
        conn.appdb.logout()  # nothing stored: nothing to do
        assert conn.pool.open_count == 0  # nothing was sent: no socket was opened

    run_with(flavour, uri, body)


def test_uri_credentials_stay_after_logout(auth_server: SecantusServer, flavour: Flavour) -> None:
    async def body(c: Any) -> None:
        assert await can_read(c)
        with pytest.raises(OperationFailure, match="already authenticated"):
            await got(c.appdb.authenticate("carol", "carol-pw"))
        c.appdb.logout()  # the URI's credentials are the connection's own
        await got(c.close())
        assert await can_read(c)
        assert await got(c.otherdb.authenticate("dave", "dave-pw"))
        assert await can_read(c, "otherdb") and await can_read(c)

    run_with(flavour, f"mongodb://bob:bob-pw@{auth_server.address}/appdb", body)
