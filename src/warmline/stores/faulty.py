"""A store wrapper that fails or stalls on command: store outages on a laptop.

``warmline dev`` injects ``store.fail`` / ``store.stall`` (:mod:`warmline.dev.faults`) per
invocation: the emulator decides, sends the decision with the invocation, the runtime's
bootstrap calls :func:`set_active` before the handler and :func:`set_active(None)` after,
and every App whose environment has ``WARMLINE_DEV_FAULTS`` set wraps its store in a
:class:`FaultyStore` (see ``App.store``). The wrapper raises exactly what the real stores
raise when their backend is gone (:class:`StoreUnavailableError`), so the App's handling
of an outage is the code under test, not a mock of it. Tests can also drive it directly::

    store = FaultyStore(SQLiteStore(path))
    store.down = {"put"}         # writes raise StoreUnavailableError ("get": reads, "*": all)
    store.stall_s = 0.5          # every operation waits first

Outside those switches the wrapper only forwards, so production never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from warmline.errors import StoreUnavailableError

if TYPE_CHECKING:
    from warmline.core.session import SessionRecord
    from warmline.types import SessionStore

__all__ = ["ENV_SWITCH", "FaultyStore", "active", "set_active"]

#: Set in an environment's variables by ``warmline dev``: wrap the App's store.
ENV_SWITCH = "WARMLINE_DEV_FAULTS"

_active: dict[str, Any] = {}


def set_active(faults: Mapping[str, Any] | None) -> None:
    """The store faults of the running invocation (``{"fail": true, "stall_ms": 200}``)."""
    _active.clear()
    if faults:
        _active.update(faults)


def active() -> Mapping[str, Any]:
    """The store faults in force now."""
    return _active


class FaultyStore:
    """Forwards to ``inner`` unless told to fail or stall (here or by :func:`set_active`).

    Args:
        inner: the real store.
        sleep: how to wait out a stall (tests may pass a fake).
    """

    def __init__(self, inner: SessionStore, *, sleep: Any = time.sleep) -> None:
        self.inner = inner
        #: operations that fail: ``"get"`` (every read), ``"put"``, ``"delete"``, ``"*"``.
        self.down: set[str] = set()
        self.stall_s = 0.0
        #: operations refused so far.
        self.failures = 0
        self._sleep = sleep

    def _gate(self, op: str, kind: str) -> None:
        stall = self.stall_s or float(_active.get("stall_ms", 0.0)) / 1000.0
        if stall > 0:
            self._sleep(stall)
        down = self.down
        if _active.get("fail") or kind in down or "*" in down:
            self.failures += 1
            raise StoreUnavailableError(f"injected fault: store unavailable during {op}")

    def get(self, session_id: str) -> SessionRecord | None:
        """As the inner store, unless failing."""
        self._gate("get", "get")
        return self.inner.get(session_id)

    def by_connection(self, connection_id: str) -> SessionRecord | None:
        """As the inner store, unless failing."""
        self._gate("by_connection", "get")
        return self.inner.by_connection(connection_id)

    def by_call_sid(self, call_sid: str) -> SessionRecord | None:
        """As the inner store, unless failing."""
        self._gate("by_call_sid", "get")
        return self.inner.by_call_sid(call_sid)

    def put(self, record: SessionRecord) -> SessionRecord:
        """As the inner store, unless failing (then nothing is written)."""
        self._gate("put", "put")
        return self.inner.put(record)

    def delete(self, session_id: str, *, expected_version: int | None = None) -> bool:
        """As the inner store, unless failing (then nothing is deleted)."""
        self._gate("delete", "delete")
        return self.inner.delete(session_id, expected_version=expected_version)

    def __getattr__(self, name: str) -> Any:
        # close(), path, table ... whatever else the real store offers.
        return getattr(self.inner, name)
