"""Signatures fail closed on every way an App is served: the Lambda adapter, ``warmline
serve`` and ``warmline dev``. With no Twilio token and no explicit opt-out an unsigned
``$connect`` is refused (403) with an ``unsigned_refused`` line; a token kept in Secrets
Manager or SSM is read and checked; a token source that fails refuses too.
"""

from __future__ import annotations

import asyncio
import io
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_harness import AGENT, serve_env, serve_process
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stores.moto_server import ENV as MOTO_ENV
from stores.moto_server import moto_server
from warmline import secrets
from warmline.adapters.aws_lambda import lambda_handler
from warmline.adapters.compose import allow_unsigned_from, from_environment
from warmline.core.app import App
from warmline.errors import ConfigurationError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event
from warmline.twilio.signature import SIGNATURE_HEADER, compute_signature

TOKEN = "sm-twilio-token-0123456789abcdef"
WSS = "wss://abc123.execute-api.us-east-1.amazonaws.com/prod"
SIGNING_ENV = (
    "TWILIO_AUTH_TOKEN",
    "TWILIO_AUTH_TOKEN_PARAMETER",
    "TWILIO_AUTH_TOKEN_SECRET_ID",
    "WARMLINE_ALLOW_UNSIGNED",
)


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment names no token and no opt-out."""
    for name in SIGNING_ENV:
        monkeypatch.delenv(name, raising=False)


def lambda_connect(app: App, headers: dict[str, str] | None = None) -> tuple[int, list[Any]]:
    log = StepLogger(io.StringIO(), keep=True)
    handler = lambda_handler(app, log=log)
    result = handler(websocket_event("CONNECT", headers=headers), LambdaContext())
    assert log.records is not None
    return result["statusCode"], log.records


def test_an_unsigned_connect_without_a_token_is_refused_by_the_lambda_adapter(
    no_token: None,
) -> None:
    status, records = lambda_connect(App(store=MemoryStore()))
    assert status == 403
    refused = [r for r in records if r["step"] == "unsigned_refused"]
    assert len(refused) == 1 and refused[0]["level"] == "error"
    assert "allow_unsigned" in refused[0]["error"]
    assert not [r for r in records if r["step"] == "connect"]  # no handler ran


def test_an_empty_token_variable_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WARMLINE_ALLOW_UNSIGNED", raising=False)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "")
    assert lambda_connect(App(store=MemoryStore()))[0] == 403


def test_the_opt_out_is_explicit_in_code_or_environment(
    no_token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lambda_connect(App(store=MemoryStore(), allow_unsigned=True))[0] == 200
    monkeypatch.setenv("WARMLINE_ALLOW_UNSIGNED", "1")
    assert lambda_connect(App(store=MemoryStore()))[0] == 200
    # the code's own decision wins over the environment's opt-out
    assert lambda_connect(App(store=MemoryStore(), allow_unsigned=False))[0] == 403


def test_an_ambiguous_opt_out_is_a_configuration_error() -> None:
    assert allow_unsigned_from({"WARMLINE_ALLOW_UNSIGNED": "TRUE"}) is True
    assert allow_unsigned_from({"WARMLINE_ALLOW_UNSIGNED": "0"}) is False
    with pytest.raises(ConfigurationError, match="WARMLINE_ALLOW_UNSIGNED"):
        from_environment({"WARMLINE_ALLOW_UNSIGNED": "maybe"})


def test_a_token_is_checked_whatever_the_opt_out_says(no_token: None) -> None:
    app = App(store=MemoryStore(), twilio_auth_token=TOKEN, public_url=WSS, allow_unsigned=True)
    assert lambda_connect(app)[0] == 403


# --- a token in Secrets Manager or SSM, read through the adapter's composition ----------
@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as url:
        import boto3

        kwargs: dict[str, Any] = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        boto3.client("secretsmanager", **kwargs).create_secret(
            Name="warmline/twilio", SecretString=TOKEN
        )
        boto3.client("ssm", **kwargs).put_parameter(
            Name="/warmline/twilio", Value=TOKEN, Type="SecureString"
        )
        yield url


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "endpoint"),
    [
        ("TWILIO_AUTH_TOKEN_SECRET_ID", "warmline/twilio", "AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        ("TWILIO_AUTH_TOKEN_PARAMETER", "/warmline/twilio", "AWS_ENDPOINT_URL_SSM"),
    ],
)
def test_a_token_kept_in_a_secret_store_is_read_and_checked(
    moto: str,
    no_token: None,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    endpoint: str,
) -> None:
    """What ``warmline deploy render`` sets for ``[deploy.secrets.TWILIO_AUTH_TOKEN]``."""
    for name, setting in {**MOTO_ENV, variable: value, endpoint: moto}.items():
        monkeypatch.setenv(name, setting)
    secrets._CACHE.clear()
    app = App(store=MemoryStore(), public_url=WSS)
    assert lambda_connect(app)[0] == 403  # unsigned
    good = {SIGNATURE_HEADER: compute_signature(WSS, None, TOKEN)}
    assert lambda_connect(app, good)[0] == 200


def test_a_failing_secret_source_refuses_and_says_why(
    no_token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unreachable Secrets Manager: 500 and ``secret_unavailable``, even with the opt-out."""
    for name, setting in MOTO_ENV.items():
        monkeypatch.setenv(name, setting)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_SECRET_ID", "warmline/twilio")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")
    monkeypatch.setenv("WARMLINE_ALLOW_UNSIGNED", "1")
    secrets._CACHE.clear()
    status, records = lambda_connect(App(store=MemoryStore()))
    assert status == 500
    failed = [r for r in records if r["step"] == "secret_unavailable"]
    assert len(failed) == 1 and "cannot reach Secrets Manager" in failed[0]["error"]


# --- warmline serve and warmline dev --------------------------------------------------
async def handshake_status(url: str) -> int:
    try:
        async with connect(url, open_timeout=20):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


@pytest.mark.slow
def test_an_unsigned_connect_without_a_token_is_refused_by_warmline_serve(
    tmp_path: Path,
) -> None:
    env = serve_env(tmp_path)
    for name in SIGNING_ENV:
        env.pop(name, None)
    with serve_process(env) as (_proc, base):
        ws = base.replace("http://", "ws://") + "/ws"
        assert asyncio.run(handshake_status(ws)) == 403
    with serve_process({**env, "WARMLINE_ALLOW_UNSIGNED": "1"}) as (_proc, base):
        ws = base.replace("http://", "ws://") + "/ws"
        assert asyncio.run(handshake_status(ws)) == 101


def dev_config(tmp_path: Path, *, opt_out: bool) -> Any:
    """The sample's warmline.toml, with or without its ``WARMLINE_ALLOW_UNSIGNED``."""
    from warmline.config import parse_config

    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    env = dict(data["functions"]["agent"]["environment"])
    assert env.get("WARMLINE_ALLOW_UNSIGNED") == "1"  # the sample opts out for dev
    if not opt_out:
        del env["WARMLINE_ALLOW_UNSIGNED"]
    env["WARMLINE_SQLITE_PATH"] = str(tmp_path / "sessions.sqlite3")
    data["functions"]["agent"]["environment"] = env
    data["schedules"] = {}
    return parse_config(data, base_dir=AGENT)


@pytest.mark.slow
@pytest.mark.parametrize(("opt_out", "status"), [(False, 403), (True, 101)])
def test_warmline_dev_with_the_sample_config_refuses_unsigned_unless_it_opts_out(
    tmp_path: Path, no_token: None, opt_out: bool, status: int
) -> None:
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    async def scenario() -> int:
        sink = LogSink(console=None, path=tmp_path / "dev.log")
        server = DevServer(dev_config(tmp_path, opt_out=opt_out), port=0, log_sink=sink)
        await server.start()
        try:
            return await handshake_status(server.ws_url)
        finally:
            await server.close()
            sink.close()

    assert "TWILIO_AUTH_TOKEN" not in os.environ
    assert asyncio.run(scenario()) == status
    if not opt_out:
        assert "unsigned_refused" in (tmp_path / "dev.log").read_text()
