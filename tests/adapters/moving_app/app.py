"""A ConversationRelay app whose answers show the conversation it remembers.

Each answer is ``"<instance>: <every prompt so far, joined by ' | '>"``, built from the
session record, so a test sees at once which server answered and whether the history came
along when the call moved. Configured by the environment ``warmline serve`` passes on:
``WARMLINE_INSTANCE`` (its name), ``WARMLINE_PUBLIC_URL`` (its own WebSocket, which
Twilio signs), ``TWILIO_AUTH_TOKEN``, the shared store (``WARMLINE_STORE=redis``) and:

- ``WARMLINE_RELAY_URL``: where the TwiML sends new calls (default: its own WebSocket);
- ``WARMLINE_RECONNECT_URL``: where moved calls connect again (default: its own).

A test rings one instance's ``/twiml`` (standing for the load balancer in front of the
webhooks) and points its calls at another instance, the one it then stops.
"""

from __future__ import annotations

import os

from warmline.core.app import App, Context
from warmline.core.relay import Prompt, Setup
from warmline.core.session import SessionRecord
from warmline.twilio.twiml import RelaySettings
from warmline.twilio.voice import mount_voice

INSTANCE = os.environ.get("WARMLINE_INSTANCE", "?")
PUBLIC_URL = os.environ["WARMLINE_PUBLIC_URL"]

app = App(name=f"moving-{INSTANCE}", public_url=PUBLIC_URL)


@app.setup
def greet(ctx: Context[Setup]) -> str:
    return f"{INSTANCE} here."


@app.prompt
def answer(ctx: Context[Prompt]) -> str:
    said = ctx.message.voice_prompt

    def remember(r: SessionRecord) -> SessionRecord:
        return r.evolve(data={**r.data, "heard": [*r.data.get("heard", []), said]})

    record = ctx.update_session(remember)
    heard = record.data["heard"] if record is not None else [said]
    return f"{INSTANCE}: " + " | ".join(heard)


mount_voice(
    app,
    RelaySettings(url=os.environ.get("WARMLINE_RELAY_URL") or PUBLIC_URL),
    reconnect_url=os.environ.get("WARMLINE_RECONNECT_URL") or PUBLIC_URL,
)
