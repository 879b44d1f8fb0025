"""Secrets Manager ``GetSecretValue``, on :mod:`warmline.aws`.

The JSON protocol (:mod:`warmline.aws.json_api`): ``X-Amz-Target:
secretsmanager.GetSecretValue``, service ``secretsmanager``. Like the SSM client it runs
once per environment, on the first ``$connect`` of a cold one (:mod:`warmline.secrets`).

The endpoint is ``https://secretsmanager.{region}.amazonaws.com`` unless
``AWS_ENDPOINT_URL_SECRETS_MANAGER`` (boto3's name for the service id "Secrets Manager"),
then ``AWS_ENDPOINT_URL``, says otherwise; ``AWS_CA_BUNDLE`` is honoured.

Only ``SecretString`` is read: a binary secret (``SecretBinary``) cannot be a token or
key a function reads from its environment, so it is a configuration error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from warmline.aws.json_api import call
from warmline.errors import ConfigurationError

__all__ = ["ENDPOINT_ENV", "SERVICE", "get_secret_string"]

#: boto3's service-specific endpoint variable for Secrets Manager.
ENDPOINT_ENV = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
#: Signing name of the Secrets Manager API.
SERVICE = "secretsmanager"


def get_secret_string(
    secret_id: str,
    environ: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> str:
    """The current (``AWSCURRENT``) ``SecretString`` of ``secret_id``.

    Args:
        secret_id: the secret's name or ARN, e.g. ``warmline/twilio``.
        environ: where to read credentials, region and endpoint (default ``os.environ``).
        clock: wall-clock epoch seconds for ``X-Amz-Date``.

    Raises:
        ConfigurationError: no credentials, Secrets Manager could not be reached, refused
            (``ResourceNotFoundException``, ``AccessDeniedException``... named, never the
            value), or the secret has no ``SecretString``.
    """
    answer = call(
        SERVICE,
        "secretsmanager.GetSecretValue",
        {"SecretId": secret_id},
        endpoint_env=ENDPOINT_ENV,
        label="Secrets Manager",
        what=f"Secrets Manager GetSecretValue {secret_id!r}",
        environ=environ,
        clock=clock,
    )
    value = answer.get("SecretString")
    if not isinstance(value, str):
        raise ConfigurationError(
            f"Secrets Manager secret {secret_id!r} has no SecretString (a binary secret?)"
        )
    return value
