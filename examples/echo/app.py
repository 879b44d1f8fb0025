"""The smallest ConversationRelay app: greet on setup, say back each final prompt.

Deploy ``handler`` as the function of all three WebSocket routes (``$connect``,
``$default``, ``$disconnect``); run it locally with ``warmline dev``.
"""

from __future__ import annotations

import os

from warmline import App, Context, Interrupt, Prompt, Setup, lambda_handler

# With TWILIO_AUTH_TOKEN set, lambda_handler turns on X-Twilio-Signature checks of every
# connect; they are over the public URL, as written in the TwiML.
app = App(name="echo", public_url=os.environ.get("WARMLINE_PUBLIC_URL") or None)

GREETING = "Hello! Say something and I will say it back."


@app.setup
def greet(ctx: Context[Setup]) -> str:
    """The first frame of a call: answer with a greeting."""
    return GREETING


@app.prompt
def echo(ctx: Context[Prompt]) -> str | None:
    """A caller's utterance: partial prompts are ignored, final ones said back."""
    if not ctx.message.last:
        return None
    return f"You said: {ctx.message.voice_prompt}"


@app.interrupt
def interrupted(ctx: Context[Interrupt]) -> None:
    """Barge-in: Twilio already purged its queue; just note what was heard."""
    ctx.annotate(heard=ctx.message.utterance_until_interrupt)


@app.default
def other(ctx: Context) -> None:
    """dtmf, info, error and unknown types: logged, nothing sent."""
    ctx.annotate(type=ctx.message.type if ctx.message is not None else None)


handler = lambda_handler(app)
