"""The tracing proxy between real clients (pymongo, wireclient's Connection, the CLI) and
SecantusDB: frames printed as they pass, captures, fault options and what the client then
sees, and a clean stop, through the Python API in-process and as `wireclient proxy`."""

from __future__ import annotations

import io
import select
import signal
import socket
import threading
import time
from typing import Any, Callable, Iterator, List

import pymongo
import pymongo.errors
import pytest
from cli_helpers import finish, json_documents, one_line_error, popen_cli, run_cli, wait_for_line
from servers import SecantusServer
from waiting import wait_until

from wireclient import Connection, protocol
from wireclient.errors import AutoReconnect, NetworkTimeout, OperationFailure, ProtocolError
from wireclient.toolkit.proxy import HOST_UNREACHABLE, Proxy, flip_byte
from wireclient.transport.blocking import run

PING = {"ping": 1}


class Output(io.StringIO):
    """The proxy's output, readable while it runs."""

    def lines(self) -> List[str]:
        return self.getvalue().splitlines()

    def heads(self) -> List[str]:
        """Frame header lines and events, without their indented details."""
        return [line for line in self.lines() if not line.startswith(" ")]


def proxy_threads() -> List[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("wireclient-proxy")]


def assert_cleaned_up(proxy: Proxy) -> None:
    wait_until(lambda: not proxy_threads() and not proxy.open_connections())
    assert proxy_threads() == []
    assert proxy.open_connections() == 0


@pytest.fixture()
def make_proxy(server: SecantusServer) -> Iterator[Callable[..., Proxy]]:
    started: List[Proxy] = []

    def make(**options: Any) -> Proxy:
        options.setdefault("out", Output())
        proxy = Proxy(("127.0.0.1", 0), (server.host, server.port), **options).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()
        assert_cleaned_up(proxy)


def pymongo_client(proxy: Proxy, **options: Any) -> pymongo.MongoClient[Any]:
    options.setdefault("serverSelectionTimeoutMS", 5000)
    return pymongo.MongoClient(
        f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true", **options
    )


def connection(proxy: Proxy, **options: Any) -> Connection:
    return Connection(f"mongodb://127.0.0.1:{proxy.port}", auto_start_request=False, **options)


# -- forwarding and printing ---------------------------------------------------------------


def test_pymongo_through_the_proxy(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy()
    client = pymongo_client(proxy)
    try:
        client.proxy_db.things.drop()
        client.proxy_db.things.insert_one({"_id": 1, "via": "proxy"})
        assert client.proxy_db.things.find_one() == {"_id": 1, "via": "proxy"}
    finally:
        client.close()
    proxy.stop()
    assert_cleaned_up(proxy)
    out: Output = proxy.out  # type: ignore[assignment]
    heads = out.heads()
    assert any(" conn 1 opened from 127.0.0.1:" in h for h in heads)
    requests = [h for h in heads if " client -> server  OP_MSG" in h]
    replies = [h for h in heads if " server -> client  OP_MSG" in h]
    assert requests and replies
    assert all(h.split()[1] == "conn" and h.split()[2].isdigit() for h in requests + replies)
    text = out.getvalue()
    assert "section kind 1 'documents' (1 document):" in text  # pymongo's insert
    assert '{"_id": 1, "via": "proxy"}' in text
    assert '"firstBatch": [{"_id": 1, "via": "proxy"}]' in text  # the find's reply
    closed = [h for h in heads if " closed: " in h]
    assert len(closed) == proxy.connections >= 2  # pymongo's monitor has its own


def test_wireclient_connection_through_the_proxy(
    make_proxy: Callable[..., Proxy], server: SecantusServer
) -> None:
    direct = Connection(server.uri, auto_start_request=False)
    sock = run(direct.pool.checkout())
    host, port = sock.sock.getsockname()
    assert run(sock.command("admin", {"whatsmyuri": 1}))["you"] == f"{host}:{port}"
    direct.pool.return_socket(sock)
    direct.close()

    proxy = make_proxy()
    conn = connection(proxy)
    sock = run(conn.pool.checkout())
    you = run(sock.command("admin", {"whatsmyuri": 1}))["you"]
    host, port = sock.sock.getsockname()
    assert you != f"{host}:{port}"  # the server sees the proxy's socket
    conn.pool.return_socket(sock)
    conn.proxy_db.c.drop()
    conn.proxy_db.c.insert([{"_id": 1}, {"_id": 2}])
    assert conn.proxy_db.c.count() == 2
    conn.close()
    text = proxy.out.getvalue()  # type: ignore[union-attr]
    assert "conn 1 client -> server  OP_QUERY" in text  # wireclient's first hello
    assert "fullCollectionName: admin.$cmd" in text
    assert '"whatsmyuri": 1' in text
    assert "section kind 1 'documents' (2 documents):" in text


def test_malformed_frames_pass_through_unchanged(make_proxy: Callable[..., Proxy]) -> None:
    ping = protocol.encode(protocol.OpMsg({"ping": 1, "$db": "admin"}), request_id=7)
    bad_opcode = ping[:12] + (1337).to_bytes(4, "little") + ping[16:]
    proxy = make_proxy()
    result = run_cli("send", f"127.0.0.1:{proxy.port}", "-", input=bad_opcode)
    assert result.stdout.strip().splitlines()[-1].startswith("closed: ")  # SecantusDB hung up
    assert result.returncode == 1
    closed = "conn 1 closed: the server closed the connection"
    wait_until(lambda: not proxy.open_connections() and closed in proxy.out.getvalue())  # type: ignore[union-attr]
    text = proxy.out.getvalue()  # type: ignore[union-attr]
    assert "client -> server  unknown opCode  messageLength=51" in text
    assert "does not decode: unknown opCode 1337" in text
    assert "conn 1 closed: the server closed the connection" in text


def test_upstream_unreachable(server: SecantusServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = s.getsockname()
        out = Output()
        with Proxy(("127.0.0.1", 0), nowhere, out=out) as proxy:
            # the handshake is answered with the refusal, not hung up on (issue 22)
            with pytest.raises(OperationFailure, match="cannot connect to 127.0.0.1:") as info:
                connection(proxy, connectTimeoutMS=5000)
            assert info.value.code == HOST_UNREACHABLE
        assert_cleaned_up(proxy)
    assert "closed: cannot connect to 127.0.0.1:" in out.getvalue()
    assert "answered the first request with the upstream's refusal" in out.getvalue()


def answers(client: Any) -> bool:
    try:
        return bool(client.admin.command(PING)["ok"])
    except pymongo.errors.ServerSelectionTimeoutError:
        return False


def test_stop_closes_every_socket(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy()
    conn = connection(proxy)
    # 300 ms: after the proxy stops, pymongo's close() waits that long to select a server
    # for endSessions. Its first ping may need longer on a busy machine: tried until it works.
    client = pymongo_client(proxy, serverSelectionTimeoutMS=300)
    assert wait_until(lambda: answers(client))
    assert conn.pool.open_count == 1 and proxy.open_connections() >= 2
    proxy.stop()
    assert_cleaned_up(proxy)
    sock = run(conn.pool.checkout())  # idle in the pool, closed by the proxy
    assert wait_until(sock.is_dead)
    conn.pool.return_socket(sock)
    with pytest.raises(AutoReconnect):  # and nobody listens any more
        conn.admin.command("ping")
    conn.close()
    client.close()
    proxy.stop()  # idempotent


# -- capture -------------------------------------------------------------------------------


def test_capture_is_read_back_by_decode(make_proxy: Callable[..., Proxy], tmp_path: Any) -> None:
    path = str(tmp_path / "session.wcap")
    proxy = make_proxy(capture=path, out=None)
    conn = connection(proxy)
    conn.admin.command("ping")
    conn.close()
    proxy.stop()
    result = run_cli("decode", path)
    assert result.returncode == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads[0].startswith("+0.000s conn 1 opened from 127.0.0.1:")
    assert [h.split()[3:6] for h in heads[1:5]] == [
        ["client", "->", "server"],
        ["server", "->", "client"],
        ["client", "->", "server"],
        ["server", "->", "client"],
    ]
    assert heads[1].split()[6] == "OP_QUERY" and heads[2].split()[6] == "OP_REPLY"
    assert 'section kind 0 body: {"ping": 1, "$db": "admin"}' in result.stdout
    assert heads[-1].split()[3] == "closed:"


# -- faults --------------------------------------------------------------------------------


def test_delay_makes_replies_slower_but_fine(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(delay_ms=300)
    conn = connection(proxy)
    started = time.monotonic()
    assert conn.admin.command("ping")["ok"] == 1
    assert time.monotonic() - started >= 0.3
    conn.close()
    client = pymongo_client(proxy)
    started = time.monotonic()
    assert client.admin.command(PING)["ok"] == 1
    assert time.monotonic() - started >= 0.3
    client.close()


def test_delay_beyond_socket_timeout_is_a_network_timeout(
    make_proxy: Callable[..., Proxy],
) -> None:
    proxy = make_proxy(delay_ms=1000)
    conn = connection(proxy, socketTimeoutMS=200)  # the handshake has connectTimeoutMS
    with pytest.raises(NetworkTimeout):
        conn.admin.command("ping")
    assert conn.pool.open_count == 0  # the timed-out socket was closed, not pooled
    conn.close()
    client = pymongo_client(proxy, socketTimeoutMS=200)
    with pytest.raises(pymongo.errors.NetworkTimeout):
        client.admin.command(PING)
    client.close()


def test_close_after_then_recovery_wireclient(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(close_after=2)
    conn = connection(proxy)  # reply 1: the handshake
    assert conn.admin.command("ping")["ok"] == 1  # reply 2
    with pytest.raises(AutoReconnect):
        conn.admin.command("ping")  # the proxy hangs up instead of forwarding it
    assert conn.admin.command("ping")["ok"] == 1  # a new socket: handshake, then ping
    conn.close()
    text = proxy.out.getvalue()  # type: ignore[union-attr]
    assert "conn 1 fault: closing after 2 replies (--close-after)" in text
    assert "conn 1 closed: fault: closing after 2 replies" in text


def test_close_after_then_recovery_pymongo(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(close_after=2)
    client = pymongo_client(proxy)
    assert client.admin.command(PING)["ok"] == 1
    with pytest.raises(pymongo.errors.AutoReconnect):
        client.admin.command(PING)
    assert client.admin.command(PING)["ok"] == 1
    client.close()


def test_corrupt_after_then_recovery_wireclient(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(corrupt_after=3)
    conn = connection(proxy)  # reply 1
    assert conn.admin.command("ping")["ok"] == 1  # reply 2
    with pytest.raises(ProtocolError, match="invalid BSON"):
        conn.admin.command("ping")  # reply 3: its last byte (the BSON terminator) flipped
    assert conn.pool.open_count == 0  # that socket was closed
    assert conn.admin.command("ping")["ok"] == 1  # a new socket
    conn.close()
    text = proxy.out.getvalue()  # type: ignore[union-attr]
    assert "conn 1 fault: flipped byte -1 of reply 3 (--corrupt-after)" in text


def test_corrupt_the_opcode_then_recovery(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(corrupt_after=2, corrupt_byte=12)
    conn = connection(proxy, connectTimeoutMS=5000)
    with pytest.raises(ProtocolError, match="unknown opCode"):
        conn.admin.command("ping")
    conn.close()
    client = pymongo_client(proxy)
    with pytest.raises(pymongo.errors.PyMongoError):
        client.admin.command(PING)  # pymongo: ProtocolError ("Got opcode ...")
    client.close()


def test_corrupt_after_then_recovery_pymongo(make_proxy: Callable[..., Proxy]) -> None:
    import bson.errors

    proxy = make_proxy(corrupt_after=3)
    client = pymongo_client(proxy)
    assert client.admin.command(PING)["ok"] == 1
    # pymongo 4.20 lets bson's InvalidBSON out for a broken reply document
    with pytest.raises((pymongo.errors.PyMongoError, bson.errors.InvalidBSON)):
        client.admin.command(PING)
    assert client.admin.command(PING)["ok"] == 1
    # close() sends endSessions on the new connection; as its third reply it is corrupted
    # too, and pymongo lets that InvalidBSON out of close()
    with pytest.raises(bson.errors.InvalidBSON):
        client.close()


def test_flip_byte() -> None:
    assert flip_byte(b"\x00\x01\x02", 0) == b"\xff\x01\x02"
    assert flip_byte(b"\x00\x01\x02", -1) == b"\x00\x01\xfd"
    assert flip_byte(b"\x00", 1) is None and flip_byte(b"\x00", -2) is None


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_proxy_stops_cleanly_on_a_signal(
    server: SecantusServer, tmp_path: Any, sig: signal.Signals
) -> None:
    out_path = str(tmp_path / "proxy.out")
    capture = str(tmp_path / "c.wcap")
    with open(out_path, "w") as out:
        proc = popen_cli(
            "proxy", "--listen", "127.0.0.1:0", "--upstream", server.address,
            "--capture", capture, stdout=out,
        )  # fmt: skip
    try:
        line = wait_for_line(out_path, "proxy listening on ")
        port = int(line.split()[3].rstrip(",").rsplit(":", 1)[1])
        client = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=5000
        )
        assert client.admin.command(PING)["ok"] == 1
        client.close()
        result = run_cli("ping", f"127.0.0.1:{port}")  # the CLI as a client, too
        assert json_documents(result.stdout)[0]["ok"] == 1
        conn = Connection(f"mongodb://127.0.0.1:{port}", auto_start_request=False)
        proc.send_signal(sig)  # with a client still connected
        done = finish(proc)
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with open(out_path) as f:
        text = f.read()
    assert "client -> server  OP_MSG" in text and "server -> client  OP_MSG" in text
    assert "closed: the proxy stopped" in text
    assert text.strip().splitlines()[-1].endswith("connection(s)")
    assert run_cli("decode", capture).returncode == 0


def test_cli_proxy_quiet_with_faults(server: SecantusServer, tmp_path: Any) -> None:
    out_path = str(tmp_path / "proxy.out")
    with open(out_path, "w") as out:
        proc = popen_cli(
            "proxy", "--listen", "127.0.0.1:0", "--upstream", server.address,
            "--quiet", "--close-after", "1", "--delay-ms", "50", stdout=out,
        )  # fmt: skip
    try:
        line = wait_for_line(out_path, "proxy listening on ")
        port = line.split()[3].rstrip(",").rsplit(":", 1)[1]
        result = run_cli("ping", f"127.0.0.1:{port}")  # hello is reply 1; ping is refused
        assert result.returncode == 1
        one_line_error(result, "AutoReconnect")
        proc.terminate()
        done = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert done.returncode == 0
    with open(out_path) as f:
        text = f.read()
    assert "OP_MSG" not in text and "OP_QUERY" not in text  # --quiet: no frames
    assert "conn 1 fault: closing after 1 replies (--close-after)" in text


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--listen", "127.0.0.1:notaport", "--upstream", "127.0.0.1:1"], "HOST:PORT"),
        (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:0"], "--upstream"),
        (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--close-after", "0"], ">= 1"),
        (["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--delay-ms", "-1"], ">= 0"),
        (
            ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--capture", "/no/dir/x"],
            "cannot write",
        ),
    ],
)
def test_cli_proxy_usage_errors(args: List[str], needle: str) -> None:
    result = run_cli("proxy", *args, timeout=30)
    assert result.returncode == 2
    one_line_error(result, needle)


# A busy --listen port: tests/toolkit/test_cli_trial.py (exit status 2, one line).


def test_cli_proxy_goes_on_when_its_output_is_closed(server: SecantusServer) -> None:
    """`wireclient proxy ... | head -1`: the reader went away, the proxy keeps forwarding."""
    proc = popen_cli("proxy", "--listen", "127.0.0.1:0", "--upstream", server.address)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the proxy printed nothing in 20 s"
        line = proc.stdout.readline()
        proc.stdout.close()
        port = line.split()[3].rstrip(",").rsplit(":", 1)[1]
        conn = Connection(f"mongodb://127.0.0.1:{port}", auto_start_request=False)
        assert conn.admin.command("ping")["ok"] == 1
        conn.close()
        proc.terminate()
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
    assert proc.stderr is not None and proc.stderr.read() == ""
    proc.stderr.close()
