"""Run ``warmline dev`` as a developer would, in its own process, and read what it prints."""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
CHAT = FIXTURES / "chat"
#: moto imports for a second or two and the first environments are cold.
START_TIMEOUT_S = 60.0


@dataclass
class DevProcess:
    """A running ``warmline dev``: its WebSocket URL and everything it printed so far."""

    proc: subprocess.Popen[str]
    ws_url: str = ""
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def output(self) -> str:
        """stdout and stderr so far, interleaved as read."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


def recorded_calls(recording: Path) -> list[tuple[str, dict[str, Any]]]:
    """(``X-Amz-Target``, JSON body) of each request in moto's recording."""
    out = []
    for line in recording.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        body = entry.get("body") or ""
        raw = base64.b64decode(body) if entry.get("body_encoded") else body.encode()
        target = entry["headers"].get("X-Amz-Target", "")
        out.append((target, json.loads(raw) if raw.startswith(b"{") else {}))
    return out


def _reader(stream: object, out: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)
    out.put(None)


@contextmanager
def warmline_dev(*args: str, cwd: Path) -> Iterator[DevProcess]:
    """``python -m warmline dev --port 0 ARGS...`` in ``cwd``; stopped with SIGINT on exit."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "warmline", "dev", "--port", "0", "--no-log-file", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    dev = DevProcess(proc)
    reader = threading.Thread(target=_reader, args=(proc.stdout, dev._queue), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not dev.ws_url:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"warmline dev did not start:\n{dev.output()}")
            try:
                line = dev._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                continue
            dev.lines.append(line)
            if line.strip().startswith("WebSocket:"):
                dev.ws_url = line.split("WebSocket:", 1)[1].strip()
        yield dev
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
