"""The browser channel: chat frames in, the same agent, chat frames out."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from warmline.adapters.aws_lambda import lambda_handler
from warmline.agent.app import AgentConfig, build_app
from warmline.agent.chat import to_chat, to_relay
from warmline.agent.kb import close_indexes
from warmline.connections.local import LocalConnections
from warmline.core.relay import parse_inbound
from warmline.errors import MalformedFrameError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

CID = "Q2hhdENvbm4xMjM0NQ="
RELAY_CID = "UmVsYXlDb25uMTIzNDU="


@pytest.fixture(autouse=True)
def _close_indexes() -> Iterator[None]:
    yield
    close_indexes()


class Browser:
    """A chat client and a relay caller on one agent and one store."""

    def __init__(self, **kwargs: Any) -> None:
        self.conns = LocalConnections()
        self.conns.open(CID)
        self.conns.open(RELAY_CID)
        self.store = MemoryStore()
        self.app = build_app(store=self.store, connections=lambda ref: self.conns, **kwargs)
        self.log = StepLogger(stream=io.StringIO(), keep=True)
        self.handler = lambda_handler(self.app, log=self.log)
        self._seen: dict[str, int] = {}

    def send(self, frame: dict[str, Any], cid: str = CID) -> tuple[int, list[dict[str, Any]]]:
        event = websocket_event("MESSAGE", body=json.dumps(frame), connection_id=cid)
        result = self.handler(event, LambdaContext())
        frames: list[dict[str, Any]] = self.conns.sent_json(cid)
        seen = self._seen.get(cid, 0)
        self._seen[cid] = len(frames)
        return int(result["statusCode"]), frames[seen:]

    def steps(self) -> list[dict[str, Any]]:
        assert self.log.records is not None
        return [r for r in self.log.records if r["step"] == "message"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.app.close()


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "chat.token")


def test_start_greets_in_chat_frames_and_keys_the_session_by_connection(
    browser: Browser,
) -> None:
    status, frames = browser.send({"type": "chat.start"})
    assert status == 200
    assert frames and all(f["type"] == "chat.token" for f in frames)
    assert frames[-1]["last"] is True and all(not f["last"] for f in frames[:-1])
    assert text_of(frames) == AgentConfig().greeting
    record = browser.store.by_connection(CID)
    assert record is not None and record.session_id == CID
    assert record.data["setup"]["customParameters"] == {"channel": "browser"}
    assert browser.steps()[-1]["channel"] == "chat"


def test_a_question_gets_the_faq_answer_with_intent_and_turn(browser: Browser) -> None:
    browser.send({"type": "chat.start"})
    _, frames = browser.send({"type": "chat.message", "text": "What are your support hours?"})
    assert "7 in the morning" in text_of(frames)
    assert {f["intent"] for f in frames} == {"answer"}
    assert {f["turn"] for f in frames} == {1}
    step = browser.steps()[-1]
    assert step["intent"] == "answer" and step["channel"] == "chat"


def test_dtmf_and_handoff_end_with_a_chat_end_frame(browser: Browser) -> None:
    browser.send({"type": "chat.start"})
    _, frames = browser.send({"type": "chat.dtmf", "digit": "1"})
    assert text_of(frames).startswith("Billing.")
    _, frames = browser.send({"type": "chat.message", "text": "I want to talk to a person"})
    end = frames[-1]
    assert end["type"] == "chat.end"
    assert end["handoff"]["reason"] == "handoff"
    assert end["handoff"]["topic"] == "billing"


def test_interrupt_cuts_the_history_to_what_was_shown(browser: Browser) -> None:
    browser.send({"type": "chat.start"})
    _, frames = browser.send({"type": "chat.message", "text": "How much is the Spark 300 plan?"})
    assert len(text_of(frames)) > 20
    status, sent = browser.send({"type": "chat.interrupt", "heard": "Spark 300 costs"})
    assert status == 200 and sent == []
    record = browser.store.by_connection(CID)
    assert record is not None
    assert record.data["history"][-1] == {
        "role": "assistant",
        "text": "Spark 300 costs",
        "interrupted": True,
    }
    assert record.turn == 2  # the barge-in moved the turn fence on


def test_relay_and_chat_share_one_agent(browser: Browser) -> None:
    browser.send(
        {
            "type": "setup",
            "sessionId": "VX1",
            "callSid": "CA1",
            "from": "+15555550100",
            "to": "+15555550199",
            "customParameters": {},
        },
        RELAY_CID,
    )
    _, relay = browser.send(
        {"type": "prompt", "voicePrompt": "What are your support hours?", "last": True},
        RELAY_CID,
    )
    browser.send({"type": "chat.start"})
    _, chat = browser.send({"type": "chat.message", "text": "What are your support hours?"})
    assert all(f["type"] == "text" for f in relay)  # the relay caller still gets relay
    assert "".join(f["token"] for f in relay) == text_of(chat)


def test_malformed_chat_frames_are_dropped_with_400(browser: Browser) -> None:
    assert browser.send({"type": "chat.message", "text": 5})[0] == 400
    assert browser.send({"type": "chat.dance"})[0] == 400
    assert browser.store.by_connection(CID) is None


def test_translation_round_trips_through_the_relay_parser() -> None:
    relay = to_relay(json.dumps({"type": "chat.interrupt", "heard": "Hi"}))
    assert relay is not None
    msg = parse_inbound(relay)
    assert type(msg).__name__ == "Interrupt"
    assert to_relay('{"type":"prompt","voicePrompt":"chat.x"}') is None
    with pytest.raises(MalformedFrameError):
        to_relay('{"type":"chat.dtmf"}')
    end = to_chat('{"type":"end","handoffData":"{\\"reason\\":\\"end\\"}"}', turn=3)
    assert end is not None and json.loads(end) == {
        "type": "chat.end",
        "handoff": {"reason": "end"},
        "turn": 3,
    }
    play = to_chat('{"type":"play","source":"https://x/a.mp3"}')
    assert play is not None and json.loads(play)["type"] == "chat.play"
