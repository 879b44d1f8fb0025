"""One error for every way a model provider can fail, and secret redaction.

The agent reacts to a failed answer the same way whatever went wrong (apologise, offer a
person), so the providers raise a single class, :class:`ProviderError`, whose ``kind``
says what happened for logs and metrics. Nothing raw escapes: socket errors, HTTP
statuses, malformed frames and error events are all translated at the boundary
(``raise ... from exc``) into a message that never holds a key: every text that came
from the network or from an exception is passed through :func:`redact` first, because
servers echo credentials back (OpenAI-compatible servers quote a rejected key in their
401 message).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from warmline.errors import WarmlineError

__all__ = ["ErrorKind", "ProviderError", "redact"]

#: What went wrong:
#: ``connect``: the server could not be reached (refused, DNS, TLS);
#: ``http``: it answered with an error status before streaming;
#: ``first_token_timeout``: no text within the first-token budget;
#: ``timeout``: connecting or a read took longer than ``timeout_s``;
#: ``stream``: the connection broke mid-answer, or an error arrived in the stream;
#: ``protocol``: a malformed SSE / event-stream frame or JSON.
ErrorKind = Literal["connect", "http", "first_token_timeout", "timeout", "stream", "protocol"]

#: Kinds worth one retry (by the caller; providers never retry a half-spoken answer).
_RETRYABLE_KINDS = frozenset({"connect", "timeout", "first_token_timeout"})
#: HTTP statuses worth a retry: throttling and server errors.
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Secrets shorter than this are not redacted (they would mangle ordinary text).
_MIN_SECRET_CHARS = 4


class ProviderError(WarmlineError):
    """A model provider failed; the answer is missing or cut short.

    Attributes:
        provider: ``"openai"`` (any OpenAI-compatible server) or ``"bedrock"``.
        kind: see :data:`ErrorKind`.
        status: the HTTP status when the server answered with an error.
        code: the provider's error code or type (``rate_limit_exceeded``,
            ``throttlingException``), when it gave one.
        retryable: whether asking again may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        kind: ErrorKind,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.kind: ErrorKind = kind
        self.status = status
        self.code = code
        self.retryable = kind in _RETRYABLE_KINDS or status in _RETRYABLE_STATUSES

    def __repr__(self) -> str:
        return (
            f"ProviderError({str(self)!r}, kind={self.kind!r}, status={self.status!r}, "
            f"code={self.code!r})"
        )


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***``.

    Args:
        text: anything that may quote a secret (a server's error body, an exception).
        secrets: API keys, AWS secret keys and session tokens; None and very short
            values are skipped.
    """
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_CHARS and secret in text:
            text = text.replace(secret, "***")
    return text
