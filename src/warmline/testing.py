"""Helpers for testing warmline apps without AWS: events, a Lambda context, an import probe.

Shipped in the package (as starlette ships ``testclient``) so that users test their own
routes the same way warmline's tests do::

    from warmline.testing import LambdaContext, websocket_event

    handler = lambda_handler(app)
    handler(websocket_event("CONNECT"), LambdaContext())
    handler(websocket_event("MESSAGE", body='{"type":"prompt",...}'), LambdaContext())

:func:`http_event` builds a function-URL request (Twilio's webhooks), and
:func:`modules_after` lists what a fresh interpreter has loaded after some code, for tests
that keep a cold start lean.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LambdaContext", "http_event", "modules_after", "new_id", "websocket_event"]


def new_id() -> str:
    """A random id shaped like API Gateway's (base64 text, e.g. ``R1kmxc2VNjMCFIA=``)."""
    return base64.b64encode(os.urandom(10)).decode()


@dataclass
class LambdaContext:
    """A stand-in for Lambda's context object (PROTOCOLS.md §3.7)."""

    function_name: str = "warmline-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/warmline-test"
    log_stream_name: str = "2026/01/01/[$LATEST]0000"
    timeout_s: float = 30.0
    client_context: Any = None
    identity: Any = None
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        left = self.timeout_s - (time.monotonic() - self._started)
        return max(0, int(left * 1000))


def websocket_event(
    event_type: str,
    *,
    body: str | None = None,
    connection_id: str = "R1kmxc2VNjMCFIA=",
    route_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    domain_name: str = "abc123.execute-api.us-east-1.amazonaws.com",
    stage: str = "prod",
    disconnect_status_code: int = 1000,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """An API Gateway WebSocket proxy event as PROTOCOLS.md §2.2 describes it.

    Args:
        event_type: ``CONNECT``, ``MESSAGE`` or ``DISCONNECT``.
        body: the message text (MESSAGE only).
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    default_route = {"CONNECT": "$connect", "DISCONNECT": "$disconnect"}.get(event_type, "$default")
    rc: dict[str, Any] = {
        "routeKey": route_key or default_route,
        "eventType": event_type,
        "extendedRequestId": new_id(),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now / 1000)),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": now,
        "requestTimeEpoch": now,
        "identity": {"sourceIp": "203.0.113.9", "userAgent": "warmline-test"},
        "requestId": new_id(),
        "domainName": domain_name,
        "connectionId": connection_id,
        "apiId": domain_name.split(".", 1)[0],
    }
    event: dict[str, Any] = {"requestContext": rc, "isBase64Encoded": False}
    if event_type == "CONNECT":
        rc["messageId"] = None
        hdrs = {"Host": domain_name, **dict(headers or {})}
        event["headers"] = hdrs
        event["multiValueHeaders"] = {k: [v] for k, v in hdrs.items()}
        if query:
            event["queryStringParameters"] = dict(query)
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    elif event_type == "MESSAGE":
        rc["messageId"] = new_id()
        event["body"] = body if body is not None else ""
    elif event_type == "DISCONNECT":
        rc["disconnectStatusCode"] = disconnect_status_code
        rc["disconnectReason"] = ""
        event["headers"] = {"Host": domain_name}
    else:
        raise ValueError(f"event_type must be CONNECT, MESSAGE or DISCONNECT, not {event_type!r}")
    return event


def http_event(
    method: str,
    path: str,
    *,
    form: Mapping[str, str] | None = None,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    host: str = "abc123.lambda-url.us-east-1.on.aws",
) -> dict[str, Any]:
    """A Lambda function URL / HTTP API (payload format 2.0) request event.

    ``form`` becomes an ``application/x-www-form-urlencoded`` body, as Twilio posts it.
    """
    from urllib.parse import urlencode

    body = urlencode(dict(form)) if form is not None else ""
    hdrs = {"host": host, "x-forwarded-proto": "https"}
    if form is not None:
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": hdrs,
        "requestContext": {
            "domainName": host,
            "http": {"method": method, "path": path, "sourceIp": "203.0.113.9"},
            "requestId": new_id(),
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def modules_after(code: str, *, timeout_s: float = 60.0) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``.

    For tests that keep a cold start lean: what an import (or a warm-up) pulls in. The
    interpreter is this one (``sys.executable``) with this process's environment; ``json``
    is imported after ``code`` to print the list, so it is always in it.

    Raises:
        subprocess.CalledProcessError: ``code`` failed.
    """
    import json
    import subprocess
    import sys

    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))
