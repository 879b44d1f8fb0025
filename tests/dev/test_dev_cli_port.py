"""The port knobs: ``WARMLINE_PORT``, ``make dev PORT=...``; help texts without markup."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from warmline.cli import plain

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_dev_passes_port_only_when_given() -> None:
    def dry_run(*args: str) -> str:
        done = subprocess.run(
            ["make", "-n", "dev", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stdout.splitlines() if " dev --config " in line)

    assert dry_run("PORT=3002").endswith(
        "warmline dev --config examples/agent/warmline.toml --port 3002"
    )
    assert "--port" not in dry_run()  # WARMLINE_PORT (or 3001) then applies


def test_warmline_port_sets_the_default_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from warmline.cli import dev

    monkeypatch.setenv("WARMLINE_PORT", "3456")
    assert dev._default_port() == 3456
    monkeypatch.delenv("WARMLINE_PORT")
    assert dev._default_port() == dev.DEFAULT_PORT
    monkeypatch.setenv("WARMLINE_PORT", "x")
    with pytest.raises(SystemExit, match="WARMLINE_PORT='x' is not a port number"):
        dev._default_port()


def test_help_texts_show_no_restructuredtext_markup() -> None:
    assert plain("``warmline dev`` reads :mod:`warmline.config` and `x`") == (
        "warmline dev reads warmline.config and x"
    )
    for command in ("dev", "coldstart", "serve", "schedule", "deploy"):
        done = subprocess.run(
            [sys.executable, "-m", "warmline", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "`" not in done.stdout and ":mod:" not in done.stdout, command


def test_stack_name_feeds_aws_stackname_of_a_template() -> None:
    import argparse
    import io

    from warmline.cli import dev
    from warmline.templates.cli_options import config_from_args
    from warmline.templates.report import SourceError

    parser = argparse.ArgumentParser()
    dev.add_parser(parser.add_subparsers())
    template = ROOT / "tests" / "templates" / "fixtures" / "sam_chat" / "template.yaml"
    args = parser.parse_args(["dev", "--template", str(template), "--stack-name", "demo"])
    config = config_from_args(args, out=io.StringIO())
    assert config is not None
    stacks = {f.environment.get("STACK") for f in config.functions.values()}
    assert "demo-us-east-1" in stacks
    with pytest.raises(SourceError, match="--stack-name needs --template"):
        config_from_args(parser.parse_args(["dev", "--stack-name", "demo"]))
