"""The session record: what a call remembers between messages.

Every message of a call may land in a different Lambda environment, so nothing about a
call lives in memory. A :class:`SessionRecord` is read from and written to a
:class:`~warmline.types.SessionStore` with compare-and-set on ``version``:

- ``version == 0`` means "never stored"; ``store.put(record)`` creates it only if absent.
- Every successful put stores ``version + 1`` and returns that new record.
- A writer that loses the race gets :class:`~warmline.errors.VersionConflictError`,
  re-reads, re-applies its change and tries again (:func:`warmline.stores.base.update`).

Time is an argument here: ``expires_at`` is epoch seconds (DynamoDB's TTL unit,
PROTOCOLS.md §7) and records are "expired" relative to a ``now`` the caller passes.
"""

from __future__ import annotations

from warmline.core._struct import Struct, init_fields

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEFAULT_TTL_S", "SessionRecord"]

#: Sessions outlive API Gateway's 2 h connection maximum by a margin.
DEFAULT_TTL_S = 3 * 60 * 60


class SessionRecord(Struct):
    """One call's (or chat's) state.

    Attributes:
        session_id: the key; ConversationRelay's ``sessionId`` or, before ``setup``,
            the connection id.
        connection_id: the API Gateway connection carrying the session.
        call_sid: Twilio's ``callSid`` once known (secondary key).
        version: compare-and-set version; 0 for a record never stored.
        expires_at: epoch seconds after which the record no longer exists.
        turn: the current turn number; a newer prompt or an interrupt bumps it.
        data: JSON-serialisable state (setup fields, history, handoff data, ...).
    """

    __slots__ = ("session_id", "connection_id", "call_sid", "version", "expires_at", "turn", "data")
    session_id: str
    connection_id: str
    call_sid: str | None
    version: int
    expires_at: int
    turn: int
    data: dict[str, Any]

    def __init__(
        self,
        session_id: str,
        connection_id: str = "",
        call_sid: str | None = None,
        version: int = 0,
        expires_at: int = 0,
        turn: int = 0,
        data: dict[str, Any] | None = None,
    ) -> None:
        init_fields(
            self,
            session_id=session_id,
            connection_id=connection_id,
            call_sid=call_sid,
            version=version,
            expires_at=expires_at,
            turn=turn,
            data=data if data is not None else {},
        )

    def is_expired(self, now: float) -> bool:
        """True when the record's TTL has passed at ``now`` (epoch seconds)."""
        return self.expires_at > 0 and now >= self.expires_at

    def evolve(self, **changes: Any) -> SessionRecord:
        """A copy with ``changes`` applied (the version is kept; the store bumps it)."""
        record: SessionRecord = self.replace(**changes)
        return record
