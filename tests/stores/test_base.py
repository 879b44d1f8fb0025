"""The rules every store shares (warmline.stores.base), checked on their own.

The conformance suite checks them through each store; these tests pin the edges a store
rarely reaches: one-second lifetimes, ``expires_at == 0``, update with one attempt, the
exact errors a caller sees.
"""

from __future__ import annotations

import math

import pytest

from warmline.core.session import SessionRecord
from warmline.errors import ConfigurationError, StoreError, VersionConflictError
from warmline.stores.base import (
    DEFAULT_TTL_S,
    DEFAULT_UPDATE_ATTEMPTS,
    check_key,
    check_record,
    check_ttl,
    decode_data,
    encode_data,
    is_live,
    stamp,
    update,
)
from warmline.stores.memory import MemoryStore


def _bump(record: SessionRecord) -> SessionRecord:
    return record.evolve(turn=record.turn + 1)


# --- keys, records, lifetimes ---------------------------------------------------------


def test_a_key_is_returned_as_it_is() -> None:
    assert check_key("S1") == "S1"
    assert check_key("C1", "connection_id") == "C1"


@pytest.mark.parametrize("value", ["", None, 7, b"S1"])
def test_a_key_that_is_not_a_non_empty_str_names_itself_in_the_error(value: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_key(value)
    assert str(raised.value) == f"session_id must be a non-empty str, got {value!r}"
    with pytest.raises(ConfigurationError, match=r"^call_sid must be a non-empty str"):
        check_key(value, "call_sid")


def test_a_well_formed_record_is_returned_as_it_is() -> None:
    record = SessionRecord("S", connection_id="", call_sid="CA1", version=0, expires_at=0)
    assert check_record(record) is record
    full = SessionRecord("S", "C", None, version=3, expires_at=10, turn=2, data={"a": 1})
    assert check_record(full) is full


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"session_id": "S"}, "expected a SessionRecord, got dict"),
        (SessionRecord(""), "session_id must be a non-empty str, got ''"),
        (SessionRecord("S", connection_id=None), "connection_id must be a str, got None"),  # type: ignore[arg-type]
        (SessionRecord("S", call_sid=""), "call_sid must be a non-empty str, got ''"),
        (SessionRecord("S", version=-1), "version must be an int >= 0, got -1"),
        (SessionRecord("S", version=True), "version must be an int >= 0, got True"),
        (SessionRecord("S", version=1.0), "version must be an int >= 0, got 1.0"),  # type: ignore[arg-type]
        (SessionRecord("S", expires_at=-1), "expires_at must be an int >= 0, got -1"),
        (SessionRecord("S", turn=-1), "turn must be an int >= 0, got -1"),
        (SessionRecord("S", turn=False), "turn must be an int >= 0, got False"),
        (SessionRecord("S", data=[]), "data must be a dict, got list"),  # type: ignore[arg-type]
    ],
)
def test_a_malformed_record_is_refused_naming_the_field(record: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_record(record)
    assert str(raised.value) == message


@pytest.mark.parametrize("ttl_s", [1, 60, DEFAULT_TTL_S])
def test_a_lifetime_of_whole_positive_seconds_is_accepted(ttl_s: int) -> None:
    assert check_ttl(ttl_s) == ttl_s


@pytest.mark.parametrize("ttl_s", [0, -1, 1.0, 0.5, True, "60", None])
def test_any_other_lifetime_is_refused(ttl_s: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_ttl(ttl_s)
    assert str(raised.value) == f"ttl_s must be an int > 0 (seconds), got {ttl_s!r}"


def test_an_unset_expiry_is_stamped_now_plus_the_lifetime_rounded_up() -> None:
    assert stamp(SessionRecord("S"), now=1000.0, ttl_s=60) == 1060
    assert stamp(SessionRecord("S"), now=1000.2, ttl_s=60) == 1061
    assert stamp(SessionRecord("S"), now=1000.0, ttl_s=1) == 1001
    assert isinstance(stamp(SessionRecord("S"), now=1000.2, ttl_s=1), int)


def test_an_expiry_the_caller_set_is_kept() -> None:
    assert stamp(SessionRecord("S", expires_at=5), now=1000.0, ttl_s=60) == 5


@pytest.mark.parametrize("now", [0.0, 1.0, 1e12, math.inf])
def test_expires_at_0_never_expires(now: float) -> None:
    assert is_live(0, now)


@pytest.mark.parametrize(
    ("now", "live"), [(0.0, True), (99.999, True), (100.0, False), (100.001, False), (500, False)]
)
def test_a_row_is_live_until_its_expiry_second(now: float, live: bool) -> None:
    assert is_live(100, now) is live


def test_a_row_expiring_at_second_1_is_gone_at_1() -> None:
    assert is_live(1, 0.5)
    assert not is_live(1, 1)


# --- data as JSON -----------------------------------------------------------------------


def test_data_is_compact_json_that_keeps_unicode() -> None:
    assert encode_data({"a": [1, 2], "b": "café ☎"}) == '{"a":[1,2],"b":"café ☎"}'


@pytest.mark.parametrize("data", [{"x": math.nan}, {"x": math.inf}, {"x": {1, 2}}, {"x": object()}])
def test_data_json_cannot_hold_is_a_store_error_naming_the_session(data: dict[str, object]) -> None:
    with pytest.raises(StoreError, match=r"^session 'S9': data is not JSON-serialisable: "):
        encode_data(data, "S9")
    with pytest.raises(StoreError, match=r"^session '\?': "):
        encode_data(data)


@pytest.mark.parametrize("text", ['{"a":[1,2],"b":"café"}', b'{"a":[1,2],"b":"caf\xc3\xa9"}'])
def test_stored_json_text_or_bytes_decodes_to_data(text: str | bytes) -> None:
    assert decode_data(text) == {"a": [1, 2], "b": "café"}


@pytest.mark.parametrize("text", ["", "{", "nope", b"\xff\xfe{", None])
def test_stored_data_that_is_not_json_is_a_store_error_naming_the_session(
    text: str | bytes,
) -> None:
    with pytest.raises(StoreError, match=r"^session 'S9': stored data is not valid JSON: "):
        decode_data(text, "S9")
    with pytest.raises(StoreError, match=r"^session '\?': "):
        decode_data(text)


@pytest.mark.parametrize("text", ["[]", "1", '"x"', "null"])
def test_stored_json_that_is_not_an_object_is_a_store_error(text: str) -> None:
    with pytest.raises(StoreError) as raised:
        decode_data(text, "S9")
    assert str(raised.value) == "session 'S9': stored data is not a JSON object"


# --- update -----------------------------------------------------------------------------


def test_update_tries_a_handful_of_times_by_default() -> None:
    assert DEFAULT_UPDATE_ATTEMPTS == 16
    store = MemoryStore()
    store.put(SessionRecord("S"))
    tries: list[int] = []

    def always_loses(record: SessionRecord) -> SessionRecord:
        tries.append(record.version)
        store.put(_bump(record))
        return _bump(record)

    with pytest.raises(VersionConflictError):
        update(store, "S", always_loses)
    assert len(tries) == DEFAULT_UPDATE_ATTEMPTS


@pytest.mark.parametrize("attempts", [0, -1, 1.5, "3", None])
def test_update_needs_at_least_one_attempt(attempts: object) -> None:
    store = MemoryStore()
    store.put(SessionRecord("S"))
    with pytest.raises(ConfigurationError) as raised:
        update(store, "S", _bump, attempts=attempts)  # type: ignore[arg-type]
    assert str(raised.value) == f"attempts must be an int >= 1, got {attempts!r}"
    got = store.get("S")
    assert got is not None and got.version == 1  # nothing written


def test_update_with_one_attempt_writes_once_when_unopposed() -> None:
    store = MemoryStore()
    store.put(SessionRecord("S"))
    stored = update(store, "S", _bump, attempts=1)
    assert (stored.version, stored.turn) == (2, 1)
    assert store.get("S") == stored


def test_update_with_one_attempt_raises_the_conflict_it_lost() -> None:
    store = MemoryStore()
    store.put(SessionRecord("S"))
    tries: list[int] = []

    def loses(record: SessionRecord) -> SessionRecord:
        tries.append(record.version)
        store.put(record.evolve(turn=7))  # another writer wins in between
        return _bump(record)

    with pytest.raises(VersionConflictError) as raised:
        update(store, "S", loses, attempts=1)
    assert tries == [1]
    assert (raised.value.key, raised.value.expected, raised.value.actual) == ("S", 1, 2)
    got = store.get("S")
    assert got is not None and (got.version, got.turn) == (2, 7)


def test_update_raises_the_last_conflict_after_its_attempts() -> None:
    store = MemoryStore()
    store.put(SessionRecord("S"))

    def always_loses(record: SessionRecord) -> SessionRecord:
        store.put(_bump(record))
        return _bump(record)

    with pytest.raises(VersionConflictError) as raised:
        update(store, "S", always_loses, attempts=2)
    # Second try: read version 2, the rival wrote 3.
    assert (raised.value.expected, raised.value.actual) == (2, 3)


def test_update_wins_on_its_last_attempt() -> None:
    store = MemoryStore()
    store.put(SessionRecord("S"))
    tries: list[int] = []

    def loses_once(record: SessionRecord) -> SessionRecord:
        tries.append(record.version)
        if len(tries) == 1:
            store.put(_bump(record))
        return _bump(record)

    stored = update(store, "S", loses_once, attempts=2)
    assert tries == [1, 2]
    assert (stored.version, stored.turn) == (3, 2)


def test_update_of_a_missing_record_names_it() -> None:
    with pytest.raises(StoreError) as raised:
        update(MemoryStore(), "S", _bump)
    assert str(raised.value) == "no live session 'S' to update"
    assert not isinstance(raised.value, VersionConflictError)


def test_update_with_create_applies_the_change_to_a_fresh_record() -> None:
    store = MemoryStore()
    seen: list[SessionRecord] = []

    def change(record: SessionRecord) -> SessionRecord:
        seen.append(record)
        return record.evolve(connection_id="C")

    stored = update(store, "S", change, create=True)
    assert seen == [SessionRecord("S")]
    assert (stored.session_id, stored.version, stored.connection_id) == ("S", 1, "C")


def test_update_with_create_stores_even_an_unchanged_fresh_record() -> None:
    store = MemoryStore()
    stored = update(store, "S", lambda r: r, create=True)
    assert stored.version == 1
    assert store.get("S") == stored


def test_update_with_create_changes_a_live_record_in_place() -> None:
    store = MemoryStore()
    store.put(SessionRecord("S", turn=4))
    stored = update(store, "S", _bump, create=True)
    assert (stored.version, stored.turn) == (2, 5)


def test_update_writes_nothing_for_a_no_op_change() -> None:
    store = MemoryStore()
    first = store.put(SessionRecord("S"))
    assert update(store, "S", lambda r: r.evolve(turn=r.turn)) == first
    assert store.get("S") == first  # still version 1


def test_update_refuses_a_change_that_returns_something_else() -> None:
    store = MemoryStore()
    store.put(SessionRecord("S"))
    with pytest.raises(ConfigurationError) as raised:
        update(store, "S", lambda r: {"turn": 1})  # type: ignore[arg-type,return-value]
    assert str(raised.value) == "change returned dict, not SessionRecord"


@pytest.mark.parametrize("changes", [{"session_id": "T"}, {"version": 5}, {"version": 0}])
def test_update_refuses_a_change_to_the_key_or_version(changes: dict[str, object]) -> None:
    store = MemoryStore()
    first = store.put(SessionRecord("S"))
    with pytest.raises(ConfigurationError) as raised:
        update(store, "S", lambda r: r.evolve(**changes))
    assert str(raised.value) == "change must keep session_id and version (use evolve)"
    assert store.get("S") == first


def test_update_checks_the_key_before_reading() -> None:
    with pytest.raises(ConfigurationError, match="session_id must be a non-empty str"):
        update(MemoryStore(), "", _bump)
