"""Session stores: where a call's state lives between messages.

Every backend implements :class:`warmline.types.SessionStore` with the same meaning
(compare-and-set on ``version``, TTL, expired records invisible), checked by one
conformance suite:

- :class:`~warmline.stores.memory.MemoryStore`: a dict, for tests and one process.
- :class:`~warmline.stores.sqlite.SQLiteStore`: one file, the embedded default; safe
  across processes (WAL, ``BEGIN IMMEDIATE``).
- :class:`~warmline.stores.dynamodb.DynamoDBStore`: one table (``warmline[aws]``).
- :class:`~warmline.stores.redis.RedisStore`: one Redis server, compare-and-set in Lua
  (``warmline[redis]``).

Shared rules and :func:`~warmline.stores.base.update` (the read / change /
compare-and-set / retry loop) are in :mod:`warmline.stores.base`.

Names are resolved on first use (PEP 562): importing this package loads no backend,
and a backend's heavy client (boto3, redis) loads only when that store is used.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "MemoryStore": "warmline.stores.memory",
    "SQLiteStore": "warmline.stores.sqlite",
    "DynamoDBStore": "warmline.stores.dynamodb",
    "RedisStore": "warmline.stores.redis",
    "update": "warmline.stores.base",
}

__all__ = ["DynamoDBStore", "MemoryStore", "RedisStore", "SQLiteStore", "update"]

if TYPE_CHECKING:
    from warmline.stores.base import update
    from warmline.stores.dynamodb import DynamoDBStore
    from warmline.stores.memory import MemoryStore
    from warmline.stores.redis import RedisStore
    from warmline.stores.sqlite import SQLiteStore


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
