"""``X-Twilio-Signature``: compute and check it with the standard library only.

Twilio signs every request it makes to your app, the ConversationRelay WebSocket
handshake included (docs/protocols.md §1.5)::

    s = URL
    for name in sorted(set(params)):
        for value in sorted(set(params[name])):
            s += name + value
    signature = base64(HMAC-SHA1(key=auth_token, msg=s))      # both UTF-8

Why not use the ``twilio`` SDK's ``RequestValidator``: importing ``twilio`` costs tens of
milliseconds and this check runs on every ``$connect`` -- often in a cold environment,
while the caller waits. The SDK is this module's test oracle instead.

Where we differ from the SDK's validator, on purpose:

* The default port is :443 for ``wss`` as for ``https`` (the SDK adds :80 to anything
  that is not ``https``, so a ``wss://host:443/...`` signature fails there).
* Only a *default* port is optional. The SDK also strips non-default ports
  (``https://h:8443/x`` is tried as ``https://h/x``); a URL with a non-default port is
  checked exactly as given.
* The URL string is used exactly as given; the SDK re-serializes it through
  ``urlparse`` first, which drops an empty trailing ``?`` or ``#``.
* An empty auth token is a configuration error, not a silent pass or fail.

Error messages say what failed and which URL was used, never the token or the expected
signature (either would help an attacker); a password in the URL is masked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from warmline.errors import ConfigurationError, InvalidSignatureError

__all__ = [
    "BODY_HASH_PARAM",
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SIGNATURE_HEADER",
    "SIGNATURE_SETTINGS_HEADER",
    "Params",
    "compute_signature",
    "signature_algorithm",
    "validate_handshake",
    "validate_signature",
    "validate_webhook",
]

Params = Mapping[str, str | Sequence[str]]
"""Request parameters: one value or several per name (repeated form fields)."""

#: The header carrying the signature (docs/protocols.md §1.5).
SIGNATURE_HEADER = "X-Twilio-Signature"
#: Query parameter naming the hex SHA-256 of a JSON body; the body is then not part of
#: the signed string, the hash in the URL is (docs/protocols.md §1.5).
BODY_HASH_PARAM = "bodySHA256"
#: The classic algorithm, keyed with the account auth token (docs/protocols.md §1.5).
HMAC_SHA1 = "HMAC_SHA1"
#: Header naming another algorithm (``key=<id>,algorithm=HMAC_SHA256``) for webhooks signed
#: with a SharedKey secret (docs/protocols.md §1.5); absent or empty means HMAC_SHA1.
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
HMAC_SHA256 = "HMAC_SHA256"

_DIGESTS = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}
#: Ports a URL may carry or omit without changing what Twilio signed (docs/protocols.md §1.5).
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
#: Schemes a ConversationRelay handshake URL may have: Twilio requires ``wss`` (§1.1);
#: ``ws`` is allowed for the local emulator on 127.0.0.1.
_HANDSHAKE_SCHEMES = ("wss", "ws")


def compute_signature(
    url: str,
    params: Params | None,
    auth_token: str,
    *,
    algorithm: str = HMAC_SHA1,
) -> str:
    """Compute the signature Twilio sends for a request.

    Args:
        url: the full URL Twilio requested, exactly as Twilio knows it (scheme, host,
            optional port, path, query string).
        params: the form parameters of a POST; ``None`` or empty for a GET, a JSON body
            or a WebSocket handshake. A value may be a sequence (a repeated field).
            Framework multi-dicts with ``getall``/``getlist`` (Flask, Django) work too.
        auth_token: the account's auth token (or the SharedKey secret for HMAC_SHA256).
        algorithm: ``HMAC_SHA1`` (Twilio's default) or ``HMAC_SHA256``.

    Returns:
        The base64 signature, as it appears in ``X-Twilio-Signature``.

    Raises:
        ConfigurationError: ``algorithm`` is not one Twilio uses.
    """
    digest = _DIGESTS.get(algorithm.upper())
    if digest is None:
        raise ConfigurationError(f"unsupported Twilio signature algorithm {algorithm!r}")
    mac = hmac.new(auth_token.encode("utf-8"), _signed_string(url, params).encode(), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def validate_signature(
    url: str,
    params: Params | None,
    signature: str,
    auth_token: str,
    *,
    body: bytes | str | None = None,
    algorithm: str = HMAC_SHA1,
) -> bool:
    """Check a signature the way Twilio's validator does (see the module notes).

    The URL is tried as given and with its default port added or removed. When the query
    string has ``bodySHA256`` (a JSON-body webhook), ``params`` are ignored and, if
    ``body`` is given, its SHA-256 must match.

    Args:
        url: the full URL Twilio requested.
        params: the form parameters (``None`` for GET, JSON or WebSocket).
        signature: the ``X-Twilio-Signature`` value.
        auth_token: the account's auth token.
        body: the raw request body of a JSON webhook (``str`` is UTF-8 encoded).
        algorithm: ``HMAC_SHA1`` or ``HMAC_SHA256``.

    Returns:
        True if the request is authentic.

    Raises:
        ConfigurationError: empty ``auth_token`` or an unknown ``algorithm``.
    """
    return _failure(url, params, signature, auth_token, body, algorithm, need_body=False) is None


def validate_handshake(headers: Mapping[str, str], url: str, auth_token: str) -> None:
    """Check the ConversationRelay WebSocket handshake (API Gateway ``$connect``).

    Twilio signs the TwiML ``url`` attribute exactly as written, with its ``wss://``
    scheme, and no parameters (docs/protocols.md §1.5). Pass the public URL, not one rebuilt
    from the request: API Gateway's ``domainName``/``stage`` differ from a custom domain,
    and proxies strip path prefixes. Answer a failure with HTTP 403 (§5).

    Args:
        headers: the handshake headers (``event["headers"]``); any name case.
        url: the public ``wss://`` URL as configured in TwiML, query string included.
        auth_token: the account's auth token.

    Raises:
        InvalidSignatureError: the header is missing or does not match.
        ConfigurationError: ``url`` is not a ``wss://`` (or local ``ws://``) URL, or the
            token is empty.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _HANDSHAKE_SCHEMES:
        raise ConfigurationError(
            f"the ConversationRelay URL must start with wss:// (Twilio signs it so), "
            f"got {_redact(url)!r}"
        )
    signature = _header(headers, SIGNATURE_HEADER)
    reason = _failure(url, None, signature, auth_token, None, HMAC_SHA1, need_body=False)
    if reason is not None:
        raise InvalidSignatureError(reason)


def validate_webhook(
    url: str,
    form_params: Params | None,
    headers: Mapping[str, str],
    auth_token: str,
    body: bytes | str | None = None,
) -> None:
    """Check an HTTP webhook: form POST, GET, or JSON body with ``bodySHA256``.

    Args:
        url: the full public URL Twilio requested, query string included.
        form_params: the parsed form body of a POST; ``None`` for GET and JSON.
        headers: the request headers; any name case.
        auth_token: the account's auth token (the SharedKey secret when
            ``X-Twilio-Webhooks-Signature-Settings`` names HMAC_SHA256).
        body: the raw body; required when the URL carries ``bodySHA256``.

    Raises:
        InvalidSignatureError: missing header, unknown algorithm, body hash or
            signature mismatch, or a ``bodySHA256`` URL without ``body`` to check.
        ConfigurationError: the token is empty.
    """
    signature = _header(headers, SIGNATURE_HEADER)
    algorithm = signature_algorithm(_lookup(headers, SIGNATURE_SETTINGS_HEADER))
    if algorithm.upper() not in _DIGESTS:
        raise InvalidSignatureError(
            f"unsupported signature algorithm {algorithm!r} in {SIGNATURE_SETTINGS_HEADER}"
        )
    reason = _failure(url, form_params, signature, auth_token, body, algorithm, need_body=True)
    if reason is not None:
        raise InvalidSignatureError(reason)


def signature_algorithm(settings: str | None) -> str:
    """Read the algorithm from ``X-Twilio-Webhooks-Signature-Settings``.

    Args:
        settings: the header value (``key=...,algorithm=HMAC_SHA256``), or ``None``.

    Returns:
        The named algorithm, or ``HMAC_SHA1`` when the header is absent or names none.
    """
    for part in (settings or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip()
    return HMAC_SHA1


# --- internals ------------------------------------------------------------------------


def _signed_string(url: str, params: Params | None) -> str:
    pieces = [url]
    if params:
        for name in sorted(set(params)):
            for value in sorted(set(_values(params, name))):
                pieces.append(name)
                pieces.append(value)
    return "".join(pieces)


def _values(params: Params, name: str) -> Sequence[str]:
    # Framework multi-dicts answer __getitem__ with the first value only; ask for all.
    for method in ("getall", "getlist"):
        getter = getattr(params, method, None)
        if callable(getter):
            values: Sequence[str] = getter(name)
            return values
    value = params[name]
    return (value,) if isinstance(value, str) else value


def _failure(
    url: str,
    params: Params | None,
    signature: str | None,
    auth_token: str,
    body: bytes | str | None,
    algorithm: str,
    *,
    need_body: bool,
) -> str | None:
    """Return why the request fails validation, or ``None`` if it is authentic."""
    if not auth_token:
        raise ConfigurationError("the Twilio auth token is empty; cannot check signatures")
    if not signature:
        return f"missing {SIGNATURE_HEADER} header"
    try:
        return _mismatch(url, params, signature, auth_token, body, algorithm, need_body)
    except UnicodeEncodeError:
        # Lone surrogates (a "\ud800" escape in the event's JSON) have no UTF-8 form, so
        # Twilio cannot have signed them: a failed check, not an exception (a 403, not a 502).
        return f"the request holds text with no UTF-8 form; not signed by Twilio ({_redact(url)!a})"


def _mismatch(
    url: str,
    params: Params | None,
    signature: str,
    auth_token: str,
    body: bytes | str | None,
    algorithm: str,
    need_body: bool,
) -> str | None:
    try:
        query = urlsplit(url).query
    except ValueError:  # "Invalid IPv6 URL" (an unbalanced bracket, e.g. from a Host header)
        query = url.partition("#")[0].partition("?")[2]
    body_hashes = parse_qs(query).get(BODY_HASH_PARAM)
    if body_hashes:
        params = None  # JSON webhook: the URL carries the body's hash instead (§1.5)
        if body is None and need_body:
            return f"{BODY_HASH_PARAM} is in the URL but no body was given to check"
        if body is not None:
            raw = body.encode("utf-8") if isinstance(body, str) else body
            actual = hashlib.sha256(raw).hexdigest().encode("ascii")
            if not hmac.compare_digest(actual, body_hashes[0].strip().lower().encode("utf-8")):
                return f"body does not match {BODY_HASH_PARAM} in {_redact(url)}"
    given = signature.strip().encode("utf-8")
    matched = False
    for candidate in _url_variants(url):
        expected = compute_signature(candidate, params, auth_token, algorithm=algorithm)
        matched |= hmac.compare_digest(expected.encode("ascii"), given)
    if not matched:
        return f"signature does not match {_redact(url)}"
    return None


def _url_variants(url: str) -> tuple[str, ...]:
    """The URL as given plus the same URL with its default port added or removed."""
    head, sep, netloc, tail = _split_authority(url)
    default = _DEFAULT_PORTS.get(head.lower()) if sep else None
    if default is None:
        return (url,)
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: [::1]:443
        close = hostport.find("]")
        if close == -1:
            return (url,)
        host, after = hostport[: close + 1], hostport[close + 1 :]
        if after and not after.startswith(":"):
            return (url,)
        port = after[1:] if after else None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
    if port is None:
        other = f"{host}:{default}"
    elif port.isascii() and port.isdigit() and int(port) == default:
        other = host
    else:
        return (url,)  # a non-default or malformed port is signed exactly as given
    return (url, f"{head}{sep}{userinfo}{at}{other}{tail}")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = _lookup(headers, name)
    return value.strip() if value else None


def _lookup(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (API Gateway keeps the client's case, §2.2).

    Same contract as ``warmline.core.events.Headers``, without importing it: that module
    pulls in ``dataclasses`` and ``inspect``, and this one must stay cheap to import.
    """
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value if isinstance(value, str) else None


def _redact(url: str) -> str:
    """Mask a password in the URL's userinfo before the URL goes into a message."""
    head, sep, netloc, tail = _split_authority(url)
    userinfo, at, hostport = netloc.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{head}{sep}{user}:***@{hostport}{tail}"


def _split_authority(url: str) -> tuple[str, str, str, str]:
    """Split ``url`` into scheme, ``"://"``, authority and the rest, keeping every byte.

    ``urllib.parse`` would normalize (drop an empty ``?``, lowercase the scheme), and the
    signature is over the exact string, so the split is done by hand.
    """
    head, sep, rest = url.partition("://")
    if not sep:
        return url, "", "", ""
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    return head, sep, rest[:end], rest[end:]
