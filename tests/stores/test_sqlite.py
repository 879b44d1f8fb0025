"""SQLiteStore: the conformance suite (including two racing processes), plus SQLite's own
promises: WAL, indexes, fork safety, a file shared by processes, clear errors on bad rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from warmline.core.session import SessionRecord
from warmline.errors import StoreError, StoreUnavailableError
from warmline.stores.base import update
from warmline.stores.sqlite import (
    ENV_PATH,
    LAMBDA_PATH,
    LOCAL_PATH,
    TABLE,
    SQLiteStore,
)
from warmline.types import SessionStore

# The shared suite is a plain module: ask pytest to rewrite its asserts too.
pytest.register_assert_rewrite("conformance")

from conformance import FakeClock, ProcessSpec, StoreConformance, StoreFactory  # noqa: E402


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions.sqlite3"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[SQLiteStore]:
    with SQLiteStore(db_path, clock=clock, ttl_s=60) as store:
        yield store


@pytest.fixture
def raw(db_path: Path, store: SQLiteStore) -> Iterator[sqlite3.Connection]:
    """A plain connection to the store's file, opened after the schema exists."""
    store.get("anything")  # opens the file and creates the schema
    conn = sqlite3.connect(db_path, isolation_level=None)
    yield conn
    conn.close()


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def store_factory(self, db_path: Path) -> StoreFactory:
        def make(*, clock: Callable[[], float], ttl_s: int) -> SessionStore:
            return SQLiteStore(db_path, clock=clock, ttl_s=ttl_s)

        return make

    @pytest.fixture
    def process_spec(self, db_path: Path) -> ProcessSpec:
        return ProcessSpec("warmline.stores.sqlite:SQLiteStore", {"path": str(db_path)})


def _bump(record: SessionRecord) -> SessionRecord:
    return record.evolve(data={"n": record.data.get("n", 0) + 1})


# --- configuration of the file ---------------------------------------------------------
def test_the_file_is_in_wal_mode(store: SQLiteStore, raw: sqlite3.Connection) -> None:
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_busy_timeout_is_set_on_the_connection(db_path: Path) -> None:
    with SQLiteStore(db_path, busy_timeout_s=2.5) as store:
        store.get("S1")
        conn = store._conn  # the store's own connection: the setting is per connection
        assert conn is not None
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (2500,)


@pytest.mark.parametrize(
    ("column", "index"),
    [("connection_id", f"{TABLE}_connection"), ("call_sid", f"{TABLE}_call_sid")],
)
def test_secondary_lookups_use_an_index(raw: sqlite3.Connection, column: str, index: str) -> None:
    plan = raw.execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM {TABLE} WHERE {column} = ?"
        " AND (expires_at = 0 OR expires_at > ?)",
        ("x", 0),
    ).fetchall()
    assert any(index in str(step) for step in plan), plan


def test_the_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.sqlite3"
    with SQLiteStore(path) as store:
        store.put(SessionRecord(session_id="S1"))
    assert path.is_file()


def test_the_file_its_journal_and_its_new_folder_are_private_to_the_owner(
    tmp_path: Path,
) -> None:
    """Sessions hold callers' numbers and transcripts: 0600 files in a 0700 folder,
    whatever the umask (022 here, the common default, would give 0644)."""
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "state" / "s.sqlite3"
        with SQLiteStore(path) as store:
            store.put(SessionRecord(session_id="S1", data={"from": "+15550100"}))
            modes = {p.name: p.stat().st_mode & 0o777 for p in path.parent.iterdir()}
        assert modes["s.sqlite3"] == 0o600
        assert modes.get("s.sqlite3-wal", 0o600) == 0o600
        assert modes.get("s.sqlite3-shm", 0o600) == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(old_umask)


def test_an_existing_world_readable_file_of_ours_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with SQLiteStore(path) as store:
        store.put(SessionRecord(session_id="S1"))
    assert path.stat().st_mode & 0o777 == 0o600


def test_from_environment_reads_the_path_and_picks_platform_defaults(tmp_path: Path) -> None:
    custom = str(tmp_path / "x.sqlite3")
    assert SQLiteStore.from_environment({ENV_PATH: custom}).path == custom
    assert SQLiteStore.from_environment({"AWS_LAMBDA_FUNCTION_NAME": "f"}).path == LAMBDA_PATH
    assert SQLiteStore.from_environment({}).path == LOCAL_PATH


def test_the_latest_written_record_wins_a_shared_connection_id(store: SQLiteStore) -> None:
    a = store.put(SessionRecord(session_id="A", connection_id="C", call_sid="CA"))
    b = store.put(SessionRecord(session_id="B", connection_id="C", call_sid="CA"))
    assert (store.by_connection("C"), store.by_call_sid("CA")) == (b, b)
    a = store.put(a.evolve(turn=1))
    assert (store.by_connection("C"), store.by_call_sid("CA")) == (a, a)


# --- expiry housekeeping ---------------------------------------------------------------
def _rows(raw: sqlite3.Connection) -> int:
    count: int = raw.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]
    return count


def test_expired_rows_are_purged_lazily_at_most_once_per_interval(
    store: SQLiteStore, raw: sqlite3.Connection, clock: FakeClock
) -> None:
    # TTL 60 s and the default purge interval of 60 s; the first write purges.
    store.put(SessionRecord(session_id="A"))  # t=0, purge; A lives until t=60
    clock.advance(30)
    store.put(SessionRecord(session_id="B"))  # t=30: not due; B lives until t=90
    clock.advance(45)
    store.put(SessionRecord(session_id="C"))  # t=75: due, purges A
    assert _rows(raw) == 2
    clock.advance(30)
    store.put(SessionRecord(session_id="D"))  # t=105: B expired, but not due until t=135
    assert _rows(raw) == 3
    clock.advance(30)
    store.put(SessionRecord(session_id="E"))  # t=135: due, purges B and C (expired at 135)
    assert _rows(raw) == 2  # D, E


def test_expired_rows_stay_on_disk_between_purges_but_are_never_read(
    db_path: Path, raw: sqlite3.Connection
) -> None:
    clock = FakeClock()
    with SQLiteStore(db_path, clock=clock, ttl_s=10, purge_interval_s=3600) as store:
        store.put(SessionRecord(session_id="A", connection_id="CA"))
        clock.advance(11)
        store.put(SessionRecord(session_id="B"))
        assert _rows(raw) == 2
        assert store.get("A") is None
        assert store.by_connection("CA") is None
        assert store.purge_expired() == 1
        assert _rows(raw) == 1


# --- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "value"),
    [("data", "{not json"), ("data", "[1, 2]"), ("data", b"\xff\xfe"), ("version", "abc")],
)
def test_a_corrupted_row_is_a_clear_store_error(
    store: SQLiteStore, raw: sqlite3.Connection, column: str, value: object
) -> None:
    stored = store.put(SessionRecord(session_id="S1", connection_id="C1", call_sid="CA1"))
    raw.execute(f"UPDATE {TABLE} SET {column} = ? WHERE session_id = 'S1'", (value,))
    reads: list[tuple[Callable[[str], SessionRecord | None], str]] = [
        (store.get, "S1"),
        (store.by_connection, "C1"),
        (store.by_call_sid, "CA1"),
    ]
    for read, key in reads:
        with pytest.raises(StoreError, match="S1"):
            read(key)
    if column == "data":  # a write by the right version replaces the bad value
        repaired = store.put(stored.evolve(data={"ok": True}))
        assert store.get("S1") == repaired


def test_a_file_that_is_not_a_database_is_a_store_error(db_path: Path) -> None:
    db_path.write_bytes(b"this is not an SQLite database, just bytes " * 100)
    with SQLiteStore(db_path) as store:
        with pytest.raises(StoreError):
            store.get("S1")


def test_a_database_locked_past_the_busy_timeout_is_unavailable(
    db_path: Path, raw: sqlite3.Connection
) -> None:
    raw.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with SQLiteStore(db_path, busy_timeout_s=0.05) as store:
            with pytest.raises(StoreUnavailableError):
                store.put(SessionRecord(session_id="S1"))
            assert store.get("S1") is None  # readers are not blocked in WAL mode
    finally:
        raw.execute("ROLLBACK")


def test_a_closed_store_refuses_work_and_close_is_idempotent(store: SQLiteStore) -> None:
    store.put(SessionRecord(session_id="S1"))
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get("S1")


# --- processes -------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_opens_its_own_connection(store: SQLiteStore) -> None:
    store.put(SessionRecord(session_id="S1", data={"n": 0}))
    inherited = store._conn
    assert inherited is not None
    with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            update(store, "S1", _bump)
            code = 0 if store._conn not in (None, inherited) else 2
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._conn is inherited  # the parent keeps its connection...
    assert update(store, "S1", _bump).data == {"n": 2}  # ...and sees the child's write


def test_a_pid_change_without_the_fork_hook_also_reopens(store: SQLiteStore) -> None:
    store.put(SessionRecord(session_id="S1"))
    before = store._conn
    store._pid = -1  # as if forked by code that bypassed os.register_at_fork
    assert store.get("S1") is not None
    assert store._conn is not None and store._conn is not before
    assert store._pid == os.getpid()


_OTHER_PROCESS = """
import json, sys
from warmline.core.session import SessionRecord
from warmline.stores.sqlite import SQLiteStore

path, action = sys.argv[1], sys.argv[2]
with SQLiteStore(path) as store:
    if action == "create":
        stored = store.put(SessionRecord(session_id="S1", connection_id="C1", data={"by": "child"}))
    else:
        found = store.by_connection("C1")
        stored = {"version": found.version, "data": found.data,
                  "deleted": store.delete("S1", expected_version=found.version)}
        print(json.dumps(stored))
"""


def _other_process(db_path: Path, action: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(db_path), action],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def test_a_file_is_shared_by_processes(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        assert store.get("S1") is None  # open before the other process writes
        _other_process(db_path, "create")
        found = store.by_connection("C1")
        assert found is not None and (found.version, found.data) == (1, {"by": "child"})
        store.put(found.evolve(data={"by": "parent"}))
        seen = json.loads(_other_process(db_path, "read-and-delete"))
        assert seen == {"version": 2, "data": {"by": "parent"}, "deleted": True}
        assert store.get("S1") is None
