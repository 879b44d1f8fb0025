"""LambdaInvokeDispatcher on a real local HTTP server: the payload as sent, statuses as
DispatchError. The request's signature is checked against botocore in
tests/aws/test_lambda_invoke.py."""

from __future__ import annotations

import datetime
import http.server
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from warmline.aws.credentials import Credentials
from warmline.offload.lambda_invoke import DispatchError, LambdaInvokeDispatcher
from warmline.offload.payload import TurnPayload

NOW = 1_767_225_599.0  # 2025-12-31T23:59:59Z: the signing date rolls a second later
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok/en+=")


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers with the next queued status; records every request."""

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, Any]] = []
    statuses: list[int] = []

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status = self.statuses.pop(0) if self.statuses else 202
        payload = b"" if status == 202 else b'{"message":"nope"}'
        self.send_response(status)
        self.send_header("x-amzn-RequestId", f"req-{len(self.requests)}")
        if status != 202:
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException:http://internal")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.requests = []
    Recorder.statuses = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def _botocore_authorization(url: str, headers: dict[str, str], body: bytes, region: str) -> str:
    """What botocore's SigV4Auth signs for the same request at the same instant."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"X-Amz-Invocation-Type": headers["X-Amz-Invocation-Type"]},
    )
    frozen = datetime.datetime.fromtimestamp(NOW, datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        botocore.auth.SigV4Auth(
            BotoCredentials(CREDS.access_key, CREDS.secret_key, CREDS.token), "lambda", region
        ).add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    "name", ["worker", "arn:aws:lambda:eu-west-1:123456789012:function:w:live"]
)
def test_signed_request_matches_botocore(server: str, name: str) -> None:
    dispatcher = LambdaInvokeDispatcher(
        name, "eu-west-1", server, credentials=CREDS, clock=lambda: NOW
    )
    payload = TurnPayload("C=1", "VX1", 2, prompt="héllo").to_dict()
    try:
        assert dispatcher.dispatch(payload) == "req-1"
    finally:
        dispatcher.close()
    (seen,) = Recorder.requests
    quoted = name.replace(":", "%3A")
    assert seen["path"] == f"/2015-03-31/functions/{quoted}/invocations"
    headers = seen["headers"]
    assert headers["X-Amz-Invocation-Type"] == "Event"
    assert headers["X-Amz-Date"] == "20251231T235959Z"
    assert headers["X-Amz-Security-Token"] == CREDS.token
    assert TurnPayload.from_dict(__import__("json").loads(seen["body"])).prompt == "héllo"
    expected = _botocore_authorization(server + seen["path"], headers, seen["body"], "eu-west-1")
    assert headers["Authorization"] == expected
    assert "SignedHeaders=host;x-amz-date;x-amz-invocation-type;x-amz-security-token" in expected


def test_throttles_are_retried_and_errors_raised(server: str) -> None:
    Recorder.statuses = [429, 503]
    dispatcher = LambdaInvokeDispatcher("w", "eu-west-1", server, credentials=CREDS)
    try:
        assert dispatcher.dispatch({"a": 1}) == "req-3"
        Recorder.statuses = [404]
        with pytest.raises(DispatchError) as info:
            dispatcher.dispatch({"a": 2})
        assert info.value.status == 404
    finally:
        dispatcher.close()
    dates = [r["headers"]["X-Amz-Date"] for r in Recorder.requests]
    assert len(dates) == 4  # every attempt signed again


def test_endpoint_and_credentials_from_the_environment(server: str) -> None:
    env = {
        "AWS_ENDPOINT_URL_LAMBDA": server,
        "AWS_REGION": "ap-south-1",
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "session",
    }
    dispatcher = LambdaInvokeDispatcher("w", environ=env)
    try:
        assert dispatcher.endpoint == server and dispatcher.region == "ap-south-1"
        dispatcher.dispatch({"a": 1})
    finally:
        dispatcher.close()
    (seen,) = Recorder.requests
    assert "/ap-south-1/lambda/aws4_request" in seen["headers"]["Authorization"]
    assert seen["headers"]["X-Amz-Security-Token"] == "session"
    default = LambdaInvokeDispatcher("w", "eu-west-1", environ={})
    assert default.endpoint == "https://lambda.eu-west-1.amazonaws.com"


def test_unreachable_endpoint_is_a_dispatch_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dispatcher = LambdaInvokeDispatcher(
        "w", "eu-west-1", f"http://127.0.0.1:{port}", credentials=CREDS
    )
    with pytest.raises(DispatchError):
        dispatcher.dispatch({"a": 1})
    dispatcher.close()


@pytest.mark.parametrize("kind", ["sns", "sqs"])
def test_sns_and_sqs_without_boto3_name_the_extra(kind: str) -> None:
    from warmline.errors import MissingExtraError
    from warmline.offload.dispatchers import SnsDispatcher, SqsDispatcher

    dispatcher = SnsDispatcher("arn:t") if kind == "sns" else SqsDispatcher("https://q")
    with mock.patch.dict("sys.modules", {"boto3": None}):  # import boto3 -> ImportError
        with pytest.raises(MissingExtraError, match=r"warmline\[aws\]"):
            dispatcher.dispatch({"a": 1})
