"""The one place the AWS proxy asks whether a request may go on: :func:`authorize`.

Every request the proxy answers itself (it terminated TLS for the host: the emulator's
``@connections`` and Invoke API, the moto server's services) is parsed and handed to
:func:`authorize` before it is forwarded. Today every request is allowed.

IAM hook: this is where the SigV4 signature of a call to a local service is verified and
the calling function's IAM statements are evaluated (``dynamodb:PutItem`` on
``arn:aws:dynamodb:{region}:{account}:table/{name}``...). Return a :class:`Denial` to
answer the request with AWS's error instead of forwarding it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Denial", "ProxiedRequest", "authorize"]


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    """One HTTP request as the function's SDK sent it (after TLS).

    Attributes:
        host: the AWS host name the SDK connected to (``dynamodb.us-east-1.amazonaws.com``).
        service: the service of that host (``dynamodb``, ``execute-api``, ``lambda``...).
        method: ``GET``, ``POST``...
        target: the request target (path and query).
        headers: the header fields in order, names as sent.
        body: the body as sent (chunked framing kept when the SDK used it).
    """

    host: str
    service: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header ``name`` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass(frozen=True, slots=True)
class Denial:
    """An error answer in AWS's shape: HTTP status, error code and message."""

    status: int
    code: str
    message: str


def authorize(request: ProxiedRequest) -> Denial | None:
    """Whether ``request`` may be forwarded (None) or is answered with a :class:`Denial`.

    Every request is allowed; IAM evaluation of calls to local services plugs in here.
    """
    del request
    return None
