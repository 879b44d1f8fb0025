"""The bare echo the turn-latency benchmark compares against: a ConversationRelay app that
says each final prompt straight back, through the same App, store and @connections path."""

from __future__ import annotations

import os

from warmline import App, Context, lambda_handler

# Signatures are checked against the URL the caller signed: the emulator's WebSocket URL.
app = App(name="echo", public_url=os.environ.get("WARMLINE_DEV_WS_URL"))
app.route("setup")(lambda ctx: "Ready.")


@app.route("prompt")
def echo(ctx: Context) -> str | None:
    """One text frame back, as fast as the stack allows."""
    return str(getattr(ctx.message, "voice_prompt", ""))


handler = lambda_handler(app)
