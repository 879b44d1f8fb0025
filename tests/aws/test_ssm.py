"""SSM GetParameter on a real local HTTP server, with botocore as the signing oracle.

The moto-backed round trip (a real parameter, ParameterNotFound) is in tests/test_secrets.py.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from aws_stub import Recorder, serve
from warmline.aws.ssm import get_parameter
from warmline.errors import ConfigurationError

NOW = 1_767_225_599.0  # 2025-12-31T23:59:59Z
ENV = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "tok/en+=",
    "AWS_REGION": "eu-west-1",
}


class Ssm(Recorder):
    """Answers GetParameter with the parameter's value."""

    ok = 200
    error_type = "ThrottlingException:http://internal"

    def answer(self, body: bytes) -> bytes:
        name = json.loads(body)["Name"]
        return json.dumps({"Parameter": {"Name": name, "Value": "s3cret"}}).encode()


@pytest.fixture
def server() -> Iterator[str]:
    yield from serve(Ssm)


def test_get_parameter_is_signed_as_botocore_signs_it(server: str) -> None:
    import boto3
    import botocore.auth
    from botocore.awsrequest import AWSResponse

    captured: dict[str, Any] = {}

    def before_send(request: Any, **kwargs: Any) -> AWSResponse:
        captured.update(request.headers.items())
        payload = b'{"Parameter": {"Value": "x"}}'
        raw = mock.Mock(stream=lambda **_: iter([payload]))
        return AWSResponse(request.url, 200, {}, raw)

    client = boto3.client(
        "ssm",
        region_name="eu-west-1",
        endpoint_url=server,
        aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=ENV["AWS_SESSION_TOKEN"],
    )
    client.meta.events.register("before-send", before_send)
    frozen = datetime.datetime.fromtimestamp(NOW, datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        client.get_parameter(Name="/voice/twilio", WithDecryption=True)
    client.close()

    env = {**ENV, "AWS_ENDPOINT_URL_SSM": server}
    assert get_parameter("/voice/twilio", env, clock=lambda: NOW) == "s3cret"
    (seen,) = Ssm.requests
    assert json.loads(seen["body"]) == {"Name": "/voice/twilio", "WithDecryption": True}
    assert seen["headers"]["X-Amz-Target"] == "AmazonSSM.GetParameter"
    boto_auth = captured["Authorization"]
    boto_auth = boto_auth.decode() if isinstance(boto_auth, bytes) else boto_auth
    # botocore signs the same headers over the same body (its JSON spacing matches ours).
    assert seen["headers"]["Authorization"] == boto_auth
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target" in (
        boto_auth
    )


def test_throttles_are_retried_and_refusals_name_the_error_type(server: str) -> None:
    env = {**ENV, "AWS_ENDPOINT_URL_SSM": server}
    Ssm.statuses = [503]
    assert get_parameter("/p", env) == "s3cret"
    assert len(Ssm.requests) == 2
    Ssm.statuses = [400]
    with pytest.raises(ConfigurationError, match="ThrottlingException") as info:
        get_parameter("/p", env)
    assert "s3cret" not in str(info.value)


def test_no_credentials_is_a_configuration_error_before_anything_is_sent(server: str) -> None:
    env = {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SSM": server}
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        get_parameter("/p", env)
    assert Ssm.requests == []
