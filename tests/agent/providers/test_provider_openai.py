"""OpenAIChatAnswerer and OpenAIEmbeddings against real local servers speaking SSE."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from provider_servers import (
    Handler,
    chat_chunk,
    openai_error,
    refused_port,
    scripted_server,
    sse,
    sse_answer,
)

from warmline.agent.answerers import AnswerRequest, grounded_messages
from warmline.agent.kb import Hit
from warmline.agent.providers.errors import ProviderError
from warmline.agent.providers.openai import OpenAIChatAnswerer, OpenAIEmbeddings
from warmline.errors import ConfigurationError, WarmlineError

KEY = "sk-test-SECRET-0123456789abcdef"
HIT = Hit(
    "support-hours",
    "What are your support hours?",
    "Support is open from 7 am to 11 pm, every day.",
    ("support",),
    9.5,
)
REQUEST = AnswerRequest(
    "when can I call support",
    [HIT],
    [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "Hello!"}],
)


def answerer(url: str, **options: Any) -> OpenAIChatAnswerer:
    options.setdefault("first_token_timeout_s", 3.0)
    options.setdefault("timeout_s", 3.0)
    return OpenAIChatAnswerer(url + "/v1", KEY, "test-model", **options)


def collect(stream: AsyncIterator[str]) -> tuple[list[str], ProviderError | None]:
    """Every chunk until the end or the error (the error is returned, not raised)."""
    got: list[str] = []

    async def run() -> ProviderError | None:
        try:
            async for chunk in stream:
                got.append(chunk)
        except ProviderError as exc:
            return exc
        return None

    return got, asyncio.run(run())


def stream_events(events: list[bytes], *, split_at: int | None = None) -> Any:
    """A chunked SSE response; event ``split_at`` is cut across two chunks."""

    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        for n, data in enumerate(events):
            if n == split_at:
                h.chunk(data[:7])
                h.chunk(data[7:])
            else:
                h.chunk(data)
        h.end_chunks()

    return respond


def assert_reader_threads_ended() -> None:
    """Closing a stream waits for its reader thread (else a frozen Lambda keeps it)."""
    assert [t.name for t in threading.enumerate() if t.name == "warmline-provider"] == []


def assert_no_key(error: BaseException) -> None:
    assert KEY not in str(error) and KEY not in repr(error)
    cause = error.__cause__
    assert cause is None or KEY not in str(cause)


# --- the happy path --------------------------------------------------------------------
def test_a_streamed_answer_arrives_token_by_token_and_the_request_is_right() -> None:
    usages: list[Any] = []
    tokens = ["Support ", "is **open** ", "from 7 am ", "to 11 pm.", " Every day."]
    with scripted_server(stream_events(sse_answer(tokens), split_at=3)) as server:
        llm = answerer(
            server.url,
            extra_headers={"OpenAI-Organization": "org-1"},
            include_usage=True,
            on_usage=usages.append,
            max_tokens=123,
            temperature=0.5,
        )
        raw, error = collect(llm.stream(grounded_messages(REQUEST)))
    assert error is None
    assert raw == tokens
    assert usages == [{"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}]
    (sent,) = server.requests
    assert sent.method == "POST" and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.json == {
        "model": "test-model",
        "messages": grounded_messages(REQUEST),
        "stream": True,
        "max_tokens": 123,
        "temperature": 0.5,
        "stream_options": {"include_usage": True},
    }


def test_answer_shapes_the_stream_for_speech_with_crlf_events() -> None:
    tokens = ["**Support** ", "is open ", "from 7 am to 11 pm, ", "see `brightwave.example/help`."]
    events = [e.replace(b"\n", b"\r\n") for e in sse_answer(tokens, usage=False)]
    with scripted_server(stream_events(events)) as server:
        chunks, error = collect(answerer(server.url).answer(REQUEST))
    assert error is None
    text = "".join(chunks)
    assert "*" not in text and "`" not in text
    assert text.startswith("Support is open from 7 am to 11 pm")
    (sent,) = server.requests
    body = sent.json
    assert (
        body["messages"][0]["role"] == "system"
        and "support-hours" in body["messages"][0]["content"]
    )
    assert body["messages"][1:] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "when can I call support"},
    ]
    assert "stream_options" not in body


def test_a_body_without_chunking_that_ends_with_the_connection_works() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"}, chunked=False)
        for data in sse_answer(["Plain ", "body."]):
            h.wfile.write(data)
        h.wfile.flush()

    with scripted_server(respond) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert (raw, error) == (["Plain ", "body."], None)


def test_no_key_means_no_authorization_header() -> None:
    with scripted_server(stream_events(sse_answer(["Hi."]))) as server:
        llm = OpenAIChatAnswerer(server.url, "", "llama3.2")
        raw, error = collect(llm.stream([{"role": "user", "content": "q"}]))
    assert (raw, error) == (["Hi."], None)
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].path == "/chat/completions"


# --- errors before the stream ----------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "type_", "code", "retryable"),
    [
        (401, "invalid_request_error", "invalid_api_key", False),
        (429, "requests", "rate_limit_exceeded", True),
        (500, "server_error", None, True),
    ],
)
def test_an_error_status_becomes_a_provider_error_without_the_key(
    status: int, type_: str, code: str | None, retryable: bool
) -> None:
    # The server quotes the key back, as OpenAI's 401 does (partly masked there).
    message = f"Incorrect API key provided: {KEY}. Find your key at the dashboard."
    with scripted_server(openai_error(status, message, type_, code)) as server:
        raw, error = collect(answerer(server.url).answer(REQUEST))
    assert raw == []
    assert isinstance(error, ProviderError) and isinstance(error, WarmlineError)
    assert error.kind == "http" and error.status == status
    assert error.code == (code or type_)
    assert error.retryable is retryable
    assert f"HTTP {status}" in str(error) and "Incorrect API key provided" in str(error)
    assert_no_key(error)


def test_a_non_json_error_body_is_quoted() -> None:
    def respond(h: Handler) -> None:
        h.whole(502, b"<html>Bad Gateway</html>", "text/html")

    with scripted_server(respond) as server:
        _, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert error is not None and error.status == 502 and "Bad Gateway" in str(error)


def test_connection_refused_is_a_connect_error() -> None:
    llm = answerer(f"http://127.0.0.1:{refused_port()}")
    raw, error = collect(llm.answer(REQUEST))
    assert raw == []
    assert error is not None and error.kind == "connect" and error.retryable
    assert "refused" in str(error)
    assert_no_key(error)


# --- errors during the stream ----------------------------------------------------------
def test_the_server_closing_mid_stream_is_a_stream_error_after_the_first_tokens() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        h.chunk(sse(chat_chunk("First ")))
        h.chunk(sse(chat_chunk("second ")))
        h.wfile.write(b'40\r\ndata: {"choi')  # half a chunk, then the socket closes

    with scripted_server(respond) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert raw == ["First ", "second "]
    assert error is not None and error.kind == "stream"
    assert "mid-response" in str(error)


def test_a_stream_that_ends_without_done_is_an_error() -> None:
    with scripted_server(stream_events([sse(chat_chunk("Cut "))])) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert raw == ["Cut "]
    assert error is not None and error.kind == "stream" and "[DONE]" in str(error)


def test_an_error_event_mid_stream_is_raised_with_its_code() -> None:
    events = [
        sse(chat_chunk("Partial ")),
        sse({"error": {"message": f"overloaded ({KEY})", "type": "server_error", "code": "busy"}}),
    ]
    with scripted_server(stream_events(events)) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert raw == ["Partial "]
    assert error is not None and error.kind == "stream" and error.code == "busy"
    assert "overloaded" in str(error)
    assert_no_key(error)


@pytest.mark.parametrize(
    "bad",
    [
        b"data: {not json\n\n",
        b"data: [1, 2]\n\n",
        b'data: {"choices": 3}\n\n',
        b"data: \xff\xfe not UTF-8\n\n",
    ],
)
def test_malformed_events_are_protocol_errors(bad: bytes) -> None:
    with scripted_server(stream_events([sse(chat_chunk("Ok ")), bad])) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert raw == ["Ok "]
    assert error is not None and error.kind == "protocol"


# --- slow models -----------------------------------------------------------------------
def test_a_slow_first_token_is_a_first_token_timeout() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        h.chunk(sse(chat_chunk("", role=True)))  # bytes, but no text yet
        h.chunk(b": keep-alive\n\n")
        h.wait_for_release()

    with scripted_server(respond) as server:
        llm = answerer(server.url, first_token_timeout_s=0.3, timeout_s=5.0)
        raw, error = collect(llm.answer(REQUEST))
        assert_reader_threads_ended()  # before the server lets go
        server.release.set()
    assert raw == []
    assert error is not None and error.kind == "first_token_timeout" and error.retryable
    assert "0.3 s" in str(error)


def test_a_response_head_that_never_comes_counts_against_the_first_token_budget() -> None:
    def respond(h: Handler) -> None:
        h.wait_for_release()

    with scripted_server(respond) as server:
        llm = answerer(server.url, first_token_timeout_s=0.3, timeout_s=5.0)
        _, error = collect(llm.stream([{"role": "user", "content": "q"}]))
        server.release.set()
    assert error is not None and error.kind == "first_token_timeout"


def test_a_stall_after_the_first_token_is_a_timeout() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        h.chunk(sse(chat_chunk("Started ")))
        h.wait_for_release()

    with scripted_server(respond) as server:
        llm = answerer(server.url, first_token_timeout_s=5.0, timeout_s=0.3)
        raw, error = collect(llm.stream([{"role": "user", "content": "q"}]))
        server.release.set()
    assert raw == ["Started "]
    assert error is not None and error.kind == "timeout"


def test_a_body_held_open_after_done_still_ends_the_answer() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        for data in sse_answer(["Done ", "but open."]):
            h.chunk(data)
        h.wait_for_release()  # no terminating chunk

    with scripted_server(respond) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
        assert_reader_threads_ended()
        server.release.set()
    assert (raw, error) == (["Done ", "but open."], None)


def test_stopping_early_closes_the_connection() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "text/event-stream"})
        h.chunk(sse(chat_chunk("One ")))
        h.wait_for_release()

    async def first_then_stop(stream: AsyncIterator[str]) -> str:
        async for chunk in stream:
            await stream.aclose()  # type: ignore[attr-defined]
            return chunk
        return ""

    with scripted_server(respond) as server:
        llm = answerer(server.url)
        got = asyncio.run(first_then_stop(llm.stream([{"role": "user", "content": "q"}])))
        assert_reader_threads_ended()
        server.release.set()
    assert got == "One "


# --- configuration and secrets ---------------------------------------------------------
def test_repr_never_shows_the_key() -> None:
    llm = OpenAIChatAnswerer("https://api.openai.com/v1", KEY, "gpt-4o-mini")
    emb = OpenAIEmbeddings("https://api.openai.com/v1", KEY, "text-embedding-3-small")
    assert KEY not in repr(llm) and KEY not in repr(emb)
    assert "gpt-4o-mini" in repr(llm)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        OpenAIChatAnswerer("ftp://x", KEY, "m")
    with pytest.raises(ConfigurationError):
        OpenAIChatAnswerer("http://127.0.0.1:1", KEY, "")
    with pytest.raises(ConfigurationError):
        OpenAIChatAnswerer("http://127.0.0.1:1", KEY, "m", first_token_timeout_s=0)


def test_from_environment() -> None:
    env = {"WARMLINE_LLM_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": KEY}
    llm = OpenAIChatAnswerer.from_environment({**env, "WARMLINE_LLM_MODEL": "m1"})
    assert llm.endpoint.port == 9 and llm.model == "m1"
    assert llm.prepare([])[3]["Authorization"] == f"Bearer {KEY}"
    with pytest.raises(ConfigurationError):
        OpenAIChatAnswerer.from_environment(env)


# --- embeddings ------------------------------------------------------------------------
def test_embeddings_are_batched_and_ordered_by_index() -> None:
    def respond(h: Handler) -> None:
        texts = json.loads(h.server.requests[-1].body)["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), float(i)]}
            for i, t in enumerate(texts)
        ]
        h.whole(200, json.dumps({"object": "list", "data": data[::-1], "model": "e"}).encode())

    with scripted_server(respond) as server:
        emb = OpenAIEmbeddings(server.url + "/v1", KEY, "embed-1", batch_size=2)
        vectors = emb.embed(["a", "bb", "ccc"])
    assert vectors == [[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]
    assert emb.model == "embed-1"
    assert [r.json["input"] for r in server.requests] == [["a", "bb"], ["ccc"]]
    assert all(r.path == "/v1/embeddings" for r in server.requests)
    assert server.requests[0].json["model"] == "embed-1"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_embeddings_errors_are_provider_errors() -> None:
    with scripted_server(
        openai_error(401, f"bad key {KEY}", "invalid_request_error", "invalid_api_key")
    ) as server:
        emb = OpenAIEmbeddings(server.url, KEY, "embed-1")
        with pytest.raises(ProviderError) as info:
            emb.embed(["a"])
    assert info.value.status == 401 and info.value.code == "invalid_api_key"
    assert_no_key(info.value)

    with scripted_server(lambda h: h.whole(200, b'{"data": [{"index": 0}]}')) as server:
        with pytest.raises(ProviderError, match="without data"):
            OpenAIEmbeddings(server.url, KEY, "embed-1").embed(["a"])

    with pytest.raises(ProviderError) as refused:
        OpenAIEmbeddings(f"http://127.0.0.1:{refused_port()}", KEY, "e").embed(["a"])
    assert refused.value.kind == "connect"
