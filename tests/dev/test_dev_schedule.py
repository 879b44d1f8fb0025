"""Firing a schedule now: ``POST /_warmline/schedules/NAME/fire`` and ``warmline schedule fire``."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dev_process import DevProcess, post

pytestmark = pytest.mark.slow

AGENT = Path(__file__).resolve().parents[2] / "examples" / "agent"
CONFIG = f"""
[functions.agent]
handler = "app.handler"
code = "{AGENT}"

[functions.agent.environment]
WARMLINE_ALLOW_UNSIGNED = "1"

[websocket]
stage = "dev"

[websocket.routes]
"$default" = "agent"

[schedules.keep-warm]
expression = "rate(1 day)"
targets = ["agent"]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _fire(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmline", "schedule", "fire", name],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def _dashboard_events(base_url: str, want: int, timeout: float = 30.0) -> list[dict[str, object]]:
    """Events of the dashboard's stream until ``want`` warm-up events arrived."""
    host_port = base_url.removeprefix("http://")
    conn = http.client.HTTPConnection(host_port, timeout=timeout)
    events: list[dict[str, object]] = []
    try:
        conn.request("GET", "/_warmline/events")
        response = conn.getresponse()
        assert response.status == 200
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = response.readline().decode()
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if sum(1 for e in events if e.get("warmup") is True) >= want:
                    return events
        raise AssertionError(f"no warm-up on the dashboard: {events}")
    finally:
        conn.close()


def test_schedule_fire_reaches_the_agent_the_log_and_the_dashboard(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(CONFIG)
    port = str(_free_port())
    with DevProcess(tmp_path, port=None, env={"WARMLINE_PORT": port}) as dev:
        assert dev.ws_url == f"ws://127.0.0.1:{port}/dev"  # WARMLINE_PORT picked the port
        fired = _fire("keep-warm", {"WARMLINE_PORT": port})
        assert fired.returncode == 0, fired.stderr
        assert fired.stdout.startswith("fired keep-warm -> agent: request ids ")
        log = dev.wait_log(lambda log: '"step": "warmup"' in log or '"step":"warmup"' in log)
        assert "schedule keep-warm fired now: 1 Event invocation(s)" in log
        events = _dashboard_events(dev.base_url, want=2)
        kinds = {(e.get("kind"), e.get("step")) for e in events if e.get("warmup") is True}
        assert ("step", "warmup") in kinds and ("report", None) in kinds

        status, body = post(f"{dev.base_url}/_warmline/schedules/keep-warm/fire")
        assert status == 202 and body["targets"] == ["agent"] and len(body["requestIds"]) == 1
        missing = _fire("nope", {"WARMLINE_PORT": port})
        assert missing.returncode == 1
        assert "no schedule 'nope' (schedules: keep-warm)" in missing.stderr


def test_the_fire_endpoint_is_behind_the_control_check(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(CONFIG)
    with DevProcess(tmp_path) as dev:
        url = f"{dev.base_url}/_warmline/schedules/keep-warm/fire"
        status, body = post(url, headers={"X-Forwarded-For": "203.0.113.9"})
        assert status == 403 and "loopback clients only" in body["message"]
        status, _ = post(url, headers={"Origin": "http://evil.example"})
        assert status == 403
        assert "fired now" not in dev.log_text()
