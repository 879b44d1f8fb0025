"""BedrockConverseAnswerer and BedrockEmbeddings against a local server speaking the AWS
event stream; every request's SigV4 signature is checked with botocore's ``SigV4Auth``."""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from provider_servers import (
    Handler,
    Recorded,
    converse_answer,
    event,
    exception,
    frame,
    refused_port,
    scripted_server,
    string_header,
)

from warmline.agent.answerers import AnswerRequest, grounded_messages
from warmline.agent.kb import Hit
from warmline.agent.providers.bedrock import (
    BedrockConverseAnswerer,
    BedrockEmbeddings,
    converse_messages,
)
from warmline.agent.providers.errors import ProviderError
from warmline.aws.credentials import Credentials
from warmline.errors import ConfigurationError

ACCESS = "AKIDEXAMPLE0000TEST"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////session+token="
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z, pinned for the signature
HIT = Hit("router-reset", "How do I reset my router?", "Hold the button for 10 s.", (), 8.0)
REQUEST = AnswerRequest(
    "how do I reset the router",
    [HIT],
    [
        {"role": "assistant", "text": "Hi, how can I help?"},
        {"role": "user", "text": "my internet is down"},
        {"role": "user", "text": "again"},
        {"role": "assistant", "text": "Let's fix that."},
    ],
)


def answerer(url: str, token: str | None = TOKEN, **options: Any) -> BedrockConverseAnswerer:
    options.setdefault("first_token_timeout_s", 3.0)
    options.setdefault("timeout_s", 3.0)
    return BedrockConverseAnswerer(
        MODEL,
        "us-west-2",
        credentials=Credentials(ACCESS, SECRET, token),
        endpoint_url=url,
        clock=lambda: NOW,
        **options,
    )


def collect(stream: AsyncIterator[str]) -> tuple[list[str], ProviderError | None]:
    got: list[str] = []

    async def run() -> ProviderError | None:
        try:
            async for chunk in stream:
                got.append(chunk)
        except ProviderError as exc:
            return exc
        return None

    return got, asyncio.run(run())


def event_stream(frames: list[bytes], *, status: int = 200) -> Any:
    def respond(h: Handler) -> None:
        h.head(status, {"Content-Type": "application/vnd.amazon.eventstream"})
        for data in frames:
            h.chunk(data)
        h.end_chunks()

    return respond


def assert_signed_like_botocore(sent: Recorded, token: str | None = TOKEN) -> None:
    """Rebuild the request from what arrived and let botocore sign it: same signature."""
    auth = sent.headers["authorization"]
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
        auth,
    )
    assert match, auth
    access, _, region, service, signed, _ = match.groups()
    assert (access, region, service) == (ACCESS, "us-west-2", "bedrock")
    headers = {name: sent.headers[name] for name in signed.split(";")}
    request = AWSRequest(
        method=sent.method,
        url=f"http://{sent.headers['host']}{sent.path}",
        data=sent.body,
        headers=headers,
    )
    when = datetime.datetime.strptime(sent.headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        botocore.auth.SigV4Auth(BotoCredentials(ACCESS, SECRET, token), "bedrock", region).add_auth(
            request
        )
    assert request.headers["Authorization"] == auth
    assert sent.headers.get("x-amz-security-token") == token


# --- the happy path --------------------------------------------------------------------
def test_a_converse_stream_answer_and_its_signed_request() -> None:
    usages: list[Any] = []
    tokens = ["Hold the ", "**reset** button ", "for ten seconds.", " Then wait."]
    with scripted_server(event_stream(converse_answer(tokens))) as server:
        llm = answerer(server.url, on_usage=usages.append, max_tokens=200, temperature=0.1)
        raw, error = collect(llm.stream(grounded_messages(REQUEST)))
    assert error is None and raw == tokens
    assert usages == [{"inputTokens": 40, "outputTokens": 9, "totalTokens": 49}]
    (sent,) = server.requests
    assert sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["accept"] == "application/vnd.amazon.eventstream"
    assert sent.headers["x-amz-date"] == "20260921T141320Z"  # from the pinned clock
    assert_signed_like_botocore(sent)
    messages = grounded_messages(REQUEST)
    assert sent.json == {
        "messages": [
            {"role": "user", "content": [{"text": "my internet is down\nagain"}]},
            {"role": "assistant", "content": [{"text": "Let's fix that."}]},
            {"role": "user", "content": [{"text": "how do I reset the router"}]},
        ],
        "inferenceConfig": {"maxTokens": 200, "temperature": 0.1},
        "system": [{"text": messages[0]["content"]}],
    }


def test_answer_is_shaped_and_unsigned_long_term_keys_work() -> None:
    tokens = ["**Hold** the ", "button ", "for 10 s."]
    with scripted_server(event_stream(converse_answer(tokens))) as server:
        chunks, error = collect(answerer(server.url, token=None).answer(REQUEST))
    assert error is None
    assert "*" not in "".join(chunks) and "".join(chunks).startswith("Hold the button")
    assert_signed_like_botocore(server.requests[0], token=None)


def test_credentials_come_from_the_environment_at_request_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    with scripted_server(event_stream(converse_answer(["Ok."]))) as server:
        llm = BedrockConverseAnswerer(MODEL, endpoint_url=server.url, clock=lambda: NOW)
        raw, error = collect(llm.stream([{"role": "user", "content": "q"}]))
    assert (raw, error) == (["Ok."], None)
    assert_signed_like_botocore(server.requests[0])
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigurationError, match="no AWS credentials"):
        llm.stream([{"role": "user", "content": "q"}])


def test_default_endpoint_and_repr_without_secrets() -> None:
    llm = BedrockConverseAnswerer(
        MODEL, "eu-central-1", credentials=Credentials(ACCESS, SECRET, TOKEN)
    )
    assert llm.prepare([{"role": "user", "content": "q"}])[0].endpoint.host == (
        "bedrock-runtime.eu-central-1.amazonaws.com"
    )
    for text in (repr(llm), repr(BedrockEmbeddings(region="eu-central-1"))):
        assert SECRET not in text and TOKEN not in text
    with pytest.raises(ConfigurationError, match="region"):
        BedrockConverseAnswerer(MODEL, None, credentials=Credentials(ACCESS, SECRET))


# --- errors ----------------------------------------------------------------------------
def test_an_exception_event_mid_stream_is_a_stream_error() -> None:
    frames = converse_answer(["Partial "])[:2] + [
        exception("modelStreamErrorException", f"model failed; key {SECRET}")
    ]
    with scripted_server(event_stream(frames)) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert raw == ["Partial "]
    assert error is not None and error.kind == "stream"
    assert error.code == "modelStreamErrorException" and "model failed" in str(error)
    assert SECRET not in str(error) and SECRET not in repr(error)


def test_an_error_message_is_a_stream_error() -> None:
    headers = (
        string_header(":message-type", "error")
        + string_header(":error-code", "InternalFailure")
        + string_header(":error-message", "something broke")
    )
    with scripted_server(event_stream([frame(headers, b"")])) as server:
        _, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert error is not None and error.code == "InternalFailure" and "something broke" in str(error)


def test_a_corrupted_frame_is_a_protocol_error() -> None:
    frames = converse_answer(["Good ", "bad"])
    bad = bytearray(frames[2])
    bad[-8] ^= 0xFF
    with scripted_server(event_stream([frames[0], frames[1], bytes(bad)])) as server:
        raw, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert raw == ["Good "]
    assert error is not None and error.kind == "protocol" and "CRC" in str(error)


def test_a_stream_cut_inside_a_frame_or_before_message_stop_is_an_error() -> None:
    frames = converse_answer(["One "])
    with scripted_server(event_stream([frames[0], frames[1], frames[2][:10]])) as server:
        _, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert error is not None and error.kind == "protocol" and "inside a message" in str(error)
    with scripted_server(event_stream(frames[:3])) as server:
        _, error = collect(answerer(server.url).stream([{"role": "user", "content": "q"}]))
    assert error is not None and error.kind == "stream" and "messageStop" in str(error)


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [(403, "AccessDeniedException", False), (429, "ThrottlingException", True)],
)
def test_an_error_status_is_an_http_error(status: int, error_type: str, retryable: bool) -> None:
    def respond(h: Handler) -> None:
        body = json.dumps({"message": f"no access for {SECRET}"}).encode()
        h.head(
            status,
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            },
            chunked=False,
        )
        h.wfile.write(body)

    with scripted_server(respond) as server:
        raw, error = collect(answerer(server.url).answer(REQUEST))
    assert raw == []
    assert error is not None and error.kind == "http" and error.status == status
    assert error.code == error_type and error.retryable is retryable
    assert "no access for ***" in str(error) and SECRET not in str(error)


def test_a_slow_first_token_and_a_refused_connection() -> None:
    def respond(h: Handler) -> None:
        h.head(200, {"Content-Type": "application/vnd.amazon.eventstream"})
        h.chunk(event("messageStart", {"role": "assistant"}))
        h.wait_for_release()

    with scripted_server(respond) as server:
        _, error = collect(answerer(server.url, first_token_timeout_s=0.3).answer(REQUEST))
        server.release.set()
    assert error is not None and error.kind == "first_token_timeout"
    _, refused = collect(answerer(f"http://127.0.0.1:{refused_port()}").answer(REQUEST))
    assert refused is not None and refused.kind == "connect"


# --- conversation shape ----------------------------------------------------------------
def test_converse_messages_start_with_a_user_and_alternate() -> None:
    turns, system = converse_messages(
        [
            {"role": "system", "content": "S"},
            {"role": "assistant", "content": "dropped"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "c"},
            {"role": "user", "content": "d"},
        ]
    )
    assert system == [{"text": "S"}]
    assert [(t["role"], t["content"][0]["text"]) for t in turns] == [
        ("user", "a\nb"),
        ("assistant", "c"),
        ("user", "d"),
    ]


# --- embeddings ------------------------------------------------------------------------
def test_titan_embeddings_one_signed_request_per_text() -> None:
    def respond(h: Handler) -> None:
        text = json.loads(h.server.requests[-1].body)["inputText"]
        reply = {"embedding": [float(len(text)), 0.5], "inputTextTokenCount": 1}
        h.whole(200, json.dumps(reply).encode())

    with scripted_server(respond) as server:
        emb = BedrockEmbeddings(
            region="us-west-2",
            credentials=Credentials(ACCESS, SECRET, TOKEN),
            endpoint_url=server.url,
            dimensions=256,
            normalize=True,
            clock=lambda: NOW,
        )
        vectors = emb.embed(["ab", "abcd"])
    assert vectors == [[2.0, 0.5], [4.0, 0.5]]
    assert emb.model == "amazon.titan-embed-text-v2:0"
    for sent, text in zip(server.requests, ["ab", "abcd"], strict=True):
        assert sent.path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
        assert sent.json == {"inputText": text, "dimensions": 256, "normalize": True}
        assert_signed_like_botocore(sent)


def test_titan_embeddings_errors() -> None:
    def respond(h: Handler) -> None:
        h.whole(400, json.dumps({"message": "Malformed input request"}).encode())

    with scripted_server(respond) as server:
        emb = BedrockEmbeddings(
            region="us-west-2", credentials=Credentials(ACCESS, SECRET), endpoint_url=server.url
        )
        with pytest.raises(ProviderError, match="Malformed input") as info:
            emb.embed(["x"])
    assert info.value.status == 400 and info.value.kind == "http"
