"""The reference voice agent: answers Brightwave Internet's FAQ over ConversationRelay.

Deploy ``handler`` as the function of all three WebSocket routes (``$connect``,
``$default``, ``$disconnect``); run it locally with ``warmline dev``. The knowledge-base
index ships inside the package (``warmline/agent/data/faq.index.sqlite3``) and opens at
the first prompt; rebuild it after editing the FAQ with ``warmline kb build``.
"""

from __future__ import annotations

import os

from warmline import lambda_handler
from warmline.agent.app import build_app

app = build_app(
    # Set TWILIO_AUTH_TOKEN to check X-Twilio-Signature on every connect.
    twilio_auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
    public_url=os.environ.get("WARMLINE_PUBLIC_URL") or None,
)

handler = lambda_handler(app)
