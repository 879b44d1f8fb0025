"""warmline: voice and chat AI backends on serverless WebSockets that answer on the first ring.

Importing this package is cheap on purpose (it is on every Lambda cold start): names are
resolved on first use (PEP 562), and nothing heavy is imported until it is needed.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False

__version__ = "0.1.0.dev0"

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "App": "warmline.core.app",
    "Context": "warmline.core.app",
    "Response": "warmline.core.app",
    "lambda_handler": "warmline.adapters.aws_lambda",
    "SessionRecord": "warmline.core.session",
}

__all__ = ["App", "Context", "Response", "SessionRecord", "__version__", "lambda_handler"]

if TYPE_CHECKING:
    from warmline.adapters.aws_lambda import lambda_handler
    from warmline.core.app import App, Context, Response
    from warmline.core.session import SessionRecord


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
