"""One ConversationRelay session as Twilio runs it, from the caller's side of the line.

A :class:`RelaySession` opens the WebSocket (signed over the TwiML ``url``), sends
``setup``, lets the caller hear the greeting and then plays the script's steps until the
script ends, the app sends ``end``, or the socket closes. What Twilio does on the socket
is modelled from the ``<ConversationRelay>`` attributes (docs/protocols.md §1.2-§1.6):

- ``welcomeGreeting``: Twilio speaks it at once; the caller does not wait for the app;
- every outbound frame is judged by :class:`~warmline.tools.relay_rules.OutboundReader`
  (an ``error`` frame back for each invalid one, the 1007 close after ten in a row);
- ``dtmfDetection``: key presses reach the app only when it is on;
- ``interruptible`` (and a ``text`` frame's own ``interruptible``): a barge-in by speech
  sends ``interrupt`` only when speech may cut the answer;
- ``partialPrompts``: the words of a prompt arrive as cumulative ``last: false`` prompts
  before the final one;
- ``language`` frames switch the language later prompts are transcribed in;
- ``debug`` / ``events`` channels: ``info`` frames (``clientSpeaking``, ``agentSpeaking``,
  ``tokensPlayed``, ``roundTripDelayMs``).

A turn's clock starts before the prompt is sent. A turn ends at the answer's
``last: true`` (or ``end``), or, after frames other than ``text``, after ``settle_s`` of
quiet: a server that answers with ``play`` or ``sendDigits`` alone never costs a timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warmline.tools.call_script import Script, Step
from warmline.tools.relay_rules import MALFORMED_CLOSE, OutboundReader
from warmline.tools.twilio_side import WEBSOCKET_ENDED, CallIdentity, RelayTwiml, new_sid

if TYPE_CHECKING:
    from warmline.tools.call import CallResult, SessionInfo, Turn

__all__ = ["CallOptions", "RelaySession"]

#: The close Twilio sends when the caller hangs up or after the app's ``end`` (§1.4).
NORMAL_CLOSE = (1000, "Closing websocket session")
#: How long the caller listens after a barge-in for frames of the cut answer.
AFTER_INTERRUPT_S = 0.3
#: Most partial prompts sent before a final one.
MAX_PARTIALS = 3


@dataclass
class CallOptions:
    """How the caller behaves; shared by every session of a call."""

    auth_token: str | None = None
    turn_timeout_s: float = 30.0
    #: how long the caller listens for a greeting the TwiML does not speak.
    greeting_wait_s: float = 10.0
    #: quiet that ends a turn once its answer is complete (or holds no ``text``).
    settle_s: float = 0.15
    on_token: Callable[[str], None] | None = None
    #: every frame other than ``text``; ``problem`` says why Twilio refused it.
    on_frame: Callable[[dict[str, Any], str | None], None] | None = None
    on_prompt: Callable[[str], None] | None = None
    before_step: Callable[[Step], Awaitable[None]] | None = None


class RelaySession:
    """One WebSocket session of a call (a call connected again has several)."""

    def __init__(
        self,
        relay: RelayTwiml,
        call: CallIdentity,
        result: CallResult,
        info: SessionInfo,
        options: CallOptions,
        *,
        reconnected: bool,
    ) -> None:
        self.relay = relay
        self.call = call
        self.result = result
        self.info = info
        self.options = options
        self.reconnected = reconnected
        self.frames: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.reader = OutboundReader()
        self.end: dict[str, Any] | None = None
        self.hanging_up = False
        self.twilio_closed = False
        self.server_closed: str | None = None
        self.tts_language = relay.tts_language
        self.transcription_language = relay.transcription_language
        self.ws: Any = None

    # --- the socket ----------------------------------------------------------------
    async def run(self, ws: Any, script: Script) -> None:
        """Play the session on an open socket ``ws``; fill :attr:`info`."""
        from websockets.exceptions import ConnectionClosed

        self.ws = ws
        opened = time.perf_counter()
        reading = asyncio.create_task(self._read())
        try:
            setup = self.call.setup_frame(
                self.info.session_id, dict(self.relay.parameters), reconnected=self.reconnected
            )
            greeting_t0 = time.perf_counter()
            await ws.send(json.dumps(setup))
            await self._greet(greeting_t0)
            await self._play(script)
        except ConnectionClosed:
            pass  # a send after the socket closed; the reader records how
        finally:
            self.hanging_up = True
            if not self.twilio_closed:
                await ws.close(*NORMAL_CLOSE)
            await reading
        self.info.duration_s = time.perf_counter() - opened
        if self.end is not None:
            self.info.status = "ended"
            handoff = self.end.get("handoffData")
            self.info.handoff_data = handoff if isinstance(handoff, str) else None
        elif self.twilio_closed or self.server_closed is not None:
            self.info.status = "failed"
            self.info.error = WEBSOCKET_ENDED
        else:
            self.info.status = "completed"

    async def _read(self) -> None:
        """Judge each frame as Twilio does; queue the valid ones, answer the others."""
        from websockets.exceptions import ConnectionClosed

        ws = self.ws
        try:
            async for raw in ws:
                outcome = self.reader.read(raw)
                if outcome.reply is None:
                    await self.frames.put(outcome.frame)
                    continue
                self.result.invalid.append({"frame": outcome.frame, "problem": outcome.problem})
                if self.options.on_frame is not None:
                    self.options.on_frame(outcome.frame, outcome.problem)
                await ws.send(json.dumps(outcome.reply))
                self.result.errors_sent += 1
                if outcome.close:
                    self.twilio_closed = True
                    self.info.close = f"{MALFORMED_CLOSE[0]} {MALFORMED_CLOSE[1]}"
                    await ws.close(*MALFORMED_CLOSE)
                    break
        except ConnectionClosed:
            pass
        if not self.hanging_up and not self.twilio_closed:
            code = ws.close_code if ws.close_code is not None else 1006
            self.server_closed = f"{code} {ws.close_reason or ''}".strip()
            self.info.close = self.server_closed
        if self.result.closed is None and (self.server_closed or self.twilio_closed):
            self.result.closed = self.info.close
        await self.frames.put(None)

    @property
    def over(self) -> bool:
        return self.end is not None or self.server_closed is not None or self.twilio_closed

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def _info(self, channel: str, name: str, value: str) -> None:
        if channel in self.relay.channels:
            await self._send({"type": "info", "name": name, "value": value})

    # --- the caller ------------------------------------------------------------------
    async def _greet(self, t0: float) -> None:
        """Hear the greeting: the TwiML's at once (Twilio speaks it), else the app's."""
        from warmline.tools.call import Turn

        greeting = Turn("(greeting)")
        spoken = self.relay.welcome_greeting
        if spoken:
            greeting.tokens.append(spoken)
            self.result.greeting_source = "twiml"
            if self.options.on_token is not None:
                self.options.on_token(spoken)
            await self._collect(greeting, t0, first_wait=self.options.settle_s)
        else:
            wait = min(self.options.greeting_wait_s, self.options.turn_timeout_s)
            await self._collect(greeting, t0, first_wait=wait)
            if greeting.tokens:
                self.result.greeting_source = "app"
        if not self.reconnected or not self.result.greeting:
            self.result.greeting = greeting.answer
            self.result.greeting_frames = greeting.frames

    async def _play(self, script: Script) -> None:
        while not self.over:
            step = await script.next()
            if step is None:
                return
            if self.options.before_step is not None:
                await self.options.before_step(step)
            if step.kind == "hangup":
                script.exhausted = True
                return
            if step.kind == "wait":
                await asyncio.sleep(float(step.value))
            elif step.kind == "say":
                await self._say(step.value, script.peek())
            elif step.kind == "dtmf":
                await self._press(step.value)
            elif step.kind == "interrupt" and self.result.turns:
                await self._barge_in(self.result.turns[-1])

    def _new_turn(self, prompt: str) -> Turn:
        from warmline.tools.call import Turn

        turn = Turn(prompt, session=len(self.result.sessions))
        self.result.turns.append(turn)
        if self.options.on_prompt is not None:
            self.options.on_prompt(prompt)
        return turn

    async def _say(self, text: str, following: Step | None) -> None:
        turn = self._new_turn(text)
        lang = self.transcription_language
        turn.lang = lang.split("-", 1)[0] if lang == "multi" else lang
        await self._info("speaker-events", "clientSpeaking", "on")
        if self.relay.partial_prompts:
            words = text.split()
            cuts = sorted({len(words) * i // (MAX_PARTIALS + 1) for i in range(1, 4)} - {0})
            for cut in cuts:
                partial = " ".join(words[:cut])
                await self._send(
                    {"type": "prompt", "voicePrompt": partial, "lang": turn.lang, "last": False}
                )
        await self._info("speaker-events", "clientSpeaking", "off")
        stop_after = (
            following.after if following is not None and following.kind == "interrupt" else None
        )
        t0 = time.perf_counter()
        await self._send({"type": "prompt", "voicePrompt": text, "lang": turn.lang, "last": True})
        turn.sent = True
        await self._collect(turn, t0, first_wait=self.options.turn_timeout_s, stop_after=stop_after)

    async def _press(self, digit: str) -> None:
        turn = self._new_turn(f"dtmf {digit}")
        if not self.relay.dtmf_detection:
            turn.note = "not sent: dtmfDetection is off in the TwiML"
            return
        t0 = time.perf_counter()
        await self._send({"type": "dtmf", "digit": digit})
        turn.sent = True
        await self._collect(turn, t0, first_wait=self.options.turn_timeout_s)

    async def _barge_in(self, turn: Turn) -> None:
        """The caller speaks over the answer: ``interrupt`` if speech may cut it."""
        if not self._interruptible_by_speech(turn):
            turn.note = "barge-in ignored: the answer is not interruptible by speech"
            if not turn.complete:
                await self._collect(turn, turn.t0, first_wait=self.options.turn_timeout_s)
            return
        turn.interrupted = True
        await self._info("speaker-events", "clientSpeaking", "on")
        await self._send(
            {
                "type": "interrupt",
                "utteranceUntilInterrupt": turn.answer,
                "durationUntilInterruptMs": int(turn.last_token_ms or 0.0),
            }
        )
        await self._info("speaker-events", "agentSpeaking", "off")
        await self._drain(AFTER_INTERRUPT_S)

    def _interruptible_by_speech(self, turn: Turn) -> bool:
        """A ``text`` frame's own ``interruptible`` wins over the TwiML attribute (§1.3)."""
        for frame in reversed(turn.frames):
            if frame.get("type") == "text" and isinstance(frame.get("interruptible"), bool):
                return bool(frame["interruptible"])
        return self.relay.interruptible in ("speech", "any")

    async def _collect(
        self, turn: Turn, t0: float, *, first_wait: float, stop_after: int | None = None
    ) -> None:
        """Read the answer's frames until it is over (see the module docstring)."""
        turn.t0 = t0
        deadline = t0 + self.options.turn_timeout_s
        while self.end is None:
            now = time.perf_counter()
            if not turn.frames:
                wait = min(deadline, t0 + first_wait) - now
            elif turn.cycle_open:
                wait = deadline - now
            else:
                wait = self.options.settle_s
            if wait <= 0:
                return
            try:
                frame = await asyncio.wait_for(self.frames.get(), wait)
            except TimeoutError:
                return
            if frame is None:
                return
            if frame.get("type") == "text" and turn.complete and turn.frames:
                self.result.other_frames.append({"late": True, **frame})
                continue
            await self._take(turn, frame, t0)
            if stop_after is not None and len(turn.tokens) >= stop_after:
                return

    async def _take(self, turn: Turn, frame: dict[str, Any], t0: float) -> None:
        """One valid frame of an answer: recorded, shown, and acted upon as Twilio would."""
        kind = frame.get("type")
        turn.frames.append(frame)
        if kind == "text":
            token = str(frame.get("token", ""))
            elapsed = round((time.perf_counter() - t0) * 1000, 2)
            if token:
                if not turn.tokens:
                    await self._info("speaker-events", "agentSpeaking", "on")
                turn.tokens.append(token)
                turn.cycle_tokens.append(token)
                if turn.first_token_ms is None:
                    turn.first_token_ms = elapsed
                if self.options.on_token is not None:
                    self.options.on_token(token)
            turn.last_token_ms = elapsed
            turn.cycle_open = not frame.get("last")
            if frame.get("last"):
                turn.complete = True
                await self._cycle_spoken(turn)
            return
        if self.options.on_frame is not None:
            self.options.on_frame(frame, None)
        if kind == "end":
            self.end = frame
            self.result.end = frame
        elif kind == "language":
            self.tts_language = frame.get("ttsLanguage", self.tts_language)
            self.transcription_language = frame.get(
                "transcriptionLanguage", self.transcription_language
            )
        elif kind == "sendDigits":
            await self._info("tokens-played", "tokensPlayed", str(frame.get("digits", "")))

    async def _cycle_spoken(self, turn: Turn) -> None:
        """A talk cycle ended: what ``info`` subscribers hear about it."""
        spoken = "".join(turn.cycle_tokens)
        turn.cycle_tokens.clear()
        if spoken:
            await self._info("tokens-played", "tokensPlayed", spoken)
        await self._info("speaker-events", "agentSpeaking", "off")
        await self._info("debugging", "roundTripDelayMs", str(int(turn.last_token_ms or 0)))

    async def _drain(self, quiet_s: float) -> None:
        """After a barge-in: the frames that still came for the cut answer, marked late."""
        while self.end is None:
            try:
                frame = await asyncio.wait_for(self.frames.get(), quiet_s)
            except TimeoutError:
                return
            if frame is None:
                return
            if frame.get("type") == "end":
                self.end = frame
                self.result.end = frame
                return
            self.result.other_frames.append({"late": True, **frame})
            if frame.get("type") == "text" and frame.get("last"):
                return


def new_session_id() -> str:
    """A ConversationRelay session SID (``VX...``)."""
    return new_sid("VX")
