"""The Lambda invoke client on a real local HTTP server, with botocore as the signing oracle."""

from __future__ import annotations

import datetime
import json
from typing import Any
from unittest import mock

import pytest

from aws_stub import CREDS, NOW, Recorder, botocore_authorization
from warmline.aws.lambda_invoke import InvokeError, LambdaClient


@pytest.mark.parametrize(
    "name", ["worker", "arn:aws:lambda:eu-west-1:123456789012:function:w:live"]
)
def test_signed_request_matches_botocore(lambda_api: str, name: str) -> None:
    client = LambdaClient(name, "eu-west-1", lambda_api, credentials=CREDS, clock=lambda: NOW)
    body = json.dumps({"prompt": "héllo"}, ensure_ascii=False).encode("utf-8")
    try:
        assert client.invoke_event(body) == "req-1"
    finally:
        client.close()
    (seen,) = Recorder.requests
    quoted = name.replace(":", "%3A")
    assert seen["path"] == f"/2015-03-31/functions/{quoted}/invocations"
    headers = seen["headers"]
    assert headers["X-Amz-Invocation-Type"] == "Event"
    assert headers["X-Amz-Date"] == "20251231T235959Z"
    assert headers["X-Amz-Security-Token"] == CREDS.token
    assert json.loads(seen["body"])["prompt"] == "héllo"
    expected = botocore_authorization(lambda_api + seen["path"], headers, seen["body"], "eu-west-1")
    assert headers["Authorization"] == expected
    assert "SignedHeaders=host;x-amz-date;x-amz-invocation-type;x-amz-security-token" in expected


def test_signature_matches_boto3s_own_invoke(lambda_api: str) -> None:
    """The whole request boto3 would send (captured before it leaves), byte for byte."""
    import boto3
    import botocore.auth
    from botocore.awsrequest import AWSResponse

    captured: dict[str, Any] = {}

    def before_send(request: Any, **kwargs: Any) -> AWSResponse:
        captured["url"] = request.url
        captured["headers"] = {k: v for k, v in request.headers.items()}
        return AWSResponse(request.url, 202, {"x-amzn-RequestId": "boto"}, None)

    client = boto3.client(
        "lambda",
        region_name="us-west-2",
        endpoint_url=lambda_api,
        aws_access_key_id=CREDS.access_key,
        aws_secret_access_key=CREDS.secret_key,
        aws_session_token=CREDS.token,
    )
    client.meta.events.register("before-send", before_send)
    body = b'{"kind":"warmline.turn"}'
    frozen = datetime.datetime.fromtimestamp(NOW, datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        client.invoke(FunctionName="my fn", InvocationType="Event", Payload=body)
    client.close()

    ours = LambdaClient("my fn", "us-west-2", lambda_api, credentials=CREDS, clock=lambda: NOW)
    try:
        ours.invoke_event(body)
    finally:
        ours.close()
    (seen,) = Recorder.requests
    assert lambda_api + seen["path"] == captured["url"]
    boto_auth = captured["headers"]["Authorization"]
    assert seen["headers"]["Authorization"] == (
        boto_auth.decode() if isinstance(boto_auth, bytes) else boto_auth
    )


def test_throttles_are_retried_and_errors_raised(lambda_api: str) -> None:
    Recorder.statuses = [429, 503]
    client = LambdaClient("w", "eu-west-1", lambda_api, credentials=CREDS)
    try:
        assert client.invoke_event(b'{"a":1}') == "req-3"
        Recorder.statuses = [404]
        with pytest.raises(InvokeError) as info:
            client.invoke_event(b'{"a":2}')
        assert info.value.status == 404
    finally:
        client.close()
    dates = [r["headers"]["X-Amz-Date"] for r in Recorder.requests]
    assert len(dates) == 4  # every attempt signed again


def test_endpoint_and_credentials_from_the_environment(lambda_api: str) -> None:
    env = {
        "AWS_ENDPOINT_URL_LAMBDA": lambda_api,
        "AWS_REGION": "ap-south-1",
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "session",
    }
    client = LambdaClient("w", environ=env)
    try:
        assert client.endpoint == lambda_api and client.region == "ap-south-1"
        client.invoke_event(b'{"a":1}')
    finally:
        client.close()
    (seen,) = Recorder.requests
    assert "/ap-south-1/lambda/aws4_request" in seen["headers"]["Authorization"]
    assert seen["headers"]["X-Amz-Security-Token"] == "session"
    default = LambdaClient("w", "eu-west-1", environ={})
    assert default.endpoint == "https://lambda.eu-west-1.amazonaws.com"


def test_unreachable_endpoint_is_an_invoke_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = LambdaClient("w", "eu-west-1", f"http://127.0.0.1:{port}", credentials=CREDS)
    with pytest.raises(InvokeError):
        client.invoke_event(b'{"a":1}')
    client.close()
