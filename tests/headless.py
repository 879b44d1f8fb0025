"""Debian's ``chromium`` under Playwright, for the browser tests (never a browser download).

A browser test module sets ``pytestmark = headless.MARKS``: slow, and skipped where chromium
is not installed (``make chromium`` installs it as root). :func:`launched` starts it
headless with the module's own flags.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
INSTALLED = Path(CHROMIUM).exists()
MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not INSTALLED,
        reason="Debian's chromium is not installed (make chromium, or apt-get install -y chromium)",
    ),
]
#: ``playwright.sync_api`` when chromium is installed (a module without Playwright is
#: skipped at import), else None: the module's tests skip by :data:`MARKS`.
sync_api: Any = pytest.importorskip("playwright.sync_api") if INSTALLED else None


@contextmanager
def launched(args: Sequence[str]) -> Iterator[Any]:
    """A headless chromium with ``args``, closed afterwards."""
    assert sync_api is not None
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(args), headless=True)
        try:
            yield browser
        finally:
            browser.close()
