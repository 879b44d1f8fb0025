"""AWS Signature Version 4: the one signer every AWS client in warmline uses.

Why not botocore: importing botocore's ``SigV4Auth`` alone costs about ten times the whole
warmline hot path, while SigV4 needs nothing but SHA-256 (docs/protocols.md §6). The signer signs
exactly what botocore signs for the requests warmline sends (``@connections``
``PostToConnection``/``GetConnection``/``DeleteConnection``, Lambda ``Invoke``, SSM
``GetParameter``, Bedrock ``ConverseStream``/``InvokeModel``); ``tests/aws/test_sigv4.py``
and the clients' tests check that byte for byte against botocore.

The signature is built in steps that are plain functions, so that a verifier (an emulator
checking a request it received) computes the same bytes from the same parts:
:func:`canonical_request` -> :func:`string_to_sign` (with :func:`credential_scope`) ->
:func:`signature` under :func:`derive_signing_key`. :class:`SigV4Signer` chains them for a
request being sent and caches the derived key.

What botocore sends, and so what AWS accepts (docs/protocols.md §6):

* **Canonical URI**: the wire path (already percent-encoded once by the caller) with dot
  segments and empty segments removed, encoded a *second* time with ``/`` and ``~`` kept
  (every service but S3 double-encodes), so ``@`` becomes ``%40`` and ``%3D`` ``%253D``.
* **Signed headers**: ``host``, ``x-amz-date``, ``x-amz-security-token`` (with a session
  token) and whatever the caller adds (e.g. ``x-amz-invocation-type``, ``x-amz-target``),
  names in lower case and sorted, values trimmed. ``User-Agent`` is sent, never signed.
  The payload hash is the hex SHA-256 of the body and is *not* sent as
  ``x-amz-content-sha256``.
* **Clock**: ``X-Amz-Date`` comes from the caller's clock on every signature (Lambda freezes
  and thaws environments; AWS refuses ~5 min of skew); the scope date comes from the same
  instant, and the cached signing key is keyed by that date so it rolls at midnight UTC.

Requests are signed without a query string (no operation warmline sends has one);
:func:`canonical_request` takes an already canonical query for a verifier's sake.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.aws.credentials import Credentials

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "SigV4Signer",
    "amz_date",
    "canonical_request",
    "canonical_uri",
    "credential_scope",
    "derive_signing_key",
    "hmac_sha256",
    "quote",
    "remove_dot_segments",
    "sha256_hex",
    "signature",
    "string_to_sign",
]

#: The only algorithm this signer speaks.
ALGORITHM = "AWS4-HMAC-SHA256"
# The bare SHA-256 type, without hashlib: ``hashlib`` + ``hmac`` (with OpenSSL's
# ``_hashlib``) cost about ten times this module's own import, paid by a cold start before
# its first word; a signature computes HMAC-SHA256 over short strings, for which the
# construction in hmac_sha256 is as exact and a few µs slower than OpenSSL's.
if TYPE_CHECKING:
    from hashlib import sha256 as _sha256
else:
    try:
        from _sha2 import sha256 as _sha256  # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256 as _sha256  # CPython 3.11
        except ImportError:  # another interpreter, or a build without it
            from hashlib import sha256 as _sha256

#: Hex SHA-256 of the empty body (GET and DELETE).
EMPTY_SHA256 = _sha256(b"").hexdigest()
#: HMAC's inner and outer pads as ``bytes.translate`` tables (RFC 2104: key XOR 0x36 / 0x5c).
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
#: SHA-256's block size: HMAC pads (or first hashes) the key to it.
_BLOCK = 64
#: ``X-Amz-Date`` format: basic ISO 8601, UTC, whole seconds.
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
#: RFC 3986 unreserved characters: never percent-encoded.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: ``safe`` -> the encoded form of each byte value.
_QUOTE_TABLES: dict[str, tuple[str, ...]] = {}
#: Signing keys kept per signer; one per (date, region, secret) is normal, a few cover rotation.
_MAX_CACHED_KEYS = 4


def quote(text: str, safe: str = "") -> str:
    """Percent-encode ``text`` as UTF-8, as ``urllib.parse.quote(text, safe=safe)`` does.

    Written out (not ``urllib.parse``) because this runs on every post and ``urllib.parse``
    costs a few ms to import on a cold start; the tests compare both on random input.

    Args:
        text: the string to encode.
        safe: characters kept as they are besides the unreserved ``A-Za-z0-9-._~``.

    Returns:
        The encoded string (hex digits in upper case).

    Raises:
        UnicodeEncodeError: ``text`` holds lone surrogates (no UTF-8 form exists).
    """
    table = _QUOTE_TABLES.get(safe)
    if table is None:
        keep = _UNRESERVED | frozenset(safe.encode("ascii"))
        table = tuple(chr(b) if b in keep else f"%{b:02X}" for b in range(256))
        if len(_QUOTE_TABLES) < 16:
            _QUOTE_TABLES[safe] = table
    # One table lookup per byte in C (map) rather than a generator in Python: this runs
    # twice per post (wire path, canonical URI), on the hottest path there is.
    return "".join(map(table.__getitem__, text.encode("utf-8")))


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 dot-segment removal, also dropping empty segments (as botocore does).

    AWS normalises the path before checking the signature, so the canonical URI must too.
    """
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and out else ""
    return first + "/".join(out) + last


def canonical_uri(wire_path: str) -> str:
    """The canonical URI of a wire path: normalised, then encoded a second time (§6)."""
    cached = _canonical_uris.get(wire_path)
    if cached is None:  # one per connection or function: every request to it reuses it
        cached = quote(remove_dot_segments(wire_path), safe="/")
        if len(_canonical_uris) >= 64:
            _canonical_uris.clear()
        _canonical_uris[wire_path] = cached
    return cached


_canonical_uris: dict[str, str] = {}


def amz_date(epoch_s: float) -> str:
    """``X-Amz-Date`` for an instant, e.g. ``20260101T235959Z`` (fractions truncated)."""
    second = int(epoch_s)
    cached_second, cached = _last_date[0]
    if cached_second == second:  # the tokens of one answer are signed in the same second
        return cached
    stamp = time.strftime(_AMZ_DATE_FORMAT, time.gmtime(second))
    _last_date[0] = (second, stamp)  # one atomic store: safe across threads
    return stamp


_last_date: list[tuple[int, str]] = [(-1, "")]


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the payload hash of a canonical request."""
    return _sha256(data).hexdigest() if data else EMPTY_SHA256


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104), the same bytes as ``hmac.digest(key, msg, "sha256")``.

    Written out to leave ``hashlib``/``hmac`` unimported (see ``_sha256`` above);
    ``tests/aws/test_sigv4.py`` checks it against :func:`hmac.digest`.
    """
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _sha256(key.translate(_IPAD))
    inner.update(msg)
    return _sha256(key.translate(_OPAD) + inner.digest()).digest()


def canonical_request(
    method: str,
    wire_path: str,
    headers: Mapping[str, str],
    payload_hash: str,
    query: str = "",
) -> tuple[str, str]:
    """The canonical request and its signed-headers list.

    Args:
        method: the HTTP method.
        wire_path: the path exactly as sent (percent-encoded once).
        headers: every header to sign, names in lower case (values are trimmed here).
        payload_hash: :func:`sha256_hex` of the body.
        query: the canonical query string (sorted, encoded); ``""`` for none.

    Returns:
        ``(canonical request, "host;x-amz-date;...")``.
    """
    names = sorted(headers)
    signed = ";".join(names)
    block = "".join([f"{name}:{_trim(headers[name])}\n" for name in names])
    canonical = f"{method.upper()}\n{canonical_uri(wire_path)}\n{query}\n{block}\n{signed}\n"
    return canonical + payload_hash, signed


def credential_scope(date: str, region: str, service: str) -> str:
    """``{YYYYMMDD}/{region}/{service}/aws4_request``."""
    return f"{date}/{region}/{service}/aws4_request"


def string_to_sign(stamp: str, scope: str, canonical: str) -> str:
    """What the signing key signs: algorithm, ``X-Amz-Date``, scope, canonical request hash."""
    return f"{ALGORITHM}\n{stamp}\n{scope}\n{_sha256(canonical.encode('utf-8')).hexdigest()}"


def derive_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The derived key of a scope: four HMACs from ``AWS4{secret}``."""
    key = hmac_sha256(f"AWS4{secret_key}".encode(), date.encode("utf-8"))
    for part in (region, service, "aws4_request"):
        key = hmac_sha256(key, part.encode("utf-8"))
    return key


def signature(signing_key: bytes, to_sign: str) -> str:
    """The hex signature of a string to sign."""
    return hmac_sha256(signing_key, to_sign.encode("utf-8")).hex()


class SigV4Signer:
    """Signs requests to one service in one region.

    Keeps the derived signing key (four HMACs) for the current date, so a warm environment
    pays one HMAC plus two SHA-256 per request.

    Args:
        region: the endpoint's region, e.g. ``eu-west-1``.
        service: the signing name, e.g. ``execute-api`` (``@connections``), ``lambda``,
            ``ssm``, ``bedrock``.
    """

    __slots__ = ("region", "service", "_keys")

    def __init__(self, region: str, service: str) -> None:
        if not region:
            raise ConfigurationError("a SigV4 signature needs a region")
        if not service:
            raise ConfigurationError("a SigV4 signature needs a service name")
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str], bytes] = {}

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"

    def signing_key(self, secret_key: str, date: str) -> bytes:
        """The derived key for ``date`` (``YYYYMMDD``), cached per (date, secret)."""
        cache_key = (date, secret_key)
        key = self._keys.get(cache_key)
        if key is None:
            key = derive_signing_key(secret_key, date, self.region, self.service)
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()  # yesterday's keys and rotated secrets
            self._keys[cache_key] = key
        return key

    def sign(
        self,
        method: str,
        host: str,
        wire_path: str,
        body: bytes,
        credentials: Credentials,
        now: float,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The headers that authenticate one request.

        Args:
            method: e.g. ``POST``, ``GET`` or ``DELETE``.
            host: the ``Host`` header exactly as sent (bare host on the default port,
                ``host:port`` otherwise, lower case).
            wire_path: the path exactly as sent, percent-encoded once.
            body: the request body (``b""`` for none).
            credentials: the keys to sign with.
            now: wall-clock epoch seconds; read it fresh for every attempt.
            headers: further headers sent and signed (e.g. ``X-Amz-Target``); not
                ``Host``, ``X-Amz-Date`` or ``X-Amz-Security-Token``, which this sets.

        Returns:
            ``X-Amz-Date``, ``X-Amz-Security-Token`` (when there is a token) and
            ``Authorization``; send them along with ``Host`` and ``headers``.
        """
        stamp = amz_date(now)
        date = stamp[:8]
        token = credentials.token
        signed_headers = {"host": host, "x-amz-date": stamp}
        if token is not None:
            signed_headers["x-amz-security-token"] = token
        if headers:
            for name, value in headers.items():
                signed_headers[name.lower()] = value
        canonical, signed = canonical_request(method, wire_path, signed_headers, sha256_hex(body))
        scope = credential_scope(date, self.region, self.service)
        sig = signature(
            self.signing_key(credentials.secret_key, date), string_to_sign(stamp, scope, canonical)
        )
        out = {"X-Amz-Date": stamp}
        if token is not None:
            out["X-Amz-Security-Token"] = token
        out["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={sig}"
        )
        return out


def _trim(value: str) -> str:
    """SigV4 ``Trimall``: strip and collapse runs of whitespace."""
    return " ".join(value.split())
