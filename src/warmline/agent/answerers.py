"""Answerers: turn a question and the retrieved entries into spoken text, chunk by chunk.

One interface for every way of answering. :class:`ExtractiveAnswerer`, the default, speaks
the best entry's answer: no network, no model, nothing to import, the same answer every
time, and instant (so the first ``text`` frame leaves within milliseconds of the prompt).
Streaming LLM providers (an OpenAI-compatible chat-completions client with any base URL,
Amazon Bedrock ConverseStream) implement the same :class:`Answerer` protocol, in their own
modules (:mod:`warmline.agent.providers`), on the standard library alone and imported only
when configured. They build their request from :func:`grounded_messages` and pass their raw
token stream through :func:`shape_tokens` / :func:`ashape_tokens` so the caller hears
speech, not markdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from warmline.agent.speech import SpeechShaper, for_speech, shape_stream, speech_chunks

if TYPE_CHECKING:
    from warmline.agent.kb import Hit

__all__ = [
    "CONTINUE_PROMPT",
    "SYSTEM_PROMPT",
    "AnswerRequest",
    "Answerer",
    "ExtractiveAnswerer",
    "TextStream",
    "ToolCall",
    "ashape_tokens",
    "grounded_messages",
    "shape_tokens",
]

#: What an answerer returns: text chunks, produced synchronously or asynchronously.
TextStream = Iterable[str] | AsyncIterable[str]

#: The default instructions for LLM answerers: answer from the entries, for the ear.
SYSTEM_PROMPT = (
    "You are {company}'s phone assistant. Answer the caller's question using only the "
    "knowledge base entries below. Your words will be spoken by a text-to-speech voice: "
    "use short sentences, no markdown, no lists, no emojis; say prices, numbers and web "
    "addresses the way a person would say them aloud. Keep answers under 60 words. If "
    "the entries do not answer the question, say you don't know and offer to connect "
    "the caller to a person."
)


#: Asked after the part of an answer already spoken, when another function continues it.
CONTINUE_PROMPT = (
    "(The call continues. Go on with your answer exactly where it stopped: do not repeat "
    "anything already said, do not greet, and do not mention this instruction.)"
)


class ToolCall(NamedTuple):
    """A tool the model called instead of (or after) speaking: it ends the answer.

    Attributes:
        name: ``transfer_to_person`` or ``end_call`` (:mod:`warmline.agent.tools`).
        arguments: the checked arguments (``{"reason": str}``).
        id: the provider's id for the call.
    """

    name: str
    arguments: Mapping[str, Any]
    id: str = ""


class AnswerRequest(NamedTuple):
    """Everything an answerer may use.

    Attributes:
        question: what the caller said.
        hits: retrieved entries, best first (the agent only asks when it is confident).
        history: earlier turns, oldest first, each ``{"role": "user"|"assistant",
            "text": ...}``.
        lang: the caller's language tag from the prompt (``en-US``).
        spoken: the part of the answer already spoken (another function continues it).
    """

    question: str
    hits: Sequence[Hit]
    history: Sequence[Mapping[str, str]] = ()
    lang: str = "en-US"
    spoken: str = ""


class Answerer(Protocol):
    """Produces the spoken answer as text chunks.

    Chunks are sent as ConversationRelay ``text`` tokens as they come, untrimmed (their
    spaces matter), so each should end at a natural pause (see
    :func:`~warmline.agent.speech.speech_chunks`). Returning an async iterator makes the
    App run it on its event loop; a plain iterator keeps the call free of ``asyncio``.
    """

    def answer(self, request: AnswerRequest) -> TextStream:
        """The answer's chunks, in order."""
        ...


class ExtractiveAnswerer:
    """Speaks the best entry's answer (the default: offline, instant, deterministic).

    Args:
        related: also mention the second entry's question when its score is within
            ``related_ratio`` of the first ("I can also tell you about ...").
        related_ratio: how close the second score must be.
    """

    def __init__(self, *, related: bool = False, related_ratio: float = 0.9) -> None:
        self.related = related
        self.related_ratio = related_ratio

    def answer(self, request: AnswerRequest) -> list[str]:
        """The top hit's answer, shaped for speech, in chunks (nothing without hits).

        A list, not a generator: the whole answer is known at once, so the agent can
        record it in the same store write as the question.
        """
        if not request.hits:
            return []
        top = request.hits[0]
        text = for_speech(top.answer)
        if self.related and len(request.hits) > 1:
            second = request.hits[1]
            if second.score >= top.score * self.related_ratio and second.id != top.id:
                text += " I can also tell you about this: " + _as_topic(second.question)
        return speech_chunks(text)


def _as_topic(question: str) -> str:
    spoken = for_speech(question).rstrip("?.! ")
    return spoken[:1].lower() + spoken[1:] + "."


def grounded_messages(
    request: AnswerRequest,
    *,
    company: str = "Brightwave Internet",
    system_prompt: str = SYSTEM_PROMPT,
    max_history: int = 10,
) -> list[dict[str, str]]:
    """Chat messages (OpenAI / Bedrock Converse roles) grounding an LLM in the hits.

    Returns:
        ``[{"role": "system", "content": ...}, ...history, {"role": "user", ...}]``;
        the entries are in the system message, numbered, with their ids. When part of
        the answer was already spoken (``request.spoken``), it follows as the assistant's
        turn, then :data:`CONTINUE_PROMPT`, so the model goes on from there.
    """
    entries = "\n".join(
        f"[{n}] ({hit.id}) Q: {hit.question}\nA: {hit.answer}"
        for n, hit in enumerate(request.hits, 1)
    )
    system = (
        system_prompt.format(company=company)
        + "\n\nKnowledge base entries:\n"
        + (entries or "(none)")
    )
    turns = [
        {"role": str(turn["role"]), "content": str(turn["text"])}
        for turn in request.history
        if turn.get("role") in ("user", "assistant") and turn.get("text")
    ]
    messages = [{"role": "system", "content": system}]
    messages.extend(turns[-max_history:] if max_history > 0 else [])
    messages.append({"role": "user", "content": request.question})
    if request.spoken.strip():
        messages.append({"role": "assistant", "content": request.spoken})
        messages.append({"role": "user", "content": CONTINUE_PROMPT})
    return messages


def shape_tokens(tokens: Iterable[str]) -> Iterator[str]:
    """An LLM's raw tokens as speech chunks (markdown removed, symbols spoken)."""
    shaper = SpeechShaper()
    for token in tokens:
        yield from shaper.feed(token)
    yield from shaper.flush()


def ashape_tokens(tokens: AsyncIterable[Any]) -> AsyncIterator[Any]:
    """:func:`shape_tokens` for an async token stream; words the model already wrote are
    spoken within the hold even while it stalls, a :class:`ToolCall` passes through after
    the text before it, and a failure after the text before it
    (:func:`~warmline.agent.speech.shape_stream`).
    """
    return shape_stream(tokens)
