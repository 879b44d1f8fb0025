"""The sample agent's scripted calls against ``warmline serve`` and ``warmline dev``: one
scenario, two deployments, the same answers.

As a phone call goes: ``fetch_twiml`` POSTs the signed incoming-call webhook, the
WebSocket URL comes from the TwiML, ``run_call`` opens it signed and talks. ``serve`` is a
real ``python -m warmline.cli.serve`` process; ``dev`` is the emulator with Lambda
environments as processes. Both keep sessions in the agent's SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from serve_harness import HANDOFF_NUMBER, TOKEN, Target, agent_target

from warmline.tools.call import CallResult, Step, fetch_twiml, parse_script, run_call

pytestmark = pytest.mark.slow

TARGETS = ["serve", "dev"]


async def call(
    target: Target,
    script: str,
    token: str | None = TOKEN,
    before_step: Callable[[Step], Awaitable[None]] | None = None,
) -> CallResult:
    caller = {"CallSid": "CA" + os.urandom(16).hex(), "From": "+15550100", "To": "+15550101"}
    ws_url, params, action = await asyncio.to_thread(fetch_twiml, target.twiml_url, caller, TOKEN)
    if target.kind == "serve":
        assert ws_url == target.base_url.replace("http://", "ws://") + "/ws"
    return await run_call(
        ws_url,
        parse_script(script.splitlines()),
        auth_token=token,
        custom_parameters=params,
        action_url=action,
        turn_timeout_s=20,
        before_step=before_step,
    )


def histories(sessions: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(sessions)
    try:
        tables = conn.execute("select name from sqlite_master where type = 'table'").fetchall()
        if ("warmline_sessions",) not in tables:
            return []  # the store was never opened: nothing was stored
        rows = conn.execute("select data from warmline_sessions").fetchall()
    finally:
        conn.close()
    return [json.loads(row[0]) for row in rows]


@pytest.mark.parametrize("kind", TARGETS)
def test_greeting_faq_unknown_offer_and_handoff_with_dial(tmp_path: Path, kind: str) -> None:
    async def scenario() -> CallResult:
        async with agent_target(kind, tmp_path) as target:
            return await call(
                target,
                "What are your support hours?\n"
                "How much is the Spark 300 plan?\n"
                "Do you sell pizza?\n"
                "yes please\n",
            )

    result = asyncio.run(scenario())
    assert result.rejected is None
    assert "Brightwave" in result.greeting
    hours, plan, pizza, yes = result.turns
    assert "7 in the morning" in hours.answer
    assert hours.first_token_ms is not None and hours.last_token_ms is not None
    assert "45 dollars" in plan.answer
    assert "connect you to a person" in pizza.answer
    assert "connecting you" in yes.answer.lower()
    assert result.end is not None
    handoff = json.loads(result.end["handoffData"])
    assert handoff["reason"] == "handoff" and handoff["trigger"] == "accepted offer"
    assert result.action_twiml is not None
    root = ET.fromstring(result.action_twiml.split("?>", 1)[-1])
    assert root.findtext("Dial") == HANDOFF_NUMBER


@pytest.mark.parametrize("kind", TARGETS)
def test_dtmf_menu_and_asking_for_a_person(tmp_path: Path, kind: str) -> None:
    async def scenario() -> CallResult:
        async with agent_target(kind, tmp_path) as target:
            return await call(target, "dtmf: 1\nno thanks\nI want to talk to a person\n")

    result = asyncio.run(scenario())
    billing, _no, human = result.turns
    assert billing.answer.startswith("Billing")
    assert human.answer
    assert result.end is not None
    assert json.loads(result.end["handoffData"])["reason"] == "handoff"


@pytest.mark.parametrize("kind", TARGETS)
def test_an_interrupt_is_recorded_as_what_the_caller_heard(tmp_path: Path, kind: str) -> None:
    async def scenario() -> tuple[CallResult, list[dict[str, Any]]]:
        async with agent_target(kind, tmp_path) as target:

            async def interrupt_recorded(step: Step) -> None:
                # Invocations on one connection are unordered under API Gateway (the
                # interrupt may be cold-starting a second environment): wait, as a caller
                # still talking would, for the barge-in to be stored before the next prompt.
                if step.value != "thanks, bye":
                    return
                for _ in range(1000):
                    stored = histories(target.sessions)
                    if stored and any(m.get("interrupted") for m in stored[0]["history"]):
                        return
                    await asyncio.sleep(0.01)

            result = await call(
                target,
                "What internet plans do you offer?\ninterrupt after 1\nthanks, bye\n",
                before_step=interrupt_recorded,
            )
            return result, histories(target.sessions)

    result, sessions = asyncio.run(scenario())
    plans = result.turns[0]
    assert plans.interrupted and len(plans.tokens) >= 1
    (session,) = sessions
    cut = [m for m in session["history"] if m.get("interrupted")]
    assert cut and cut[0]["text"] == plans.answer.strip()
    assert result.end is not None  # "bye" ends the call


@pytest.mark.parametrize("kind", TARGETS)
@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_an_unsigned_or_wrongly_signed_connect_is_rejected_403(
    tmp_path: Path, kind: str, token: str | None
) -> None:
    async def scenario() -> tuple[CallResult, list[dict[str, Any]]]:
        async with agent_target(kind, tmp_path) as target:
            return await call(target, "hello\n", token=token), histories(target.sessions)

    result, sessions = asyncio.run(scenario())
    assert result.rejected == 403
    assert sessions == []  # nothing stored for a rejected caller
