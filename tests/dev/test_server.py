"""DevServer wiring and the ``warmline dev`` command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web_helpers import reap
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

FIXTURES = Path(__file__).parent / "gateway" / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


def _config(**extra: object) -> dict[str, object]:
    return {
        "functions": {"env": {"handler": "env.handler", "environment": {"OWN": "mine"}}},
        "websocket": {
            "stage": "test",
            "routes": {"$default": {"function": "env", "route_response": True}},
        },
        "region": "eu-west-1",
        **extra,
    }


def test_urls_port_and_function_environment() -> None:
    async def main() -> None:
        config = parse_config(_config(), base_dir=FIXTURES)
        server = DevServer(config, port=0, log_sink=LogSink(console=None))
        with pytest.raises(RuntimeError):
            _ = server.port
        await server.start()
        try:
            port = server.port
            assert port > 0
            assert server.ws_url == f"ws://127.0.0.1:{port}/test"
            assert server.connections_url == f"http://127.0.0.1:{port}/test"
            assert server.https_connections_url == f"https://127.0.0.1:{port}/test"
            result = await server.invoke("env", {})
            assert result.status == "ok"
            assert server.certificates is not None
            assert result.payload == {
                # No default @connections endpoint exists on AWS, so none is injected.
                "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": None,
                "AWS_CA_BUNDLE": str(server.certificates.ca_cert),
                "AWS_REGION": "eu-west-1",
                "OWN": "mine",
            }
            # wss:// on the same port, trusted through the generated CA
            context = ssl.create_default_context(cafile=str(server.certificates.ca_cert))
            wss = server.ws_url.replace("ws://", "wss://")
            async with connect(wss, ssl=context) as ws:
                await ws.send("{}")
                reply = json.loads(await ws.recv())
                assert reply["OWN"] == "mine"
                assert len(server.connections()) == 1
            ca = server.certificates.ca_cert
            assert ca.exists()
        finally:
            await server.close()
        assert not ca.exists()  # the throwaway CA is removed

    asyncio.run(main())


def test_start_on_a_busy_port_fails_cleanly() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            config = parse_config(_config(), base_dir=FIXTURES)
            server = DevServer(config, port=taken.getsockname()[1], log_sink=LogSink(console=None))
            with pytest.raises(OSError):
                await server.start()
            await server.close()

    asyncio.run(main())


def test_cli_prints_the_urls_serves_and_stops_on_sigint(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(
        f"""
[functions.env]
handler = "env.handler"
code = "{FIXTURES}"

[websocket]
stage = "local"

[websocket.routes]
"$default" = {{ function = "env", route_response = true }}
"""
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "warmline", "dev", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "@connections:" in line:
                break
        text = "".join(lines)
        ws_url = next(w for w in text.split() if w.startswith("ws://"))
        assert ws_url.endswith("/local")
        port = ws_url.split(":")[2].split("/")[0]
        assert f"http://127.0.0.1:{port}/local" in text

        async def talk() -> None:
            async with connect(ws_url) as ws:
                await ws.send("{}")
                assert "OWN" in json.loads(await ws.recv())

        asyncio.run(talk())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        # Every line also went to the JSON-lines log (the default path, named at start-up),
        # which `warmline report` reads: one invocation, and it was a cold start.
        log = tmp_path / ".warmline" / "dev-logs.jsonl"
        text += proc.stdout.read()
        assert f"Logs:         {log.relative_to(tmp_path)}" in text
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert {r["function"] for r in records} == {"env"}
        assert any(r["line"].startswith("REPORT RequestId: ") for r in records)
        done = subprocess.run(
            [sys.executable, "-m", "warmline", "report", str(log), "--json"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        (summary,) = json.loads(done.stdout)["functions"]
        assert summary["function"] == "env"
        assert (summary["invocations"], summary["cold_starts"]) == (1, 1), summary
    finally:
        reap(proc)


def test_cli_reports_a_bad_config(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text("[functions.f]\nhandler = 'nodot'\n")
    done = subprocess.run(
        [sys.executable, "-m", "warmline", "dev", "--config", str(tmp_path / "warmline.toml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "functions.f.handler" in done.stderr


def test_close_sends_open_clients_going_away() -> None:
    async def main() -> None:
        config = parse_config(_config(), base_dir=FIXTURES)
        server = DevServer(config, port=0, log_sink=LogSink(console=None))
        await server.start()
        try:
            ws = await connect(server.ws_url)
        finally:
            await server.close()
        try:
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (1001, "Going away")
        finally:
            await ws.close()

    asyncio.run(main())


def test_log_file_flags_default_to_the_local_folder_and_can_be_turned_off(tmp_path: Path) -> None:
    import argparse

    from warmline.cli import dev as dev_cli

    parser = argparse.ArgumentParser()
    dev_cli.add_parser(parser.add_subparsers())
    assert parser.parse_args(["dev"]).log_file == Path(".warmline/dev-logs.jsonl")
    assert parser.parse_args(["dev", "--no-log-file"]).no_log_file is True
    nested = tmp_path / "a" / "b" / "logs.jsonl"
    sink = dev_cli._log_sink(nested)  # the flag's effect
    sink.emit("f", "0" * 32, "START RequestId: x Version: $LATEST")
    sink.close()
    assert json.loads(nested.read_text())["line"].startswith("START")
    console_only = dev_cli._log_sink(None)
    console_only.close()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "logs.jsonl"]
    dev_cli._log_sink(nested).close()  # a new run starts the file afresh
    assert nested.read_text() == ""
