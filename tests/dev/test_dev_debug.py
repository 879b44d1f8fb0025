"""``warmline dev --debug``: pdb through a pseudo-terminal, debugpy on a port."""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

import pytest
from dev_process import dev_exits, echo_config
from websockets.sync.client import connect

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow

APP = """
def handler(event, context):
    breakpoint()
    return {"statusCode": 200, "body": "answer:" + event["body"]}
"""


def _spawn(tmp_path: Path, *flags: str) -> tuple[object, str]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    (tmp_path / "warmline.toml").write_text(echo_config(code))
    child = pexpect.spawn(
        sys.executable,
        ["-m", "warmline", "dev", "--port", "0", "--no-log-file", *flags],
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 250),
    )
    child.expect(r"WebSocket:\s+(ws://\S+)")
    ws_url = child.match.group(1)
    child.expect("Watch the backend:")
    return child, ws_url


def _stop(child: object) -> None:
    child.sendintr()  # type: ignore[attr-defined]
    child.expect(pexpect.EOF, timeout=30)  # type: ignore[attr-defined]
    child.close()  # type: ignore[attr-defined]


def test_breakpoint_stops_in_pdb_on_the_terminal_and_the_client_gets_its_answer(
    tmp_path: Path,
) -> None:
    child, ws_url = _spawn(tmp_path, "--debug", "app")
    try:
        banner = child.before  # type: ignore[attr-defined]
        assert "Debug:        app: one environment; breakpoint() stops in pdb" in banner
        assert "timeouts suspended while debugging" in banner
        with connect(ws_url) as ws:
            ws.send("hello pdb")
            child.expect_exact("(Pdb) ")  # type: ignore[attr-defined]
            child.sendline('p event["body"]')  # type: ignore[attr-defined]
            child.expect_exact("'hello pdb'")  # type: ignore[attr-defined]
            child.expect_exact("(Pdb) ")  # type: ignore[attr-defined]
            child.sendline("c")  # type: ignore[attr-defined]
            assert ws.recv(timeout=30) == "answer:hello pdb"
            # The same environment stops again for the next message.
            ws.send("again")
            child.expect_exact("(Pdb) ")  # type: ignore[attr-defined]
            child.sendline("c")  # type: ignore[attr-defined]
            assert ws.recv(timeout=30) == "answer:again"
    finally:
        _stop(child)


def test_debug_port_starts_debugpy_in_the_environment(tmp_path: Path) -> None:
    pytest.importorskip("debugpy")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child, ws_url = _spawn(tmp_path, "--debug", "app", "--debug-port", str(port))
    try:
        assert f"debugpy listens on 127.0.0.1:{port}" in child.before  # type: ignore[attr-defined]
        with connect(ws_url) as ws:
            ws.send("x")
            child.expect_exact("(Pdb) ")  # type: ignore[attr-defined]
            deadline = time.monotonic() + 30
            while True:  # debugpy's adapter accepts a debugger's connection
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "debugpy never listened"
                    time.sleep(0.05)
            child.sendline("c")  # type: ignore[attr-defined]
            assert ws.recv(timeout=30) == "answer:x"
    finally:
        _stop(child)


def test_debug_needs_a_known_function(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    (tmp_path / "warmline.toml").write_text(echo_config(code))
    done = dev_exits(tmp_path, "--debug", "nope")
    assert done.returncode == 2
    assert re.search(r"--debug nope: no such function \(functions: app\)", done.stderr)
