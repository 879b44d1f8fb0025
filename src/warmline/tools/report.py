"""Read Lambda logs (the emulator's or CloudWatch's) and summarize cold starts and calls.

Input, one of:

- the emulator's log file: JSON lines ``{"ts", "function", "env", "line"}``;
- CloudWatch text: ``<ISO timestamp> [<log stream>] <message>`` per line (as exported to
  S3 or printed by ``aws logs tail``/``filter-log-events``); the function is taken from a
  ``/aws/lambda/NAME`` path when present.

Lines of interest: the platform's ``START``/``REPORT`` lines (docs/protocols.md §3.3: tab
separated, ``Init Duration`` only on a cold invocation, ``Restore Duration`` with
SnapStart) and warmline's own JSON step lines (:mod:`warmline.log`). Step lines between
an environment's ``START`` and ``REPORT`` belong to that request, which is how a warm-up
invocation is told apart and kept out of the latency figures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "CallTimeline",
    "FunctionStats",
    "Invocation",
    "Report",
    "Span",
    "parse_lines",
    "percentile",
    "WAITS",
    "render",
    "summary",
    "waterfall",
    "waits",
]

#: The route name a ``connect`` step stands for.
CONNECT = "$connect"
_STEP_ROUTES = {"connect": CONNECT, "disconnect": "$disconnect"}

_REPORT = re.compile(r"REPORT RequestId: (?P<rid>\S+)(?P<rest>.*)")
_START = re.compile(r"START RequestId: (?P<rid>\S+)")
_FIELD = re.compile(r"(Init Duration|Restore Duration|Duration|Billed Duration): ([\d.]+) ms")
_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\s+")
_GROUP = re.compile(r"/aws/lambda/([\w.-]+)")


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Invocation:
    """One request, assembled from its START, step lines and REPORT."""

    function: str
    request_id: str
    duration_ms: float = 0.0
    init_ms: float | None = None
    restore_ms: float | None = None
    warmup: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    @property
    def cold(self) -> bool:
        return self.init_ms is not None or self.restore_ms is not None


@dataclass
class FunctionStats:
    """Per-function figures; warm-ups are counted apart and left out of latencies."""

    function: str
    invocations: int
    warmups: int
    cold_starts: int
    init_p50: float | None
    init_p99: float | None
    warm_p50: float | None
    warm_p99: float | None


@dataclass
class Span:
    """One handler invocation of a call: when its frame arrived, its INIT, its run.

    Times are epoch seconds. ``start`` is when the handler began (a step line is written
    when the handler finishes, ``durationMs`` after it began); a cold invocation's INIT ran
    before it, so the frame arrived ``init_ms`` earlier, and the caller waited for both.
    """

    route: str
    start: float
    duration_ms: float
    init_ms: float = 0.0
    #: ms from the handler's start to its first post to the caller (``firstSendMs``).
    first_send_ms: float | None = None

    @property
    def arrival(self) -> float:
        return self.start - self.init_ms / 1000

    @property
    def first_send(self) -> float | None:
        return None if self.first_send_ms is None else self.start + self.first_send_ms / 1000


@dataclass
class CallTimeline:
    """One WebSocket connection's invocations, in arrival order, and whether it met a
    cold start.

    The milestones a voice team watches, as the caller's side sees them (epoch seconds):
    ``connect`` and ``setup`` when those frames arrived, ``greeting`` when the setup
    handler first spoke, ``first_prompt`` when the first prompt arrived and
    ``first_token`` when its answer's first words were sent.
    """

    connection_id: str
    spans: list[Span] = field(default_factory=list)
    #: A step line of the call said ``"cold": true``.
    logged_cold: bool = False

    @property
    def cold(self) -> bool:
        """The call met a cold start: a step line says so, or an invocation had an INIT."""
        return self.logged_cold or any(span.init_ms for span in self.spans)

    def first(self, route: str) -> Span | None:
        return next((span for span in self.spans if span.route == route), None)

    def _at(self, route: str, sent: bool = False) -> float | None:
        span = self.first(route)
        if span is None:
            return None
        return span.first_send if sent else span.arrival

    @property
    def connect(self) -> float | None:
        return self._at(CONNECT)

    @property
    def setup(self) -> float | None:
        return self._at("setup")

    @property
    def greeting(self) -> float | None:
        return self._at("setup", sent=True)

    @property
    def first_prompt(self) -> float | None:
        return self._at("prompt")

    @property
    def first_token(self) -> float | None:
        return self._at("prompt", sent=True)

    def span_ms(self, a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) * 1000, 2)

    @property
    def setup_to_greeting_ms(self) -> float | None:
        return self.span_ms(self.setup, self.greeting)

    @property
    def prompt_to_token_ms(self) -> float | None:
        return self.span_ms(self.first_prompt, self.first_token)

    @property
    def worst_wait_ms(self) -> float:
        """The longer of the two waits a caller notices (greeting, first answer)."""
        return max(self.setup_to_greeting_ms or 0.0, self.prompt_to_token_ms or 0.0)


@dataclass
class Report:
    """Everything read from the logs."""

    invocations: list[Invocation]
    calls: list[CallTimeline]

    def functions(self) -> list[FunctionStats]:
        names = sorted({inv.function for inv in self.invocations})
        out = []
        for name in names:
            invs = [i for i in self.invocations if i.function == name]
            real = [i for i in invs if not i.warmup]
            inits = [i.init_ms or i.restore_ms or 0.0 for i in invs if i.cold]
            warm = [i.duration_ms for i in real if not i.cold]
            out.append(
                FunctionStats(
                    function=name,
                    invocations=len(real),
                    warmups=len(invs) - len(real),
                    cold_starts=len(inits),
                    init_p50=percentile(inits, 50),
                    init_p99=percentile(inits, 99),
                    warm_p50=percentile(warm, 50),
                    warm_p99=percentile(warm, 99),
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "functions": [vars(f) for f in self.functions()],
            "calls": [
                {
                    "connectionId": c.connection_id,
                    "cold": c.cold,
                    "connectToSetupMs": c.span_ms(c.connect, c.setup),
                    "setupToFirstPromptMs": c.span_ms(c.setup, c.first_prompt),
                    "promptToFirstTokenMs": c.span_ms(c.first_prompt, c.first_token),
                }
                for c in self.calls
            ],
        }


def _split(raw: str, default_function: str) -> tuple[float | None, str, str, str]:
    """(timestamp, function, environment, message) of one log line of either format."""
    raw = raw.rstrip("\n")
    if raw.startswith("{"):
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "line" in obj:
            return (
                float(obj.get("ts") or 0) or None,
                str(obj.get("function") or default_function),
                str(obj.get("env") or ""),
                str(obj["line"]),
            )
    ts: float | None = None
    match = _ISO.match(raw)
    if match:
        stamp = match.group(1).replace("Z", "+00:00")
        try:
            ts = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            ts = None
        raw = raw[match.end() :]
    env = ""
    first, _, rest = raw.partition(" ")
    if "[$" in first or first.count("/") >= 3:  # a log stream name: 2024/01/20/[$LATEST]id
        env, raw = first, rest
    group = _GROUP.search(raw)
    return ts, group.group(1) if group else default_function, env, raw


def parse_lines(lines: Iterable[str], *, default_function: str = "-") -> Report:
    """Assemble invocations and call timelines from log lines, in order."""
    current: dict[tuple[str, str], Invocation] = {}
    invocations: list[Invocation] = []
    calls: dict[str, CallTimeline] = {}
    for raw in lines:
        ts, function, env, message = _split(raw, default_function)
        key = (function, env)
        start = _START.search(message)
        if start:
            current[key] = Invocation(function, start.group("rid"))
            continue
        report = _REPORT.search(message)
        if report:
            inv = current.pop(key, None) or Invocation(function, report.group("rid"))
            for name, value in _FIELD.findall(report.group("rest")):
                if name == "Duration":
                    inv.duration_ms = float(value)
                elif name == "Init Duration":
                    inv.init_ms = float(value)
                elif name == "Restore Duration":
                    inv.restore_ms = float(value)
            for waited in inv.spans:  # the caller waited for this invocation's INIT too
                waited.init_ms = inv.init_ms or inv.restore_ms or 0.0
            invocations.append(inv)
            continue
        step = _step(message)
        if step is None:
            continue
        pending = current.get(key)
        if pending is not None:
            pending.steps.append(step)
            pending.warmup = pending.warmup or step.get("step") == "warmup"
        added = _track_call(calls, step, ts)
        if added is not None and pending is not None:
            pending.spans.append(added)
    for call in calls.values():
        # Log order is not arrival order: a step line is written when its handler ends,
        # and lines of different environments ending in the same millisecond come back
        # from CloudWatch in either order.
        call.spans.sort(key=lambda span: (span.arrival, span.start, span.route))
    return Report(invocations, list(calls.values()))


def _step(message: str) -> dict[str, Any] | None:
    text = message.strip()
    if not text.startswith("{") or '"step"' not in text:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _track_call(
    calls: dict[str, CallTimeline], step: dict[str, Any], ts: float | None
) -> Span | None:
    """Add a connect, message or disconnect step to its call; the span added, if any."""
    connection_id = step.get("connectionId")
    if not isinstance(connection_id, str) or ts is None:
        return None
    call = calls.setdefault(connection_id, CallTimeline(connection_id))
    call.logged_cold = call.logged_cold or bool(step.get("cold"))
    kind = str(step.get("step"))
    if kind not in ("connect", "message", "disconnect"):
        return None
    duration = float(step.get("durationMs") or 0)
    first_send = step.get("firstSendMs")
    span = Span(
        route=_STEP_ROUTES.get(kind) or str(step.get("route") or kind),
        start=ts - duration / 1000,
        duration_ms=duration,
        first_send_ms=float(first_send) if isinstance(first_send, int | float) else None,
    )
    call.spans.append(span)
    return span


#: The two waits a caller notices, by name: what each measures on a call.
WAITS: dict[str, Callable[[CallTimeline], float | None]] = {
    "setup -> greeting": lambda c: c.setup_to_greeting_ms,
    "prompt -> first token": lambda c: c.prompt_to_token_ms,
}


def waits(report: Report, name: str, *, cold: bool | None = None) -> list[float]:
    """The values of the wait ``name`` (a key of :data:`WAITS`) over the calls, optionally
    only the cold (or only the warm) ones."""
    measure = WAITS[name]
    return [
        value
        for call in report.calls
        if cold is None or call.cold is cold
        for value in [measure(call)]
        if value is not None
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def summary(report: Report, budget_ms: float | None = None) -> list[str]:
    """One line per wait and kind of call: p50, p95, p99 and, with a budget, how many
    calls went over it."""
    lines = []
    for name in WAITS:
        for label, cold in (("cold", True), ("warm", False)):
            values = waits(report, name, cold=cold)
            if not values:
                continue
            line = (
                f"{name}, {label} calls: p50 {_ms(percentile(values, 50))} ms, "
                f"p95 {_ms(percentile(values, 95))} ms, p99 {_ms(percentile(values, 99))} ms "
                f"({len(values)} calls)"
            )
            if budget_ms is not None:
                over = sum(1 for v in values if v > budget_ms)
                line += f"; {over} over the {budget_ms:g} ms budget"
            lines.append(line)
    return lines


def render(report: Report, *, waterfalls: int = 3, budget_ms: float | None = None) -> str:
    """The report as plain-text tables, then the waterfalls of the ``waterfalls`` calls
    that kept their caller waiting longest."""
    lines = [
        f"{'function':<24} {'invocations':>11} {'warm-ups':>8} {'cold':>5} "
        f"{'init p50':>9} {'init p99':>9} {'warm p50':>9} {'warm p99':>9}"
    ]
    for f in report.functions():
        lines.append(
            f"{f.function:<24} {f.invocations:>11} {f.warmups:>8} {f.cold_starts:>5} "
            f"{_ms(f.init_p50):>9} {_ms(f.init_p99):>9} {_ms(f.warm_p50):>9} "
            f"{_ms(f.warm_p99):>9}"
        )
    if not report.calls:
        return "\n".join(lines)
    lines += [
        "",
        "Per call, ms, as the caller waits (a cold invocation's INIT included):",
        f"{'call (connectionId)':<26} {'cold':>5} {'connect>setup':>14} {'setup>greeting':>15} "
        f"{'setup>prompt':>13} {'prompt>token':>13}",
    ]
    for c in report.calls:
        lines.append(
            f"{c.connection_id:<26} {'yes' if c.cold else 'no':>5} "
            f"{_ms(c.span_ms(c.connect, c.setup)):>14} {_ms(c.setup_to_greeting_ms):>15} "
            f"{_ms(c.span_ms(c.setup, c.first_prompt)):>13} {_ms(c.prompt_to_token_ms):>13}"
        )
    lines += summary(report, budget_ms)
    slowest = sorted(report.calls, key=lambda c: c.worst_wait_ms, reverse=True)
    for call in slowest[: max(0, waterfalls)]:
        lines += ["", *waterfall(call)]
    return "\n".join(lines)


_BAR = 48


def waterfall(call: CallTimeline, width: int = _BAR) -> list[str]:
    """A text waterfall of one call: a row per invocation, on one time axis from the first
    frame's arrival. ``=`` is INIT, ``#`` the handler running, ``^`` its first words sent."""
    if not call.spans:
        return [f"call {call.connection_id}: no invocations logged"]
    origin = call.spans[0].arrival
    end = max(span.start + span.duration_ms / 1000 for span in call.spans)
    scale = width / max(end - origin, 1e-6)

    def col(t: float) -> int:
        return min(width - 1, max(0, int((t - origin) * scale)))

    cold = " (cold start)" if call.cold else ""
    lines = [
        f"call {call.connection_id}{cold}: 0 to {(end - origin) * 1000:,.1f} ms "
        "(= INIT, # handler, ^ first words sent)",
        f"  {'invocation':<12} {'at ms':>9} {'init ms':>8} {'run ms':>8}",
    ]
    for span in call.spans:
        bar = [" "] * width
        for i in range(col(span.arrival), col(span.start)):
            bar[i] = "="
        for i in range(
            col(span.start), max(col(span.start + span.duration_ms / 1000), col(span.start) + 1)
        ):
            bar[i] = "#"
        note = ""
        if span.first_send is not None:
            bar[col(span.first_send)] = "^"
            waited = (span.first_send - span.arrival) * 1000
            note = f"  first words {waited:,.1f} ms after the frame"
        lines.append(
            f"  {span.route:<12} {(span.arrival - origin) * 1000:>9,.1f} "
            f"{_ms(span.init_ms) if span.init_ms else '-':>8} {span.duration_ms:>8,.1f} "
            f"|{''.join(bar)}|{note}"
        )
    return lines
