"""Sessions in one SQLite file: the embedded default, safe across processes.

Why each setting (docs/protocols.md §7):

- **WAL** journal: readers never block the writer or each other, so a Lambda environment
  (or ``warmline dev`` worker) reading a session does not stall one that is writing.
- **BEGIN IMMEDIATE** for every write: the write lock is taken *before* the version is
  read, so a compare-and-set cannot interleave with another process's (a deferred
  transaction would read, then fail to upgrade its lock, or worse, a read-then-write in
  autocommit would lose an update).
- **busy_timeout**: a locked database waits (bounded) instead of failing at once; when
  the wait runs out the caller gets :class:`~warmline.errors.StoreUnavailableError`.
- **One connection per process, fork-safe**: SQLite connections must not cross
  ``fork()`` (its locks are per process). A child notices the pid change, abandons the
  inherited connection *without closing it* (closing could checkpoint or unlock on the
  parent's behalf) and opens its own. Threads of one process share that connection under
  a lock.
- **Expiry**: every read filters on ``expires_at`` against the store's clock, so an
  expired row is never returned even before it is purged; writes purge expired rows
  lazily, at most once per ``purge_interval_s``, inside the transaction they already hold.

Only ``INSERT OR REPLACE`` and plain indexes are used, so SQLite 3.7 (old Lambda images)
works too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from warmline.core.session import DEFAULT_TTL_S, SessionRecord
from warmline.errors import (
    ConfigurationError,
    StoreError,
    StoreUnavailableError,
    VersionConflictError,
)
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

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "DEFAULT_PURGE_INTERVAL_S",
    "DIR_MODE",
    "ENV_PATH",
    "FILE_MODE",
    "LAMBDA_PATH",
    "LOCAL_PATH",
    "TABLE",
    "SQLiteStore",
]

#: Environment variable naming the database file (README "Configuration").
ENV_PATH = "WARMLINE_SQLITE_PATH"
#: Default on Lambda: ``/tmp`` is the only writable path and survives between invokes of
#: one environment (docs/protocols.md §3.1); each environment has its own ``/tmp``.
LAMBDA_PATH = "/tmp/warmline.sqlite3"
#: Default elsewhere, relative to the working directory (``warmline dev`` sets
#: ``WARMLINE_SQLITE_PATH`` to the project's own ``.warmline/sessions.sqlite3``).
LOCAL_PATH = ".warmline/sessions.sqlite3"
#: The database holds callers' numbers and transcripts: only its owner may read it. SQLite
#: gives its ``-wal`` and ``-shm`` files the database's own mode.
FILE_MODE = 0o600
#: A folder the store creates for its file.
DIR_MODE = 0o700
#: How long a write waits for another process's lock before StoreUnavailableError. Well
#: under API Gateway's 29 s integration timeout (docs/protocols.md §2.5): a store that stays
#: locked this long is broken, and the handler still has time to answer.
DEFAULT_BUSY_TIMEOUT_S = 5.0
#: Least time between two purges of expired rows by one store.
DEFAULT_PURGE_INTERVAL_S = 60.0
#: The table; one row per session.
TABLE = "warmline_sessions"

# ``written_at`` (the writer's clock) is for operators reading the file; no query uses it.
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " session_id TEXT PRIMARY KEY NOT NULL,"
    " connection_id TEXT NOT NULL,"
    " call_sid TEXT,"
    " version INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " turn INTEGER NOT NULL,"
    " data TEXT NOT NULL,"
    " written_at REAL NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_connection ON {TABLE} (connection_id)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_call_sid ON {TABLE} (call_sid)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_expires ON {TABLE} (expires_at)",
)
_COLUMNS = "session_id, connection_id, call_sid, version, expires_at, turn, data"
_LIVE = "(expires_at = 0 OR expires_at > ?)"
# Secondary keys may be shared (a reconnect); the latest write wins. Every write is an
# INSERT OR REPLACE, which gives the row a rowid above every existing one, so rowid order
# is write order whatever the clocks of the writing processes say.
_LATEST = "ORDER BY rowid DESC LIMIT 1"

# Every open store, so a forked child resets their locks before any thread can run.
_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for store in list(_STORES):
        store._forget_parent(new_lock=True)


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_reset_after_fork)


class SQLiteStore:
    """A SessionStore in one SQLite file, shareable by many processes.

    The file is opened on first use (so constructing the store costs nothing at cold
    start) and its parent directory is created if missing.

    Args:
        path: the database file (``":memory:"`` works for one process; it is not shared).
        clock: wall-clock seconds since the epoch; inject a fake one to test expiry.
        ttl_s: lifetime given to records stored with ``expires_at == 0``.
        busy_timeout_s: how long to wait for another writer's lock.
        purge_interval_s: least time between purges of expired rows (0: every write).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        ttl_s: int = DEFAULT_TTL_S,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        purge_interval_s: float = DEFAULT_PURGE_INTERVAL_S,
    ) -> None:
        self.path = os.fspath(path)
        if not self.path:
            raise ConfigurationError("SQLiteStore needs a file path")
        if busy_timeout_s <= 0 or purge_interval_s < 0:
            raise ConfigurationError("busy_timeout_s must be > 0, purge_interval_s >= 0")
        self._clock = clock
        self._ttl_s = check_ttl(ttl_s)
        self._busy_timeout_s = float(busy_timeout_s)
        self._purge_interval_s = float(purge_interval_s)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._last_purge: float | None = None
        self._closed = False
        _STORES.add(self)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> SQLiteStore:
        """The store at ``$WARMLINE_SQLITE_PATH``, else the platform default.

        Args:
            environ: the environment to read (default ``os.environ``).
            **kwargs: passed to the constructor.
        """
        env = os.environ if environ is None else environ
        path = env.get(ENV_PATH) or (
            LAMBDA_PATH if env.get("AWS_LAMBDA_FUNCTION_NAME") else LOCAL_PATH
        )
        return cls(path, **kwargs)

    # --- SessionStore ------------------------------------------------------------------
    def get(self, session_id: str) -> SessionRecord | None:
        """The live record with this key, or None.

        Raises:
            StoreError: the stored row is corrupted (names the session).
        """
        check_key(session_id)
        return self._read(
            f"SELECT {_COLUMNS} FROM {TABLE} WHERE session_id = ? AND {_LIVE}", session_id
        )

    def by_connection(self, connection_id: str) -> SessionRecord | None:
        """The live record carried by this connection (the latest written), or None."""
        check_key(connection_id, "connection_id")
        return self._read(
            f"SELECT {_COLUMNS} FROM {TABLE} WHERE connection_id = ? AND {_LIVE} {_LATEST}",
            connection_id,
        )

    def by_call_sid(self, call_sid: str) -> SessionRecord | None:
        """The live record of this Twilio call (the latest written), or None."""
        check_key(call_sid, "call_sid")
        return self._read(
            f"SELECT {_COLUMNS} FROM {TABLE} WHERE call_sid = ? AND {_LIVE} {_LATEST}",
            call_sid,
        )

    def put(self, record: SessionRecord) -> SessionRecord:
        """Compare-and-set ``record`` under ``BEGIN IMMEDIATE``.

        Returns:
            The stored record (version + 1, ``expires_at`` stamped if it was 0).

        Raises:
            VersionConflictError: the live version is not ``record.version``.
            StoreUnavailableError: the database stayed locked past ``busy_timeout_s``.
            StoreError: ``data`` is not JSON-serialisable, or SQLite failed.
        """
        check_record(record)
        data = encode_data(record.data, record.session_id)
        key = record.session_id
        with self._write() as (conn, now):
            actual = self._live_version(conn, key, now)
            if actual != record.version:
                raise VersionConflictError(key, record.version, actual)
            stored = record.evolve(
                version=record.version + 1, expires_at=stamp(record, now, self._ttl_s)
            )
            conn.execute(
                f"INSERT OR REPLACE INTO {TABLE} ({_COLUMNS}, written_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    stored.connection_id,
                    stored.call_sid,
                    stored.version,
                    stored.expires_at,
                    stored.turn,
                    data,
                    now,
                ),
            )
            self._maybe_purge(conn, now)
        # Return what a read would: data decoded from what was stored, not the caller's dict.
        return stored.evolve(data=decode_data(data, key))

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the live record; with ``expected_version``, only if it still matches.

        Returns:
            True if a live record was deleted; False if there was none (whatever
            ``expected_version`` says: a record already gone is what the caller wanted).

        Raises:
            VersionConflictError: a live record exists and its version differs.
            StoreUnavailableError: the database stayed locked past ``busy_timeout_s``.
        """
        check_key(session_id)
        with self._write() as (conn, now):
            actual = self._live_version(conn, session_id, now)
            if actual and expected_version is not None and expected_version != actual:
                raise VersionConflictError(session_id, expected_version, actual)
            # An expired row goes too: it is already absent to every reader.
            conn.execute(f"DELETE FROM {TABLE} WHERE session_id = ?", (session_id,))
            return actual != 0

    # --- housekeeping ------------------------------------------------------------------
    def purge_expired(self) -> int:
        """Delete every expired row now.

        Returns:
            How many rows were deleted.
        """
        with self._write() as (conn, now):
            return self._purge(conn, now)

    def close(self) -> None:
        """Close this process's connection; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------
    def _forget_parent(self, *, new_lock: bool) -> None:
        """In a forked child: drop (never close) the parent's connection.

        Args:
            new_lock: replace the lock too, which another parent thread may have held at
                the fork; only safe before any child thread runs (the at-fork hook).
        """
        if new_lock:
            self._lock = threading.RLock()
        if self._conn is not None:
            _INHERITED.append(self._conn)  # kept alive so its finalizer never runs here
        self._conn = None
        self._pid = os.getpid()

    def _connection(self) -> sqlite3.Connection:
        """This process's connection, opened on first use (call with the lock held)."""
        if self._closed:
            raise StoreError(f"SQLiteStore({self.path!r}) is closed")
        if self._pid != os.getpid():
            # Forked without Python's at-fork hooks running (a C extension's fork()):
            # we already hold the lock, so keep it and only drop the connection.
            self._forget_parent(new_lock=False)
        if self._conn is None:
            self._conn = _open(self.path, self._busy_timeout_s)
        return self._conn

    def _read(self, sql: str, key: str) -> SessionRecord | None:
        with self._lock:
            with _translated(self.path):
                row = self._connection().execute(sql, (key, self._clock())).fetchone()
        return None if row is None else _record(row)

    @contextmanager
    def _write(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        """One ``BEGIN IMMEDIATE`` transaction; committed on success, else rolled back."""
        with self._lock, _translated(self.path):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Read the clock after taking the lock: a write that waited is judged
                # by the time it actually happens.
                yield conn, self._clock()
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise

    @staticmethod
    def _live_version(conn: sqlite3.Connection, key: str, now: float) -> int:
        row = conn.execute(
            f"SELECT version, expires_at FROM {TABLE} WHERE session_id = ?", (key,)
        ).fetchone()
        if row is None or not is_live(row[1], now):
            return 0
        return int(row[0])

    def _maybe_purge(self, conn: sqlite3.Connection, now: float) -> None:
        if self._last_purge is None or now - self._last_purge >= self._purge_interval_s:
            self._purge(conn, now)

    def _purge(self, conn: sqlite3.Connection, now: float) -> int:
        self._last_purge = now
        cursor = conn.execute(
            f"DELETE FROM {TABLE} WHERE expires_at > 0 AND expires_at <= ?", (now,)
        )
        return cursor.rowcount


#: Connections inherited across fork(); never closed in the child (see _forget_parent).
_INHERITED: list[sqlite3.Connection] = []


def _open(path: str, busy_timeout_s: float) -> sqlite3.Connection:
    """Open, configure and create the schema, retrying while another process holds locks.

    Switching to WAL needs an exclusive lock that the busy handler does not always wait
    for, so the whole setup is retried until ``busy_timeout_s`` has passed.
    """
    if path != ":memory:" and not path.startswith("file:"):
        _private_file(path)
    deadline = time.monotonic() + busy_timeout_s
    while True:
        conn = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL is durable across crashes of the process (not of the machine),
            # which is what a session with a TTL of hours needs.
            conn.execute("PRAGMA synchronous = NORMAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
        except BaseException:
            conn.close()
            raise


def _private_file(path: str) -> None:
    """Create the database file (and its folder) readable by its owner only.

    A file that exists with group or other bits (made by another tool, or before this
    rule) is narrowed to :data:`FILE_MODE` when this process owns it; one owned by
    someone else is left alone (it is theirs to share).
    """
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, mode=DIR_MODE, exist_ok=True)  # os, not pathlib: cheaper import
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@contextmanager
def _translated(path: str) -> Iterator[None]:
    """SQLite's exceptions as warmline's, at the boundary."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            raise StoreUnavailableError(f"SQLite store {path!r} stayed locked: {exc}") from exc
        raise StoreError(f"SQLite store {path!r} failed: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite store {path!r} failed: {exc}") from exc
    except OSError as exc:  # e.g. the parent directory cannot be created
        raise StoreError(f"SQLite store {path!r} cannot be opened: {exc}") from exc


def _record(row: tuple[Any, ...]) -> SessionRecord:
    """A row as a record, checking column types (another writer may have put anything)."""
    session_id, connection_id, call_sid, version, expires_at, turn, data = row
    ok = (
        isinstance(session_id, str)
        and isinstance(connection_id, str)
        and (call_sid is None or isinstance(call_sid, str))
        and all(isinstance(v, int) for v in (version, expires_at, turn))
        and isinstance(data, str | bytes)
    )
    if not ok:
        raise StoreError(f"session {session_id!r}: stored row has unexpected column types")
    return SessionRecord(
        session_id=session_id,
        connection_id=connection_id,
        call_sid=call_sid,
        version=version,
        expires_at=expires_at,
        turn=turn,
        data=decode_data(data, session_id),
    )
