"""LambdaInvokeDispatcher on a real local HTTP server: the payload as sent, statuses as
DispatchError. The request's signature is checked against botocore in
tests/aws/test_lambda_invoke.py."""

from __future__ import annotations

from unittest import mock

import pytest

from lambda_recorder import CREDS, NOW, Recorder, botocore_authorization
from warmline.offload.lambda_invoke import DispatchError, LambdaInvokeDispatcher
from warmline.offload.payload import TurnPayload


@pytest.mark.parametrize(
    "name", ["worker", "arn:aws:lambda:eu-west-1:123456789012:function:w:live"]
)
def test_signed_request_matches_botocore(lambda_api: str, name: str) -> None:
    dispatcher = LambdaInvokeDispatcher(
        name, "eu-west-1", lambda_api, credentials=CREDS, clock=lambda: NOW
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
    expected = botocore_authorization(lambda_api + seen["path"], headers, seen["body"], "eu-west-1")
    assert headers["Authorization"] == expected
    assert "SignedHeaders=host;x-amz-date;x-amz-invocation-type;x-amz-security-token" in expected


def test_throttles_are_retried_and_errors_raised(lambda_api: str) -> None:
    Recorder.statuses = [429, 503]
    dispatcher = LambdaInvokeDispatcher("w", "eu-west-1", lambda_api, credentials=CREDS)
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


def test_endpoint_and_credentials_from_the_environment(lambda_api: str) -> None:
    env = {
        "AWS_ENDPOINT_URL_LAMBDA": lambda_api,
        "AWS_REGION": "ap-south-1",
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "session",
    }
    dispatcher = LambdaInvokeDispatcher("w", environ=env)
    try:
        assert dispatcher.endpoint == lambda_api and dispatcher.region == "ap-south-1"
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
