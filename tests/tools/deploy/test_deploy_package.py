"""``warmline deploy package``: the sample agent's zip, its size, its bytecode, no boto3.

warmline itself is staged in ``copy`` mode here (``pip`` mode builds a wheel from the
source tree with build isolation, which downloads setuptools: no network in tests).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from deploy_projects import AGENT_DIR, agent_project, write_project

from warmline.cli import deploy as deploy_cli
from warmline.config.deploy import load_project
from warmline.tools.deploy.package import (
    PackageReport,
    build_zip,
    find_python,
    package_project,
    warmline_requirements,
)

#: The sample agent's zip must stay under this (it is ~0.6 MB; Lambda allows 50 MB).
AGENT_BUDGET_BYTES = 5 * 1024 * 1024
FORBIDDEN = ("boto3", "botocore", "s3transfer")


@pytest.fixture(scope="module")
def agent_zip(tmp_path_factory: pytest.TempPathFactory) -> PackageReport:
    out = tmp_path_factory.mktemp("pkg")
    reports = package_project(agent_project(), out, warmline_from="copy")
    assert [r.function for r in reports] == ["agent"]
    return reports[0]


def names(report: PackageReport) -> list[str]:
    with zipfile.ZipFile(report.path) as zf:
        return zf.namelist()


def test_sample_agent_package_is_small_and_has_no_boto3(agent_zip: PackageReport) -> None:
    size = agent_zip.path.stat().st_size
    print(
        f"\nsample agent zip: {size} bytes ({size / 1024 / 1024:.2f} MB), {agent_zip.files} files"
    )
    assert size == agent_zip.zipped_bytes
    assert size < AGENT_BUDGET_BYTES
    entries = names(agent_zip)
    assert "app.py" in entries and "warmline/__init__.py" in entries
    assert "warmline/agent/data/faq.index.sqlite3" in entries
    tops = {e.split("/", 1)[0] for e in entries}
    assert not tops & set(FORBIDDEN), tops
    assert agent_zip.heavy == []
    # The emulator, CLI, tools, config model and templates never run on Lambda.
    excluded = ("warmline/dev/", "warmline/cli/", "warmline/config/", "warmline/templates/")
    assert not [e for e in entries if e.startswith(excluded)]


def test_bytecode_is_compiled_for_the_runtime_and_unchecked(agent_zip: PackageReport) -> None:
    if find_python((3, 12)) is None:
        assert agent_zip.python == ""
        assert any("python3.12 not found" in n for n in agent_zip.notes)
        pytest.skip("no python3.12 on this machine")
    entries = set(names(agent_zip))
    sources = [e for e in entries if e.endswith(".py")]
    assert sources
    for source in sources:
        cached = importlib.util.cache_from_source(source).replace(
            sys.implementation.cache_tag, "cpython-312"
        )
        assert cached in entries, f"no bytecode for {source}"
    assert not [e for e in entries if e.endswith(f".{sys.implementation.cache_tag}.pyc")]
    with zipfile.ZipFile(agent_zip.path) as zf:
        header = zf.read("warmline/__pycache__/__init__.cpython-312.pyc")[:16]
    # PEP 552 flags: bit 0 = hash-based, bit 1 = check_source; 0b01 = unchecked hash.
    assert int.from_bytes(header[4:8], "little") == 0b01


def test_the_zip_alone_imports_the_handler_under_the_runtime(
    agent_zip: PackageReport, tmp_path: Path
) -> None:
    python = find_python((3, 12)) or sys.executable
    with zipfile.ZipFile(agent_zip.path) as zf:
        zf.extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import app; "
        "assert callable(app.handler); "
        "bad = [m for m in ('boto3', 'botocore') if m in sys.modules]; "
        "assert not bad, bad; print(app.__file__)"
    )
    # -I -S: no site-packages, no PYTHON* variables: only the zip's contents and stdlib.
    done = subprocess.run(
        [python, "-I", "-S", "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "app.py")


def test_zips_are_reproducible_whatever_the_file_times(tmp_path: Path) -> None:
    # Same inputs, same bytes (so unchanged functions are not redeployed). Tested on a
    # fixed tree: the live warmline source may be edited while the suite runs.
    staging = tmp_path / "staging"
    (staging / "pkg" / "__pycache__").mkdir(parents=True)
    (staging / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (staging / "pkg" / "__init__.py").write_text("")
    (staging / "pkg" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"\0" * 16)
    first = tmp_path / "a.zip"
    assert build_zip(staging, first) == (3, len("def handler(e, c):\n    return 1\n") + 16)
    for path in staging.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    second = tmp_path / "b.zip"
    build_zip(staging, second)
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with zipfile.ZipFile(first) as zf:
        assert [i.filename for i in zf.infolist()] == sorted(i.filename for i in zf.infolist())
        assert all((i.external_attr >> 16) & 0o444 == 0o444 for i in zf.infolist())


def test_a_vendored_heavy_dependency_is_reported_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_project(
        tmp_path,
        text='[functions.ws]\nhandler = "app.handler"\ncode = "code"\n'
        '[deploy]\nwarmline = "copy"\nruntime = "python3.11"\n',
    )
    vendored = tmp_path / "code" / "boto3"
    vendored.mkdir()
    (vendored / "__init__.py").write_text("__version__ = '0'\n")
    (tmp_path / "code" / "__pycache__").mkdir()
    (tmp_path / "code" / "__pycache__" / "stale.cpython-39.pyc").write_bytes(b"old")
    report = package_project(load_project(config), tmp_path / "out")[0]
    assert [name for name, _ in report.heavy] == ["boto3"]
    assert any("boto3" in problem for problem in report.problems(budget_mb=5))
    assert "__pycache__/stale.cpython-39.pyc" not in names(report)
    assert report.python  # python3.11 is this interpreter
    strict = ["package", "--config", str(config), "--out", str(tmp_path / "o2"), "--strict"]
    assert run_cli(strict) == 1
    assert "boto3" in capsys.readouterr().err


def test_the_aws_extra_is_left_to_the_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert any(r.startswith("boto3") for r in warmline_requirements(["aws"]))
    config = write_project(
        tmp_path,
        text='[functions.ws]\nhandler = "app.handler"\ncode = "code"\n'
        '[deploy]\nwarmline = "copy"\nextras = ["aws"]\nruntime = "python3.11"\n',
    )
    out = tmp_path / "out"
    # Nothing heavy, bytecode compiled, under budget: --strict passes.
    assert run_cli(["package", "--config", str(config), "--out", str(out), "--strict"]) == 0
    printed = capsys.readouterr().out
    assert "not bundled (the Lambda runtime provides them): boto3" in printed
    with zipfile.ZipFile(out / "ws.zip") as zf:
        assert not [n for n in zf.namelist() if n.startswith(FORBIDDEN)]


def test_an_unknown_extra_is_named(tmp_path: Path) -> None:
    from warmline.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no extra 'nope'"):
        warmline_requirements(["nope"])


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="warmline")
    deploy_cli.add_parser(parser.add_subparsers(dest="command"))
    args: Any = parser.parse_args(["deploy", *argv])
    return deploy_cli.run(args)


def test_cli_render_writes_both_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = AGENT_DIR / "warmline.toml"
    for target, name in (("sam", "template.json"), ("terraform", "main.tf")):
        out = tmp_path / target
        assert (
            run_cli(["render", "--target", target, "--config", str(config), "--out", str(out)]) == 0
        )
        assert (out / name).is_file()
    assert "sam deploy --guided" in capsys.readouterr().out
    bad = write_project(tmp_path / "bad", text="[functions]\n")
    assert run_cli(["render", "--target", "sam", "--config", str(bad)]) == 2


def test_pip_failures_and_missing_interpreters_are_reported() -> None:
    from warmline.tools.deploy.package import PackageError, _pip

    with pytest.raises(PackageError, match="pip failed"):
        _pip(["install", "--no-index", "--target", "/nonexistent-dir", "no-such-dist-xyz"])
    assert find_python((3, 99), "/nonexistent/python3.99") is None
    assert find_python(sys.version_info[:2]) is not None
