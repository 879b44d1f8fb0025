"""Real AWS for the services warmline does not emulate: the developer's keys, re-signed.

``warmline dev --aws-profile NAME`` (or ``--aws-passthrough``, with the default credential
chain of the shell that started it) lets a handler call a real service, a Bedrock model
say, while the WebSocket API, Lambda and the local services stay local. The handler's SDK
still signs with the function's own local keys (its role: the emulator's IAM still
decides what it may do locally), and the proxy, for a host the emulator does not serve:

1. checks that the call is signed with a key this run issued (a function's or the
   developer's): nothing else on the machine can borrow the developer's credentials
   through the proxy;
2. signs it again (SigV4, :mod:`warmline.aws.sigv4`) with the developer's credentials,
   keeping the signing name and region of the SDK's own signature, and sends it to the
   real host over TLS checked against the system's CA bundle. The emulator-issued keys
   never leave the machine.

S3 uploads signed chunk by chunk (``STREAMING-...`` payloads) cannot be re-signed without
rewriting each chunk and are refused with a message saying so. The credentials come from
botocore's resolver (profiles, SSO, ``credential_process``...), read again before each
call so that temporary ones are refreshed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from warmline.aws.credentials import Credentials
from warmline.aws.sigv4 import (
    ALGORITHM,
    amz_date,
    canonical_request,
    credential_scope,
    derive_signing_key,
    sha256_hex,
    signature,
    string_to_sign,
)
from warmline.dev.iam.verify import canonical_query
from warmline.dev.proxy.authorize import Denial, ProxiedRequest
from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["AwsUpstream", "combined_ca_bundle", "resolve_credentials"]

#: Headers the re-signed request does not carry over (they are set again, or are framing).
_REPLACED = frozenset(
    {
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "content-length",
        "transfer-encoding",
        "expect",
        "connection",
    }
)
_STREAMING = "STREAMING-"
_UNSIGNED = "UNSIGNED-PAYLOAD"


def resolve_credentials(profile: str | None) -> Callable[[], Credentials]:
    """The developer's credentials: ``profile``'s, else botocore's default chain.

    Returns:
        A function giving the current keys (refreshed when temporary ones expire).

    Raises:
        ConfigurationError: the profile does not exist, or no credentials are found.
        MissingExtraError: botocore is missing (it comes with the ``dev`` extra).
    """
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        from warmline.errors import MissingExtraError

        raise MissingExtraError("botocore", "dev") from exc
    which = f"profile {profile!r}" if profile else "the default credential chain"
    try:
        found = botocore.session.Session(profile=profile).get_credentials()
    except BotoCoreError as exc:
        raise ConfigurationError(f"AWS credentials of {which}: {exc}") from exc
    if found is None:
        raise ConfigurationError(
            f"no AWS credentials in {which} (aws configure, or --aws-profile NAME)"
        )

    def current() -> Credentials:
        frozen = found.get_frozen_credentials()
        return Credentials(frozen.access_key or "", frozen.secret_key or "", frozen.token)

    current()  # fail now, not at the first call, when they cannot be read
    return current


def _scope_of(authorization: str) -> tuple[str, str, str, list[str]] | None:
    """``(access key, region, signing name, signed header names)`` of a SigV4 header."""
    if not authorization.startswith(ALGORITHM + " "):
        return None
    fields = {}
    for part in authorization[len(ALGORITHM) + 1 :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    credential = fields.get("Credential", "").split("/")
    if len(credential) != 5:
        return None
    return credential[0], credential[2], credential[3], fields.get("SignedHeaders", "").split(";")


def _dechunk(body: bytes) -> bytes:
    """A chunked body's data (the proxy keeps the framing it read)."""
    out = []
    rest = body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


class AwsUpstream:
    """Re-signs calls to hosts the emulator does not serve and opens their connections.

    Args:
        credentials: gives the developer's current keys (:func:`resolve_credentials`).
        local_keys: the access key ids this run issued (a call must be signed by one).
        address: where a host is reached (default: its port 443 by DNS, as on AWS).
        tls: the client TLS context (default: the system's CA bundle).
    """

    def __init__(
        self,
        credentials: Callable[[], Credentials],
        local_keys: Collection[str],
        *,
        address: Callable[[str], tuple[str, int]] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.credentials = credentials
        self.local_keys = local_keys
        self.address = address or (lambda host: (host, 443))
        self.tls = tls or ssl.create_default_context()

    def resign(self, request: ProxiedRequest, now: float | None = None) -> bytes | Denial:
        """The request as it goes to AWS (head and body), or why it cannot go."""
        scope = _scope_of(request.header("Authorization") or "")
        if scope is None:
            return Denial(403, "MissingAuthenticationToken", "the call is not SigV4-signed")
        access_key, region, service, signed_names = scope
        if access_key not in self.local_keys:
            return Denial(
                403,
                "UnrecognizedClientException",
                "the call is not signed with a key of this warmline dev run, so the "
                "developer's credentials are not lent to it",
            )
        payload_hash = request.header("X-Amz-Content-Sha256")
        if payload_hash is not None and payload_hash.startswith(_STREAMING):
            return Denial(
                400,
                "NotSupportedByWarmline",
                "a chunk-signed upload (STREAMING-* payload) cannot be re-signed with your "
                "credentials; disable aws-chunked uploads for this client",
            )
        body = request.body
        if "chunked" in (request.header("Transfer-Encoding") or "").lower():
            body = _dechunk(body)
        creds = self.credentials()
        stamp = amz_date(time.time() if now is None else now)
        headers = [(k, v) for k, v in request.headers if k.lower() not in _REPLACED]
        if payload_hash is not None and payload_hash != _UNSIGNED:
            payload_hash = sha256_hex(body)
            headers = [(k, v) for k, v in headers if k.lower() != "x-amz-content-sha256"]
            headers.append(("X-Amz-Content-Sha256", payload_hash))
        headers.append(("X-Amz-Date", stamp))
        if creds.token is not None:
            headers.append(("X-Amz-Security-Token", creds.token))
        by_name = {k.lower(): v for k, v in headers}
        names = {n for n in signed_names if n in by_name} | {"host", "x-amz-date"}
        if creds.token is not None:
            names.add("x-amz-security-token")
        path, _, query = request.target.partition("?")
        if service == "s3":
            path = unquote(path)  # S3 encodes its path once; canonical_uri encodes again
        canonical, signed = canonical_request(
            request.method,
            path,
            {n: by_name[n] for n in names},
            payload_hash or sha256_hex(body),
            canonical_query(query),
        )
        date = stamp[:8]
        scope_text = credential_scope(date, region, service)
        key = derive_signing_key(creds.secret_key, date, region, service)
        sig = signature(key, string_to_sign(stamp, scope_text, canonical))
        headers.append(
            (
                "Authorization",
                f"{ALGORITHM} Credential={creds.access_key}/{scope_text}, "
                f"SignedHeaders={signed}, Signature={sig}",
            )
        )
        headers.append(("Content-Length", str(len(body))))
        head = f"{request.method} {request.target} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        return head.encode("latin-1") + body

    async def open(self, host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TLS connection to ``host`` (the certificate checked against :attr:`tls`)."""
        ip, port = self.address(host)
        return await asyncio.open_connection(ip, port, ssl=self.tls, server_hostname=host)


def system_ca_bundle() -> str | None:
    """This machine's CA bundle file (OpenSSL's default, else certifi's), or None."""
    import os

    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.isfile(candidate):
            return candidate
    try:
        import certifi
    except ImportError:
        return None
    found: str = certifi.where()
    return found


def combined_ca_bundle(emulator_ca: Path, out: Path) -> Path | None:
    """Write the system's CAs plus the emulator's into ``out``; None without system CAs.

    A function with ``--aws-profile`` reaches the proxy's hosts (emulator CA) and, with
    ``endpoint_url`` or outside the proxy, real endpoints (system CAs) with one
    ``AWS_CA_BUNDLE``.
    """
    system = system_ca_bundle()
    if system is None:
        return None
    data = Path(system).read_bytes().rstrip(b"\n") + b"\n" + emulator_ca.read_bytes()
    out.write_bytes(data)
    return out
