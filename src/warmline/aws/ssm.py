"""SSM Parameter Store ``GetParameter`` (with decryption), on :mod:`warmline.aws`.

The JSON protocol: a SigV4-signed ``POST /`` with ``X-Amz-Target: AmazonSSM.GetParameter``
and ``Content-Type: application/x-amz-json-1.1``, service ``ssm``. It runs once per
environment, on the first ``$connect`` of a cold one (:mod:`warmline.secrets`), where
boto3 would cost an order of magnitude more than the rest of the cold start.

The endpoint is ``https://ssm.{region}.amazonaws.com`` unless ``AWS_ENDPOINT_URL_SSM``
(then ``AWS_ENDPOINT_URL``) says otherwise, as boto3 reads them (tests use a local moto
server); ``AWS_CA_BUNDLE`` is honoured.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping

from warmline.aws.client import AwsClient, RetryPolicy
from warmline.aws.credentials import endpoint_from_environment, region_from_environment
from warmline.aws.sigv4 import SigV4Signer
from warmline.errors import ConfigurationError

__all__ = ["ENDPOINT_ENV", "SERVICE", "get_parameter"]

#: boto3's service-specific endpoint variable for SSM.
ENDPOINT_ENV = "AWS_ENDPOINT_URL_SSM"
#: Signing name of the SSM API.
SERVICE = "ssm"
#: The region when the environment names none (boto3 would refuse; SSM is regional).
_DEFAULT_REGION = "us-east-1"
_TIMEOUT_S = 5.0
#: How long throttles and 5xx may be retried: a cold ``$connect`` is waiting.
_RETRY_BUDGET_S = 1.0
_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AmazonSSM.GetParameter",
}


def get_parameter(
    name: str,
    environ: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> str:
    """The decrypted value of the SSM parameter ``name``.

    Args:
        name: the parameter's name, e.g. ``/voice/twilio-auth-token``.
        environ: where to read credentials, region and endpoint (default ``os.environ``).
        clock: wall-clock epoch seconds for ``X-Amz-Date``.

    Raises:
        ConfigurationError: no credentials, SSM could not be reached, refused (the AWS
            error type is named, never the value) or answered something unreadable.
    """
    env = os.environ if environ is None else environ
    region = region_from_environment(env) or _DEFAULT_REGION
    endpoint = endpoint_from_environment(ENDPOINT_ENV, env) or f"https://ssm.{region}.amazonaws.com"
    client = AwsClient(
        endpoint,
        SigV4Signer(region, SERVICE),
        what="SSM",
        retry=RetryPolicy(_RETRY_BUDGET_S),
        environ=env,
        timeout_s=_TIMEOUT_S,
        clock=clock,
    )
    body = json.dumps({"Name": name, "WithDecryption": True}).encode()
    try:
        response, _attempts = client.request("POST", client.base_path or "/", body, _HEADERS)
    except ConfigurationError:
        raise
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot reach SSM for parameter {name!r}: {exc}") from exc
    finally:
        client.close()
    if response.status != 200:
        kind = response.headers.get("x-amzn-errortype") or response.error or str(response.status)
        raise ConfigurationError(f"SSM GetParameter {name!r} failed: {kind.split(':')[0]}")
    try:
        value = json.loads(response.body)["Parameter"]["Value"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"SSM answered an unreadable GetParameter: {exc}") from exc
    return str(value)
