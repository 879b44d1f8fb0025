"""Who may use which of the emulator's surfaces: the Host check and the control token.

Every request on the emulator's port passes :meth:`AccessPolicy.check` before it is served.
Two rules, in this order:

1. **The Host header names this emulator** (DNS rebinding). A page on ``evil.example``
   whose name is re-pointed at 127.0.0.1 talks to the emulator as a same-origin page, but
   its requests still say ``Host: evil.example``. Accepted names, as Vite's dev server
   accepts them (``server.allowedHosts``, https://vite.dev/config/server-options): any IP
   literal (a page at an IP origin was served by that address itself), ``localhost`` and
   ``*.localhost`` (RFC 6761 §6.3: never resolved outside the machine), the machine's host
   name, the name given to ``--host``, and every ``--allow-host`` entry (``.example.com``
   also allows its subdomains; ``*`` turns the check off). A request without a Host header
   is no browser's (browsers always send one) and passes. Anything else gets
   ``421 Misdirected Request``: "sent to reject a target URI that does not match an origin
   for which the server has been configured" (RFC 9110 §15.5.20,
   https://www.rfc-editor.org/rfc/rfc9110#section-15.5.20).

2. **Control and event endpoints** (everything under ``/_warmline/`` except the pages, their
   static files and ``config.json``: the event stream, which lists live connection ids, the
   faults, which change what the emulator does) answer a client on loopback, or any client
   that shows the control token. A loopback peer that forwards for someone else (a
   ``Forwarded`` or ``X-Forwarded-For`` header: ngrok, a local reverse proxy) is that
   someone else. The token travels as ``Authorization: Bearer TOKEN`` (scripts) or as the
   ``warmline_control`` cookie (browsers), which ``GET /_warmline/...?token=TOKEN`` sets
   (``HttpOnly``, ``SameSite=Strict``, ``Path=/_warmline``) before redirecting to the same
   page without the token, so the pages need no change and the token leaves the address
   bar. A request with an ``Origin`` that is not the Host it was sent to (a cross-site
   page) is refused even on loopback.

The WebSocket API, ``@connections``, the Invoke API and the function URL are not control
endpoints: AWS serves them to anyone who reaches them, and so does the emulator (their own
authentication, such as SigV4, is theirs to check).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from warmline.dev.gateway.http import Request, Response, json_response
from warmline.web import PREFIX

__all__ = [
    "CONTROL_COOKIE",
    "MIN_TOKEN_CHARS",
    "AccessPolicy",
    "is_control_path",
    "is_loopback",
    "validate_token",
]

#: The cookie that carries the control token for the browser pages.
CONTROL_COOKIE = "warmline_control"
#: A token shorter than this is refused at start-up: it would be guessable over the LAN.
MIN_TOKEN_CHARS = 16
#: Token characters: URL-unreserved (RFC 3986 §2.3), so it goes in a query, a cookie and a
#: header as it is.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
#: Paths under ``/_warmline`` anyone who reaches the port may load: static pages and files
#: that reveal nothing about the emulator's state (``config.json`` holds the stage only,
#: which the WebSocket URL shows anyway).
_PUBLIC = frozenset({"", "/", "/dashboard", "/config.json"})
#: Distinct Host values remembered (an attacker cycling names must not grow it forever).
_HOST_CACHE_MAX = 256
_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For")


def is_control_path(path: str) -> bool:
    """Whether ``path`` is a control or event endpoint (under ``/_warmline/``, not a page)."""
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return False
    rest = path[len(PREFIX) :]
    return rest not in _PUBLIC and not rest.startswith("/static/")


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP, IPv4-mapped IPv6 included) is a loopback address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def validate_token(token: str) -> str:
    """``token`` if it is usable as the control token.

    Raises:
        ValueError: too short or with characters outside ``A-Z a-z 0-9 . _ ~ -`` (says which).
    """
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"the control token must have at least {MIN_TOKEN_CHARS} characters "
            '(e.g. python -c "import secrets; print(secrets.token_urlsafe())")'
        )
    if not _TOKEN_RE.match(token):
        raise ValueError("the control token may hold only A-Z a-z 0-9 . _ ~ -")
    return token


def _host_name(value: str) -> str:
    """The name part of a Host header value, lower case, without port or trailing dot."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _refuse(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"message": message}, headers)


class AccessPolicy:
    """The Host check and the control-endpoint check for one emulator.

    Args:
        bind_host: what ``--host`` named (a name there is a name the emulator serves).
        control_token: the token that opens the control endpoints to non-loopback clients
            (None: loopback only). Check it with :func:`validate_token` first.
        allowed_hosts: more Host names to serve (``.example.com``: it and its subdomains;
            ``*``: any name).
    """

    def __init__(
        self,
        *,
        bind_host: str = "127.0.0.1",
        control_token: str | None = None,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.control_token = control_token
        self._token_bytes = control_token.encode() if control_token else None
        names = {"localhost", socket.gethostname().lower(), _host_name(bind_host)}
        self._suffixes: list[str] = [".localhost"]
        self._any_host = False
        for entry in allowed_hosts:
            entry = entry.strip().lower().rstrip(".")
            if entry == "*":
                self._any_host = True
            elif entry.startswith("."):
                names.add(entry[1:])
                self._suffixes.append(entry)
            elif entry:
                names.add(_host_name(entry))
        self._names = frozenset(n for n in names if n)
        self._seen: dict[str, bool] = {}

    # --- the Host header ------------------------------------------------------------------

    def host_allowed(self, value: str | None) -> bool:
        """Whether a request whose Host header is ``value`` is for this emulator."""
        if value is None or self._any_host:
            return True
        seen = self._seen.get(value)
        if seen is not None:  # the hot path: every @connections post asks again
            return seen
        name = _host_name(value)
        allowed = (
            name in self._names or _is_ip(name) or any(name.endswith(s) for s in self._suffixes)
        )
        if len(self._seen) >= _HOST_CACHE_MAX:
            self._seen.clear()
        self._seen[value] = allowed
        return allowed

    # --- control endpoints ----------------------------------------------------------------

    def check(self, request: Request, peer_ip: str) -> Response | None:
        """The refusal (or the token's redirect) for ``request``, or None to serve it.

        Args:
            request: the parsed request (before any routing).
            peer_ip: the socket peer's address.
        """
        host = request.header("Host")
        if not self.host_allowed(host):
            return _refuse(
                421,
                f"Misdirected Request: {_host_name(host or '')!r} is not a name this "
                "emulator serves (warmline dev --allow-host NAME adds one)",
            )
        if not request.target.startswith(PREFIX):  # the target starts with the path
            return None
        path = request.path
        if "token=" in request.target and request.method in ("GET", "HEAD"):
            return self._token_redirect(request, path)
        if not is_control_path(path):
            return None
        return self._control(request, peer_ip, host)

    def _control(self, request: Request, peer_ip: str, host: str | None) -> Response | None:
        origin = request.header("Origin")
        if origin is not None and (host is None or urlsplit(origin).netloc.lower() != host.lower()):
            return _refuse(403, "Forbidden: a control endpoint called from another origin")
        bearer = request.header("Authorization")
        if bearer is not None:
            if self._token_matches(bearer.removeprefix("Bearer ").strip()):
                return None
            return _refuse(403, "Forbidden: wrong control token")
        if is_loopback(peer_ip) and not any(request.header(h) for h in _FORWARDING_HEADERS):
            return None
        if self._token_matches(_cookie(request.header("Cookie"), CONTROL_COOKIE)):
            return None
        if self._token_bytes is None:
            return _refuse(
                403,
                "Forbidden: the emulator's control endpoints answer loopback clients only "
                "(start warmline dev with --control-token to allow others)",
            )
        return _refuse(
            401,
            "Unauthorized: send the control token (Authorization: Bearer TOKEN), or open "
            f"{PREFIX}/dashboard?token=TOKEN once in the browser",
            [("WWW-Authenticate", 'Bearer realm="warmline dev"')],
        )

    def _token_matches(self, given: str | None) -> bool:
        expected = self._token_bytes
        if expected is None or not given:
            return False
        return hmac.compare_digest(given.encode(), expected)

    def _token_redirect(self, request: Request, path: str) -> Response:
        """``?token=``: set the cookie and send the browser to the page without it."""
        given = next((v for k, v in request.query if k == "token"), None)
        if not self._token_matches(given):
            return _refuse(403, "Forbidden: wrong control token")
        assert self.control_token is not None
        cookie = f"{CONTROL_COOKIE}={self.control_token}; Path={PREFIX}; HttpOnly; SameSite=Strict"
        return Response(
            303,
            headers=[
                ("Location", path),
                ("Set-Cookie", cookie),
                ("Cache-Control", "no-store"),
                ("Referrer-Policy", "no-referrer"),
            ],
        )


def _cookie(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or None."""
    if not header:
        return None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None
