"""The reference voice agent with a model: every setting is in warmline.toml ([agent]).

One function serves the WebSocket routes (``$connect``, ``$default``, ``$disconnect``) and,
through a function URL, Twilio's incoming-call webhook (``/twiml``) and the ``<Connect
action>`` callback (``/cr-action``); the same code, deployed as ``worker``, streams the
rest of answers that outgrow a route (``[agent] offload = "auto"``).

Environment:
    TWILIO_AUTH_TOKEN: checks X-Twilio-Signature on webhooks and on every connect (as
        deployed: TWILIO_AUTH_TOKEN_PARAMETER, the SSM parameter holding it).
    OPENAI_API_KEY: the model's key (as deployed: OPENAI_API_KEY_PARAMETER).
    WARMLINE_PUBLIC_URL: the ``wss://`` URL of the WebSocket API as Twilio reaches it
        (``warmline dev`` provides WARMLINE_DEV_WS_URL instead).
    WARMLINE_HANDOFF_NUMBER: where a handoff to a person is dialed.
"""

from __future__ import annotations

import os

from warmline import lambda_handler
from warmline.agent.app import build_app
from warmline.core.events import HttpRequest
from warmline.secrets import secret_getter
from warmline.twilio.twiml import RelaySettings
from warmline.twilio.voice import mount_voice

PUBLIC_URL = os.environ.get("WARMLINE_PUBLIC_URL") or os.environ.get("WARMLINE_DEV_WS_URL")

app = build_app(twilio_auth_token=secret_getter("TWILIO_AUTH_TOKEN"), public_url=PUBLIC_URL)


def relay_settings(request: HttpRequest) -> RelaySettings:
    """The ``<ConversationRelay>`` for an incoming call: our WebSocket API, DTMF on."""
    url = PUBLIC_URL or f"wss://{request.headers.get('Host', 'localhost')}/prod"
    return RelaySettings(url=url, language="en-US", interruptible="any", dtmf_detection=True)


mount_voice(app, relay_settings, handoff_number=os.environ.get("WARMLINE_HANDOFF_NUMBER"))

handler = lambda_handler(app)
