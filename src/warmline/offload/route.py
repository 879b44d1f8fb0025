"""The router side of offload: a route that hands the turn to a worker and returns at once.

API Gateway cuts every WebSocket route integration at 29 s (docs/protocols.md §2.5) and the
caller then gets a frame Twilio counts as malformed (§2.6); an LLM answer can take longer.
``offload(app, dispatcher, worker=...)`` makes the ``prompt`` route build a
:class:`~warmline.offload.payload.TurnPayload` and queue it (Lambda async invoke, SNS,
SQS, or in-process) in milliseconds; the worker streams the answer back through
``@connections``.

Inline or offload is chosen per route, by argument or by the environment, so one build can
run either way (``WARMLINE_OFFLOAD_PROMPT=inline`` for the ``prompt`` route; the suffix is
the route key upper-cased, other characters as ``_``). Inline, the same answer function
streams from the route itself under the same coalescing, fencing, filler and a hard budget
that stops before the 29 s cut with a short apology.

Turn numbers: in the relay protocol the App has already bumped the session's ``turn`` for a
final prompt (that bump is the fence older work checks); partial prompts (``last: false``)
are ignored here. In the raw protocol, or before any ``setup``, this route bumps (or
creates) the session itself.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping

from warmline.core.events import Message
from warmline.errors import ConfigurationError, WarmlineError
from warmline.offload.payload import TurnPayload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.app import App, Context
    from warmline.core.session import SessionRecord
    from warmline.offload.worker import TurnWorker
    from warmline.types import Dispatcher

__all__ = ["MODE_ENV_PREFIX", "offload", "route_mode"]

#: ``WARMLINE_OFFLOAD_<ROUTE>`` = ``inline`` | ``offload`` chooses the mode per route.
MODE_ENV_PREFIX = "WARMLINE_OFFLOAD_"
_MODES = ("inline", "offload")
#: Said when the work could not be queued, so the caller is not left in silence.
DISPATCH_APOLOGY = "Sorry, I can't answer that right now. Please try again."


def route_mode(
    route: str, mode: str | None = None, *, default: str, environ: Mapping[str, str] | None = None
) -> str:
    """The mode of ``route``: ``mode`` if given, else ``WARMLINE_OFFLOAD_<ROUTE>``, else default.

    Raises:
        ConfigurationError: not ``inline`` or ``offload``.
    """
    env = os.environ if environ is None else environ
    name = MODE_ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", route.upper())
    chosen = (mode or env.get(name) or default).strip().lower()
    if chosen not in _MODES:
        raise ConfigurationError(f"{name}: mode must be 'inline' or 'offload', not {chosen!r}")
    return chosen


def offload(
    app: App,
    dispatcher: Dispatcher | None,
    *,
    route: str = "prompt",
    worker: TurnWorker | None = None,
    mode: str | None = None,
    install_worker: bool = True,
    relay_defaults: bool = True,
    wall: Callable[[], float] = time.time,
    environ: Mapping[str, str] | None = None,
) -> Callable[[Context], Any]:
    """Register ``route`` so it answers a final prompt by offload (or inline).

    Args:
        app: the App.
        dispatcher: where turns go in offload mode (None: inline only).
        route: the route key (``prompt`` with ``$request.body.type`` selection).
        worker: the TurnWorker with the answer function; required for inline mode, and
            installed as ``@app.worker`` when ``install_worker`` (the same function can be
            router and worker).
        mode: ``inline`` or ``offload``; default from the environment, else ``offload``
            when a dispatcher is given.
        install_worker: register ``worker`` as the App's worker handler.
        relay_defaults: in the relay protocol, register no-op ``setup`` and ``interrupt``
            routes where neither that route nor ``$default`` is registered yet, so those
            frames are answered rather than logged as ``no_route`` and refused with 404.
            The App creates the session on ``setup`` and bumps the turn on ``interrupt``
            before it looks up a route, so the turn fence moves either way. Register your
            own handlers for them before calling ``offload`` to keep them. Also registers a
            ``$disconnect`` handler (when none is registered) that marks the session over,
            which fences its work.
        wall: epoch seconds for ``createdAt``.
        environ: the environment to read the mode from.

    Returns:
        The route handler (already registered).

    Raises:
        ConfigurationError: offload without a dispatcher, or inline without a worker.
    """
    chosen = route_mode(
        route, mode, default="offload" if dispatcher is not None else "inline", environ=environ
    )
    if chosen == "offload" and dispatcher is None:
        raise ConfigurationError(f"route {route!r} is set to offload but has no dispatcher")
    if chosen == "inline" and worker is None:
        raise ConfigurationError(f"route {route!r} is inline: pass worker=TurnWorker(answer)")
    if worker is not None and install_worker:
        worker.install(app)

    def handler(ctx: Context) -> Any:
        turn = _turn_input(ctx)
        if turn is None:
            return None
        prompt, lang = turn
        conn = ctx.connection
        assert conn is not None  # a Message always has one
        session = _turn_session(ctx)
        payload = TurnPayload.for_turn(conn, session, prompt, lang, wall(), trace_extra())
        ctx.annotate(mode=chosen)
        if chosen == "inline":
            assert worker is not None
            return _inline(worker, ctx, payload)
        assert dispatcher is not None
        try:
            message_id = dispatcher.dispatch(payload.to_dict())
        except WarmlineError as exc:
            ctx.log("offload.dispatch_failed", "error", error=str(exc))
            ctx.send(_closing(ctx, DISPATCH_APOLOGY))
            return None
        ctx.annotate(messageId=message_id)
        return None

    app.route(route)(handler)
    if relay_defaults and app.protocol == "relay" and "$default" not in app.routes:
        for key in ("setup", "interrupt"):
            if key not in app.routes:
                app.route(key)(_bookkeeping_only)
    if relay_defaults and "$disconnect" not in app.routes:
        app.disconnect(_hung_up)
    return handler


def trace_extra(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The dispatching invocation's trace header as a payload field (``traceHeader``), so
    the worker's log lines and spans join the same trace (docs/observability.md, Tracing).
    Lambda sets ``_X_AMZN_TRACE_ID`` per invocation (docs/protocols.md §8.2)."""
    header = (os.environ if environ is None else environ).get("_X_AMZN_TRACE_ID", "")
    return {"traceHeader": header} if header else {}


def _hung_up(ctx: Context) -> None:
    """``$disconnect`` (best effort on AWS, §2.1): mark the session over, so a worker still
    streaming stops at its next fence check instead of at its next 410."""
    session = ctx.session
    if session is not None:
        from warmline.offload.worker import mark_over

        mark_over(ctx.app, session.session_id, "disconnect", time.time())


def _bookkeeping_only(ctx: Context) -> None:
    """The App did the work before calling this: created the session (``setup``) or
    bumped the turn (``interrupt``), which stops streams of the old turn."""
    return None


async def _inline(worker: TurnWorker, ctx: Context, payload: TurnPayload) -> None:
    await worker.inline(ctx, payload)


def _turn_input(ctx: Context) -> tuple[str, str] | None:
    """The prompt text and language, or None when this message starts no turn."""
    msg = ctx.message
    if ctx.app.protocol == "relay":
        if type(msg).__name__ != "Prompt" or not getattr(msg, "last", True):
            return None  # a partial prompt or another message type
        return str(getattr(msg, "voice_prompt", "")), str(getattr(msg, "lang", ""))
    event = ctx.event
    return (event.body, "") if isinstance(event, Message) else None


def _turn_session(ctx: Context) -> SessionRecord:
    """The session on the new turn: bumped by the App (relay), else bumped here."""
    session = ctx.session
    if ctx.app.protocol == "relay" and session is not None:
        return session
    from warmline.stores.base import update

    conn = ctx.connection
    assert conn is not None
    session_id = session.session_id if session is not None else conn.connection_id

    def bump(record: SessionRecord) -> SessionRecord:
        return record.evolve(
            connection_id=record.connection_id or conn.connection_id, turn=record.turn + 1
        )

    return update(ctx.store, session_id, bump, create=True)


def _closing(ctx: Context, text: str) -> Any:
    if ctx.app.protocol == "relay":
        from warmline.core.relay import Text

        return Text(token=text, last=True)
    return text
