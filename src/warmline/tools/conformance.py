"""``warmline call --check URL``: a fixed call against any ConversationRelay server.

The call goes as a Twilio call goes (:func:`warmline.tools.call.place_call`, or
:func:`~warmline.tools.call.run_call` for a bare ``ws(s)://`` URL) and follows
:data:`SCRIPT`: two prompts, a key press, a barge-in, a last prompt, then the caller hangs
up. The report names what a real call would hit, one line per check:

- ``twiml``: the webhook answers ``<Connect><ConversationRelay>``; its ``action``;
- ``connect``: the signed WebSocket upgrade is accepted;
- ``greeting``: the caller hears one (the TwiML's or the app's), not silence;
- ``prompts``: each prompt gets a complete answer (``last: true``) within the timeout;
- ``dtmf``: the key press is answered (skipped when ``dtmfDetection`` is off);
- ``barge-in``: after ``interrupt`` the call goes on and the next prompt is answered;
- ``frames``: no frame Twilio would refuse (each listed with the rule it breaks), no 1007;
- ``socket``: the app did not drop the socket before the caller hung up;
- ``end``: the session ended as Twilio reports it, and what ``action`` answered.

Nothing here knows warmline apps: any server speaking ConversationRelay can be checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from warmline.errors import RemoteProtocolError
from warmline.tools.call import (
    CallIdentity,
    CallOptions,
    CallResult,
    Turn,
    place_call,
    run_call,
)
from warmline.tools.call_script import parse_script
from warmline.tools.twilio_side import RelayTwiml

__all__ = ["SCRIPT", "Check", "CheckReport", "run_check"]

#: What the caller does. The barge-in comes after the first text frame of the fourth
#: answer; the fifth prompt shows whether the call survived it.
SCRIPT = (
    "Hello, can you hear me?",
    "What can you help me with?",
    "dtmf: 1",
    "Please tell me everything about that, in detail.",
    "interrupt after 1",
    "Thanks. One last question: when are you open?",
)
_BARGED = 3  # index of the turn the caller barges in on
_SAID = sum(1 for line in SCRIPT if not line.startswith(("dtmf", "interrupt")))


@dataclass(frozen=True)
class Check:
    """One line of the report: ``pass``, ``warn``, ``fail`` or ``skip``."""

    name: str
    status: str
    detail: str


@dataclass
class CheckReport:
    """Every check, and the call they were read from."""

    target: str
    checks: list[Check] = field(default_factory=list)
    call: CallResult | None = None

    @property
    def passed(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    def add(self, name: str, ok: bool | None, detail: str, *, warn: bool = False) -> None:
        """``ok`` None: skipped; False: a failure (a warning with ``warn``)."""
        status = "skip" if ok is None else "pass" if ok else "warn" if warn else "fail"
        self.checks.append(Check(name, status, detail))

    def render(self) -> str:
        lines = [f"ConversationRelay check of {self.target}"]
        lines += [f"  {c.status.upper():4} {c.name}: {c.detail}" for c in self.checks]
        failed = sum(1 for c in self.checks if c.status == "fail")
        lines.append("passed" if not failed else f"{failed} check(s) failed")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "passed": self.passed,
            "checks": [c.__dict__ for c in self.checks],
            "call": self.call.to_dict() if self.call is not None else None,
        }


async def run_check(
    url: str,
    *,
    options: CallOptions | None = None,
    method: str = "POST",
    connect_url: str | None = None,
    welcome_greeting: str | None = None,
) -> CheckReport:
    """Call ``url`` (a TwiML webhook, or a WebSocket) with :data:`SCRIPT`; the report.

    Args:
        options: the caller's settings (token, timeouts); the callbacks are not used.
        method: the webhook's HTTP method.
        connect_url: connect the socket here instead (a local stand-in for ``wss://``).
        welcome_greeting: for a bare socket, the TwiML greeting it would be used with.
    """
    options = options or CallOptions()
    report = CheckReport(url)
    steps = parse_script(SCRIPT)
    call = CallIdentity()
    if urlsplit(url).scheme in ("ws", "wss"):
        report.add("twiml", None, "a bare WebSocket URL: no TwiML, no action webhook")
        relay = RelayTwiml.for_socket(url, welcome_greeting=welcome_greeting)
        result = await run_call(
            url, steps, call=call, relay=relay, options=options, connect_url=connect_url
        )
    else:
        try:
            result = await place_call(
                url, steps, call=call, method=method, options=options, connect_url=connect_url
            )
        except (RemoteProtocolError, OSError) as exc:
            report.add("twiml", False, f"the call never connects: {exc}")
            return report
        action = result.sessions[0].action_url if result.sessions else None
        report.add(
            "twiml",
            action is not None,
            f"<ConversationRelay url={result.ws_url!r}>, action {action!r}"
            if action
            else "no <Connect action>: Twilio hangs up when the session ends",
            warn=True,
        )
    report.call = result
    _read(report, result)
    return report


def _read(report: CheckReport, result: CallResult) -> None:
    """The checks, read from what the call did."""
    if result.rejected is not None:
        report.add("connect", False, f"upgrade refused with HTTP {result.rejected} (64102)")
        return
    report.add("connect", True, f"session {result.sessions[0].session_id}")
    heard = {"twiml": "the TwiML welcomeGreeting", "app": "the app's text after setup"}
    report.add(
        "greeting",
        result.greeting_source is not None,
        f"{heard[result.greeting_source]}: {result.greeting[:60]!r}"
        if result.greeting_source
        else "nothing: the caller hears silence until they speak",
    )
    prompts = [t for t in result.turns if t.sent and not t.prompt.startswith("dtmf")]
    answered = [t for t in prompts if t.complete and t is not _turn(result, _BARGED)]
    unanswered = [t.prompt for t in prompts if not t.complete and t is not _turn(result, _BARGED)]
    firsts = [t.first_token_ms for t in answered if t.first_token_ms is not None]
    report.add(
        "prompts",
        not unanswered and len(prompts) == _SAID,
        f"{len(answered)} answered, first token {min(firsts, default=0):.0f}"
        f"-{max(firsts, default=0):.0f} ms"
        if not unanswered
        else f"no complete answer (last: true) to {unanswered}",
    )
    key = next((t for t in result.turns if t.prompt.startswith("dtmf")), None)
    if key is None or not key.sent:
        report.add("dtmf", None, key.note if key and key.note else "not reached")
    else:
        report.add(
            "dtmf",
            bool(key.frames),
            f"answered with {[f.get('type') for f in key.frames]}"
            if key.frames
            else "no answer to a key press",
            warn=True,
        )
    _read_barge_in(report, result)
    _read_frames(report, result)
    _read_end(report, result)


def _turn(result: CallResult, index: int) -> Turn | None:
    """The turn of the script's ``index``-th prompt or key press, if the call got there."""
    return result.turns[index] if index < len(result.turns) else None


def _read_barge_in(report: CheckReport, result: CallResult) -> None:
    barged, after = _turn(result, _BARGED), _turn(result, _BARGED + 1)
    if barged is None:
        report.add("barge-in", None, "not reached")
        return
    late = sum(1 for f in result.other_frames if f.get("late"))
    how = (
        "interrupt sent"
        if barged.interrupted
        else barged.note or "the answer was over before the barge-in"
    )
    went_on = after is not None and after.answered
    report.add(
        "barge-in",
        went_on,
        f"{how}; {late} frame(s) of the cut answer came after it; the next prompt was answered"
        if went_on
        else f"{how}; the next prompt got no complete answer",
    )


def _read_frames(report: CheckReport, result: CallResult) -> None:
    if not result.invalid:
        report.add("frames", True, "every frame the app sent is one Twilio accepts")
        return
    shown = "; ".join(
        f"{i['problem']} in {json.dumps(i['frame'], ensure_ascii=False)[:80]}"
        for i in result.invalid[:5]
    )
    closed = " and closes the socket with 1007" if _closed_by_twilio(result) else ""
    report.add(
        "frames",
        False,
        f"Twilio answers {len(result.invalid)} frame(s) with error 64107{closed}: {shown}",
    )


def _closed_by_twilio(result: CallResult) -> bool:
    return bool(result.closed and result.closed.startswith("1007"))


def _read_end(report: CheckReport, result: CallResult) -> None:
    if result.closed is not None and not _closed_by_twilio(result):
        report.add(
            "socket",
            False,
            f"the app closed the socket ({result.closed}) before the caller hung up: "
            "Twilio reports the session failed (64105)",
        )
    else:
        report.add("socket", True, "open until the caller hung up or the app sent end")
    last = result.sessions[-1]
    said = {
        "ended": "the app sent end",
        "completed": "the caller hung up",
        "failed": "the socket ended without end",
    }.get(last.status, last.status)
    if last.action_url is None:
        report.add("end", None, f"{said}; no action to call")
        return
    ok = last.action_status == 200
    report.add(
        "end",
        ok,
        f"{said}; action {last.action_url} answered HTTP {last.action_status}"
        + (f" after {result.reconnects} reconnect(s)" if result.reconnects else ""),
    )
