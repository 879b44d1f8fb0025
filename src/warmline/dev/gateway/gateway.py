"""API Gateway WebSocket semantics over the runtime: ``$connect``, routing, ``$disconnect``.

The gateway owns the table of open connections (what ``@connections`` acts on), turns
socket happenings into Lambda proxy events (docs/protocols.md §2.2) and turns invocation
results into what API Gateway sends the client:

- ``$connect``: an authorizer runs first when the route has one (:mod:`.authorizers`);
  then non-2xx, an error or a timeout refuses the upgrade with that status (502 for a
  failed or malformed integration result, §8.6; 504 for the 29 s timeout [inf]); response
  ``headers`` (e.g. ``Sec-WebSocket-Protocol``) go on the 101 (§2.3). A connection is only
  postable after it.
- messages: route selection (§2.1); no route and no ``$default`` -> the ``Forbidden`` frame
  (error frames are byte for byte AWS's, §2.6);
  integrations run concurrently (no per-connection ordering, as on AWS); after the
  integration timeout the client gets ``Endpoint request timed out`` and the Lambda runs on
  to its own timeout (§2.6); a failed invocation -> ``Internal server error``; the return
  ``body`` is sent only on routes with a route response.
- ``$disconnect``: fired once, whoever closed, with ``disconnectStatusCode``/``Reason``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from warmline.core import limits
from warmline.dev.gateway import authorizers, connections_api, function_url, invoke_api
from warmline.dev.gateway.events import (
    HOP_BY_HOP,
    ConnectionInfo,
    aws_id,
    connect_event,
    disconnect_event,
    message_event,
    select_route,
    trace_id,
)
from warmline.dev.gateway.frames import accept_key
from warmline.dev.gateway.http import Request, Response, json_response
from warmline.dev.gateway.websocket import (
    CLOSE_GOING_AWAY,
    GOING_AWAY_REASON,
    WebSocketConnection,
)
from warmline.dev.timers import FixedDelayTimers, Timer

if TYPE_CHECKING:
    from warmline.config import DevConfig
    from warmline.dev.faults import FaultInjector
    from warmline.dev.gateway.bus import AsyncBus
    from warmline.dev.gateway.listener import GatewayProtocol
    from warmline.dev.gateway.web import WebConsole
    from warmline.dev.iam import Iam
    from warmline.dev.runtime import InvokeResult, Runtime
    from warmline.dev.runtime.invocation import Cancellable

__all__ = ["Gateway", "error_frame"]

#: Frames API Gateway sends the client on integration problems (docs/protocols.md §2.6).
INTERNAL_ERROR_MESSAGE = "Internal server error"
FORBIDDEN_MESSAGE = "Forbidden"
#: Status for a ``$connect`` integration error / timeout (§8.6; 504 is [inf]).
CONNECT_ERROR_STATUS = 502
CONNECT_TIMEOUT_STATUS = 504
#: The body of a 502 upgrade answer (REST's Lambda proxy error body, spacing included).
CONNECT_ERROR_BODY = b'{"message": "Internal server error"}'
#: The HTTPS port API Gateway's clients always use (``X-Forwarded-Port``) [doc].
_HTTPS_PORT = "443"


def error_frame(message: str, connection_id: str, request_id: str) -> str:
    """API Gateway's error frame, byte for byte (docs/protocols.md §2.6): a space after the
    first colon and after each comma, none after the other colons."""
    return (
        f'{{"message": "{message}", "connectionId":"{connection_id}", "requestId":"{request_id}"}}'
    )


class Gateway:
    """The WebSocket API and its HTTP neighbours on one port.

    Args:
        config: the emulator's configuration.
        runtime: runs the functions.
        bus: async (``Event``) invocations.
        host_port: ``HOST:PORT`` for ``domainName`` when the client sends no Host header.
    """

    def __init__(self, config: DevConfig, runtime: Runtime, bus: AsyncBus, host_port: str) -> None:
        self.config = config
        self.runtime = runtime
        self.bus = bus
        self.host_port = host_port
        self.connections: dict[str, WebSocketConnection] = {}
        self.pending: set[str] = set()
        self.protocols: set[GatewayProtocol] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ws = config.websocket
        self._limits = config.limits
        self._selection = config.websocket.selection
        #: checks SigV4 + IAM on an ``AWS_IAM`` $connect (set by DevServer; None: any
        #: signed upgrade is let in).
        self.iam_verifier: authorizers.IamVerifier | None = None
        #: the emulator's pages under /_warmline/ (set by DevServer; None: not served).
        self.web: WebConsole | None = None
        #: injects connections.* and client.* faults (set by DevServer; None: never).
        self.faults: FaultInjector | None = None
        #: verifies and authorizes @connections and Invoke calls (set by DevServer; None:
        #: every such call is refused).
        self.iam: Iam | None = None
        #: the integration timeout of every routed message (made on the first one).
        self._integration_timers: FixedDelayTimers | None = None
        #: calls to make at the end of this loop pass (_at_pass_end).
        self._pass_end: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self._closing = False
        #: routed messages whose integration has not ended; _settled is set when none.
        self._messages: set[_PendingMessage] = set()
        self._settled = asyncio.Event()

    # --- bookkeeping ----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task that :meth:`drain` waits for."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            print(f"[warmline dev] gateway task failed: {task.exception()!r}", file=sys.stderr)

    @property
    def in_flight(self) -> int:
        """Work still running: handshakes, invocations, messages waiting on results."""
        return len(self._tasks) + len(self._messages)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for in-flight invocations, e.g. ``$disconnect`` at shutdown."""
        waits: list[asyncio.Future[Any]] = list(self._tasks)
        if self._messages:
            waits.append(asyncio.ensure_future(self._settled.wait()))
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=timeout)
            for waiter in pending:
                if waiter not in self._tasks:
                    waiter.cancel()

    async def close(self) -> None:
        """Send open connections a 1001 close frame, drop every socket, cancel the rest."""
        self._closing = True
        for ws in list(self.connections.values()):
            ws.close(CLOSE_GOING_AWAY, GOING_AWAY_REASON)
        for protocol in list(self.protocols):
            protocol.abort()
        await asyncio.sleep(0)
        for message in list(self._messages):
            message.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._integration_timers is not None:
            self._integration_timers.close()

    # --- HTTP -----------------------------------------------------------------------------

    def handle_http_now(self, request: Request) -> Response | None:
        """Answer at once when no invocation is needed (``@connections``, 404), else None.

        The ``@connections`` path is the hot one under load (every echo is a post), so it is
        served inside ``data_received`` without a task.
        """
        web = self.web
        if web is not None and web.owns(request):
            if request.path == web.EVENTS_PATH:
                return None  # the event stream is served in a task (handle_http)
            return web.handle(request)  # the emulator's own pages, before the function URL
        segments = request.path_segments()
        if len(segments) == 3 and segments[0] == self._ws.stage and segments[1] == "@connections":
            faults = self.faults
            if faults is not None and faults.any_connections:
                return None  # served by handle_http, where a fault may wait or drop
            return connections_api.handle(self, request, segments[2])
        if len(segments) == 4 and segments[:2] == ["2015-03-31", "functions"]:
            if segments[3] == "invocations":
                return None
        if self.config.http_function is not None:
            return None  # the function URL's function answers it
        return json_response(404, {"message": "Not Found"})

    async def handle_http(
        self, request: Request, *, tls: bool = False, peer_ip: str = "127.0.0.1"
    ) -> Response:
        """Any HTTP request: ``@connections``, the Invoke API, the function URL, else 404."""
        if self.web is not None and self.web.owns(request):
            return self.web.handle(request)  # the event stream (the rest was served now)
        response = self.handle_http_now(request)
        if response is not None:
            return response
        segments = request.path_segments()
        if len(segments) == 3 and segments[0] == self._ws.stage and segments[1] == "@connections":
            return await connections_api.handle_with_faults(self, request, segments[2])
        if len(segments) == 4 and segments[:2] == ["2015-03-31", "functions"]:
            return await invoke_api.handle(self, request, segments[2])
        function = self.config.http_function
        assert function is not None
        event = function_url.request_event(request, host=self.host_port, tls=tls, source_ip=peer_ip)
        result = await self.spawn(self.runtime.invoke(function, event))
        return function_url.to_response(result)

    # --- $connect -------------------------------------------------------------------------

    async def upgrade(
        self, protocol: GatewayProtocol, request: Request
    ) -> WebSocketConnection | None:
        """Run ``$connect`` and answer the handshake; the connection, or None if refused."""
        segments = request.path_segments()
        if request.method != "GET" or [s for s in segments if s] != [self._ws.stage]:
            protocol.reject(
                json_response(404 if request.method == "GET" else 405, {"message": "Not Found"})
            )
            return None
        key = request.header("Sec-WebSocket-Key")
        if not key or request.header("Sec-WebSocket-Version") != "13":
            protocol.reject(Response(400, b"bad WebSocket handshake"))
            return None
        now = time.time()
        # API Gateway's own headers (one the client sent itself is passed on as sent).
        added = [
            ("X-Amzn-Trace-Id", trace_id(now)),
            ("X-Forwarded-For", protocol.peer_ip),
            ("X-Forwarded-Port", _HTTPS_PORT),
            ("X-Forwarded-Proto", "https"),
        ]
        names = {k.lower() for k, _ in request.headers}
        received = list(request.headers) + [(k, v) for k, v in added if k.lower() not in names]
        info = ConnectionInfo(
            connection_id=aws_id(),
            connected_at_ms=int(now * 1000),
            source_ip=protocol.peer_ip,
            user_agent=request.header("User-Agent"),
            domain_name=request.header("Host") or self.host_port,
            stage=self._ws.stage,
            api_id=self._ws.api_id,
            headers=[(k, v) for k, v in received if k.lower() not in HOP_BY_HOP],
            query=request.query,
        )
        extra_headers: list[tuple[str, str]] = []
        route = self._ws.routes.get("$connect")
        if route is not None:
            request_id = aws_id()
            self.pending.add(info.connection_id)
            try:
                if route.authorization != "NONE":
                    refusal = await authorizers.authorize(
                        self, route, info, request, received, now, request_id
                    )
                    if refusal is not None:
                        protocol.reject(refusal)
                        return None
                status, extra_headers, body = await self._run_connect(
                    route.function, info, now, request_id
                )
            finally:
                self.pending.discard(info.connection_id)
            if not 200 <= status < 300:
                protocol.reject(Response(status, body, [("Content-Type", "application/json")]))
                return None
        if protocol.lost or protocol.transport is None:
            return None
        response = Response(
            101,
            headers=[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key(key)),
                *extra_headers,
            ],
        )
        protocol.write_raw(response.encode())
        ws = WebSocketConnection(
            protocol.transport,
            info,
            max_frame_bytes=self._limits.max_frame_bytes,
            max_message_bytes=self._limits.max_message_bytes,
            idle_timeout_s=self._limits.idle_timeout_s,
            max_connection_s=self._limits.max_connection_s,
            on_message=self._on_message,
            on_closed=self._on_closed,
            flush_soon=self._flush_soon,
        )
        self.connections[info.connection_id] = ws
        return ws

    async def _run_connect(
        self, function: str, info: ConnectionInfo, now: float, request_id: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        event = connect_event(info, now, request_id)
        invocation = self.spawn(self.runtime.invoke(function, event))
        try:
            result: InvokeResult = await asyncio.wait_for(
                asyncio.shield(invocation), self._limits.integration_timeout_s
            )
        except TimeoutError:
            body = json.dumps({"message": limits.TIMEOUT_MESSAGE}).encode()
            return CONNECT_TIMEOUT_STATUS, [], body
        if result.status != "ok":
            return CONNECT_ERROR_STATUS, [], CONNECT_ERROR_BODY
        payload = result.payload
        if not isinstance(payload, dict):
            return 200, [], b""  # no proxy response: API Gateway accepts [inf]
        status = payload.get("statusCode", 200)
        if not isinstance(status, int) or isinstance(status, bool):
            return CONNECT_ERROR_STATUS, [], CONNECT_ERROR_BODY
        headers = [(str(k), str(v)) for k, v in (payload.get("headers") or {}).items()]
        skip = {"upgrade", "connection", "sec-websocket-accept", "content-length"}
        headers = [(k, v) for k, v in headers if k.lower() not in skip]
        body_value = payload.get("body")
        body = body_value.encode() if isinstance(body_value, str) else b""
        return status, headers, body

    # --- messages -------------------------------------------------------------------------

    def _at_pass_end(self, call: Callable[..., object], *args: Any) -> None:
        """Run ``call(*args)`` at the end of this loop pass, after every socket read in it.

        One loop callback per pass runs all that was queued, in order. Used for:

        * routing a message: the same pass may hold the result of an environment that
          has already returned (its socket is later in the selector's list); booked
          first, that environment takes the message, as on AWS, instead of a scale-out
          caused by the order the loop reads sockets in;
        * writing a connection's ``@connections`` posts (``WebSocketConnection.post``),
          after the poster's ``200``.
        """
        queued = self._pass_end
        queued.append((call, args))
        if len(queued) == 1:
            asyncio.get_running_loop().call_soon(self._run_pass_end)

    def _run_pass_end(self) -> None:
        queued, self._pass_end = self._pass_end, []
        for call, args in queued:
            call(*args)

    def _on_message(self, ws: WebSocketConnection, text: str) -> None:
        self._at_pass_end(self._route, ws, text, time.time())

    def _flush_soon(self, ws: WebSocketConnection) -> None:
        self._at_pass_end(ws.flush)

    def _route(self, ws: WebSocketConnection, text: str, now: float) -> None:
        if self._closing:
            return
        route_key = select_route(text, self._selection, self._ws.routes)
        request_id = aws_id()
        if route_key is None:
            ws.send_text(self._error_frame(FORBIDDEN_MESSAGE, ws, request_id))
            return
        route = self._ws.routes[route_key]
        event = message_event(ws.info, route_key, text, now, request_id, aws_id())
        # The per-message hot path (the emulator's CPU per message caps its throughput):
        # a queued timer, and no Task when an environment is warm (invoke_soon).
        pending = _PendingMessage(self, ws, route.route_response, request_id)
        timers = self._integration_timers
        if timers is None:
            timers = self._integration_timers = FixedDelayTimers(
                asyncio.get_running_loop(), self._limits.integration_timeout_s
            )
        pending.timer = timers.call_later(self._message_timed_out, pending)
        self._messages.add(pending)
        self._settled.clear()
        try:
            pending.invocation = self.runtime.invoke_soon(route.function, event, pending.finish)
        except Exception as exc:  # e.g. the runtime closed: the others go on
            pending.finish(exc)

    def _message_timed_out(self, pending: _PendingMessage) -> None:
        pending.timed_out = True
        ws = pending.ws
        ws.send_text(self._error_frame(limits.TIMEOUT_MESSAGE, ws, pending.request_id))

    @staticmethod
    def _error_frame(message: str, ws: WebSocketConnection, request_id: str) -> str:
        return error_frame(message, ws.connection_id, request_id)

    # --- $disconnect ----------------------------------------------------------------------

    def _on_closed(self, ws: WebSocketConnection, code: int, reason: str) -> None:
        self.connections.pop(ws.connection_id, None)
        route = self._ws.routes.get("$disconnect")
        if route is None:
            return
        event = disconnect_event(ws.info, time.time(), aws_id(), code, reason)
        self.spawn(self.runtime.invoke(route.function, event))


class _PendingMessage:
    """A message whose integration is running: answers the client when it ends."""

    __slots__ = (
        "gateway",
        "invocation",
        "request_id",
        "route_response",
        "timed_out",
        "timer",
        "ws",
    )

    def __init__(
        self, gateway: Gateway, ws: WebSocketConnection, route_response: bool, request_id: str
    ) -> None:
        self.gateway = gateway
        self.ws = ws
        self.route_response = route_response
        self.request_id = request_id
        self.timed_out = False
        self.timer: Timer | None = None
        self.invocation: Cancellable | None = None

    def cancel(self) -> None:
        """Shutdown: abandon the invocation; the client gets nothing more."""
        if self.invocation is not None:
            self.invocation.cancel()
        self._forget()

    def _forget(self) -> None:
        # The invocation holds our finish() and the timer our gateway's callback with us:
        # dropped here, so that refcounting frees a finished message (no cycle for the
        # garbage collector).
        self.invocation = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        messages = self.gateway._messages
        messages.discard(self)
        if not messages:
            self.gateway._settled.set()

    def finish(self, result: InvokeResult | BaseException) -> None:
        """The invocation ended: send the error frame or the route response, if any."""
        self._forget()
        if isinstance(result, BaseException):
            print(f"[warmline dev] gateway task failed: {result!r}", file=sys.stderr)
            return
        if self.timed_out:
            return  # API Gateway already answered
        ws = self.ws
        if result.status != "ok":
            ws.send_text(Gateway._error_frame(INTERNAL_ERROR_MESSAGE, ws, self.request_id))
        elif self.route_response:
            body = _response_body(result.payload)
            if body is not None:
                ws.send_text(body)


def _response_body(payload: Any) -> str | None:
    """What a route response sends: the proxy ``body``, else the JSON of the return value."""
    if isinstance(payload, dict) and ("statusCode" in payload or "body" in payload):
        body = payload.get("body")
        if body is None:
            return None
        return body if isinstance(body, str) else json.dumps(body)
    if payload is None:
        return None
    return payload if isinstance(payload, str) else json.dumps(payload)
