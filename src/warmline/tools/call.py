"""``warmline call``: a caller that behaves like Twilio ConversationRelay.

It does what Twilio does for an incoming call, in order:

1. POSTs the incoming-call webhook (form-encoded, ``X-Twilio-Signature`` over the URL and
   the params, docs/protocols.md §1.5) and reads ``<Connect><ConversationRelay url>`` and its
   ``<Parameter>``s from the TwiML (or takes ``--ws URL`` directly);
2. opens the WebSocket with ``X-Twilio-Signature`` over the ``wss://`` URL and no params;
3. sends ``setup`` (docs/protocols.md §1.2), then each scripted step: ``prompt`` frames,
   ``dtmf``, ``interrupt`` (with what was heard so far, as a barge-in does);
4. prints the streamed ``text`` tokens as they arrive, with per-turn latency (prompt ->
   first token, prompt -> last token);
5. on ``end``, calls the ``<Connect action>`` URL with ``SessionStatus=ended`` and the
   ``HandoffData`` (§1.7) and shows the TwiML that comes back (hang up, or dial a human).

Script lines (``--script FILE`` or typed at the prompt)::

    Hello, what are your opening hours?      a final prompt
    dtmf: 1                                    a key press
    interrupt after 2                          barge in after 2 text frames of the answer
    wait: 0.5                                  pause
    hangup                                     close the socket (the caller hangs up)
    # a comment
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from warmline.errors import ConfigurationError, MissingExtraError, RemoteProtocolError
from warmline.twilio.signature import compute_signature

__all__ = [
    "CallResult",
    "Step",
    "Turn",
    "fetch_twiml",
    "parse_script",
    "run_call",
    "typed_steps",
]


@dataclass(frozen=True)
class Step:
    """One scripted action: ``say``, ``dtmf``, ``interrupt``, ``wait`` or ``hangup``."""

    kind: str
    value: str = ""
    after: int = 1


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

    @property
    def answer(self) -> str:
        return "".join(self.tokens)

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
            "frames": len(self.tokens),
            "firstTokenMs": self.first_token_ms,
            "lastTokenMs": self.last_token_ms,
            "interrupted": self.interrupted,
            "complete": self.complete,
            "apologised": self.apologised,
        }


@dataclass
class CallResult:
    """The whole call: greeting, turns, the end frame and what the action callback said."""

    ws_url: str
    greeting: str = ""
    turns: list[Turn] = field(default_factory=list)
    end: dict[str, Any] | None = None
    action_twiml: str | None = None
    rejected: int | None = None
    other_frames: list[dict[str, Any]] = field(default_factory=list)
    #: the server closed the socket before the caller hung up (``"1006"``, ``"1011 reason"``).
    closed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wsUrl": self.ws_url,
            "greeting": self.greeting,
            "turns": [t.to_dict() for t in self.turns],
            "end": self.end,
            "actionTwiml": self.action_twiml,
            "rejected": self.rejected,
            "closed": self.closed,
        }


def parse_script(lines: Iterable[str]) -> list[Step]:
    """Script lines -> steps (see the module docstring).

    Raises:
        ConfigurationError: a line that names an action with a bad value.
    """
    steps: list[Step] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, sep, rest = line.partition(":")
        key = head.strip().lower()
        if sep and key == "dtmf":
            digits = rest.strip()
            if not digits or any(d not in "0123456789*#" for d in digits):
                raise ConfigurationError(f"line {number}: dtmf takes digits 0-9 * #")
            steps.extend(Step("dtmf", d) for d in digits)
        elif sep and key == "wait":
            try:
                steps.append(Step("wait", str(float(rest))))
            except ValueError as exc:
                raise ConfigurationError(f"line {number}: wait takes seconds") from exc
        elif sep and key == "say":
            steps.append(Step("say", rest.strip()))
        elif line.lower().startswith("interrupt"):
            words = line.split()
            after = int(words[2]) if len(words) == 3 and words[1] == "after" else 1
            steps.append(Step("interrupt", after=max(1, after)))
        elif line.lower() == "hangup":
            steps.append(Step("hangup"))
        else:
            steps.append(Step("say", line))
    return steps


def _post_form(url: str, form: dict[str, str], auth_token: str | None) -> tuple[int, str]:
    """POST ``form`` to ``url`` as Twilio posts a webhook (signed when a token is given)."""
    from warmline.http1 import Http1Connection, client_tls, message, split_endpoint

    scheme, host, port, host_header, path = split_endpoint(url.split("?", 1)[0], "TwiML webhook")
    query = urlsplit(url).query
    headers = [
        ("Host", host_header),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Connection", "close"),
    ]
    if auth_token:
        headers.append(("X-Twilio-Signature", compute_signature(url, form, auth_token)))
    tls = client_tls(None) if scheme == "https" else None
    conn = Http1Connection(host, port, timeout_s=10, tls=tls)
    target = (path or "/") + (f"?{query}" if query else "")
    try:
        response = conn.request(message("POST", target, headers, urlencode(form).encode()))
    finally:
        conn.close()
    return response.status, response.body.decode("utf-8", errors="replace")


def fetch_twiml(
    twiml_url: str, call: dict[str, str], auth_token: str | None
) -> tuple[str, dict[str, str], str | None]:
    """POST the incoming-call webhook; return (relay url, custom parameters, action url).

    Raises:
        RemoteProtocolError: the webhook did not answer 200 with ConversationRelay TwiML.
    """
    status, body = _post_form(twiml_url, call, auth_token)
    if status != 200:
        raise RemoteProtocolError(f"TwiML webhook answered HTTP {status}")
    try:
        root = ET.fromstring(body.encode())
    except ET.ParseError as exc:
        raise RemoteProtocolError(f"TwiML webhook answered something not XML: {exc}") from exc
    connect = root.find("Connect")
    relay = connect.find("ConversationRelay") if connect is not None else None
    if relay is None or not relay.get("url"):
        raise RemoteProtocolError("TwiML has no <Connect><ConversationRelay url=...>")
    params = {p.get("name", ""): p.get("value", "") for p in relay.findall("Parameter")}
    action = connect.get("action") if connect is not None else None
    return str(relay.get("url")), params, action


def _new_sid(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


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
) -> CallResult:
    """Run one scripted call against ``ws_url`` and return what happened.

    Args:
        ws_url: the ConversationRelay URL as in the TwiML (signatures are over it).
        steps: what the caller does.
        auth_token: signs the handshake; None sends no signature.
        connect_url: where to actually connect when it differs from ``ws_url`` (a
            local ``ws://`` emulator standing in for a public ``wss://`` URL).
        before_step: awaited before each step (a test waits here for the backend to
            catch up, as a real caller takes time to say the next sentence).
    """
    try:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus
    except ImportError as exc:
        raise MissingExtraError("websockets", "dev") from exc

    result = CallResult(ws_url)
    headers = {}
    if auth_token:
        headers["X-Twilio-Signature"] = compute_signature(ws_url, {}, auth_token)
    session_id, call_sid = _new_sid("VX"), _new_sid("CA")
    setup = {
        "type": "setup",
        "sessionId": session_id,
        "accountSid": _new_sid("AC"),
        "parentCallSid": "",
        "callSid": call_sid,
        "from": caller,
        "to": callee,
        "forwardedFrom": "",
        "callType": "PSTN",
        "callerName": "",
        "direction": "inbound",
        "callStatus": "RINGING",
        "customParameters": custom_parameters or {},
    }
    try:
        ws = await connect(
            connect_url or ws_url,
            additional_headers=headers,
            user_agent_header="Jetty/11.0.24",  # what Twilio's client sends (§1.1)
            compression=None,
        )
    except InvalidStatus as exc:
        result.rejected = exc.response.status_code
        return result
    frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def reader() -> None:
        try:
            async for raw in ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    frame = {"type": "(not json)", "raw": str(raw)[:200]}
                await frames.put(frame if isinstance(frame, dict) else {"type": "(not object)"})
        except ConnectionClosed:
            pass
        if not hanging_up:  # the server closed first: a caller would hear the line go dead
            code = ws.close_code if ws.close_code is not None else 1006
            result.closed = f"{code} {ws.close_reason or ''}".strip()
        await frames.put(None)

    hanging_up = False
    reading = asyncio.create_task(reader())
    try:
        await ws.send(json.dumps(setup))
        greeting = Turn("(setup)")
        await _collect(frames, greeting, result, turn_timeout_s, on_token, stop_after=None)
        result.greeting = greeting.answer
        async for step, nxt in _with_next(steps):
            if result.end is not None or result.closed is not None:
                break
            if before_step is not None:
                await before_step(step)
            if step.kind == "wait":
                await asyncio.sleep(float(step.value))
            elif step.kind == "hangup":
                break
            elif step.kind in ("say", "dtmf"):
                frame: dict[str, Any] = (
                    {"type": "prompt", "voicePrompt": step.value, "lang": "en-US", "last": True}
                    if step.kind == "say"
                    else {"type": "dtmf", "digit": step.value}
                )
                turn = Turn(step.value if step.kind == "say" else f"dtmf {step.value}")
                result.turns.append(turn)
                if on_prompt is not None:
                    on_prompt(turn.prompt)
                await ws.send(json.dumps(frame))
                stop_after = nxt.after if nxt is not None and nxt.kind == "interrupt" else None
                await _collect(frames, turn, result, turn_timeout_s, on_token, stop_after)
                if stop_after is None and result.end is None:
                    # An ``end`` (handoff, goodbye) follows the answer's last text frame.
                    await _drain(frames, result, 0.15)
            elif step.kind == "interrupt" and result.turns:
                turn = result.turns[-1]
                turn.interrupted = True
                heard = turn.answer
                elapsed = turn.last_token_ms or 0.0
                await ws.send(
                    json.dumps(
                        {
                            "type": "interrupt",
                            "utteranceUntilInterrupt": heard,
                            "durationUntilInterruptMs": int(elapsed),
                        }
                    )
                )
                await _drain(frames, result, 0.3)
    except ConnectionClosed:
        pass  # a send after the server dropped us; the reader records how it closed
    finally:
        hanging_up = True
        await ws.close()
        await reading
    if result.end is not None and action_url:
        form = {
            "CallSid": call_sid,
            "SessionId": session_id,
            "SessionStatus": "ended",
            "CallStatus": "in-progress",
            "SessionDuration": "1",
        }
        if result.end.get("handoffData") is not None:
            form["HandoffData"] = str(result.end["handoffData"])
        _, result.action_twiml = await asyncio.to_thread(_post_form, action_url, form, auth_token)
    return result


async def _with_next(
    steps: list[Step] | AsyncIterator[Step],
) -> AsyncIterator[tuple[Step, Step | None]]:
    """Each step with the one after it (known for scripts; None when typed live)."""
    if isinstance(steps, list):
        for i, step in enumerate(steps):
            yield step, steps[i + 1] if i + 1 < len(steps) else None
        return
    async for step in steps:
        yield step, None


async def _collect(
    frames: asyncio.Queue[dict[str, Any] | None],
    turn: Turn,
    result: CallResult,
    timeout_s: float,
    on_token: Callable[[str], None] | None,
    stop_after: int | None,
) -> None:
    """Read frames until the answer's ``last: true`` (or ``end``, or ``stop_after`` frames)."""
    started = time.perf_counter()
    deadline = started + timeout_s
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        try:
            frame = await asyncio.wait_for(frames.get(), left)
        except TimeoutError:
            return
        if frame is None:
            return
        kind = frame.get("type")
        if kind == "text":
            elapsed = (time.perf_counter() - started) * 1000
            token = str(frame.get("token", ""))
            if token:
                turn.tokens.append(token)
                if on_token is not None:
                    on_token(token)
            if turn.first_token_ms is None and token:
                turn.first_token_ms = round(elapsed, 2)
            turn.last_token_ms = round(elapsed, 2)
            if frame.get("last"):
                turn.complete = True
            if frame.get("last") or (stop_after is not None and len(turn.tokens) >= stop_after):
                return
        elif kind == "end":
            result.end = frame
            return
        else:
            result.other_frames.append(frame)


async def _drain(
    frames: asyncio.Queue[dict[str, Any] | None], result: CallResult, quiet_s: float
) -> None:
    """Read what arrives until ``quiet_s`` of silence: after a barge-in, the frames that
    still came for the interrupted answer; after an answer, a possible ``end``."""
    while True:
        try:
            frame = await asyncio.wait_for(frames.get(), quiet_s)
        except TimeoutError:
            return
        if frame is None:
            return
        if frame.get("type") == "end":
            result.end = frame
            return
        result.other_frames.append({"late": True, **frame})
        if frame.get("type") == "text" and frame.get("last"):
            return


async def typed_steps(prompt: str = "caller> ") -> AsyncIterator[Step]:
    """Steps typed at the terminal, read without blocking the event loop; EOF ends."""
    while True:
        try:
            line = await asyncio.to_thread(input, prompt)
        except EOFError:
            return
        for step in parse_script([line]):
            yield step
