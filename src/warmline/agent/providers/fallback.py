"""Turn a provider failure into words: the caller hears an apology, never silence.

A streamed answer can fail at any point (no first token in time, a throttle, a dropped
connection). The App would log the :class:`ProviderError` and close the turn with
nothing said, and the caller would be left waiting; wrapping the answerer in
:class:`ApologizingAnswerer` makes every failure end with a spoken line that offers a
person, after whatever part of the answer was already spoken.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from warmline.agent.providers.errors import ProviderError

if TYPE_CHECKING:
    from warmline.agent.answerers import Answerer, AnswerRequest, TextStream

__all__ = ["DEFAULT_APOLOGY", "ApologizingAnswerer"]

#: Said when the model fails; it offers a person like the agent's "don't know" line.
DEFAULT_APOLOGY = (
    "Sorry, I'm having trouble answering that right now. "
    "Would you like me to connect you to a person?"
)


class ApologizingAnswerer:
    """Wraps a streaming answerer: a :class:`ProviderError` becomes a spoken apology.

    Args:
        inner: the answerer to guard (its synchronous answers pass through untouched).
        apology: what to say instead of (or after part of) the answer.
        on_error: called with the error before apologising (logging, metrics).
    """

    def __init__(
        self,
        inner: Answerer,
        *,
        apology: str = DEFAULT_APOLOGY,
        on_error: Callable[[ProviderError], None] | None = None,
    ) -> None:
        self.inner = inner
        self.apology = apology
        self.on_error = on_error

    def __repr__(self) -> str:
        return f"ApologizingAnswerer({self.inner!r})"

    def prewarm(self) -> None:
        """The inner answerer's pre-warm, if it has one."""
        inner_prewarm = getattr(self.inner, "prewarm", None)
        if callable(inner_prewarm):
            inner_prewarm()

    def answer(self, request: AnswerRequest) -> TextStream:
        """The inner answer; if it is a stream, guarded."""
        stream = self.inner.answer(request)
        if isinstance(stream, AsyncIterable):
            return self._guard(stream)
        return stream

    async def _guard(self, stream: AsyncIterable[Any]) -> AsyncIterator[Any]:
        spoke = False
        try:
            async for chunk in stream:
                spoke = spoke or (isinstance(chunk, str) and bool(chunk.strip()))
                yield chunk
        except ProviderError as exc:
            if self.on_error is not None:
                self.on_error(exc)
            yield (" " if spoke else "") + self.apology
