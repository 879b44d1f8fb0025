"""``warmline call``: a caller that behaves like Twilio ConversationRelay.

It does what Twilio does for an incoming call, in order, with one CallSid and AccountSid
from start to end (:class:`~warmline.tools.twilio_side.CallIdentity`):

1. requests the incoming-call webhook (the complete form, signed: docs/protocols.md §1.5,
   §1.8) and reads ``<Connect><ConversationRelay>`` from the TwiML (or takes ``--ws URL``);
2. runs a session on the WebSocket (:mod:`warmline.tools.relay_caller`): ``setup``, the
   greeting, then the script's prompts, key presses and barge-ins, judging every frame the
   app sends as Twilio does;
3. when the session ends (the app's ``end``, the caller hanging up, or the socket
   failing), requests the ``<Connect action>`` URL (resolved against the TwiML's URL, with
   its ``method``) with ``SessionStatus``, the measured ``SessionDuration``,
   ``HandoffData`` or ``ErrorCode``;
4. follows the TwiML the action returns: another ``<Connect><ConversationRelay>``
   connects the call again (a new socket, a new session, the same CallSid) and the script
   goes on there; anything else (``<Say>``, ``<Dial>``, ``<Hangup>``) ends the simulation.

The script language is :mod:`warmline.tools.call_script`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from warmline.errors import MissingExtraError, RemoteProtocolError
from warmline.tools.call_script import Script, Step, parse_script, typed_steps
from warmline.tools.relay_caller import CallOptions, RelaySession, new_session_id
from warmline.tools.twilio_side import (
    CallIdentity,
    RelayTwiml,
    read_twiml,
    request_webhook,
)
from warmline.twilio.signature import compute_signature

__all__ = [
    "CallIdentity",
    "CallOptions",
    "CallResult",
    "SessionInfo",
    "Step",
    "Turn",
    "fetch_relay",
    "fetch_twiml",
    "parse_script",
    "place_call",
    "run_call",
    "typed_steps",
]

#: Sessions one call may run before the simulator stops following ``action`` reconnects.
MAX_SESSIONS = 5


@dataclass
class Turn:
    """What happened after one prompt (or key press)."""

    prompt: str
    tokens: list[str] = field(default_factory=list)
    first_token_ms: float | None = None
    last_token_ms: float | None = None
    interrupted: bool = False
    #: the answer ended with ``last: true`` (a partial answer is not an answer).
    complete: bool = False
    #: every valid frame of the answer, in order (``text``, ``play``, ``sendDigits``...).
    frames: list[dict[str, Any]] = field(default_factory=list)
    #: the prompt reached the app (a key press with ``dtmfDetection`` off does not).
    sent: bool = False
    #: the language the prompt was transcribed in.
    lang: str | None = None
    #: why the turn went unlike the script said (not sent, barge-in ignored).
    note: str | None = None
    #: which session of the call it belongs to (0, then 1 after a reconnect...).
    session: int = 0
    # bookkeeping while the answer arrives
    t0: float = 0.0
    cycle_open: bool = False
    cycle_tokens: list[str] = field(default_factory=list)

    @property
    def answer(self) -> str:
        return "".join(self.tokens)

    @property
    def answered(self) -> bool:
        """A complete answer reached the caller: a talk cycle ended with ``last: true``, or
        the app answered with frames other than ``text`` only (``play``, ``sendDigits``)."""
        if self.complete:
            return True
        kinds = {frame.get("type") for frame in self.frames}
        return bool(kinds) and not kinds & {"text", "end"}

    @property
    def apologised(self) -> bool:
        """The turn ended with the App's spoken store apology (:data:`STORE_APOLOGY`): the
        caller heard words, but not an answer, and is asked to say it again."""
        from warmline.core.app import STORE_APOLOGY

        return self.complete and bool(self.tokens) and self.tokens[-1] == STORE_APOLOGY

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "answer": self.answer,
            "frames": self.frames,
            "firstTokenMs": self.first_token_ms,
            "lastTokenMs": self.last_token_ms,
            "interrupted": self.interrupted,
            "complete": self.complete,
            "answered": self.answered,
            "apologised": self.apologised,
            "sent": self.sent,
            "lang": self.lang,
            "note": self.note,
            "session": self.session,
        }


@dataclass
class SessionInfo:
    """One WebSocket session of the call and what its ``action`` request answered."""

    session_id: str
    ws_url: str
    #: ``ended`` / ``completed`` / ``failed``, or ``rejected`` (the upgrade was refused).
    status: str = ""
    duration_s: float = 0.0
    close: str | None = None
    handoff_data: str | None = None
    error: tuple[str, str] | None = None
    action_url: str | None = None
    action_status: int | None = None
    action_twiml: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "wsUrl": self.ws_url,
            "status": self.status,
            "durationS": round(self.duration_s, 3),
            "close": self.close,
            "handoffData": self.handoff_data,
            "errorCode": self.error[0] if self.error else None,
            "actionUrl": self.action_url,
            "actionStatus": self.action_status,
            "actionTwiml": self.action_twiml,
        }


@dataclass
class CallResult:
    """The whole call: greeting, turns, every session and what ``action`` said."""

    ws_url: str
    greeting: str = ""
    turns: list[Turn] = field(default_factory=list)
    end: dict[str, Any] | None = None
    action_twiml: str | None = None
    rejected: int | None = None
    #: frames that came for an answer already complete or cut (``late``).
    other_frames: list[dict[str, Any]] = field(default_factory=list)
    #: the socket ended before the caller hung up: the server closed it (``"1006"``,
    #: ``"1011 reason"``) or Twilio did, after ten invalid frames (``"1007 ..."``).
    closed: str | None = None
    call_sid: str = ""
    account_sid: str = ""
    #: ``twiml`` (the ``welcomeGreeting``), ``app`` (frames after ``setup``) or None.
    greeting_source: str | None = None
    greeting_frames: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[SessionInfo] = field(default_factory=list)
    #: frames Twilio refused: ``{"frame": ..., "problem": ...}``.
    invalid: list[dict[str, Any]] = field(default_factory=list)
    #: ``error`` frames sent back for them.
    errors_sent: int = 0

    @property
    def reconnects(self) -> int:
        """Sessions after the first: the ``action`` connected the call again."""
        return max(0, len([s for s in self.sessions if s.status != "rejected"]) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "wsUrl": self.ws_url,
            "callSid": self.call_sid,
            "accountSid": self.account_sid,
            "greeting": self.greeting,
            "greetingSource": self.greeting_source,
            "greetingFrames": self.greeting_frames,
            "turns": [t.to_dict() for t in self.turns],
            "end": self.end,
            "actionTwiml": self.action_twiml,
            "rejected": self.rejected,
            "closed": self.closed,
            "invalidFrames": self.invalid,
            "errorsSent": self.errors_sent,
            "reconnects": self.reconnects,
            "sessions": [s.to_dict() for s in self.sessions],
        }


def fetch_relay(
    twiml_url: str, call: CallIdentity, auth_token: str | None, method: str = "POST"
) -> RelayTwiml:
    """Request the incoming-call webhook as Twilio does; the relay its TwiML connects to.

    Raises:
        RemoteProtocolError: the webhook did not answer 200 with ConversationRelay TwiML.
    """
    return _relay_from(twiml_url, call.incoming_form(), auth_token, method)


def fetch_twiml(
    twiml_url: str, call: dict[str, str], auth_token: str | None
) -> tuple[str, dict[str, str], str | None]:
    """POST the incoming-call webhook with the parameters ``call``; return (relay url,
    custom parameters, action url resolved against ``twiml_url``).

    Raises:
        RemoteProtocolError: the webhook did not answer 200 with ConversationRelay TwiML.
    """
    relay = _relay_from(twiml_url, call, auth_token, "POST")
    return relay.url, relay.parameters, relay.action


def _relay_from(url: str, form: dict[str, str], auth_token: str | None, method: str) -> RelayTwiml:
    status, body = request_webhook(url, form, auth_token, method)
    if status != 200:
        raise RemoteProtocolError(f"TwiML webhook answered HTTP {status}")
    answer = read_twiml(body, url)
    if answer.relay is None:
        raise RemoteProtocolError("TwiML has no <Connect><ConversationRelay url=...>")
    return answer.relay


async def place_call(
    twiml_url: str,
    steps: list[Step] | AsyncIterator[Step],
    *,
    call: CallIdentity | None = None,
    method: str = "POST",
    options: CallOptions | None = None,
    connect_url: str | None = None,
) -> CallResult:
    """A whole call as Twilio places it: the webhook, then :func:`run_call` on its TwiML.

    Raises:
        RemoteProtocolError: the webhook did not answer with ConversationRelay TwiML.
    """
    call = call or CallIdentity()
    options = options or CallOptions()
    relay = await asyncio.to_thread(fetch_relay, twiml_url, call, options.auth_token, method)
    return await _run(relay, steps, call, options, connect_url)


async def run_call(
    ws_url: str,
    steps: list[Step] | AsyncIterator[Step],
    *,
    auth_token: str | None = None,
    custom_parameters: dict[str, str] | None = None,
    action_url: str | None = None,
    caller: str = "+15550100",
    callee: str = "+15550101",
    turn_timeout_s: float = 30.0,
    on_token: Callable[[str], None] | None = None,
    connect_url: str | None = None,
    on_prompt: Callable[[str], None] | None = None,
    before_step: Callable[[Step], Awaitable[None]] | None = None,
    call: CallIdentity | None = None,
    relay: RelayTwiml | None = None,
    options: CallOptions | None = None,
) -> CallResult:
    """Run one scripted call against ``ws_url`` and return what happened.

    Args:
        ws_url: the ConversationRelay URL as in the TwiML (signatures are over it).
        steps: what the caller does.
        auth_token: signs the handshake and the action request; None signs nothing.
        custom_parameters: the TwiML's ``<Parameter>``s (``setup.customParameters``).
        action_url: the ``<Connect action>`` URL (POSTed).
        connect_url: where to actually connect when it differs from ``ws_url`` (a
            local ``ws://`` emulator standing in for a public ``wss://`` URL).
        before_step: awaited before each step (a test waits here for the backend to
            catch up, as a real caller takes time to say the next sentence).
        call: the call's SIDs and numbers (the same as the webhook's); new ones if None.
        relay: the whole ``<ConversationRelay>`` (attributes the session honours); when
            given, ``ws_url``, ``custom_parameters`` and ``action_url`` are taken from it.
        options: the caller's behaviour; when given, the loose arguments above
            (``auth_token``, ``turn_timeout_s``, callbacks) are ignored.
    """
    if relay is None:
        relay = RelayTwiml.for_socket(ws_url)
        relay.parameters = dict(custom_parameters or {})
        relay.action = action_url
    options = options or CallOptions(
        auth_token=auth_token,
        turn_timeout_s=turn_timeout_s,
        on_token=on_token,
        on_prompt=on_prompt,
        before_step=before_step,
    )
    call = call or CallIdentity(caller, callee)
    return await _run(relay, steps, call, options, connect_url)


async def _run(
    relay: RelayTwiml,
    steps: list[Step] | AsyncIterator[Step],
    call: CallIdentity,
    options: CallOptions,
    connect_url: str | None,
) -> CallResult:
    """Sessions one after the other while ``action`` connects the call again."""
    result = CallResult(relay.url, call_sid=call.call_sid, account_sid=call.account_sid)
    script = Script(steps)
    first_url = relay.url
    while True:
        target = connect_url if connect_url and relay.url == first_url else relay.url
        info = await _session(relay, target, call, script, result, options)
        result.sessions.append(info)
        if info.status == "rejected" or relay.action is None:
            return result
        form = call.action_form(
            info.session_id,
            info.status,
            info.duration_s,
            handoff_data=info.handoff_data,
            error=info.error,
        )
        info.action_url = relay.action
        info.action_status, body = await asyncio.to_thread(
            request_webhook, relay.action, form, options.auth_token, relay.method
        )
        info.action_twiml = result.action_twiml = body
        if info.status == "completed" or info.action_status != 200:
            return result  # the caller hung up: nothing follows the action
        answer = read_twiml(body, relay.action)
        if answer.relay is None or len(result.sessions) >= MAX_SESSIONS:
            return result
        relay = answer.relay


async def _session(
    relay: RelayTwiml,
    target: str,
    call: CallIdentity,
    script: Script,
    result: CallResult,
    options: CallOptions,
) -> SessionInfo:
    """Open the socket (signed over the TwiML ``url``) and run one session on it."""
    try:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus
    except ImportError as exc:
        raise MissingExtraError("websockets", "dev") from exc

    info = SessionInfo(new_session_id(), relay.url)
    headers = {}
    if options.auth_token:
        headers["X-Twilio-Signature"] = compute_signature(relay.url, {}, options.auth_token)
    try:
        ws = await connect(
            target,
            additional_headers=headers,
            user_agent_header="Jetty/11.0.24",  # what Twilio's client sends (§1.1)
            compression=None,
        )
    except InvalidStatus as exc:
        result.rejected = exc.response.status_code
        info.status = "rejected"
        return info
    session = RelaySession(relay, call, result, info, options, reconnected=bool(result.sessions))
    await session.run(ws, script)
    return info
