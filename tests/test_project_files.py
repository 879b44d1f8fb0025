"""The project's own files: changelog, contributing guide, security policy, pre-commit, make.

They drift silently (a target renamed, a hook pointing at a tool that moved), so each claim
they make that the repository can check is checked here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (test extra)")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


def test_the_changelog_keeps_a_changelog_with_unreleased_on_top() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert versions and versions[0] == "Unreleased"
    # Each version heading has its link, and only Keep a Changelog's section names are used.
    for version in versions:
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, flags=re.M), version
    sections = set(re.findall(r"^### (\w+)", text, flags=re.M))
    assert sections and sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed",
                                      "Security"}  # fmt: skip


def test_contributing_names_the_two_commands_and_only_real_targets() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert "make dev" in text and "make test" in text
    named = set(re.findall(r"`make ([\w-]+)", text))
    assert named - makefile_targets() == set()
    for folder in re.findall(r"^  (\w+)/ ", text, flags=re.M):
        assert (ROOT / "src" / "warmline" / folder).is_dir(), folder
    for script in re.findall(r"(bench/\w+\.py)", text):
        assert (ROOT / script).is_file(), script


def test_the_security_policy_says_how_to_report() -> None:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    assert "## Reporting a vulnerability" in text
    assert "https://github.com/warmline/warmline/security/advisories/new" in text
    assert (ROOT / "docs" / "security.md").is_file()


def test_pre_commit_runs_ruff_and_mypy_from_the_project_venv() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "mypy"} <= set(hooks)
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    for hook_id, tool in (("ruff", "ruff check"), ("ruff-format", "ruff format"), ("mypy", "mypy")):
        assert hooks[hook_id]["entry"].startswith(f".venv/bin/{tool}")
        assert f"$(BIN)/{tool}" in make, f"make lint no longer runs {tool}"


def test_make_test_builds_the_package_and_the_matrix_covers_the_classifiers() -> None:
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_deps = re.search(r"^test: (.*)$", make, flags=re.M)
    assert test_deps is not None and "package-check" in test_deps.group(1).split()
    assert {"package-check", "test-matrix", "sam-cli", "container-lock"} <= makefile_targets()
    script = (ROOT / "scripts" / "test_matrix.py").read_text(encoding="utf-8")
    minors = re.search(r"^MINORS = \(([\d, ]+)\)", script, flags=re.M)
    assert minors is not None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    classified = [
        int(c.rsplit(".", 1)[1])
        for c in project["classifiers"]
        if re.search(r"Python :: 3\.\d+$", c)
    ]
    assert [int(m) for m in minors.group(1).split(",") if m.strip()] == classified
