"""Smoke test of ``bench/load.py --rolling-restart``: two ``warmline serve`` instances and a
redis-server behind the bench's balancer, restarted in turn while calls talk. Checks the
report's counts (every turn answered, none said twice, calls moved); no timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
from redis_server import (  # type: ignore[import-not-found,unused-ignore]
    needs_redis,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = needs_redis()


def test_no_turn_is_lost_across_a_rolling_restart(tmp_path: Path) -> None:
    report = tmp_path / "rolling.json"
    command = [sys.executable, str(ROOT / "bench" / "load.py"), "--rolling-restart", "--quick"]
    done = subprocess.run(
        [*command, "--json", str(report)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    r = json.loads(report.read_text())["rollingRestart"]
    assert r["completed"] == r["calls"] == 5
    assert r["answered"] == r["turns"] == 5 * 30
    assert r["lost"] == 0 and r["repeated"] == 0
    assert r["moves"] >= 2 and len(r["restartS"]) == 2  # each restart moved calls
    assert "zero lost turns across the restart: yes" in done.stdout
