"""Twilio-specific pieces that do not need the ``twilio`` package.

``warmline.twilio.signature`` checks ``X-Twilio-Signature`` on the ConversationRelay
WebSocket handshake and on HTTP webhooks with the standard library only. Nothing is
imported here on purpose: the Lambda hot path imports the submodule it needs, and the
``twilio`` SDK (tens of milliseconds to import) never loads at all.
"""
