"""SSM Parameter Store ``GetParameter`` (with decryption), on :mod:`warmline.aws`.

The JSON protocol (:mod:`warmline.aws.json_api`): ``X-Amz-Target:
AmazonSSM.GetParameter``, service ``ssm``. It runs once per environment, on the first
``$connect`` of a cold one (:mod:`warmline.secrets`).

The endpoint is ``https://ssm.{region}.amazonaws.com`` unless ``AWS_ENDPOINT_URL_SSM``
(then ``AWS_ENDPOINT_URL``) says otherwise, as boto3 reads them (tests use a local moto
server); ``AWS_CA_BUNDLE`` is honoured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from warmline.aws.json_api import call
from warmline.errors import ConfigurationError

__all__ = ["ENDPOINT_ENV", "SERVICE", "get_parameter"]

#: boto3's service-specific endpoint variable for SSM.
ENDPOINT_ENV = "AWS_ENDPOINT_URL_SSM"
#: Signing name of the SSM API.
SERVICE = "ssm"


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
    answer = call(
        SERVICE,
        "AmazonSSM.GetParameter",
        {"Name": name, "WithDecryption": True},
        endpoint_env=ENDPOINT_ENV,
        label="SSM",
        what=f"SSM GetParameter {name!r}",
        environ=environ,
        clock=clock,
    )
    try:
        value = answer["Parameter"]["Value"]
    except (KeyError, TypeError) as exc:
        raise ConfigurationError(f"SSM answered an unreadable GetParameter: {exc}") from exc
    return str(value)
