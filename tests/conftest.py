"""Test-wide settings.

Hypothesis explores new random examples on every local run (that is how it finds bugs);
in CI (``CI=true``) it runs a fixed, derandomized set, so a green main stays green.
``tmp_path`` lives outside ``/tmp`` (below).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The Lambda Invoke API stand-in, for the Lambda client's and the offload dispatcher's tests.
from aws_stub import lambda_api  # noqa: E402, F401

# --- tmp_path outside /tmp ------------------------------------------------------------------
# Sandboxed Lambda environments (the emulator's default) have a /tmp of their own, as on
# Lambda, so a file a test writes under the host's /tmp is not there for the handler. Many
# tests signal a handler through a file (``release.touch()`` ends a handler's wait), read
# what a handler wrote (its pid), or write a function's code into ``tmp_path``; their
# folders live under /var/tmp instead (outside any project, so no config is found above
# them), which environments see as this machine's filesystem.
_TMP_ROOT = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path.home() / ".cache"


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory per test, removed afterwards, outside the host's ``/tmp``."""
    root = _TMP_ROOT / f"warmline-tests-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:40]
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
