"""Helpers for testing warmline apps without AWS: events, a Lambda context, an import probe.

Shipped in the package (as starlette ships ``testclient``) so that users test their own
routes the same way warmline's tests do. :class:`RelayCall` plays one ConversationRelay
call through the app's Lambda handler, in process::

    from warmline.testing import RelayCall

    call = RelayCall(app)            # a memory store and in-process connections
    call.connect()
    call.setup()                     # -> the frames the app sent: [{"type": "text", ...}]
    call.prompt("What are your hours?")

The raw pieces are here too, for other shapes of test::

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

__all__ = [
    "LambdaContext",
    "RelayCall",
    "http_event",
    "modules_after",
    "new_id",
    "websocket_event",
]


def new_id() -> str:
    """A random id shaped like API Gateway's (base64 text, e.g. ``R1kmxc2VNjMCFIA=``)."""
    return base64.b64encode(os.urandom(10)).decode()


@dataclass
class LambdaContext:
    """A stand-in for Lambda's context object (docs/protocols.md §3.7)."""

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
    """An API Gateway WebSocket proxy event as docs/protocols.md §2.2 describes it.

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


class RelayCall:
    """One ConversationRelay call through ``app``'s Lambda handler, in process.

    The App is composed for the test: its ports not given explicitly are a
    :class:`~warmline.stores.memory.MemoryStore` and
    :class:`~warmline.connections.local.LocalConnections` (the ``store`` and
    ``connections`` attributes). Without a token the test call is unsigned, so the
    composition opts out of signatures (``allow_unsigned``) unless the App decided
    itself; an App with a token checks them as deployed.

    Args:
        app: the App under test.
        connection_id: the WebSocket connection's id.
        call_sid: the call's ``callSid`` in the ``setup`` frame.
    """

    def __init__(
        self, app: Any, *, connection_id: str = "R1kmxc2VNjMCFIA=", call_sid: str = "CA" + "0" * 32
    ) -> None:
        import io

        from warmline.adapters.aws_lambda import lambda_handler
        from warmline.adapters.compose import from_environment
        from warmline.connections.local import LocalConnections
        from warmline.log import StepLogger
        from warmline.stores.memory import MemoryStore

        self.store = MemoryStore()
        self.connections = LocalConnections()
        self.connection_id = connection_id
        self.call_sid = call_sid
        conns = self.connections
        app.compose(
            from_environment(
                {}, store=self.store, connections=lambda ref, log: conns, allow_unsigned=True
            )
        )
        #: the step log's records (``step``, ``route``, ``durationMs``, ...).
        self.log = StepLogger(io.StringIO(), keep=True)
        self.handler = lambda_handler(app, log=self.log)
        self._seen = 0

    def connect(self, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``$connect`` handshake; returns the proxy result (``statusCode``)."""
        self.connections.open(self.connection_id)
        event = websocket_event("CONNECT", connection_id=self.connection_id, headers=headers)
        result: dict[str, Any] = self.handler(event, LambdaContext())
        return result

    def send(self, frame: Mapping[str, Any]) -> list[Any]:
        """Send one frame from Twilio's side; returns the frames the app sent back."""
        import json

        body = json.dumps(dict(frame))
        event = websocket_event("MESSAGE", body=body, connection_id=self.connection_id)
        self.handler(event, LambdaContext())
        sent = self.connections.sent_json(self.connection_id)
        new, self._seen = sent[self._seen :], len(sent)
        return new

    def setup(self, **fields: Any) -> list[Any]:
        """Twilio's ``setup`` frame (``fields`` override its values)."""
        frame = {
            "type": "setup",
            "sessionId": "VX" + self.call_sid[2:],
            "callSid": self.call_sid,
            "accountSid": "AC" + "0" * 32,
            "from": "+15550100",
            "to": "+15550199",
            "callType": "PSTN",
            "direction": "inbound",
            "callStatus": "RINGING",
            **fields,
        }
        return self.send(frame)

    def prompt(self, text: str, *, last: bool = True, lang: str = "en-US") -> list[Any]:
        """What the caller said (``last=False``: a partial prompt)."""
        return self.send({"type": "prompt", "voicePrompt": text, "lang": lang, "last": last})

    def dtmf(self, digit: str) -> list[Any]:
        """A key the caller pressed."""
        return self.send({"type": "dtmf", "digit": digit})

    def interrupt(self, heard: str = "") -> list[Any]:
        """A barge-in, after the caller heard ``heard``."""
        return self.send({"type": "interrupt", "utteranceUntilInterrupt": heard})


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
