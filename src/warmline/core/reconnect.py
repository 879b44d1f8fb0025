"""Calls that move between servers: end a relay session on one, resume it on another.

ConversationRelay never reconnects on its own (docs/protocols.md §1.1), but the TwiML
returned from the ``<Connect action>`` callback may connect the same call again: same
``callSid``, a new ``sessionId`` (§1.7). A server that must let go of a call (a deploy
drains it, or it died) uses that:

1. **Mark**: the call's session record gets ``data["reconnect"]`` (:func:`mark`, one
   compare-and-set). Whoever lets go marks it: the draining server before it sends ``end``
   with :func:`handoff_data` (``{"reason": "reconnect", ...}``), or the action callback
   when Twilio reports the socket dropped (``SessionStatus=failed``).
2. **Connect again**: the action callback answers with a ``<Connect><ConversationRelay>``
   whose ``<Parameter>`` :data:`RESUME_PARAMETER` names the marked session; Twilio hands it
   back in the new session's ``setup.customParameters``.
3. **Resume**: that ``setup`` adopts the marked record instead of creating a new one
   (:func:`adopt`): the record moves to the new connection, keeps its turn and its data
   (the conversation), and loses the mark. Only a record of the same ``callSid`` that
   is marked can be adopted, so a forged parameter cannot take another call's session.

Prompts that reach the old server after the mark (the caller spoke while ``end`` was on
its way) are not answered there, where nobody would hear the answer: they are kept on the
mark (:func:`defer`, at most :data:`MAX_DEFERRED`) and answered after the resumed
``setup`` (:func:`take_deferred`).

Pure functions over the SessionStore port: no clock, no sockets.
"""

from __future__ import annotations

from warmline.core.session import SessionRecord, compare_and_set

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from warmline.core.ports import SessionStore

__all__ = [
    "DATA_KEY",
    "HANDOFF_REASON",
    "MAX_DEFERRED",
    "MAX_RECONNECTS",
    "RESUME_PARAMETER",
    "adopt",
    "defer",
    "handoff_data",
    "is_marked",
    "is_reconnect",
    "mark",
    "moves",
    "resume_target",
    "take_deferred",
]

#: Where the pending move lives in ``SessionRecord.data``.
DATA_KEY = "reconnect"
#: ``handoffData.reason`` of an ``end`` that asks the action callback to connect again.
HANDOFF_REASON = "reconnect"
#: The ``<Parameter>`` (so ``setup.customParameters`` key) naming the session to resume.
RESUME_PARAMETER = "warmlineResume"
#: Moves one call may make; past it the action callback stops connecting it again (a
#: server that fails every call would otherwise bounce it forever).
MAX_RECONNECTS = 10
#: Prompts kept for the next server while a move is pending.
MAX_DEFERRED = 8
#: Where the count of moves lives in ``SessionRecord.data``.
_COUNT_KEY = "reconnects"


def handoff_data(trigger: str, session_id: str) -> str:
    """The ``end`` frame's ``handoffData`` asking for a reconnect (an opaque string to
    Twilio, returned as ``HandoffData``, §1.3)."""
    import json

    return json.dumps(
        {"reason": HANDOFF_REASON, "trigger": trigger, "session": session_id},
        separators=(",", ":"),
    )


def is_reconnect(handoff: str) -> bool:
    """True when a ``HandoffData`` string is one :func:`handoff_data` made."""
    if not handoff.startswith("{"):
        return False
    import json

    try:
        data: Any = json.loads(handoff)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("reason") == HANDOFF_REASON


def is_marked(record: SessionRecord | None) -> bool:
    """True while ``record`` waits to be resumed elsewhere."""
    return record is not None and isinstance(record.data.get(DATA_KEY), dict)


def moves(record: SessionRecord) -> int:
    """How many times this call was marked for a move."""
    count = record.data.get(_COUNT_KEY, 0)
    return count if isinstance(count, int) else 0


def mark(store: SessionStore, record: SessionRecord, trigger: str) -> SessionRecord | None:
    """Mark the call's session for a move (idempotent: an existing mark is kept).

    Returns:
        The marked record, or None when the record is gone.
    """

    def change(r: SessionRecord) -> SessionRecord:
        if is_marked(r):
            return r
        data = {**r.data, DATA_KEY: {"trigger": trigger, "deferred": []}}
        data[_COUNT_KEY] = moves(r) + 1
        return r.evolve(data=data)

    return compare_and_set(store, record.session_id, change, current=record)


def defer(store: SessionStore, record: SessionRecord, prompt: Mapping[str, Any]) -> bool:
    """Keep a prompt that arrived after the mark for the server that resumes the call.

    Returns:
        True when it was kept; False when the record is no longer marked or already
        holds :data:`MAX_DEFERRED` prompts.
    """
    kept: list[bool] = []

    def change(r: SessionRecord) -> SessionRecord:
        kept.clear()
        pending = r.data.get(DATA_KEY)
        if not isinstance(pending, dict):
            return r
        deferred = list(pending.get("deferred") or [])
        if len(deferred) >= MAX_DEFERRED:
            return r
        kept.append(True)
        moved = {**pending, "deferred": [*deferred, dict(prompt)]}
        return r.evolve(data={**r.data, DATA_KEY: moved})

    compare_and_set(store, record.session_id, change, current=record)
    return bool(kept)


def resume_target(setup_raw: Mapping[str, Any]) -> str:
    """The session id a ``setup`` asks to resume ("" for a new call)."""
    params = setup_raw.get("customParameters")
    value = params.get(RESUME_PARAMETER) if isinstance(params, dict) else None
    return value if isinstance(value, str) else ""


def adopt(
    store: SessionStore,
    session_id: str,
    *,
    call_sid: str,
    connection_id: str,
    setup: Mapping[str, Any],
) -> SessionRecord | None:
    """Move the marked session ``session_id`` to ``connection_id`` (a resumed ``setup``).

    The record keeps its key, turn and data; ``setup`` replaces the stored setup fields,
    the mark is dropped, and its deferred prompts move to ``data["deferred"]`` for
    :func:`take_deferred`. A redelivered ``setup`` on the connection that already adopted
    the record gets it back unchanged.

    Returns:
        The adopted record, or None when there is nothing to adopt: no live record, a
        record of another call, or one that is not marked.
    """

    def change(r: SessionRecord) -> SessionRecord:
        if r.call_sid != call_sid or not is_marked(r):
            return r
        pending = r.data[DATA_KEY]
        data = {k: v for k, v in r.data.items() if k != DATA_KEY}
        data.update(setup)
        deferred = pending.get("deferred") or []
        if deferred:
            data["deferred"] = deferred
        return r.evolve(connection_id=connection_id, data=data)

    record = store.get(session_id)
    if record is None or record.call_sid != call_sid:
        return None
    if record.connection_id == connection_id and not is_marked(record):
        return record  # a redelivered setup on the connection that adopted it
    stored = compare_and_set(store, session_id, change, current=record)
    if stored is None or stored.connection_id != connection_id:
        return None
    return stored


def take_deferred(store: SessionStore, record: SessionRecord) -> list[dict[str, Any]]:
    """Remove and return the prompts a resumed session still has to answer."""
    taken: list[dict[str, Any]] = []

    def change(r: SessionRecord) -> SessionRecord:
        taken.clear()
        deferred = r.data.get("deferred")
        if not isinstance(deferred, list) or not deferred:
            return r
        taken.extend(p for p in deferred if isinstance(p, dict))
        return r.evolve(data={k: v for k, v in r.data.items() if k != "deferred"})

    if not record.data.get("deferred"):
        return []
    compare_and_set(store, record.session_id, change, current=record)
    return taken
