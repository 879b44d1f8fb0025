"""Smoke test of ``bench/emulator_vs_offline.py``: the quick workload, without npm.

Runs the benchmark as a subprocess, as CI would, on the floor server and (when the emulator
is importable) on ``warmline dev``; serverless-offline is skipped because it needs npm and
a network install. Checks that every measured server echoed every message and that the
JSON report holds the table's numbers; no timing is asserted (timing is the bench's job).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "emulator_vs_offline.py"
QUICK_MESSAGES = 5 * 10  # QUICK.connections * QUICK.messages_per_connection


def _emulator_available() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("warmline.dev.server", "warmline.config", "warmline.cli.dev")
    )


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--skip-offline", "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(out.read_text())


def _assert_measured(result: dict[str, Any]) -> None:
    assert result["error"] is None
    assert result["load_messages"] == QUICK_MESSAGES
    assert result["errors"] == 0
    assert result["load_missing"] == 0
    assert result["first_connect_ms"] > 0
    assert 0 < result["seq_p50_ms"] <= result["seq_p99_ms"]
    assert 0 < result["load_p50_ms"] <= result["load_p99_ms"]
    assert result["load_msgs_per_s"] > 0


def test_quick_run_measures_the_floor_and_prints_the_table(tmp_path: Path) -> None:
    done, report = _run(tmp_path, "--skip-warmline")
    assert list(report["results"]) == ["floor"]
    _assert_measured(report["results"]["floor"])
    assert report["workload"]["connections"] * report["workload"]["messages_per_connection"] == (
        QUICK_MESSAGES
    )
    assert "load: msgs/s" in done.stdout
    assert "floor" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not _emulator_available(), reason="warmline dev is not built yet")
def test_quick_run_measures_warmline_dev_with_both_handlers(tmp_path: Path) -> None:
    done, report = _run(tmp_path)
    results = report["results"]
    for name in ("warmline (boto3)", "warmline (lean)"):
        _assert_measured(results[name])
        # Every environment that served the run was loaded once, so at least one cold start.
        assert results[name]["cold_starts_total"] >= 1
    assert "warmline (lean) vs floor" in report["ratios"]
