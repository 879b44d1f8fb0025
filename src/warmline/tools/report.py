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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["CallTimeline", "FunctionStats", "Invocation", "Report", "parse_lines", "percentile"]

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
class CallTimeline:
    """One WebSocket connection's milestones (epoch seconds) and whether it met a cold start."""

    connection_id: str
    connect: float | None = None
    setup: float | None = None
    first_prompt: float | None = None
    first_token: float | None = None
    cold: bool = False

    def span_ms(self, a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round((b - a) * 1000, 2)


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
            invocations.append(inv)
            continue
        step = _step(message)
        if step is None:
            continue
        pending = current.get(key)
        if pending is not None:
            pending.steps.append(step)
            pending.warmup = pending.warmup or step.get("step") == "warmup"
        _track_call(calls, step, ts)
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


def _track_call(calls: dict[str, CallTimeline], step: dict[str, Any], ts: float | None) -> None:
    connection_id = step.get("connectionId")
    if not isinstance(connection_id, str) or ts is None:
        return
    call = calls.setdefault(connection_id, CallTimeline(connection_id))
    call.cold = call.cold or bool(step.get("cold"))
    # Step lines are written when the handler finishes; its start is ts - durationMs.
    began = ts - float(step.get("durationMs") or 0) / 1000
    kind = step.get("step")
    route = step.get("route")
    if kind == "connect" and call.connect is None:
        call.connect = began
    elif kind == "message" and route == "setup" and call.setup is None:
        call.setup = began
    elif kind == "message" and route == "prompt" and call.first_prompt is None:
        call.first_prompt = began
        first_send = step.get("firstSendMs")
        if isinstance(first_send, int | float):
            call.first_token = began + first_send / 1000


def render(report: Report) -> str:
    """The report as plain-text tables."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"{'function':<24} {'invocations':>11} {'warm-ups':>8} {'cold':>5} "
        f"{'init p50':>9} {'init p99':>9} {'warm p50':>9} {'warm p99':>9}"
    ]
    for f in report.functions():
        lines.append(
            f"{f.function:<24} {f.invocations:>11} {f.warmups:>8} {f.cold_starts:>5} "
            f"{ms(f.init_p50):>9} {ms(f.init_p99):>9} {ms(f.warm_p50):>9} {ms(f.warm_p99):>9}"
        )
    if report.calls:
        lines.append("")
        lines.append(
            f"{'call (connectionId)':<26} {'cold':>5} {'connect>setup':>14} "
            f"{'setup>prompt':>13} {'prompt>token':>13}"
        )
        for c in report.calls:
            lines.append(
                f"{c.connection_id:<26} {'yes' if c.cold else 'no':>5} "
                f"{ms(c.span_ms(c.connect, c.setup)):>14} "
                f"{ms(c.span_ms(c.setup, c.first_prompt)):>13} "
                f"{ms(c.span_ms(c.first_prompt, c.first_token)):>13}"
            )
        for label, cold in (("cold", True), ("warm", False)):
            firsts = [
                v
                for c in report.calls
                if c.cold is cold
                for v in [c.span_ms(c.first_prompt, c.first_token)]
                if v is not None
            ]
            if firsts:
                lines.append(
                    f"prompt -> first token, {label} calls: p50 {ms(percentile(firsts, 50))} ms, "
                    f"p99 {ms(percentile(firsts, 99))} ms ({len(firsts)} calls)"
                )
    return "\n".join(lines)


def write_plots(report: Report, directory: str) -> list[str]:
    """PNG plots of the report (``warmline[report]``: matplotlib, imported here only).

    - ``durations.png``: per function, Init Duration of cold starts and Duration of warm
      invocations (warm-ups left out), as strip plots on a log scale;
    - ``first_token.png``: per call, prompt -> first token, cold calls apart from warm.

    Returns:
        The files written.

    Raises:
        MissingExtraError: matplotlib is not installed.
    """
    import os

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from warmline.errors import MissingExtraError

        raise MissingExtraError("matplotlib", "report") from exc

    os.makedirs(directory, exist_ok=True)
    written: list[str] = []
    functions = sorted({i.function for i in report.invocations})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for n, name in enumerate(functions):
        real = [i for i in report.invocations if i.function == name and not i.warmup]
        inits = [i.init_ms or i.restore_ms or 0.0 for i in real if i.cold]
        warm = [i.duration_ms for i in real if not i.cold]
        ax.scatter([n - 0.15] * len(inits), inits, color="#d9534f", s=14, label=None)
        ax.scatter([n + 0.15] * len(warm), warm, color="#2a7ab0", s=14, label=None)
    ax.scatter([], [], color="#d9534f", label="Init Duration (cold)")
    ax.scatter([], [], color="#2a7ab0", label="Duration (warm)")
    ax.set_xticks(range(len(functions)), functions)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title("Cold starts vs warm invocations (warm-ups excluded)")
    ax.legend()
    fig.tight_layout()
    path = os.path.join(directory, "durations.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, cold, color in (("cold calls", True, "#d9534f"), ("warm calls", False, "#2a7ab0")):
        values = [
            v
            for c in report.calls
            if c.cold is cold
            for v in [c.span_ms(c.first_prompt, c.first_token)]
            if v is not None
        ]
        ax.hist(values, bins=20, alpha=0.7, color=color, label=f"{label} ({len(values)})")
    ax.set_xlabel("prompt -> first token (ms)")
    ax.set_ylabel("calls")
    ax.set_title("First answer token, cold vs warm calls")
    ax.legend()
    fig.tight_layout()
    path = os.path.join(directory, "first_token.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written
