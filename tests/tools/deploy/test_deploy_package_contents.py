"""``warmline deploy package``: what of a project folder may go into a Lambda zip.

A code directory is usually the project folder itself, so it holds ``.env`` files,
``warmline dev``'s ``.warmline/`` (sessions, logs), Terraform state, rendered templates,
tests and virtualenvs. None of them ship; secret-looking files that remain make
``--strict`` fail; and two packagings of the same folder are the same bytes, also after a
``warmline dev`` run in it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from warmline.cli import deploy as deploy_cli
from warmline.config.deploy import load_project
from warmline.errors import ConfigurationError
from warmline.tools.deploy.contents import Excluder, secret_findings
from warmline.tools.deploy.package import PackageReport, _drop_install_paths, package_project

ECHO = Path(__file__).resolve().parents[3] / "examples" / "echo" / "app.py"
TOKEN = "contents-test-token"
CONFIG = f"""
[functions.ws]
handler = "app.handler"
code = "."
environment = {{ TWILIO_AUTH_TOKEN = "{TOKEN}" }}

[websocket]
stage = "dev"

[websocket.routes]
"$connect" = "ws"
"$disconnect" = "ws"
"$default" = "ws"

[deploy]
warmline = "copy"
runtime = "python3.11"
"""
#: What a project folder accumulates and what must stay out of the zip.
LOCAL_FILES = {
    ".env": "TWILIO_AUTH_TOKEN=0123456789abcdef0123456789abcdef\n",
    ".env.production": "DATABASE_PASSWORD=hunter2hunter2\n",
    ".warmline/dev-logs.jsonl": '{"route":"prompt"}\n',
    ".warmline/sessions.sqlite3": "not really a database",
    "deploy/terraform/terraform.tfstate": '{"resources": []}',
    "deploy/terraform/terraform.tfstate.backup": '{"resources": []}',
    "deploy/terraform/main.tf": "# rendered",
    "deploy/sam/template.json": "{}",
    "infra/prod.tfstate": "{}",
    "tests/test_app.py": "def test_x():\n    pass\n",
    ".git/config": "[core]\n",
    ".venv/lib/site.py": "",
    "myenv/pyvenv.cfg": "home = /usr/bin\n",
    "myenv/lib/python3.11/site-packages/x.py": "",
    ".pytest_cache/v/cache/lastfailed": "{}",
    "__pycache__/app.cpython-311.pyc": "",
    "node_modules/left-pad/index.js": "",
}
#: What a project holds that does ship.
CODE_FILES = {
    "pkg/__init__.py": "",
    "pkg/answers.py": "ANSWER = 42\n",
    "data/faq.md": "# FAQ\n",
    "deploy_helpers.py": "X = 1\n",  # not the rendered deploy/ folder
}


def make_project(root: Path, extra_config: str = "", files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ECHO, root / "app.py")
    for rel, text in {**CODE_FILES, **LOCAL_FILES, **(files or {})}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    config = root / "warmline.toml"
    config.write_text(CONFIG + extra_config)
    return config


def entries(report: PackageReport) -> list[str]:
    with zipfile.ZipFile(report.path) as zf:
        return zf.namelist()


def own_entries(report: PackageReport) -> set[str]:
    """The zip's entries that came from the project (not warmline, not bytecode)."""
    return {
        e
        for e in entries(report)
        if not e.startswith("warmline/") and "__pycache__" not in e and ".dist-info" not in e
    }


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="warmline")
    deploy_cli.add_parser(parser.add_subparsers(dest="command"))
    args: Any = parser.parse_args(["deploy", *argv])
    return deploy_cli.run(args)


def test_env_files_tfstate_dev_logs_tests_and_venvs_never_ship(tmp_path: Path) -> None:
    config = make_project(tmp_path / "proj")
    report = package_project(load_project(config), tmp_path / "out")[0]
    assert own_entries(report) == {"app.py", "warmline.toml", *CODE_FILES}
    names = entries(report)
    for secret in (".env", "tfstate", ".warmline", "dev-logs", "tests/", ".git/", "myenv/"):
        assert not [n for n in names if secret in n], secret
    assert {".env", ".warmline/", "deploy/sam/", "deploy/terraform/", "myenv/"} <= set(
        report.excluded
    )
    assert any(".env" in note and "left out" in note for note in report.notes)
    assert report.secrets == []


def test_the_project_and_function_exclude_lists_add_to_the_built_in_ones(
    tmp_path: Path,
) -> None:
    extra = (
        'exclude = ["docs/", "*.csv", "scripts/*.sh"]\n'
        "[functions.worker]\n"
        'handler = "app.handler"\ncode = "."\n'
        "[deploy.functions.worker]\n"
        'exclude = ["data/"]\n'
    )
    files = {
        "docs/guide.md": "",
        "pkg/table.csv": "a,b\n",
        "scripts/run.sh": "",
        "scripts/keep.py": "",
        "pkg/scripts/run.sh": "",  # anchored: only the top-level scripts/ is meant
    }
    config = make_project(tmp_path / "proj", extra, files)
    reports = {r.function: r for r in package_project(load_project(config), tmp_path / "out")}
    ws, worker = own_entries(reports["ws"]), own_entries(reports["worker"])
    for kept in ("scripts/keep.py", "pkg/scripts/run.sh", "data/faq.md"):
        assert kept in ws
    for dropped in ("docs/guide.md", "pkg/table.csv", "scripts/run.sh"):
        assert dropped not in ws and dropped not in worker
    assert "data/faq.md" not in worker  # the function's own list, on top of the project's
    assert ws - worker == {"data/faq.md"}
    assert not any("same build" in note for note in reports["worker"].notes)


@pytest.mark.parametrize("pattern", ["/abs", "../up", "a/../b", "!keep", "/", ""])
def test_an_exclude_pattern_outside_the_code_directory_is_refused(
    tmp_path: Path, pattern: str
) -> None:
    config = make_project(tmp_path / "proj", f"exclude = [{pattern!r}]\n".replace("'", '"'))
    with pytest.raises(ConfigurationError, match="deploy.exclude"):
        load_project(config)


def test_secret_looking_files_make_strict_fail_and_exclude_clears_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_key = "AKIA" + "Q3ZN7Y4K2W8R5T1P"  # in two parts: no scanner flags this file
    files = {
        "certs/prod.pem": "certificate",
        "settings.py": f'KEY_ID = "{fake_key}"\n',
        "notes/keys.txt": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
        "conf/local.cfg": "TWILIO_AUTH_TOKEN=0123456789abcdef\n",
        "id_ed25519": "key",
    }
    config = make_project(tmp_path / "proj", files=files)
    out = tmp_path / "out"
    assert run_cli(["package", "--config", str(config), "--out", str(out), "--strict"]) == 1
    err = capsys.readouterr().err
    for name in files:
        assert name in err, name
    assert "an AWS access key id" in err and "a PEM private key" in err
    # Without --strict the zip is built and the findings are warnings.
    assert run_cli(["package", "--config", str(config), "--out", str(out)]) == 0
    excluded = 'exclude = ["certs/", "settings.py", "notes/", "conf/", "id_*"]\n'
    config.write_text(CONFIG + excluded)
    assert run_cli(["package", "--config", str(config), "--out", str(out), "--strict"]) == 0


def test_code_that_reads_secrets_and_documentation_examples_are_not_findings(
    tmp_path: Path,
) -> None:
    files = {
        "a.py": 'TWILIO_AUTH_TOKEN = os.environ["TWILIO_AUTH_TOKEN"]\n',
        "b.md": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
        "c.env.example": "",
        "d.txt": "API_KEY=${API_KEY}\nSECRET_NAME=changeme-please\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    found = secret_findings([(tmp_path / rel, rel) for rel in files])
    assert found == []


def test_patterns_match_like_gitignore() -> None:
    ex = Excluder(["*.log", "build/", "conf/local.toml", "scripts/*"], ["deploy/sam"])
    assert ex.excluded("a/b/x.log", False) and ex.excluded("x.log", False)
    assert ex.excluded("build", True) and not ex.excluded("build", False)
    assert ex.excluded("conf/local.toml", False) and not ex.excluded("x/conf/local.toml", False)
    assert ex.excluded("scripts/a.sh", False) and not ex.excluded("scripts/a/b.sh", False)
    assert ex.excluded("deploy/sam", True) and not ex.excluded("deploy", True)


def test_pip_install_paths_are_dropped_from_the_metadata(tmp_path: Path) -> None:
    info = tmp_path / "warmline-0.1.dist-info"
    info.mkdir()
    (info / "direct_url.json").write_text('{"url": "file:///tmp/warmline-src-a1b2c3"}')
    (info / "RECORD").write_text(
        "warmline/__init__.py,sha256=abc,10\n"
        "warmline-0.1.dist-info/direct_url.json,sha256=def,40\n"
        "warmline-0.1.dist-info/RECORD,,\n"
    )
    _drop_install_paths(tmp_path)
    assert not (info / "direct_url.json").exists()
    assert (info / "RECORD").read_text() == (
        "warmline/__init__.py,sha256=abc,10\nwarmline-0.1.dist-info/RECORD,,\n"
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_two_packagings_are_the_same_bytes_also_after_a_warmline_dev_run(tmp_path: Path) -> None:
    """The zip depends on the code, not on what ``warmline dev`` wrote beside it: its
    sessions and logs land in the project's ``.warmline/`` (the session file 0600) and the
    zip stays byte for byte the same."""
    from warmline.config import load_config
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer
    from warmline.tools.call import Step, run_call

    root = tmp_path / "proj"
    config = make_project(root)
    for rel in LOCAL_FILES:  # a fresh project: only what the dev run writes
        (root / rel).unlink()
    shutil.rmtree(root / ".warmline")
    first = package_project(load_project(config), tmp_path / "a")[0]

    async def dev_run() -> Any:
        (root / ".warmline").mkdir()  # as `warmline dev` makes it for its --log-file
        sink = LogSink(console=None, path=root / ".warmline" / "dev-logs.jsonl")
        server = DevServer(load_config(config), port=0, log_sink=sink)
        await server.start()
        try:
            # Signed over the public wss:// URL, as Twilio signs the TwiML's url.
            public = server.ws_url.replace("ws://", "wss://", 1)
            steps = [Step("say", "hello")]
            return await run_call(
                public, steps, auth_token=TOKEN, connect_url=server.ws_url, turn_timeout_s=20
            )
        finally:
            await server.close()
            sink.close()

    call = asyncio.run(dev_run())
    assert call.rejected is None and call.turns and call.turns[0].complete, call.to_dict()
    sessions = root / ".warmline" / "sessions.sqlite3"
    assert sessions.is_file() and sessions.stat().st_mode & 0o777 == 0o600
    assert (root / ".warmline" / "dev-logs.jsonl").stat().st_size > 0
    second = package_project(load_project(config), tmp_path / "b")[0]
    assert digest(first.path) == digest(second.path)
    assert ".warmline/" in second.excluded
