"""Connect's retries made idempotent: a request claims a session turn, its result is kept.

Connect retries throttles and 500s up to 3 times within the block's timeout, and a flow
may invoke again after a fallback (docs/protocols.md §4.5). A request is identified by its
ContactId and parameters (:func:`~warmline.adapters.connect_event.request_fingerprint`);
it is *the same request* while the session's turn has not moved since it was claimed.

- :meth:`TurnClaims.claim` reads the contact's record and either replays a stored
  result, reports a twin still running (``wait``), or claims the next turn with
  compare-and-set (``turn + 1``, ``state: pending`` until the lease ends: the time the
  answer may run, which outlasts the invocation that answered with a fallback).
- :meth:`TurnClaims.wait` polls for the twin's result within the caller's deadline.
- :meth:`TurnClaims.store_result` keeps the result beside the claim (``state: done``),
  only while the claim is still the session's current one.

Sessions are keyed by ``InitialContactId``, so a transferred contact keeps its history.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from warmline.core.session import SessionRecord, compare_and_set
from warmline.errors import StoreError, VersionConflictError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.events import ContactFlow
    from warmline.core.ports import SessionStore

__all__ = ["CLAIM_ATTEMPTS", "SESSION_DATA_KEY", "TurnClaims"]

#: Where the claim and the cached result live in ``SessionRecord.data``.
SESSION_DATA_KEY = "connect"
#: Compare-and-set attempts when claiming a turn.
CLAIM_ATTEMPTS = 16


class TurnClaims:
    """Claims, waits and results of Connect requests in one SessionStore.

    Args:
        store: the session store.
        poll_s: how often :meth:`wait` re-reads the store.
    """

    __slots__ = ("store", "poll_s")

    def __init__(self, store: SessionStore, poll_s: float) -> None:
        self.store = store
        self.poll_s = poll_s

    def claim(self, event: ContactFlow, request: str, lease: float) -> tuple[str, Any]:
        """Replay a stored result, wait for a running twin, or claim a new turn.

        Args:
            event: the invocation.
            request: its fingerprint.
            lease: ``time.monotonic()`` past which the claim is presumed lost (a repeat
                of the request then runs the turn again).

        Returns:
            ``("replay", response)``, ``("wait", turn)`` or ``("run", claimed record)``.

        Raises:
            VersionConflictError: every attempt lost a race.
        """
        store, key = self.store, event.initial_contact_id
        now = time.time()
        until = now + max(0.0, lease - time.monotonic())
        for _ in range(CLAIM_ATTEMPTS):
            record = store.get(key)
            entry = entry_for(record, request)
            if record is not None and entry is not None:
                state = entry.get("state")
                if state == "done" and isinstance(entry.get("response"), dict):
                    return "replay", entry["response"]
                if state == "pending" and now < float(entry.get("until") or 0):
                    return "wait", record.turn
            base = record or SessionRecord(session_id=key)
            turn = base.turn + 1
            contact = {
                "contactId": event.contact_id,
                "initialContactId": event.initial_contact_id,
                "channel": str(event.contact_data.get("Channel") or ""),
            }
            claim = {"request": request, "turn": turn, "state": "pending", "until": until}
            data = {**base.data, SESSION_DATA_KEY: claim, "contact": contact}
            try:
                return "run", store.put(base.evolve(turn=turn, data=data))
            except VersionConflictError:
                continue
        raise VersionConflictError(key, -1)

    def wait(self, key: str, request: str, turn: int, deadline: float) -> dict[str, str] | None:
        """Poll the store for the result of the same request running elsewhere.

        Returns:
            The result, or None when the twin failed, the turn moved or time ran out.
        """
        while True:
            record = self.store.get(key)
            entry = entry_for(record, request)
            if record is None or entry is None or record.turn != turn:
                return None
            if entry.get("state") == "done" and isinstance(entry.get("response"), dict):
                return dict(entry["response"])
            if entry.get("state") != "pending":
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(self.poll_s, left))

    def store_result(
        self, key: str, turn: int, request: str, state: str, response: dict[str, str]
    ) -> None:
        """Mark the claim ``done`` (with ``response``) or ``failed``, if still current.

        Raises:
            StoreError: the record is gone (expired), or the store failed.
        """

        def done(record: SessionRecord) -> SessionRecord:
            entry = record.data.get(SESSION_DATA_KEY)
            if record.turn != turn or not isinstance(entry, Mapping):
                return record
            if entry.get("request") != request or entry.get("state") != "pending":
                return record
            stored = {**entry, "state": state}
            if state == "done":
                stored["response"] = response
            return record.evolve(data={**record.data, SESSION_DATA_KEY: stored})

        if compare_and_set(self.store, key, done) is None:
            raise StoreError(f"no live session {key!r} to update")


def entry_for(record: SessionRecord | None, request: str) -> Mapping[str, Any] | None:
    """The stored claim for ``request`` at the record's current turn, if any."""
    if record is None:
        return None
    entry = record.data.get(SESSION_DATA_KEY)
    if not isinstance(entry, Mapping):
        return None
    if entry.get("request") != request or entry.get("turn") != record.turn:
        return None
    return entry
