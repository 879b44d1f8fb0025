"""warmline: voice and chat AI backends on serverless WebSockets that answer on the first ring.

Everything an app needs is here::

    from warmline import App, Context, Prompt, Setup, Text, End, lambda_handler

Importing this package is cheap on purpose (it is on every Lambda cold start): names are
resolved on first use (PEP 562), and nothing heavy is imported until it is needed. The
ConversationRelay messages (``Prompt``, ``Text``, ...) come from
:mod:`warmline.core.relay`, loaded at the first of them.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False

__version__ = "0.1.0.dev0"

_RELAY = "warmline.core.relay"

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "App": "warmline.core.app",
    "Context": "warmline.core.app",
    "Response": "warmline.core.app",
    "lambda_handler": "warmline.adapters.aws_lambda",
    "SessionRecord": "warmline.core.session",
    # ConversationRelay, in (what Twilio sends) ...
    "InboundMessage": _RELAY,
    "Setup": _RELAY,
    "Prompt": _RELAY,
    "Dtmf": _RELAY,
    "Interrupt": _RELAY,
    "Info": _RELAY,
    "Error": _RELAY,
    # ... and out (what the app sends).
    "Text": _RELAY,
    "Play": _RELAY,
    "SendDigits": _RELAY,
    "Language": _RELAY,
    "End": _RELAY,
}

__all__ = [
    "App",
    "Context",
    "Dtmf",
    "End",
    "Error",
    "InboundMessage",
    "Info",
    "Interrupt",
    "Language",
    "Play",
    "Prompt",
    "Response",
    "SendDigits",
    "SessionRecord",
    "Setup",
    "Text",
    "__version__",
    "lambda_handler",
]

if TYPE_CHECKING:
    from warmline.adapters.aws_lambda import lambda_handler
    from warmline.core.app import App, Context, Response
    from warmline.core.relay import (
        Dtmf,
        End,
        Error,
        InboundMessage,
        Info,
        Interrupt,
        Language,
        Play,
        Prompt,
        SendDigits,
        Setup,
        Text,
    )
    from warmline.core.session import SessionRecord


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
