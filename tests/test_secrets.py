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


@pytest.fixture(scope="module")
def secretsmanager() -> Iterator[str]:
    with moto_server() as url:
        import boto3

        client = boto3.client(
            "secretsmanager",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_secret(Name="warmline/twilio", SecretString="sm-s3cret")
        client.create_secret(
            Name="warmline/keys", SecretString='{"TOKEN": "from-json", "OTHER": "x"}'
        )
        client.create_secret(Name="warmline/binary", SecretBinary=b"\x00\x01")
        yield url


def _sm_env(url: str, secret_id: str) -> dict[str, str]:
    return {**ENV, "AWS_ENDPOINT_URL_SECRETS_MANAGER": url, "TOKEN_SECRET_ID": secret_id}


@pytest.mark.slow
def test_a_secret_id_is_read_from_secrets_manager_once(secretsmanager: str) -> None:
    """What ``[deploy.secrets.X] secretsmanager = ...`` deploys: ``X_SECRET_ID``."""
    env = _sm_env(secretsmanager, "warmline/twilio")
    secrets._CACHE.clear()
    assert secrets.secret("TOKEN", env) == "sm-s3cret"
    env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = "http://127.0.0.1:9"  # a second read would fail
    assert secrets.secret("TOKEN", env) == "sm-s3cret"


@pytest.mark.slow
def test_a_json_secret_gives_the_key_named_like_the_variable(secretsmanager: str) -> None:
    secrets._CACHE.clear()
    assert secrets.secret("TOKEN", _sm_env(secretsmanager, "warmline/keys")) == "from-json"
    with pytest.raises(ConfigurationError, match="without a string key 'MISSING'"):
        secrets.secret(
            "MISSING", {**_sm_env(secretsmanager, ""), "MISSING_SECRET_ID": "warmline/keys"}
        )


@pytest.mark.slow
def test_a_missing_or_binary_secret_fails_closed_and_names_the_error(secretsmanager: str) -> None:
    secrets._CACHE.clear()
    with pytest.raises(ConfigurationError, match="ResourceNotFoundException") as missing:
        secrets.secret("TOKEN", _sm_env(secretsmanager, "warmline/nope"))
    assert "s3cret" not in str(missing.value)
    with pytest.raises(ConfigurationError, match="no SecretString"):
        secrets.secret("TOKEN", _sm_env(secretsmanager, "warmline/binary"))
    assert secrets._CACHE == {}  # nothing cached: the next request tries again


def test_an_unreachable_secrets_manager_is_a_clear_error() -> None:
    secrets._CACHE.clear()
    with pytest.raises(ConfigurationError, match="cannot reach Secrets Manager"):
        secrets.secret("TOKEN", _sm_env("http://127.0.0.1:9", "warmline/twilio"))


def test_an_empty_variable_is_unset_and_two_sources_are_refused() -> None:
    assert secrets.secret("TOKEN", {"TOKEN": ""}) is None
    both = {"TOKEN_PARAMETER": "/a", "TOKEN_SECRET_ID": "b"}
    with pytest.raises(ConfigurationError, match="both TOKEN_PARAMETER and TOKEN_SECRET_ID"):
        secrets.secret("TOKEN", both)
