"""Answerers: the offline extractive default and the helpers LLM providers build on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from warmline.agent.answerers import (
    Answerer,
    AnswerRequest,
    ExtractiveAnswerer,
    ashape_tokens,
    grounded_messages,
    shape_tokens,
)
from warmline.agent.kb import Hit


def hit(doc_id: str, answer: str, score: float = 10.0, question: str = "Q?") -> Hit:
    return Hit(doc_id, question, answer, (), score, lexical=score)


def test_the_extractive_answerer_speaks_the_top_hit() -> None:
    answerer: Answerer = ExtractiveAnswerer()
    hits = [hit("a", "Open **24/7**. Call us!"), hit("b", "Other.")]
    chunks = answerer.answer(AnswerRequest("hours?", hits))
    assert isinstance(chunks, list)
    assert "".join(chunks) == "Open 24 hours a day, 7 days a week. Call us!"


def test_the_extractive_answerer_is_deterministic() -> None:
    request = AnswerRequest("q", [hit("a", "One, two, three. Four five six seven.")])
    assert ExtractiveAnswerer().answer(request) == ExtractiveAnswerer().answer(request)


def test_without_hits_there_is_nothing_to_say() -> None:
    assert ExtractiveAnswerer().answer(AnswerRequest("q", [])) == []


def test_a_close_second_hit_can_be_mentioned() -> None:
    hits = [
        hit("a", "It's 30 dollars.", 10.0),
        hit("b", "x", 9.5, question="How do I **upgrade** my plan?"),
    ]
    text = "".join(ExtractiveAnswerer(related=True).answer(AnswerRequest("q", hits)))
    assert text == "It's 30 dollars. I can also tell you about this: how do I upgrade my plan."
    far = [hits[0], hit("b", "x", 5.0, question="Far?")]
    assert "".join(ExtractiveAnswerer(related=True).answer(AnswerRequest("q", far))) == (
        "It's 30 dollars."
    )


def test_grounded_messages_carry_entries_history_and_question() -> None:
    request = AnswerRequest(
        "and on weekends?",
        [hit("support-hours", "7 to 11.", question="Hours?")],
        history=[
            {"role": "user", "text": "what are your hours"},
            {"role": "assistant", "text": "7 to 11."},
            {"role": "system", "text": "ignored"},
        ],
    )
    messages = grounded_messages(request, company="Acme")
    assert messages[0]["role"] == "system"
    assert "Acme" in messages[0]["content"]
    assert "[1] (support-hours) Q: Hours?\nA: 7 to 11." in messages[0]["content"]
    assert messages[1:] == [
        {"role": "user", "content": "what are your hours"},
        {"role": "assistant", "content": "7 to 11."},
        {"role": "user", "content": "and on weekends?"},
    ]
    assert len(grounded_messages(request, max_history=1)) == 3
    assert len(grounded_messages(request, max_history=0)) == 2


def test_shape_tokens_turns_llm_markdown_into_speech() -> None:
    tokens = ["**Sure", "**", "! It", " costs $", "12.50", "/mo", ". Bye."]
    assert "".join(shape_tokens(tokens)) == "Sure! It costs 12 dollars and 50 cents a month. Bye."


def test_ashape_tokens_does_the_same_for_async_streams() -> None:
    async def stream() -> AsyncIterator[str]:
        for token in ["- one", "\n- two", "\n"]:
            yield token

    async def collect() -> list[str]:
        return [chunk async for chunk in ashape_tokens(stream())]

    assert "".join(asyncio.run(collect())) == "one. two."
