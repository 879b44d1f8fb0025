"""The documentation site, built once per test session with ``mkdocs build --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_site(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Run ``mkdocs build --strict`` for ``config`` into ``out``; the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"]
        + ["--config-file", str(config), "--site-dir", str(out)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site (the ``docs`` extra: ``make`` installs it)."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e .[docs])")
    out = tmp_path_factory.mktemp("site")
    done = build_site(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out
