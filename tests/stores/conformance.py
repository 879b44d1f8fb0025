"""One conformance suite for every SessionStore: same tests, same meaning, every backend.

Use it from a backend's test module (``tests/stores/`` is on ``sys.path`` there)::

    pytest.register_assert_rewrite("conformance")  # before the import: detailed asserts
    from conformance import ProcessSpec, StoreConformance, StoreFactory

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store_factory(self, tmp_path: Path) -> StoreFactory:
            # Every store it makes, within one test, must share the same backing data.
            return lambda *, clock, ttl_s: MyStore(..., clock=clock, ttl_s=ttl_s)

        @pytest.fixture
        def process_spec(self, ...) -> ProcessSpec:
            # How a child process builds its own store on that same data (or pytest.skip).
            return ProcessSpec("warmline.stores.mine:MyStore", {"url": ...})

Stores are closed after each test if they have ``close()``. Time is a :class:`FakeClock`
injected through the factory: no test sleeps. The cross-process test starts two fresh
interpreters (``python -c``) that import only warmline and ``ProcessSpec.factory``; they
use the wall clock, so the parent's record for that test is written with ``time.time``.

Rules the suite pins down beyond :class:`warmline.types.SessionStore`'s docstrings (they
live in :mod:`warmline.stores.base`; a backend gets them by using its helpers):

- ``expires_at`` stamped as ``ceil(now + ttl_s)``, kept (not extended) by updates, and a
  record is gone from ``now >= expires_at``;
- ``delete`` of a missing or expired record returns False even with ``expected_version``;
- unserialisable ``data`` raises StoreError; empty keys and malformed records raise
  ConfigurationError, before any I/O.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warmline.core.session import DEFAULT_TTL_S, SessionRecord
from warmline.errors import ConfigurationError, StoreError, VersionConflictError
from warmline.stores.base import update
from warmline.types import SessionStore

__all__ = ["FakeClock", "ProcessSpec", "StoreConformance", "StoreFactory"]

#: Where the fake clock starts (a plausible epoch second, as DynamoDB TTL stores).
T0 = 1_700_000_000.0
#: Lifetime the suite gives records; short so expiry tests read naturally.
TTL_S = 60
#: Bound on the child processes of the cross-process test.
CHILD_TIMEOUT_S = 60.0

#: Any unicode text, lone surrogates included (``st.text()`` leaves them out by default);
#: a high surrogate right before a low one is left out: JSON reads that pair back as the
#: one character it encodes (``warmline.stores.base.encode_data``).
_STORED_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40).filter(
    lambda text: re.search("[\ud800-\udbff][\udc00-\udfff]", text) is None
)
#: Any text a key may hold: valid unicode (no lone surrogates).
_KEY_TEXT = st.text(max_size=40)
#: A session's ``data``: any JSON object (numbers as JSON carries them exactly).
_SESSION_DATA = st.dictionaries(
    _STORED_TEXT,
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | _STORED_TEXT,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(_STORED_TEXT, inner, max_size=4)
        ),
        max_leaves=12,
    ),
    max_size=6,
)


class StoreFactory(Protocol):
    """Builds a store on the test's shared backing data."""

    def __call__(self, *, clock: Callable[[], float], ttl_s: int) -> SessionStore: ...


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class ProcessSpec:
    """How a child process builds a store on the same data as the parent's.

    Attributes:
        factory: ``"module:callable"``; called with ``kwargs`` in the child.
        kwargs: JSON-serialisable keyword arguments.
        env: extra environment variables for the child (credentials, endpoints).
        sys_path: extra import paths for the child (a test helper module, say).
        increments: updates each child makes; lower it for slow backends.
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()
    increments: int = 150


# The child: build the store, say "ready", wait for "go" so both children start together,
# then increment a counter through update(); print how many conflicts it had to retry.
_CHILD = """
import importlib, json, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["sys_path"]
from warmline.errors import VersionConflictError
from warmline.stores.base import update
module, _, name = spec["factory"].partition(":")
store = getattr(importlib.import_module(module), name)(**spec["kwargs"])
conflicts = 0
put = store.put
def counting_put(record):
    global conflicts
    try:
        return put(record)
    except VersionConflictError:
        conflicts += 1
        raise
store.put = counting_put
def bump(r):
    return r.evolve(turn=r.turn + 1, data={**r.data, "n": r.data["n"] + 1})
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit("parent did not say go")
for _ in range(spec["increments"]):
    update(store, spec["session_id"], bump, attempts=10_000)
getattr(store, "close", lambda: None)()
print(json.dumps({"conflicts": conflicts}), flush=True)
"""


def _record(session_id: str = "S1", **fields: Any) -> SessionRecord:
    defaults: dict[str, Any] = {"connection_id": "C1", "call_sid": "CA1"}
    return SessionRecord(session_id=session_id, **{**defaults, **fields})


def _bump(record: SessionRecord) -> SessionRecord:
    return record.evolve(data={**record.data, "n": record.data.get("n", 0) + 1})


class StoreConformance:
    """The suite. Subclass it as ``Test<Store>`` and provide ``store_factory``."""

    # --- fixtures ----------------------------------------------------------------------
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        raise NotImplementedError("a backend's test class provides store_factory")

    @pytest.fixture
    def process_spec(self) -> ProcessSpec:
        pytest.skip("this store does not say how another process reaches its data")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def make_store(self, store_factory: StoreFactory) -> Iterator[StoreFactory]:
        """``store_factory``, closing every store it made after the test."""
        made: list[SessionStore] = []

        def make(*, clock: Callable[[], float], ttl_s: int) -> SessionStore:
            made.append(store_factory(clock=clock, ttl_s=ttl_s))
            return made[-1]

        yield make
        for store in made:
            close = getattr(store, "close", None)
            if close is not None:
                close()

    @pytest.fixture
    def store(self, make_store: StoreFactory, clock: FakeClock) -> SessionStore:
        return make_store(clock=clock, ttl_s=TTL_S)

    # --- create ------------------------------------------------------------------------
    def test_store_satisfies_the_protocol(self, store: SessionStore) -> None:
        assert isinstance(store, SessionStore)

    def test_create_stores_version_1_and_stamps_expiry(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        clock.advance(0.25)
        stored = store.put(_record(turn=3, data={"a": 1}))
        assert stored == _record(
            version=1, expires_at=math.ceil(clock.now + TTL_S), turn=3, data={"a": 1}
        )
        assert store.get("S1") == stored

    def test_create_keeps_an_expiry_the_caller_set(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        expires_at = int(clock.now) + 5
        assert store.put(_record(expires_at=expires_at)).expires_at == expires_at
        got = store.get("S1")
        assert got is not None and got.expires_at == expires_at

    def test_creating_twice_conflicts_and_keeps_the_first(self, store: SessionStore) -> None:
        first = store.put(_record(data={"who": "first"}))
        with pytest.raises(VersionConflictError) as info:
            store.put(_record(data={"who": "second"}))
        assert (info.value.key, info.value.expected, info.value.actual) == ("S1", 0, 1)
        assert store.get("S1") == first

    def test_get_of_an_unknown_key_is_none(self, store: SessionStore) -> None:
        store.put(_record())
        assert store.get("S2") is None

    # --- update ------------------------------------------------------------------------
    def test_update_with_the_current_version_bumps_it(self, store: SessionStore) -> None:
        first = store.put(_record())
        second = store.put(first.evolve(turn=7, data={"k": "v"}))
        assert (second.version, second.turn, second.data) == (2, 7, {"k": "v"})
        assert store.get("S1") == second

    def test_update_does_not_extend_the_expiry(self, store: SessionStore, clock: FakeClock) -> None:
        first = store.put(_record())
        clock.advance(TTL_S / 2)
        assert store.put(first.evolve(turn=1)).expires_at == first.expires_at

    def test_update_with_a_stale_version_conflicts_and_writes_nothing(
        self, store: SessionStore
    ) -> None:
        first = store.put(_record())
        second = store.put(first.evolve(turn=1))
        with pytest.raises(VersionConflictError) as info:
            store.put(first.evolve(turn=99))
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert store.get("S1") == second

    def test_update_of_a_missing_record_conflicts_with_actual_0(self, store: SessionStore) -> None:
        with pytest.raises(VersionConflictError) as info:
            store.put(_record(version=3))
        assert (info.value.expected, info.value.actual) == (3, 0)
        assert store.get("S1") is None

    def test_versions_are_per_record(self, store: SessionStore) -> None:
        a = store.put(_record("A", connection_id="CA", call_sid=None))
        store.put(store.put(_record("B", connection_id="CB", call_sid=None)))
        assert store.put(a).version == 2
        b = store.get("B")
        assert b is not None and b.version == 2

    # --- delete ------------------------------------------------------------------------
    def test_delete_without_expected_version_removes_the_record(self, store: SessionStore) -> None:
        store.put(_record())
        assert store.delete("S1") is True
        assert store.get("S1") is None
        assert store.by_connection("C1") is None
        assert store.by_call_sid("CA1") is None
        assert store.delete("S1") is False

    def test_delete_with_the_current_version_removes_the_record(self, store: SessionStore) -> None:
        stored = store.put(store.put(_record()))
        assert store.delete("S1", expected_version=stored.version) is True
        assert store.get("S1") is None

    def test_delete_with_a_stale_version_conflicts_and_keeps_the_record(
        self, store: SessionStore
    ) -> None:
        stored = store.put(store.put(_record()))
        with pytest.raises(VersionConflictError) as info:
            store.delete("S1", expected_version=1)
        assert (info.value.key, info.value.expected, info.value.actual) == ("S1", 1, 2)
        assert store.get("S1") == stored

    def test_delete_of_a_missing_record_is_false_whatever_the_version(
        self, store: SessionStore
    ) -> None:
        assert store.delete("S1") is False
        assert store.delete("S1", expected_version=4) is False

    def test_a_deleted_record_can_be_created_again(self, store: SessionStore) -> None:
        store.put(store.put(_record()))
        store.delete("S1")
        assert store.put(_record(data={"again": True})).version == 1

    # --- secondary keys ----------------------------------------------------------------
    def test_by_connection_and_by_call_sid_find_the_record(self, store: SessionStore) -> None:
        stored = store.put(_record())
        store.put(_record("S2", connection_id="C2", call_sid="CA2"))
        assert store.by_connection("C1") == stored
        assert store.by_call_sid("CA1") == stored
        assert store.by_connection("C9") is None
        assert store.by_call_sid("CA9") is None

    def test_a_record_without_call_sid_is_found_by_connection_only(
        self, store: SessionStore
    ) -> None:
        stored = store.put(_record(call_sid=None))
        assert store.by_connection("C1") == stored
        assert store.get("S1") == stored
        assert store.by_call_sid("CA1") is None

    def test_changing_connection_id_moves_the_lookup(self, store: SessionStore) -> None:
        first = store.put(_record())
        moved = store.put(first.evolve(connection_id="C2"))
        assert store.by_connection("C1") is None
        assert store.by_connection("C2") == moved

    def test_changing_or_clearing_call_sid_moves_the_lookup(self, store: SessionStore) -> None:
        first = store.put(_record())
        moved = store.put(first.evolve(call_sid="CA2"))
        assert store.by_call_sid("CA1") is None
        assert store.by_call_sid("CA2") == moved
        store.put(moved.evolve(call_sid=None))
        assert store.by_call_sid("CA2") is None

    def test_lookups_return_the_latest_version(self, store: SessionStore) -> None:
        first = store.put(_record())
        latest = store.put(first.evolve(turn=1))
        assert store.by_connection("C1") == latest
        assert store.by_call_sid("CA1") == latest

    # --- TTL ---------------------------------------------------------------------------
    def test_a_record_is_live_until_its_expiry_second(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        stored = store.put(_record())
        clock.now = stored.expires_at - 0.001
        assert store.get("S1") == stored
        clock.now = stored.expires_at
        assert store.get("S1") is None

    def test_an_expired_record_is_invisible_to_every_lookup(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        store.put(_record())
        clock.advance(TTL_S + 1)
        assert store.get("S1") is None
        assert store.by_connection("C1") is None
        assert store.by_call_sid("CA1") is None

    def test_an_expired_record_can_be_created_again_with_version_0(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        store.put(store.put(_record(data={"old": True})))
        clock.advance(TTL_S + 1)
        fresh = store.put(_record(data={"new": True}))
        assert (fresh.version, fresh.data) == (1, {"new": True})
        assert fresh.expires_at == math.ceil(clock.now + TTL_S)
        assert store.get("S1") == fresh

    def test_writing_an_expired_record_by_its_old_version_conflicts(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        stored = store.put(_record())
        clock.advance(TTL_S + 1)
        with pytest.raises(VersionConflictError) as info:
            store.put(stored.evolve(turn=1))
        assert (info.value.expected, info.value.actual) == (1, 0)
        assert store.get("S1") is None

    def test_deleting_an_expired_record_returns_false(
        self, store: SessionStore, clock: FakeClock
    ) -> None:
        stored = store.put(_record())
        clock.advance(TTL_S + 1)
        assert store.delete("S1", expected_version=stored.version) is False

    def test_expiry_is_per_record(self, store: SessionStore, clock: FakeClock) -> None:
        store.put(_record("OLD", connection_id="C1", call_sid=None))
        clock.advance(TTL_S / 2)
        young = store.put(_record("NEW", connection_id="C2", call_sid=None))
        clock.advance(TTL_S / 2 + 1)
        assert store.get("OLD") is None
        assert store.get("NEW") == young
        assert store.by_connection("C2") == young

    # --- data --------------------------------------------------------------------------
    def test_nested_json_data_with_unicode_round_trips(self, store: SessionStore) -> None:
        data = {
            "setup": {"from": "+15550100", "customParameters": {"lang": "fr-FR"}},
            "history": [
                {"role": "user", "text": "Où est la gare ? 駅はどこ"},
                {"role": "assistant", "text": "🚉 tout droit — «ici»", "tokens": 12},
            ],
            "flags": [True, False, None],
            "numbers": [0, -1, 2**53, 1.5, -0.25, 1e-9],
            "empty": {"list": [], "object": {}, "string": ""},
            "escapes": 'quote " backslash \\ newline \n tab \t nul \x00',
            "ключ": "значение",
        }
        stored = store.put(_record(data=data))
        assert stored.data == data
        for got in (store.get("S1"), store.by_connection("C1"), store.by_call_sid("CA1")):
            assert got is not None and got.data == data

    def test_stored_data_is_not_shared_with_the_caller(self, store: SessionStore) -> None:
        data: dict[str, Any] = {"history": ["a"]}
        stored = store.put(_record(data=data))
        data["history"].append("mutated input")
        stored.data["history"].append("mutated output")
        got = store.get("S1")
        assert got is not None and got.data == {"history": ["a"]}

    @pytest.mark.parametrize("bad", [{"x": object()}, {"x": float("nan")}, {"x": {1, 2}}])
    def test_data_json_cannot_hold_is_a_store_error_and_writes_nothing(
        self, store: SessionStore, bad: dict[str, Any]
    ) -> None:
        with pytest.raises(StoreError):
            store.put(_record(data=bad))
        assert store.get("S1") is None

    # --- validation --------------------------------------------------------------------
    def test_empty_keys_are_rejected(self, store: SessionStore) -> None:
        with pytest.raises(ConfigurationError):
            store.get("")
        with pytest.raises(ConfigurationError):
            store.by_connection("")
        with pytest.raises(ConfigurationError):
            store.by_call_sid("")
        with pytest.raises(ConfigurationError):
            store.delete("")
        with pytest.raises(ConfigurationError):
            store.put(_record(""))

    @pytest.mark.parametrize(
        "fields", [{"version": -1}, {"version": True}, {"turn": -2}, {"call_sid": ""}]
    )
    def test_malformed_records_are_rejected(
        self, store: SessionStore, fields: dict[str, Any]
    ) -> None:
        with pytest.raises(ConfigurationError):
            store.put(_record(**fields))
        assert store.get("S1") is None

    # --- the update() helper -----------------------------------------------------------
    def test_update_applies_a_change_with_compare_and_set(self, store: SessionStore) -> None:
        store.put(_record(data={"n": 1}))
        stored = update(store, "S1", _bump)
        assert (stored.version, stored.data) == (2, {"n": 2})
        assert store.get("S1") == stored

    def test_update_reapplies_the_change_after_losing_a_race(self, store: SessionStore) -> None:
        store.put(_record(data={"n": 0}))
        seen: list[int] = []

        def racing_bump(record: SessionRecord) -> SessionRecord:
            seen.append(record.version)
            if len(seen) == 1:  # another writer gets in between our read and our put
                store.put(_bump(record))
            return _bump(record)

        stored = update(store, "S1", racing_bump)
        assert seen == [1, 2]
        assert (stored.version, stored.data) == (3, {"n": 2})

    def test_update_gives_up_after_its_attempts(self, store: SessionStore) -> None:
        store.put(_record(data={"n": 0}))
        calls: list[int] = []

        def always_loses(record: SessionRecord) -> SessionRecord:
            calls.append(record.version)
            store.put(_bump(record))
            return _bump(record)

        with pytest.raises(VersionConflictError):
            update(store, "S1", always_loses, attempts=3)
        assert calls == [1, 2, 3]
        got = store.get("S1")
        assert got is not None and got.data == {"n": 3}

    def test_update_of_a_missing_record_fails_unless_asked_to_create(
        self, store: SessionStore
    ) -> None:
        with pytest.raises(StoreError):
            update(store, "S1", _bump)
        assert store.get("S1") is None
        created = update(store, "S1", _bump, create=True)
        assert (created.version, created.data) == (1, {"n": 1})

    def test_update_writes_nothing_when_the_change_is_a_no_op(self, store: SessionStore) -> None:
        stored = store.put(_record())
        assert update(store, "S1", lambda r: r) == stored
        assert store.get("S1") == stored

    def test_update_rejects_a_change_that_alters_the_key_or_version(
        self, store: SessionStore
    ) -> None:
        store.put(_record())
        with pytest.raises(ConfigurationError):
            update(store, "S1", lambda r: r.evolve(version=r.version + 1))
        with pytest.raises(ConfigurationError):
            update(store, "S1", lambda r: r.evolve(session_id="S2"))

    def test_update_from_threads_loses_no_increment(self, store: SessionStore) -> None:
        threads, increments = 4, 40
        store.put(_record(data={"n": 0}))
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def work() -> None:
            try:
                start.wait(timeout=CHILD_TIMEOUT_S)
                for _ in range(increments):
                    update(store, "S1", _bump, attempts=10_000)
            except BaseException as exc:  # reported below, not swallowed
                errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=CHILD_TIMEOUT_S)
        assert errors == []
        got = store.get("S1")
        assert got is not None
        assert got.data == {"n": threads * increments}
        assert got.version == 1 + threads * increments

    # --- across processes --------------------------------------------------------------
    def test_two_processes_racing_compare_and_set_lose_no_update(
        self, make_store: StoreFactory, process_spec: ProcessSpec
    ) -> None:
        # Real time here: the children run with their stores' default (wall) clock.
        parent = make_store(clock=time.time, ttl_s=DEFAULT_TTL_S)
        session_id = f"race-{os.getpid()}-{threading.get_ident()}"
        parent.put(_record(session_id, connection_id="C-race", call_sid=None, data={"n": 0}))
        spec = {
            "factory": process_spec.factory,
            "kwargs": process_spec.kwargs,
            "sys_path": list(process_spec.sys_path),
            "session_id": session_id,
            "increments": process_spec.increments,
        }
        env = {**os.environ, **process_spec.env}
        with ExitStack() as stack:
            children = [
                stack.enter_context(
                    subprocess.Popen(
                        [sys.executable, "-c", _CHILD, json.dumps(spec)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        env=env,
                    )
                )
                for _ in range(2)
            ]
            for child in children:
                assert child.stdout is not None
                line = child.stdout.readline()  # EOF if the child died: reported below
                if line.strip() != "ready":
                    out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
                    pytest.fail(f"child failed to start: {line}{out}\n{err}")
            for child in children:  # "go" to both before waiting for either
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.close()
            for child in children:
                assert child.stdout is not None and child.stderr is not None
                child.wait(timeout=CHILD_TIMEOUT_S)
                out, err = child.stdout.read(), child.stderr.read()
                assert child.returncode == 0, err
                assert "conflicts" in json.loads(out.strip().splitlines()[-1])
        got = parent.get(session_id)
        total = 2 * process_spec.increments
        assert got is not None
        assert got.data == {"n": total}
        assert (got.version, got.turn) == (1 + total, total)

    # --- stored fields: arbitrary data round-trips --------------------------------------
    @settings(
        max_examples=40,
        deadline=None,
        # one method, inherited by each backend's class: a different executor per store
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=_SESSION_DATA, call_sid=_KEY_TEXT, turn=st.integers(0, 2**31))
    def test_arbitrary_session_data_round_trips(
        self, store: SessionStore, data: dict[str, Any], call_sid: str, turn: int
    ) -> None:
        """Any JSON object of any unicode text, lone surrogates included (a caller's
        prompt, a setup's custom parameters), comes back exactly as it was stored. Keys
        (``callSid``) are any valid unicode: a key attribute must be UTF-8 in DynamoDB
        and Redis, and the relay parser makes inbound text storable before it is a key."""
        session_id = f"VX{uuid.uuid4().hex}"
        stored = store.put(
            SessionRecord(session_id, "conn=", call_sid=call_sid or None, turn=turn, data=data)
        )
        got = store.get(session_id)
        assert got is not None
        assert (got.data, got.call_sid, got.turn) == (data, call_sid or None, turn)
        assert got == stored
        updated = store.put(got.evolve(data={**data, "more": [data]}))
        assert store.get(session_id) == updated
