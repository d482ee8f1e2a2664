"""TLS settings: the ``ssl.SSLContext`` a client's options ask for, made once per client.

``ssl`` is imported only when TLS is asked for (``tls=true``): a plain connection never loads
it. ``network.connect`` wraps each new socket with the context; a file that cannot be used is a
``ConfigurationError`` naming the option, raised when the client is built, before any socket.
"""

from __future__ import annotations

from typing import Any, Mapping

from wireclient.errors import ConfigurationError


def make_ssl_context(options: Mapping[str, Any]) -> Any:
    """The TLS context the options ask for (None: no TLS)."""
    if not options.get("tls"):
        return None
    import ssl

    ca_file = options.get("tlsCAFile")
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:  # FileNotFoundError does not name the file
        raise ConfigurationError(f"tlsCAFile {ca_file!r} is unusable: {exc}") from exc
    key_file = options.get("tlsCertificateKeyFile")
    if key_file:
        try:  # an encrypted key must not prompt on the terminal: the empty password fails
            ctx.load_cert_chain(key_file, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"tlsCertificateKeyFile {key_file!r} is unusable: {exc}"
            ) from exc
    if options.get("tlsAllowInvalidHostnames") or options.get("tlsAllowInvalidCertificates"):
        ctx.check_hostname = False
    if options.get("tlsAllowInvalidCertificates"):
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


__all__ = ["make_ssl_context"]
