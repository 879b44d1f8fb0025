"""warmline load: what counts as answered, lost and doubled; a small real run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from warmline.core.app import STORE_APOLOGY
from warmline.tools.call import CallResult, Turn
from warmline.tools.load import LoadResult, run_load


def _turn(prompt: str, tokens: list[str], last: bool) -> Turn:
    turn = Turn(prompt, tokens=tokens, first_token_ms=1.0 if tokens else None, sent=True)
    turn.last_token_ms = 2.0 if tokens else None
    turn.complete = last
    return turn


def test_turns_are_counted_answered_lost_and_doubled() -> None:
    result = LoadResult(calls=3)
    ok = CallResult("ws://x", turns=[_turn("a", ["x"], True), _turn("b", ["y"], True)])
    ok.other_frames.append({"late": True, "type": "text", "token": "y", "last": True})
    lost = CallResult("ws://x", turns=[_turn("a", ["x"], True), _turn("b", [], False)])
    refused = CallResult("ws://x", rejected=403)
    for call in (ok, lost, refused):
        result.add(call, turns=2)
    summary = result.summary()
    assert (summary["answered"], summary["lost"], summary["doubled"]) == (3, 3, 1)
    assert summary["completed"] == 1
    assert summary["errors"] == {"connect rejected: HTTP 403": 1}


def test_the_spoken_store_apology_is_counted_apart_not_as_an_answer() -> None:
    """The apology is a complete ``text`` frame, but the caller got no answer: it is
    neither answered nor lost, and its call is not a completed one."""
    result = LoadResult(calls=2)
    sorry = CallResult(
        "ws://x", turns=[_turn("a", [STORE_APOLOGY], True), _turn("b", ["fine"], True)]
    )
    # the apology after part of an answer (the store failed at the turn's write)
    late = CallResult("ws://x", turns=[_turn("a", ["We open ", STORE_APOLOGY], True)])
    result.add(sorry, turns=2)
    result.add(late, turns=1)
    summary = result.summary()
    assert (summary["answered"], summary["apologised"], summary["lost"]) == (1, 2, 0)
    assert summary["completed"] == 0
    assert result.first_token_ms == [1.0]  # an apology's latency is not an answer's
    assert sorry.turns[0].to_dict()["apologised"] is True
    assert sorry.turns[1].to_dict()["apologised"] is False


def test_a_partial_answer_is_lost_and_a_dropped_socket_is_an_error() -> None:
    result = LoadResult(calls=1)
    # tokens arrived but never the ``last: true``: the caller heard half an answer
    cut = CallResult("ws://x", turns=[_turn("a", ["x", "y"], False)], closed="1006")
    result.add(cut, turns=2)
    summary = result.summary()
    assert (summary["answered"], summary["lost"], summary["completed"]) == (0, 2, 0)
    assert summary["errors"] == {"connection closed by the server: 1006": 1}


def load_the_sample_agent(
    tmp_path: Path, faults: dict[str, Any] | None = None, **load: int
) -> dict[str, Any]:
    """Run ``warmline load`` against the sample agent under ``warmline dev``; its summary."""
    from warmline.config import parse_config
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    agent = Path(__file__).resolve().parents[2] / "examples" / "agent"
    env = {"WARMLINE_SQLITE_PATH": str(tmp_path / "s.sqlite3"), "WARMLINE_ALLOW_UNSIGNED": "1"}
    raw: dict[str, Any] = {
        "functions": {"agent": {"handler": "app.handler", "code": ".", "environment": env}},
        "websocket": {
            "stage": "dev",
            "routes": {"$connect": "agent", "$disconnect": "agent", "$default": "agent"},
        },
    }
    if faults is not None:
        raw["faults"] = faults
    config = parse_config(raw, base_dir=agent)

    async def scenario() -> LoadResult:
        sink = LogSink(console=None)
        server = DevServer(config, port=0, log_sink=sink)
        await server.start()
        try:
            return await run_load(server.ws_url, rate=100, **load)
        finally:
            await server.close()
            sink.close()

    return asyncio.run(scenario()).summary()


@pytest.mark.slow
def test_a_small_load_through_warmline_dev_loses_nothing(tmp_path: Path) -> None:
    summary = load_the_sample_agent(tmp_path, calls=8, concurrency=8, turns=2)
    assert (summary["completed"], summary["answered"], summary["lost"]) == (8, 16, 0)
    assert summary["doubled"] == 0


@pytest.mark.slow
def test_a_store_outage_under_load_is_an_apology_never_an_answer(tmp_path: Path) -> None:
    """``store.fail`` on the first call's first prompt (invocations: $connect, setup,
    prompt): that turn is the spoken apology, every other turn is answered."""
    faults = {"store": {"fail": {"after": 2, "count": 1, "functions": ["agent"]}}}
    summary = load_the_sample_agent(tmp_path, faults, calls=3, concurrency=1, turns=2)
    assert (summary["answered"], summary["apologised"], summary["lost"]) == (5, 1, 0)
    assert (summary["doubled"], summary["completed"]) == (0, 2)


def run_against(style: str, questions: tuple[str, ...], **server: Any) -> dict[str, Any]:
    """``warmline load`` through the incoming-call webhook of a server written here."""
    from relay_servers import relay_server

    async def scenario() -> LoadResult:
        async with relay_server(style, **server) as running:
            return await asyncio.wait_for(
                run_load(
                    twiml_url=running.twiml_url,
                    calls=3,
                    concurrency=3,
                    turns=len(questions),
                    questions=questions,
                    rate=100,
                    turn_timeout_s=60,
                ),
                30,  # far below one turn timeout: a call that waited one out fails this
            )

    return asyncio.run(scenario()).summary()


def test_load_through_the_webhook_of_a_tutorial_server_never_waits_for_a_greeting() -> None:
    summary = run_against("tutorial", ("one", "two"))
    assert (summary["completed"], summary["answered"], summary["lost"]) == (3, 6, 0)
    assert summary["frames"] == {"text": 6}
    assert summary["reconnects"] == summary["invalidFrames"] == 0


def test_load_counts_every_frame_type_and_the_frames_twilio_refuses() -> None:
    summary = run_against("everything", ("some music", "the digits", "broken", "hi"))
    assert summary["frames"] == {"text": 3 + 3 + 3, "play": 3, "sendDigits": 3}
    assert summary["invalidFrames"] == 9
    # an answer of play or sendDigits alone is an answer; "broken" still got its text
    assert (summary["answered"], summary["lost"], summary["completed"]) == (12, 0, 3)


def test_load_follows_a_reconnect_and_counts_the_turn_the_drain_cut_off() -> None:
    summary = run_against("everything", ("hello", "drain now", "after"), reconnects=3)
    assert summary["reconnects"] == 3
    assert (summary["answered"], summary["lost"]) == (6, 3)
