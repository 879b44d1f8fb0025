"""The retry policy and endpoint handling of every AWS client.

The loop itself (re-signing, budgets, reconnects) is exercised through its clients:
tests/connections/test_apigw.py, tests/aws/test_lambda_invoke.py, tests/aws/test_ssm.py.
"""

from __future__ import annotations

import pytest

from warmline.aws.client import NO_ANSWER, RETRY_STATUSES, AwsClient, RetryPolicy
from warmline.aws.credentials import Credentials
from warmline.aws.sigv4 import SigV4Signer
from warmline.errors import ConfigurationError


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_is_full_jitter_under_a_capped_exponential_ceiling(attempt: int) -> None:
    policy = RetryPolicy(3.0, base_s=0.05, cap_s=1.0)
    ceiling = min(1.0, 0.05 * 2 ** (attempt - 1))
    delays = [policy.backoff(attempt) for _ in range(200)]
    assert all(0.0 <= d < ceiling for d in delays)
    assert max(delays) > ceiling / 2  # spread over the range, not pinned to its bottom


def test_the_default_statuses_are_throttles_and_server_errors() -> None:
    assert RetryPolicy(1.0).statuses == RETRY_STATUSES == {429, 500, 502, 503, 504}
    assert NO_ANSWER in RetryPolicy(1.0, RETRY_STATUSES | {NO_ANSWER}).statuses


def test_a_client_takes_its_endpoint_apart_and_reads_credentials_lazily() -> None:
    client = AwsClient(
        "HTTPS://Lambda.eu-west-1.amazonaws.com:443/base/",
        SigV4Signer("eu-west-1", "lambda"),
        what="Lambda",
        retry=RetryPolicy(1.0),
        environ={},
    )
    assert client.endpoint == "https://lambda.eu-west-1.amazonaws.com/base"
    assert (client.host_header, client.base_path) == ("lambda.eu-west-1.amazonaws.com", "/base")
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        _ = client.credentials
    given = AwsClient(
        "http://127.0.0.1:9",
        SigV4Signer("eu-west-1", "lambda"),
        what="Lambda",
        retry=RetryPolicy(1.0),
        credentials=Credentials("a", "b"),
        environ={},
    )
    assert given.credentials == Credentials("a", "b") and given.host_header == "127.0.0.1:9"
    with pytest.raises(ConfigurationError, match="Lambda endpoint"):
        AwsClient(
            "ftp://x", SigV4Signer("eu-west-1", "lambda"), what="Lambda", retry=RetryPolicy(1)
        )
