"""``.env``, ``--env-vars`` and ``--pass-env`` through a running ``warmline dev``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dev_process import DevProcess, ask, dev_exits, echo_config
from websockets.sync.client import connect

from warmline.config import load_config
from warmline.dev import envvars
from warmline.errors import ConfigurationError

APP = """
import os

def handler(event, context):
    return {"statusCode": 200, "body": os.environ.get(event["body"], "<unset>")}
"""


def _project(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    extra = '[functions.app.environment]\nDECLARED = "toml"\nOVERRIDE = "toml"\n'
    (tmp_path / "warmline.toml").write_text(echo_config(code, extra=extra))
    return code


@pytest.mark.slow
def test_each_source_reaches_the_function_and_the_banner_lists_it(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / ".env").write_text("DOT=from-dotenv\nOVERRIDE=dotenv\nAPI_TOKEN=s3cr3t-value\n")
    env_json = tmp_path / "env.json"
    env_json.write_text(
        json.dumps({"Parameters": {"PARAM": "p", "OVERRIDE": "param"}, "app": {"FN_ONLY": 7}})
    )
    shell = {"SHELL_VAR": "from-shell", "NOT_PASSED": "leak"}
    flags = ("--env-vars", str(env_json), "--pass-env", "SHELL_VAR")
    with DevProcess(tmp_path, *flags, env=shell) as dev, connect(dev.ws_url) as ws:
        answers = {
            name: ask(ws, name)
            for name in (
                "DECLARED", "DOT", "PARAM", "FN_ONLY", "SHELL_VAR", "OVERRIDE", "API_TOKEN",
                "NOT_PASSED",
            )
        }  # fmt: skip
        banner = dev.banner
    assert answers == {
        "DECLARED": "toml",
        "DOT": "from-dotenv",
        "PARAM": "p",
        "FN_ONLY": "7",
        "SHELL_VAR": "from-shell",
        "OVERRIDE": "param",  # --env-vars wins over .env, which wins over warmline.toml
        "API_TOKEN": "s3cr3t-value",
        "NOT_PASSED": "<unset>",
    }
    assert "variables of app:" in banner
    for line in (
        "DECLARED=toml  (warmline.toml)",
        "DOT=from-dotenv  (.env)",
        "PARAM=p  (--env-vars)",
        "FN_ONLY=7  (--env-vars app)",
        "SHELL_VAR=from-shell  (--pass-env)",
        "OVERRIDE=param  (--env-vars)",
        "API_TOKEN=****  (.env)",
    ):
        assert line in banner, banner
    assert "s3cr3t-value" not in banner
    assert "NOT_PASSED" not in banner
    listed = banner.split("Lambda's and the emulator's:")[1].splitlines()[0]
    assert "AWS_LAMBDA_FUNCTION_NAME" in listed and "HTTPS_PROXY" in listed


def test_a_pass_env_name_the_shell_does_not_set_is_refused(tmp_path: Path) -> None:
    _project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "WL_UNSET_VAR"}
    done = dev_exits(tmp_path, "--pass-env", "WL_UNSET_VAR", env=env)
    assert done.returncode == 2
    assert "--pass-env WL_UNSET_VAR: this shell does not set WL_UNSET_VAR" in done.stderr


def test_env_vars_naming_an_unknown_function_is_refused(tmp_path: Path) -> None:
    _project(tmp_path)
    env_json = tmp_path / "env.json"
    env_json.write_text(json.dumps({"Nope": {"A": "b"}}))
    config = load_config(tmp_path / "warmline.toml")
    with pytest.raises(ConfigurationError, match="Nope: no function has this name"):
        envvars.apply(config, env_vars=env_json, environ={})
    env_json.write_text(json.dumps({"Parameters": {"A": ["list"]}}))
    with pytest.raises(ConfigurationError, match="must be a string or a number"):
        envvars.apply(config, env_vars=env_json, environ={})


def test_masked_hides_secret_looking_names_and_values() -> None:
    assert envvars.masked("TWILIO_AUTH_TOKEN", "abc") == "****"
    assert envvars.masked("OPENAI", "sk-123") == "****"
    assert envvars.masked("TABLE_NAME", "calls") == "calls"
