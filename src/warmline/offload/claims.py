"""Exactly-once turns: a claim record per (session, turn), written with compare-and-set.

Async delivery is at-least-once (docs/protocols.md §3.4, §4.2, §4.3): the same turn can reach
two workers at once, or again after a worker died half-way through an answer. The caller
must hear the answer once, and a crash must not make it hear the start twice.

**Where the claim lives.** A separate record keyed ``{session_id}#turn#{turn}`` in the same
session store (``connection_id=""``, so connection look-ups never find it), not a map in
the session record's ``data``. Why:

- Creating it is ``put`` with ``version == 0``, which every store already makes atomic
  (DynamoDB ``attribute_not_exists``, SQLite ``BEGIN IMMEDIATE``, §7): the first worker wins,
  the second gets :class:`~warmline.errors.VersionConflictError`. No new store operation.
- Progress is written after every post. In the session record those writes would race the
  App's own turn bumps: an ``interrupt`` would lose compare-and-sets to a chatty worker and
  retry, delaying the very fence that must stop it. Apart, they never conflict.
- The session record stays small (DynamoDB items max 400 KB, §7) and needs no pruning of
  old turns; claim records expire through the store's TTL.

**Progress.** The claim holds ``sent`` (characters of the answer the caller was sent), the
number of posts, whether the filler went out, an owner id and a lease (``leaseUntil``, epoch
seconds). Every progress write renews the lease. A delivery that finds:

- no claim: creates it and answers from character 0;
- a finished claim (``done``, ``fenced``, ``gone``, ``budget``): a duplicate; does nothing;
- a live claim held by another owner: :class:`TurnBusyError` (the platform retries later);
- an expired claim (the owner died) or one it released: takes it over with compare-and-set
  and resumes after ``sent``.

**Trade-off of writing progress every post (``progress_every=1``).** The write happens after
the post, so a crash between the two repeats at most that one post on resume; writing
before would lose it instead (the caller would miss words). Writing every N posts cuts
store writes N-fold (each is one conditional PutItem on DynamoDB) but a crash may repeat up
to N posts. Coalesced posts are few (a 200-token answer is ~10 posts), so every post is
cheap enough and is the default.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from warmline.core.session import SessionRecord
from warmline.errors import VersionConflictError, WarmlineError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.types import SessionStore

__all__ = [
    "DEFAULT_LEASE_S",
    "TERMINAL_STATES",
    "Claim",
    "ClaimLostError",
    "TurnBusyError",
    "TurnClaims",
    "claim_key",
]

#: How long a claim stays another worker's without a progress write. Longer than any gap
#: between two posts (a slow first token included), shorter than Lambda's first async retry
#: (1 min, docs/protocols.md §3.4), so that retry finds a dead worker's claim expired.
DEFAULT_LEASE_S = 30.0
#: States after which a delivery of the same turn has nothing left to do.
TERMINAL_STATES = frozenset({"done", "fenced", "gone", "budget", "stale"})
_ATTEMPTS = 8


def claim_key(session_id: str, turn: int) -> str:
    """The claim record's key: ``{session_id}#turn#{turn}``."""
    return f"{session_id}#turn#{turn}"


class TurnBusyError(WarmlineError):
    """Another live worker holds this turn; raise so the platform delivers again later.

    A retry after the holder finished sees a terminal claim and stops quietly; a retry after
    the holder died (its lease expired) takes the turn over.
    """


class ClaimLostError(WarmlineError):
    """Another worker took this turn over (this one's lease had expired): stop posting."""


@dataclass(frozen=True, slots=True)
class Claim:
    """One worker's hold on a turn, as last stored.

    Attributes:
        record: the stored claim record (its version is the compare-and-set token).
        status: ``"new"`` (first holder), ``"resumed"`` (took over an expired or released
            claim) or ``"duplicate"`` (already finished; nothing to do).
    """

    record: SessionRecord
    status: str

    @property
    def data(self) -> dict[str, Any]:
        """The claim's fields (``owner``, ``leaseUntil``, ``sent``, ``posts``, ...)."""
        return self.record.data

    @property
    def owner(self) -> str:
        """The id of the delivery holding the claim."""
        return str(self.data.get("owner", ""))

    @property
    def sent(self) -> int:
        """Characters of the answer already sent to the caller."""
        return int(self.data.get("sent", 0))

    @property
    def posts(self) -> int:
        """``@connections`` posts made for this turn, across owners."""
        return int(self.data.get("posts", 0))

    @property
    def filler_sent(self) -> bool:
        """Whether the silence filler already went out for this turn."""
        return bool(self.data.get("filler", False))

    @property
    def state(self) -> str:
        """``streaming`` or one of :data:`TERMINAL_STATES`."""
        return str(self.data.get("state", "streaming"))


class TurnClaims:
    """Claims turns in a session store.

    Args:
        store: any SessionStore.
        owner: this worker's id prefix (default: pid plus random bits); every
            :meth:`acquire` appends its own random suffix, so two deliveries in one
            process never mistake each other's claim for their own.
        lease_s: how long a claim holds without a progress write.
        wall: epoch seconds for leases (inject to test expiry).
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        owner: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.owner = owner or f"{os.getpid()}-{os.urandom(4).hex()}"
        self.lease_s = lease_s
        self.wall = wall

    def acquire(self, session_id: str, turn: int) -> Claim:
        """Claim ``(session_id, turn)`` for this owner.

        Returns:
            The claim; ``status == "duplicate"`` means the turn was already finished.

        Raises:
            TurnBusyError: another owner holds a live lease.
            VersionConflictError: lost every compare-and-set (heavy contention).
        """
        key = claim_key(session_id, turn)
        me = f"{self.owner}/{os.urandom(3).hex()}"  # one id per delivery, not per process
        last: VersionConflictError | None = None
        for _ in range(_ATTEMPTS):
            now = self.wall()
            current = self.store.get(key)
            if current is None:
                fresh = SessionRecord(
                    session_id=key,
                    turn=turn,
                    data={"owner": me, "leaseUntil": now + self.lease_s, "sent": 0},
                )
                try:
                    return Claim(self.store.put(fresh), "new")
                except VersionConflictError as exc:
                    last = exc
                    continue
            data = current.data
            if data.get("state", "streaming") in TERMINAL_STATES:
                return Claim(current, "duplicate")
            holder = data.get("owner")
            if float(data.get("leaseUntil", 0)) > now:
                raise TurnBusyError(f"turn {key} is held by {holder} until {data['leaseUntil']}")
            taken = current.evolve(
                data={
                    **data,
                    "owner": me,
                    "leaseUntil": now + self.lease_s,
                    "takeovers": int(data.get("takeovers", 0)) + 1,
                }
            )
            try:
                return Claim(self.store.put(taken), "resumed")
            except VersionConflictError as exc:
                last = exc
        assert last is not None
        raise last

    def progress(self, claim: Claim, **fields: Any) -> Claim:
        """Record progress (``sent``, ``posts``, ``filler``, ``state``) and renew the lease.

        Raises:
            ClaimLostError: another owner took the turn over; stop at once.
        """
        data = {**claim.data, **fields, "leaseUntil": self.wall() + self.lease_s}
        return self._write(claim, data)

    def finish(self, claim: Claim, state: str, **fields: Any) -> Claim:
        """Mark the turn finished (``done``, ``fenced``, ``gone``, ``budget``).

        Raises:
            ClaimLostError: another owner took the turn over.
        """
        return self._write(claim, {**claim.data, **fields, "state": state, "leaseUntil": 0})

    def release(self, claim: Claim) -> Claim:
        """Give the turn up unfinished (the answer failed): a retry may take it at once.

        Raises:
            ClaimLostError: another owner took the turn over.
        """
        return self._write(claim, {**claim.data, "leaseUntil": 0})

    def _write(self, claim: Claim, data: dict[str, Any]) -> Claim:
        record = claim.record
        for _ in range(_ATTEMPTS):
            try:
                return Claim(self.store.put(record.evolve(data=data)), claim.status)
            except VersionConflictError:
                fresh = self.store.get(record.session_id)
                if fresh is None or fresh.data.get("owner") != claim.owner:
                    raise ClaimLostError(f"turn {record.session_id} was taken over") from None
                # Our own earlier write raced (e.g. a retried put): carry on from it.
                record = fresh
        raise ClaimLostError(f"turn {record.session_id}: progress kept conflicting")
