"""Checking a received request's SigV4 signature, as AWS's front ends do.

The canonical request, string to sign and signing key are computed by the very functions
that sign warmline's own requests (:mod:`warmline.aws.sigv4`), from the request as it
arrived: method, wire path, query, the headers the ``Authorization`` header names, the
body's hash. A request is refused, in this order, when (docs/protocols.md §6, §8.5):

- it has no ``Authorization`` header (``missing``: "Missing Authentication Token");
- the header is not a complete ``AWS4-HMAC-SHA256 Credential=.../SignedHeaders=.../
  Signature=...`` or there is no ``X-Amz-Date`` (``incomplete``);
- the access key id is unknown, or its session token is missing or wrong (``unrecognized``:
  "The security token included in the request is invalid.");
- the credential scope names another date, region or service (``scope``);
- ``X-Amz-Date`` is more than 5 minutes from the emulator's clock (``expired``: AWS's
  "Signature expired: ... is now earlier than ... (... - 5 min.)");
- the signature differs (``mismatch``: "The request signature we calculated does not match
  the signature you provided...": a wrong secret, or a request changed after signing).
"""

from __future__ import annotations

import calendar
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote

from warmline.aws.sigv4 import (
    ALGORITHM,
    amz_date,
    canonical_request,
    credential_scope,
    derive_signing_key,
    quote,
    sha256_hex,
    signature,
    string_to_sign,
)

if TYPE_CHECKING:
    from warmline.dev.iam.principals import Principal

__all__ = ["MAX_SKEW_S", "RejectionKind", "SignatureRejected", "canonical_query", "verify"]

#: How far ``X-Amz-Date`` may be from the server's clock: 5 minutes (docs/protocols.md §6).
MAX_SKEW_S = 300
RejectionKind = Literal["missing", "incomplete", "unrecognized", "scope", "expired", "mismatch"]
UNRECOGNIZED_MESSAGE = "The security token included in the request is invalid."
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_STREAMING = "STREAMING-"
#: Derived signing keys, per (secret, date, region, service): every post of a function
#: reuses one, as the signer does.
_keys: dict[tuple[str, str, str, str], bytes] = {}


class SignatureRejected(Exception):
    """The request's signature does not authenticate it; AWS answers 403.

    Attributes:
        kind: what failed (see the module docstring); each service maps it to its error.
        message: AWS's message for it.
    """

    def __init__(self, kind: RejectionKind, message: str) -> None:
        super().__init__(message)
        self.kind: RejectionKind = kind
        self.message = message


def canonical_query(raw: str) -> str:
    """SigV4's canonical query string of a raw (still encoded) query: each name and value
    decoded, encoded again with only the unreserved characters kept, sorted."""
    if not raw:
        return ""
    pairs = []
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name)), quote(unquote(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _parse_authorization(header: str) -> tuple[list[str], list[str], str]:
    """``(credential parts, signed header names, signature)`` of an Authorization header."""
    if not header.startswith(ALGORITHM + " "):
        raise SignatureRejected(
            "incomplete", f"Authorization header requires the '{ALGORITHM}' algorithm."
        )
    fields: dict[str, str] = {}
    for item in header[len(ALGORITHM) + 1 :].split(","):
        key, sep, value = item.strip().partition("=")
        if sep:
            fields[key] = value
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise SignatureRejected(
                "incomplete",
                f"Authorization header requires '{required}' parameter. Authorization=" + header,
            )
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request":
        raise SignatureRejected(
            "incomplete",
            "Credential should be scoped to a valid region, not a malformed scope: "
            + fields["Credential"],
        )
    return credential, fields["SignedHeaders"].split(";"), fields["Signature"]


def _headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def verify(
    principals: Mapping[str, Principal],
    *,
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    region: str,
    service: str,
    now: float,
) -> Principal:
    """The principal whose keys signed this request.

    Args:
        principals: the known principals by access key id.
        method: the HTTP method.
        path: the path exactly as received (percent-encoded as sent).
        query: the raw query string (after ``?``), ``""`` for none.
        headers: every header as received.
        body: the body.
        region: the emulated region (the scope must name it).
        service: the signing name the endpoint expects (``execute-api``, ``lambda``...).
        now: the server's clock, epoch seconds.

    Raises:
        SignatureRejected: the request is not authentic (``kind`` says why).
    """
    by_name = _headers(headers)
    auth = by_name.get("authorization")
    if not auth:
        raise SignatureRejected("missing", "Missing Authentication Token")
    credential, signed_names, sig = _parse_authorization(auth)
    stamp = by_name.get("x-amz-date", "")
    if len(stamp) != 16 or stamp[8] != "T" or not stamp.endswith("Z"):
        raise SignatureRejected(
            "incomplete",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            "header. Authorization=" + auth,
        )
    access_key, date, scope_region, scope_service, _ = credential
    principal = principals.get(access_key)
    if principal is None or by_name.get("x-amz-security-token") != principal.credentials.token:
        raise SignatureRejected("unrecognized", UNRECOGNIZED_MESSAGE)
    _check_scope(date, stamp, scope_region, region, scope_service, service)
    _check_clock(stamp, now)
    if "host" not in signed_names:
        raise SignatureRejected(
            "incomplete",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    # The body is hashed once: the payload hash is the header's when it matches the body,
    # says UNSIGNED-PAYLOAD, or announces a streamed payload (S3's aws-chunked uploads,
    # covered by the seed signature over its headers; the chunk signatures are not checked).
    claimed = by_name.get("x-amz-content-sha256")
    if not claimed:
        payload_hash = sha256_hex(body)
    elif (
        claimed == _UNSIGNED_PAYLOAD
        or claimed.startswith(_STREAMING)
        or claimed == sha256_hex(body)
    ):
        payload_hash = claimed
    else:
        raise SignatureRejected("mismatch", MISMATCH_MESSAGE)
    signed = {name: by_name.get(name, "") for name in signed_names}
    canonical, _names = canonical_request(
        method, path, signed, payload_hash, canonical_query(query)
    )
    to_sign = string_to_sign(stamp, credential_scope(date, scope_region, scope_service), canonical)
    secret = principal.credentials.secret_key
    cache_key = (secret, date, scope_region, scope_service)
    key = _keys.get(cache_key)
    if key is None:
        if len(_keys) >= 256:
            _keys.clear()
        key = _keys[cache_key] = derive_signing_key(secret, date, scope_region, scope_service)
    if not hmac.compare_digest(signature(key, to_sign), sig):
        raise SignatureRejected("mismatch", MISMATCH_MESSAGE)
    return principal


def _check_scope(
    date: str, stamp: str, scope_region: str, region: str, scope_service: str, service: str
) -> None:
    if date != stamp[:8]:
        raise SignatureRejected(
            "scope",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{stamp[:8]}', from '{stamp}'.",
        )
    if scope_region != region:
        raise SignatureRejected(
            "scope", f"Credential should be scoped to a valid region, not '{scope_region}'. "
        )
    if scope_service != service:
        raise SignatureRejected(
            "scope", f"Credential should be scoped to correct service: '{service}'. "
        )


def _signed_at(stamp: str) -> int:
    """Epoch seconds of an ``X-Amz-Date`` (the last one is remembered: a function's posts
    within one second share it)."""
    cached_stamp, cached = _last_stamp[0]
    if stamp == cached_stamp:
        return cached
    try:
        value = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError as exc:
        raise SignatureRejected("incomplete", f"Invalid X-Amz-Date: {stamp}") from exc
    _last_stamp[0] = (stamp, value)
    return value


_last_stamp: list[tuple[str, int]] = [("", 0)]


def _check_clock(stamp: str, now: float) -> None:
    signed_at = _signed_at(stamp)
    if signed_at < now - MAX_SKEW_S:
        raise SignatureRejected(
            "expired",
            f"Signature expired: {stamp} is now earlier than {amz_date(now - MAX_SKEW_S)} "
            f"({amz_date(now)} - 5 min.)",
        )
    if signed_at > now + MAX_SKEW_S:
        raise SignatureRejected(
            "expired",
            f"Signature not yet current: {stamp} is still later than "
            f"{amz_date(now + MAX_SKEW_S)} ({amz_date(now)} + 5 min.)",
        )
