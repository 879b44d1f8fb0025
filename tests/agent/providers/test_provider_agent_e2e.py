"""The agent app answering through the Lambda adapter with an LLM on a local SSE server;
the apology on failure; choosing a provider from configuration; import cost."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from provider_servers import Handler, chat_chunk, scripted_server, sse, sse_answer

from warmline.adapters.aws_lambda import lambda_handler
from warmline.agent.answerers import AnswerRequest
from warmline.agent.app import build_app
from warmline.agent.kb import close_indexes
from warmline.agent.providers import (
    ApologizingAnswerer,
    BedrockConverseAnswerer,
    OpenAIChatAnswerer,
    ProviderError,
    answerer_from_config,
)
from warmline.agent.providers.fallback import DEFAULT_APOLOGY
from warmline.connections.local import LocalConnections
from warmline.errors import ConfigurationError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event

CID = "R1kmxc2VNjMCFIA="
SESSION = "VX00000000000000000000000000000002"
KEY = "sk-e2e-SECRET-abcdef0123456789"


@pytest.fixture(autouse=True)
def _close_indexes() -> Iterator[None]:
    yield
    close_indexes()


class Call:
    """A ConversationRelay call through the Lambda handler; frames land in LocalConnections."""

    def __init__(self, answerer: Any) -> None:
        self.conns = LocalConnections()
        self.conns.open(CID)
        self.store = MemoryStore()
        self.app = build_app(
            store=self.store, connections=lambda ref: self.conns, answerer=answerer
        )
        self.out = io.StringIO()
        self.log = StepLogger(stream=self.out, keep=True)
        self.handler = lambda_handler(self.app, log=self.log)
        self.seen = 0

    def send(self, **frame: Any) -> list[dict[str, Any]]:
        event = websocket_event("MESSAGE", body=json.dumps(frame), connection_id=CID)
        assert self.handler(event, LambdaContext())["statusCode"] == 200
        frames: list[dict[str, Any]] = self.conns.sent_json(CID)
        new, self.seen = frames[self.seen :], len(frames)
        return new

    def setup(self) -> None:
        self.send(
            type="setup",
            sessionId=SESSION,
            callSid="CA00000000000000000000000000000002",
            accountSid="AC0",
            **{"from": "+15555550100", "to": "+15555550199"},
            customParameters={},
        )

    def say(self, text: str) -> list[dict[str, Any]]:
        return self.send(type="prompt", voicePrompt=text, lang="en-US", last=True)

    @property
    def history(self) -> list[dict[str, Any]]:
        record = self.store.get(SESSION)
        assert record is not None
        return list(record.data.get("history", []))

    def close(self) -> None:
        self.app.close()


def chunked_sse(events: list[bytes]) -> Any:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        for data in events:
            h.chunk(data)
        h.end_chunks()

    return respond


def test_the_agent_streams_an_llm_answer_through_the_lambda_adapter() -> None:
    tokens = [
        "Our **support** team ",
        "is available ",
        "from 7 am ",
        "to 11 pm. ",
        "Anything else?",
    ]
    with scripted_server(chunked_sse(sse_answer(tokens))) as server:
        llm = OpenAIChatAnswerer(server.url + "/v1", KEY, "e2e-model", first_token_timeout_s=3.0)
        call = Call(llm)
        try:
            call.setup()
            frames = call.say("What are your customer support hours?")
        finally:
            call.close()
    texts = [f for f in frames if f["type"] == "text"]
    assert len(texts) >= 2
    assert texts[-1]["last"] is True and all(f["last"] is False for f in texts[:-1])
    spoken = "".join(f["token"] for f in texts)
    assert spoken.strip() == "Our support team is available from 7 am to 11 pm. Anything else?"
    assert call.history[-2:] == [
        {"role": "user", "text": "What are your customer support hours?"},
        {"role": "assistant", "text": spoken},
    ]
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    messages = sent.json["messages"]
    assert "(support-hours)" in messages[0]["content"]  # grounded in the retrieved entry
    assert messages[-1] == {"role": "user", "content": "What are your customer support hours?"}
    assert {"role": "assistant", "content": call.history[0]["text"]} in messages  # greeting
    assert call.out.getvalue() and KEY not in call.out.getvalue()


def test_a_slow_model_becomes_a_spoken_apology() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        h.chunk(sse(chat_chunk("", role=True)))
        h.wait_for_release()

    errors: list[ProviderError] = []
    with scripted_server(respond) as server:
        llm = OpenAIChatAnswerer(server.url, KEY, "m", first_token_timeout_s=0.3)
        call = Call(ApologizingAnswerer(llm, on_error=errors.append))
        try:
            call.setup()
            frames = call.say("What are your customer support hours?")
        finally:
            server.release.set()
            call.close()
    assert "".join(f["token"] for f in frames) == DEFAULT_APOLOGY
    assert frames[-1]["last"] is True
    assert [e.kind for e in errors] == ["first_token_timeout"]
    assert KEY not in call.out.getvalue()


def test_an_apology_follows_what_was_already_said() -> None:
    class Failing:
        async def _gen(self) -> Any:
            yield "Half an answer."
            raise ProviderError("boom", provider="openai", kind="stream")

        def answer(self, request: AnswerRequest) -> Any:
            return self._gen()

    async def run() -> list[str]:
        stream = ApologizingAnswerer(Failing(), apology="Sorry.").answer(AnswerRequest("q", []))
        return [c async for c in stream]  # type: ignore[union-attr]

    import asyncio

    assert asyncio.run(run()) == ["Half an answer.", " Sorry."]
    plain = ApologizingAnswerer(type("S", (), {"answer": lambda self, r: ["a", "b"]})())
    assert plain.answer(AnswerRequest("q", [])) == ["a", "b"]


# --- configuration ---------------------------------------------------------------------
def test_no_provider_configured_means_none() -> None:
    assert answerer_from_config({}, {}) is None
    assert answerer_from_config(None, {}) is None


def test_an_openai_provider_from_the_table_and_the_environment() -> None:
    table = {
        "provider": "openai",
        "base_url": "http://127.0.0.1:11434/v1",
        "model": "llama3.2",
        "api_key_env": "MY_KEY",
        "first_token_timeout_s": 2,
        "max_tokens": 99,
    }
    wrapped = answerer_from_config(table, {"MY_KEY": KEY})
    assert isinstance(wrapped, ApologizingAnswerer)
    llm = wrapped.inner
    assert isinstance(llm, OpenAIChatAnswerer)
    assert (llm.model, llm.first_token_timeout_s, llm.max_tokens) == ("llama3.2", 2.0, 99)
    assert llm.prepare([])[3]["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(wrapped)
    env = {"WARMLINE_LLM_MODEL": "other", "WARMLINE_LLM_PROVIDER": "openai"}
    bare = answerer_from_config({"apologize": False}, env)
    assert isinstance(bare, OpenAIChatAnswerer) and bare.model == "other"


def test_a_bedrock_provider_from_the_table() -> None:
    table = {"provider": "bedrock", "model": "amazon.nova-micro-v1:0", "region": "eu-west-1"}
    wrapped = answerer_from_config({**table, "apologize": False}, {})
    assert isinstance(wrapped, BedrockConverseAnswerer) and wrapped.region == "eu-west-1"


@pytest.mark.parametrize(
    "table",
    [
        {"provider": "gpt"},
        {"provider": "openai"},
        {"provider": "openai", "model": "m", "colour": "blue"},
        {"provider": "openai", "model": "m", "timeout_s": "soon"},
        {"provider": "openai", "model": "m", "temperature": True},
    ],
)
def test_bad_configuration_is_refused(table: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        answerer_from_config(table, {})


def test_the_providers_load_no_third_party_http_or_aws_client() -> None:
    code = (
        "import sys, warmline.agent.providers as p\n"
        "before = set(sys.modules)\n"
        "p.OpenAIChatAnswerer, p.BedrockConverseAnswerer, p.BedrockEmbeddings\n"
        "import json\n"
        "print(json.dumps([sorted(before), sorted(sys.modules)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    before, after = json.loads(out.stdout)
    assert not [m for m in before if m.startswith("warmline.agent.providers.")]
    heavy = ("httpx", "httpcore", "botocore", "boto3", "openai", "requests", "urllib3", "ssl")
    assert sorted(m for m in after if m.split(".")[0] in heavy) == []
