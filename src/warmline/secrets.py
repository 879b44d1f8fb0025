"""Secrets at run time: the value from the environment, else from SSM Parameter Store.

Deploy templates never put a secret in a function's environment: they pass the
parameter's NAME (``X_PARAMETER``) and grant ``ssm:GetParameter`` on exactly that ARN
(``warmline deploy render``). :func:`secret` resolves ``X`` lazily, once per environment:

1. ``X`` itself, when set (local runs, tests);
2. ``X_PARAMETER``: SSM ``GetParameter`` with decryption (:func:`warmline.aws.ssm.get_parameter`:
   no boto3, since this runs on the first ``$connect`` of a cold environment).
   ``AWS_ENDPOINT_URL_SSM`` overrides the endpoint (tests use a local moto server);
   ``AWS_CA_BUNDLE`` is honoured, as boto3 does.

The value is cached for the life of the environment and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

__all__ = ["secret", "secret_getter"]

_CACHE: dict[str, str] = {}


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret ``name`` (see the module docstring), or None when neither is set.

    Raises:
        ConfigurationError: ``{name}_PARAMETER`` is set but the parameter cannot be read.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        return value
    parameter = env.get(f"{name}_PARAMETER")
    if not parameter:
        return None
    if parameter not in _CACHE:
        _CACHE[parameter] = _get_parameter(parameter, env)
    return _CACHE[parameter]


def secret_getter(name: str) -> Callable[[], str | None]:
    """A zero-argument callable for ``App(twilio_auth_token=...)``: read on first use."""
    return lambda: secret(name)


def _get_parameter(parameter: str, env: Mapping[str, str]) -> str:
    from warmline.aws.ssm import get_parameter

    return get_parameter(parameter, env)
