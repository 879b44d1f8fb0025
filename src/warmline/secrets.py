"""Secrets at run time: the value from the environment, else from SSM Parameter Store.

Deploy templates never put a secret in a function's environment: they pass the
parameter's NAME (``X_PARAMETER``) and grant ``ssm:GetParameter`` on exactly that ARN
(``warmline deploy render``). :func:`secret` resolves ``X`` lazily, once per environment:

1. ``X`` itself, when set (local runs, tests);
2. ``X_PARAMETER``: SSM ``GetParameter`` with decryption, over a SigV4-signed POST (the
   JSON protocol: ``X-Amz-Target: AmazonSSM.GetParameter``) on
   :mod:`warmline.connections.http1`. No boto3: this runs on the first ``$connect`` of a
   cold environment, where boto3 would cost ~160 ms to import (ANCHORS.md), and no
   ``http.client`` (~28 ms). ``AWS_ENDPOINT_URL_SSM`` overrides the endpoint (tests use a
   local moto server); ``AWS_CA_BUNDLE`` is honoured, as boto3 does.

The value is cached for the life of the environment and never logged.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping

from warmline.errors import ConfigurationError

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
    from warmline.connections.http1 import (
        CA_BUNDLE_ENV,
        Http1Connection,
        ProtocolError,
        client_tls,
        message,
        split_endpoint,
    )
    from warmline.connections.sigv4 import Credentials, SigV4Signer
    from warmline.offload.lambda_invoke import sign_request

    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = env.get("AWS_ENDPOINT_URL_SSM") or f"https://ssm.{region}.amazonaws.com"
    scheme, hostname, port, host, _base = split_endpoint(endpoint, "SSM")
    body = json.dumps({"Name": parameter, "WithDecryption": True}).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonSSM.GetParameter",
    }
    signer = SigV4Signer(region, "ssm")
    signed = sign_request(
        signer, "POST", host, "/", headers, body, Credentials.from_environment(env), time.time()
    )
    tls = client_tls(env.get(CA_BUNDLE_ENV)) if scheme == "https" else None
    conn = Http1Connection(hostname, port, 5.0, tls)
    try:
        request = message("POST", "/", [*headers.items(), *signed.items(), ("Host", host)], body)
        response = conn.request(request)
    except (OSError, ProtocolError, ValueError) as exc:
        raise ConfigurationError(f"cannot reach SSM for parameter {parameter!r}: {exc}") from exc
    finally:
        conn.close()
    data = response.body
    if response.status != 200:
        kind = response.headers.get("x-amzn-errortype") or str(response.status)
        raise ConfigurationError(f"SSM GetParameter {parameter!r} failed: {kind.split(':')[0]}")
    try:
        value = json.loads(data)["Parameter"]["Value"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"SSM answered an unreadable GetParameter: {exc}") from exc
    return str(value)
