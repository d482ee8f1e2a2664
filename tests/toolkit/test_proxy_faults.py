"""The proxy's fault rules and TLS between real clients (wireclient's Connection, pymongo 4,
the CLI) and SecantusDB: the command hit, what the client sees, and that the server never
saw an answered command (its own opcounters say so)."""

from __future__ import annotations

import io
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List
from urllib.parse import quote

import pymongo
import pymongo.errors
import pytest
from certs import CertPaths, make_certs, openssl_available
from cli_helpers import finish, popen_cli, run_cli, wait_for_line
from servers import SecantusServer

from wireclient import Connection
from wireclient.errors import AutoReconnect, NetworkTimeout, NotPrimaryError, OperationFailure
from wireclient.toolkit.proxy import (
    HOST_UNREACHABLE,
    FaultRule,
    Proxy,
    client_tls_context,
    server_tls_context,
)
from wireclient.transport.blocking import run


@pytest.fixture()
def make_proxy(server: SecantusServer) -> Iterator[Callable[..., Proxy]]:
    started: List[Proxy] = []

    def make(**options: Any) -> Proxy:
        options.setdefault("out", io.StringIO())
        options.setdefault("show_frames", False)
        upstream = options.pop("upstream", (server.host, server.port))
        proxy = Proxy(("127.0.0.1", 0), upstream, **options).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def events(proxy: Proxy) -> str:
    out = proxy.out
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def wireclient_through(proxy: Proxy, **options: Any) -> Connection:
    return Connection(f"mongodb://127.0.0.1:{proxy.port}", auto_start_request=False, **options)


def pymongo_through(proxy: Proxy, **options: Any) -> pymongo.MongoClient[Any]:
    options.setdefault("serverSelectionTimeoutMS", 30000)  # what must succeed, however busy
    return pymongo.MongoClient(
        f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true", **options
    )


def opcounters(server: SecantusServer) -> Dict[str, int]:
    conn = Connection(server.uri, auto_start_request=False)
    try:
        return dict(conn.admin.command("serverStatus")["opcounters"])
    finally:
        conn.close()


def test_second_find_gets_an_error_the_server_never_sees_wireclient(
    make_proxy: Callable[..., Proxy], server: SecantusServer
) -> None:
    conn = Connection(server.uri, auto_start_request=False)
    conn.faults.things.drop()
    conn.faults.things.insert({"_id": 1})
    conn.close()
    proxy = make_proxy(faults=["find:2:error=91"])
    client = wireclient_through(proxy)
    with client.start_request():  # one socket: the rule counts per client connection
        before = opcounters(server)
        assert client.faults.things.find_one() == {"_id": 1}
        with pytest.raises(NotPrimaryError) as info:  # 91: ShutdownInProgress
            client.faults.things.find_one()
        assert info.value.details["code"] == 91
        assert "rule find:2:error=91" in str(info.value)
    assert client.faults.things.find_one() == {"_id": 1}  # a new socket counts from 1
    assert opcounters(server)["query"] - before["query"] == 2  # finds 1 and 3 only
    client.close()
    log = events(proxy)
    assert "fault: answered find requestID=" in log and "with error 91, not forwarded" in log


def test_second_insert_is_never_written(
    make_proxy: Callable[..., Proxy], server: SecantusServer
) -> None:
    proxy = make_proxy(faults=[FaultRule.parse("insert:2:error=11600")])
    client = wireclient_through(proxy)
    client.faults.inserts.drop()
    with client.start_request():
        client.faults.inserts.insert({"_id": 1})
        with pytest.raises(AutoReconnect):  # 11600 InterruptedAtShutdown: a not-primary error
            client.faults.inserts.insert({"_id": 2})
    client.faults.inserts.insert({"_id": 3})
    assert sorted(d["_id"] for d in client.faults.inserts.find()) == [1, 3]
    client.close()


def test_second_find_gets_an_error_pymongo(
    make_proxy: Callable[..., Proxy], server: SecantusServer
) -> None:
    proxy = make_proxy(faults=["find:2:error=91"])
    client = pymongo_through(proxy, retryReads=False, maxPoolSize=1)
    try:
        before = opcounters(server)
        client.faults.things.find_one()
        with pytest.raises(pymongo.errors.NotPrimaryError) as info:
            client.faults.things.find_one()
        assert info.value.details is not None and info.value.details["code"] == 91
        assert opcounters(server)["query"] - before["query"] == 1
    finally:
        client.close()


def test_every_insert_is_closed_pymongo(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(faults=["insert:*:close"])
    client = pymongo_through(proxy, retryWrites=False)
    try:
        for i in range(3):
            with pytest.raises(pymongo.errors.AutoReconnect):
                client.faults.closed.insert_one({"i": i})
            assert client.faults.closed.count_documents({}) >= 0  # other commands pass
    finally:
        client.close()
    assert events(proxy).count("fault: closing the connection at insert") == 3


def test_every_insert_is_closed_wireclient(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(faults=["insert:*:close"])
    client = wireclient_through(proxy)
    for i in range(3):
        with pytest.raises(AutoReconnect, match="closed"):
            client.faults.closed.insert({"i": i})
        assert client.admin.command("ping")["ok"] == 1.0
    client.close()


def test_delay_holds_the_command_at_least_that_long(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(faults=["ping:*:delay=250ms"])
    client = wireclient_through(proxy)
    client.admin.command("buildinfo")  # connected; not delayed
    started = time.monotonic()
    assert client.admin.command("ping")["ok"] == 1.0
    assert time.monotonic() - started >= 0.25  # a lower bound only: the machine is noisy
    client.close()
    assert "fault: holding ping requestID=" in events(proxy)


def test_a_dropped_command_times_the_client_out(make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy(faults=["ping:1:drop"])
    client = wireclient_through(proxy)
    # only the ping's socket (the idle one the constructor opened) gets a short timeout: the
    # buildinfo below, on a new socket, must not race one on a busy machine
    sock = run(client.pool.checkout())
    sock.socket_timeout = 0.3
    client.pool.return_socket(sock)
    with pytest.raises(NetworkTimeout):
        client.admin.command("ping")
    assert client.admin.command("buildinfo")["ok"] == 1.0  # a new socket, not dropped
    client.close()
    assert "fault: dropped ping requestID=" in events(proxy)


def test_monitors_are_spared_unless_asked(make_proxy: Callable[..., Proxy]) -> None:
    spared = make_proxy(faults=["hello:*:close", "ismaster:*:close"])
    client = pymongo_through(spared)
    try:  # the monitor's and the handshake's hellos pass, so pymongo works
        assert client.admin.command("ping")["ok"] == 1.0
    finally:
        client.close()
    assert "fault:" not in events(spared)
    strict = make_proxy(faults=["hello:*:close", "ismaster:*:close"], spare_monitors=False)
    client = pymongo_through(strict, serverSelectionTimeoutMS=500)
    try:
        with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
            client.admin.command("ping")
    finally:
        client.close()
    assert "fault: closing the connection at " in events(strict)


def test_bad_rules_are_refused_by_the_proxy(server: SecantusServer) -> None:
    from wireclient.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="bad fault rule 'find:0:close'"):
        Proxy(("127.0.0.1", 0), (server.host, server.port), faults=["find:0:close"])


def test_cli_proxy_with_rules(server: SecantusServer, tmp_path: Any) -> None:
    out_path = str(tmp_path / "proxy.out")
    with open(out_path, "w") as out:
        proc = popen_cli(
            "proxy", "--listen", "127.0.0.1:0", "--upstream", server.address, "--quiet",
            "--fault", "ping:2:error=91", "--fault", "buildinfo:*:close", stdout=out,
        )  # fmt: skip
    try:
        line = wait_for_line(out_path, "proxy listening on ")
        port = line.split()[3].rstrip(",").rsplit(":", 1)[1]
        assert run_cli("ping", f"127.0.0.1:{port}").returncode == 0  # each run: a connection
        result = run_cli("cmd", f"127.0.0.1:{port}", '{"buildinfo": 1}')
        assert result.returncode == 1 and "AutoReconnect" in result.stderr
        result = run_cli("cmd", f"127.0.0.1:{port}", '{"ping": 1}', "--op-query")
        assert result.returncode == 0  # ping #1 of its connection
        proc.terminate()
        done = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert done.returncode == 0
    with open(out_path) as f:
        text = f.read()
    assert "fault: closing the connection at buildinfo" in text


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--fault", "find:2"], "bad fault rule 'find:2'"),
        (["--fault", "find:1:close", "--fault", "x:y:z"], "ordinal 'y'"),
        (["--upstream-tls-insecure"], "need --upstream-tls"),
        (["--tls-key-file", "k.pem"], "need --tls-cert-file"),
        (["--tls-cert-file", "/no/such.pem"], "TLS:"),
    ],
)
def test_cli_fault_usage_errors(args: List[str], needle: str) -> None:
    result = run_cli("proxy", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", *args)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs() -> Iterator[CertPaths]:
    if not openssl_available():
        pytest.skip("openssl is not installed")
    with tempfile.TemporaryDirectory(prefix="wireclient-proxy-certs-") as directory:
        yield make_certs(directory)


@pytest.fixture(scope="module")
def tls_server(certs: CertPaths) -> Iterator[SecantusServer]:
    args = ["--tls-cert-file", certs.server_cert, "--tls-key-file", certs.server_key,
            "--tls-ca-file", certs.ca]  # fmt: skip
    with SecantusServer(extra_args=args) as srv:
        yield srv


def tls_uri(port: int, ca: str) -> str:
    return f"mongodb://127.0.0.1:{port}/?tls=true&tlsCAFile={quote(ca, safe='')}"


def test_tls_on_both_sides(
    make_proxy: Callable[..., Proxy], tls_server: SecantusServer, certs: CertPaths
) -> None:
    proxy = make_proxy(
        upstream=(tls_server.host, tls_server.port),
        listen_tls=server_tls_context(certs.server_cert, certs.server_key),
        upstream_tls=client_tls_context(certs.ca),
        faults=["find:2:error=91"],
        show_frames=True,
    )
    client = Connection(tls_uri(proxy.port, certs.ca), auto_start_request=False)
    coll = client.faults.tls
    coll.drop()
    coll.insert([{"_id": i, "pad": "x" * 1000} for i in range(200)])
    with client.start_request():
        assert len(list(coll.find(batch_size=7))) == 200  # find, then many getMores
        with pytest.raises(NotPrimaryError):
            coll.find_one()
    client.close()
    py = pymongo.MongoClient(tls_uri(proxy.port, certs.ca), serverSelectionTimeoutMS=5000,
                             directConnection=True)  # fmt: skip
    try:
        assert py.faults.tls.count_documents({}) == 200
    finally:
        py.close()
    assert 'section kind 0 body: {"find": "tls"' in events(proxy)  # decrypted frames traced


def test_tls_to_the_client_only(make_proxy: Callable[..., Proxy], certs: CertPaths) -> None:
    proxy = make_proxy(listen_tls=server_tls_context(certs.server_cert, certs.server_key))
    client = Connection(tls_uri(proxy.port, certs.ca), auto_start_request=False)
    assert client.admin.command("ping")["ok"] == 1.0
    client.close()
    with pytest.raises(AutoReconnect):  # a plain client meets a TLS listener
        Connection(f"mongodb://127.0.0.1:{proxy.port}/?connectTimeoutMS=2000&socketTimeoutMS=2000")


def test_tls_to_the_server_only(
    make_proxy: Callable[..., Proxy], tls_server: SecantusServer, certs: CertPaths
) -> None:
    proxy = make_proxy(
        upstream=(tls_server.host, tls_server.port), upstream_tls=client_tls_context(certs.ca)
    )
    client = wireclient_through(proxy)
    assert client.admin.command("ping")["ok"] == 1.0
    client.close()
    untrusted = make_proxy(
        upstream=(tls_server.host, tls_server.port),
        upstream_tls=client_tls_context(certs.other_ca),
    )
    # the proxy answers the handshake saying why it cannot reach the server (HostUnreachable)
    with pytest.raises(OperationFailure, match="certificate verify failed") as info:
        wireclient_through(untrusted, connectTimeoutMS=2000)
    assert info.value.code == HOST_UNREACHABLE
    untrusted.stop()  # joins the link's threads: its events are all written
    assert "certificate verify failed" in events(untrusted)


def test_cli_proxy_tls(tls_server: SecantusServer, certs: CertPaths, tmp_path: Any) -> None:
    out_path = str(tmp_path / "proxy.out")
    with open(out_path, "w") as out:
        proc = popen_cli(
            "proxy", "--listen", "127.0.0.1:0", "--upstream", tls_server.address, "--quiet",
            "--tls-cert-file", certs.server_cert, "--tls-key-file", certs.server_key,
            "--upstream-tls", "--upstream-tls-ca-file", certs.ca, stdout=out,
        )  # fmt: skip
    try:
        line = wait_for_line(out_path, "proxy listening on ")
        port = int(line.split()[3].rstrip(",").rsplit(":", 1)[1])
        result = run_cli("ping", tls_uri(port, certs.ca))
        assert result.returncode == 0, result.stderr
        proc.terminate()
        assert finish(proc).returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
