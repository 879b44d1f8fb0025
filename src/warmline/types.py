"""Shared aliases and the ports the core talks through.

The core never performs I/O itself; it calls these narrow interfaces, and adapters
supply implementations (SQLite or DynamoDB for sessions, HTTP ``@connections`` or an
in-process client for sending, async invoke or SQS for offloading).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

from warmline.core._struct import Struct, init_fields
from warmline.core.session import SessionRecord

__all__ = [
    "ConnectionClient",
    "ConnectionInfo",
    "Dispatcher",
    "JSON",
    "JSONObject",
    "LambdaContext",
    "SessionStore",
]

JSON: TypeAlias = Any
JSONObject: TypeAlias = dict[str, Any]


@runtime_checkable
class SessionStore(Protocol):
    """Session records with compare-and-set and TTL (see :mod:`warmline.core.session`).

    Expired records are never returned, whatever the backend's own expiry does
    (DynamoDB deletes lazily, PROTOCOLS.md §7).
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
    """What ``GET /@connections/{id}`` answers (PROTOCOLS.md §2.4).

    A :class:`~warmline.core._struct.Struct`, not a dataclass: this module is imported
    by the ``@connections`` client, and ``dataclasses`` (with ``inspect``) was a third of
    that client's cold import (~12 ms).
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

    def dispatch(self, payload: JSONObject) -> str:
        """Queue ``payload`` for a worker; returns the delivery's message id."""
        ...


class LambdaContext(Protocol):
    """The parts of the Lambda context object warmline reads (PROTOCOLS.md §3.7)."""

    function_name: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


Headers: TypeAlias = Mapping[str, str]
