"""The mutation-testing list stays honest: its documentation is generated from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_list_exactly_the_equivalent_mutants_of_the_config() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mutation.py"), "--equivalents"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = (ROOT / "docs" / "testing.md").read_text()
    marker = "Each row is one mutant left out of the score, as listed in `pyproject.toml`.\n\n"
    section = doc[doc.index(marker) + len(marker) :]
    assert generated.strip() in section
    assert generated.count("\n| `") == section.count("\n| `")  # no stale rows beside them


def test_every_listed_module_and_test_file_exists() -> None:
    listed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mutation.py"), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert listed
    for line in listed:
        module, tests = line.split(": ", 1)
        assert (ROOT / module).is_file(), module
        assert all((ROOT / test).is_file() for test in tests.split()), tests
