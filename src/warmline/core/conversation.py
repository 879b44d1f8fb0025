"""A WebSocket message through the App: parse, route, session bookkeeping, emit.

Rules of this module:

1. A frame that cannot be parsed is logged and answered 400; it never raises out of
   the App and never writes to the store. A message over 128 KB is answered 413.
2. Session bookkeeping happens whether or not the app handles that message type itself:
   ``setup`` creates the session; a final ``prompt`` or an ``interrupt`` bumps the turn,
   so work still streaming for an older turn sees the bump and stops (turn fencing).
3. What a handler returns or yields is sent: a ``str`` (in the relay protocol a final
   ``text`` token), a message, a dict, or an iterable / async iterable of them, after
   which an open talk cycle is closed with ``last: true``. A send that finds the caller
   gone stops the stream.
4. A store failure during a message is told to the caller (:data:`STORE_APOLOGY`) and
   answered 503: nothing is half-written, since each write is one compare-and-set.
5. A session is bound to its call: a ``setup`` whose ``sessionId`` is already stored for
   another connection or another ``callSid`` is refused (logged ``setup_refused``,
   answered 409, no handler runs, nothing is written); the same ``setup`` again on its own
   connection is a redelivery and keeps the stored record. The setup fields kept on the
   record are bounded (:data:`MAX_SETUP_BYTES`; over it, ``customParameters`` is dropped
   and ``setupTrimmed`` set).
6. A call moved between servers (:mod:`warmline.core.reconnect`): a ``setup`` naming a
   marked session of its own ``callSid`` resumes it (logged ``session_resumed``) and then
   answers the prompts the previous server deferred; a final ``prompt`` or ``dtmf`` on a
   marked session is deferred for the next server (``prompt_deferred``), not answered.
7. A ``prompt`` or ``interrupt`` that finds no session (its ``setup`` is not stored yet,
   or the record expired) is answered without one and logged ``no_session``: what its
   handler writes to the session is dropped, and the log says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from warmline.core import reconnect
from warmline.core.context import Context
from warmline.core.events import Message
from warmline.core.http import Response
from warmline.core.limits import MAX_MESSAGE_BYTES
from warmline.core.routing import DEFAULT
from warmline.core.session import SessionRecord
from warmline.errors import (
    ConfigurationError,
    FrameTooLargeError,
    MalformedFrameError,
    StoreError,
    VersionConflictError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.app import App
    from warmline.core.context import Invocation

__all__ = ["STORE_APOLOGY", "handle_message"]

#: Said when the session store fails during a message (the caller may say it again).
STORE_APOLOGY = "Sorry, I'm having trouble on my side right now. Please say that again."
#: Largest setup (the frame's fields but ``type``) kept on the session, in bytes of JSON:
#: the record must stay well inside DynamoDB's 400 KB item (docs/protocols.md §7).
MAX_SETUP_BYTES = 32 * 1024


class _SetupRefused(Exception):
    """A ``setup`` that names another call's session (rule 5)."""


class _Deferred(Exception):
    """A prompt kept for the server that resumes the call (rule 6)."""


def handle_message(app: App, event: Message, inv: Invocation) -> Response:
    """One WebSocket message, by the rules above."""
    ctx: Context[Any] = Context(app, event, inv)
    body = event.body
    if len(body) * 4 > MAX_MESSAGE_BYTES and len(body.encode()) > MAX_MESSAGE_BYTES:
        ctx.log("rejected", "warning", error="message over 128 KB", bytes=len(body.encode()))
        return Response(413)
    if app.protocol == "relay":
        try:
            _parse(app, ctx, body)
        except (MalformedFrameError, FrameTooLargeError) as exc:
            ctx.log("malformed_frame", "warning", error=str(exc))
            return Response(400)
    ctx.route = _route_for(app, event, ctx)
    try:
        _before_relay(ctx)
    except _SetupRefused as exc:
        ctx.log("setup_refused", "warning", error=str(exc))
        return Response(409)
    except _Deferred:
        ctx.log("prompt_deferred", "warning", reason="the call is moving to another server")
        return Response(200)
    except StoreError as exc:
        return _store_failed(app, ctx, exc)
    try:
        handler = app.routes.get(ctx.route)
        if handler is None:
            ctx.log("no_route", "warning", selected=ctx.route)
            return Response(404)
        response = _emit(app, ctx, app.call(handler, ctx))
        deferred = _deferred_prompts(ctx)
    except StoreError as exc:
        return _store_failed(app, ctx, exc)
    measured = {"cold": inv.cold, "durationMs": ctx.elapsed_ms(), "sends": ctx.sends}
    ctx.log("message", **{**measured, **_call_age(ctx, event), **ctx.fields})
    if deferred:
        import json
    for number, prompt in enumerate(deferred):
        # Answered as the messages they were, on this connection (rule 6).
        body = json.dumps(prompt, ensure_ascii=False, separators=(",", ":"))
        again = Message(event.connection, body, message_id=f"{event.message_id}-deferred{number}")
        handle_message(app, again, inv)
    return response


def _call_age(ctx: Context[Any], event: Message) -> dict[str, int]:
    """``sinceConnectMs`` on a ``setup``: how long after the connection API Gateway took
    the frame (``requestTimeEpoch - connectedAt``), the caller's connect -> setup wait."""
    conn = event.connection
    if ctx.route != "setup" or not conn.connected_at_ms or not conn.request_time_ms:
        return {}
    return {"sinceConnectMs": max(0, conn.request_time_ms - conn.connected_at_ms)}


def _parse(app: App, ctx: Context[Any], body: str) -> None:
    """The relay message, through the first channel that recognises the frame."""
    from warmline.core.relay import parse_inbound

    for channel in app.channels:
        translated = channel.inbound(body)
        if translated is not None:
            ctx.channel, body = channel, translated
            ctx.fields["channel"] = channel.name
            break
    ctx.message = parse_inbound(body)


def _store_failed(app: App, ctx: Context[Any], exc: StoreError) -> Response:
    """The store failed during a message: tell the caller, log it, answer 503 (rule 4).

    The caller hears :data:`STORE_APOLOGY` through the message's channel (so a browser
    gets it as chat) and may say it again once the store is back; silence would be
    worse. Async work does not come here: it raises, so the platform's retries and
    dead-letter queue have it.
    """
    ctx.log("store_unavailable", "error", error=repr(exc), cold=ctx.invocation.cold)
    if app.protocol == "relay":
        from warmline.core.relay import Text

        try:
            if not ctx.send(Text(token=STORE_APOLOGY, last=True)):
                ctx.log("apology_failed", "error", error="the caller is gone (410)")
        except Exception as post_exc:  # the apology is best effort
            ctx.log("apology_failed", "error", error=repr(post_exc))
    return Response(503)


def _route_for(app: App, event: Message, ctx: Context[Any]) -> str:
    if event.route_key not in ("", DEFAULT) and event.route_key in app.routes:
        return event.route_key
    msg = ctx.message
    if msg is not None and app.selector.expression == "$request.body.type":
        kind = getattr(msg, "type", "")
        return kind if kind in app.routes and not kind.startswith("$") else DEFAULT
    return app.selector.select(event.body, app.routes)


def _before_relay(ctx: Context[Any]) -> None:
    """Session bookkeeping the relay protocol needs before the handler runs (rules 2, 6, 7)."""
    msg = ctx.message
    kind = type(msg).__name__
    if kind == "Setup":
        _create_session(ctx)
        return
    final_prompt = kind == "Prompt" and getattr(msg, "last", True)
    if kind == "Dtmf" or final_prompt:
        record = ctx.session
        if reconnect.is_marked(record) and record is not None:
            if reconnect.defer(ctx.store, record, msg.raw):
                raise _Deferred
    if kind == "Interrupt" or final_prompt:
        if ctx.update_session(lambda r: r.evolve(turn=r.turn + 1)) is None:
            ctx.log(
                "no_session", "warning",
                error="no session for this call (setup not stored yet, or expired): "
                "answered without one, its session writes are dropped",
            )  # fmt: skip


def _deferred_prompts(ctx: Context[Any]) -> list[dict[str, Any]]:
    """The prompts a resumed session still has to answer, taken off the record (rule 6)."""
    record = ctx.session if type(ctx.message).__name__ == "Setup" else None
    if record is None or not record.data.get("deferred"):
        return []
    return reconnect.take_deferred(ctx.store, record)


def _create_session(ctx: Context[Any]) -> None:
    """Create the call's session from its ``setup``, bound to this connection and call."""
    msg = ctx.message
    conn = ctx.connection
    assert conn is not None
    resume = reconnect.resume_target(msg.raw)
    if resume and msg.call_sid:
        adopted = reconnect.adopt(
            ctx.store, resume, call_sid=msg.call_sid, connection_id=conn.connection_id,
            setup=_setup_data(msg.raw),
        )  # fmt: skip
        if adopted is not None:
            ctx.set_session(adopted)
            ctx.log("session_resumed", relaySessionId=msg.session_id or None)
            return
        ctx.log("resume_refused", "warning", error=f"no session {resume!r} to resume: a new one")
    record = SessionRecord(
        session_id=msg.session_id or conn.connection_id,
        connection_id=conn.connection_id,
        call_sid=msg.call_sid or None,
        data=_setup_data(msg.raw),
    )
    try:
        ctx.set_session(ctx.store.put(record))
        return
    except VersionConflictError:
        stored = ctx.store.get(record.session_id)
    if stored is not None and (
        stored.connection_id != record.connection_id or stored.call_sid != record.call_sid
    ):
        raise _SetupRefused(
            f"sessionId {record.session_id!r} belongs to another connection or call"
        )
    # A duplicate setup (redelivery) on the session's own connection: keep the record.
    ctx.set_session(stored)


def _setup_data(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The setup fields kept on the record, bounded (rule 5)."""
    import json

    setup = {k: v for k, v in raw.items() if k != "type"}
    size = len(json.dumps(setup, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size <= MAX_SETUP_BYTES:
        return {"setup": setup}
    kept = {
        k: v
        for k, v in setup.items()
        if k != "customParameters" and (not isinstance(v, str) or len(v) <= 1024)
    }
    return {"setup": kept, "setupTrimmed": True}


def _emit(app: App, ctx: Context[Any], result: Any) -> Response:
    """Send what a message handler returned or yielded (rule 3)."""
    if result is None:
        return Response(200)
    if isinstance(result, Response):
        return result
    if hasattr(result, "__aiter__"):
        app.run(_drain_async(ctx, result))
    elif isinstance(result, str) and app.protocol == "relay":
        from warmline.core.relay import Text

        ctx.send(Text(token=result, last=True))
    elif isinstance(result, str | bytes | Mapping) or hasattr(result, "to_json"):
        ctx.send(result)
    elif isinstance(result, Iterable):
        for item in result:
            if not ctx.send(item):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                break
        ctx.end_stream()
    else:
        raise ConfigurationError(f"a route handler returned a {type(result).__name__}")
    return Response(200)


async def _drain_async(ctx: Context[Any], stream: Any) -> None:
    async for item in stream:
        if not ctx.send(item):
            await stream.aclose()
            break
    ctx.end_stream()
