"""FaultyStore: forwards to a real store, fails or stalls on command, writes nothing then.

The composition edge wraps the App's store only when ``WARMLINE_DEV_FAULTS`` is set
(warmline dev sets it; tested in ``tests/adapters/test_compose.py``), so production code
never runs through the wrapper.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from warmline.core.session import SessionRecord
from warmline.errors import StoreUnavailableError
from warmline.stores import faulty
from warmline.stores.faulty import FaultyStore
from warmline.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> FaultyStore:
    return FaultyStore(SQLiteStore(tmp_path / "s.sqlite3"))


@pytest.fixture(autouse=True)
def _no_leftover_faults() -> None:
    faulty.set_active(None)


def record(session_id: str = "VX1") -> SessionRecord:
    return SessionRecord(session_id=session_id, connection_id="C1=", call_sid="CA1")


def test_it_forwards_everything(store: FaultyStore) -> None:
    saved = store.put(record())
    assert store.get("VX1") == saved
    assert store.by_connection("C1=") == saved
    assert store.by_call_sid("CA1") == saved
    assert store.delete("VX1", expected_version=saved.version)
    assert store.get("VX1") is None
    store.close()  # forwarded to the SQLite store


def test_failing_raises_store_unavailable_and_changes_nothing(store: FaultyStore) -> None:
    saved = store.put(record())
    store.down = {"*"}
    for call in (
        lambda: store.get("VX1"),
        lambda: store.by_connection("C1="),
        lambda: store.by_call_sid("CA1"),
        lambda: store.put(saved),
        lambda: store.delete("VX1"),
    ):
        with pytest.raises(StoreUnavailableError, match="injected fault"):
            call()
    assert store.failures == 5
    store.down = set()
    assert store.get("VX1") == saved  # same version: nothing was written or deleted


def test_the_invocation_switch_is_what_warmline_dev_sets(store: FaultyStore) -> None:
    waits: list[float] = []
    stalled = FaultyStore(store.inner, sleep=waits.append)
    faulty.set_active({"stall_ms": 250})
    stalled.put(record())
    assert waits == [0.25]
    faulty.set_active({"fail": True})
    with pytest.raises(StoreUnavailableError):
        stalled.get("VX1")
    faulty.set_active(None)
    assert stalled.get("VX1") is not None
    assert faulty.active() == {}
