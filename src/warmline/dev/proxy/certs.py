"""Certificates for AWS host names, issued on the fly by the emulator's CA.

The proxy terminates TLS for the hosts it answers itself (``*.execute-api...``,
``dynamodb.{region}.amazonaws.com``...), so the function's SDK must see a certificate for
that name from a CA it trusts. Every environment already trusts the emulator's CA
(``AWS_CA_BUNDLE``, :mod:`warmline.dev.gateway.tls`); this module signs one leaf per host
name with that CA's key, the first time the name is seen, and keeps the server context.
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
from pathlib import Path
from typing import Any

from warmline.errors import MissingExtraError

__all__ = ["HostCertificates"]

_VALID_DAYS = 30


class HostCertificates:
    """Server-side TLS contexts per host name, signed by the emulator's CA.

    Args:
        ca_cert: the CA certificate (PEM).
        ca_key: the CA's private key (PEM).

    Raises:
        MissingExtraError: ``cryptography`` is not installed (the ``dev`` extra).
    """

    def __init__(self, ca_cert: Path, ca_key: Path) -> None:
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
        except ImportError as exc:
            raise MissingExtraError("cryptography", "dev") from exc
        self._ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        self._ca_key: Any = serialization.load_pem_private_key(ca_key.read_bytes(), None)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._dir = tempfile.TemporaryDirectory(prefix="warmline-proxy-certs-")

    def context(self, host: str) -> ssl.SSLContext:
        """A server context presenting a certificate for ``host`` (made once per name)."""
        host = host.lower()
        context = self._contexts.get(host)
        if context is None:
            context = self._contexts[host] = self._issue(host)
        return context

    def close(self) -> None:
        """Delete the issued keys."""
        self._dir.cleanup()

    def _issue(self, host: str) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self._ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        base = Path(self._dir.name) / host
        cert_path, key_path = base.with_suffix(".pem"), base.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context
