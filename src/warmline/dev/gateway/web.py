"""The emulator's own pages: the softphone and the live dashboard under ``/_warmline/``.

A developer running ``warmline dev`` opens one URL to talk to the agent (the browser
channel, :mod:`warmline.agent.chat`, on the same WebSocket API) and to watch what the
backend does. These routes belong to the emulator, not to the app: they are answered in
the gateway before the function URL, so no invocation (and no cold start) is spent on
them and the app's own HTTP routes are untouched. ``_warmline`` is not a path Twilio or
AWS uses.

- ``GET /_warmline/``, ``/_warmline/dashboard``: the pages; ``/_warmline/static/NAME``:
  their CSS and ES modules, read from the installed package (``warmline/web/static``)
  with :mod:`importlib.resources`, so ``pip install warmline`` serves them, no build step.
- ``GET /_warmline/config.json``: the stage, so the softphone finds the WebSocket.
- ``GET /_warmline/events``: ``text/event-stream``. Events are built from the log sink's
  records (CloudWatch ``INIT_START``/``REPORT`` lines and the app's JSON step lines, the
  same lines ``warmline report`` reads) plus snapshots of the runtime's environments and
  the open connections: the dashboard never polls logs. A new client first gets the
  recent history, so a page opened after a call still shows it.
- ``POST /_warmline/schedules/NAME/fire``: fire schedule ``NAME`` now (enabled or not),
  as its rule would; ``202`` with the Event invocations' request ids. ``warmline schedule
  fire NAME`` calls it. A control endpoint (:mod:`warmline.dev.gateway.access`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warmline.dev.gateway.http import Request, Response, json_response
from warmline.web import PREFIX, page

#: GET/PUT the injected faults (:mod:`warmline.dev.faults`).
FAULTS_PATH = PREFIX + "/faults"
#: ``POST SCHEDULES_PATH + NAME + "/fire"`` fires a schedule now.
SCHEDULES_PATH = PREFIX + "/schedules/"

if TYPE_CHECKING:
    from warmline.dev.gateway.gateway import Gateway
    from warmline.dev.runtime.logs import LogRecord

__all__ = ["PREFIX", "EventStream", "WebConsole"]

#: Events kept for clients that connect later (a dev session, not a log store).
HISTORY_EVENTS = 1000
#: How often open dashboards get an environments/connections snapshot (the idle countdown
#: moves on its own), and the least time between snapshots pushed after REPORT lines.
SNAPSHOT_INTERVAL_S = 1.0
#: A comment line at least this often keeps proxies and the browser from timing out.
KEEPALIVE_S = 15.0

_REPORT_FIELD = re.compile(r"(Duration|Billed Duration|Init Duration|Max Memory Used): ([\d.]+)")
#: Fields of a step line passed to the dashboard (ids and measurements, no payloads).
_STEP_FIELDS = (
    "step",
    "route",
    "connectionId",
    "callSid",
    "sessionId",
    "turn",
    "cold",
    "warmup",
    "durationMs",
    "firstSendMs",
    "statusCode",
    "intent",
    "channel",
    "hitCount",
    "topScore",
    "sends",
    "source",
)


def _page_response(rest: str) -> Response:
    found = page(rest)
    if found is None:
        return json_response(404, {"message": "Not Found"})
    body, headers = found
    return Response(200, body, headers)


def parse_record(record: LogRecord) -> dict[str, Any] | None:
    """The dashboard event for one log line, or None for lines it does not show.

    Args:
        record: a line of one environment.

    Returns:
        ``{"kind": "init" | "report" | "step", "ts", "function", "env", ...}``.
    """
    line = record.line
    base: dict[str, Any] = {"ts": record.ts, "function": record.function, "env": record.env}
    if line.startswith(("INIT_START", "RESTORE_START")):
        return {"kind": "init", **base, "restore": line.startswith("RESTORE")}
    if line.startswith("REPORT RequestId: "):
        fields = dict(_REPORT_FIELD.findall(line))
        status = re.search(r"Status: (\w+)", line)
        return {
            "kind": "report",
            **base,
            "requestId": line.split("\t", 1)[0].removeprefix("REPORT RequestId: "),
            "durationMs": float(fields.get("Duration", 0)),
            "billedMs": float(fields.get("Billed Duration", 0)),
            "initMs": float(fields["Init Duration"]) if "Init Duration" in fields else None,
            "maxMemoryMb": float(fields.get("Max Memory Used", 0)),
            "status": status.group(1) if status else "ok",
        }
    if line.startswith("{") and '"step"' in line:
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        if not isinstance(obj, dict) or not isinstance(obj.get("step"), str):
            return None
        return {"kind": "step", **base, **{k: obj[k] for k in _STEP_FIELDS if k in obj}}
    return None


@dataclass(eq=False)
class EventStream(Response):
    """A response that stays open: ``text/event-stream`` fed by :class:`WebConsole`.

    The listener writes :meth:`head`, then awaits :meth:`run` with its writer.
    """

    console: WebConsole | None = None

    def head(self) -> bytes:
        """Status line and headers (no Content-Length: the body never ends)."""
        return (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")

    async def run(self, write: Callable[[bytes], None], lost: Callable[[], bool]) -> None:
        """Write events until the client goes away (or the server closes)."""
        assert self.console is not None
        await self.console.pump(write, lost)


class WebConsole:
    """Serves the pages and fans log-derived events out to dashboards.

    Args:
        gateway: the gateway (connections, runtime, config, task bookkeeping).
    """

    #: the one streamed path (served in a task; every other page is answered in place).
    EVENTS_PATH = PREFIX + "/events"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY_EVENTS)
        #: lines not yet turned into events: parsed only when someone looks (a dashboard
        #: opens, or :attr:`history` is read), so an unwatched emulator does not pay for
        #: three regex-parsed lines per invocation (bench/emulator_vs_offline.py).
        self._unparsed: deque[LogRecord] = deque(maxlen=HISTORY_EVENTS * 4)
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._last_snapshot = 0.0
        self._warmup_envs: set[str] = set()
        self._ticker: asyncio.Task[Any] | None = None
        #: fires a schedule by name, returning its request ids (KeyError: unknown); the
        #: server sets it (None: no scheduler).
        self.fire_schedule: Callable[[str], list[str]] | None = None

    # --- HTTP -----------------------------------------------------------------------------

    @staticmethod
    def owns(request: Request) -> bool:
        """Whether ``request`` is for the emulator's pages."""
        path = request.path
        return path == PREFIX or path.startswith(PREFIX + "/")

    def handle(self, request: Request) -> Response:
        """The page, asset, config or event stream for a ``/_warmline`` request."""
        if request.path == FAULTS_PATH:
            return self._faults(request)
        if request.path.startswith(SCHEDULES_PATH):
            return self._fire(request)
        if request.method not in ("GET", "HEAD"):
            return json_response(405, {"message": "Method Not Allowed"}, [("Allow", "GET")])
        rest = request.path[len(PREFIX) :]
        if rest == "/config.json":
            stage = self.gateway.config.websocket.stage
            return json_response(200, {"stage": stage, "wsPath": f"/{stage}"})
        if rest == "/events":
            return EventStream(200, console=self)
        return _page_response(rest)

    def _faults(self, request: Request) -> Response:
        """``GET``: the faults in force and injected so far; ``PUT``: a new ``[faults]``
        table as JSON (``{}`` switches them off)."""
        from warmline.config.faults import parse_faults
        from warmline.errors import ConfigurationError

        injector = self.gateway.faults
        if injector is None:
            return json_response(404, {"message": "fault injection is not available"})
        if request.method == "PUT":
            try:
                table = json.loads(request.body or b"{}")
                plan = parse_faults(table, tuple(self.gateway.config.functions))
            except (ValueError, RecursionError) as exc:
                return json_response(400, {"message": f"not JSON: {exc}"})
            except ConfigurationError as exc:
                return json_response(400, {"message": str(exc)})
            injector.replace(plan)
        elif request.method not in ("GET", "HEAD"):
            return json_response(405, {"message": "Method Not Allowed"}, [("Allow", "GET, PUT")])
        return json_response(200, injector.state())

    def _fire(self, request: Request) -> Response:
        """``POST /_warmline/schedules/NAME/fire``: the schedule's Event invocations now."""
        from urllib.parse import unquote

        name, sep, action = request.path[len(SCHEDULES_PATH) :].rpartition("/")
        if not sep or action != "fire" or not name:
            return json_response(404, {"message": "Not Found: POST /_warmline/schedules/NAME/fire"})
        if request.method != "POST":
            return json_response(405, {"message": "Method Not Allowed"}, [("Allow", "POST")])
        name = unquote(name)
        known = self.gateway.config.schedules
        if self.fire_schedule is None or name not in known:
            names = ", ".join(sorted(known)) or "none"
            return json_response(404, {"message": f"no schedule {name!r} (schedules: {names})"})
        ids = self.fire_schedule(name)
        targets = list(known[name].targets)
        return json_response(202, {"schedule": name, "targets": targets, "requestIds": ids})

    # --- events ---------------------------------------------------------------------------

    @property
    def history(self) -> deque[dict[str, Any]]:
        """The recent events (a new dashboard gets them first)."""
        self._catch_up()
        return self._history

    def on_record(self, record: LogRecord) -> None:
        """The log sink's listener: turn the line into an event and fan it out."""
        if not self._queues:
            self._unparsed.append(record)
            return
        self._catch_up()
        self._on_event(record)

    def _catch_up(self) -> None:
        unparsed = self._unparsed
        while unparsed:
            self._on_event(unparsed.popleft())

    def _on_event(self, record: LogRecord) -> None:
        event = parse_record(record)
        if event is None:
            return
        if event["kind"] == "step" and event.get("step") == "warmup":
            self._warmup_envs.add(record.env)
        elif event["kind"] == "report":
            # A ping's REPORT follows its step line in the same environment.
            event["warmup"] = record.env in self._warmup_envs
            self._warmup_envs.discard(record.env)
        self.publish(event)
        if event["kind"] in ("init", "report") and self._queues:
            # Only when someone watches, and at most a few times a second: a snapshot walks
            # every environment and connection, which under load is most of the emulator's
            # CPU per message if done for every REPORT (bench/emulator_vs_offline.py).
            now = time.monotonic()
            if now - self._last_snapshot >= SNAPSHOT_INTERVAL_S:
                self._last_snapshot = now
                self.publish(self.snapshot())

    def publish(self, event: dict[str, Any]) -> None:
        """Keep ``event`` in the history and queue it for every open stream."""
        if event["kind"] != "snapshot":
            self._history.append(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def snapshot(self) -> dict[str, Any]:
        """Environments and open connections now."""
        gateway = self.gateway
        envs = [
            {
                "id": e.environment_id,
                "function": e.function,
                "state": e.state,
                "invocations": e.invocations,
                "createdAt": e.created_at,
                "lastUsedAt": e.last_used_at,
                "initMs": e.init_ms,
            }
            for e in gateway.runtime.environments()
        ]
        conns = [
            {
                "id": ws.connection_id,
                "connectedAt": ws.connected_at,
                "lastActiveAt": ws.last_active_at,
                "userAgent": ws.info.user_agent,
                "sourceIp": ws.info.source_ip,
            }
            for ws in gateway.connections.values()
            if ws.open
        ]
        return {
            "kind": "snapshot",
            "now": time.time(),
            "idleReclaimS": gateway.config.limits.idle_reclaim_s,
            "envs": envs,
            "connections": conns,
        }

    async def pump(self, write: Callable[[bytes], None], lost: Callable[[], bool]) -> None:
        """Send the history, then live events, to one client until it goes away."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        backlog = [*self.history, self.snapshot()]  # before the queue: no event twice
        self._queues.add(queue)
        self._ensure_ticker()
        try:
            write(b"retry: 1000\n\n")
            for event in backlog:
                write(_sse(event))
            while not lost():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    write(b": keep-alive\n\n")
                    continue
                write(_sse(event))
        finally:
            self._queues.discard(queue)

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = self.gateway.spawn(self._tick())

    async def _tick(self) -> None:
        """Snapshots while anyone watches: the idle-reclaim countdown moves on its own."""
        while self._queues:
            await asyncio.sleep(SNAPSHOT_INTERVAL_S)
            with contextlib.suppress(RuntimeError):  # the runtime closed under us
                self.publish(self.snapshot())


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
