"""The agent with a model configured by settings alone, in one process (the Lambda adapter
with in-memory ports): grounding, tool calls, errors, and a long answer handed over.

Both wire formats run every test: OpenAI's Server-Sent Events and Bedrock's event stream.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_model import Script, fake_model, long_answer, normalized

from warmline.adapters.aws_lambda import lambda_handler
from warmline.agent.answerers import CONTINUE_PROMPT
from warmline.agent.app import build_app
from warmline.agent.kb import close_indexes
from warmline.agent.settings import AgentConfig
from warmline.connections.local import LocalConnections
from warmline.errors import ConfigurationError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

CID = "LLMcid0000000A="
SESSION = "VX00000000000000000000000000000077"
PROVIDERS = ("openai", "bedrock")


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    for name in ("WARMLINE_LLM_PROVIDER", "WARMLINE_LLM_MODEL", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    yield
    close_indexes()


def llm_table(provider: str, url: str, **extra: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"provider": provider, "model": "fake-model", "tools": True}
    if provider == "openai":
        table["base_url"] = url + "/v1"
    else:
        table["endpoint_url"] = url
    table.update(extra)
    return table


class Call:
    """A call through the Lambda handler; frames land in LocalConnections."""

    def __init__(self, **settings: Any) -> None:
        self.conns = LocalConnections()
        self.conns.open(CID)
        self.store = MemoryStore()
        self.app = build_app(
            store=self.store, connections=lambda ref: self.conns, config_file=None, **settings
        )
        self.out = io.StringIO()
        self.handler = lambda_handler(self.app, log=StepLogger(stream=self.out, keep=True))
        self.seen = 0
        self.send(type="setup", sessionId=SESSION, callSid="CA77", customParameters={})
        self.new_frames()

    def send(self, **frame: Any) -> None:
        event = websocket_event("MESSAGE", body=json.dumps(frame), connection_id=CID)
        assert self.handler(event, LambdaContext())["statusCode"] == 200

    def new_frames(self) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = self.conns.sent_json(CID)
        new, self.seen = frames[self.seen :], len(frames)
        return new

    def say(self, text: str) -> list[dict[str, Any]]:
        self.send(type="prompt", voicePrompt=text, lang="en-US", last=True)
        return self.new_frames()

    def until_last(self, deadline_s: float = 10.0) -> list[dict[str, Any]]:
        """Frames until one closes the talk cycle (an offloaded answer posts from a thread)."""
        frames: list[dict[str, Any]] = []
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            frames += self.new_frames()
            if frames and (frames[-1].get("last") or frames[-1]["type"] == "end"):
                return frames
            time.sleep(0.01)
        raise AssertionError(f"no closing frame: {frames}")

    def close(self) -> None:
        self.app.agent.close()  # type: ignore[attr-defined]
        self.app.close()


def spoken(frames: list[dict[str, Any]]) -> str:
    return "".join(f.get("token", "") for f in frames if not f.get("preemptible"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_prompt_holds_the_matching_passages_with_their_ids(provider: str) -> None:
    script = Script("support hours", ["We answer ", "every day. ", "Anything else?"])
    with fake_model([script]) as model:
        call = Call(llm=llm_table(provider, model.url), top_k=2)
        try:
            frames = call.say("What are your customer support hours?")
        finally:
            call.close()
    assert normalized(spoken(frames)) == "We answer every day. Anything else?"
    (request,) = model.server.requests
    body = request.json
    system = body["messages"][0]["content"] if provider == "openai" else body["system"][0]["text"]
    assert "(support-hours) Q: What are your customer support hours?" in system
    assert system.count("] (") == 2  # top_k passages, each with its id
    tools = body["tools"] if provider == "openai" else body["toolConfig"]["tools"]
    assert len(tools) == 2
    line = next(json.loads(x) for x in call.out.getvalue().splitlines() if "hitCount" in x)
    assert line["hitCount"] == 2 and line["topScore"] > 0 and line["entry"] == "support-hours"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_transfer_tool_call_hands_the_call_to_a_person(provider: str) -> None:
    script = Script(
        "cancel",
        ["Let me get someone for that. "],
        tool=("transfer_to_person", '{"reason": "wants to cancel"}'),
    )
    with fake_model([script]) as model:
        call = Call(llm=llm_table(provider, model.url))
        try:
            frames = call.say("Can I cancel my service?")
            record = call.store.get(SESSION)
        finally:
            call.close()
    assert frames[-1]["type"] == "end"
    handoff = json.loads(frames[-1]["handoffData"])
    assert handoff["reason"] == "handoff" and handoff["trigger"] == "model: wants to cancel"
    assert spoken(frames).startswith("Let me get someone for that.")
    assert "connecting you to a person" in spoken(frames)
    assert record is not None and "handoff" in record.data


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_end_call_tool_says_goodbye_and_ends(provider: str) -> None:
    script = Script("cancel", [], tool=("end_call", ""))
    with fake_model([script]) as model:
        call = Call(llm=llm_table(provider, model.url))
        try:
            frames = call.say("Can I cancel my service?")
        finally:
            call.close()
    assert [f["type"] for f in frames][-2:] == ["text", "end"]
    assert json.loads(frames[-1]["handoffData"]) == {"reason": "end"}
    assert spoken(frames) == AgentConfig().goodbye


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "script",
    [
        Script("cancel", ["Sure. "], tool=("transfer_money", "{}")),
        Script("cancel", ["Sure. "], tool=("end_call", "[1, 2]")),
        Script("cancel", ["Sure. "], tool=("end_call", '{"reason": 5}')),
        Script("cancel", error="http"),
        Script("cancel", ["Part of it. "], error="stream"),
    ],
    ids=["unknown-tool", "not-an-object", "bad-reason", "http-429", "error-mid-stream"],
)
def test_a_bad_tool_call_or_a_failure_is_spoken_as_the_offer_of_a_person(
    provider: str, script: Script
) -> None:
    with fake_model([script]) as model:
        call = Call(llm=llm_table(provider, model.url, apologize=False))
        try:
            frames = call.say("Can I cancel my service?")
        finally:
            call.close()
    assert all(f["type"] == "text" for f in frames) and frames[-1]["last"] is True
    said = normalized(spoken(frames))
    assert said.endswith(AgentConfig().dont_know)
    assert said.startswith(normalized("".join(script.tokens)))
    assert "llm_error" in call.out.getvalue()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_long_answer_is_handed_over_and_arrives_whole_and_in_order(provider: str) -> None:
    tokens = long_answer(12)
    script = Script("internet plans", tokens)
    with fake_model([script], gap_s=0.03) as model:
        call = Call(
            llm=llm_table(provider, model.url),
            offload="auto",
            worker="worker",
            integration_timeout_s=0.5,  # [limits]: the hand-over comes at 0.35 s
        )
        try:
            frames = call.new_frames() + call.say("What internet plans do you offer?")
            frames += call.until_last()
            history = call.store.get(SESSION)
        finally:
            call.close()
    assert normalized(spoken(frames)) == normalized("".join(tokens))
    assert frames[-1]["last"] is True
    first, second = model.server.requests
    continued = second.json
    text = json.dumps(continued)
    assert CONTINUE_PROMPT in text  # the worker asked the model to go on
    assert history is not None
    assert normalized(history.data["history"][-1]["text"]) == normalized("".join(tokens))


def test_offload_needs_a_worker_and_a_known_mode() -> None:
    with pytest.raises(ConfigurationError, match="worker"):
        build_app(offload="auto", config_file=None)
    with pytest.raises(ConfigurationError, match="offload"):
        build_app(offload="sometimes", worker="w", config_file=None)
    with pytest.raises(ConfigurationError, match="answer_timeout_s"):
        build_app(llm={"provider": "openai", "answer_timeout_s": "long"}, config_file=None)
    with pytest.raises(ConfigurationError, match="provider"):
        build_app(llm={"provider": "gpt"}, config_file=None)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_never_stops_a_long_answer_with_the_offer_of_a_person_before_the_limit(
    provider: str,
) -> None:
    tokens = long_answer(12)
    with fake_model([Script("internet plans", tokens)], gap_s=0.03) as model:
        call = Call(llm=llm_table(provider, model.url), integration_timeout_s=0.5)
        try:
            frames = call.say("What internet plans do you offer?")
        finally:
            call.close()
    said = normalized(spoken(frames))
    assert said.endswith(AgentConfig().dont_know) and frames[-1]["last"] is True
    cut = said[: -len(AgentConfig().dont_know)].strip()
    assert cut and normalized("".join(tokens)).startswith(cut)
    assert len(cut) < len(normalized("".join(tokens)))  # stopped: the answer outlives 0.45 s
    assert len(model.server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_always_answers_from_the_worker(provider: str) -> None:
    script = Script("support hours", ["We answer ", "every day. "])
    with fake_model([script]) as model:
        call = Call(llm=llm_table(provider, model.url), offload="always", worker="worker")
        try:
            assert call.say("What are your customer support hours?") == []  # the route: nothing
            frames = call.until_last()
        finally:
            call.close()
    assert normalized(spoken(frames)) == "We answer every day."
    (request,) = model.server.requests
    assert CONTINUE_PROMPT not in request.body.decode()
    assert '"offloaded":0' in call.out.getvalue()  # the route queued the whole turn
