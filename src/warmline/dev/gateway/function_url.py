"""A Lambda function URL: HTTP requests in, payload format 2.0 events, responses out.

Twilio's incoming-call webhook and the ``<Connect action>`` callback are plain HTTP; on AWS
they usually reach a function through a function URL (or an HTTP API, same payload). The
emulator serves them on its one port: any request that is neither ``@connections`` nor the
Invoke API goes to the configured ``[http] function``.

Response mapping, as function URLs do it: a result with ``statusCode`` is taken as an
HTTP response (``headers``, ``body``, ``isBase64Encoded``); any other result is returned
as JSON with status 200; an invocation error or timeout is a 502.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

from warmline.dev.gateway.events import aws_id
from warmline.dev.gateway.http import Request, Response, json_response

if TYPE_CHECKING:
    from warmline.dev.runtime import InvokeResult

__all__ = ["request_event", "to_response"]


def request_event(request: Request, *, host: str, tls: bool, source_ip: str) -> dict[str, Any]:
    """The function URL event (payload format 2.0) for ``request``."""
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-proto", "https" if tls else "http")
    path = request.path
    query = request.target.split("?", 1)[1] if "?" in request.target else ""
    now = time.time()
    body: str
    is_b64 = False
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        body, is_b64 = base64.b64encode(request.body).decode(), True
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": dict(request.query) or None,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": headers.get("host", host),
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": path,
                "protocol": request.version,
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": aws_id(),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body,
        "isBase64Encoded": is_b64,
    }


def to_response(result: InvokeResult) -> Response:
    """The HTTP response for an invocation's result."""
    if result.status != "ok":
        return json_response(502, {"Message": "Internal Server Error"})
    payload = result.payload
    if isinstance(payload, dict) and "statusCode" in payload:
        raw_body = payload.get("body")
        body = b"" if raw_body is None else str(raw_body).encode("utf-8")
        if payload.get("isBase64Encoded") and raw_body is not None:
            body = base64.b64decode(str(raw_body))
        headers = [(str(k), str(v)) for k, v in (payload.get("headers") or {}).items()]
        try:
            status = int(payload["statusCode"])
        except (TypeError, ValueError):
            return json_response(502, {"Message": "Internal Server Error"})
        return Response(status, body, headers)
    return Response(
        200, json.dumps(payload).encode("utf-8"), [("Content-Type", "application/json")]
    )
