"""Container mode: the same :class:`~warmline.core.app.App` as a raw ASGI application.

One port serves everything a Twilio call needs, as API Gateway + a function URL do on AWS:

- the ConversationRelay WebSocket at ``ws_path`` (default ``/ws``): the handshake becomes a
  ``Connect`` event (the App checks ``X-Twilio-Signature`` and may reject with any
  status, sent as the HTTP answer to the upgrade, docs/protocols.md §2.3), each text message a
  ``Message`` event, the close a ``Disconnect`` event;
- the App's ``@app.http`` routes (``/twiml``, ``/cr-action``) as ``HttpRequest`` events;
- ``/healthz`` (liveness: the process answers) and ``/readyz`` (readiness: 503 once
  draining) for an ALB target group.

Why worker threads: ``App.handle`` is synchronous (it is what Lambda calls) and may block
on the session store; running it on the event loop would stall every other call. Each
event runs in a thread of a bounded pool; a handler's coroutines run on that thread's own
loop (the composed runner, :class:`~warmline.adapters.loops.ThreadLoops`). Messages of
one socket are handled concurrently, as API Gateway invokes one Lambda per message: an
``interrupt`` is seen while the ``prompt`` it cuts off is still streaming, which is what
the App's turn fencing expects.

``AsgiApp`` is the container's composition edge: the App's ports that were not given
explicitly come from the environment (:func:`warmline.adapters.compose.from_environment`),
and its ConnectionClient is this server's sockets.

Sends go straight onto the sockets (:class:`~warmline.adapters.asgi_sockets.SocketRegistry`,
installed as the App's ConnectionClient); with a router (:mod:`warmline.adapters.asgi_redis`)
posts for sockets on other instances are forwarded there.

Graceful shutdown (:meth:`AsgiApp.drain`): stop accepting calls (new handshakes get 503),
report not ready, wait (bounded) until the open calls end; Twilio calls still open near the
end of the wait are moved to another server (``end`` with a reconnect hand-off, then the
``<Connect action>`` answer connects them again, :mod:`warmline.adapters.asgi_calls`).
HTTP keeps being served while draining: the action callbacks of those calls must still
work. A call's messages after the first wait (bounded) for the first to be handled, so a
``prompt`` does not overtake its ``setup``.

The API Gateway limits are kept so an app behaves the same on both (§2.1): a binary frame
closes with 1003, a message over 128 KB with 1009 (a frame over 32 KB too, checked by the
server's WebSocket protocol in :mod:`warmline.adapters.asgi_server`). Standard library
only; uvicorn is imported by :mod:`warmline.adapters.asgi_server`, never here.

Bounded per caller, so one caller cannot take the server from the others:

- **Fairness**: a call has at most ``per_call`` events in the worker pool at once; while
  it has that many, its socket is not read (TCP pushes back on the sender). A caller
  flooding frames therefore holds ``per_call`` workers, and another caller's handshake and
  ``setup`` find a free one: with ``workers`` / ``per_call`` calls or fewer flooding, a
  greeting waits for no one's flood.
- **The caller's address**: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed
  only with ``trusted_proxies`` > 0 (0 by default: nothing is declared in front, so any
  such header is the caller's own words), and an entry that is not an IP address is
  ignored for the socket's peer.
- **Request bodies** must arrive within ``body_timeout_s``; request heads are timed by the
  server (:data:`warmline.adapters.asgi_server.DEFAULT_HEADER_TIMEOUT_S`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import time
from binascii import b2a_base64
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from warmline.adapters.asgi_calls import (
    DEFAULT_HANDOFF_GRACE_S,
    DEFAULT_SETUP_WAIT_S,
    OpenCall,
    end_for_move,
)
from warmline.adapters.asgi_sockets import CLOSE, Router, SocketRegistry
from warmline.adapters.compose import compose
from warmline.core.app import App, Invocation, Response
from warmline.core.events import (
    Connect,
    ConnectionRef,
    Disconnect,
    Event,
    Headers,
    HttpRequest,
    Message,
    WarmUp,
)
from warmline.core.limits import MAX_MESSAGE_BYTES
from warmline.log import StepLogger

__all__ = [
    "CLOSE_BINARY",
    "CLOSE_TOO_BIG",
    "DEFAULT_PER_CALL",
    "DEFAULT_TRUSTED_PROXIES",
    "MAX_HTTP_BODY_BYTES",
    "AsgiApp",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

#: Close code for a binary frame (API Gateway, docs/protocols.md §2.1).
CLOSE_BINARY = 1003
#: Close code for a message over 128 KB (docs/protocols.md §2.1).
CLOSE_TOO_BIG = 1009
#: Largest webhook body read (not an AWS limit: Twilio's forms are a few KB; a guard).
MAX_HTTP_BODY_BYTES = 1024 * 1024
#: Default size of the worker pool (events handled at once).
DEFAULT_WORKERS = 64
#: Proxies in front that append to ``X-Forwarded-For``: none unless declared (behind an
#: ALB, 1). With 0 the caller's address is the socket's peer and forwarded headers are
#: ignored, since nothing trusted wrote them.
DEFAULT_TRUSTED_PROXIES = 0
#: Events of one call in the worker pool at once (a streaming ``prompt``, the
#: ``interrupt`` that cuts it off, ``info`` and ``dtmf`` frames meanwhile).
DEFAULT_PER_CALL = 4
#: Time for a whole webhook body to arrive once its head has (a slow body holds a worker
#: of the event loop's attention and a socket; Twilio's forms are a few KB).
DEFAULT_BODY_TIMEOUT_S = 10.0
#: Default bound of the drain: ECS gives a task ``stopTimeout`` (30 s default, 120 s max)
#: between SIGTERM and SIGKILL; set the task's stopTimeout above this.
DEFAULT_DRAIN_TIMEOUT_S = 25.0


class AsgiApp:
    """The ASGI application of ``warmline serve``.

    Args:
        app: the App; its ConnectionClient is replaced by this server's sockets.
        ws_path: the WebSocket path (the TwiML's ``<ConversationRelay url>`` path).
        router: forwards posts to other instances (multi-instance), or None.
        workers: worker threads (events handled at once).
        log: the step logger (default: JSON lines on stdout).
        trusted_proxies: proxies in front that append to ``X-Forwarded-For`` (0: none,
            the socket's peer is the caller).
        per_call: events of one call handled at once (fairness between calls).
        body_timeout_s: time for a request body to arrive (else 408).
        handoff: move Twilio calls still open near the end of a drain to another server.
        handoff_grace_s: time kept at the end of a drain for those moves.
        setup_wait_s: longest a message waits for its call's first message.
    """

    def __init__(
        self,
        app: App,
        *,
        ws_path: str = "/ws",
        router: Router | None = None,
        workers: int = DEFAULT_WORKERS,
        log: StepLogger | None = None,
        trusted_proxies: int = DEFAULT_TRUSTED_PROXIES,
        per_call: int = DEFAULT_PER_CALL,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        handoff: bool = True,
        handoff_grace_s: float = DEFAULT_HANDOFF_GRACE_S,
        setup_wait_s: float = DEFAULT_SETUP_WAIT_S,
    ) -> None:
        if not ws_path.startswith("/"):
            raise ValueError(f"ws_path must start with '/': {ws_path!r}")
        if trusted_proxies < 0:
            raise ValueError(f"trusted_proxies must be >= 0, not {trusted_proxies}")
        if per_call < 1 or body_timeout_s <= 0:
            raise ValueError("per_call must be >= 1 and body_timeout_s > 0")
        if handoff_grace_s < 0 or setup_wait_s < 0:
            raise ValueError("handoff_grace_s and setup_wait_s must be >= 0")
        self.handoff = handoff
        self.handoff_grace_s = handoff_grace_s
        self.setup_wait_s = setup_wait_s
        self.trusted_proxies = trusted_proxies
        self.per_call = per_call
        self.body_timeout_s = body_timeout_s
        self.app = compose(app)  # the container's edge: ports from the environment
        self.ws_path = ws_path
        self.router = router
        self.registry = SocketRegistry(router)
        bind = getattr(router, "bind", None)
        if bind is not None:
            bind(self.registry.deliver)  # posts forwarded by other instances land here
        registry = self.registry
        app.use_connections(lambda ref: registry)
        self.log = log or StepLogger(base={"app": app.name, "mode": "serve"})
        #: False once draining: new calls are refused and ``/readyz`` answers 503.
        self.accepting = True
        self.started = False
        self._executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="warmline")
        self._cold = True
        self._calls = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._open: dict[str, OpenCall] = {}

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def open_calls(self) -> int:
        """WebSocket connections open on this instance."""
        return self._calls

    async def start(self) -> None:
        """Warm up before reporting ready: the App's pre-warm hooks, the store, the router."""
        if self.started:
            return
        if self.router is not None:
            start = getattr(self.router, "start", None)
            if start is not None:
                await asyncio.to_thread(start)
        await self._invoke(WarmUp(source="warmline-serve", concurrency=1, invocation=1))
        self.started = True

    async def drain(self, timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S) -> int:
        """Stop accepting calls and wait, at most ``timeout_s``, for the open ones to end.

        With ``handoff``, Twilio calls still open ``min(handoff_grace_s, timeout_s / 2)``
        before the end are moved to another server (see
        :mod:`warmline.adapters.asgi_calls`).

        Returns:
            How many calls were still open when the wait ended (0: all drained).
        """
        if self.accepting:
            self.accepting = False
            self.log("draining", openCalls=self._calls, timeoutS=timeout_s)
        timeout_s = max(0.0, timeout_s)
        grace = min(self.handoff_grace_s, timeout_s / 2)
        mover = asyncio.ensure_future(self._move_calls(timeout_s - grace, grace / 2))
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
        except TimeoutError:
            pass
        finally:
            mover.cancel()
            await asyncio.gather(mover, return_exceptions=True)
        self.log("drained", openCalls=self._calls)
        return self._calls

    async def _move_calls(self, after_s: float, idle_wait_s: float) -> None:
        """After ``after_s``, move each open Twilio call to another server, once it is
        idle (at most ``idle_wait_s`` later: then forced)."""
        if not self.handoff or self.app.protocol != "relay":
            return
        try:
            await asyncio.wait_for(self._idle.wait(), after_s)
            return  # every call ended by itself
        except TimeoutError:
            pass
        calls = list(self._open.values())
        await asyncio.gather(*(self._move(call, idle_wait_s) for call in calls))

    async def _move(self, call: OpenCall, idle_wait_s: float) -> None:
        cid = call.ref.connection_id
        if call.moving is not None:
            return  # moved by an earlier drain
        if not call.idle.is_set():
            self.log("move_waiting", connectionId=cid, waitS=idle_wait_s)  # for its answer
        idle = await call.until_idle(idle_wait_s)
        if call.moving is not None:
            return
        call.moving = asyncio.Event()  # later messages wait for the mark, then are deferred
        try:
            loop = asyncio.get_running_loop()
            frame = await loop.run_in_executor(self._executor, end_for_move, self.app, cid, "drain")
        except Exception as exc:  # the call is then closed at the end of the drain
            self.log("move_failed", "error", connectionId=cid, error=repr(exc))
            return
        finally:
            call.moving.set()
        if frame is None:
            return
        try:
            self.registry.post(cid, frame)
        except Exception as exc:  # the caller hung up meanwhile
            self.log("move_failed", "warning", connectionId=cid, error=repr(exc))
            return
        self.log("call_moved", "info" if idle else "warning", connectionId=cid, forced=not idle)

    async def close(self) -> None:
        """Release the router, the worker threads and the App's event loops."""
        if self._closed:
            return
        self._closed = True
        self.accepting = False
        if self.router is not None:
            close = getattr(self.router, "close", None)
            if close is not None:
                await asyncio.to_thread(close)
        await asyncio.to_thread(self._executor.shutdown, True)
        self.app.close()

    # --- ASGI ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:  # reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _invoke(self, event: Event) -> Any:
        cold, self._cold = self._cold, False
        invocation = Invocation(cold=cold, clock=time.monotonic, log=self.log, request_id=_new_id())
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.app.handle, event, invocation)

    # --- HTTP ----------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path") or "/")
        if path == "/healthz":
            await _respond(send, 200, {"Content-Type": "text/plain"}, b"ok")
            return
        if path == "/readyz":
            ready = self.accepting and self.started
            body = b"ready" if ready else b"draining" if self.started else b"starting"
            await _respond(send, 200 if ready else 503, {"Content-Type": "text/plain"}, body)
            return
        if path == "/_warmline" or path.startswith("/_warmline/"):
            await self._page(path[len("/_warmline") :], send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        deadline = time.monotonic() + self.body_timeout_s
        while more:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                self.log("body_timeout", "warning", path=path, timeoutS=self.body_timeout_s)
                await _respond(send, 408, {"Connection": "close"}, b"request body too slow")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_HTTP_BODY_BYTES:
                await _respond(send, 413, {"Content-Type": "text/plain"}, b"body too large")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        headers = _headers(scope)
        query_string = bytes(scope.get("query_string") or b"").decode("latin-1")
        forwarded = headers.get("X-Forwarded-Proto") if self.trusted_proxies else None
        scheme = forwarded or str(scope.get("scheme") or "http")
        host = headers.get("Host") or _server_host(scope)
        url = f"{scheme}://{host}{path}" + (f"?{query_string}" if query_string else "")
        event = HttpRequest(
            method=str(scope.get("method") or "GET").upper(),
            path=path,
            url=url,
            headers=headers,
            query=dict(parse_qsl(query_string, keep_blank_values=True)),
            body=b"".join(chunks),
            source_ip=_client_ip(scope, headers, self.trusted_proxies),
        )
        try:
            result = await self._invoke(event)
        except Exception as exc:  # a handler bug is a 500, as on a function URL
            self.log("http_failed", "error", path=path, error=repr(exc))
            await _respond(send, 500, {"Content-Type": "text/plain"}, b"internal error")
            return
        response = result if isinstance(result, Response) else Response(200)
        body = response.body.encode("utf-8") if response.body is not None else b""
        await _respond(send, response.status_code, response.headers or {}, body)

    async def _page(self, rest: str, send: Send) -> None:
        """The softphone (and its assets) from the package, as ``warmline dev`` serves it."""
        if rest == "/config.json":
            body = json.dumps({"stage": "", "wsPath": self.ws_path}).encode()
            await _respond(send, 200, {"Content-Type": "application/json"}, body)
            return
        from warmline.web import page

        found = page(rest)
        if found is None:
            await _respond(send, 404, {"Content-Type": "text/plain"}, b"not found")
            return
        content, headers = found
        await _respond(send, 200, dict(headers), content)

    # --- WebSocket -----------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        if scope.get("path") != self.ws_path:
            await _deny(scope, send, 404)
            return
        if not self.accepting:
            await _deny(scope, send, 503)
            return
        headers = _headers(scope)
        now_ms = int(time.time() * 1000)
        ref = ConnectionRef(
            connection_id=_new_id(),
            domain_name=headers.get("Host") or _server_host(scope),
            stage=self.ws_path.strip("/"),
            request_id=_new_id(),
            connected_at_ms=now_ms,
            request_time_ms=now_ms,
            source_ip=_client_ip(scope, headers, self.trusted_proxies),
            user_agent=headers.get("User-Agent", ""),
        )
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        try:
            result = await self._invoke(Connect(ref, headers, dict(parse_qsl(query))))
        except Exception as exc:  # API Gateway answers a failed $connect 500
            self.log("connect_failed", "error", connectionId=ref.connection_id, error=repr(exc))
            await _deny(scope, send, 500)
            return
        status = result.status_code if isinstance(result, Response) else 200
        if not 200 <= status < 300:
            await _deny(scope, send, status)
            return
        accept: dict[str, Any] = {"type": "websocket.accept"}
        protocol = (result.headers or {}).get("Sec-WebSocket-Protocol") if result else None
        if protocol:
            accept["subprotocol"] = protocol
        await send(accept)
        await self._converse(ref, receive, send)

    async def _converse(self, ref: ConnectionRef, receive: Receive, send: Send) -> None:
        """The life of one accepted call: deliver posts, hand each message to the App."""
        cid = ref.connection_id
        queue: asyncio.Queue[bytes | int | None] = asyncio.Queue()
        self.registry.register(
            cid, asyncio.get_running_loop(), queue, source_ip=ref.source_ip,
            user_agent=ref.user_agent,
        )  # fmt: skip
        self._calls += 1
        self._idle.clear()
        loop = asyncio.get_running_loop()
        router = self.router
        if router is not None:
            # Other instances may post to this call from now on (network I/O: off the loop).
            await loop.run_in_executor(self._executor, router.claim, cid)
        call = self._open[cid] = OpenCall(ref)
        sender = asyncio.create_task(_sender(send, queue, call.settled))
        inflight = call.inflight
        first = True
        slots = asyncio.Semaphore(self.per_call)
        code: int | None = None
        reason = ""
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    code = message.get("code")
                    reason = str(message.get("reason") or "")
                    break
                if message["type"] != "websocket.receive":
                    continue
                text = message.get("text")
                close = _check_frame(text, message.get("bytes"))
                if close is not None:
                    queue.put_nowait(close[0])
                    code, reason = close
                    await sender
                    break
                self.registry.touch(cid)
                event = Message(connection=ref, body=str(text), message_id=_new_id())
                if not first and not call.settled.is_set():
                    self.log("setup_wait", connectionId=cid)  # a message overtook its setup
                if not first and not await call.gate(self.setup_wait_s):
                    self.log("setup_wait_expired", "warning", connectionId=cid,
                             waitedS=self.setup_wait_s)  # fmt: skip
                first = False
                # Fairness: with per_call events of this call in the pool, wait (and leave
                # the socket unread) until one ends, instead of queueing ahead of others.
                await slots.acquire()
                if call.moving is not None:
                    await call.moving.wait()
                call.track(asyncio.create_task(self._message(event, slots)))
        finally:
            self._open.pop(cid, None)
            self.registry.unregister(cid)
            if router is not None:
                try:
                    await loop.run_in_executor(self._executor, router.release, cid)
                except Exception as exc:  # the claim's TTL cleans up
                    self.log("release_failed", "warning", connectionId=cid, error=repr(exc))
            if inflight:
                # Handlers still streaming now get 410 on their next post and stop.
                await asyncio.gather(*inflight, return_exceptions=True)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            try:
                await self._invoke(Disconnect(connection=ref, status_code=code, reason=reason))
            except Exception as exc:  # $disconnect is best effort
                self.log("disconnect_failed", "error", connectionId=cid, error=repr(exc))
            self._calls -= 1
            if self._calls == 0:
                self._idle.set()

    async def _message(self, event: Message, slots: asyncio.Semaphore) -> None:
        try:
            await self._invoke(event)
        except Exception as exc:  # one failed message must not end the call
            self.log(
                "message_failed", "error", connectionId=event.connection.connection_id,
                error=repr(exc),
            )  # fmt: skip
        finally:
            slots.release()


def _check_frame(text: str | None, data: bytes | None) -> tuple[int, str] | None:
    """API Gateway's frame rules (docs/protocols.md §2.1): the close to send, or None."""
    if text is None:
        return CLOSE_BINARY, "binary frames are not supported"
    if len(text) * 4 > MAX_MESSAGE_BYTES and len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        return CLOSE_TOO_BIG, "message over 128 KB"
    return None


async def _sender(
    send: Send, queue: asyncio.Queue[bytes | int | None], sent: asyncio.Event
) -> None:
    """Write queued posts to the socket, in order; ``CLOSE`` closes it (1000), an ``int``
    with that code. ``sent`` is set at the first frame."""
    while True:
        item = await queue.get()
        sent.set()
        try:
            if item is CLOSE or isinstance(item, int):
                await send({"type": "websocket.close", "code": 1000 if item is None else item})
                return
            try:
                await send({"type": "websocket.send", "text": item.decode("utf-8")})
            except UnicodeDecodeError:
                await send({"type": "websocket.send", "bytes": item})
        except (OSError, RuntimeError):  # the client went away meanwhile
            return


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers.items()
        if k.lower() != "content-length"  # set below, from the body actually sent
    ]
    raw.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _deny(scope: Scope, send: Send, status: int) -> None:
    """Refuse a handshake with ``status`` (servers without the denial extension say 403).

    403 goes as ``websocket.close``, which every server answers 403 (uvicorn logs a
    spurious error after a denial response, and 403 is the common case: a bad signature).
    """
    if status != 403 and "websocket.http.response" in (scope.get("extensions") or {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-length", b"0")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b""})
    else:
        await send({"type": "websocket.close", "code": 1008})


def _headers(scope: Scope) -> Headers:
    merged: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = bytes(name).decode("latin-1")
        text = bytes(value).decode("latin-1")
        merged[key] = f"{merged[key]},{text}" if key in merged else text
    return Headers(merged)


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    if server and server[1] is not None:
        return f"{server[0]}:{server[1]}"
    return "localhost"


def _client_ip(scope: Scope, headers: Headers, trusted_proxies: int) -> str:
    """The caller's address, as API Gateway's ``identity.sourceIp`` would be.

    Each proxy appends the address it was connected from to ``X-Forwarded-For``, so only
    the entries our own ``trusted_proxies`` added can be believed: with one (an ALB), the
    last entry. The leftmost one is whatever the caller chose to send. With no trusted
    proxy, fewer entries than proxies, or an entry that is not an IP address, it is the
    socket's peer.
    """
    forwarded = headers.get("X-Forwarded-For") if trusted_proxies else None
    if forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        if len(hops) >= trusted_proxies:
            address = _ip(hops[-trusted_proxies])
            if address:
                return address
    client = scope.get("client")
    return str(client[0]) if client else ""


def _ip(text: str) -> str:
    """``text`` as a normalised IPv4 or IPv6 address (brackets allowed), or ""."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _new_id() -> str:
    """An id shaped like API Gateway's connection ids: base64 of 10 random bytes."""
    return b2a_base64(os.urandom(10), newline=False).decode("ascii")
