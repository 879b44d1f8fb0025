"""The App's answers to API Gateway: ``Response``, the ``$connect`` handshake, HTTP routes.

Rules of this module:

1. ``$connect`` and the Twilio webhooks fail closed (:func:`verify_twilio`): with a
   Twilio token, a missing or wrong signature answers 403 before any handler runs and
   before anything is stored, and so does a token with no signature check wired; with
   no token, 403 and an ``unsigned_refused`` line unless the App allows unsigned
   traffic; a token source that fails (SSM, Secrets Manager) answers 500 and logs
   ``secret_unavailable``. None of these is ever a silent pass.
2. A handler's result becomes a :class:`Response` here, one way per kind of route:
   ``$connect`` (None/True: 200, False: 403, an int: that status), HTTP (a str is XML
   or text, a dict or list JSON, None 204).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from warmline.core._struct import Struct, init_fields
from warmline.core.context import Context
from warmline.core.routing import CONNECT
from warmline.errors import ConfigurationError, InvalidSignatureError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.app import App
    from warmline.core.context import Invocation
    from warmline.core.events import Connect, HttpRequest

__all__ = [
    "NO_TOKEN",
    "Response",
    "handle_connect",
    "handle_http",
    "handshake_url",
    "verify_twilio",
]

#: Logged (``unsigned_refused``) when Twilio traffic arrives and no token is configured.
NO_TOKEN = (
    "no Twilio auth token is configured (TWILIO_AUTH_TOKEN, TWILIO_AUTH_TOKEN_PARAMETER or "
    "TWILIO_AUTH_TOKEN_SECRET_ID), so signatures cannot be checked and the request is "
    "refused; set one, or opt out explicitly with App(allow_unsigned=True) or "
    "WARMLINE_ALLOW_UNSIGNED=1 (local development only)"
)


class Response(Struct):
    """What a route returns to API Gateway.

    ``$connect``: a non-2xx status rejects the handshake (docs/protocols.md §2.3). Other routes:
    ``body`` reaches the client only where a route response is configured (§2.1).
    """

    __slots__ = ("status_code", "headers", "body")
    status_code: int
    headers: dict[str, str] | None
    body: str | None

    def __init__(
        self,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> None:
        init_fields(self, status_code=status_code, headers=headers, body=body)

    def to_lambda(self) -> dict[str, Any]:
        """The Lambda proxy integration result."""
        result: dict[str, Any] = {"statusCode": self.status_code}
        if self.headers:
            result["headers"] = dict(self.headers)
        if self.body is not None:
            result["body"] = self.body
        return result


def verify_twilio(app: App, ctx: Context[Any], check: Callable[[str], None]) -> Response | None:
    """Rule 1: None when the request may go on, else the refusal (already logged).

    Args:
        app: the App (its token and ``allow_unsigned``).
        ctx: the request's context, for the log line.
        check: raises :class:`InvalidSignatureError` unless the request is signed with
            the token it is given.
    """
    try:
        token = app.twilio_auth_token()
    except ConfigurationError as exc:
        ctx.log("secret_unavailable", "error", error=str(exc))
        return Response(500)
    if token is None:
        if app.allow_unsigned:
            return None
        ctx.log("unsigned_refused", "error", error=NO_TOKEN)
        return Response(403)
    try:
        check(token)
    except InvalidSignatureError as exc:
        ctx.log("signature_rejected", "warning", error=str(exc))
        return Response(403)
    return None


def handle_connect(app: App, event: Connect, inv: Invocation) -> Response:
    """``$connect``: the signature check (rule 1), then the app's handler."""
    ctx: Context[None] = Context(app, event, inv, CONNECT)

    def check(token: str) -> None:
        signature_check = app.signature_check
        if signature_check is None:
            raise InvalidSignatureError("no signature check is wired for the Twilio token")
        signature_check(event.headers, app.public_url or handshake_url(event), token)

    refused = verify_twilio(app, ctx, check)
    if refused is not None:
        return refused
    handler = app.routes.get(CONNECT)
    result = app.call(handler, ctx) if handler is not None else None
    response = _connect_response(result)
    ctx.log("connect", statusCode=response.status_code, cold=inv.cold, durationMs=ctx.elapsed_ms())
    return response


def handle_http(app: App, event: HttpRequest, inv: Invocation) -> Response:
    """An HTTP request: its route by path and method (404, 405), the result as a Response."""
    ctx: Context[None] = Context(app, event, inv, f"{event.method} {event.path}")
    by_method = app.http_routes.get(event.path)
    if by_method is None:
        response = Response(404, {"Content-Type": "text/plain"}, "not found")
    elif event.method not in by_method:
        allow = ", ".join(sorted(by_method))
        response = Response(405, {"Allow": allow, "Content-Type": "text/plain"}, "")
    else:
        response = _http_response(app.call(by_method[event.method], ctx))
    measured = {
        "statusCode": response.status_code,
        "cold": inv.cold,
        "durationMs": ctx.elapsed_ms(),
    }
    ctx.log("http", **{**measured, **ctx.fields})
    return response


def handshake_url(event: Connect) -> str:
    """The URL Twilio signed when no public URL is configured: ``wss://{domain}/{stage}``
    plus the query string."""
    conn = event.connection
    url = f"wss://{conn.domain_name}/{conn.stage}"
    if event.query:
        from urllib.parse import urlencode

        # surrogatepass: a lone surrogate from the event is a failed check, not a crash
        url += "?" + urlencode(dict(event.query), errors="surrogatepass")
    return url


def _http_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(204)
    if isinstance(result, str):
        kind = "text/xml" if result.lstrip().startswith("<") else "text/plain; charset=utf-8"
        return Response(200, {"Content-Type": kind}, result)
    if isinstance(result, Mapping | list):
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        return Response(200, {"Content-Type": "application/json"}, body)
    raise ConfigurationError(f"an HTTP handler returned a {type(result).__name__}")


def _connect_response(result: Any) -> Response:
    if result is None or result is True:
        return Response(200)
    if result is False:
        return Response(403)
    if isinstance(result, Response):
        return result
    if isinstance(result, int):
        return Response(result)
    raise ConfigurationError(f"$connect handler returned a {type(result).__name__}")
