"""The voice webhooks: the TwiML endpoint Twilio calls for an incoming call, and the
``<Connect action>`` callback it calls when the relay session ends.

::

    app = App(twilio_auth_token=..., public_url="wss://abc.execute-api.../prod")
    mount_voice(app, RelaySettings(url="wss://abc.execute-api.../prod", welcome_greeting=...),
                public_base_url="https://xyz.lambda-url.us-east-1.on.aws",
                handoff_number="+15550123")

Both webhooks check ``X-Twilio-Signature`` over the public URL Twilio requested plus the
form parameters (docs/protocols.md §1.5) and fail closed as ``$connect`` does
(:func:`warmline.core.http.verify_twilio`): a bad signature, or no token while the App does
not allow unsigned traffic, gets 403 and changes nothing; a token source that cannot be
read gets 500. The action callback records ``SessionStatus``,
``SessionDuration``, ``HandoffData`` and ``ErrorCode`` on the call's session (§1.7) and
answers with the next TwiML:

- **connect the call again** (:mod:`warmline.core.reconnect`) when the server let go of it:
  its ``end`` asked for a reconnect (a draining ``warmline serve``), or Twilio reports
  the socket dropped while the call is still up (``SessionStatus=failed``,
  ``CallStatus=in-progress``: the server died). The new ``<Connect><ConversationRelay>``
  goes to ``reconnect_url`` (default: the incoming call's relay URL, which a load balancer
  sends to a healthy instance) and names the session to resume in a ``<Parameter>``; at
  most :data:`~warmline.core.reconnect.MAX_RECONNECTS` times per call;
- dial a human when the app ended with a handoff;
- else hang up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from warmline.core import reconnect as moves
from warmline.core.app import App, Context, Response
from warmline.core.events import HttpRequest
from warmline.core.http import verify_twilio
from warmline.errors import VersionConflictError
from warmline.twilio.twiml import RelaySettings, connect_relay, dial, hangup

__all__ = ["ACTION_FIELDS", "mount_voice"]

#: Fields of the ``<Connect action>`` request that are kept on the session (§1.7).
ACTION_FIELDS = (
    "SessionStatus",
    "SessionDuration",
    "HandoffData",
    "ErrorCode",
    "ErrorMessage",
    "CallStatus",
)

SettingsSource = RelaySettings | Callable[[HttpRequest], RelaySettings]


def _public_url(request: HttpRequest, base: str | None) -> str:
    if not base:
        return request.url
    query = request.url.partition("?")[2]
    return base.rstrip("/") + request.path + (f"?{query}" if query else "")


def _refused(ctx: Context, request: HttpRequest, base: str | None) -> Response | None:
    """None for a request signed by Twilio (or unsigned where the App allows it), else the
    refusal, logged by :func:`verify_twilio`."""

    def check(token: str) -> None:
        from warmline.twilio.signature import validate_webhook

        form = request.form() if request.method == "POST" else {}
        validate_webhook(
            _public_url(request, base), form, request.headers, token, body=request.body
        )

    refused = verify_twilio(ctx.app, ctx, check)
    if refused is None:
        return None
    text = "invalid signature" if refused.status_code == 403 else "signature check unavailable"
    return Response(refused.status_code, {"Content-Type": "text/plain"}, text)


def _handoff_wanted(handoff_data: str) -> bool:
    if not handoff_data:
        return False
    try:
        data: Any = json.loads(handoff_data)
    except ValueError:
        return True  # an opaque, non-JSON handoff string still asks for a transfer
    return not isinstance(data, dict) or data.get("reason", "handoff") != "end"


def mount_voice(
    app: App,
    settings: SettingsSource,
    *,
    twiml_path: str = "/twiml",
    action_path: str = "/cr-action",
    public_base_url: str | None = None,
    handoff_number: str | None = None,
    handoff_message: str = "Connecting you to a person now.",
    on_incoming: Callable[[Context, dict[str, str]], Any] | None = None,
    reconnect: bool = True,
    reconnect_url: str | None = None,
) -> None:
    """Register the TwiML and action webhooks on ``app``.

    Args:
        app: the App (its ``twilio_auth_token`` is the key; without one the webhooks
            are refused unless the App has ``allow_unsigned``).
        settings: the ``<ConversationRelay>`` settings, or a function of the request.
        twiml_path: path of the incoming-call webhook.
        action_path: path of the ``<Connect action>`` callback.
        public_base_url: ``https://host`` as Twilio reaches it (behind proxies the
            request's own Host may differ; signatures cover the public URL).
        handoff_number: where a handoff is dialed; without it the call hangs up.
        handoff_message: said before dialing.
        on_incoming: called for each verified incoming call (e.g. to pre-warm the
            WebSocket functions before Twilio connects).
        reconnect: connect a call again when its server let go of it (drain or crash).
        reconnect_url: the ``wss://`` URL such a call connects to (default: the relay URL
            of ``settings``): another instance, a load balancer, or the Lambda stack.
    """

    def incoming(ctx: Context) -> Response | str:
        request = ctx.event
        assert isinstance(request, HttpRequest)
        refused = _refused(ctx, request, public_base_url)
        if refused is not None:
            return refused
        form = request.form() if request.method == "POST" else dict(request.query)
        ctx.annotate(callSid=form.get("CallSid"), direction=form.get("Direction"))
        if on_incoming is not None:
            on_incoming(ctx, form)
        relay = settings(request) if callable(settings) else settings
        action = (public_base_url or request.url.split(request.path, 1)[0]) + action_path
        return connect_relay(relay, action=action, method="POST")

    def action(ctx: Context) -> Response | str:
        request = ctx.event
        assert isinstance(request, HttpRequest)
        refused = _refused(ctx, request, public_base_url)
        if refused is not None:
            return refused
        form = request.form() if request.method == "POST" else dict(request.query)
        ended = {k: form[k] for k in ACTION_FIELDS if k in form}
        ctx.annotate(
            callSid=form.get("CallSid"),
            sessionId=form.get("SessionId"),
            sessionStatus=form.get("SessionStatus"),
            errorCode=form.get("ErrorCode"),
        )
        _record_end(ctx, form.get("SessionId", ""), form.get("CallSid", ""), ended)
        if reconnect and _reconnect_wanted(form):
            again = _reconnect(ctx, form)
            if again is not None:
                relay = settings(request) if callable(settings) else settings
                resumed = relay.replace(
                    url=reconnect_url or relay.url,
                    parameters={**relay.parameters, moves.RESUME_PARAMETER: again},
                )
                url = (public_base_url or request.url.split(request.path, 1)[0]) + action_path
                return connect_relay(resumed, action=url, method="POST")
        if handoff_number and _handoff_wanted(form.get("HandoffData", "")):
            return dial(handoff_number, say=handoff_message)
        return hangup()

    app.http(twiml_path, ("POST", "GET"))(incoming)
    app.http(action_path, ("POST", "GET"))(action)


def _reconnect_wanted(form: dict[str, str]) -> bool:
    """The server let go of a call that is still up: a reconnect ``end``, or a drop."""
    if moves.is_reconnect(form.get("HandoffData", "")):
        return True
    return form.get("SessionStatus") == "failed" and form.get("CallStatus") == "in-progress"


def _reconnect(ctx: Context, form: dict[str, str]) -> str | None:
    """Mark the call's session for a move; its id, or None when it cannot move."""
    call_sid = form.get("CallSid", "")
    record = ctx.store.by_call_sid(call_sid) if call_sid else None
    if record is None:
        ctx.log("reconnect_refused", "warning", error="no session for this call")
        return None
    if not moves.is_marked(record) and moves.moves(record) >= moves.MAX_RECONNECTS:
        ctx.log("reconnect_refused", "warning", error=f"{moves.MAX_RECONNECTS} moves already")
        return None
    trigger = form.get("SessionStatus") or "ended"
    marked = moves.mark(ctx.store, record, trigger)
    if marked is None:
        return None
    ctx.annotate(reconnect=marked.session_id, moves=moves.moves(marked))
    return marked.session_id


def _record_end(ctx: Context, session_id: str, call_sid: str, ended: dict[str, str]) -> None:
    """Keep the end of the relay session on its record (compare-and-set, retried)."""
    store = ctx.store
    for _ in range(8):
        record = (store.get(session_id) if session_id else None) or (
            store.by_call_sid(call_sid) if call_sid else None
        )
        if record is None:
            ctx.log("action_without_session", "warning", sessionId=session_id or None)
            return
        try:
            store.put(record.evolve(data={**record.data, "end": ended}))
            return
        except VersionConflictError:
            continue
