"""The ports: the narrow interfaces through which the core does everything that is I/O.

The core decides; these do. An adapter (the composition edge: the Lambda handler, the
ASGI server, the Connect handler) picks an implementation of each and hands them to the
App in one :class:`~warmline.core.wiring.Wiring`:

- ``SessionStore``: session records with compare-and-set and TTL (``warmline.stores``).
- ``ConnectionClient``: send to, inspect and close a WebSocket connection
  (``warmline.connections``; the ASGI server's own sockets).
- ``Dispatcher``: hand work to another function (``warmline.offload``).
- ``SignatureCheck``: accept or refuse a ``$connect`` handshake (``warmline.twilio``).
- ``Runner``: run a handler's coroutine to completion (``warmline.adapters.loops``).

The core imports this module only for the type checker (``typing`` costs ~5 ms at run
time); implementations and tests import it for real (the Protocols are
``runtime_checkable``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias, TypeVar, runtime_checkable

from warmline.core._struct import Struct, init_fields
from warmline.core.events import ConnectionRef
from warmline.core.session import SessionRecord

__all__ = [
    "ConnectionClient",
    "ConnectionInfo",
    "ConnectionsFactory",
    "Dispatcher",
    "Runner",
    "SessionStore",
    "SignatureCheck",
    "StepLog",
    "StoreFactory",
]

T = TypeVar("T")

#: The invocation's step logger, as a port sees it: ``log(step, level="info", **fields)``.
StepLog: TypeAlias = Callable[..., object]


@runtime_checkable
class SessionStore(Protocol):
    """Session records with compare-and-set and TTL (see :mod:`warmline.core.session`).

    Expired records are never returned, whatever the backend's own expiry does
    (DynamoDB deletes lazily, docs/protocols.md §7).
    """

    def get(self, session_id: str) -> SessionRecord | None:
        """The live record with this key, or None."""
        ...

    def by_connection(self, connection_id: str) -> SessionRecord | None:
        """The live record whose ``connection_id`` is this, or None."""
        ...

    def by_call_sid(self, call_sid: str) -> SessionRecord | None:
        """The live record whose ``call_sid`` is this, or None."""
        ...

    def put(self, record: SessionRecord) -> SessionRecord:
        """Store ``record`` if the stored version still equals ``record.version``.

        ``record.version == 0`` creates (fails if a live record exists).

        Returns:
            The stored record, with ``version`` incremented.

        Raises:
            VersionConflictError: the stored version differs; re-read and retry.
        """
        ...

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the record; with ``expected_version``, only if it still matches.

        Returns:
            True if a record was deleted.

        Raises:
            VersionConflictError: ``expected_version`` is given and differs.
        """
        ...


class ConnectionInfo(Struct):
    """What ``GET /@connections/{id}`` answers (docs/protocols.md §2.4).

    A :class:`~warmline.core._struct.Struct`, not a dataclass: the ``@connections`` client
    imports this module, and ``dataclasses`` (with ``inspect``) would be a third of that
    client's cold import.
    """

    __slots__ = ("connected_at", "last_active_at", "source_ip", "user_agent")
    connected_at: str
    last_active_at: str
    source_ip: str
    user_agent: str

    def __init__(
        self, connected_at: str, last_active_at: str, source_ip: str = "", user_agent: str = ""
    ) -> None:
        init_fields(
            self,
            connected_at=connected_at,
            last_active_at=last_active_at,
            source_ip=source_ip,
            user_agent=user_agent,
        )


@runtime_checkable
class ConnectionClient(Protocol):
    """Sends to WebSocket clients: the ``@connections`` API or an in-process stand-in."""

    def post(self, connection_id: str, data: bytes | str) -> None:
        """Send one message.

        Raises:
            ConnectionGoneError: the client is gone (410); the call is over.
            PayloadTooLargeError: over 128 KB.
        """
        ...

    def get(self, connection_id: str) -> ConnectionInfo:
        """Connection metadata. Raises ConnectionGoneError when gone."""
        ...

    def delete(self, connection_id: str) -> None:
        """Close the connection. Raises ConnectionGoneError when already gone."""
        ...


@runtime_checkable
class Dispatcher(Protocol):
    """Hands work to another function (async invoke, SNS, SQS, a local bus)."""

    def dispatch(self, payload: dict[str, Any]) -> str:
        """Queue ``payload`` for a worker; returns the delivery's message id."""
        ...


class SignatureCheck(Protocol):
    """Accepts or refuses a ``$connect`` handshake (Twilio's ``X-Twilio-Signature``).

    ``warmline.twilio.signature.validate_handshake`` is the implementation.
    """

    def __call__(self, headers: Mapping[str, str], url: str, auth_token: str) -> None:
        """Return when the handshake is signed for ``url`` with ``auth_token``.

        Raises:
            InvalidSignatureError: missing or wrong; the App answers 403.
        """
        ...


@runtime_checkable
class Runner(Protocol):
    """Runs coroutines for a synchronous caller (the App is called synchronously).

    Which loop a coroutine runs on (one per thread for the environment's life, or a new
    one each time) is the adapter's choice, not the core's.
    """

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion in the calling thread and return its result."""
        ...

    def close(self) -> None:
        """Release the loops this runner made (once no thread is using them)."""
        ...


#: Makes the session store on first use (so a warm-up or an import never opens it).
StoreFactory: TypeAlias = Callable[[], SessionStore]
#: Makes the ConnectionClient for a connection's API and stage; ``log`` gets its retries.
ConnectionsFactory: TypeAlias = Callable[[ConnectionRef, StepLog | None], ConnectionClient]
