"""Test certificates made with the ``openssl`` command: a CA, server and client certificates.

``make_certs(directory)`` writes, in ``directory``:

    ca.pem, ca.key                   the test CA (CN "wireclient test CA")
    server.pem, server.key           signed by the CA; SAN IP:127.0.0.1, DNS:localhost
    client.pem, client.key           signed by the CA; CN "wireclient client" (clientAuth)
    client-combined.pem              client certificate + key in one file (tlsCertificateKeyFile)
    other-ca.pem, other-ca.key       an unrelated CA that signed nothing we serve
    wrong-host.pem, wrong-host.key   signed by the CA, SAN DNS:wrong.example only

Keys are P-256 EC keys (fast to make); certificates last two days and carry the subject /
authority key identifiers that strict X.509 verification (Python 3.13's default) wants.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import List, Optional


@dataclass(frozen=True)
class CertPaths:
    directory: str
    ca: str
    ca_key: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    client_combined: str
    other_ca: str
    wrong_host_cert: str
    wrong_host_key: str


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _run(args: List[str], cwd: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"openssl {' '.join(args)} failed ({result.returncode}): "
            f"{result.stderr.decode(errors='replace')}"
        )


def _key(name: str, cwd: str) -> None:
    _run(
        [
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            f"{name}.key",
        ],
        cwd,
    )


def _ca(name: str, common_name: str, cwd: str) -> None:
    _key(name, cwd)
    _run(
        [
            "req",
            "-x509",
            "-new",
            "-key",
            f"{name}.key",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-subj",
            f"/O=wireclient tests/CN={common_name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectKeyIdentifier=hash",
        ],
        cwd,
    )


def _leaf(
    name: str, common_name: str, cwd: str, usage: str, san: Optional[str], ca: str = "ca"
) -> None:
    _key(name, cwd)
    _run(
        [
            "req",
            "-new",
            "-key",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/O=wireclient tests/CN={common_name}",
        ],
        cwd,
    )
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid,issuer",
    ]
    if san:
        lines.append(f"subjectAltName={san}")
    with open(os.path.join(cwd, f"{name}.ext"), "w") as f:
        f.write("\n".join(lines) + "\n")
    _run(
        [
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            f"{ca}.pem",
            "-CAkey",
            f"{ca}.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            f"{name}.ext",
        ],
        cwd,
    )


def make_certs(directory: str) -> CertPaths:
    """Write the test CA and certificates into ``directory`` (which must exist)."""
    _ca("ca", "wireclient test CA", directory)
    _ca("other-ca", "unrelated test CA", directory)
    _leaf("server", "127.0.0.1", directory, "serverAuth", "IP:127.0.0.1,DNS:localhost")
    _leaf("client", "wireclient client", directory, "clientAuth", None)
    _leaf("wrong-host", "wrong.example", directory, "serverAuth", "DNS:wrong.example")
    with open(os.path.join(directory, "client-combined.pem"), "w") as out:
        for part in ("client.pem", "client.key"):
            with open(os.path.join(directory, part)) as f:
                out.write(f.read())

    def path(name: str) -> str:
        return os.path.join(directory, name)

    return CertPaths(
        directory=directory,
        ca=path("ca.pem"),
        ca_key=path("ca.key"),
        server_cert=path("server.pem"),
        server_key=path("server.key"),
        client_cert=path("client.pem"),
        client_key=path("client.key"),
        client_combined=path("client-combined.pem"),
        other_ca=path("other-ca.pem"),
        wrong_host_cert=path("wrong-host.pem"),
        wrong_host_key=path("wrong-host.key"),
    )
