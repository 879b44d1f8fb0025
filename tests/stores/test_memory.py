"""MemoryStore: the conformance suite, plus what only an in-process store can show."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from warmline.core.session import SessionRecord
from warmline.errors import ConfigurationError, StoreError
from warmline.stores.memory import MemoryStore
from warmline.types import SessionStore

# The shared suite is a plain module: ask pytest to rewrite its asserts too.
pytest.register_assert_rewrite("conformance")

from conformance import FakeClock, ProcessSpec, StoreConformance, StoreFactory  # noqa: E402


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        # One shared instance: "the same backing data" for a dict is the same object.
        shared: dict[str, MemoryStore] = {}

        def make(*, clock: Callable[[], float], ttl_s: int) -> SessionStore:
            return shared.setdefault("store", MemoryStore(clock=clock, ttl_s=ttl_s))

        return make

    @pytest.fixture
    def process_spec(self) -> ProcessSpec:
        pytest.skip("MemoryStore lives in one process's memory: there is nothing to share")


def test_expired_records_are_purged_on_the_next_write() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, ttl_s=10)
    store.put(SessionRecord(session_id="old"))
    clock.advance(11)
    store.put(SessionRecord(session_id="new"))
    assert len(store) == 1


def test_the_latest_written_record_wins_a_shared_connection_id() -> None:
    store = MemoryStore()
    a = store.put(SessionRecord(session_id="A", connection_id="C"))
    b = store.put(SessionRecord(session_id="B", connection_id="C"))
    assert store.by_connection("C") == b
    a = store.put(a.evolve(turn=1))
    assert store.by_connection("C") == a


@pytest.mark.parametrize("ttl_s", [0, -5, 1.5, True, "60"])
def test_a_bad_ttl_is_a_configuration_error(ttl_s: object) -> None:
    with pytest.raises(ConfigurationError):
        MemoryStore(ttl_s=ttl_s)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lookup", "name"), [("by_connection", "connection_id"), ("by_call_sid", "call_sid")]
)
def test_an_empty_lookup_key_is_refused_by_its_name(lookup: str, name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        getattr(MemoryStore(), lookup)("")
    assert str(raised.value) == f"{name} must be a non-empty str, got ''"


def test_data_json_cannot_hold_is_refused_naming_the_session() -> None:
    with pytest.raises(StoreError) as raised:
        MemoryStore().put(SessionRecord(session_id="S7", data={"x": {1, 2}}))
    assert str(raised.value).startswith("session 'S7': data is not JSON-serialisable")
