"""The layer contract in pyproject.toml (import-linter) holds, and breaking it fails the check.

`make lint` runs ``lint-imports`` on the tree itself; these tests run it on a copy of the
package so that a deliberate violation can be written into it without touching the tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tmp_path: Path, violation: tuple[str, str] | None = None) -> str:
    """Run lint-imports with the project's contracts on a copy of src/, with one line added.

    Args:
        violation: (module file relative to src/warmline, import line) to append.

    Returns:
        The command's output; raises when the exit status is not the one expected.
    """
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "warmline", src / "warmline", ignore=_caches)
    if violation is not None:
        module, line = violation
        with (src / "warmline" / module).open("a") as file:
            file.write(f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    expected = 0 if violation is None else 1
    assert done.returncode == expected, done.stdout + done.stderr
    return done.stdout


def _caches(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    out = lint_imports(tmp_path)
    assert "0 broken" in out


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/events.py", "import warmline.stores.sqlite", "core takes events"),
        ("core/routing.py", "import socket", "core takes events"),
        ("core/app.py", "import os, asyncio", "core takes events"),
        ("agent/kb.py", "import warmline.dev.server", "what runs on AWS"),
        ("adapters/aws_lambda.py", "import warmline.config", "what runs on AWS"),
        ("aws/client.py", "import warmline.core.app", "the AWS layer"),
        ("stores/base.py", "import warmline.adapters.compose", "only the edge composes"),
        ("config/model.py", "import warmline.templates.plan", "no template format"),
        ("twilio/prewarm.py", "import warmline.offload", "do not depend on offload"),
        ("dev/runtime/zygote.py", "import asyncio", "import nothing asynchronous"),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    out = lint_imports(tmp_path, (module, line))
    broken = out[out.index("Broken contracts") :]
    assert contract in broken
