"""Clients that send to WebSocket connections: the ``@connections`` API and a local stand-in.

* :class:`ApiGatewayConnections` (``warmline.connections.apigw``): API Gateway's management
  API on :mod:`warmline.aws` (its SigV4 signer and keep-alive HTTP/1.1 client; no boto3).
* :class:`LocalConnections` (``warmline.connections.local``): in memory, for tests and a
  single-process server.

Names resolve on first use (PEP 562), so ``import warmline.connections`` loads no backend:
the local client never pays for the HTTP stack and the HTTP client never for the other.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "ApiGatewayConnections": "warmline.connections.apigw",
    "LocalConnections": "warmline.connections.local",
    "Credentials": "warmline.aws.credentials",
    "SigV4Signer": "warmline.aws.sigv4",
}

__all__ = ["ApiGatewayConnections", "Credentials", "LocalConnections", "SigV4Signer"]

if TYPE_CHECKING:
    from warmline.aws.credentials import Credentials
    from warmline.aws.sigv4 import SigV4Signer
    from warmline.connections.apigw import ApiGatewayConnections
    from warmline.connections.local import LocalConnections


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
