"""A throwaway certificate authority and server certificate for the local https:// port.

Handlers written for AWS build their ``@connections`` endpoint as
``"https://" + domainName + "/" + stage``; locally that is ``https://127.0.0.1:PORT/STAGE``.
The emulator makes a CA and a server certificate for the local names at start, serves TLS
with it, and gives every function ``AWS_CA_BUNDLE=<ca.pem>`` so botocore trusts it. A CA
plus a leaf (rather than one self-signed leaf) because OpenSSL refuses a self-signed leaf
as its own trust anchor in some configurations. Uses ``cryptography`` when installed, else
the ``openssl`` command.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from warmline.errors import MissingExtraError

__all__ = ["Certificates", "make_certificates", "server_context"]

_VALID_DAYS = 30


@dataclass(frozen=True, slots=True)
class Certificates:
    """Paths of the generated PEM files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    #: the CA's private key, which issues the proxy's certificates for AWS host names.
    ca_key: Path | None = None


def make_certificates(directory: Path, names: list[str]) -> Certificates:
    """Write a CA and a server certificate for ``names`` (DNS names or IPs) in ``directory``.

    Raises:
        MissingExtraError: neither ``cryptography`` nor ``openssl`` is available.
    """
    names = list(dict.fromkeys(names))
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            raise MissingExtraError("cryptography", "dev") from None
        return _with_openssl(directory, names)
    return _with_cryptography(directory, names)


def server_context(certs: Certificates) -> ssl.SSLContext:
    """A server-side TLS context over the generated certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    return context


def _san_entries(names: list[str]) -> list[tuple[str, str]]:
    out = []
    for name in names:
        try:
            out.append(("IP", str(ipaddress.ip_address(name))))
        except ValueError:
            out.append(("DNS", name))
    return out


def _with_cryptography(directory: Path, names: list[str]) -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warmline dev local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for kind, value in _san_entries(names):
        if kind == "IP":
            alt.append(x509.IPAddress(ipaddress.ip_address(value)))
        else:
            alt.append(x509.DNSName(value))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certificates(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
        directory / "ca-key.pem",
    )
    assert certs.ca_key is not None
    certs.ca_key.write_bytes(
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certs.ca_key.chmod(0o600)
    certs.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certs.server_key.chmod(0o600)
    return certs


def _with_openssl(directory: Path, names: list[str]) -> Certificates:
    ca_key = directory / "ca-key.pem"
    certs = Certificates(
        directory / "ca.pem", directory / "server.pem", directory / "server-key.pem", ca_key
    )
    csr = directory / "server.csr"
    ext = directory / "server.ext"
    san = ",".join(f"{kind}:{value}" for kind, value in _san_entries(names))
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *curve, "-keyout", str(ca_key), "-out", str(certs.ca_cert),
        "-days", str(_VALID_DAYS), "-subj", "/CN=warmline dev local CA")  # fmt: skip
    run("req", *curve, "-keyout", str(certs.server_key), "-out", str(csr),
        "-subj", f"/CN={names[0]}")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(certs.ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(certs.server_cert), "-days", str(_VALID_DAYS),
        "-extfile", str(ext))  # fmt: skip
    return certs
