"""What an AWS client reads from the environment: keys, region, endpoint overrides.

Every AWS client in warmline reads these here, with boto3's names and precedence, so that
a function configured for boto3 (or by ``warmline dev``, which sets the same variables)
configures warmline alike:

* keys: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` (Lambda
  sets all three; its credentials are temporary, so the token is always there);
* region: ``AWS_REGION`` (set by Lambda), else ``AWS_DEFAULT_REGION``;
* endpoint: ``AWS_ENDPOINT_URL_{SERVICE}``, then (where boto3 would) ``AWS_ENDPOINT_URL``,
  both ignored when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is ``true``;
* CA bundle: ``AWS_CA_BUNDLE``, the file of CAs to trust for https endpoints.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from warmline.errors import ConfigurationError

__all__ = [
    "CA_BUNDLE_ENV",
    "Credentials",
    "ca_bundle_from_environment",
    "endpoint_from_environment",
    "region_from_environment",
]

#: boto3's variable naming the CA bundle to trust for AWS endpoints.
CA_BUNDLE_ENV = "AWS_CA_BUNDLE"
#: boto3's endpoint for every service, below the service-specific variables.
GLOBAL_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
#: boto3's switch that makes configured endpoint URLs be ignored.
IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"


def region_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_REGION`` (set by Lambda), else ``AWS_DEFAULT_REGION``, else None."""
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def endpoint_from_environment(
    service_env: str, environ: Mapping[str, str] | None = None, *, use_global: bool = True
) -> str | None:
    """The endpoint URL configured for a service, or None for AWS's own.

    Args:
        service_env: the service-specific variable, e.g. ``AWS_ENDPOINT_URL_LAMBDA``.
        environ: the environment to read (default ``os.environ``).
        use_global: fall back to ``AWS_ENDPOINT_URL``. The ``@connections`` endpoint is a
            base URL with the stage in it, which a service-wide URL cannot be.
    """
    env = os.environ if environ is None else environ
    if env.get(IGNORE_ENDPOINTS_ENV, "").lower() == "true":
        return None
    found = env.get(service_env) or (env.get(GLOBAL_ENDPOINT_ENV) if use_global else None)
    return found or None


def ca_bundle_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The CA bundle file ``AWS_CA_BUNDLE`` names, or None for the system's CAs."""
    env = os.environ if environ is None else environ
    return env.get(CA_BUNDLE_ENV) or None


class Credentials:
    """An access key pair and optional session token; ``repr`` never shows the secrets.

    Temporary credentials (Lambda's always are) come with a token, which must be sent and
    signed as ``X-Amz-Security-Token`` (docs/protocols.md §6).

    Args:
        access_key: ``AWS_ACCESS_KEY_ID``.
        secret_key: ``AWS_SECRET_ACCESS_KEY``.
        token: ``AWS_SESSION_TOKEN``, or None for long-term keys.

    Raises:
        ConfigurationError: the key id or the secret is empty.
    """

    __slots__ = ("access_key", "secret_key", "token")

    access_key: str
    secret_key: str
    token: str | None

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        if not access_key or not secret_key:
            raise ConfigurationError("AWS credentials need both an access key and a secret key")
        object.__setattr__(self, "access_key", access_key)
        object.__setattr__(self, "secret_key", secret_key)
        object.__setattr__(self, "token", token or None)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Read ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``.

        Raises:
            ConfigurationError: the key id or the secret is missing (outside Lambda, set
                them, or pass ``Credentials`` explicitly).
        """
        env = os.environ if environ is None else environ
        access_key = env.get("AWS_ACCESS_KEY_ID", "")
        secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
        if not access_key or not secret_key:
            raise ConfigurationError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(Lambda sets them) or pass Credentials(...)"
            )
        return cls(access_key, secret_key, env.get("AWS_SESSION_TOKEN") or None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return (self.access_key, self.secret_key, self.token) == (
            other.access_key,
            other.secret_key,
            other.token,
        )

    def __hash__(self) -> int:
        return hash((self.access_key, self.secret_key, self.token))

    def __repr__(self) -> str:
        # The key id is not a secret but still identifies an account: show its tail only.
        token = "None" if self.token is None else "'***'"
        return f"Credentials(access_key='…{self.access_key[-4:]}', secret_key='***', token={token})"
