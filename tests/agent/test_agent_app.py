"""The agent end to end through the Lambda adapter, the memory store and local connections."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from warmline.adapters.aws_lambda import lambda_handler
from warmline.agent.answerers import AnswerRequest
from warmline.agent.app import (
    AgentConfig,
    append_history,
    build_app,
    truncate_history,
)
from warmline.agent.intents import Menu, MenuOption
from warmline.agent.kb import close_indexes
from warmline.connections.local import LocalConnections
from warmline.core.app import App
from warmline.core.session import SessionRecord
from warmline.errors import ConfigurationError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

CID = "R1kmxc2VNjMCFIA="
SESSION = "VX00000000000000000000000000000001"
CALL_SID = "CA00000000000000000000000000000001"


@pytest.fixture(autouse=True)
def _close_indexes() -> Iterator[None]:
    yield
    close_indexes()


class Call:
    """A ConversationRelay call driven through the Lambda handler, frame by frame."""

    def __init__(self, **kwargs: Any) -> None:
        self.conns = LocalConnections()
        self.conns.open(CID)
        self.store = MemoryStore()
        self.app: App = build_app(store=self.store, connections=lambda ref: self.conns, **kwargs)
        self.log = StepLogger(stream=io.StringIO(), keep=True)
        self.handler = lambda_handler(self.app, log=self.log)
        self._seen = 0

    def close(self) -> None:
        self.app.close()

    def send(self, **frame: Any) -> list[dict[str, Any]]:
        """Send one frame; return the frames the app posted in response."""
        result = self.handler(
            websocket_event("MESSAGE", body=json.dumps(frame), connection_id=CID), LambdaContext()
        )
        assert result["statusCode"] == 200, result
        return self.new_frames()

    def new_frames(self) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = self.conns.sent_json(CID)
        new, self._seen = frames[self._seen :], len(frames)
        return new

    def setup(self) -> list[dict[str, Any]]:
        return self.send(
            type="setup",
            sessionId=SESSION,
            callSid=CALL_SID,
            accountSid="AC0",
            parentCallSid="",
            **{"from": "+15555550100", "to": "+15555550199"},
            forwardedFrom="",
            callType="PSTN",
            callerName="",
            direction="inbound",
            callStatus="RINGING",
            customParameters={},
        )

    def say(self, text: str, last: bool = True) -> list[dict[str, Any]]:
        return self.send(type="prompt", voicePrompt=text, lang="en-US", last=last)

    @property
    def session(self) -> SessionRecord:
        record = self.store.get(SESSION)
        assert record is not None
        return record

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.session.data.get("history", []))

    def last_log(self, step: str = "message") -> dict[str, Any]:
        assert self.log.records is not None
        return [r for r in self.log.records if r["step"] == step][-1]


@pytest.fixture
def call() -> Iterator[Call]:
    c = Call()
    yield c
    c.close()


def spoken(frames: list[dict[str, Any]]) -> str:
    return "".join(f["token"] for f in frames if f["type"] == "text")


def assert_one_talk_cycle(frames: list[dict[str, Any]]) -> None:
    texts = [f for f in frames if f["type"] == "text"]
    assert texts and texts[-1]["last"] is True
    assert all(f["last"] is False for f in texts[:-1])


def test_setup_greets_and_starts_the_history(call: Call) -> None:
    frames = call.setup()
    assert_one_talk_cycle(frames)
    assert spoken(frames) == AgentConfig().greeting
    assert call.history == [{"role": "assistant", "text": AgentConfig().greeting}]
    assert call.session.call_sid == CALL_SID


def test_a_question_is_answered_from_the_faq_in_streamed_tokens(call: Call) -> None:
    call.setup()
    frames = call.say("What are your customer support hours?")
    assert_one_talk_cycle(frames)
    text = spoken(frames)
    assert "7 in the morning to 11 at night" in text
    assert len(frames) > 1  # streamed in chunks, not one frame
    log = call.last_log()
    assert log["intent"] == "answer" and log["entry"] == "support-hours"
    assert log["hitCount"] >= 1 and log["topScore"] > 0
    assert call.history[-2:] == [
        {"role": "user", "text": "What are your customer support hours?"},
        {"role": "assistant", "text": text},
    ]


def test_partial_prompts_are_ignored(call: Call) -> None:
    call.setup()
    assert call.say("What are your", last=False) == []
    assert call.history[-1]["role"] == "assistant"


def test_an_unknown_question_offers_a_person_and_yes_hands_off(call: Call) -> None:
    call.setup()
    frames = call.say("Can you book me a flight to Chicago?")
    assert spoken(frames) == AgentConfig().dont_know
    assert "person" in spoken(frames)
    log = call.last_log()
    assert log["answered"] is False and "topScore" in log and "hitCount" in log
    assert call.session.data["offer"] == "human"
    frames = call.say("Yes please")
    assert [f["type"] for f in frames] == ["text", "end"]
    assert frames[0]["last"] is True
    handoff = json.loads(frames[1]["handoffData"])
    assert handoff["reason"] == "handoff" and handoff["trigger"] == "accepted offer"
    assert handoff["callSid"] == CALL_SID
    assert handoff["lastQuestion"] == "Can you book me a flight to Chicago?"
    assert "offer" not in call.session.data
    assert call.session.data["handoff"] == handoff


def test_declining_the_offer_keeps_the_call_going(call: Call) -> None:
    call.setup()
    call.say("what is the weather in Paris")
    frames = call.say("no thanks")
    assert spoken(frames) == AgentConfig().declined
    assert "offer" not in call.session.data
    frames = call.say("how do I reboot my modem")
    assert "Unplug the Hub" in spoken(frames)


def test_asking_for_an_agent_ends_with_handoff_data(call: Call) -> None:
    call.setup()
    frames = call.say("I want to talk to a representative")
    assert spoken(frames) == AgentConfig().handoff
    assert frames[-1]["type"] == "end"
    assert json.loads(frames[-1]["handoffData"])["trigger"] == "talk to a representative"
    assert call.last_log()["intent"] == "handoff"


def test_not_wanting_a_human_is_not_a_handoff(call: Call) -> None:
    call.setup()
    frames = call.say("I don't want a human, how do I change my wifi password")
    assert all(f["type"] == "text" for f in frames)
    assert "Network settings" in spoken(frames)


def test_goodbye_ends_the_call(call: Call) -> None:
    call.setup()
    frames = call.say("that's all, thanks, bye")
    assert spoken(frames) == AgentConfig().goodbye
    assert frames[-1]["type"] == "end"
    assert json.loads(frames[-1]["handoffData"]) == {"reason": "end"}
    assert call.last_log()["intent"] == "end"


def test_dtmf_menu_options(call: Call) -> None:
    call.setup()
    frames = call.send(type="dtmf", digit="1")
    assert spoken(frames).startswith("Billing.")
    assert call.session.data["topic"] == "billing"
    frames = call.send(type="dtmf", digit="7")
    assert spoken(frames) == (
        "Sorry, that key isn't on the menu. "
        "Press 1 for billing, 2 for technical support, or 0 for a person."
    )
    call.say("what is the weather in Paris")
    assert call.session.data["offer"] == "human"
    call.send(type="dtmf", digit="2")
    assert "offer" not in call.session.data and call.session.data["topic"] == "technical_support"
    call.send(type="dtmf", digit="1")
    frames = call.send(type="dtmf", digit="0")
    assert frames[-1]["type"] == "end"
    handoff = json.loads(frames[-1]["handoffData"])
    assert handoff["trigger"] == "key 0" and handoff["topic"] == "billing"


def test_saying_a_key_works_like_pressing_it(call: Call) -> None:
    call.setup()
    frames = call.say("press 2")
    assert spoken(frames).startswith("Technical support.")
    assert call.session.data["topic"] == "technical_support"
    assert call.history[-2] == {"role": "user", "text": "press 2"}


def test_interrupt_cuts_the_last_answer_to_what_was_heard(call: Call) -> None:
    call.setup()
    call.say("how do I restart my router")
    full = call.history[-1]["text"]
    heard = "Unplug the Hub's power cord, wait"
    assert full.startswith(heard) and full != heard
    turn = call.session.turn
    assert (
        call.send(type="interrupt", utteranceUntilInterrupt=heard, durationUntilInterruptMs=900)
        == []
    )
    assert call.history[-1] == {"role": "assistant", "text": heard, "interrupted": True}
    assert call.session.turn == turn + 1
    assert call.last_log()["heardChars"] == len(heard)


def test_the_history_is_bounded() -> None:
    call = Call(config=AgentConfig(history_limit=4))
    try:
        call.setup()
        for question in ["support hours", "data cap", "static ip", "late fee"]:
            call.say(question)
        history = call.history
        assert len(history) == 4
        assert history[0] == {"role": "user", "text": "static ip"}
    finally:
        call.close()


def test_info_and_error_frames_are_logged_and_answered_with_nothing(call: Call) -> None:
    call.setup()
    assert call.send(type="info", name="tokensPlayed", value="Hello") == []
    assert call.last_log()["info"] == "tokensPlayed"
    assert call.send(type="error", description="Invalid message received, code: 64107") == []
    assert "64107" in call.last_log("relay_error")["description"]


class SlowAnswerer:
    """A streaming answerer (like an LLM): a generator, so the agent records at the end.

    Halfway through it lets the caller barge in, through the real handler.
    """

    def __init__(self, call: Call | None = None) -> None:
        self.call = call

    def answer(self, request: AnswerRequest) -> Iterator[str]:
        yield "First part of the answer, "
        if self.call is not None:
            self.call.send(type="interrupt", utteranceUntilInterrupt="First part")
        yield "second part."


def test_a_streamed_answer_is_recorded_when_it_ends() -> None:
    call = Call(answerer=SlowAnswerer())
    try:
        call.setup()
        frames = call.say("what are your support hours")
        assert spoken(frames) == "First part of the answer, second part."
        assert_one_talk_cycle(frames)
        assert call.history[-1] == {
            "role": "assistant",
            "text": "First part of the answer, second part.",
        }
    finally:
        call.close()


def test_a_barge_in_during_a_stream_wins_over_the_streams_record() -> None:
    call = Call()
    call.app.agent._answerer = SlowAnswerer(call)  # type: ignore[attr-defined]
    try:
        call.setup()
        call.say("what are your support hours")
        assert call.history[-2:] == [
            {"role": "user", "text": "what are your support hours"},
            {"role": "assistant", "text": "First part", "interrupted": True},
        ]
    finally:
        call.close()


class AsyncAnswerer:
    async def _gen(self) -> AsyncIterator[str]:
        yield "Async "
        yield "answer."

    def answer(self, request: AnswerRequest) -> AsyncIterator[str]:
        return self._gen()


def test_an_async_answerer_streams_and_the_app_closes_the_talk_cycle() -> None:
    call = Call(answerer=AsyncAnswerer())
    try:
        call.setup()
        frames = call.say("what are your support hours")
        assert [f["token"] for f in frames] == ["Async ", "answer.", ""]
        assert_one_talk_cycle(frames)
        assert call.history[-1]["text"] == "Async answer."
    finally:
        call.close()


def test_a_warm_up_opens_the_index() -> None:
    app = build_app(store=MemoryStore(), connections=lambda ref: LocalConnections())
    try:
        handler = lambda_handler(app, log=StepLogger(stream=io.StringIO()))
        assert app.agent._retriever is None  # type: ignore[attr-defined]
        result = handler({"source": "serverless-plugin-warmup"}, LambdaContext())
        assert result is not None
        assert app.agent._retriever is not None  # type: ignore[attr-defined]
    finally:
        app.close()


# --- pure parts ------------------------------------------------------------------------
def test_append_history_keeps_the_last_entries_and_skips_empty_text() -> None:
    history = [{"role": "user", "text": str(n)} for n in range(3)]
    out = append_history(history, ("assistant", "a"), ("user", ""), limit=3)
    assert out == [
        {"role": "user", "text": "1"},
        {"role": "user", "text": "2"},
        {"role": "assistant", "text": "a"},
    ]
    assert history[0] == {"role": "user", "text": "0"}  # not mutated


def test_truncate_history_cases() -> None:
    base = [{"role": "user", "text": "q"}, {"role": "assistant", "text": "long answer"}]
    assert truncate_history(base, "long")[-1] == {
        "role": "assistant",
        "text": "long",
        "interrupted": True,
    }
    assert truncate_history(base, "") == [{"role": "user", "text": "q"}]
    # no answer recorded yet: what was heard cannot be checked against it, so nothing is
    # appended (the agent keeps it for the answer's own record, see test_agent_history)
    assert truncate_history(base[:1], "heard") == [{"role": "user", "text": "q"}]
    assert truncate_history([], "") == []


def test_config_from_a_toml_table() -> None:
    config = AgentConfig.from_mapping(
        {
            "greeting": "Hello.",
            "history_limit": 6,
            "min_score": 3,
            "menu": {"5": {"name": "sales", "label": "sales", "say": "Sales."}},
        }
    )
    assert config.greeting == "Hello." and config.history_limit == 6 and config.min_score == 3.0
    assert config.menu == Menu({"5": MenuOption("sales", "sales", "Sales.")})


@pytest.mark.parametrize(
    "table",
    [
        {"greting": "typo"},
        {"greeting": 5},
        {"history_limit": 1},
        {"min_score": "high"},
        {"menu": {"x": {"name": "a"}}},
        {"menu": {"1": {"label": "no name"}}},
    ],
)
def test_bad_config_is_refused(table: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        AgentConfig.from_mapping(table)


def test_an_empty_greeting_sends_nothing() -> None:
    call = Call(config=AgentConfig(greeting=""))
    try:
        assert call.setup() == []
        assert call.session.version == 1  # created by the App, not written again
        assert call.history == []
    finally:
        call.close()


def test_the_agent_imports_no_index_or_sqlite_until_the_first_prompt() -> None:
    code = (
        "import sys, warmline.agent.app;"
        "print([m for m in ('sqlite3', 'asyncio', 'warmline.agent.kb') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "module",
    [
        "warmline.agent.app",
        "warmline.agent.kb",
        "warmline.agent.ranking",
        "warmline.agent.intents",
        "warmline.agent.answerers",
        "warmline.agent.speech",
        "warmline.cli.kb",
    ],
)
def test_every_exported_name_exists(module: str) -> None:
    import importlib

    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(set(mod.__all__))
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name}"
