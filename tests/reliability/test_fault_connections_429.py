"""``@connections`` answering 429 in bursts while an answer streams: every token arrives
once, in order, within the retry budget; past the budget the handler still returns.

Real parts: the App behind the Lambda handler, warmline's signed @connections client,
a local HTTP server playing API Gateway. Time is a fake clock advanced by the client's own
backoff sleeps, so the test is fast and exact. (Single-post retry rules -- backoff shape,
re-signing, zero budget, 5xx -- are in tests/connections/test_apigw.py.)
"""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from warmline.adapters.aws_lambda import lambda_handler
from warmline.aws.credentials import Credentials
from warmline.connections.apigw import ApiGatewayConnections
from warmline.core.app import App, Context
from warmline.errors import ThrottledError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

TOKENS = ["Our ", "phone ", "support ", "is ", "open ", "every ", "day."]
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Gateway(http.server.BaseHTTPRequestHandler):
    """429 for the first ``burst`` attempts of every post (forever when burst < 0), then 200."""

    protocol_version = "HTTP/1.1"
    burst = 3
    attempts: dict[bytes, int] = {}
    delivered: list[bytes] = []
    throttled = 0

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        cls = type(self)
        seen = cls.attempts.get(body, 0)
        cls.attempts[body] = seen + 1
        if cls.burst < 0 or seen < cls.burst:
            cls.throttled += 1
            payload = b'{"message": "LimitExceededException"}'
            self.send_response(429)
            self.send_header("x-amzn-ErrorType", "LimitExceededException")
        else:
            cls.delivered.append(body)
            payload = b""
            self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib name
        return


@pytest.fixture()
def gateway() -> Iterator[str]:
    Gateway.attempts, Gateway.delivered, Gateway.throttled, Gateway.burst = {}, [], 0, 3
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dev"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def streaming_app(endpoint: str, fake: FakeTime, budget_s: float) -> tuple[Any, Any, io.StringIO]:
    client = ApiGatewayConnections(
        endpoint,
        credentials=CREDS,
        region="us-east-1",
        retry_budget_s=budget_s,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )
    app = App(store=MemoryStore(), connections=lambda _ref: client)

    @app.route("prompt")
    def answer(ctx: Context) -> Iterator[str]:
        yield from TOKENS

    out = io.StringIO()
    return lambda_handler(app, log=StepLogger(out)), client, out


def prompt_event() -> dict[str, Any]:
    body = json.dumps({"type": "prompt", "voicePrompt": "hours?", "last": True})
    return websocket_event("MESSAGE", body=body)


def test_429_bursts_on_every_token_are_retried_within_budget(gateway: str) -> None:
    fake = FakeTime()
    handler, client, _out = streaming_app(gateway, fake, budget_s=3.0)
    try:
        assert handler(prompt_event(), LambdaContext())["statusCode"] == 200
    finally:
        client.close()
    frames = [json.loads(body) for body in Gateway.delivered]
    tokens = [f["token"] for f in frames]
    assert "".join(tokens) == "".join(TOKENS)  # every token once, in order
    assert frames[-1]["last"] is True
    assert len(Gateway.delivered) == len(set(Gateway.delivered))  # nothing delivered twice
    assert Gateway.throttled == 3 * len(Gateway.delivered)
    # each post waited out its own burst inside the per-post budget
    assert fake.now <= 3.0 * len(Gateway.delivered)


def test_429_past_the_budget_fails_the_invocation_with_throttled_error(gateway: str) -> None:
    """Documented behaviour (errors.py): when the budget runs out, ThrottledError ends the
    invocation -- a Lambda error the Errors metric and alarms see -- after exactly the
    attempts the budget allowed; nothing was delivered, so nothing can arrive twice."""
    Gateway.burst = -1  # throttled for good
    fake = FakeTime()
    handler, client, _out = streaming_app(gateway, fake, budget_s=0.5)
    try:
        with pytest.raises(ThrottledError) as info:
            handler(prompt_event(), LambdaContext())
    finally:
        client.close()
    assert info.value.status == 429
    assert Gateway.delivered == []
    assert fake.now <= 0.5 + 1.0  # the budget, plus at most one capped backoff


def test_the_default_client_logs_its_retries_in_the_invocation_log(
    gateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the App's default @connections client (no factory given), a retried post shows
    up as a ``connections.retry`` step in the invocation's log, with the status."""
    Gateway.burst = 1  # one 429 per post: the real backoff is a few ms
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", gateway)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDS.secret_key)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    ApiGatewayConnections.close_shared()
    app = App(store=MemoryStore())

    @app.route("prompt")
    def answer(ctx: Context) -> Iterator[str]:
        yield "One token."

    out = io.StringIO()
    try:
        handler = lambda_handler(app, log=StepLogger(out))
        assert handler(prompt_event(), LambdaContext())["statusCode"] == 200
    finally:
        ApiGatewayConnections.close_shared()
    steps = [json.loads(line) for line in out.getvalue().splitlines()]
    retries = [s for s in steps if s["step"] == "connections.retry"]
    assert retries and all(s["status"] == 429 and s["level"] == "warning" for s in retries)
    assert Gateway.delivered  # and the answer went out
