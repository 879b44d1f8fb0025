"""``warmline dev``'s access flags and banner, through the real command."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dev_process import dev_exits
from web_helpers import reap

from warmline.cli import dev as dev_cli

FIXTURES = Path(__file__).parent / "gateway" / "fixtures"
TOKEN = "cli-test-control-token-0123456"
CONFIG = f"""
[functions.env]
handler = "env.handler"
code = "{FIXTURES}"

[websocket]
stage = "local"

[websocket.routes]
"$default" = {{ function = "env", route_response = true }}

[http]
function = "env"
"""


def _banner(cwd: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Stdout up to the last banner line and stderr, of ``warmline dev`` stopped by SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "warmline", "dev", "--port", "0", "--no-log-file", *flags],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "call --twiml" in line:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        return "".join(lines), proc.stderr.read()
    finally:
        reap(proc)


def test_the_banner_prints_the_token_url_and_a_command_that_runs_here(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(CONFIG)
    out, err = _banner(tmp_path, env={dev_cli.CONTROL_TOKEN_ENV: TOKEN})
    assert f"/_warmline/dashboard?token={TOKEN}" in out
    assert "Control:      /_warmline/events and /faults: loopback, or with the token" in out
    command = f"{shlex.quote(sys.executable)} -m warmline call --twiml http://127.0.0.1:"
    assert command in out, out
    assert ".venv/bin/warmline" not in out
    assert "WARNING" not in err  # loopback


def test_the_banner_without_a_token_prints_no_token_url(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(CONFIG)
    out, _ = _banner(tmp_path, env={dev_cli.CONTROL_TOKEN_ENV: ""})
    assert "token=" not in out and "Control:" not in out
    assert "/_warmline/dashboard\n" in out


def test_a_weak_control_token_stops_warmline_dev(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(CONFIG)
    done = dev_exits(tmp_path, "--control-token", "short")
    assert done.returncode == 2
    assert "at least 16 characters" in done.stderr


def test_self_command_names_what_runs_warmline_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "bin" / "warmline"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "dev"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert dev_cli.self_command() == "bin/warmline"  # as typed, relative to here
    monkeypatch.setenv("PATH", str(script.parent))
    assert dev_cli.self_command() == "warmline"  # what PATH finds
    monkeypatch.setattr(sys, "argv", ["/somewhere/warmline/__main__.py", "dev"])
    assert dev_cli.self_command().endswith(" -m warmline")
