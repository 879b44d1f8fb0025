"""Several ``warmline serve`` instances behind one load balancer: route posts through Redis.

A call's socket lives on one instance, but the work that answers it may run anywhere: an
offloaded turn, an HTTP callback, a message the balancer sent elsewhere after a reconnect.
Sessions are already shared through the store (Redis or DynamoDB); this module shares
*where each socket is*:

==================================  ==================================================
``<prefix>ws:<connection_id>``      string: the id of the instance holding the socket,
                                    a lease of :data:`CLAIM_TTL_S` (renewed while open)
``<prefix>inst:<instance_id>``      pub/sub channel of one instance: JSON
                                    ``{"op": "post"|"delete", "id": ..., "data": b64}``
==================================  ==================================================

A post for a socket held elsewhere reads the owner and ``PUBLISH``es to its channel; the
owner's subscriber thread puts the frame on the socket. Redis tells how many subscribers
got the message: 0 means the owner is gone (crashed, scaled in), so the post raises
:class:`ConnectionGoneError` (410) and the stale claim is removed, as API Gateway answers
410 for a connection that no longer exists (docs/protocols.md §2.4). Delivery is fire and
forget: a socket that closes between the lookup and the delivery loses the frame without
a 410 (API Gateway has the same race between a post and a hang-up).

Why a lease on the claim: an instance that dies without cleaning up (SIGKILL, a lost
host) never releases its claims. Each claim therefore lives :data:`CLAIM_TTL_S` (30 s) and
the holder's subscriber thread renews its open sockets' claims every third of that (a
heartbeat), so a dead instance's claims are gone within one lease. Its calls are not
stranded meanwhile either: a post to one finds no subscriber and gets 410 at once, and
Twilio's action callback connects the call again elsewhere
(:mod:`warmline.core.reconnect`). A live instance that loses Redis for longer than a
lease loses its claims too; the next renewal puts them back.

redis-py is imported on first use (``warmline[redis]``).
"""

from __future__ import annotations

import json
import os
import threading
from base64 import b64decode, b64encode
from binascii import b2a_hex
from typing import Any

from warmline.errors import ConnectionGoneError, ConnectionsError, MissingExtraError

__all__ = ["CLAIM_TTL_S", "REFRESH_SHARE", "REFRESH_S", "RedisRouter"]

#: Lease of a socket claim: how long a dead instance's claims outlive it.
CLAIM_TTL_S = 30.0
#: How often the claims of open sockets are renewed, as a share of the lease (three
#: heartbeats per lease: one lost renewal does not drop a live claim).
REFRESH_SHARE = 1 / 3
#: The renewal interval at the default lease.
REFRESH_S = CLAIM_TTL_S * REFRESH_SHARE
#: How long the subscriber waits for a message before checking whether to stop.
_POLL_S = 0.2
#: Pause after a Redis error before the subscriber tries again.
_RETRY_S = 0.5


class RedisRouter:
    """Forwards posts between instances over Redis pub/sub (see the module docstring).

    Args:
        url: ``redis://`` URL (default ``$WARMLINE_REDIS_URL``).
        prefix: namespace of the keys and channels (shared with the session store's).
        instance_id: this instance's id (default: random).
        claim_ttl_s: lease of a socket claim (renewed every third of it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "warmline:",
        instance_id: str | None = None,
        claim_ttl_s: float = CLAIM_TTL_S,
    ) -> None:
        url = url or os.environ.get("WARMLINE_REDIS_URL", "")
        if not url:
            from warmline.errors import ConfigurationError

            raise ConfigurationError("RedisRouter needs a URL (or set WARMLINE_REDIS_URL)")
        self.url = url
        self.prefix = prefix
        self.instance_id = instance_id or b2a_hex(os.urandom(8)).decode("ascii")
        self.channel = f"{prefix}inst:{self.instance_id}"
        if claim_ttl_s <= 0:
            raise ValueError(f"claim_ttl_s must be > 0, not {claim_ttl_s}")
        self.claim_ttl_ms = max(1, int(claim_ttl_s * 1000))
        self.refresh_s = claim_ttl_s * REFRESH_SHARE
        self._client: Any = None
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()
        #: callback ``(connection_id, op, data) -> bool`` that delivers locally.
        self.deliver: Any = None

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The redis-py client, built on first use."""
        if self._client is None:
            try:
                import redis
            except ImportError as exc:
                raise MissingExtraError("redis", "redis") from exc
            self._client = redis.Redis.from_url(self.url, socket_timeout=5.0)
        return self._client

    def bind(self, deliver: Any) -> None:
        """Set the local delivery callback (``SocketRegistry.deliver``)."""
        self.deliver = deliver

    def start(self, timeout_s: float = 10.0) -> None:
        """Subscribe to this instance's channel (a thread); returns once subscribed."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._listen, name="warmline-router", daemon=True)
        self._thread.start()
        if not self._subscribed.wait(timeout_s):
            raise ConnectionsError(f"could not subscribe to {self.channel} in {timeout_s} s")

    def close(self) -> None:
        """Stop the subscriber, drop this instance's claims, close the client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        with self._lock:
            held, self._held = list(self._held), set()
        if self._client is not None:
            try:
                for cid in held:
                    self._release(cid)
            except Exception:  # best effort: the TTL cleans up
                pass
            self._client.close()
            self._client = None

    # --- the Router protocol -------------------------------------------------------------
    def claim(self, connection_id: str) -> None:
        """Record that this instance holds ``connection_id``."""
        self.client.set(self._key(connection_id), self.instance_id, px=self.claim_ttl_ms)
        with self._lock:
            self._held.add(connection_id)

    def release(self, connection_id: str) -> None:
        """Forget ``connection_id`` (closed here), unless another instance claimed it since."""
        with self._lock:
            self._held.discard(connection_id)
        self._release(connection_id)

    def forward(self, connection_id: str, op: str, data: bytes) -> None:
        """Send ``op`` to the instance holding the socket.

        Raises:
            ConnectionGoneError: no instance holds it, or the holder is gone (410).
        """
        key = self._key(connection_id)
        owner = self.client.get(key)
        if owner is None:
            raise ConnectionGoneError(f"connection {connection_id!r} is gone", status=410)
        owner_id = owner.decode("ascii") if isinstance(owner, bytes) else str(owner)
        message = json.dumps(
            {"op": op, "id": connection_id, "data": b64encode(data).decode("ascii")}
        )
        if not self.client.publish(f"{self.prefix}inst:{owner_id}", message):
            # Nobody listens on the owner's channel: it is dead. Drop its stale claim.
            self._release(connection_id, owner_id)
            raise ConnectionGoneError(
                f"connection {connection_id!r} is gone (instance {owner_id} left)", status=410
            )

    # --- internals -----------------------------------------------------------------------
    def _key(self, connection_id: str) -> str:
        return f"{self.prefix}ws:{connection_id}"

    def _release(self, connection_id: str, owner: str | None = None) -> None:
        # Compare-and-delete in one step: never remove another instance's newer claim.
        script = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"
        self.client.eval(script, 1, self._key(connection_id), owner or self.instance_id)

    def _refresh(self) -> None:
        with self._lock:
            held = list(self._held)
        if held:
            pipe = self.client.pipeline(transaction=False)
            for cid in held:
                pipe.set(self._key(cid), self.instance_id, px=self.claim_ttl_ms)
            pipe.execute()

    def _listen(self) -> None:
        import time

        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            # Wait for the server's confirmation: from then on, publishes reach us.
            while not self._stop.is_set():
                reply = pubsub.get_message(timeout=_POLL_S)
                if reply is not None and reply.get("type") == "subscribe":
                    break
            self._subscribed.set()
            refreshed = time.monotonic()
            while not self._stop.is_set():
                try:
                    message = pubsub.get_message(timeout=_POLL_S)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message.get("data"))
                    if time.monotonic() - refreshed > self.refresh_s:
                        refreshed = time.monotonic()
                        self._refresh()
                except Exception:  # Redis away: keep trying until stopped
                    # redis-py re-subscribes the channel when it reconnects.
                    self._stop.wait(_RETRY_S)
        finally:
            pubsub.close()

    def _on_message(self, raw: Any) -> None:
        try:
            body = json.loads(raw)
            cid, op, data = str(body["id"]), str(body["op"]), b64decode(body["data"])
        except (ValueError, KeyError, TypeError):
            return  # not ours; ignore
        if self.deliver is not None:
            self.deliver(cid, op, data)
