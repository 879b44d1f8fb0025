"""The smallest ConversationRelay app: greet on setup, say back each final prompt.

Deploy ``handler`` as the function of all three WebSocket routes (``$connect``,
``$default``, ``$disconnect``); run it locally with ``warmline dev``.
"""

from __future__ import annotations

import os

from warmline import App, Context, lambda_handler

app = App(
    name="echo",
    # Set TWILIO_AUTH_TOKEN to check X-Twilio-Signature on every connect.
    twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
    public_url=os.environ.get("WARMLINE_PUBLIC_URL") or None,
)

GREETING = "Hello! Say something and I will say it back."


@app.route("setup")
def greet(ctx: Context) -> str:
    """The first frame of a call: answer with a greeting."""
    return GREETING


@app.route("prompt")
def echo(ctx: Context) -> str | None:
    """A caller's utterance: partial prompts are ignored, final ones said back."""
    prompt = ctx.message
    if prompt is None or not getattr(prompt, "last", True):
        return None
    return f"You said: {getattr(prompt, 'voice_prompt', '')}"


@app.route("interrupt")
def interrupted(ctx: Context) -> None:
    """Barge-in: Twilio already purged its queue; just note what was heard."""
    ctx.annotate(heard=getattr(ctx.message, "utterance_until_interrupt", ""))


@app.default
def other(ctx: Context) -> None:
    """dtmf, info, error and unknown types: logged, nothing sent."""
    ctx.annotate(type=getattr(ctx.message, "type", None))


handler = lambda_handler(app)
