"""The sample agent end to end, the way a phone call goes: ``warmline call`` fetches the
signed TwiML from ``warmline dev``'s function URL, opens the signed WebSocket, and talks.

Real parts only: the emulator with Lambda environments as processes, the agent's SQLite
session store, the @connections API over HTTP, the shipped knowledge base.
"""

from __future__ import annotations

import asyncio
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from dev_scenario import dev_server
from warmline.config import parse_config
from warmline.dev.server import DevServer
from warmline.tools.call import CallResult, Step, fetch_twiml, parse_script, run_call

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent"
TOKEN = "e2e-auth-token"

pytestmark = pytest.mark.slow


@asynccontextmanager
async def agent_server(tmp_path: Path) -> AsyncIterator[DevServer]:
    import tomllib

    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    env = dict(data["functions"]["agent"].get("environment", {}))
    env.update(
        {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
        }
    )
    data["functions"]["agent"]["environment"] = env
    data["schedules"] = {}
    async with dev_server(parse_config(data, base_dir=AGENT), tmp_path / "dev.log") as server:
        yield server


async def call(
    server: DevServer,
    script: str,
    token: str | None = TOKEN,
    before_step: Callable[[Step], Awaitable[None]] | None = None,
) -> CallResult:
    caller = {"CallSid": "CA" + os.urandom(16).hex(), "From": "+15550100", "To": "+15550101"}
    ws_url, params, action = await asyncio.to_thread(
        fetch_twiml, f"{server.lambda_url}/twiml", caller, TOKEN
    )
    assert ws_url == server.ws_url
    return await run_call(
        ws_url,
        parse_script(script.splitlines()),
        auth_token=token,
        custom_parameters=params,
        action_url=action,
        turn_timeout_s=20,
        before_step=before_step,
    )


def test_a_scripted_call_greets_answers_offers_a_human_and_hands_off(tmp_path: Path) -> None:
    async def scenario() -> CallResult:
        async with agent_server(tmp_path) as server:
            return await call(
                server,
                "What are your support hours?\n"
                "Do you sell pizza?\n"
                "no thanks\n"
                "dtmf: 2\n"
                "I want to talk to a person\n",
            )

    result = asyncio.run(scenario())
    assert result.rejected is None
    assert "Brightwave" in result.greeting
    hours, pizza, _no, dtmf, human = result.turns
    assert "7 in the morning" in hours.answer
    assert hours.first_token_ms is not None and hours.last_token_ms is not None
    assert "person" in pizza.answer.lower()
    assert dtmf.answer  # the menu's technical-support option says something
    assert human.answer
    assert result.end is not None
    handoff = json.loads(result.end["handoffData"])
    assert handoff["reason"] == "handoff"
    assert result.action_twiml is not None
    root = ET.fromstring(result.action_twiml.split("?>", 1)[-1])
    assert root.findtext("Dial") == "+15550123"


def test_an_interrupt_mid_answer_is_recorded_as_what_the_caller_heard(tmp_path: Path) -> None:
    from warmline.stores.sqlite import SQLiteStore

    def stored() -> list[dict[str, Any]]:
        store = SQLiteStore(tmp_path / "sessions.sqlite3")
        try:
            rows = store._connection().execute("select data from warmline_sessions").fetchall()
        finally:
            store.close()
        return [json.loads(r[0]) for r in rows]

    async def interrupt_recorded(step: Step) -> None:
        # Invocations on one connection are not ordered (as on AWS): the interrupt may be
        # cold-starting a second environment while the first is free again, and a prompt
        # sent at once would overtake it. A real caller is still talking then; wait for the
        # barge-in to be stored before "saying" the next sentence.
        if step.value != "thanks, bye":
            return
        for _ in range(1000):
            history = stored()[0]["history"]
            if any(m.get("interrupted") for m in history):
                return
            await asyncio.sleep(0.01)

    async def scenario() -> tuple[CallResult, list[dict[str, Any]]]:
        async with agent_server(tmp_path) as server:
            result = await call(
                server,
                "What internet plans do you offer?\ninterrupt after 1\nthanks, bye\n",
                before_step=interrupt_recorded,
            )
            return result, stored()

    result, sessions = asyncio.run(scenario())
    plans = result.turns[0]
    assert plans.interrupted and len(plans.tokens) >= 1
    history = sessions[0]["history"]
    cut = [m for m in history if m.get("interrupted")]
    assert cut and cut[0]["text"] == plans.answer.strip()
    assert result.end is not None  # "bye" ends the call


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_an_unsigned_or_wrongly_signed_connect_is_rejected(
    tmp_path: Path, token: str | None
) -> None:
    async def scenario() -> CallResult:
        async with agent_server(tmp_path) as server:
            return await call(server, "hello\n", token=token)

    assert asyncio.run(scenario()).rejected == 403
