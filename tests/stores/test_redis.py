"""RedisStore against a real redis-server: the conformance suite, expiry, errors, layout."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.register_assert_rewrite("conformance")

from conformance import T0, ProcessSpec, StoreConformance, StoreFactory  # noqa: E402
from redis_server import ENV_BINARY, MISSING, find_redis_server, redis_server  # noqa: E402

from warmline.core.session import SessionRecord  # noqa: E402
from warmline.errors import (  # noqa: E402
    ConfigurationError,
    MissingExtraError,
    StoreError,
    StoreUnavailableError,
    VersionConflictError,
)
from warmline.stores.redis import MAX_CLOCK_SKEW_S, RedisStore  # noqa: E402
from warmline.types import SessionStore  # noqa: E402

redis = pytest.importorskip("redis", reason="redis-py is not installed (warmline[redis])")

#: Bound on polls for Redis to expire a key on its own.
EXPIRY_WAIT_S = 5.0


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip(MISSING)
    with redis_server(binary) as server_url:
        yield server_url


@pytest.fixture
def prefix() -> str:
    """A fresh namespace per test, so tests sharing the module's server never meet."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def raw(url: str) -> Iterator[Any]:
    """A plain client for looking at (and corrupting) what the store wrote."""
    client = redis.Redis.from_url(url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def store(url: str, prefix: str) -> Iterator[RedisStore]:
    with RedisStore(url, prefix=prefix, ttl_s=60) as made:
        yield made


class TestRedisStore(StoreConformance):
    @pytest.fixture
    def store_factory(self, url: str, prefix: str) -> StoreFactory:
        def make(*, clock: Callable[[], float], ttl_s: int) -> SessionStore:
            return RedisStore(url, prefix=prefix, clock=clock, ttl_s=ttl_s)

        return make

    @pytest.fixture
    def process_spec(self, url: str, prefix: str) -> ProcessSpec:
        return ProcessSpec("warmline.stores.redis:RedisStore", {"url": url, "prefix": prefix})


# --- layout and pointers ---------------------------------------------------------------
def test_keys_are_laid_out_as_documented(store: RedisStore, raw: Any, prefix: str) -> None:
    stored = store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1", data={"a": 1}))
    assert sorted(raw.keys(prefix + "*")) == [prefix + "c:C1", prefix + "k:CA1", prefix + "s:S1"]
    assert raw.hgetall(prefix + "s:S1") == {
        "session_id": "S1",
        "connection_id": "C1",
        "call_sid": "CA1",
        "version": "1",
        "expires_at": str(stored.expires_at),
        "turn": "0",
        "data": '{"a":1}',
    }
    assert raw.get(prefix + "c:C1") == raw.get(prefix + "k:CA1") == "S1"


def test_moving_and_deleting_remove_the_record_s_own_pointers(
    store: RedisStore, raw: Any, prefix: str
) -> None:
    first = store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1"))
    moved = store.put(first.evolve(connection_id="C2", call_sid=None))
    assert sorted(raw.keys(prefix + "*")) == [prefix + "c:C2", prefix + "s:S1"]
    store.delete("S1", expected_version=moved.version)
    assert raw.keys(prefix + "*") == []


def test_a_pointer_taken_over_by_another_session_is_left_to_it(
    store: RedisStore, raw: Any, prefix: str
) -> None:
    """A reconnect: S2 now owns C1; S1 moving away or being deleted must not unlink it."""
    first = store.put(SessionRecord("S1", connection_id="C1"))
    second = store.put(SessionRecord("S2", connection_id="C1"))
    assert store.by_connection("C1") == second
    store.put(first.evolve(connection_id="C3"))
    store.delete("S1")
    assert raw.get(prefix + "c:C1") == "S2"
    assert store.by_connection("C1") == second


def test_prefixes_keep_stores_apart(url: str, store: RedisStore) -> None:
    store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1"))
    with RedisStore(url, prefix="other:") as other:
        assert (other.get("S1"), other.by_connection("C1"), other.by_call_sid("CA1")) == (
            None,
            None,
            None,
        )
        assert other.put(SessionRecord("S1")).version == 1


# --- expiry: the store's clock is the truth, Redis expiry follows it -------------------
def test_with_the_wall_clock_every_key_expires_with_the_record(
    store: RedisStore, raw: Any, prefix: str
) -> None:
    stored = store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1"))
    left_ms = (stored.expires_at - time.time()) * 1000
    for key in ("s:S1", "c:C1", "k:CA1"):
        # The key dies when the record does, not before: never earlier than expires_at.
        assert left_ms - 5_000 < raw.pttl(prefix + key) <= math.ceil(left_ms) + 1_000


def test_expiry_counts_from_the_store_s_clock_not_the_server_s(
    url: str, raw: Any, prefix: str
) -> None:
    """A clock an hour ahead (within MAX_CLOCK_SKEW_S): the key gets the record's remaining
    life by that clock, so Redis neither deletes it early nor keeps it an hour longer."""
    ahead = 3600.0
    with RedisStore(url, prefix=prefix, clock=lambda: time.time() + ahead, ttl_s=60) as store:
        store.put(SessionRecord("S1", connection_id="C1"))
    assert 55_000 < raw.pttl(prefix + "s:S1") <= 61_000
    assert 55_000 < raw.pttl(prefix + "c:C1") <= 61_000


def test_a_test_clock_far_from_real_time_sets_no_server_expiry(
    url: str, raw: Any, prefix: str
) -> None:
    """The conformance suite's fake clock (years off): Redis must never delete a record
    that clock calls live, so only the store's read filter expires it."""
    assert abs(time.time() - T0) > MAX_CLOCK_SKEW_S
    now = [T0]
    with RedisStore(url, prefix=prefix, clock=lambda: now[0], ttl_s=60) as store:
        stored = store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1"))
        assert [raw.pttl(prefix + k) for k in ("s:S1", "c:C1", "k:CA1")] == [-1, -1, -1]
        assert store.get("S1") == stored
        now[0] = stored.expires_at
        assert store.get("S1") is None
        assert raw.exists(prefix + "s:S1") == 1  # still there; invisible all the same


def test_redis_itself_removes_the_keys_when_the_record_expires(
    url: str, raw: Any, prefix: str
) -> None:
    # A wall clock that reads 50 ms before the record's expiry second when it writes.
    expires_at = math.ceil(time.time()) + 1
    offset = expires_at - 0.05 - time.time()
    with RedisStore(url, prefix=prefix, clock=lambda: time.time() + offset) as store:
        store.put(SessionRecord("S1", connection_id="C1", expires_at=expires_at))
        keys = [prefix + "s:S1", prefix + "c:C1"]
        deadline = time.monotonic() + EXPIRY_WAIT_S
        while raw.exists(*keys) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert raw.exists(*keys) == 0
        assert store.get("S1") is None
        assert store.put(SessionRecord("S1")).version == 1


def test_updates_keep_the_remaining_life_not_a_new_one(url: str, raw: Any, prefix: str) -> None:
    now = [time.time()]
    with RedisStore(url, prefix=prefix, clock=lambda: now[0], ttl_s=60) as store:
        first = store.put(SessionRecord("S1"))
        now[0] += 30
        store.put(first.evolve(turn=1))
    assert 25_000 < raw.pttl(prefix + "s:S1") <= 31_000


# --- scripts ---------------------------------------------------------------------------
def test_scripts_survive_a_script_flush(store: RedisStore, raw: Any) -> None:
    """EVALSHA answers NOSCRIPT after a restart or SCRIPT FLUSH; the store falls back to EVAL."""
    stored = store.put(SessionRecord("S1", connection_id="C1"))
    raw.script_flush()
    stored = store.put(stored.evolve(turn=1))
    assert store.by_connection("C1") == stored
    raw.script_flush()
    assert store.delete("S1", expected_version=2) is True


def test_a_client_with_decoded_responses_works_and_stays_open(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        store = RedisStore(client, prefix=prefix)
        stored = store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1", data={"é": 1}))
        assert store.by_call_sid("CA1") == stored == store.get("S1")
        with pytest.raises(VersionConflictError):
            store.put(SessionRecord("S1"))
        store.close()
        assert client.ping() is True  # the caller's client is the caller's to close
        with pytest.raises(StoreError):
            store.get("S1")
    finally:
        client.close()


# --- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"version": "one"},
        {"data": "{not json"},
        {"data": "[1, 2]"},
        {"turn": "-1"},
    ],
)
def test_a_malformed_hash_is_a_store_error_on_every_path(
    store: RedisStore, raw: Any, prefix: str, fields: dict[str, str]
) -> None:
    stored = store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1"))
    raw.hset(prefix + "s:S1", mapping=fields)
    reads: list[Callable[[], object]] = [
        lambda: store.get("S1"),
        lambda: store.by_connection("C1"),
        lambda: store.by_call_sid("CA1"),
    ]
    for read in reads:
        with pytest.raises(StoreError) as info:
            read()
        assert not isinstance(info.value, StoreUnavailableError)
    if "version" in fields:  # the scripts read the version: they refuse to go on
        with pytest.raises(StoreError):
            store.put(stored.evolve(turn=1))
        with pytest.raises(StoreError):
            store.delete("S1")


def test_a_hash_without_expiry_or_version_is_refused_by_the_scripts(
    store: RedisStore, raw: Any, prefix: str
) -> None:
    raw.hset(prefix + "s:S1", mapping={"session_id": "S1"})
    writes: list[Callable[[], object]] = [
        lambda: store.put(SessionRecord("S1")),
        lambda: store.delete("S1"),
    ]
    for write in writes:
        with pytest.raises(StoreError, match="malformed"):
            write()
    assert raw.hgetall(prefix + "s:S1") == {"session_id": "S1"}  # nothing written


def test_a_key_of_the_wrong_type_is_a_store_error_and_nothing_is_written(
    store: RedisStore, raw: Any, prefix: str
) -> None:
    raw.set(prefix + "s:S1", "not a hash")
    with pytest.raises(StoreError):
        store.get("S1")
    with pytest.raises(StoreError):
        store.put(SessionRecord("S1", connection_id="C1"))
    assert raw.get(prefix + "s:S1") == "not a hash"
    assert raw.exists(prefix + "c:C1") == 0


def test_a_hash_under_another_session_s_key_is_a_store_error(
    store: RedisStore, raw: Any, prefix: str
) -> None:
    store.put(SessionRecord("S1"))
    raw.copy(prefix + "s:S1", prefix + "s:S2")
    with pytest.raises(StoreError):
        store.get("S2")


def test_data_with_a_lone_surrogate_round_trips(store: RedisStore) -> None:
    """Data is stored as JSON whose lone surrogates are escapes; a key UTF-8 cannot carry
    is still a store error."""
    stored = store.put(SessionRecord("S1", data={"x": "\ud800"}))
    assert store.get("S1") == stored and stored.data == {"x": "\ud800"}
    with pytest.raises(StoreError):
        store.put(SessionRecord("S\ud800"))


def test_a_refused_connection_is_store_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout_s=1.0) as store:
        with pytest.raises(StoreUnavailableError):
            store.get("S1")
        with pytest.raises(StoreUnavailableError):
            store.put(SessionRecord("S1"))


def test_a_server_that_never_answers_is_store_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout_s=0.2) as store:
            with pytest.raises(StoreUnavailableError):
                store.get("S1")


# --- construction ----------------------------------------------------------------------
def test_bad_arguments_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore()
    with pytest.raises(ConfigurationError):
        RedisStore(url, client=object())
    with pytest.raises(ConfigurationError):
        RedisStore("")
    with pytest.raises(ConfigurationError):
        RedisStore(url, ttl_s=0)
    with pytest.raises(ConfigurationError):
        RedisStore("not-a-url://x").get("S1")
    with pytest.raises(ConfigurationError):
        RedisStore.from_environment({})
    assert RedisStore.from_environment({"WARMLINE_REDIS_URL": url}).url == url


def test_a_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis -> ImportError
    store = RedisStore(url)
    with pytest.raises(MissingExtraError) as info:
        store.get("S1")
    assert info.value.extra == "redis"


def test_importing_the_module_loads_no_redis_client() -> None:
    code = (
        "import json, sys\n"
        "from warmline.stores.redis import RedisStore\n"
        "RedisStore('redis://127.0.0.1:1/0')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'redis')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []


# --- the server helper -----------------------------------------------------------------
def test_the_helper_runs_a_server_without_persistence_and_cleans_up(url: str) -> None:
    binary = find_redis_server()
    assert binary is not None  # the module fixture found one, or these tests were skipped
    with redis_server(binary) as other:
        assert other != url
        client = redis.Redis.from_url(other, decode_responses=True)
        try:
            workdir = client.config_get("dir")["dir"]
            assert client.config_get("save")["save"] == ""
            assert client.config_get("appendonly")["appendonly"] == "no"
            assert client.config_get("bind")["bind"] == "127.0.0.1"
            assert os.path.isdir(workdir)
        finally:
            client.close()
    assert not os.path.exists(workdir)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", urlsplit(other).port or 0), timeout=1)


def test_the_helper_prefers_an_explicit_binary_then_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv(ENV_BINARY, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == str(fake)
    monkeypatch.setenv(ENV_BINARY, str(tmp_path / "missing"))
    assert find_redis_server() is None
