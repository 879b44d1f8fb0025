"""A caller sending 10 malformed frames in a row through ``warmline dev`` to the reference
agent; and what the logs of such a call hold (no secrets; phone numbers masked on demand).

Twilio closes a session after 10 consecutive *unidentified messages it receives*
(64105, close 1007; docs/protocols.md §1.4), so what matters is what the agent sends back:
warmline answers a malformed inbound frame with nothing at all (the route returns 400,
which API Gateway does not forward on a one-way route), logs it as ``malformed_frame``,
stores nothing, and the next good prompt is answered in the same session.

Real parts: the emulator with Lambda environments as processes, the agent's SQLite store,
a signed WebSocket handshake, the @connections API over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from dev_scenario import dev_server
from warmline.config import parse_config
from warmline.dev.server import DevServer
from warmline.twilio.signature import SIGNATURE_HEADER, compute_signature

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent"
TOKEN = "rel-twilio-token-5f0c9a1e7d"
CALLER = "+14155550123"

MALFORMED = [
    "hello, not JSON",
    "[1, 2, 3]",
    '"just a string"',
    "{}",
    '{"type": 7}',
    '{"type": ""}',
    '{"type": "dtmf", "digit": "x"}',
    '{"type": "prompt", "voicePrompt": "hi", "last": "yes"}',
    '{"type": "setup", "customParameters": [1]}',
    '{"type": "info", "name": "x", "value": {"a": 1}}',
]


@asynccontextmanager
async def agent_server(tmp_path: Path, **env: str) -> AsyncIterator[DevServer]:
    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    environment = dict(data["functions"]["agent"].get("environment", {}))
    environment.update(
        {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
            **env,
        }
    )
    data["functions"]["agent"]["environment"] = environment
    data["schedules"] = {}
    async with dev_server(parse_config(data, base_dir=AGENT), tmp_path / "dev.log") as server:
        yield server


async def recv_answer(ws: ClientConnection, timeout: float = 20) -> list[dict[str, Any]]:
    """Frames up to and including the one with ``last: true`` (all must be JSON)."""
    frames: list[dict[str, Any]] = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        assert isinstance(raw, str)
        frame = json.loads(raw)
        frames.append(frame)
        if frame.get("last") is True or frame.get("type") == "end":
            return frames


async def signed(server: DevServer) -> ClientConnection:
    header = compute_signature(server.ws_url, None, TOKEN)
    return await connect(server.ws_url, additional_headers={SIGNATURE_HEADER: header})


def setup_frame() -> str:
    return json.dumps(
        {
            "type": "setup",
            "sessionId": "VX" + os.urandom(16).hex(),
            "callSid": "CA" + os.urandom(16).hex(),
            "from": CALLER,
            "to": "+15550101",
            "direction": "inbound",
            "customParameters": {"channel": "phone"},
        }
    )


def log_lines(tmp_path: Path) -> str:
    return (tmp_path / "dev.log").read_text(encoding="utf-8")


def test_ten_malformed_frames_in_a_row_get_no_answer_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[list[str], list[dict[str, Any]]]:
        async with agent_server(tmp_path) as server:
            ws = await signed(server)
            try:
                await ws.send(setup_frame())
                await recv_answer(ws)  # the greeting
                for frame in MALFORMED:
                    await ws.send(frame)
                # A good prompt after them: its answer must be the next thing received,
                # so anything sent for a malformed frame would show up first.
                await ws.send(
                    json.dumps(
                        {
                            "type": "prompt",
                            "voicePrompt": "What are your support hours?",
                            "last": True,
                        }
                    )
                )
                answer = await recv_answer(ws)
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": "Thanks", "last": True}))
                answer += await recv_answer(ws)
            finally:
                await ws.close()
            lines = await _eventually_lines(tmp_path, "malformed_frame", len(MALFORMED))
            return lines, answer

    lines, answer = asyncio.run(scenario())
    assert len(lines) == len(MALFORMED)  # each one logged, once
    assert all(frame["type"] == "text" for frame in answer), answer
    spoken = "".join(frame["token"] for frame in answer)
    assert "7 in the morning" in spoken  # the session and its knowledge base are intact
    assert not (tmp_path / "dev.log").read_text().count('"level":"error"')


async def _eventually_lines(tmp_path: Path, step: str, count: int) -> list[str]:
    for _ in range(500):
        found = [
            line
            for line in log_lines(tmp_path).splitlines()
            if f'\\"step\\":\\"{step}\\"' in line  # a function's line, JSON in JSON
        ]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    return found


def test_no_secret_and_no_caller_number_in_the_emulator_log(tmp_path: Path) -> None:
    """A forged connect, a real call and a hang-up: the emulator log (which holds every
    function's stdout, i.e. every StepLogger line) has neither the Twilio token nor the
    AWS secret the emulator issued the function, and no full caller number
    (WARMLINE_REDACT_PHONE=1 is set as well)."""
    secrets: list[str] = []

    async def scenario() -> None:
        async with agent_server(tmp_path, WARMLINE_REDACT_PHONE="1") as server:
            secrets.append(server.iam.function_environment("agent")["AWS_SECRET_ACCESS_KEY"])
            with pytest.raises(Exception):  # noqa: B017 - the 403 surfaces as InvalidStatus
                bad = await connect(server.ws_url, additional_headers={SIGNATURE_HEADER: "x"})
                await bad.close()
            ws = await signed(server)
            try:
                await ws.send(setup_frame())
                await recv_answer(ws)
                await ws.send(
                    json.dumps(
                        {"type": "prompt", "voicePrompt": f"call me on {CALLER}", "last": True}
                    )
                )
                await recv_answer(ws)
            finally:
                await ws.close()
            await _eventually_lines(tmp_path, "disconnect", 1)

    asyncio.run(scenario())
    text = log_lines(tmp_path)
    assert '"signature_rejected"' in text or "signature_rejected" in text
    assert "setup" in text  # the log did record the call
    assert TOKEN not in text
    assert secrets and secrets[0] not in text
    # The agent logs ids and measurements, not the caller's number or words, so the number
    # is absent even before masking; test_log_redaction.py proves the masking itself.
    assert CALLER not in text and CALLER[1:] not in text
