"""The session record: what a call remembers between messages.

Every message of a call may land in a different Lambda environment, so nothing about a
call lives in memory. A :class:`SessionRecord` is read from and written to a
:class:`~warmline.types.SessionStore` with compare-and-set on ``version``:

- ``version == 0`` means "never stored"; ``store.put(record)`` creates it only if absent.
- Every successful put stores ``version + 1`` and returns that new record.
- A writer that loses the race gets :class:`~warmline.errors.VersionConflictError`,
  re-reads, re-applies its change and tries again (:func:`compare_and_set`, the one
  retry loop: ``Context.update_session`` and :func:`warmline.stores.base.update` use it).

Time is an argument here: ``expires_at`` is epoch seconds (DynamoDB's TTL unit,
docs/protocols.md §7) and records are "expired" relative to a ``now`` the caller passes.
"""

from __future__ import annotations

from warmline.core._struct import Struct, init_fields
from warmline.errors import ConfigurationError, VersionConflictError

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from warmline.core.ports import SessionStore

__all__ = ["DEFAULT_TTL_S", "DEFAULT_UPDATE_ATTEMPTS", "SessionRecord", "compare_and_set"]

#: Sessions outlive API Gateway's 2 h connection maximum by a margin.
DEFAULT_TTL_S = 3 * 60 * 60

#: Compare-and-sets :func:`compare_and_set` tries before giving up. A conflict means
#: another writer made progress, so a handful suffices for one call's few concurrent
#: writers (a prompt, an interrupt, a streaming worker); livelock would need that many
#: wins in a row by others.
DEFAULT_UPDATE_ATTEMPTS = 16


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


def compare_and_set(
    store: SessionStore,
    session_id: str,
    change: Callable[[SessionRecord], SessionRecord],
    *,
    attempts: int = DEFAULT_UPDATE_ATTEMPTS,
    create: bool = False,
    current: SessionRecord | None = None,
) -> SessionRecord | None:
    """Apply ``change`` to the live record with compare-and-set, re-reading on conflict.

    ``change`` may run more than once (once per attempt), always on the freshest record,
    so it must be a pure function of its argument: ``lambda r: r.evolve(turn=r.turn + 1)``.
    Returning the record unchanged writes nothing.

    Args:
        store: the SessionStore.
        session_id: the record to change.
        change: returns the new record; it must keep ``session_id`` and ``version``
            (the store bumps the version).
        attempts: how many compare-and-sets to try before giving up (>= 1).
        create: when no live record exists, apply ``change`` to a fresh
            ``SessionRecord(session_id)`` and create it.
        current: the record as the caller last read it: the first attempt starts from it
            instead of reading the store again.

    Returns:
        The record as stored, or None when there is no live record and ``create`` is
        false.

    Raises:
        VersionConflictError: still losing after ``attempts`` tries (the last conflict).
        ConfigurationError: ``attempts`` is not an int >= 1, or ``change`` returned
            something other than the record with its ``session_id`` and ``version``.
    """
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise ConfigurationError(f"attempts must be an int >= 1, got {attempts!r}")
    last: VersionConflictError | None = None
    for _ in range(attempts):
        record = current if current is not None else store.get(session_id)
        current = None
        if record is None:
            if not create:
                return None
            record = SessionRecord(session_id=session_id)
        new = change(record)
        if not isinstance(new, SessionRecord):
            raise ConfigurationError(f"change returned {type(new).__name__}, not SessionRecord")
        if new.session_id != record.session_id or new.version != record.version:
            raise ConfigurationError("change must keep session_id and version (use evolve)")
        if record.version and new == record:
            return record
        try:
            return store.put(new)
        except VersionConflictError as exc:
            last = exc
    assert last is not None
    raise last
