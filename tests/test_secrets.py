"""Secrets: from the environment, else from SSM (a real moto server), cached, never logged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stores.moto_server import ENV, moto_server
from warmline import secrets
from warmline.errors import ConfigurationError


@pytest.fixture(scope="module")
def ssm() -> Iterator[str]:
    with moto_server() as url:
        import boto3

        client = boto3.client(
            "ssm",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.put_parameter(Name="/voice/twilio", Value="s3cret", Type="SecureString")
        yield url


def test_the_plain_variable_wins() -> None:
    assert secrets.secret("TOKEN", {"TOKEN": "a", "TOKEN_PARAMETER": "/x"}) == "a"
    assert secrets.secret("TOKEN", {}) is None


@pytest.mark.slow
def test_a_parameter_name_is_read_from_ssm_once(ssm: str) -> None:
    env = {**ENV, "AWS_ENDPOINT_URL_SSM": ssm, "TOKEN_PARAMETER": "/voice/twilio"}
    secrets._CACHE.clear()
    assert secrets.secret("TOKEN", env) == "s3cret"
    env["AWS_ENDPOINT_URL_SSM"] = "http://127.0.0.1:9"  # a second read would fail
    assert secrets.secret("TOKEN", env) == "s3cret"


@pytest.mark.slow
def test_a_missing_parameter_is_a_clear_error_without_the_value(ssm: str) -> None:
    env = {**ENV, "AWS_ENDPOINT_URL_SSM": ssm, "TOKEN_PARAMETER": "/nope"}
    secrets._CACHE.clear()
    with pytest.raises(ConfigurationError, match="ParameterNotFound"):
        secrets.secret("TOKEN", env)


def test_an_unreachable_ssm_is_a_clear_error() -> None:
    env = {**ENV, "AWS_ENDPOINT_URL_SSM": "http://127.0.0.1:9", "TOKEN_PARAMETER": "/y"}
    secrets._CACHE.clear()
    with pytest.raises(ConfigurationError, match="cannot reach SSM"):
        secrets.secret("TOKEN", env)
