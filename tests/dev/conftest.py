"""The emulator's tests: ``tmp_path`` outside ``/tmp``.

Sandboxed environments (the default) have a ``/tmp`` of their own, as on Lambda, so a file
the test writes under the host's ``/tmp`` is not there for the handler. Many tests signal a
handler through a file (``release.touch()`` ends a handler's wait) or write a function's
code into ``tmp_path``; their folders live under the worktree's ``.warmline/`` instead,
which environments see as this machine's filesystem.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2] / ".warmline" / "test-tmp"


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory per test, removed afterwards, outside the host's ``/tmp``."""
    _ROOT.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:40]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_ROOT))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
