"""The browser pages (softphone, dashboard), shipped as package data in ``static/``.

Served by ``warmline dev`` (``warmline.dev.gateway.web``, with the live event stream) and
by ``warmline serve`` (``warmline.adapters.asgi``: the softphone; the dashboard there has no
emulator to watch). Both go through :func:`page`, so the paths, content types and the
same-origin-only Content-Security-Policy are defined once.
"""

from __future__ import annotations

import re

__all__ = ["CSP", "PREFIX", "asset", "page"]

#: Where the pages live on the server.
PREFIX = "/_warmline"
_PAGES = {"": "softphone.html", "/": "softphone.html", "/dashboard": "dashboard.html"}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Same-origin only: the pages load nothing from elsewhere (the network may be closed).
CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.(html|css|js|svg)$")


def asset(name: str) -> bytes | None:
    """A file of ``static/``, or None."""
    from importlib import resources

    try:
        return (resources.files("warmline.web") / "static" / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, ModuleNotFoundError):
        return None


def page(rest: str) -> tuple[bytes, list[tuple[str, str]]] | None:
    """Body and headers for ``PREFIX + rest`` (a page or ``/static/NAME``), or None.

    Names are checked against a strict pattern, so no path can leave ``static/``.
    """
    name = _PAGES.get(rest)
    if name is None and rest.startswith("/static/"):
        candidate = rest[len("/static/") :]
        name = candidate if _STATIC_NAME.match(candidate) else None
    if name is None:
        return None
    body = asset(name)
    if body is None:
        return None
    headers = [
        ("Content-Type", _TYPES[name[name.rindex(".") :]]),
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
    ]
    return body, headers
