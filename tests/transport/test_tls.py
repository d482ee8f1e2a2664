"""TLS against SecantusDB, with a CA and certificates made by ``openssl`` (see certs.py).

Three servers share the module: ``tls`` (server certificate for 127.0.0.1 and localhost,
client certificates verified when offered), ``mtls`` (a client certificate is required)
and ``wrong_host`` (a certificate for wrong.example). They start and stop in parallel,
since a SecantusDB stop takes about two seconds.

The tests that open connections run on both clients (the ``flavour`` fixture,
``flavoured.py``): the blocking one wraps its socket in an ``ssl.SSLSocket``, the asyncio
one goes through ``loop.start_tls`` (a ``TLSStream``); the checks and the errors are the
same.
"""

from __future__ import annotations

import pathlib
import socket
import ssl
import subprocess
import tempfile
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import quote

import pytest
from certs import CertPaths, make_certs, openssl_available
from flavoured import FLAVOURS, Flavour, got
from servers import SecantusServer

from wireclient import AsyncConnection, Connection
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    NetworkTimeout,
)
from wireclient.transport.asynchronous import TLSStream

pytestmark = pytest.mark.skipif(not openssl_available(), reason="needs the openssl command")


def _in_parallel(fns: List[Callable[[], object]]) -> None:
    errors: List[BaseException] = []

    def run(fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def certs() -> Iterator[CertPaths]:
    with tempfile.TemporaryDirectory(prefix="wireclient-certs-") as directory:
        yield make_certs(directory)


@pytest.fixture(scope="module")
def servers(certs: CertPaths) -> Iterator[Dict[str, SecantusServer]]:
    tls_args = [
        "--tls-cert-file",
        certs.server_cert,
        "--tls-key-file",
        certs.server_key,
        "--tls-ca-file",
        certs.ca,
    ]
    started = {
        "tls": SecantusServer(extra_args=tls_args),
        "mtls": SecantusServer(extra_args=tls_args + ["--tls-require-client-cert"]),
        "wrong_host": SecantusServer(
            extra_args=[
                "--tls-cert-file",
                certs.wrong_host_cert,
                "--tls-key-file",
                certs.wrong_host_key,
            ]
        ),
    }
    try:
        _in_parallel([srv.start for srv in started.values()])
        yield started
    finally:
        _in_parallel([srv.stop for srv in started.values()])


def tls_uri(server: SecantusServer, host: str = "127.0.0.1", **options: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in {"tls": "true", **options}.items())
    return f"mongodb://{host}:{server.port}/?{query}"


@pytest.fixture(params=FLAVOURS)
def flavour(request: Any) -> Flavour:
    """The blocking client, then the asyncio one (``flavoured.py``)."""
    return Flavour(request.param)


async def connect(flavour: Flavour, uri: str, **options: Any) -> Any:
    """A connected ``Connection`` or ``AsyncConnection`` (without auto_start_request)."""
    options.setdefault("auto_start_request", False)
    return await flavour.open(Connection, AsyncConnection, uri, **options)


async def tls_socket(flavour: Flavour, conn: Any) -> Any:
    """The TLS object under one of ``conn``'s pooled sockets (given back): an
    ``ssl.SSLSocket``, or the asyncio client's ``TLSStream``."""
    sock = await flavour.steps(conn.pool.checkout())
    raw = sock.sock
    conn.pool.return_socket(sock)
    assert isinstance(raw, TLSStream if flavour.asynchronous else ssl.SSLSocket), raw
    return raw


def ping(flavour: Flavour, uri: str) -> Optional[str]:
    """Connect, ping, check the ping went over TLS, close; return the TLS version."""

    async def main() -> Optional[str]:
        conn = await connect(flavour, uri)
        try:
            assert (await got(conn.admin.command("ping")))["ok"] == 1
            version: Optional[str] = (await tls_socket(flavour, conn)).version()
            return version
        finally:
            await got(conn.close())

    return flavour.run(main)


def refused(flavour: Flavour, error: Any, uri: str, match: Optional[str] = None, **kw: Any) -> Any:
    """Connecting to ``uri`` raises ``error`` (matching ``match``); its ExceptionInfo."""

    async def main() -> Any:
        with pytest.raises(error, match=match) as info:
            conn = await connect(flavour, uri, **kw)
            await got(conn.close())
        return info

    return flavour.run(main)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_ping_over_tls(
    servers: Dict[str, SecantusServer], certs: CertPaths, host: str, flavour: Flavour
) -> None:
    version = ping(flavour, tls_uri(servers["tls"], host, tlsCAFile=certs.ca))
    assert version in ("TLSv1.2", "TLSv1.3")


def test_the_server_certificate_is_the_one_we_made(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    async def main() -> Any:
        conn = await connect(flavour, tls_uri(servers["tls"], tlsCAFile=certs.ca))
        try:
            raw = await tls_socket(flavour, conn)
            assert raw.cipher()[1] in ("TLSv1.2", "TLSv1.3")
            return raw.getpeercert()
        finally:
            await got(conn.close())

    peer = flavour.run(main)
    assert peer is not None
    names = peer["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in names and ("DNS", "localhost") in names


@pytest.mark.parametrize("ca", ["other CA", "system CAs"])
def test_untrusted_server_certificate_is_a_connection_failure(
    servers: Dict[str, SecantusServer], certs: CertPaths, ca: str, flavour: Flavour
) -> None:
    options = {"tlsCAFile": certs.other_ca} if ca == "other CA" else {}
    info = refused(flavour, AutoReconnect, tls_uri(servers["tls"], **options))
    message = str(info.value)
    assert "certificate verify failed" in message
    assert f"127.0.0.1:{servers['tls'].port}" in message
    assert isinstance(info.value, ConnectionFailure)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


def test_allow_invalid_certificates(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    tls = servers["tls"]
    ping(flavour, tls_uri(tls, tlsCAFile=certs.other_ca, tlsAllowInvalidCertificates="true"))
    ping(flavour, tls_uri(tls, tlsAllowInvalidCertificates="true"))  # no CA at all
    ping(flavour, tls_uri(servers["wrong_host"], tlsAllowInvalidCertificates="true"))


def test_hostname_mismatch_is_a_connection_failure(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    uri = tls_uri(servers["wrong_host"], tlsCAFile=certs.ca)
    refused(flavour, AutoReconnect, uri, "certificate verify failed.*mismatch")


def test_allow_invalid_hostnames_still_checks_the_chain(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    wrong_host = servers["wrong_host"]
    ping(flavour, tls_uri(wrong_host, tlsCAFile=certs.ca, tlsAllowInvalidHostnames="true"))
    uri = tls_uri(wrong_host, tlsCAFile=certs.other_ca, tlsAllowInvalidHostnames="true")
    refused(flavour, AutoReconnect, uri, "certificate verify failed")


def test_client_certificate_offered_to_a_server_that_verifies_it(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    uri = tls_uri(servers["tls"], tlsCAFile=certs.ca, tlsCertificateKeyFile=certs.client_combined)
    ping(flavour, uri)


def test_client_certificate_required(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    mtls = servers["mtls"]
    ping(flavour, tls_uri(mtls, tlsCAFile=certs.ca, tlsCertificateKeyFile=certs.client_combined))
    # Without one, the server refuses; with TLS 1.3 the client learns it at the first read,
    # as the "certificate required" alert or, if the server hung up first, an EOF; or a
    # reset: the server closed with the client's hello unread, and the kernel drops the
    # alert still unread when the RST comes (the asyncio client reads at the loop's next
    # turn, so it often comes too late for the alert).
    uri = tls_uri(mtls, tlsCAFile=certs.ca)
    match = "certificate required|EOF|reset by peer"
    refused(flavour, AutoReconnect, uri, match, connectTimeoutMS=5000)


def test_plaintext_client_to_a_tls_server(
    servers: Dict[str, SecantusServer], flavour: Flavour
) -> None:
    uri = f"mongodb://127.0.0.1:{servers['tls'].port}/"
    refused(flavour, AutoReconnect, uri, connectTimeoutMS=5000)


def test_tls_client_to_a_plaintext_server(
    server: SecantusServer, certs: CertPaths, flavour: Flavour
) -> None:
    # SecantusDB reads the ClientHello as the start of a 66 KB message and waits for the
    # rest, so the client gives up at connectTimeoutMS.
    uri = tls_uri(server, tlsCAFile=certs.ca)
    refused(flavour, NetworkTimeout, uri, connectTimeoutMS=500)


def test_tls_handshake_timeout_is_a_network_timeout(certs: CertPaths, flavour: Flavour) -> None:
    with socket.socket() as listener:  # accepts TCP (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        uri = f"mongodb://127.0.0.1:{port}/?tls=true&tlsCAFile={quote(certs.ca, safe='')}"
        refused(flavour, NetworkTimeout, uri, connectTimeoutMS=300)


def test_tls_failures_leave_no_socket(
    servers: Dict[str, SecantusServer], certs: CertPaths, flavour: Flavour
) -> None:
    async def main() -> None:
        uri = tls_uri(servers["tls"], tlsCAFile=certs.other_ca)
        conn = flavour.make(Connection, AsyncConnection, uri)
        try:
            for _ in range(2):
                with pytest.raises(AutoReconnect):
                    await got(conn.admin.command("ping"))
            assert conn.pool.open_count == 0
        finally:
            await got(conn.close())

    flavour.run(main)


# Bad TLS *files* fail in engine.assembly.make_ssl_context, before any socket is opened,
# with a ConfigurationError that names the file (the ssl module's FileNotFoundError does not).
@pytest.mark.parametrize("option", ["tlsCAFile", "tlsCertificateKeyFile"])
def test_missing_tls_file_is_a_configuration_error(option: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} '/nonexistent/x.pem'"):
        Connection(f"mongodb://127.0.0.1:1/?tls=true&{option}=/nonexistent/x.pem", _connect=False)


def test_a_file_with_no_certificate_is_a_configuration_error(certs: CertPaths) -> None:
    with pytest.raises(ConfigurationError, match="tlsCAFile"):
        Connection(f"mongodb://127.0.0.1:1/?tls=true&tlsCAFile={certs.ca_key}", _connect=False)


def test_a_certificate_file_without_its_key_is_a_configuration_error(certs: CertPaths) -> None:
    uri = f"mongodb://127.0.0.1:1/?tls=true&tlsCertificateKeyFile={certs.ca}"
    with pytest.raises(ConfigurationError, match="tlsCertificateKeyFile"):
        Connection(uri, _connect=False)


def test_an_encrypted_key_is_refused_without_prompting(
    certs: CertPaths, tmp_path: pathlib.Path
) -> None:
    """wireclient has no pass-phrase option: an encrypted key is a ConfigurationError, and
    OpenSSL must not stop to ask for a pass phrase on the terminal (stdin is closed here)."""
    encrypted_key = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", certs.client_key, "-aes256", "-passout", "pass:secret"],
        check=True,
        stdout=encrypted_key.open("wb"),
    )
    combined = tmp_path / "client-encrypted.pem"
    combined.write_bytes(pathlib.Path(certs.client_cert).read_bytes() + encrypted_key.read_bytes())
    uri = f"mongodb://127.0.0.1:1/?tls=true&tlsCertificateKeyFile={combined}"
    with pytest.raises(ConfigurationError, match="tlsCertificateKeyFile"):
        Connection(uri, _connect=False)
