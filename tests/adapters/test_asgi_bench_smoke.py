"""``bench/container_vs_lambda.py --quick`` runs both targets in one run and reports both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_bench_measures_serve_and_dev_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "container_vs_lambda.py"),
            "--quick",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert set(results) == {"warmline serve", "warmline dev"}
    for row in results.values():
        assert row["errors"] == 0
        assert row["turns"] == row["calls"] * 5
        assert row["firstTokenP50Ms"] <= row["firstTokenP99Ms"]
        assert row["turnsPerS"] > 0
    assert "first token p99 ms" in done.stdout and "warmline serve" in done.stdout
