"""Sessions in Redis: one hash per session, compare-and-set in Lua, exact key expiry.

Key layout (``prefix`` defaults to ``"warmline:"``):

=================================  =====================================================
``<prefix>s:<session_id>``         hash: ``session_id``, ``connection_id``, ``call_sid``
                                   (absent when None), ``version``, ``expires_at`` (epoch
                                   seconds), ``turn``, ``data`` (JSON text)
``<prefix>c:<connection_id>``      string: the session id, for ``by_connection``
``<prefix>k:<call_sid>``           string: the session id, for ``by_call_sid``
=================================  =====================================================

Why Lua (docs/protocols.md §7): a script runs atomically, so reading the version, checking it,
writing the hash, moving the pointers and setting expiry is one step no other client can
interleave with, in one round trip (``WATCH``/``MULTI``/``EXEC`` needs three, and a retry
whenever another client touches the key). Scripts go as ``EVALSHA`` and, on ``NOSCRIPT``
(a restarted or flushed server), once as ``EVAL``, which caches them again.

Expiry has two layers:

1. **The store's clock is the truth.** Every read and every compare-and-set filters on
   ``expires_at`` against the injected ``clock`` (the same rule as every other store,
   :func:`warmline.stores.base.is_live`), so a record is gone from ``now >= expires_at``
   whatever the server does.
2. **Redis expiry is garbage collection** that must never delete a record the store's
   clock still calls live. Each key gets ``PEXPIRE`` of the record's *remaining* life by
   the writer's clock, ``expires_at - now``, not ``PEXPIREAT expires_at``: the key then
   dies when the writer's clock reaches ``expires_at`` (plus the request's latency, never
   earlier), whatever the skew between the writer's clock and the server's. Redis expiry
   is exact (§7), so with the wall clock the two layers agree to a few milliseconds.
   A clock that does not follow real time (a test's frozen or hand-moved clock) breaks
   the "relative" reasoning, so when the store's ``now`` differs from the server's
   ``TIME`` by more than :data:`MAX_CLOCK_SKEW_S` no server-side expiry is set at all:
   the key stays until it is overwritten or deleted and layer 1 alone hides it. A fake
   clock *near* real time that stands still longer than a record's remaining life would
   still see Redis remove it; the conformance suite's clock starts years away.

Deployment notes: on Redis Cluster every key a script touches must be in one slot, so use
a prefix with a hash tag, e.g. ``"{warmline}:"`` (all sessions then live on one shard).
The store builds its client **without command retries**: retrying a compare-and-set whose
reply timed out after the server applied it would report a conflict, and
:func:`~warmline.stores.base.update` would apply the change twice. (redis-py's pool still
replaces idle connections the server closed before using them.) A client passed in is
used as configured.

redis-py is imported on first use (``warmline[redis]``), never at module import.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from warmline.core.session import DEFAULT_TTL_S, SessionRecord
from warmline.errors import (
    ConfigurationError,
    MissingExtraError,
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
    "DEFAULT_PREFIX",
    "DEFAULT_SOCKET_TIMEOUT_S",
    "ENV_URL",
    "MAX_CLOCK_SKEW_S",
    "RedisStore",
]

#: Environment variable naming the server (README "Configuration").
ENV_URL = "WARMLINE_REDIS_URL"
#: Namespace of every key the store writes.
DEFAULT_PREFIX = "warmline:"
#: Connect and read timeout of the client the store builds. Without command retries, a
#: failing server costs at most connect + read, far under API Gateway's 29 s integration
#: timeout (docs/protocols.md §2.5), so the handler can still answer.
DEFAULT_SOCKET_TIMEOUT_S = 2.0
#: Beyond this difference between the store's clock and the server's, the clock is taken
#: for a test clock and no server-side expiry is set (see the module docstring). NTP
#: keeps real hosts within milliseconds; a day off is not a running wall clock.
MAX_CLOCK_SKEW_S = 24 * 60 * 60

_SESSION, _CONNECTION, _CALL = "s:", "c:", "k:"
_ERROR_TAG = "WARMLINE_CORRUPT"

# Shared by the scripts: the hash's version/expiry as numbers, or an error reply. Lua sees
# a missing field as false. Every read (and so every possible WRONGTYPE error) comes
# before the first write, so a failing script has written nothing (Redis does not roll
# back a script that fails half-way).
_READ_CURRENT = """
local function current(key)
  if redis.call('EXISTS', key) == 0 then return nil end
  local cur = redis.call('HMGET', key, 'version', 'expires_at', 'connection_id', 'call_sid')
  local v, e = tonumber(cur[1]), tonumber(cur[2])
  if not v or not e then
    return redis.error_reply('WARMLINE_CORRUPT ' .. key .. ': version or expires_at missing')
  end
  return {v, e, cur[3], cur[4]}
end
local function own_pointer(pointer, sid, out)
  if redis.call('GET', pointer) == sid then out[#out + 1] = pointer end
end
"""

# KEYS[1] record. ARGV: expected version, now (store clock, s), expires_at, session_id,
# connection_id ('' none), call_sid ('' none), turn, data, prefix, max skew (s).
# Returns {1, new version} or {0, actual live version}.
_PUT = (
    _READ_CURRENT
    + """
if redis.replicate_commands then redis.replicate_commands() end
local key, now, sid, conn, call, prefix = KEYS[1], tonumber(ARGV[2]), ARGV[4], ARGV[5],
  ARGV[6], ARGV[9]
local cur = current(key)
if cur and cur.err then return cur end
local actual = 0
if cur and (cur[2] == 0 or now < cur[2]) then actual = cur[1] end
if actual ~= tonumber(ARGV[1]) then return {0, actual} end
local stale = {}
if cur and cur[3] and cur[3] ~= '' and cur[3] ~= conn then
  own_pointer(prefix .. 'c:' .. cur[3], sid, stale)
end
if cur and cur[4] and cur[4] ~= '' and cur[4] ~= call then
  own_pointer(prefix .. 'k:' .. cur[4], sid, stale)
end
local ms = nil
local t = redis.call('TIME')
local server = tonumber(t[1]) + tonumber(t[2]) / 1000000
local expires = tonumber(ARGV[3])
if expires > 0 and math.abs(server - now) <= tonumber(ARGV[10]) then
  local left = math.ceil((expires - now) * 1000)
  if left < 1 then left = 1 end
  -- Past ~300 years the key simply keeps no expiry (and no overflow is possible).
  if left <= 10000000000000 then ms = string.format('%d', left) end
end
local version = actual + 1
redis.call('DEL', key)
local fields = {'session_id', sid, 'connection_id', conn, 'version', string.format('%d', version),
  'expires_at', ARGV[3], 'turn', ARGV[7], 'data', ARGV[8]}
if call ~= '' then
  fields[#fields + 1] = 'call_sid'
  fields[#fields + 1] = call
end
redis.call('HSET', key, unpack(fields))
for _, pointer in ipairs(stale) do redis.call('DEL', pointer) end
local pointers = {}
if conn ~= '' then pointers[#pointers + 1] = prefix .. 'c:' .. conn end
if call ~= '' then pointers[#pointers + 1] = prefix .. 'k:' .. call end
for _, pointer in ipairs(pointers) do
  if ms then redis.call('SET', pointer, sid, 'PX', ms) else redis.call('SET', pointer, sid) end
end
if ms then redis.call('PEXPIRE', key, ms) end
return {1, version}
"""
)

# KEYS[1] record. ARGV: expected version ('' = any), now, session_id, prefix.
# Returns {1, version} deleted live, {0, 0} nothing live (an expired hash is removed
# too), {-1, actual} live but the version differs.
_DELETE = (
    _READ_CURRENT
    + """
local key, now, sid, prefix = KEYS[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local cur = current(key)
if not cur then return {0, 0} end
if cur.err then return cur end
local live = cur[2] == 0 or now < cur[2]
if live and ARGV[1] ~= '' and tonumber(ARGV[1]) ~= cur[1] then return {-1, cur[1]} end
local stale = {}
if cur[3] and cur[3] ~= '' then own_pointer(prefix .. 'c:' .. cur[3], sid, stale) end
if cur[4] and cur[4] ~= '' then own_pointer(prefix .. 'k:' .. cur[4], sid, stale) end
for _, pointer in ipairs(stale) do redis.call('DEL', pointer) end
redis.call('DEL', key)
if live then return {1, cur[1]} end
return {0, 0}
"""
)

# KEYS[1] pointer. ARGV[1] the record keys' prefix. One round trip for a secondary lookup;
# the caller checks the record still names this pointer's value (it may have moved).
_BY_POINTER = """
local sid = redis.call('GET', KEYS[1])
if not sid then return false end
return redis.call('HGETALL', ARGV[1] .. sid)
"""


class _Script:
    """A Lua script and its SHA1, computed here so EVALSHA needs no SCRIPT LOAD."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


_PUT_SCRIPT, _DELETE_SCRIPT, _POINTER_SCRIPT = (
    _Script(_PUT),
    _Script(_DELETE),
    _Script(_BY_POINTER),
)


class RedisStore:
    """A SessionStore on one Redis server (see the module docstring for the layout).

    Args:
        url: a ``redis://`` / ``rediss://`` / ``unix://`` URL; the client is built on
            first use. A redis-py client object may be passed here instead.
        client: a redis-py ``Redis`` client (either ``decode_responses`` works); the
            caller owns it, so :meth:`close` leaves it open.
        prefix: namespace of every key (a hash tag such as ``"{warmline}:"`` for Cluster).
        clock: wall-clock seconds since the epoch; inject a fake one to test expiry.
        ttl_s: lifetime given to records stored with ``expires_at == 0``.
        socket_timeout_s: connect and read timeout of a client built from ``url``.

    Raises:
        ConfigurationError: neither or both of ``url`` and ``client``, or a bad value.
    """

    def __init__(
        self,
        url: str | Any = None,
        *,
        client: Any = None,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock = time.time,
        ttl_s: int = DEFAULT_TTL_S,
        socket_timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S,
    ) -> None:
        if url is not None and not isinstance(url, str):
            url, client = None, url if client is None else client
        if (url is None) == (client is None):
            raise ConfigurationError("RedisStore needs exactly one of url and client")
        if url is not None and not url:
            raise ConfigurationError("RedisStore url must not be empty")
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a str, got {prefix!r}")
        if not socket_timeout_s > 0:
            raise ConfigurationError(f"socket_timeout_s must be > 0, got {socket_timeout_s!r}")
        self.url: str | None = url
        self.prefix = prefix
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._ttl_s = check_ttl(ttl_s)
        self._socket_timeout_s = float(socket_timeout_s)
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> RedisStore:
        """The store at ``$WARMLINE_REDIS_URL``.

        Raises:
            ConfigurationError: the variable is unset or empty.
        """
        url = (os.environ if environ is None else environ).get(ENV_URL, "")
        if not url:
            raise ConfigurationError(f"set {ENV_URL} to the Redis URL (redis://host:6379/0)")
        return cls(url, **kwargs)

    @property
    def client(self) -> Any:
        """The redis-py client, built from ``url`` on first use.

        Raises:
            MissingExtraError: redis-py is not installed (``warmline[redis]``).
            StoreError: the store is closed.
        """
        with self._lock:
            if self._closed:
                raise StoreError("RedisStore is closed")
            if self._client is None:
                self._client = _build_client(str(self.url), self._socket_timeout_s)
            return self._client

    # --- SessionStore ------------------------------------------------------------------
    def get(self, session_id: str) -> SessionRecord | None:
        """The live record with this key, or None.

        Raises:
            StoreError: the stored hash is malformed (names the key).
            StoreUnavailableError: the server cannot be reached or timed out.
        """
        check_key(session_id)
        key = self.prefix + _SESSION + session_id
        client = self.client
        with _translated(key):
            fields = client.hgetall(key)
        if not fields:
            return None
        record = _record(_as_text_map(fields, key), key)
        if record.session_id != session_id:
            raise StoreError(f"{key!r}: holds session {record.session_id!r}")
        return record if is_live(record.expires_at, self._clock()) else None

    def by_connection(self, connection_id: str) -> SessionRecord | None:
        """The live record on this connection (the latest written), or None."""
        check_key(connection_id, "connection_id")
        return self._by_pointer(_CONNECTION, connection_id, "connection_id")

    def by_call_sid(self, call_sid: str) -> SessionRecord | None:
        """The live record of this Twilio call (the latest written), or None."""
        check_key(call_sid, "call_sid")
        return self._by_pointer(_CALL, call_sid, "call_sid")

    def put(self, record: SessionRecord) -> SessionRecord:
        """Compare-and-set ``record`` and its pointers in one Lua script.

        Returns:
            The stored record (version + 1, ``expires_at`` stamped if it was 0).

        Raises:
            VersionConflictError: the live version is not ``record.version``.
            StoreUnavailableError: the server cannot be reached or timed out (the write
                may or may not have happened: re-read before retrying).
            StoreError: ``data`` is not JSON-serialisable, or the stored hash is malformed.
        """
        check_record(record)
        data = encode_data(record.data, record.session_id)
        key = self.prefix + _SESSION + record.session_id
        now = self._clock()
        stored = record.evolve(
            version=record.version + 1, expires_at=stamp(record, now, self._ttl_s)
        )
        args = (
            str(record.version),
            repr(float(now)),
            str(stored.expires_at),
            record.session_id,
            record.connection_id,
            record.call_sid or "",
            str(record.turn),
            data,
            self.prefix,
            str(MAX_CLOCK_SKEW_S),
        )
        done, version = _pair(self._run(_PUT_SCRIPT, key, args), key)
        if not done:
            raise VersionConflictError(record.session_id, record.version, version)
        # Return what a read would: data decoded from what was stored, not the caller's dict.
        return stored.evolve(data=decode_data(data, record.session_id))

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """Remove the live record and the pointers that still name it.

        Returns:
            True if a live record was deleted; False if there was none (whatever
            ``expected_version`` says: a record already gone is what the caller wanted).

        Raises:
            VersionConflictError: a live record exists and its version differs.
            StoreUnavailableError: the server cannot be reached or timed out.
        """
        check_key(session_id)
        if expected_version is not None and (
            not isinstance(expected_version, int) or isinstance(expected_version, bool)
        ):
            raise ConfigurationError(f"expected_version must be an int, got {expected_version!r}")
        key = self.prefix + _SESSION + session_id
        expected = "" if expected_version is None else str(expected_version)
        args = (expected, repr(float(self._clock())), session_id, self.prefix)
        outcome, actual = _pair(self._run(_DELETE_SCRIPT, key, args), key)
        if outcome < 0:
            assert expected_version is not None
            raise VersionConflictError(session_id, expected_version, actual)
        return outcome == 1

    # --- housekeeping ------------------------------------------------------------------
    def close(self) -> None:
        """Close the client the store built (a client passed in is left to its owner)."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None and self._owns_client:
            client.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------
    def _by_pointer(self, kind: str, value: str, attribute: str) -> SessionRecord | None:
        pointer = self.prefix + kind + value
        reply = self._run(_POINTER_SCRIPT, pointer, (self.prefix + _SESSION,))
        if not reply:  # no pointer, or a pointer to a record already gone
            return None
        if not isinstance(reply, list) or len(reply) % 2:
            raise StoreError(f"{pointer!r}: unexpected reply {reply!r}")
        fields = _as_text_map(dict(zip(reply[::2], reply[1::2], strict=True)), pointer)
        record = _record(fields, pointer)
        # A pointer may name a record that has since moved to another connection or call.
        if getattr(record, attribute) != value:
            return None
        return record if is_live(record.expires_at, self._clock()) else None

    def _run(self, script: _Script, key: str, args: Sequence[str]) -> Any:
        """EVALSHA, falling back once to EVAL when the server lacks the script."""
        client = self.client
        with _translated(key):
            from redis.exceptions import NoScriptError

            try:
                return client.evalsha(script.sha, 1, key, *args)
            except NoScriptError:
                return client.eval(script.text, 1, key, *args)


def _build_client(url: str, socket_timeout_s: float) -> Any:
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:
        raise MissingExtraError("redis", "redis") from exc
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),  # never re-send a compare-and-set (module docstring)
        )
    except ValueError as exc:  # an unparsable URL
        raise ConfigurationError(f"bad Redis URL: {exc}") from exc


@contextmanager
def _translated(key: str) -> Iterator[None]:
    """redis-py's exceptions as warmline's, at the boundary."""
    from redis import exceptions as rx

    try:
        yield
    except rx.AuthenticationError as exc:  # a ConnectionError, but retrying cannot help
        raise StoreError(f"Redis refused the credentials: {exc}") from exc
    except (rx.ConnectionError, rx.TimeoutError) as exc:
        raise StoreUnavailableError(f"Redis unreachable or timed out: {exc}") from exc
    except rx.ResponseError as exc:
        text = str(exc)
        if _ERROR_TAG in text:
            raise StoreError(f"malformed session data: {text}") from exc
        raise StoreError(f"Redis failed on {key!r}: {text}") from exc
    except rx.RedisError as exc:
        raise StoreError(f"Redis failed on {key!r}: {exc}") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate in data: UTF-8 cannot carry it
        raise StoreError(f"{key!r}: data cannot be encoded as UTF-8: {exc}") from exc


def _text(value: object, key: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError(f"{key!r}: stored value is not UTF-8") from exc
    if isinstance(value, str):
        return value
    raise StoreError(f"{key!r}: unexpected stored value {value!r}")


def _as_text_map(fields: Mapping[Any, Any], key: str) -> dict[str, str]:
    return {_text(name, key): _text(value, key) for name, value in fields.items()}


def _record(fields: Mapping[str, str], key: str) -> SessionRecord:
    """A stored hash as a record, checking every field (another writer may put anything)."""
    try:
        session_id = fields["session_id"]
        record = SessionRecord(
            session_id=session_id,
            connection_id=fields.get("connection_id", ""),
            call_sid=fields.get("call_sid") or None,
            version=int(fields["version"]),
            expires_at=int(fields["expires_at"]),
            turn=int(fields["turn"]),
            data=decode_data(fields["data"], session_id),
        )
    except (KeyError, ValueError) as exc:
        raise StoreError(f"malformed session hash {key!r}: {exc!r}") from exc
    if min(record.version, record.expires_at, record.turn) < 0 or not session_id:
        raise StoreError(f"malformed session hash {key!r}: negative or empty field")
    return record


def _pair(reply: Any, key: str) -> tuple[int, int]:
    """A script's ``{status, version}`` reply."""
    if isinstance(reply, list) and len(reply) == 2 and all(type(v) is int for v in reply):
        return reply[0], reply[1]
    raise StoreError(f"{key!r}: unexpected script reply {reply!r}")
