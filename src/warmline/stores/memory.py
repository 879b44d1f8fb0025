"""Sessions in a dict: for tests and single-process servers.

Nothing survives the process and nothing is shared with another one, so this store is
wrong for Lambda (each environment would see its own sessions). It exists because tests
need a store with the exact semantics of the real ones and no files: compare-and-set on
``version``, TTL against an injectable clock, ``data`` round-tripped through JSON (see
:mod:`warmline.stores.base`). One lock serialises every operation, so threads in one
process get the same atomicity SQLite's ``BEGIN IMMEDIATE`` gives processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from warmline.core.session import DEFAULT_TTL_S, SessionRecord
from warmline.errors import VersionConflictError
from warmline.stores.base import (
    Clock,
    check_key,
    check_record,
    check_ttl,
    decode_data,
    encode_data,
    is_live,
    stamp,
)

__all__ = ["MemoryStore"]


@dataclass(frozen=True, slots=True)
class _Row:
    """A stored record with ``data`` kept as JSON text (never the caller's dict)."""

    connection_id: str
    call_sid: str | None
    version: int
    expires_at: int
    turn: int
    data: str
    seq: int  # write order: secondary lookups prefer the most recently written row


class MemoryStore:
    """A thread-safe, in-process SessionStore.

    Secondary lookups (``by_connection``, ``by_call_sid``) scan every row: fine for the
    handful of sessions a test or a single dev server holds.

    Args:
        clock: wall-clock seconds since the epoch; inject a fake one to test expiry.
        ttl_s: lifetime given to records stored with ``expires_at == 0``.
    """

    def __init__(self, *, clock: Clock = time.time, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._clock = clock
        self._ttl_s = check_ttl(ttl_s)
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def __len__(self) -> int:
        """Rows held, live or expired-but-not-yet-purged (for tests of purging)."""
        with self._lock:
            return len(self._rows)

    def get(self, session_id: str) -> SessionRecord | None:
        """The live record with this key, or None."""
        check_key(session_id)
        with self._lock:
            row = self._live(session_id, self._clock())
            return None if row is None else _record(session_id, row)

    def by_connection(self, connection_id: str) -> SessionRecord | None:
        """The live record carried by this connection (the latest written), or None."""
        check_key(connection_id, "connection_id")
        with self._lock:
            return self._find(lambda row: row.connection_id == connection_id)

    def by_call_sid(self, call_sid: str) -> SessionRecord | None:
        """The live record of this Twilio call (the latest written), or None."""
        check_key(call_sid, "call_sid")
        with self._lock:
            return self._find(lambda row: row.call_sid == call_sid)

    def put(self, record: SessionRecord) -> SessionRecord:
        """Compare-and-set ``record`` (see :meth:`warmline.types.SessionStore.put`).

        Raises:
            VersionConflictError: the live version is not ``record.version``.
            StoreError: ``data`` is not JSON-serialisable.
            ConfigurationError: ``record`` is malformed.
        """
        check_record(record)
        data = encode_data(record.data, record.session_id)
        with self._lock:
            now = self._clock()
            self._purge(now)
            row = self._live(record.session_id, now)
            actual = 0 if row is None else row.version
            if actual != record.version:
                raise VersionConflictError(record.session_id, record.version, actual)
            self._seq += 1
            stored = _Row(
                connection_id=record.connection_id,
                call_sid=record.call_sid,
                version=record.version + 1,
                expires_at=stamp(record, now, self._ttl_s),
                turn=record.turn,
                data=data,
                seq=self._seq,
            )
            self._rows[record.session_id] = stored
            return _record(record.session_id, stored)

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the live record; with ``expected_version``, only if it still matches.

        Returns:
            True if a live record was deleted; False if there was none (whatever
            ``expected_version`` says: a record already gone is what the caller wanted).

        Raises:
            VersionConflictError: a live record exists and its version differs.
        """
        check_key(session_id)
        with self._lock:
            row = self._live(session_id, self._clock())
            if row is None:
                return False
            if expected_version is not None and expected_version != row.version:
                raise VersionConflictError(session_id, expected_version, row.version)
            del self._rows[session_id]
            return True

    def close(self) -> None:
        """Nothing to release; here so every store can be closed the same way."""

    # --- internals (call with the lock held) -------------------------------------------
    def _live(self, session_id: str, now: float) -> _Row | None:
        row = self._rows.get(session_id)
        if row is not None and not is_live(row.expires_at, now):
            del self._rows[session_id]
            return None
        return row

    def _find(self, match: Callable[[_Row], bool]) -> SessionRecord | None:
        now = self._clock()
        best: tuple[str, _Row] | None = None
        for key, row in self._rows.items():
            if is_live(row.expires_at, now) and match(row):
                if best is None or row.seq > best[1].seq:
                    best = (key, row)
        return None if best is None else _record(*best)

    def _purge(self, now: float) -> None:
        expired = [key for key, row in self._rows.items() if not is_live(row.expires_at, now)]
        for key in expired:
            del self._rows[key]


def _record(session_id: str, row: _Row) -> SessionRecord:
    return SessionRecord(
        session_id=session_id,
        connection_id=row.connection_id,
        call_sid=row.call_sid,
        version=row.version,
        expires_at=row.expires_at,
        turn=row.turn,
        data=decode_data(row.data, session_id),
    )
