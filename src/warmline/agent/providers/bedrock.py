"""Amazon Bedrock: ConverseStream answers and Titan embeddings, signed without botocore.

``POST /model/{modelId}/converse-stream`` on ``bedrock-runtime.{region}.amazonaws.com``
(service model ``bedrock-runtime`` 2023-09-30, signing name ``bedrock``) takes
``{"messages", "system", "inferenceConfig"}`` and answers an AWS event stream (decoded by
:mod:`.eventstream`) of ``:message-type: event`` messages whose ``:event-type`` is
``messageStart``, ``contentBlockStart``, ``contentBlockDelta`` (the text, in
``delta.text``), ``contentBlockStop``, ``messageStop`` (``stopReason``) and last
``metadata`` (``usage``, ``metrics``). Failures after the 200 arrive as
``:message-type: exception`` messages (``:exception-type`` is ``throttlingException``,
``modelStreamErrorException``, ``validationException``, ``internalServerException`` or
``serviceUnavailableException``, the payload ``{"message": ...}``) or as
``:message-type: error`` with ``:error-code`` / ``:error-message`` headers. Before the
stream, errors are an HTTP status with ``{"message": ...}`` and ``x-amzn-ErrorType``.

Signing is warmline's one SigV4 signer, :class:`warmline.aws.sigv4.SigV4Signer`, with
``service="bedrock"`` (the wire path is percent-encoded once, then again in the canonical
URI, as for every service but S3; model ids hold ``:``); it signs ``host;x-amz-date`` (and
the session token), which is all SigV4 requires. Keys and region come from
:mod:`warmline.aws.credentials`. ``tests/agent/providers`` check the signature with
botocore's ``SigV4Auth``. The request itself goes through the providers' streaming
transport (:mod:`.transport`), since an answer streams while the agent speaks it.

Converse wants the conversation to start with a user turn and alternate roles; the
agent's history may not (an interrupted answer, a turn recorded twice), so consecutive
turns of one role are merged and leading assistant turns dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from warmline.agent.answerers import SYSTEM_PROMPT
from warmline.agent.providers.errors import ErrorKind, ProviderError, redact
from warmline.agent.providers.eventstream import EventStreamDecoder, EventStreamError
from warmline.agent.providers.streaming import PreparedRequest, stream_tokens
from warmline.agent.providers.transport import UsageCallback, parse_base_url, prewarm, request

if TYPE_CHECKING:
    from warmline.agent.answerers import AnswerRequest
    from warmline.aws.credentials import Credentials
    from warmline.aws.sigv4 import SigV4Signer

__all__ = [
    "PROVIDER",
    "SIGNING_NAME",
    "BedrockConverseAnswerer",
    "BedrockEmbeddings",
    "ConverseStreamParser",
    "bedrock_http_error",
    "converse_messages",
]

#: The provider name in errors and logs.
PROVIDER = "bedrock"
#: SigV4 signing name of ``bedrock-runtime`` (service model metadata ``signingName``).
SIGNING_NAME = "bedrock"
#: Titan Text Embeddings V2, the default embeddings model.
DEFAULT_EMBEDDINGS_MODEL = "amazon.titan-embed-text-v2:0"
_BODY_EXCERPT = 200


def _default_endpoint(region: str) -> str:
    return f"https://bedrock-runtime.{region}.amazonaws.com"


def bedrock_http_error(
    status: int, headers: Mapping[str, str], body: bytes, *, secrets: Sequence[str | None] = ()
) -> ProviderError:
    """A Bedrock error response (``{"message"}``, ``x-amzn-ErrorType``) as an error."""
    code = headers.get("x-amzn-errortype", "").split(":", 1)[0] or None
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
        message = str(data.get("message") or data.get("Message") or text[:_BODY_EXCERPT])
    except (ValueError, AttributeError):
        message = text[:_BODY_EXCERPT] or "no error body"
    label = f"{code}: " if code else ""
    return ProviderError(
        redact(f"HTTP {status}: {label}{message}", secrets),
        provider=PROVIDER,
        kind="http",
        status=status,
        code=code,
    )


def converse_messages(
    messages: Sequence[Mapping[str, str]],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """OpenAI-style messages (from ``grounded_messages``) as Converse ``messages``/``system``.

    Returns:
        ``(messages, system)``: alternating user/assistant turns starting with a user one,
        each ``{"role", "content": [{"text"}]}``; the system prompts as text blocks.
    """
    system = [{"text": m["content"]} for m in messages if m["role"] == "system" and m["content"]]
    turns: list[dict[str, Any]] = []
    for message in messages:
        role, text = message["role"], message["content"]
        if role not in ("user", "assistant") or not text:
            continue
        if not turns and role == "assistant":
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"][0]["text"] += "\n" + text
        else:
            turns.append({"role": role, "content": [{"text": text}]})
    return turns, system


class ConverseStreamParser:
    """ConverseStream event-stream messages -> ``contentBlockDelta.delta.text`` tokens.

    Args:
        on_usage: called with ``metadata.usage`` when it arrives.
        secrets: redacted from error messages.
    """

    def __init__(
        self, *, on_usage: UsageCallback | None = None, secrets: Sequence[str | None] = ()
    ) -> None:
        self._decoder = EventStreamDecoder()
        self._on_usage = on_usage
        self._secrets = secrets
        self.done = False
        self.stop_reason: str | None = None
        self._calls: dict[int, list[str]] = {}  # block index -> [toolUseId, name, input]

    def feed(self, data: bytes) -> list[Any]:
        """Tokens in the messages ``data`` completes (see :class:`.streaming.TokenParser`)."""
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            raise self._error(f"malformed event stream: {exc}", "protocol") from exc
        tokens: list[Any] = []
        for headers, payload in messages:
            kind = headers.get(":message-type")
            if kind == "exception":
                code = str(headers.get(":exception-type", "exception"))
                message = self._payload(payload).get("message", "")
                raise self._error(f"{code} mid-stream: {message}", "stream", code)
            if kind == "error":
                code = str(headers.get(":error-code", "error"))
                detail = str(headers.get(":error-message", ""))
                raise self._error(f"{code}: {detail}", "stream", code)
            if kind != "event":
                raise self._error(f"unknown :message-type {kind!r}", "protocol")
            event = headers.get(":event-type")
            if event == "contentBlockDelta":
                body = self._payload(payload)
                delta = body.get("delta")
                text = delta.get("text") if isinstance(delta, dict) else None
                if isinstance(text, str) and text:
                    tokens.append(text)
                use = delta.get("toolUse") if isinstance(delta, dict) else None
                call = self._calls.get(_block(body))
                if isinstance(use, dict) and call is not None:
                    call[2] += str(use.get("input", ""))
            elif event == "contentBlockStart":
                body = self._payload(payload)
                start = body.get("start")
                use = start.get("toolUse") if isinstance(start, dict) else None
                if isinstance(use, dict):
                    self._calls[_block(body)] = [
                        str(use.get("toolUseId", "")),
                        str(use.get("name", "")),
                        "",
                    ]
            elif event == "contentBlockStop":
                call = self._calls.pop(_block(self._payload(payload)), None)
                if call is not None:
                    tokens.append(self._tool_call(call))
            elif event == "messageStop":
                self.stop_reason = str(self._payload(payload).get("stopReason", ""))
            elif event == "metadata":
                usage = self._payload(payload).get("usage")
                if isinstance(usage, dict) and self._on_usage is not None:
                    self._on_usage(usage)
                self.done = self.stop_reason is not None
        return tokens

    def _tool_call(self, call: list[str]) -> Any:
        from warmline.agent.tools import read_tool_call

        try:
            return read_tool_call(call[1], call[2], call[0])
        except ValueError as exc:
            raise self._error(f"invalid tool call: {exc}", "protocol") from exc

    def finish(self) -> None:
        """At the end of the body: complete once ``messageStop`` was seen."""
        if self._decoder.pending:
            raise self._error("the stream ended inside a message", "protocol")
        if self.stop_reason is None:
            raise self._error("the stream ended before messageStop", "stream")

    def _payload(self, payload: bytes) -> dict[str, Any]:
        try:
            data = json.loads(payload) if payload else {}
        except ValueError as exc:
            raise self._error("an event payload is not JSON", "protocol") from exc
        if not isinstance(data, dict):
            raise self._error("an event payload is not a JSON object", "protocol")
        return data

    def _error(self, message: str, kind: ErrorKind, code: str | None = None) -> ProviderError:
        return ProviderError(
            redact(message, self._secrets), provider=PROVIDER, kind=kind, code=code
        )


def _block(body: Mapping[str, Any]) -> int:
    index = body.get("contentBlockIndex", 0)
    return index if isinstance(index, int) else 0


class _Signed:
    """Shared by the answerer and the embeddings: endpoint, credentials, signing."""

    def __init__(
        self,
        region: str | None,
        endpoint_url: str | None,
        credentials: Credentials | None,
        clock: Callable[[], float],
    ) -> None:
        from warmline.aws.credentials import region_from_environment
        from warmline.aws.sigv4 import SigV4Signer
        from warmline.errors import ConfigurationError

        region = region or region_from_environment()
        if not region:
            raise ConfigurationError("Bedrock needs a region (argument or AWS_REGION)")
        self.region = region
        self.endpoint_url = endpoint_url or _default_endpoint(region)
        self.endpoint = parse_base_url(self.endpoint_url)
        self._credentials = credentials
        self._signer: SigV4Signer = SigV4Signer(region, SIGNING_NAME)
        self._clock = clock

    def credentials(self) -> Credentials:
        """The given credentials, else the environment's, read now (Lambda sets them)."""
        if self._credentials is not None:
            return self._credentials
        from warmline.aws.credentials import Credentials

        return Credentials.from_environment()

    def prepare(
        self, path: str, body: bytes, accept: str
    ) -> tuple[PreparedRequest, tuple[str | None, ...]]:
        """A signed POST of ``body`` to ``path`` (already percent-encoded), and the secrets."""
        creds = self.credentials()
        signed = self._signer.sign(
            "POST", self.endpoint.host_header, path, body, creds, self._clock()
        )
        headers = {
            "Content-Type": "application/json",
            "Accept": accept,
            "User-Agent": "warmline",
            **signed,
        }
        secrets = (creds.secret_key, creds.token)
        return PreparedRequest(self.endpoint, "POST", path, headers, body), secrets

    def model_path(self, model_id: str, operation: str) -> str:
        from warmline.aws.sigv4 import quote

        return f"{self.endpoint.base_path}/model/{quote(model_id)}/{operation}"


class BedrockConverseAnswerer:
    """An :class:`~warmline.agent.answerers.Answerer` backed by Bedrock ConverseStream.

    Args:
        model_id: e.g. ``anthropic.claude-3-haiku-20240307-v1:0`` or an inference
            profile id (``us.amazon.nova-micro-v1:0``).
        region: default ``AWS_REGION`` / ``AWS_DEFAULT_REGION``.
        credentials: default: read from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
            / ``AWS_SESSION_TOKEN`` at each request.
        endpoint_url: default ``https://bedrock-runtime.{region}.amazonaws.com``.
        timeout_s: connect timeout and the longest wait for any read.
        first_token_timeout_s: the longest wait for the first text token.
        max_tokens: ``inferenceConfig.maxTokens``.
        temperature: ``inferenceConfig.temperature``.
        company: the company named in the system prompt.
        system_prompt: instructions (``{company}`` is filled in).
        on_usage: called with ``metadata.usage``.
        clock: epoch seconds for ``X-Amz-Date`` (tests pin it).
        tools: offer the handoff and end-call tools (:mod:`warmline.agent.tools`).

    Raises:
        ConfigurationError: no region, or a bad endpoint URL.
    """

    provider = PROVIDER

    def __init__(
        self,
        model_id: str,
        region: str | None = None,
        *,
        credentials: Credentials | None = None,
        endpoint_url: str | None = None,
        timeout_s: float = 20.0,
        first_token_timeout_s: float = 5.0,
        max_tokens: int = 300,
        temperature: float = 0.2,
        company: str = "Brightwave Internet",
        system_prompt: str = SYSTEM_PROMPT,
        on_usage: UsageCallback | None = None,
        clock: Callable[[], float] = time.time,
        tools: bool = False,
    ) -> None:
        from warmline.errors import ConfigurationError

        if not model_id:
            raise ConfigurationError("a Bedrock answerer needs a model id")
        if timeout_s <= 0 or first_token_timeout_s <= 0:
            raise ConfigurationError("timeout_s and first_token_timeout_s must be positive")
        self.model_id = model_id
        self._aws = _Signed(region, endpoint_url, credentials, clock)
        self.timeout_s = timeout_s
        self.first_token_timeout_s = first_token_timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.company = company
        self.system_prompt = system_prompt
        self.on_usage = on_usage
        self.tools = tools

    @property
    def region(self) -> str:
        """The signing region."""
        return self._aws.region

    def __repr__(self) -> str:
        return (
            f"BedrockConverseAnswerer(model_id={self.model_id!r}, region={self.region!r}, "
            f"endpoint_url={self._aws.endpoint_url!r})"
        )

    def answer(self, request: AnswerRequest) -> AsyncIterator[Any]:
        """The answer, grounded in the hits, as speech-shaped chunks while it streams."""
        from warmline.agent.answerers import ashape_tokens, grounded_messages

        messages = grounded_messages(
            request, company=self.company, system_prompt=self.system_prompt
        )
        return ashape_tokens(self.stream(messages))

    def prewarm(self) -> None:
        """Import the HTTP stack and load the CA bundle (the costly part) before the first call."""
        prewarm(self._aws.endpoint)

    def prepare(
        self, messages: Sequence[Mapping[str, str]]
    ) -> tuple[PreparedRequest, tuple[str | None, ...]]:
        """The signed ConverseStream request, and the secrets to redact from errors.

        Raises:
            ConfigurationError: no credentials.
        """
        turns, system = converse_messages(messages)
        body: dict[str, Any] = {
            "messages": turns,
            "inferenceConfig": {"maxTokens": self.max_tokens, "temperature": self.temperature},
        }
        if system:
            body["system"] = system
        if self.tools:
            from warmline.agent.tools import bedrock_tool_config

            body["toolConfig"] = bedrock_tool_config()
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        path = self._aws.model_path(self.model_id, "converse-stream")
        return self._aws.prepare(path, data, "application/vnd.amazon.eventstream")

    def stream(self, messages: Sequence[Mapping[str, str]]) -> AsyncIterator[Any]:
        """The model's raw tokens (unshaped) for ``messages``.

        Raises:
            ConfigurationError: no credentials (at once).
            ProviderError: from the iterator, on any failure.
        """
        prepared, secrets = self.prepare(messages)
        return stream_tokens(
            prepared,
            ConverseStreamParser(on_usage=self.on_usage, secrets=secrets),
            provider=PROVIDER,
            timeout_s=self.timeout_s,
            first_token_timeout_s=self.first_token_timeout_s,
            http_error=lambda s, h, b: bedrock_http_error(s, h, b, secrets=secrets),
            secrets=secrets,
        )


class BedrockEmbeddings:
    """The :class:`~warmline.agent.ranking.Embeddings` protocol over Bedrock InvokeModel.

    Sends a Titan-style body (``{"inputText"}``, plus ``dimensions`` / ``normalize`` when
    set, which Titan V2 takes) and reads ``{"embedding": [...]}``, one request per text
    (Titan embeds one input per call).

    Args:
        model_id: default Titan Text Embeddings V2.
        region, credentials, endpoint_url, clock: as for :class:`BedrockConverseAnswerer`.
        dimensions: Titan V2 output size (256, 512 or 1024), or None for the default.
        normalize: Titan V2 unit-length vectors.
        timeout_s: per request.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_EMBEDDINGS_MODEL,
        region: str | None = None,
        *,
        credentials: Credentials | None = None,
        endpoint_url: str | None = None,
        dimensions: int | None = None,
        normalize: bool | None = None,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._model = model_id
        self._aws = _Signed(region, endpoint_url, credentials, clock)
        self.dimensions = dimensions
        self.normalize = normalize
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"BedrockEmbeddings(model_id={self._model!r}, region={self._aws.region!r})"

    @property
    def model(self) -> str:
        """The model id (stored in the index)."""
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order.

        Raises:
            ProviderError: a request failed, or a reply has the wrong shape.
            ConfigurationError: no credentials.
        """
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        body: dict[str, Any] = {"inputText": text}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        if self.normalize is not None:
            body["normalize"] = self.normalize
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        prepared, secrets = self._aws.prepare(
            self._aws.model_path(self._model, "invoke"), data, "application/json"
        )
        status, headers, reply = request(
            prepared.endpoint,
            prepared.method,
            prepared.path,
            prepared.headers,
            prepared.body,
            timeout_s=self.timeout_s,
            provider=PROVIDER,
            secrets=secrets,
        )
        if status >= 300:
            raise bedrock_http_error(status, headers, reply, secrets=secrets)
        try:
            return [float(x) for x in json.loads(reply)["embedding"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                "an InvokeModel reply without an embedding", provider=PROVIDER, kind="protocol"
            ) from exc
