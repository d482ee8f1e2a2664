"""The authentication mechanisms wireclient knows: those it implements (in ``auth``), the
``DEFAULT`` negotiation, and those MongoDB has that it refuses, with the reason.

They live here rather than in ``auth`` (which imports hashlib and hmac) so that ``auth`` and
the ``authMechanism`` option validator (``options``) share one list and one check.
"""

from __future__ import annotations

from typing import Mapping

from wireclient.errors import ConfigurationError

__all__ = [
    "AUTH_MECHANISMS",
    "DEFAULT_MECHANISM",
    "SCRAM_SHA_1",
    "SCRAM_SHA_256",
    "UNSUPPORTED_MECHANISMS",
    "check_auth_mechanism",
]

SCRAM_SHA_1 = "SCRAM-SHA-1"
SCRAM_SHA_256 = "SCRAM-SHA-256"
AUTH_MECHANISMS = (SCRAM_SHA_256, SCRAM_SHA_1)
"""The mechanisms wireclient implements (in ``auth``), in order of preference."""

DEFAULT_MECHANISM = "DEFAULT"
"""``authMechanism=DEFAULT``: negotiate (SCRAM-SHA-256 when the server lists it)."""

UNSUPPORTED_MECHANISMS: Mapping[str, str] = {
    "MONGODB-CR": "MongoDB 4.0 removed it and wireclient does not implement it; "
    "SCRAM-SHA-1 replaces it",
    "MONGODB-X509": "wireclient does not implement client-certificate (X.509) authentication",
    "PLAIN": "wireclient does not implement LDAP (PLAIN) authentication",
    "GSSAPI": "wireclient does not implement Kerberos (GSSAPI) authentication",
    "MONGODB-AWS": "wireclient does not implement AWS IAM authentication",
    "MONGODB-OIDC": "wireclient does not implement OIDC authentication",
}
"""Mechanisms MongoDB knows and wireclient refuses, with the reason given."""


def check_auth_mechanism(mechanism: str) -> str:
    """The canonical (upper-case) spelling of ``mechanism``: one of ``AUTH_MECHANISMS`` or
    ``DEFAULT_MECHANISM``. A mechanism MongoDB knows but wireclient does not implement, or an
    unknown one, raises ``ConfigurationError`` naming it and what is supported."""
    canonical = mechanism.upper()
    if canonical in AUTH_MECHANISMS or canonical == DEFAULT_MECHANISM:
        return canonical
    supported = ", ".join(AUTH_MECHANISMS)
    reason = UNSUPPORTED_MECHANISMS.get(canonical)
    if reason is not None:
        raise ConfigurationError(
            f"authMechanism {canonical!r} is not supported by wireclient ({reason}); "
            f"supported: {supported} (or {DEFAULT_MECHANISM} to negotiate)"
        )
    raise ConfigurationError(
        f"unknown authMechanism {mechanism!r}; supported: {supported} "
        f"(or {DEFAULT_MECHANISM} to negotiate)"
    )
