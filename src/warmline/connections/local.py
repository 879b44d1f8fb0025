"""An in-process ``@connections`` stand-in for tests and single-process servers.

It keeps the rules that matter to an app: a post to an unknown or closed connection raises
:class:`ConnectionGoneError` (API Gateway's 410), a body over ``MAX_POST_BYTES`` raises
:class:`PayloadTooLargeError` (413), ``delete`` closes the connection, and ``get`` answers
ISO 8601 timestamps as ``GetConnection`` does (docs/protocols.md §2.4). What was posted is kept
per connection, in order, also after the connection closed, so a test can read what the
caller heard before hanging up::

    conns = LocalConnections()
    conns.open("c1")
    app = App(store=MemoryStore(), connections=lambda ref: conns)
    ...
    assert conns.sent_json("c1")[-1]["type"] == "text"

Standard library only, and only modules a fresh interpreter already has.
"""

from __future__ import annotations

import os
import time
from _thread import allocate_lock  # threading.Lock without importing threading
from binascii import b2a_base64
from collections.abc import Callable
from typing import Any

from warmline.core.limits import MAX_POST_BYTES
from warmline.errors import ConnectionGoneError, ConnectionsError, PayloadTooLargeError
from warmline.types import ConnectionInfo

__all__ = ["LocalConnections"]


class _Conn:
    __slots__ = ("connected_at", "last_active_at", "source_ip", "user_agent", "open", "posts")

    def __init__(self, now: float, source_ip: str, user_agent: str) -> None:
        self.connected_at = now
        self.last_active_at = now
        self.source_ip = source_ip
        self.user_agent = user_agent
        self.open = True
        self.posts: list[bytes] = []


class LocalConnections:
    """A :class:`~warmline.types.ConnectionClient` that delivers to memory.

    Thread-safe: an offload worker may post from another thread while a test reads.

    Args:
        clock: wall-clock epoch seconds, for ``connectedAt`` / ``lastActiveAt``.
    """

    __slots__ = ("_clock", "_conns", "_log", "_failures", "_lock")

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._conns: dict[str, _Conn] = {}
        self._log: list[tuple[str, bytes]] = []
        self._failures: list[ConnectionsError] = []
        self._lock = allocate_lock()

    # --- what a test or a local gateway does ---------------------------------------------
    def open(
        self,
        connection_id: str | None = None,
        *,
        source_ip: str = "127.0.0.1",
        user_agent: str = "",
    ) -> str:
        """Register a live connection (the ``$connect`` succeeded).

        Args:
            connection_id: the id; default a new one in API Gateway's format.
            source_ip: what ``get`` reports as ``identity.sourceIp``.
            user_agent: what ``get`` reports as ``identity.userAgent``.

        Returns:
            The connection id.
        """
        cid = connection_id if connection_id is not None else _new_id()
        with self._lock:
            self._conns[cid] = _Conn(self._clock(), source_ip, user_agent)
        return cid

    def close(self, connection_id: str) -> None:
        """Mark the connection closed (the caller hung up); its posts are kept."""
        with self._lock:
            conn = self._conns.get(connection_id)
            if conn is not None:
                conn.open = False

    def is_open(self, connection_id: str) -> bool:
        """True while posts to ``connection_id`` would be delivered."""
        with self._lock:
            conn = self._conns.get(connection_id)
            return conn is not None and conn.open

    def fail_next(self, error: ConnectionsError) -> None:
        """Make the next ``post``/``get``/``delete`` raise ``error`` (queued, first in first out).

        For testing how an app copes with throttling or a forbidden role.
        """
        with self._lock:
            self._failures.append(error)

    def sent(self, connection_id: str) -> list[bytes]:
        """Everything posted to ``connection_id``, oldest first."""
        with self._lock:
            conn = self._conns.get(connection_id)
            return list(conn.posts) if conn is not None else []

    def sent_text(self, connection_id: str) -> list[str]:
        """:meth:`sent`, decoded as UTF-8."""
        return [data.decode("utf-8") for data in self.sent(connection_id)]

    def sent_json(self, connection_id: str) -> list[Any]:
        """:meth:`sent`, each parsed as JSON."""
        import json

        return [json.loads(data) for data in self.sent(connection_id)]

    @property
    def posts(self) -> list[tuple[str, bytes]]:
        """Every delivered post as ``(connection_id, data)``, across connections, in order."""
        with self._lock:
            return list(self._log)

    # --- the ConnectionClient protocol ---------------------------------------------------
    def post(self, connection_id: str, data: bytes | str) -> None:
        """Deliver one message.

        Raises:
            ConnectionGoneError: unknown or closed connection (410).
            PayloadTooLargeError: over ``MAX_POST_BYTES`` (413); nothing is delivered.
        """
        body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self._lock:
            self._raise_injected()
            if len(body) > MAX_POST_BYTES:
                raise PayloadTooLargeError(
                    f"{len(body)} bytes is over the {MAX_POST_BYTES}-byte PostToConnection limit",
                    status=413,
                )
            conn = self._live(connection_id)
            conn.posts.append(body)
            conn.last_active_at = self._clock()
            self._log.append((connection_id, body))

    def get(self, connection_id: str) -> ConnectionInfo:
        """Connection metadata with ISO 8601 UTC timestamps, e.g. ``2026-01-01T12:00:00.000Z``.

        Raises:
            ConnectionGoneError: unknown or closed connection (410).
        """
        with self._lock:
            self._raise_injected()
            conn = self._live(connection_id)
            return ConnectionInfo(
                connected_at=_iso(conn.connected_at),
                last_active_at=_iso(conn.last_active_at),
                source_ip=conn.source_ip,
                user_agent=conn.user_agent,
            )

    def delete(self, connection_id: str) -> None:
        """Close the connection as ``DeleteConnection`` does.

        Raises:
            ConnectionGoneError: unknown or already closed (410).
        """
        with self._lock:
            self._raise_injected()
            self._live(connection_id).open = False

    def __repr__(self) -> str:
        with self._lock:
            live = sum(1 for conn in self._conns.values() if conn.open)
            return f"LocalConnections(open={live}, posts={len(self._log)})"

    # --- internals -----------------------------------------------------------------------
    def _live(self, connection_id: str) -> _Conn:
        conn = self._conns.get(connection_id)
        if conn is None or not conn.open:
            raise ConnectionGoneError(f"connection {connection_id!r} is gone", status=410)
        return conn

    def _raise_injected(self) -> None:
        if self._failures:
            raise self._failures.pop(0)


def _iso(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds, as API Gateway's ``connectedAt`` strings."""
    whole, millis = divmod(round(epoch_s * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _new_id() -> str:
    """An id shaped like API Gateway's: base64 of 10 random bytes, e.g. ``R1kmxc2VNjMCFIA=``."""
    return b2a_base64(os.urandom(10), newline=False).decode("ascii")
