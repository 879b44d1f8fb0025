"""LambdaInvokeDispatcher on a real local HTTP server: the payload as sent, statuses as
DispatchError. The request's signature is checked against botocore in
tests/aws/test_lambda_invoke.py."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from aws_stub import CREDS, Recorder
from warmline.aws.lambda_invoke import InvokeError
from warmline.offload.lambda_invoke import DispatchError, LambdaInvokeDispatcher
from warmline.offload.payload import TurnPayload


def test_a_turn_is_queued_as_one_event_invocation_of_compact_json(lambda_api: str) -> None:
    """Signing, retries and endpoints are the client's (tests/aws/test_lambda_invoke.py)."""
    dispatcher = LambdaInvokeDispatcher("worker", "eu-west-1", lambda_api, credentials=CREDS)
    payload = TurnPayload("C=1", "VX1", 2, prompt="héllo").to_dict()
    try:
        assert dispatcher.dispatch(payload) == "req-1"
    finally:
        dispatcher.close()
    (seen,) = Recorder.requests
    assert seen["path"] == "/2015-03-31/functions/worker/invocations"
    assert seen["headers"]["X-Amz-Invocation-Type"] == "Event"
    assert seen["body"] == json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert TurnPayload.from_dict(json.loads(seen["body"])).prompt == "héllo"


def test_a_refused_invoke_is_a_dispatch_error_with_its_status(lambda_api: str) -> None:
    Recorder.statuses = [404]
    dispatcher = LambdaInvokeDispatcher("w", "eu-west-1", lambda_api, credentials=CREDS)
    try:
        with pytest.raises(DispatchError) as info:
            dispatcher.dispatch({"a": 2})
    finally:
        dispatcher.close()
    assert info.value.status == 404
    assert isinstance(info.value.__cause__, InvokeError)


def test_the_client_reads_the_environment_it_is_given(lambda_api: str) -> None:
    env = {
        "AWS_ENDPOINT_URL_LAMBDA": lambda_api,
        "AWS_REGION": "ap-south-1",
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    dispatcher = LambdaInvokeDispatcher("w", environ=env)
    assert (dispatcher.endpoint, dispatcher.region) == (lambda_api, "ap-south-1")
    dispatcher.close()


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
