"""The open calls of ``warmline serve``: the setup gate and moving calls off a draining server.

**Setup gate.** API Gateway invokes one Lambda per message, and so does
:class:`~warmline.adapters.asgi.AsgiApp`: a ``prompt`` sent right behind its ``setup`` could
run before the ``setup`` has stored the session and be answered without it. So a call's
later messages wait until its first one is handled or has sent something (the session is
created before the ``setup`` handler runs, so a greeting streaming means it exists), at
most ``setup_wait_s``; past that they go on and the App logs ``no_session``.
(``interrupt`` frames during a long greeting are not held: the greeting's first frame
opens the gate.)

**Moving a call** (:func:`move_call`, docs/reliability.md): ConversationRelay never
reconnects on its own, but the ``<Connect action>`` answer can connect the call again
(docs/protocols.md §1.7). A draining server therefore gives each relay call a while to
end by itself, then, at a moment no message of the call is being handled:

1. marks the call's session for a move (:func:`warmline.core.reconnect.mark`), holding
   back any message that arrives meanwhile so none is answered half-way;
2. sends ``end`` with ``handoffData`` ``{"reason": "reconnect", ...}``.

Twilio closes the socket and calls the action URL; the action callback answers with a
``<Connect>`` to a healthy server, whose ``setup`` resumes the session from the shared
store. Prompts that still reach this server after the mark are kept for that server
(the App defers them). A call busy until the end of its window is moved anyway
(``forced``: the answer in progress is cut). Calls without a Twilio session (a browser
chat, a raw-protocol socket) are left to end or be closed as before.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from warmline.core import reconnect

if TYPE_CHECKING:
    from warmline.core.app import App
    from warmline.core.events import ConnectionRef

__all__ = ["DEFAULT_HANDOFF_GRACE_S", "DEFAULT_SETUP_WAIT_S", "OpenCall", "end_for_move"]

#: Longest a message waits for its call's first message (the ``setup``) to be handled.
DEFAULT_SETUP_WAIT_S = 5.0
#: Time kept at the end of a drain for moving calls: ``end``, Twilio's close, its action
#: request and the new connection (about 1 s in Twilio's observed timing, §1.7).
DEFAULT_HANDOFF_GRACE_S = 5.0


class OpenCall:
    """One accepted WebSocket: its messages in flight, its gates.

    Attributes:
        ref: the connection.
        inflight: its messages being handled.
        idle: set while no message of the call is being handled.
        settled: set once the first message was handled or the call was sent a frame.
        moving: None, or (while the call is being marked for a move) an event set once
            the mark is stored; messages wait for it, so the App defers them.
    """

    __slots__ = ("ref", "inflight", "idle", "settled", "moving", "_first")

    def __init__(self, ref: ConnectionRef) -> None:
        self.ref = ref
        self.inflight: set[asyncio.Task[Any]] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        self.settled = asyncio.Event()
        self.moving: asyncio.Event | None = None
        self._first = True

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count ``task`` (one message) until it is done; the first one settles the call."""
        first, self._first = self._first, False
        self.inflight.add(task)
        self.idle.clear()

        def done(finished: asyncio.Task[Any]) -> None:
            self.inflight.discard(finished)
            if not self.inflight:
                self.idle.set()
            if first:
                self.settled.set()

        task.add_done_callback(done)

    async def gate(self, setup_wait_s: float) -> bool:
        """Wait before handing the next message to the App (see the module docstring).

        Returns:
            False when the setup wait ran out (the message goes on without it).
        """
        ok = True
        if not self.settled.is_set():
            try:
                await asyncio.wait_for(self.settled.wait(), setup_wait_s)
            except TimeoutError:
                self.settled.set()  # waited once; the rest of the call does not wait again
                ok = False
        if self.moving is not None:
            await self.moving.wait()
        return ok

    async def until_idle(self, timeout_s: float) -> bool:
        """Wait until no message is being handled, at most ``timeout_s``; True if idle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.idle.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.idle.wait(), left)
            except TimeoutError:
                return False
        return True


def end_for_move(app: App, connection_id: str, trigger: str) -> bytes | str | None:
    """Mark the call's session for a move and return the ``end`` frame to send.

    Runs in a worker thread (store I/O).

    Returns:
        The encoded ``end``, or None when the connection carries no Twilio call (no
        session, or no ``callSid``): it is not moved.
    """
    from warmline.core.relay import End

    store = app.store
    record = store.by_connection(connection_id)
    if record is None or not record.call_sid:
        return None
    marked = reconnect.mark(store, record, trigger)
    if marked is None:
        return None
    return app.encode(End(handoff_data=reconnect.handoff_data(trigger, marked.session_id)))
