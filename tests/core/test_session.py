"""compare_and_set: the one retry loop behind Context.update_session and stores.base.update."""

from __future__ import annotations

import pytest

from warmline.core.session import SessionRecord, compare_and_set
from warmline.errors import ConfigurationError, VersionConflictError
from warmline.stores.memory import MemoryStore


class CountingStore(MemoryStore):
    """A real MemoryStore that counts reads and can lose the next races on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.lose = 0

    def get(self, session_id: str) -> SessionRecord | None:
        self.reads += 1
        return super().get(session_id)

    def put(self, record: SessionRecord) -> SessionRecord:
        if self.lose:
            self.lose -= 1
            current = super().get(record.session_id)
            assert current is not None
            super().put(current.evolve(turn=current.turn + 100))  # another writer wins
        return super().put(record)


def bump(record: SessionRecord) -> SessionRecord:
    return record.evolve(turn=record.turn + 1)


def test_a_record_the_caller_holds_is_not_read_again() -> None:
    store = CountingStore()
    held = store.put(SessionRecord("s1"))
    store.reads = 0

    stored = compare_and_set(store, "s1", bump, current=held)

    assert stored is not None and stored.turn == 1 and stored.version == 2
    assert store.reads == 0


def test_a_lost_race_rereads_and_applies_the_change_to_the_winner() -> None:
    store = CountingStore()
    held = store.put(SessionRecord("s1"))
    store.lose = 2

    stored = compare_and_set(store, "s1", bump, current=held)

    assert stored is not None and stored.turn == 201  # both winners' bumps, then ours
    assert store.reads == 2


def test_losing_every_attempt_raises_the_last_conflict() -> None:
    store = CountingStore()
    store.put(SessionRecord("s1"))
    store.lose = 3

    with pytest.raises(VersionConflictError):
        compare_and_set(store, "s1", bump, attempts=3)
    assert store.reads == 3


def test_one_attempt_is_one_try() -> None:
    store = CountingStore()
    store.put(SessionRecord("s1"))
    store.lose = 1
    with pytest.raises(VersionConflictError):
        compare_and_set(store, "s1", bump, attempts=1)


@pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
def test_attempts_must_be_a_positive_int(attempts: object) -> None:
    with pytest.raises(ConfigurationError, match="attempts"):
        compare_and_set(MemoryStore(), "s1", bump, attempts=attempts)  # type: ignore[arg-type]


def test_a_missing_record_is_none_or_created() -> None:
    store = MemoryStore()
    assert compare_and_set(store, "s1", bump) is None
    assert store.get("s1") is None
    created = compare_and_set(store, "s1", bump, create=True)
    assert created is not None and created.turn == 1 and created.version == 1


def test_an_unchanged_record_is_not_written() -> None:
    store = MemoryStore()
    held = store.put(SessionRecord("s1"))
    assert compare_and_set(store, "s1", lambda r: r) == held
    stored = store.get("s1")
    assert stored is not None and stored.version == held.version


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r.evolve(session_id="other"),
            "change must keep session_id and version (use evolve)",
        ),
        (
            lambda r: r.evolve(version=r.version + 1),
            "change must keep session_id and version (use evolve)",
        ),
        (lambda r: {"turn": 1}, "change returned dict, not SessionRecord"),
    ],
)
def test_a_change_must_keep_the_key_and_version(change: object, message: str) -> None:
    store = MemoryStore()
    store.put(SessionRecord("s1"))
    with pytest.raises(ConfigurationError) as raised:
        compare_and_set(store, "s1", change)  # type: ignore[arg-type]
    assert str(raised.value) == message
