"""Keys, region, endpoint overrides and CA bundle, read from the environment as boto3 reads them."""

from __future__ import annotations

import pytest

from warmline.aws.credentials import (
    Credentials,
    ca_bundle_from_environment,
    endpoint_from_environment,
    region_from_environment,
)
from warmline.errors import ConfigurationError

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="


def test_credentials_from_environment() -> None:
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}
    assert Credentials.from_environment(env) == Credentials(AKID, SECRET, TOKEN)
    env["AWS_SESSION_TOKEN"] = ""
    assert Credentials.from_environment(env).token is None
    with pytest.raises(ConfigurationError):
        Credentials.from_environment({"AWS_ACCESS_KEY_ID": AKID})
    with pytest.raises(ConfigurationError):
        Credentials("", SECRET)


def test_region_from_environment_prefers_aws_region() -> None:
    both = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}
    assert region_from_environment(both) == "eu-west-1"
    assert region_from_environment({"AWS_DEFAULT_REGION": "us-east-1"}) == "us-east-1"
    assert region_from_environment({}) is None


def test_the_service_endpoint_wins_over_the_global_one() -> None:
    env = {"AWS_ENDPOINT_URL_LAMBDA": "http://l", "AWS_ENDPOINT_URL": "http://g"}
    assert endpoint_from_environment("AWS_ENDPOINT_URL_LAMBDA", env) == "http://l"
    assert endpoint_from_environment("AWS_ENDPOINT_URL_SSM", env) == "http://g"
    assert endpoint_from_environment("AWS_ENDPOINT_URL_SSM", env, use_global=False) is None
    assert endpoint_from_environment("AWS_ENDPOINT_URL_SSM", {}) is None


def test_configured_endpoints_can_be_ignored_as_boto3_does() -> None:
    env = {"AWS_ENDPOINT_URL_LAMBDA": "http://l", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "TRUE"}
    assert endpoint_from_environment("AWS_ENDPOINT_URL_LAMBDA", env) is None
    env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false"
    assert endpoint_from_environment("AWS_ENDPOINT_URL_LAMBDA", env) == "http://l"


def test_the_ca_bundle_is_a_file_name_or_none() -> None:
    assert ca_bundle_from_environment({"AWS_CA_BUNDLE": "/ca.pem"}) == "/ca.pem"
    assert ca_bundle_from_environment({"AWS_CA_BUNDLE": ""}) is None


def test_credentials_repr_hides_secret_and_token() -> None:
    creds = Credentials(AKID, SECRET, TOKEN)
    text = repr(creds) + str(creds)
    assert SECRET not in text and TOKEN not in text and AKID not in text
    assert "MPLE" in text  # the key id's tail, to tell keys apart
    assert "token=None" in repr(Credentials(AKID, SECRET))


def test_credentials_are_immutable_and_compare_by_value() -> None:
    creds = Credentials(AKID, SECRET, TOKEN)
    with pytest.raises(AttributeError):
        creds.secret_key = "x"
    assert creds == Credentials(AKID, SECRET, TOKEN)
    assert creds != Credentials(AKID, SECRET)
    assert len({creds, Credentials(AKID, SECRET, TOKEN)}) == 1
