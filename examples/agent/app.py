"""The reference voice agent: answers Brightwave Internet's FAQ over ConversationRelay.

One function serves everything: the three WebSocket routes (``$connect``, ``$default``,
``$disconnect``) and, through a function URL, Twilio's incoming-call webhook (``/twiml``)
and the ``<Connect action>`` callback (``/cr-action``). Run it locally with ``make dev``.
The knowledge-base index ships inside the package and opens at the first prompt; rebuild
it after editing the FAQ with ``warmline kb build``.

Environment:
    TWILIO_AUTH_TOKEN: checks X-Twilio-Signature on webhooks and on every connect (or
        TWILIO_AUTH_TOKEN_PARAMETER: the SSM parameter holding it, as deployed).
    WARMLINE_PUBLIC_URL: the ``wss://`` URL of the WebSocket API as Twilio reaches it
        (locally ``warmline dev`` provides WARMLINE_DEV_WS_URL instead).
    WARMLINE_HANDOFF_NUMBER: where a handoff to a person is dialed.
    WARMLINE_RECONNECT_URL: where a call connects again when its server lets go of it (a
        draining ``warmline serve``, or one that died); default: the relay URL above.
    WARMLINE_PREWARM_FUNCTIONS: when the WebSocket routes are a separate function, its
        name(s), comma-separated: each incoming call warms them before Twilio connects.
    WARMLINE_PREWARM_CONCURRENCY: environments to warm per function and call (default 2:
        a prompt sent while the previous answer's invocation finishes needs a second).
"""

from __future__ import annotations

import os

from warmline import lambda_handler
from warmline.agent.app import build_app
from warmline.core.events import HttpRequest
from warmline.secrets import secret_getter
from warmline.twilio.prewarm import prewarm_on_call
from warmline.twilio.twiml import RelaySettings
from warmline.twilio.voice import mount_voice

PUBLIC_URL = os.environ.get("WARMLINE_PUBLIC_URL") or os.environ.get("WARMLINE_DEV_WS_URL")

app = build_app(
    # TWILIO_AUTH_TOKEN, or TWILIO_AUTH_TOKEN_PARAMETER (an SSM name) read on first use.
    twilio_auth_token=secret_getter("TWILIO_AUTH_TOKEN"),
    public_url=PUBLIC_URL,
)


def relay_settings(request: HttpRequest) -> RelaySettings:
    """The ``<ConversationRelay>`` for an incoming call: our WebSocket API, DTMF on."""
    url = PUBLIC_URL or f"wss://{request.headers.get('Host', 'localhost')}/prod"
    return RelaySettings(
        url=url,
        language="en-US",
        interruptible="any",
        dtmf_detection=True,
        parameters={"channel": "phone"},
    )


PREWARM = [f for f in os.environ.get("WARMLINE_PREWARM_FUNCTIONS", "").split(",") if f]

mount_voice(
    app,
    relay_settings,
    handoff_number=os.environ.get("WARMLINE_HANDOFF_NUMBER") or None,
    reconnect_url=os.environ.get("WARMLINE_RECONNECT_URL") or None,
    on_incoming=prewarm_on_call(
        PREWARM, concurrency=int(os.environ.get("WARMLINE_PREWARM_CONCURRENCY", "2"))
    )
    if PREWARM
    else None,
)

handler = lambda_handler(app)
