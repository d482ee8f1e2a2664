"""TLS against SecantusDB, with a CA and certificates made by ``openssl`` (see certs.py).

Three servers share the module: ``tls`` (server certificate for 127.0.0.1 and localhost,
client certificates verified when offered), ``mtls`` (a client certificate is required)
and ``wrong_host`` (a certificate for wrong.example). They start and stop in parallel,
since a SecantusDB stop takes about two seconds.
"""

from __future__ import annotations

import pathlib
import socket
import ssl
import subprocess
import tempfile
import threading
from typing import Callable, Dict, Iterator, List, Optional
from urllib.parse import quote

import pytest
from certs import CertPaths, make_certs, openssl_available
from servers import SecantusServer

from wireclient import Connection
from wireclient.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    NetworkTimeout,
)
from wireclient.transport.blocking import run

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


def ping(uri: str) -> Optional[str]:
    """Connect, ping, check the ping went over TLS, close; return the TLS version."""
    conn = Connection(uri, auto_start_request=False)
    try:
        assert conn.admin.command("ping")["ok"] == 1
        sock = run(conn.pool.checkout())
        raw = sock.sock
        conn.pool.return_socket(sock)
        assert isinstance(raw, ssl.SSLSocket)
        return raw.version()
    finally:
        conn.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_ping_over_tls(servers: Dict[str, SecantusServer], certs: CertPaths, host: str) -> None:
    assert ping(tls_uri(servers["tls"], host, tlsCAFile=certs.ca)) in ("TLSv1.2", "TLSv1.3")


def test_the_server_certificate_is_the_one_we_made(
    servers: Dict[str, SecantusServer], certs: CertPaths
) -> None:
    conn = Connection(tls_uri(servers["tls"], tlsCAFile=certs.ca), auto_start_request=False)
    try:
        sock = run(conn.pool.checkout())
        raw = sock.sock
        assert isinstance(raw, ssl.SSLSocket)
        peer = raw.getpeercert()
        conn.pool.return_socket(sock)
        assert peer is not None
        names = peer["subjectAltName"]
        assert ("IP Address", "127.0.0.1") in names and ("DNS", "localhost") in names
    finally:
        conn.close()


@pytest.mark.parametrize("ca", ["other CA", "system CAs"])
def test_untrusted_server_certificate_is_a_connection_failure(
    servers: Dict[str, SecantusServer], certs: CertPaths, ca: str
) -> None:
    options = {"tlsCAFile": certs.other_ca} if ca == "other CA" else {}
    with pytest.raises(AutoReconnect) as info:
        Connection(tls_uri(servers["tls"], **options))
    message = str(info.value)
    assert "certificate verify failed" in message
    assert f"127.0.0.1:{servers['tls'].port}" in message
    assert isinstance(info.value, ConnectionFailure)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)


def test_allow_invalid_certificates(servers: Dict[str, SecantusServer], certs: CertPaths) -> None:
    ping(tls_uri(servers["tls"], tlsCAFile=certs.other_ca, tlsAllowInvalidCertificates="true"))
    ping(tls_uri(servers["tls"], tlsAllowInvalidCertificates="true"))  # no CA at all
    ping(tls_uri(servers["wrong_host"], tlsAllowInvalidCertificates="true"))


def test_hostname_mismatch_is_a_connection_failure(
    servers: Dict[str, SecantusServer], certs: CertPaths
) -> None:
    with pytest.raises(AutoReconnect, match="certificate verify failed.*mismatch"):
        Connection(tls_uri(servers["wrong_host"], tlsCAFile=certs.ca))


def test_allow_invalid_hostnames_still_checks_the_chain(
    servers: Dict[str, SecantusServer], certs: CertPaths
) -> None:
    ping(tls_uri(servers["wrong_host"], tlsCAFile=certs.ca, tlsAllowInvalidHostnames="true"))
    with pytest.raises(AutoReconnect, match="certificate verify failed"):
        Connection(
            tls_uri(
                servers["wrong_host"], tlsCAFile=certs.other_ca, tlsAllowInvalidHostnames="true"
            )
        )


def test_client_certificate_offered_to_a_server_that_verifies_it(
    servers: Dict[str, SecantusServer], certs: CertPaths
) -> None:
    ping(tls_uri(servers["tls"], tlsCAFile=certs.ca, tlsCertificateKeyFile=certs.client_combined))


def test_client_certificate_required(servers: Dict[str, SecantusServer], certs: CertPaths) -> None:
    ping(tls_uri(servers["mtls"], tlsCAFile=certs.ca, tlsCertificateKeyFile=certs.client_combined))
    # Without one, the server refuses; with TLS 1.3 the client learns it at the first read,
    # as the "certificate required" alert or, if the server hung up first, an EOF.
    with pytest.raises(AutoReconnect, match="certificate required|EOF"):
        Connection(tls_uri(servers["mtls"], tlsCAFile=certs.ca), connectTimeoutMS=5000)


def test_plaintext_client_to_a_tls_server(servers: Dict[str, SecantusServer]) -> None:
    with pytest.raises(AutoReconnect):
        Connection(f"mongodb://127.0.0.1:{servers['tls'].port}/", connectTimeoutMS=5000)


def test_tls_client_to_a_plaintext_server(server: SecantusServer, certs: CertPaths) -> None:
    # SecantusDB reads the ClientHello as the start of a 66 KB message and waits for the
    # rest, so the client gives up at connectTimeoutMS.
    with pytest.raises(NetworkTimeout):
        Connection(tls_uri(server, tlsCAFile=certs.ca), connectTimeoutMS=500)


def test_tls_handshake_timeout_is_a_network_timeout(certs: CertPaths) -> None:
    with socket.socket() as listener:  # accepts TCP (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(NetworkTimeout):
            Connection(
                f"mongodb://127.0.0.1:{port}/?tls=true&tlsCAFile={quote(certs.ca, safe='')}",
                connectTimeoutMS=300,
            )


def test_tls_failures_leave_no_socket(servers: Dict[str, SecantusServer], certs: CertPaths) -> None:
    conn = Connection(tls_uri(servers["tls"], tlsCAFile=certs.other_ca), _connect=False)
    for _ in range(2):
        with pytest.raises(AutoReconnect):
            conn.admin.command("ping")
    assert conn.pool.open_count == 0


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
