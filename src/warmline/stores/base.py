"""What every session store shares: validation, JSON, TTL arithmetic and the retry loop.

The stores differ only in where bytes live. The rules that make them interchangeable are
here, once, so the conformance suite (``tests/stores/conformance.py``) tests one meaning:

- A record's ``data`` is stored as JSON text. Every store encodes it on write and decodes
  it on read, even the in-memory one, so a caller can never mutate a stored record through
  a shared dict and a value that would not survive DynamoDB or Redis fails in tests too.
- Expiry is ``expires_at`` in epoch **seconds** (DynamoDB's TTL unit, docs/protocols.md §7).
  A put of a record with ``expires_at == 0`` stamps ``now + ttl_s``; otherwise the
  caller's expiry is kept, so updating a session does not extend its life.
- An expired record is absent: never returned, creatable again with ``version == 0``,
  and a write expecting its old version conflicts with ``actual == 0``.
- :func:`update` is the one correct way to change a record: read, apply, compare-and-set,
  and on :class:`~warmline.errors.VersionConflictError` re-read and re-apply.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from warmline.core.ports import SessionStore
from warmline.core.session import (
    DEFAULT_TTL_S,
    DEFAULT_UPDATE_ATTEMPTS,
    SessionRecord,
    compare_and_set,
)
from warmline.errors import ConfigurationError, StoreError

__all__ = [
    "DEFAULT_TTL_S",
    "DEFAULT_UPDATE_ATTEMPTS",
    "Clock",
    "check_key",
    "check_record",
    "check_ttl",
    "decode_data",
    "encode_data",
    "is_live",
    "stamp",
    "update",
]

#: Wall-clock seconds since the epoch; stores take one so tests can move time.
Clock = Callable[[], float]


def check_key(value: object, what: str = "session_id") -> str:
    """Validate a lookup key: a non-empty ``str``.

    Raises:
        ConfigurationError: ``value`` is not a non-empty string (a bug in the caller).
    """
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty str, got {value!r}")
    return value


def _check_count(value: object, what: str) -> None:
    # bool is an int subclass; True as a version is a bug, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigurationError(f"{what} must be an int >= 0, got {value!r}")


def check_record(record: object) -> SessionRecord:
    """Validate a record before it is written.

    Returns:
        ``record``, typed.

    Raises:
        ConfigurationError: a field has the wrong type or range (a bug in the caller).
    """
    if not isinstance(record, SessionRecord):
        raise ConfigurationError(f"expected a SessionRecord, got {type(record).__name__}")
    check_key(record.session_id)
    if not isinstance(record.connection_id, str):
        raise ConfigurationError(f"connection_id must be a str, got {record.connection_id!r}")
    if record.call_sid is not None:
        check_key(record.call_sid, "call_sid")
    _check_count(record.version, "version")
    _check_count(record.expires_at, "expires_at")
    _check_count(record.turn, "turn")
    if not isinstance(record.data, dict):
        raise ConfigurationError(f"data must be a dict, got {type(record.data).__name__}")
    return record


def check_ttl(ttl_s: object) -> int:
    """Validate a store's default lifetime: whole seconds, > 0 (DynamoDB TTL is in seconds).

    Raises:
        ConfigurationError: not a positive int.
    """
    if not isinstance(ttl_s, int) or isinstance(ttl_s, bool) or ttl_s <= 0:
        raise ConfigurationError(f"ttl_s must be an int > 0 (seconds), got {ttl_s!r}")
    return ttl_s


def stamp(record: SessionRecord, now: float, ttl_s: int) -> int:
    """The ``expires_at`` to store for ``record`` written at ``now``.

    The caller's expiry is kept; an unset one (0) becomes ``now + ttl_s`` rounded up, so a
    record never expires before its full lifetime has passed.
    """
    return record.expires_at if record.expires_at else math.ceil(now + ttl_s)


def is_live(expires_at: int, now: float) -> bool:
    """True while a stored record with this ``expires_at`` exists at ``now``.

    Same rule as :meth:`SessionRecord.is_expired`, on the raw column, for the stores that
    filter before building a record.
    """
    return expires_at == 0 or now < expires_at


#: A code point of the surrogate range: in a str only as a lone surrogate.
_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_data(data: dict[str, Any], key: str = "?") -> str:
    """``data`` as compact JSON text (UTF-8 kept as is, no NaN/Infinity: not JSON).

    Lone surrogates (text no UTF-8 encoder accepts) are written as JSON ``\\uXXXX``
    escapes, so the text is valid UTF-8 and reads back as the same strings; the one
    normalisation is JSON's own: a high surrogate followed by a low one reads back as
    the character the pair encodes.

    Raises:
        StoreError: ``data`` holds something JSON cannot represent.
    """
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"session {key!r}: data is not JSON-serialisable: {exc}") from exc
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate cannot be UTF-8 (SQLite, DynamoDB, Redis all refuse it);
            # as a JSON escape it can, and json.loads reads it back unchanged.
            text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def decode_data(text: str | bytes, key: str = "?") -> dict[str, Any]:
    """Stored JSON text back to ``data``.

    Raises:
        StoreError: the stored value is not a JSON object (a corrupted or foreign row);
            the message names the session so an operator can find it.
    """
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise StoreError(f"session {key!r}: stored data is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"session {key!r}: stored data is not a JSON object")
    return value


def update(
    store: SessionStore,
    session_id: str,
    change: Callable[[SessionRecord], SessionRecord],
    *,
    attempts: int = DEFAULT_UPDATE_ATTEMPTS,
    create: bool = False,
) -> SessionRecord:
    """Apply ``change`` to the live record with compare-and-set, re-reading on conflict.

    The retry loop is :func:`warmline.core.session.compare_and_set` (the one the App's
    ``Context.update_session`` uses too); this adds the key check and makes a missing
    record an error.

    ``change`` may run more than once (once per attempt), always on the freshest record,
    so it must be a pure function of its argument: ``lambda r: r.evolve(turn=r.turn + 1)``.

    Args:
        store: any SessionStore.
        session_id: the record to change.
        change: returns the new record; it must keep ``session_id`` and ``version``
            (the store bumps the version). Returning the record unchanged writes nothing.
        attempts: how many compare-and-sets to try before giving up.
        create: when no live record exists, apply ``change`` to a fresh
            ``SessionRecord(session_id)`` and create it; otherwise that is an error.

    Returns:
        The record as stored.

    Raises:
        VersionConflictError: still losing after ``attempts`` tries (the last conflict).
        StoreError: no live record and ``create`` is false.
        ConfigurationError: bad arguments, or ``change`` altered ``session_id``/``version``.
    """
    check_key(session_id)
    stored = compare_and_set(store, session_id, change, attempts=attempts, create=create)
    if stored is None:
        raise StoreError(f"no live session {session_id!r} to update")
    return stored
