"""The provider-independent half of a streamed answer: budgets, HTTP errors, tokens.

Both providers do the same thing around their wire format: send one request, fail fast
on an error status, then turn body bytes into text tokens with a parser until it says
the answer is complete. Two clocks apply, because a caller on the phone hears silence
while they run:

- ``first_token_timeout_s`` runs from the request to the first *text* token (not the
  first byte: servers send the response head, role chunks and keep-alive comments long
  before the model speaks). When it runs out the caller has waited long enough, and the
  error (``kind="first_token_timeout"``) tells the agent to apologise instead;
- ``timeout_s`` bounds connecting and every single read after that (a stalled stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from warmline.agent.providers.errors import ProviderError
from warmline.agent.providers.transport import Endpoint, StreamingResponse

__all__ = ["DRAIN_TIMEOUT_S", "HTTPErrorParser", "PreparedRequest", "TokenParser", "stream_tokens"]

#: How long to read on after the answer is complete, for the end of the body (the
#: chunked terminator follows ``[DONE]`` at once): a body read to its end leaves the
#: connection reusable for the next turn. A server that holds the body open costs this
#: much before the turn closes, and the connection is not kept.
DRAIN_TIMEOUT_S = 0.2

#: Turns an error response (status, lower-case headers, body) into the error to raise.
HTTPErrorParser = Callable[[int, Mapping[str, str], bytes], ProviderError]


class PreparedRequest(NamedTuple):
    """A request ready to send (signed, if it needs to be).

    Attributes:
        endpoint: where to.
        method: ``POST``.
        path: the wire path.
        headers: every header but ``Host`` (the transport adds it from the endpoint).
        body: the encoded body.
    """

    endpoint: Endpoint
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class TokenParser(Protocol):
    """Turns a response body into text tokens, incrementally (sans-I/O)."""

    @property
    def done(self) -> bool:
        """The answer is complete (``[DONE]``, the last event): stop reading."""
        ...

    def feed(self, data: bytes) -> list[Any]:
        """The tokens (text, or a completed tool call) in ``data``.

        Raises:
            ProviderError: a malformed frame (``protocol``) or an error event (``stream``).
        """
        ...

    def finish(self) -> None:
        """The body ended.

        Raises:
            ProviderError: it ended before the answer was complete (``stream``).
        """
        ...


async def _drain(response: StreamingResponse) -> None:
    try:
        while await response.receive(DRAIN_TIMEOUT_S):
            pass
    except (TimeoutError, ProviderError):
        pass  # the answer is complete; only the connection's reuse is lost


async def stream_tokens(
    prepared: PreparedRequest,
    parser: TokenParser,
    *,
    provider: str,
    timeout_s: float,
    first_token_timeout_s: float,
    http_error: HTTPErrorParser,
    secrets: Sequence[str | None] = (),
) -> AsyncIterator[Any]:
    """Send ``prepared`` and yield the text tokens ``parser`` finds in the response (and
    the tool calls it completes, :class:`~warmline.agent.answerers.ToolCall`).

    Raises:
        ProviderError: every failure, see :mod:`warmline.agent.providers.errors`.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    first_deadline = loop.time() + first_token_timeout_s

    def budget(spoken: bool) -> tuple[float, bool]:
        """Seconds to wait now, and whether the first-token budget is the one that binds."""
        if spoken:
            return timeout_s, False
        left = first_deadline - loop.time()
        return (left, True) if left <= timeout_s else (timeout_s, False)

    def timed_out(first: bool) -> ProviderError:
        if first:
            return ProviderError(
                f"no answer within the first-token budget of {first_token_timeout_s:g} s",
                provider=provider,
                kind="first_token_timeout",
            )
        return ProviderError(
            f"no data for {timeout_s:g} s (timeout_s)", provider=provider, kind="timeout"
        )

    wait, first = budget(False)
    try:
        response = await StreamingResponse.open(
            prepared.endpoint,
            prepared.method,
            prepared.path,
            prepared.headers,
            prepared.body,
            timeout_s=timeout_s,
            head_timeout_s=wait,
            provider=provider,
            secrets=secrets,
        )
    except TimeoutError:
        raise timed_out(first) from None
    try:
        if response.status >= 300:
            try:
                body = await response.read_body(timeout_s)
            except (TimeoutError, ProviderError):
                body = b""
            raise http_error(response.status, response.headers, body)
        spoken = False
        while not parser.done:
            wait, first = budget(spoken)
            try:
                data = await response.receive(wait)
            except TimeoutError:
                raise timed_out(first) from None
            if not data:
                parser.finish()
                break
            for token in parser.feed(data):
                if token:
                    spoken = True
                    yield token
        else:
            await _drain(response)
    finally:
        await response.aclose()
