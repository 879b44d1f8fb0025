"""One call to an AWS "JSON 1.1" API (SSM, Secrets Manager) on :mod:`warmline.aws`.

Those APIs share one shape: a SigV4-signed ``POST /`` with ``X-Amz-Target:
<Prefix>.<Operation>`` and ``Content-Type: application/x-amz-json-1.1``; an error answers
a 4xx/5xx whose ``x-amzn-ErrorType`` header (or the body's ``__type``) names the AWS
error. The secret readers call them once per environment, on the first ``$connect`` of a
cold one, where boto3 would cost an order of magnitude more than the rest of the cold
start.

The endpoint is ``https://{service}.{region}.amazonaws.com`` unless the service's
``AWS_ENDPOINT_URL_<SERVICE>`` (then ``AWS_ENDPOINT_URL``) says otherwise, as boto3 reads
them (tests use a local moto server); ``AWS_CA_BUNDLE`` is honoured.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from warmline.aws.client import AwsClient, RetryPolicy
from warmline.aws.credentials import endpoint_from_environment, region_from_environment
from warmline.aws.sigv4 import SigV4Signer
from warmline.errors import ConfigurationError

__all__ = ["call"]

#: The region when the environment names none (boto3 would refuse; these APIs are regional).
_DEFAULT_REGION = "us-east-1"
_TIMEOUT_S = 5.0
#: How long throttles and 5xx may be retried: a cold ``$connect`` is waiting.
_RETRY_BUDGET_S = 1.0


def call(
    service: str,
    target: str,
    payload: Mapping[str, Any],
    *,
    endpoint_env: str,
    label: str,
    what: str,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """POST ``payload`` as ``target`` and return the decoded JSON answer.

    Args:
        service: the signing name and host prefix (``ssm``, ``secretsmanager``).
        target: the ``X-Amz-Target`` (``AmazonSSM.GetParameter``).
        payload: the request's JSON body.
        endpoint_env: boto3's service-specific endpoint variable.
        label: names the service in the client's errors (``SSM``).
        what: names the request in errors (``SSM GetParameter '/x'``); never a value.
        environ: where to read credentials, region and endpoint (default ``os.environ``).
        clock: wall-clock epoch seconds for ``X-Amz-Date``.

    Raises:
        ConfigurationError: no credentials, the service could not be reached, refused
            (the AWS error type is named) or answered something that is not a JSON object.
    """
    env = os.environ if environ is None else environ
    region = region_from_environment(env) or _DEFAULT_REGION
    endpoint = (
        endpoint_from_environment(endpoint_env, env) or f"https://{service}.{region}.amazonaws.com"
    )
    client = AwsClient(
        endpoint,
        SigV4Signer(region, service),
        what=label,
        retry=RetryPolicy(_RETRY_BUDGET_S),
        environ=env,
        timeout_s=_TIMEOUT_S,
        clock=clock,
    )
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    body = json.dumps(dict(payload)).encode()
    try:
        response, _attempts = client.request("POST", client.base_path or "/", body, headers)
    except ConfigurationError:
        raise
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot reach {what}: {exc}") from exc
    finally:
        client.close()
    if response.status != 200:
        kind = response.headers.get("x-amzn-errortype") or _error_type(response.body)
        kind = kind or response.error or str(response.status)
        raise ConfigurationError(f"{what} failed: {kind.split(':')[0]}")
    try:
        answer = json.loads(response.body)
    except ValueError as exc:
        raise ConfigurationError(f"{what} answered unreadable JSON: {exc}") from exc
    if not isinstance(answer, dict):
        raise ConfigurationError(f"{what} answered a {type(answer).__name__}, not an object")
    return answer


def _error_type(body: bytes) -> str:
    """The ``__type`` of a JSON error body (``namespace#Name`` -> ``Name``), or ""."""
    try:
        kind = json.loads(body).get("__type", "")
    except (ValueError, AttributeError):
        return ""
    return str(kind).rpartition("#")[2]
