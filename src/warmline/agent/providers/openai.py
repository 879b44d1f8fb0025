"""OpenAI-compatible chat completions (streamed) and embeddings, over any base URL.

The same wire format is served by OpenAI (``https://api.openai.com/v1``), vLLM
(``http://host:8000/v1``), Ollama (``http://localhost:11434/v1``), LM Studio
(``http://localhost:1234/v1``), llama.cpp's server and most gateways, so one client covers
them: ``POST {base_url}/chat/completions`` with ``"stream": true`` answers
``text/event-stream`` whose events are ``data: {chat.completion.chunk}`` and a final
``data: [DONE]``; the text is in ``choices[0].delta.content``. With
``stream_options.include_usage`` a last chunk before ``[DONE]`` has ``"choices": []`` and
the token ``usage``. An error before streaming is an HTTP status with
``{"error": {"message", "type", "code"}}``; an error during streaming arrives as a
``data: {"error": {...}}`` event.

No SDK: the ``openai`` package costs far more to import than the answer takes to start,
and warmline's own HTTP/1.1 client (:mod:`.transport`) does the job. The API key is sent
as ``Authorization: Bearer``; it is kept out of ``repr``, errors and logs, and omitted
when empty (local servers need none).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from warmline.agent.answerers import SYSTEM_PROMPT
from warmline.agent.providers.errors import ErrorKind, ProviderError, redact
from warmline.agent.providers.sse import SSEDecoder
from warmline.agent.providers.streaming import PreparedRequest, stream_tokens
from warmline.agent.providers.transport import UsageCallback, parse_base_url, prewarm, request

if TYPE_CHECKING:
    from warmline.agent.answerers import AnswerRequest

__all__ = [
    "DEFAULT_BASE_URL",
    "PROVIDER",
    "ChatChunkParser",
    "OpenAIChatAnswerer",
    "OpenAIEmbeddings",
    "openai_http_error",
]

#: The provider name in errors and logs.
PROVIDER = "openai"
#: OpenAI's own API; any compatible server's ``.../v1`` works the same.
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: The end-of-stream sentinel event.
_DONE = "[DONE]"
#: Inputs per ``/embeddings`` request (OpenAI accepts up to 2048; servers vary).
EMBEDDINGS_BATCH = 256
#: Characters of a non-JSON error body quoted in the error message.
_BODY_EXCERPT = 200


def openai_http_error(
    status: int, headers: Mapping[str, str], body: bytes, *, secrets: Sequence[str | None] = ()
) -> ProviderError:
    """An OpenAI-style error response as a :class:`ProviderError` (``kind="http"``)."""
    message, code = _error_fields(body)
    retry_after = headers.get("retry-after")
    if retry_after:
        message += f" (retry after {retry_after} s)"
    return ProviderError(
        redact(f"HTTP {status}: {message}", secrets),
        provider=PROVIDER,
        kind="http",
        status=status,
        code=code,
    )


def _error_fields(body: bytes) -> tuple[str, str | None]:
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return (text[:_BODY_EXCERPT] or "no error body"), None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        message = str(error.get("message") or text[:_BODY_EXCERPT])
        code = error.get("code") or error.get("type")
        return message, None if code is None else str(code)
    return str(error)[:_BODY_EXCERPT], None


class ChatChunkParser:
    """``chat.completion.chunk`` SSE events -> ``delta.content`` tokens.

    Args:
        on_usage: called with the ``usage`` object when a chunk carries one.
        secrets: redacted from error messages.
    """

    def __init__(
        self, *, on_usage: UsageCallback | None = None, secrets: Sequence[str | None] = ()
    ) -> None:
        self._decoder = SSEDecoder()
        self._on_usage = on_usage
        self._secrets = secrets
        self.done = False
        self.finish_reason: str | None = None
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments so far]

    def feed(self, data: bytes) -> list[Any]:
        """Tokens in the events ``data`` completes (see :class:`.streaming.TokenParser`)."""
        try:
            events = self._decoder.feed(data)
        except ValueError as exc:
            raise self._error(f"malformed event stream: {exc}", "protocol") from exc
        tokens: list[Any] = []
        for event in events:
            if self.done:
                break
            if event.data.strip() == _DONE:
                self.done = True
                break
            tokens.extend(self._chunk(event.data))
        if self._calls and (self.done or self.finish_reason is not None):
            tokens.extend(self._tool_calls())
        return tokens

    def _tool_calls(self) -> list[Any]:
        """The streamed tool calls, complete and checked (:mod:`warmline.agent.tools`)."""
        from warmline.agent.tools import read_tool_call

        calls, self._calls = self._calls, {}
        out: list[Any] = []
        for index in sorted(calls):
            call_id, name, arguments = calls[index]
            try:
                out.append(read_tool_call(name, arguments, call_id))
            except ValueError as exc:
                raise self._error(f"invalid tool call: {exc}", "protocol") from exc
        return out

    def _tool_delta(self, delta: dict[str, Any]) -> None:
        """Gather ``delta.tool_calls`` pieces (the arguments arrive a few characters at a time)."""
        for piece in delta.get("tool_calls") or []:
            if not isinstance(piece, dict):
                raise self._error("a tool call is not an object", "protocol")
            index = piece.get("index", 0)
            call = self._calls.setdefault(index if isinstance(index, int) else 0, ["", "", ""])
            function = piece.get("function") or {}
            if isinstance(piece.get("id"), str):
                call[0] = piece["id"]
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    call[1] += function["name"]
                if isinstance(function.get("arguments"), str):
                    call[2] += function["arguments"]

    def finish(self) -> None:
        """At the end of the body: fine after ``[DONE]`` or a ``finish_reason``."""
        if not self.done and self.finish_reason is None:
            raise self._error("the stream ended before [DONE]", "stream")

    def _chunk(self, data: str) -> list[Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise self._error(f"an event is not JSON: {data[:80]!r}", "protocol") from exc
        if not isinstance(chunk, dict):
            raise self._error("an event is not a JSON object", "protocol")
        if "error" in chunk or chunk.get("object") == "error":
            message, code = _error_fields(data.encode())
            raise self._error(f"error mid-stream: {message}", "stream", code)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and self._on_usage is not None:
            self._on_usage(usage)
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise self._error("'choices' is not a list", "protocol")
        tokens: list[Any] = []
        for choice in choices[:1]:
            if not isinstance(choice, dict):
                raise self._error("a choice is not an object", "protocol")
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                tokens.append(content)
            if isinstance(delta, dict) and delta.get("tool_calls"):
                self._tool_delta(delta)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return tokens

    def _error(self, message: str, kind: ErrorKind, code: str | None = None) -> ProviderError:
        return ProviderError(
            redact(message, self._secrets), provider=PROVIDER, kind=kind, code=code
        )


class OpenAIChatAnswerer:
    """An :class:`~warmline.agent.answerers.Answerer` backed by streamed chat completions.

    Args:
        base_url: e.g. ``https://api.openai.com/v1``, ``http://localhost:11434/v1``.
        api_key: sent as a bearer token; empty for servers that need none.
        model: the model name the server knows.
        timeout_s: connect timeout and the longest wait for any read.
        first_token_timeout_s: the longest wait for the first text token.
        max_tokens: the answer's length limit (``max_tokens``).
        temperature: sampling temperature.
        extra_headers: sent with every request (``OpenAI-Organization``, gateway keys).
        company: the company named in the system prompt.
        system_prompt: instructions (``{company}`` is filled in).
        include_usage: ask for the final usage chunk (``stream_options``; not every
            server accepts it).
        on_usage: called with the usage object when the server sends one.
        tools: offer the handoff and end-call tools (:mod:`warmline.agent.tools`).

    Raises:
        ConfigurationError: a bad base URL or budget.
    """

    provider = PROVIDER

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        timeout_s: float = 20.0,
        first_token_timeout_s: float = 5.0,
        max_tokens: int = 300,
        temperature: float = 0.2,
        extra_headers: Mapping[str, str] | None = None,
        company: str = "Brightwave Internet",
        system_prompt: str = SYSTEM_PROMPT,
        include_usage: bool = False,
        on_usage: UsageCallback | None = None,
        tools: bool = False,
    ) -> None:
        from warmline.errors import ConfigurationError

        if not model:
            raise ConfigurationError("an OpenAI-compatible answerer needs a model name")
        if timeout_s <= 0 or first_token_timeout_s <= 0:
            raise ConfigurationError("timeout_s and first_token_timeout_s must be positive")
        self.base_url = base_url
        self.endpoint = parse_base_url(base_url)
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.first_token_timeout_s = first_token_timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.extra_headers = dict(extra_headers or {})
        self.company = company
        self.system_prompt = system_prompt
        self.include_usage = include_usage
        self.on_usage = on_usage
        self.tools = tools

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> OpenAIChatAnswerer:
        """From ``WARMLINE_LLM_BASE_URL`` (default OpenAI), ``WARMLINE_LLM_API_KEY`` (or
        ``OPENAI_API_KEY``) and ``WARMLINE_LLM_MODEL``; ``options`` go to the constructor.

        Raises:
            ConfigurationError: no model set.
        """
        env = os.environ if environ is None else environ
        return cls(
            env.get("WARMLINE_LLM_BASE_URL") or DEFAULT_BASE_URL,
            env.get("WARMLINE_LLM_API_KEY") or env.get("OPENAI_API_KEY") or "",
            env.get("WARMLINE_LLM_MODEL", ""),
            **options,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatAnswerer(base_url={self.base_url!r}, model={self.model!r})"

    def answer(self, request: AnswerRequest) -> AsyncIterator[Any]:
        """The answer, grounded in the hits, as speech-shaped chunks while it streams
        (and a :class:`~warmline.agent.answerers.ToolCall` if the model makes one)."""
        from warmline.agent.answerers import ashape_tokens, grounded_messages

        messages = grounded_messages(
            request, company=self.company, system_prompt=self.system_prompt
        )
        return ashape_tokens(self.stream(messages))

    def prewarm(self) -> None:
        """Import the HTTP stack and load the CA bundle (the costly part) before the first call."""
        prewarm(self.endpoint)

    def prepare(self, messages: Sequence[Mapping[str, str]]) -> PreparedRequest:
        """The chat-completions request for ``messages`` (exposed for tests and logs)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if self.tools:
            from warmline.agent.tools import openai_tools

            body["tools"] = openai_tools()
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "User-Agent": "warmline",
            **self.extra_headers,
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        path = f"{self.endpoint.base_path}/chat/completions"
        return PreparedRequest(self.endpoint, "POST", path, headers, data)

    def stream(self, messages: Sequence[Mapping[str, str]]) -> AsyncIterator[Any]:
        """The model's raw tokens (unshaped) for ``messages``.

        Raises:
            ProviderError: from the iterator, on any failure.
        """
        secrets = (self._api_key, *self.extra_headers.values())
        return stream_tokens(
            self.prepare(messages),
            ChatChunkParser(on_usage=self.on_usage, secrets=secrets),
            provider=PROVIDER,
            timeout_s=self.timeout_s,
            first_token_timeout_s=self.first_token_timeout_s,
            http_error=lambda s, h, b: openai_http_error(s, h, b, secrets=secrets),
            secrets=secrets,
        )


class OpenAIEmbeddings:
    """The :class:`~warmline.agent.ranking.Embeddings` protocol over ``POST /embeddings``.

    Args:
        base_url: as for :class:`OpenAIChatAnswerer`.
        api_key: bearer token (empty for none).
        model: e.g. ``text-embedding-3-small``, ``nomic-embed-text``.
        timeout_s: per request.
        batch_size: inputs per request.
        extra_headers: sent with every request.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        timeout_s: float = 30.0,
        batch_size: int = EMBEDDINGS_BATCH,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        from warmline.errors import ConfigurationError

        if not model:
            raise ConfigurationError("an embeddings provider needs a model name")
        if batch_size < 1:
            raise ConfigurationError("batch_size must be at least 1")
        self.base_url = base_url
        self.endpoint = parse_base_url(base_url)
        self._model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.extra_headers = dict(extra_headers or {})

    def __repr__(self) -> str:
        return f"OpenAIEmbeddings(base_url={self.base_url!r}, model={self._model!r})"

    @property
    def model(self) -> str:
        """The model id (stored in the index)."""
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order.

        Raises:
            ProviderError: the request failed, or the reply has the wrong shape.
        """
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(self._batch(list(texts[start : start + self.batch_size])))
        if vectors and len({len(v) for v in vectors}) != 1:
            raise ProviderError("vectors of different sizes", provider=PROVIDER, kind="protocol")
        return vectors

    def _batch(self, texts: list[str]) -> list[list[float]]:
        secrets = (self._api_key, *self.extra_headers.values())
        headers = {"Content-Type": "application/json", "User-Agent": "warmline"}
        headers.update(self.extra_headers)
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        body = json.dumps({"model": self._model, "input": texts}, ensure_ascii=False)
        status, response_headers, data = request(
            self.endpoint,
            "POST",
            f"{self.endpoint.base_path}/embeddings",
            headers,
            body.encode("utf-8"),
            timeout_s=self.timeout_s,
            provider=PROVIDER,
            secrets=secrets,
        )
        if status >= 300:
            raise openai_http_error(status, response_headers, data, secrets=secrets)
        try:
            items = json.loads(data)["data"]
            ordered = sorted(items, key=lambda item: int(item["index"]))
            vectors = [[float(x) for x in item["embedding"]] for item in ordered]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                "an embeddings reply without data[].embedding", provider=PROVIDER, kind="protocol"
            ) from exc
        if len(vectors) != len(texts):
            raise ProviderError(
                f"{len(vectors)} vectors for {len(texts)} inputs",
                provider=PROVIDER,
                kind="protocol",
            )
        return vectors
