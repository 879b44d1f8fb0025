"""Every error warmline raises, under one root.

The tree::

    WarmlineError
    ├── ConfigurationError (ValueError)      the app or its config is wrong; fix and redeploy
    ├── MissingExtraError (ImportError)      an optional extra is not installed; names it
    ├── RemoteProtocolError                  the peer (Twilio, API Gateway, a client) sent bad input
    │   ├── MalformedFrameError              not JSON, not an object, no ``type``
    │   ├── FrameTooLargeError               over the 128 KB message / 32 KB frame limits
    │   ├── InvalidEventError                a Lambda event of no shape warmline knows
    │   └── InvalidSignatureError            X-Twilio-Signature missing or wrong
    ├── LocalProtocolError (ValueError)      the app tried to send what the peer would reject
    │   └── RelayValidationError             a ConversationRelay frame Twilio would drop (64107)
    ├── ServiceError                         an AWS service refused a request or was not reached
    │   ├── ConnectionsError                 the @connections API failed
    │   │   ├── ConnectionGoneError          410: the caller hung up; the call is over
    │   │   ├── PayloadTooLargeError         413: over 128 KB
    │   │   ├── ForbiddenError               403: credentials or IAM
    │   │   └── ThrottledError               429 / 5xx still failing after retries in budget
    │   ├── InvokeError                      Lambda did not queue an invocation (aws.lambda_invoke)
    │   └── DispatchError                    a dispatcher could not queue work (offload)
    └── StoreError                           the session store failed
        ├── VersionConflictError             a compare-and-set lost a race; re-read and retry
        └── StoreUnavailableError            the backend could not be reached

Peer errors and misuse errors are kept apart (as h11 does) because the caller reacts
differently: a bad frame from Twilio is logged and the call goes on; a bad frame from the
app is a bug that must surface in tests.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConnectionGoneError",
    "ConnectionsError",
    "ForbiddenError",
    "FrameTooLargeError",
    "InvalidEventError",
    "InvalidSignatureError",
    "LocalProtocolError",
    "MalformedFrameError",
    "MissingExtraError",
    "PayloadTooLargeError",
    "RelayValidationError",
    "RemoteProtocolError",
    "ServiceError",
    "StoreError",
    "StoreUnavailableError",
    "ThrottledError",
    "VersionConflictError",
    "WarmlineError",
]


class WarmlineError(Exception):
    """Root of every error warmline raises."""


class ConfigurationError(WarmlineError, ValueError):
    """The app, its routes or its configuration are wrong."""


class MissingExtraError(WarmlineError, ImportError):
    """An optional dependency is needed here; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module!r} is not installed; install it with: pip install 'warmline[{extra}]'"
        )
        self.module = module
        self.extra = extra


class RemoteProtocolError(WarmlineError):
    """The peer sent something warmline cannot accept.

    Attributes:
        close_code: the WebSocket close code a server should answer with, if any.
    """

    close_code: int | None = None


class MalformedFrameError(RemoteProtocolError):
    """A frame that is not a JSON object with a string ``type``."""


class FrameTooLargeError(RemoteProtocolError):
    """A message over API Gateway's limits (closes with 1009 there)."""

    close_code = 1009


class InvalidEventError(RemoteProtocolError):
    """A Lambda event of no shape warmline knows."""


class InvalidSignatureError(RemoteProtocolError):
    """X-Twilio-Signature is missing or does not match."""


class LocalProtocolError(WarmlineError, ValueError):
    """The app tried to send something its peer would reject."""


class RelayValidationError(LocalProtocolError):
    """An outbound ConversationRelay frame that Twilio would drop with error 64107."""


class ServiceError(WarmlineError):
    """An AWS service refused a request, or could not be reached.

    Attributes:
        status: the HTTP status, when there was a response.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionsError(ServiceError):
    """The API Gateway ``@connections`` management API failed."""


class ConnectionGoneError(ConnectionsError):
    """410 GoneException: the connection is closed; treat the call as over."""


class PayloadTooLargeError(ConnectionsError):
    """413 PayloadTooLargeException: the data is over 128 KB."""


class ForbiddenError(ConnectionsError):
    """403 ForbiddenException: missing ``execute-api:ManageConnections`` or bad credentials."""


class ThrottledError(ConnectionsError):
    """429 LimitExceededException or 5xx still failing when the retry budget ran out."""


class StoreError(WarmlineError):
    """The session store failed."""


class VersionConflictError(StoreError):
    """A compare-and-set lost: the stored version is not the expected one.

    Attributes:
        key: the record key.
        expected: the version the writer expected.
        actual: the version found (0 when the record does not exist), if known.
    """

    def __init__(self, key: str, expected: int, actual: int | None = None) -> None:
        super().__init__(f"version conflict on {key!r}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class StoreUnavailableError(StoreError):
    """The store's backend could not be reached or timed out."""
