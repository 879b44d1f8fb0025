"""Secrets at run time: the value from the environment, else from SSM or Secrets Manager.

Deploy templates never put a secret in a function's environment: they pass the
parameter's or secret's NAME and grant read access on exactly that ARN (``warmline deploy
render``, ``[deploy.secrets.X]``). :func:`secret` resolves ``X`` lazily, once per
environment, from the first source that is set:

1. ``X`` itself, when non-empty (local runs, tests); an empty ``X`` counts as unset;
2. ``X_PARAMETER``: SSM ``GetParameter`` with decryption
   (:func:`warmline.aws.ssm.get_parameter`; ``AWS_ENDPOINT_URL_SSM`` overrides the endpoint);
3. ``X_SECRET_ID``: Secrets Manager ``GetSecretValue``
   (:func:`warmline.aws.secretsmanager.get_secret_string`;
   ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` overrides the endpoint). The ``SecretString`` is the
   value, except when it is a JSON object (a "key/value" secret, as the console makes
   them): then the value is the string under the key ``X`` (the variable's own name).

Neither reader imports boto3: this runs on the first ``$connect`` of a cold environment.
A source that is configured but fails (unreachable, refused, missing, empty, both
``X_PARAMETER`` and ``X_SECRET_ID`` set) raises :class:`~warmline.errors.ConfigurationError`
and caches nothing, so the caller refuses this request and the next one tries again; a
configured secret never turns into "no secret". The value is cached for the life of the
environment and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from warmline.errors import ConfigurationError

__all__ = ["PARAMETER_SUFFIX", "SECRET_ID_SUFFIX", "secret", "secret_getter"]

#: ``X_PARAMETER`` names X's SSM parameter (``warmline deploy render``, ``ssm = ...``).
PARAMETER_SUFFIX = "_PARAMETER"
#: ``X_SECRET_ID`` names X's Secrets Manager secret (``secretsmanager = ...``).
SECRET_ID_SUFFIX = "_SECRET_ID"

_CACHE: dict[tuple[str, str, str], str] = {}


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secret ``name`` (see the module docstring), or None when no source is set.

    Raises:
        ConfigurationError: a source is set but cannot be read, or reads empty; or both
            ``{name}_PARAMETER`` and ``{name}_SECRET_ID`` are set.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value:
        return value
    parameter = env.get(name + PARAMETER_SUFFIX)
    secret_id = env.get(name + SECRET_ID_SUFFIX)
    if parameter and secret_id:
        raise ConfigurationError(
            f"both {name}{PARAMETER_SUFFIX} and {name}{SECRET_ID_SUFFIX} are set: "
            "name one place the secret lives"
        )
    if parameter:
        key = ("ssm", parameter, name)
    elif secret_id:
        key = ("secretsmanager", secret_id, name)
    else:
        return None
    if key not in _CACHE:
        read = _get_parameter(parameter, env) if parameter else _get_secret(secret_id, name, env)
        if not read:
            raise ConfigurationError(f"the secret {name} read from {key[0]} {key[1]!r} is empty")
        _CACHE[key] = read
    return _CACHE[key]


def secret_getter(name: str) -> Callable[[], str | None]:
    """A zero-argument callable for ``App(twilio_auth_token=...)``: read on first use."""
    return lambda: secret(name)


def _get_parameter(parameter: str, env: Mapping[str, str]) -> str:
    from warmline.aws.ssm import get_parameter

    return get_parameter(parameter, env)


def _get_secret(secret_id: str | None, name: str, env: Mapping[str, str]) -> str:
    """The Secrets Manager value: the string, or its JSON object's ``name`` key."""
    from warmline.aws.secretsmanager import get_secret_string

    assert secret_id
    text = get_secret_string(secret_id, env)
    if not text.lstrip().startswith("{"):
        return text
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return text  # a string that merely starts with "{"
    if not isinstance(data, dict):
        return text
    value = data.get(name)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"Secrets Manager secret {secret_id!r} is a JSON object without a string key {name!r}"
        )
    return value
