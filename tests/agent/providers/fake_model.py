"""A fake model on 127.0.0.1 that answers like OpenAI's chat completions and Bedrock's
ConverseStream: realistic frames (role chunk, content deltas, finish, usage, ``[DONE]``;
messageStart, contentBlockDelta, messageStop, metadata), tool calls, errors, and its own
clock (tokens leave ``gap_s`` apart, so a long answer really takes long).

An answer is chosen by a keyword of the caller's question (:class:`Script`). A request
that asks the model to continue (the part already spoken as the assistant's turn, then
the agent's continue instruction) is answered with the rest of the same answer after
that part; if the part is not a prefix of the answer the fake answers with an error
event, so a handover that loses or repeats words fails the test that made it.

Every request is recorded (:attr:`ScriptedServer.requests`), and for each the moment the
first sentence's last token was written (:attr:`FakeModel.first_sentence_at`, monotonic).
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider_servers import (
    Handler,
    ScriptedServer,
    chat_chunk,
    event,
    exception,
    scripted_server,
    sse,
    usage_chunk,
)

from warmline.agent.answerers import CONTINUE_PROMPT
from warmline.agent.providers.transport import close_idle_connections

#: Words of the long answer: distinct, so any token's place in the answer is known.
WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def long_answer(sentences: int) -> list[str]:
    """Tokens of an answer of ``sentences`` sentences, three tokens each."""
    tokens: list[str] = []
    for n in range(sentences):
        word = WORDS[n % len(WORDS)] + ("" if n < len(WORDS) else str(n // len(WORDS)))
        tokens += ["Point ", f"{word} ", "noted. "]
    return tokens


def normalized(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Script:
    """What the model does for a question containing ``keyword``.

    Attributes:
        tokens: text tokens, in order.
        tool: a tool call made after the tokens: ``(name, arguments JSON text)``.
        error: ``"http"`` (429 before streaming) or ``"stream"`` (an error event after
            the tokens).
    """

    keyword: str
    tokens: Sequence[str] = ()
    tool: tuple[str, str] | None = None
    error: str | None = None


@dataclass
class FakeModel:
    server: ScriptedServer
    scripts: list[Script]
    gap_s: float
    first_sentence_at: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def questions(self) -> list[str]:
        return [_question(r.json)[0] for r in self.server.requests]


def _messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of an OpenAI or a Converse request, system prompts first."""
    out: list[tuple[str, str]] = []
    for block in body.get("system", []):
        out.append(("system", block["text"]))
    for message in body["messages"]:
        content = message["content"]
        text = content if isinstance(content, str) else "".join(c["text"] for c in content)
        out.append((message["role"], text))
    return out


def _question(body: dict[str, Any]) -> tuple[str, str]:
    """The caller's question and the part of the answer already spoken."""
    messages = _messages(body)
    last = messages[-1][1]
    if CONTINUE_PROMPT in last:  # Converse merges it into the last user turn
        spoken = next(t for r, t in reversed(messages) if r == "assistant")
        before = [t for r, t in messages if r == "user"]
        question = before[-2] if last.strip() == CONTINUE_PROMPT else last
        return question.replace(CONTINUE_PROMPT, "").strip(), spoken
    # Converse merges consecutive user turns into one: the question is the last line
    return last.strip().splitlines()[-1], ""


def _rest(tokens: Sequence[str], spoken: str) -> list[str] | None:
    """The tokens after ``spoken``, or None when it is not a prefix of the answer."""
    if not spoken:
        return list(tokens)
    said, target = "", normalized(spoken)
    for n, token in enumerate(tokens):
        if normalized(said) == target:
            return list(tokens[n:])
        said += token
    return [] if normalized(said) == target else None


@contextmanager
def fake_model(scripts: list[Script], *, gap_s: float = 0.0) -> Iterator[FakeModel]:
    """Serve ``scripts`` until the block ends (both wire formats, by request path)."""
    holder: list[FakeModel] = []

    def respond(h: Handler) -> None:
        model = holder[0]
        body = h.recorded.json
        question, spoken = _question(body)
        script = next((s for s in model.scripts if s.keyword in question.lower()), None)
        bedrock = h.path.endswith("/converse-stream")
        if script is None:
            script = Script("", ["I can't say."])
        if script.error == "http":
            _http_error(h, bedrock)
            return
        tokens = _rest(script.tokens, spoken)
        h.head(
            200,
            {
                "Content-Type": "application/vnd.amazon.eventstream"
                if bedrock
                else "text/event-stream"
            },
        )
        write = _bedrock_writer(h) if bedrock else _openai_writer(h)
        if tokens is None:
            write.error(f"spoken part is not a prefix of the answer: {spoken[-60:]!r}")
            h.end_chunks()
            return
        write.start()
        sentence_done = False
        for token in tokens:
            time.sleep(model.gap_s)  # the fake model's own pace
            write.text(token)
            if not sentence_done and re.search(r"[.!?]\s*$", token):
                sentence_done = True
                model.first_sentence_at.append(time.monotonic())
        if script.tool is not None:
            write.tool(*script.tool)
        if script.error == "stream":
            write.error("the model overloaded mid-answer")
        else:
            write.stop("tool" if script.tool else "stop")
        h.end_chunks()

    with scripted_server(respond, keep_alive=True) as server:
        model = FakeModel(server, scripts, gap_s)
        holder.append(model)
        try:
            yield model
        finally:  # the server's handlers end once the client's kept connections close
            close_idle_connections()


def _http_error(h: Handler, bedrock: bool) -> None:
    if bedrock:
        body = json.dumps({"message": "Too many requests, please wait."}).encode()
        h.head(
            429,
            {
                "Content-Type": "application/json",
                "x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/",
                "Content-Length": str(len(body)),
            },
            chunked=False,
        )
    else:
        error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}
        body = json.dumps({"error": error}).encode()
        h.head(
            429,
            {"Content-Type": "application/json", "Content-Length": str(len(body))},
            chunked=False,
        )
    h.wfile.write(body)
    h.wfile.flush()


class _openai_writer:
    def __init__(self, h: Handler) -> None:
        self.h = h

    def start(self) -> None:
        self.h.chunk(sse(chat_chunk("", role=True)))

    def text(self, token: str) -> None:
        self.h.chunk(sse(chat_chunk(token)))

    def tool(self, name: str, arguments: str) -> None:
        first = chat_chunk()
        first["choices"][0]["delta"] = {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
            ]
        }
        self.h.chunk(sse(first))
        for n in range(0, len(arguments), 5):  # arguments arrive a few characters at a time
            piece = chat_chunk()
            piece["choices"][0]["delta"] = {
                "tool_calls": [{"index": 0, "function": {"arguments": arguments[n : n + 5]}}]
            }
            self.h.chunk(sse(piece))

    def stop(self, why: str) -> None:
        self.h.chunk(sse(chat_chunk(finish="tool_calls" if why == "tool" else "stop")))
        self.h.chunk(sse(usage_chunk()))
        self.h.chunk(sse("[DONE]"))

    def error(self, message: str) -> None:
        self.h.chunk(sse({"error": {"message": message, "type": "server_error", "code": None}}))


class _bedrock_writer:
    def __init__(self, h: Handler) -> None:
        self.h = h
        self.block = 0

    def start(self) -> None:
        self.h.chunk(event("messageStart", {"role": "assistant"}))

    def text(self, token: str) -> None:
        delta = {"contentBlockIndex": self.block, "delta": {"text": token}}
        self.h.chunk(event("contentBlockDelta", delta))

    def tool(self, name: str, arguments: str) -> None:
        self.h.chunk(event("contentBlockStop", {"contentBlockIndex": self.block}))
        self.block += 1
        use = {"toolUseId": "tooluse_1", "name": name}
        self.h.chunk(
            event("contentBlockStart", {"contentBlockIndex": self.block, "start": {"toolUse": use}})
        )
        for n in range(0, len(arguments), 5):
            delta = {"toolUse": {"input": arguments[n : n + 5]}}
            self.h.chunk(
                event("contentBlockDelta", {"contentBlockIndex": self.block, "delta": delta})
            )

    def stop(self, why: str) -> None:
        self.h.chunk(event("contentBlockStop", {"contentBlockIndex": self.block}))
        reason = "tool_use" if why == "tool" else "end_turn"
        self.h.chunk(event("messageStop", {"stopReason": reason}))
        usage = {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49}
        self.h.chunk(event("metadata", {"usage": usage, "metrics": {"latencyMs": 100}}))

    def error(self, message: str) -> None:
        self.h.chunk(exception("modelStreamErrorException", message))


#: The example that runs against the fake model in tests and in bench/turn_latency.py.
LLM_EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "llm-agent"


def example_under_dev(model_url: str, sessions: Path, *, auth_token: str, api_key: str) -> Any:
    """``examples/llm-agent``'s dev config as it ships, with its model at ``model_url``:
    the base URL is the one setting overridden (``WARMLINE_LLM_BASE_URL``); the functions
    get a Twilio token and a key, as a local, uncommitted config would give them."""
    from warmline.config import parse_config

    source = LLM_EXAMPLE / "warmline.toml"
    data: dict[str, Any] = tomllib.loads(source.read_text())
    data.pop("deploy")
    data["schedules"] = {}
    for fn in data["functions"].values():
        fn["environment"] = {
            **fn.get("environment", {}),
            "TWILIO_AUTH_TOKEN": auth_token,
            "OPENAI_API_KEY": api_key,
            "WARMLINE_LLM_BASE_URL": model_url + "/v1",
            "WARMLINE_SQLITE_PATH": str(sessions),
        }
    return parse_config(data, base_dir=LLM_EXAMPLE, source=source)
