"""A small AWS Signature Version 4 signer for the ``@connections`` API (service ``execute-api``).

Why not botocore: in a fresh interpreter botocore's ``SigV4Auth`` alone costs ~180 ms and boto3
with an ``apigatewaymanagementapi`` client ~336 ms, while this module needs only SHA-256
(PROTOCOLS.md §6). It signs exactly what botocore signs for ``PostToConnection``,
``GetConnection`` and ``DeleteConnection``; ``tests/connections/test_sigv4.py`` checks that
byte for byte against botocore.

What botocore sends, and so what AWS accepts (PROTOCOLS.md §6):

* **Wire path** ``{base}/@connections/{id}``: the id percent-encoded once with only ``-._~``
  (and letters, digits) left as they are, UTF-8 first. ``urllib.parse.quote``'s default
  ``safe='/'`` is wrong here: ids may contain ``/``.
* **Canonical URI**: the wire path with dot segments and empty segments removed, encoded a
  *second* time with ``/`` and ``~`` kept (every service but S3 double-encodes), so ``@``
  becomes ``%40`` and ``%3D`` becomes ``%253D``.
* **Signed headers**: ``host;x-amz-date;x-amz-security-token`` (``host;x-amz-date`` without a
  session token). The payload hash is the hex SHA-256 of the body and is *not* sent as
  ``x-amz-content-sha256``.
* **Clock**: ``X-Amz-Date`` comes from the caller's clock on every signature (Lambda freezes
  and thaws environments; AWS refuses ~5 min of skew); the scope date comes from the same
  instant, and the cached signing key is keyed by that date so it rolls at midnight UTC.

Only requests without a query string are supported: none of the three operations has one.

Cost, measured 2026-11-23 on this project's 2-core machine (CPython 3.11.7, bytecode cached,
median of 21 fresh interpreters, min in brackets): ``import warmline.connections.sigv4`` adds
3.8 ms (3.6) once ``warmline.core.app`` is loaded, nearly all of it ``hashlib`` + ``hmac``
(since replaced by the bare SHA-256 type, ~0.2 ms: see ``_sha256``); in a bare interpreter
18.5 ms (16.8), most of that the ``warmline`` package itself (``typing``). Signing one request
with a cached key takes ~10 µs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from warmline.errors import ConfigurationError

__all__ = [
    "ALGORITHM",
    "SERVICE",
    "Credentials",
    "SigV4Signer",
    "amz_date",
    "canonical_uri",
    "connection_path",
    "hmac_sha256",
    "quote",
    "region_from_environment",
    "remove_dot_segments",
]

#: The signing name of API Gateway's management API (PROTOCOLS.md §2.4, §6).
SERVICE = "execute-api"
#: The only algorithm this signer speaks.
ALGORITHM = "AWS4-HMAC-SHA256"
# The bare SHA-256 type, without hashlib: ``hashlib`` + ``hmac`` (with OpenSSL's
# ``_hashlib``) cost ~2.0 ms of import on top of Lambda's preloads, this module ~0.2 ms
# (measured 2026-11-23, CPython 3.11.7, -X importtime, median of 3). A cold start pays it
# before its first word; a signature computes HMAC-SHA256 over short strings, for which the
# construction in hmac_sha256 is as exact and ~2 µs slower than OpenSSL's.
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
    # twice per post (wire path, canonical URI) and was a fifth of a post's CPU.
    return "".join(map(table.__getitem__, text.encode("utf-8")))


def connection_path(base_path: str, connection_id: str) -> str:
    """The wire path of ``/@connections/{id}`` under ``base_path`` (PROTOCOLS.md §2.4, §6).

    Args:
        base_path: the endpoint's path, e.g. ``/prod`` or ``""`` (no trailing slash).
        connection_id: the raw connection id, e.g. ``R1kmxc2VNjMCFIA=``.

    Returns:
        e.g. ``/prod/@connections/R1kmxc2VNjMCFIA%3D``.
    """
    return f"{base_path}/@connections/{quote(connection_id)}"


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
    if cached is None:  # one per connection: every token of a call reuses it
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


def region_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_REGION`` (set by Lambda), else ``AWS_DEFAULT_REGION``, else None."""
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


class Credentials:
    """An access key pair and optional session token; ``repr`` never shows the secrets.

    Lambda's credentials are temporary, so inside Lambda ``token`` is always set and must be
    sent and signed as ``X-Amz-Security-Token`` (PROTOCOLS.md §6).

    Args:
        access_key: ``AWS_ACCESS_KEY_ID``.
        secret_key: ``AWS_SECRET_ACCESS_KEY``.
        token: ``AWS_SESSION_TOKEN``, or None for long-term keys.
    """

    __slots__ = ("access_key", "secret_key", "token")

    access_key: str
    secret_key: str
    token: str | None

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        if not access_key or not secret_key:
            raise ConfigurationError("AWS credentials need both an access key and a secret key")
        object.__setattr__(self, "access_key", access_key)
        object.__setattr__(self, "secret_key", secret_key)
        object.__setattr__(self, "token", token or None)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``.

        Raises:
            ConfigurationError: the key id or the secret is missing (outside Lambda, set
                them, or pass ``Credentials`` explicitly).
        """
        env = os.environ if environ is None else environ
        access_key = env.get("AWS_ACCESS_KEY_ID", "")
        secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
        if not access_key or not secret_key:
            raise ConfigurationError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(Lambda sets them) or pass Credentials(...)"
            )
        return cls(access_key, secret_key, env.get("AWS_SESSION_TOKEN") or None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return (self.access_key, self.secret_key, self.token) == (
            other.access_key,
            other.secret_key,
            other.token,
        )

    def __hash__(self) -> int:
        return hash((self.access_key, self.secret_key, self.token))

    def __repr__(self) -> str:
        # The key id is not a secret but still identifies an account: show its tail only.
        token = "None" if self.token is None else "'***'"
        return f"Credentials(access_key='…{self.access_key[-4:]}', secret_key='***', token={token})"


class SigV4Signer:
    """Signs ``@connections`` requests for one region.

    Keeps the derived signing key (four HMACs) for the current date, so a warm environment
    pays one HMAC plus two SHA-256 per request.

    Args:
        region: the API's region, e.g. ``eu-west-1``.
        service: the signing name; ``execute-api`` for ``@connections``.
    """

    __slots__ = ("region", "service", "_keys")

    def __init__(self, region: str, service: str = SERVICE) -> None:
        if not region:
            raise ConfigurationError("a SigV4 signature needs a region")
        self.region = region
        self.service = service
        self._keys: dict[tuple[str, str, str], bytes] = {}

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"

    def signing_key(self, secret_key: str, date: str) -> bytes:
        """The derived key for ``date`` (``YYYYMMDD``), cached per (date, region, secret)."""
        cache_key = (date, self.region, secret_key)
        key = self._keys.get(cache_key)
        if key is None:
            key = _hmac(f"AWS4{secret_key}".encode(), date)
            for part in (self.region, self.service, "aws4_request"):
                key = _hmac(key, part)
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()  # yesterday's keys and rotated secrets
            self._keys[cache_key] = key
        return key

    def canonical_request(
        self, method: str, host: str, wire_path: str, body: bytes, stamp: str, token: str | None
    ) -> str:
        """The canonical request (exposed for debugging signature mismatches).

        ``stamp`` is the ``X-Amz-Date`` value, e.g. ``20260101T235959Z``.
        """
        headers = f"host:{_trim(host)}\nx-amz-date:{stamp}\n"
        if token is not None:
            headers += f"x-amz-security-token:{_trim(token)}\n"
        payload_hash = _sha256(body).hexdigest() if body else EMPTY_SHA256
        return "\n".join(
            (
                method.upper(),
                canonical_uri(wire_path),
                "",  # no query string on any @connections operation
                headers,
                _signed_headers(token),
                payload_hash,
            )
        )

    def sign(
        self,
        method: str,
        host: str,
        wire_path: str,
        body: bytes,
        credentials: Credentials,
        now: float,
    ) -> dict[str, str]:
        """The headers that authenticate one request.

        Args:
            method: ``POST``, ``GET`` or ``DELETE``.
            host: the ``Host`` header exactly as sent (bare host on the default port,
                ``host:port`` otherwise, lower case).
            wire_path: the path exactly as sent, e.g. from :func:`connection_path`.
            body: the request body (``b""`` for none).
            credentials: the keys to sign with.
            now: wall-clock epoch seconds; read it fresh for every attempt.

        Returns:
            ``X-Amz-Date``, ``X-Amz-Security-Token`` (when there is a token) and
            ``Authorization``; send them along with ``Host``.
        """
        stamp = amz_date(now)
        date = stamp[:8]
        token = credentials.token
        canonical = self.canonical_request(method, host, wire_path, body, stamp, token)
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            (ALGORITHM, stamp, scope, _sha256(canonical.encode("utf-8")).hexdigest())
        )
        signature = hmac_sha256(
            self.signing_key(credentials.secret_key, date), to_sign.encode("utf-8")
        ).hex()
        headers = {"X-Amz-Date": stamp}
        if token is not None:
            headers["X-Amz-Security-Token"] = token
        headers["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={_signed_headers(token)}, Signature={signature}"
        )
        return headers


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104), the same bytes as ``hmac.digest(key, msg, "sha256")``.

    Written out to leave ``hashlib``/``hmac`` unimported (see ``_sha256`` above);
    ``tests/connections/test_sigv4.py`` checks it against :func:`hmac.digest`.
    """
    if len(key) > _BLOCK:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = _sha256(key.translate(_IPAD))
    inner.update(msg)
    return _sha256(key.translate(_OPAD) + inner.digest()).digest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac_sha256(key, msg.encode("utf-8"))


def _signed_headers(token: str | None) -> str:
    return "host;x-amz-date" if token is None else "host;x-amz-date;x-amz-security-token"


def _trim(value: str) -> str:
    """SigV4 ``Trimall``: strip and collapse runs of whitespace."""
    return " ".join(value.split())
