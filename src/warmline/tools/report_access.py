"""API Gateway access logs joined with function logs: one timeline per call.

The WebSocket stage's access log (one JSON object per request, the format the templates
set: ``warmline.templates.observability.ACCESS_LOG_FORMAT``) says when the gateway took
each frame (``requestTimeEpoch``), how long the integration took (``integrationLatency``)
and what it answered (``status``, ``error``). The function's step lines say when its
handler ran, its INIT and when it first posted to ``@connections``. Joined per
``connectionId``, each frame reads gateway -> function -> ``@connections``: the gap
between the gateway's time and the handler's start is queueing, INIT and the invoke
itself.

A frame is matched to the invocation of the same connection that arrived nearest its
gateway time (within :data:`MATCH_WINDOW_S`); unmatched ones show ``-`` on the other side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from warmline.tools.report import Report, Span

__all__ = ["MATCH_WINDOW_S", "AccessRecord", "Hop", "join", "parse_access", "render_timelines"]

#: Largest gap between a frame's gateway time and its invocation's arrival still joined.
MATCH_WINDOW_S = 5.0


@dataclass
class AccessRecord:
    """One access-log line of the WebSocket stage."""

    request_id: str
    connection_id: str
    event_type: str
    route_key: str
    at: float
    status: int | None
    integration_ms: float | None
    error: str


def _num(value: object) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def parse_access(lines: Iterable[str]) -> list[AccessRecord]:
    """The access-log records among ``lines`` (raw messages or the emulator's JSON lines
    wrapping them); other lines are skipped."""
    out: list[AccessRecord] = []
    for raw in lines:
        text = raw.strip()
        if not text.startswith("{"):
            continue
        try:
            doc = json.loads(text)
            if isinstance(doc, dict) and isinstance(doc.get("line"), str):
                doc = json.loads(doc["line"])
        except ValueError:
            continue
        if not isinstance(doc, dict) or "connectionId" not in doc or "eventType" not in doc:
            continue
        at = _num(doc.get("requestTimeEpoch"))
        if at is None:
            continue
        status = _num(doc.get("status"))
        error = str(doc.get("error") or "")
        out.append(
            AccessRecord(
                request_id=str(doc.get("requestId") or ""),
                connection_id=str(doc["connectionId"]),
                event_type=str(doc["eventType"]),
                route_key=str(doc.get("routeKey") or ""),
                at=at / 1000,
                status=int(status) if status is not None else None,
                integration_ms=_num(doc.get("integrationLatency")),
                error="" if error == "-" else error,
            )
        )
    return out


@dataclass
class Hop:
    """One frame of a call: the gateway's record and the invocation it started."""

    access: AccessRecord | None
    span: Span | None

    @property
    def at(self) -> float:
        if self.access is not None:
            return self.access.at
        assert self.span is not None
        return self.span.arrival


def join(report: Report, access: list[AccessRecord]) -> dict[str, list[Hop]]:
    """Each call's frames in time order, gateway records matched to invocations."""
    out: dict[str, list[Hop]] = {}
    spans = {call.connection_id: list(call.spans) for call in report.calls}
    for record in sorted(access, key=lambda r: r.at):
        pool = spans.setdefault(record.connection_id, [])
        best = min(pool, key=lambda s: abs(s.arrival - record.at), default=None)
        if best is not None and abs(best.arrival - record.at) <= MATCH_WINDOW_S:
            pool.remove(best)
        else:
            best = None
        out.setdefault(record.connection_id, []).append(Hop(record, best))
    for connection_id, left in spans.items():
        out.setdefault(connection_id, []).extend(Hop(None, span) for span in left)
    for hops in out.values():
        hops.sort(key=lambda h: h.at)
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def render_timelines(report: Report, access: list[AccessRecord], limit: int = 10) -> list[str]:
    """Per call, a row per frame: gateway time, status and integration latency, then the
    function's INIT, run and first ``@connections`` post."""
    lines = ["", "Per call, gateway -> function -> @connections (ms from the call's first frame):"]
    for connection_id, hops in list(join(report, access).items())[: max(0, limit)]:
        origin = hops[0].at
        lines.append(f"call {connection_id}")
        lines.append(
            f"  {'route':<12} {'at':>9} {'status':>6} {'integration':>11} "
            f"{'to handler':>10} {'init':>7} {'run':>8} {'first post':>10}  error"
        )
        for hop in hops:
            rec, span = hop.access, hop.span
            route = rec.route_key if rec is not None else (span.route if span else "-")
            to_handler = (span.start - rec.at) * 1000 if rec and span else None
            first = (span.first_send - hop.at) * 1000 if span and span.first_send else None
            lines.append(
                f"  {route:<12} {(hop.at - origin) * 1000:>9,.1f} "
                f"{rec.status if rec and rec.status is not None else '-':>6} "
                f"{_ms(rec.integration_ms if rec else None):>11} {_ms(to_handler):>10} "
                f"{_ms(span.init_ms if span and span.init_ms else None):>7} "
                f"{_ms(span.duration_ms if span else None):>8} {_ms(first):>10}"
                f"  {rec.error if rec else ''}"
            )
    return lines
