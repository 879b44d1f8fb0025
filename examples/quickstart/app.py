"""Quickstart: greet the caller, stream an answer token by token, note a barge-in."""

from __future__ import annotations

from collections.abc import Iterator

from warmline import App, Context, Interrupt, Prompt, Setup, lambda_handler

app = App(name="quickstart")


def tokens(question: str) -> Iterator[str]:
    """A stand-in for an LLM's token stream."""
    for word in f"You asked: {question}".split():
        yield word + " "


@app.setup
def greet(ctx: Context[Setup]) -> str:
    return f"Hello, caller from {ctx.message.from_ or 'somewhere'}! Ask me anything."


@app.prompt
def answer(ctx: Context[Prompt]) -> Iterator[str] | None:
    if not ctx.message.last:
        return None  # a partial prompt: wait for the whole utterance
    return tokens(ctx.message.voice_prompt)


@app.interrupt
def interrupted(ctx: Context[Interrupt]) -> None:
    ctx.annotate(heard=ctx.message.utterance_until_interrupt)


handler = lambda_handler(app)
