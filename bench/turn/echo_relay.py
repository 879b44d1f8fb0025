"""The bare echo the turn-latency benchmark compares against: a ConversationRelay app that
says each final prompt straight back, through the same App, store and @connections path."""

from __future__ import annotations

from warmline import App, Context, lambda_handler

app = App(name="echo")
app.route("setup")(lambda ctx: "Ready.")


@app.route("prompt")
def echo(ctx: Context) -> str | None:
    """One text frame back, as fast as the stack allows."""
    return str(getattr(ctx.message, "voice_prompt", ""))


handler = lambda_handler(app)
