"""The App: routes, the relay protocol, sessions and sending, with no I/O of its own.

Adapters (Lambda, the dev emulator, ASGI) turn raw input into a normalized event
(:mod:`warmline.core.events`) and call :meth:`App.handle` with an :class:`Invocation` that
carries the things only they can know: whether this environment is cold, how much time is
left, a clock, and factories for the ports (session store, ``@connections`` client).

Rules of this module:

1. A warm-up never reaches a route handler or the session store.
2. A frame that cannot be parsed is logged and dropped; it never raises out of ``handle``
   and never writes to the store.
3. ``$connect`` with Twilio verification on: a missing or wrong signature returns 403 before
   any handler runs and before anything is stored.
4. Sync first. Handlers may be plain functions or coroutines (and may return generators or
   async generators of tokens). ``asyncio`` (~30 ms to import) is loaded only when a handler
   actually needs it, and one event loop per thread is then kept for the life of the
   environment (Lambda runs one thread; the ASGI adapter runs ``handle`` in worker
   threads, and a loop cannot run in two threads at once).
"""

from __future__ import annotations

import json
from _thread import get_ident  # the thread id without importing threading
from collections.abc import Callable, Iterable, Mapping

from warmline.core._struct import Struct, init_fields
from warmline.core.events import (
    Connect,
    ConnectionRef,
    ContactFlow,
    Disconnect,
    Event,
    HttpRequest,
    Message,
    Scheduled,
    WarmUp,
    WorkerTask,
)
from warmline.core.limits import MAX_MESSAGE_BYTES
from warmline.core.routing import CONNECT, DEFAULT, DISCONNECT, RouteSelector, check_route_key
from warmline.core.session import DEFAULT_TTL_S, SessionRecord
from warmline.errors import (
    ConfigurationError,
    ConnectionGoneError,
    FrameTooLargeError,
    InvalidSignatureError,
    MalformedFrameError,
    StoreError,
    VersionConflictError,
)
from warmline.log import StepLogger

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from asyncio import AbstractEventLoop
    from typing import Any, Literal, Protocol

    from warmline.core.relay import InboundMessage
    from warmline.types import ConnectionClient, SessionStore

    Handler = Callable[["Context"], Any]
    StoreFactory = Callable[[], SessionStore]
    ConnectionsFactory = Callable[[ConnectionRef], ConnectionClient]

    class FrameTranslator(Protocol):
        """Another wire protocol served on the relay routes (see :meth:`App.channel`)."""

        name: str

        def inbound(self, body: str) -> str | None: ...

        def outbound(self, frame: bytes | str, ctx: Context) -> bytes | str | None: ...


__all__ = ["STORE_APOLOGY", "App", "Context", "Invocation", "Response"]

#: Said when the session store fails during a message (the caller may say it again).
STORE_APOLOGY = "Sorry, I'm having trouble on my side right now. Please say that again."


#: How many times a session write that lost a compare-and-set race is retried.
_CAS_ATTEMPTS = 8


class Response(Struct):
    """What a route returns to API Gateway.

    ``$connect``: a non-2xx status rejects the handshake (PROTOCOLS.md §2.3). Other routes:
    ``body`` reaches the client only where a route response is configured (§2.1).
    """

    __slots__ = ("status_code", "headers", "body")
    status_code: int
    headers: dict[str, str] | None
    body: str | None

    def __init__(
        self,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        body: str | None = None,
    ) -> None:
        init_fields(self, status_code=status_code, headers=headers, body=body)

    def to_lambda(self) -> dict[str, Any]:
        """The Lambda proxy integration result."""
        result: dict[str, Any] = {"statusCode": self.status_code}
        if self.headers:
            result["headers"] = dict(self.headers)
        if self.body is not None:
            result["body"] = self.body
        return result


def _default_store() -> SessionStore:
    """The store ``WARMLINE_STORE`` names (``sqlite`` by default, ``dynamodb`` with
    ``WARMLINE_DYNAMODB_TABLE``, ``redis`` with ``WARMLINE_REDIS_URL``, ``memory``): what
    ``warmline deploy render`` sets on the functions it deploys."""
    import os

    kind = os.environ.get("WARMLINE_STORE", "sqlite").lower()
    if kind == "dynamodb":
        from warmline.stores.dynamodb import DynamoDBStore

        table = os.environ.get("WARMLINE_DYNAMODB_TABLE")
        if not table:
            raise ConfigurationError("WARMLINE_STORE=dynamodb needs WARMLINE_DYNAMODB_TABLE")
        return DynamoDBStore(table)
    if kind == "redis":
        from warmline.stores.redis import RedisStore

        return RedisStore.from_environment()
    if kind == "memory":
        from warmline.stores.memory import MemoryStore

        return MemoryStore()
    if kind != "sqlite":
        raise ConfigurationError(
            f"WARMLINE_STORE must be sqlite, dynamodb, redis or memory: {kind!r}"
        )
    from warmline.stores.sqlite import SQLiteStore

    return SQLiteStore.from_environment()


def _default_connections(
    ref: ConnectionRef, log: Callable[..., object] | None = None
) -> ConnectionClient:
    from warmline.connections.apigw import ApiGatewayConnections

    return ApiGatewayConnections.for_request(ref.domain_name, ref.stage, log=log)


def _no_deadline() -> int:
    return 29_000


def _no_clock() -> float:
    return 0.0


class Invocation:
    """What the adapter knows about this invocation and environment.

    Attributes:
        cold: the first invocation of this environment.
        remaining_ms: milliseconds left before the platform stops the invocation.
        clock: monotonic seconds, for durations.
        log: the step logger.
        request_id: the platform's request id (Lambda ``aws_request_id``).
        function_name: the function's name.
    """

    __slots__ = ("cold", "remaining_ms", "clock", "log", "request_id", "function_name")

    def __init__(
        self,
        cold: bool = False,
        remaining_ms: Callable[[], int] = _no_deadline,
        clock: Callable[[], float] = _no_clock,
        log: StepLogger | None = None,
        request_id: str = "",
        function_name: str = "",
    ) -> None:
        self.cold = cold
        self.remaining_ms = remaining_ms
        self.clock = clock
        self.log = log if log is not None else StepLogger()
        self.request_id = request_id
        self.function_name = function_name


class Context:
    """Everything a route handler gets: the event, the session, and a way to send.

    Attributes:
        app: the App.
        event: the normalized event.
        route: the route key chosen.
        message: the parsed ConversationRelay message (relay protocol, message routes).
        gone: set once a send found the connection gone (410): stop working on this call.
    """

    __slots__ = (
        "app",
        "event",
        "route",
        "message",
        "invocation",
        "gone",
        "fields",
        "_session",
        "_session_loaded",
        "_connections",
        "_stream_open",
        "_started",
        "sends",
        "channel",
    )

    def __init__(self, app: App, event: Event, invocation: Invocation, route: str = "") -> None:
        self.app = app
        self.event = event
        self.route = route
        self.message: InboundMessage | None = None
        self.invocation = invocation
        self.gone = False
        #: extra fields for this step's log line (intent, hitCount, topScore, ...).
        self.fields: dict[str, Any] = {}
        self._session: SessionRecord | None = None
        self._session_loaded = False
        self._connections: ConnectionClient | None = None
        self._stream_open = False
        self._started = invocation.clock()
        #: how many frames this invocation sent.
        self.sends = 0
        #: the translator of the channel this message came on (None: the app's protocol).
        self.channel: FrameTranslator | None = None

    # --- facts -------------------------------------------------------------------------
    @property
    def connection(self) -> ConnectionRef | None:
        """The WebSocket connection this event came on, if any."""
        event = self.event
        if isinstance(event, Connect | Message | Disconnect):
            return event.connection
        return None

    @property
    def cold(self) -> bool:
        """True on the first invocation of this environment."""
        return self.invocation.cold

    def remaining_ms(self) -> int:
        """Milliseconds left in this invocation (Lambda's deadline or the 29 s cap)."""
        return self.invocation.remaining_ms()

    def annotate(self, **fields: Any) -> None:
        """Add fields (``intent``, ``hitCount``, ``topScore``, ...) to this step's log line."""
        self.fields.update(fields)

    def log(self, step: str, level: str = "info", **fields: Any) -> None:
        """Write a structured log line tagged with this call's ids (``fields`` win)."""
        self.invocation.log(step, level, **{**self._ids(), **fields})

    def _ids(self) -> dict[str, Any]:
        ids: dict[str, Any] = {"route": self.route or None}
        conn = self.connection
        if conn is not None:
            ids["connectionId"] = conn.connection_id
        session = self._session
        if session is not None:
            ids["sessionId"] = session.session_id
            ids["callSid"] = session.call_sid
            ids["turn"] = session.turn
        return ids

    # --- ports -------------------------------------------------------------------------
    @property
    def store(self) -> SessionStore:
        """The session store (created on first use)."""
        return self.app.store

    @property
    def connections(self) -> ConnectionClient:
        """The client that sends to WebSocket connections (created on first use)."""
        if self._connections is None:
            conn = self.connection
            if conn is None:
                raise ConfigurationError("this event has no WebSocket connection to send to")
            self._connections = self.app.connections_for(conn, self.invocation.log)
        return self._connections

    # --- session -----------------------------------------------------------------------
    @property
    def session(self) -> SessionRecord | None:
        """This connection's session record, read from the store once per invocation."""
        if not self._session_loaded:
            conn = self.connection
            self._session = self.store.by_connection(conn.connection_id) if conn else None
            self._session_loaded = True
        return self._session

    def update_session(
        self, change: Callable[[SessionRecord], SessionRecord]
    ) -> SessionRecord | None:
        """Apply ``change`` to this call's session with compare-and-set, retrying races.

        Returns:
            The stored record, or None when the call has no session (no ``setup`` yet).
        """
        record = self.session
        for _ in range(_CAS_ATTEMPTS):
            if record is None:
                return None
            try:
                stored = self.store.put(change(record))
            except VersionConflictError:
                record = self.store.get(record.session_id)
                continue
            self._session = stored
            return stored
        raise VersionConflictError(record.session_id if record else "?", -1)

    # --- sending -----------------------------------------------------------------------
    def send(self, item: Any) -> bool:
        """Send one message to this connection.

        ``item`` may be an outbound relay message (anything with ``to_json()``), a ``str``
        (in the relay protocol a ``text`` token with ``last: false``), a ``dict`` (sent as
        JSON) or ``bytes``.

        Returns:
            False when the connection is gone (410): the call is over; stop sending.
        """
        if self.gone:
            return False
        data = self.app.encode(item)
        if self.channel is not None:
            translated = self.channel.outbound(data, self)
            if translated is None:
                return True  # nothing to say on this channel
            data = translated
        conn = self.connection
        if conn is None:
            raise ConfigurationError("this event has no WebSocket connection to send to")
        try:
            self.connections.post(conn.connection_id, data)
        except ConnectionGoneError:
            self.gone = True
            self.log("gone")
            return False
        self._stream_open = self.app.protocol == "relay" and not _closes_talk_cycle(item)
        if self.sends == 0:
            # Time to the first frame the caller hears: the latency a voice team watches.
            elapsed = self.invocation.clock() - self._started
            self.fields["firstSendMs"] = round(elapsed * 1000, 2)
        self.sends += 1
        return True

    def end_stream(self) -> None:
        """In the relay protocol, close an open talk cycle with ``{"token": "", "last": true}``."""
        if self._stream_open and not self.gone:
            from warmline.core.relay import Text

            self.send(Text(token="", last=True))
        self._stream_open = False


def _closes_talk_cycle(item: Any) -> bool:
    kind = type(item).__name__
    if kind == "Text":
        return bool(getattr(item, "last", False))
    return kind in ("End", "Play", "SendDigits", "Language") or not isinstance(item, str)


class App:
    """A voice/chat WebSocket application: routes plus the ports they use.

    Args:
        protocol: ``"relay"`` (Twilio ConversationRelay frames, parsed and validated) or
            ``"raw"`` (message bodies as text).
        route_selection_expression: API Gateway's ``$request.body.<path>``.
        store: a SessionStore, or a zero-argument factory (default: SQLite, lazily).
        connections: factory of ConnectionClient per connection (default: the
            ``@connections`` HTTP client for the event's domain and stage).
        twilio_auth_token: enables X-Twilio-Signature checks on ``$connect``; a str or a
            zero-argument callable (read the secret lazily, e.g. from SSM).
        public_url: the ``wss://`` URL exactly as in the TwiML (signatures are over it);
            default ``wss://{domainName}/{stage}`` plus the query string.
        session_ttl_s: TTL of session records.
        name: shows up in logs.
    """

    def __init__(
        self,
        *,
        protocol: Literal["relay", "raw"] = "relay",
        route_selection_expression: str = "$request.body.type",
        store: SessionStore | StoreFactory | None = None,
        connections: ConnectionsFactory | None = None,
        twilio_auth_token: str | Callable[[], str] | None = None,
        public_url: str | None = None,
        session_ttl_s: int = DEFAULT_TTL_S,
        name: str = "warmline",
    ) -> None:
        if protocol not in ("relay", "raw"):
            raise ConfigurationError(f"protocol must be 'relay' or 'raw', not {protocol!r}")
        self.protocol = protocol
        self.selector = RouteSelector(route_selection_expression)
        self.routes: dict[str, Handler] = {}
        #: HTTP routes: path -> method -> handler (Twilio webhooks, health checks).
        self.http_routes: dict[str, dict[str, Handler]] = {}
        self.prewarm_hooks: list[Callable[[], Any]] = []
        #: other wire protocols served on the same routes (:meth:`channel`).
        self.channels: list[FrameTranslator] = []
        self._special: dict[str, Handler] = {}
        self._store_arg = store
        self._store: SessionStore | None = None
        self._connections_factory = connections or _default_connections
        self._twilio_auth_token = twilio_auth_token
        self.public_url = public_url
        self.session_ttl_s = session_ttl_s
        self.name = name
        self._prewarmed = False
        #: one event loop per thread that ran a coroutine (thread id -> loop).
        self._loops: dict[int, AbstractEventLoop] = {}

    # --- registration ------------------------------------------------------------------
    def route(self, key: str) -> Callable[[Handler], Handler]:
        """Decorator: handle messages whose route key is ``key``."""
        check_route_key(key)

        def register(fn: Handler) -> Handler:
            if key in self.routes:
                raise ConfigurationError(f"route {key!r} is already handled by {self.routes[key]}")
            self.routes[key] = fn
            return fn

        return register

    on = route

    def connect(self, fn: Handler) -> Handler:
        """Decorator: handle ``$connect``; return a Response, a status or False to reject."""
        return self.route(CONNECT)(fn)

    def disconnect(self, fn: Handler) -> Handler:
        """Decorator: handle ``$disconnect`` (best effort on AWS; the socket is closed)."""
        return self.route(DISCONNECT)(fn)

    def default(self, fn: Handler) -> Handler:
        """Decorator: handle messages no other route matches."""
        return self.route(DEFAULT)(fn)

    def http(self, path: str, methods: tuple[str, ...] = ("POST",)) -> Callable[[Handler], Handler]:
        """Decorator: handle HTTP requests to ``path`` (e.g. Twilio's TwiML webhook).

        The handler returns a :class:`Response`, a ``str`` (sent as ``text/xml`` when it
        starts with ``<``, else ``text/plain``) or a JSON-serialisable ``dict``.
        """
        if not path.startswith("/"):
            raise ConfigurationError(f"an HTTP path must start with '/': {path!r}")

        def register(fn: Handler) -> Handler:
            by_method = self.http_routes.setdefault(path, {})
            for method in methods:
                if method.upper() in by_method:
                    raise ConfigurationError(f"{method} {path} is already handled")
                by_method[method.upper()] = fn
            return fn

        return register

    def channel(self, translator: FrameTranslator) -> FrameTranslator:
        """Serve another wire protocol (e.g. a browser's chat frames) on the relay routes.

        A message ``translator.inbound(body)`` recognises (it returns the equivalent relay
        frame, or None for frames that are not its own; it may raise
        MalformedFrameError) runs the routes, session bookkeeping and logging of that
        relay frame, and every frame sent during that invocation goes through
        ``translator.outbound(frame, ctx)`` (None drops it). Translating at the edge
        keeps one agent for both channels: same sessions, intents and retrieval.
        """
        self.channels.append(translator)
        return translator

    def prewarm(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Decorator: run ``fn`` on the first warm-up ping of an environment.

        Use it to import heavy modules or open connections before a real call needs them.
        """
        self.prewarm_hooks.append(fn)
        return fn

    def worker(self, fn: Handler) -> Handler:
        """Decorator: handle async work (Lambda Event invoke, SNS, SQS)."""
        self._special["worker"] = fn
        return fn

    def schedule(self, fn: Handler) -> Handler:
        """Decorator: handle EventBridge scheduled events that are not warm-ups."""
        self._special["schedule"] = fn
        return fn

    def contact_flow(self, fn: Handler) -> Handler:
        """Decorator: handle Amazon Connect contact-flow invocations."""
        self._special["contact_flow"] = fn
        return fn

    # --- ports -------------------------------------------------------------------------
    @property
    def store(self) -> SessionStore:
        """The session store, created on first use."""
        if self._store is not None:
            return self._store
        arg = self._store_arg
        store: SessionStore
        if arg is None:
            store = _default_store()
        elif callable(arg) and not hasattr(arg, "put"):
            store = arg()
        else:
            store = arg  # type: ignore[assignment]
        import os

        if os.environ.get("WARMLINE_DEV_FAULTS"):  # warmline dev may inject store faults
            from warmline.stores.faulty import FaultyStore

            store = FaultyStore(store)
        self._store = store
        return store

    def connections_for(
        self, ref: ConnectionRef, log: Callable[..., object] | None = None
    ) -> ConnectionClient:
        """The ConnectionClient for ``ref``'s API and stage.

        Args:
            ref: the connection.
            log: the invocation's step logger; the default ``@connections`` client logs its
                retries and reconnects there.
        """
        if self._connections_factory is _default_connections:
            return _default_connections(ref, log)
        return self._connections_factory(ref)

    def use_connections(self, factory: ConnectionsFactory) -> None:
        """Replace the ConnectionClient factory: an adapter that owns the sockets itself
        (the ASGI server) sends on them directly instead of through ``@connections``."""
        self._connections_factory = factory

    def twilio_auth_token(self) -> str | None:
        """The Twilio auth token, if signature checks are on."""
        token = self._twilio_auth_token
        return token() if callable(token) else token

    def encode(self, item: Any) -> bytes | str:
        """Turn what a handler sends into the wire frame."""
        if hasattr(item, "to_json"):
            frame: str = item.to_json()
            return frame
        if isinstance(item, str):
            if self.protocol == "relay":
                from warmline.core.relay import Text

                return Text(token=item).to_json()
            return item
        if isinstance(item, bytes):
            return item
        if isinstance(item, Mapping | list):
            text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            if self.protocol == "relay":
                # Validated like the typed messages: never send what Twilio would drop.
                from warmline.core.relay import parse_outbound

                return str(parse_outbound(text).to_json())
            return text
        raise ConfigurationError(f"cannot send a {type(item).__name__}")

    # --- dispatch ----------------------------------------------------------------------
    def handle(self, event: Event, invocation: Invocation | None = None) -> Any:
        """Handle one event; never raises for bad input from the peer.

        Returns:
            A :class:`Response` for WebSocket events; for other events whatever the
            handler returned (a warm-up returns a small JSON object).
        """
        inv = invocation or Invocation()
        if isinstance(event, WarmUp):
            return self._handle_warmup(event, inv)
        if isinstance(event, Message):
            return self._handle_message(event, inv)
        if isinstance(event, Connect):
            return self._handle_connect(event, inv)
        if isinstance(event, HttpRequest):
            return self._handle_http(event, inv)
        if isinstance(event, Disconnect):
            ctx = Context(self, event, inv, DISCONNECT)
            handler = self.routes.get(DISCONNECT)
            if handler is not None:
                self._call(handler, ctx)
            ctx.log("disconnect", statusCode=event.status_code, reason=event.reason or None)
            return Response(200)
        kind = {WorkerTask: "worker", Scheduled: "schedule", ContactFlow: "contact_flow"}.get(
            type(event)
        )
        handler = self._special.get(kind or "")
        if handler is None:
            inv.log("unhandled", "error", event=type(event).__name__)
            raise ConfigurationError(f"no handler registered for {type(event).__name__} events")
        ctx = Context(self, event, inv, kind or "")
        return self._call(handler, ctx)

    def _handle_warmup(self, event: WarmUp, inv: Invocation) -> Any:
        from warmline.core.warmup import warmup_response

        ran = 0
        if not self._prewarmed:
            self._prewarmed = True
            self._prewarm_builtin()
            for hook in self.prewarm_hooks:
                self._resolve(hook())
                ran += 1
        inv.log(
            "warmup",
            warmup=True,
            source=event.source,
            invocation=event.invocation,
            concurrency=event.concurrency,
            cold=inv.cold,
            hooks=ran,
        )
        return warmup_response(event)

    def _prewarm_builtin(self) -> None:
        """Load what the first real message needs, so a warmed environment is fully warm:
        the relay messages, the session store (its connection) and the HTTP client module.
        """
        if self.protocol == "relay":
            import warmline.core.relay  # noqa: F401
        _ = self.store
        if self._connections_factory is _default_connections:
            # The @connections client's modules (socket; it no longer uses http.client,
            # whose ~20 ms this used to load for nothing) and, on AWS, ssl and the CA
            # bundle: paid here instead of by the first caller's first answer.
            import os
            import socket  # noqa: F401

            import warmline.connections.apigw  # noqa: F401

            if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and not os.environ.get(
                "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", ""
            ).startswith("http://"):
                import ssl

                ssl.create_default_context()

    def _handle_connect(self, event: Connect, inv: Invocation) -> Response:
        ctx = Context(self, event, inv, CONNECT)
        token = self.twilio_auth_token()
        if token:
            from warmline.twilio.signature import validate_handshake

            url = self.public_url or _handshake_url(event)
            try:
                validate_handshake(event.headers, url, token)
            except InvalidSignatureError as exc:
                ctx.log("signature_rejected", "warning", error=str(exc))
                return Response(403)
        handler = self.routes.get(CONNECT)
        result = self._call(handler, ctx) if handler is not None else None
        response = _connect_response(result)
        ctx.log(
            "connect",
            statusCode=response.status_code,
            cold=inv.cold,
            durationMs=round((inv.clock() - ctx._started) * 1000, 2),
        )
        return response

    def _handle_http(self, event: HttpRequest, inv: Invocation) -> Response:
        ctx = Context(self, event, inv, f"{event.method} {event.path}")
        by_method = self.http_routes.get(event.path)
        if by_method is None:
            response = Response(404, {"Content-Type": "text/plain"}, "not found")
        elif event.method not in by_method:
            allow = ", ".join(sorted(by_method))
            response = Response(405, {"Allow": allow, "Content-Type": "text/plain"}, "")
        else:
            response = _http_response(self._call(by_method[event.method], ctx))
        measured = {
            "statusCode": response.status_code,
            "cold": inv.cold,
            "durationMs": round((inv.clock() - ctx._started) * 1000, 2),
        }
        ctx.log("http", **{**measured, **ctx.fields})
        return response

    def _handle_message(self, event: Message, inv: Invocation) -> Response:
        ctx = Context(self, event, inv)
        started = ctx._started
        body = event.body
        if len(body) * 4 > MAX_MESSAGE_BYTES and len(body.encode()) > MAX_MESSAGE_BYTES:
            ctx.log("rejected", "warning", error="message over 128 KB", bytes=len(body.encode()))
            return Response(413)
        if self.protocol == "relay":
            from warmline.core.relay import parse_inbound

            try:
                for channel in self.channels:
                    translated = channel.inbound(body)
                    if translated is not None:
                        ctx.channel, body = channel, translated
                        ctx.fields["channel"] = channel.name
                        break
                ctx.message = parse_inbound(body)
            except (MalformedFrameError, FrameTooLargeError) as exc:
                ctx.log("malformed_frame", "warning", error=str(exc))
                return Response(400)
        ctx.route = self._route_for(event, ctx)
        # Session bookkeeping (create on setup, bump the turn on a final prompt or an
        # interrupt) happens whether or not the app handles that type itself: the turn
        # fence must move on every barge-in.
        try:
            self._before_relay(ctx)
            handler = self.routes.get(ctx.route)
            if handler is None:
                ctx.log("no_route", "warning", selected=ctx.route)
                return Response(404)
            result = self._call(handler, ctx)
            response = self._emit(ctx, result)
        except StoreError as exc:
            return self._store_failed(ctx, exc)
        measured = {
            "cold": inv.cold,
            "durationMs": round((inv.clock() - started) * 1000, 2),
            "sends": ctx.sends,
        }
        ctx.log("message", **{**measured, **ctx.fields})
        return response

    def _store_failed(self, ctx: Context, exc: StoreError) -> Response:
        """The store failed during a message: tell the caller, log it, answer 503.

        Nothing is half-written: each store write is one compare-and-set, and the one that
        failed did not happen. The caller hears :data:`STORE_APOLOGY` (through the
        message's channel, so a browser gets it as chat) and may say it again once the
        store is back; silence would be worse. Async work does not come here: it raises,
        so the platform's retries and dead-letter queue have it.
        """
        ctx.log("store_unavailable", "error", error=repr(exc), cold=ctx.invocation.cold)
        if self.protocol == "relay":
            from warmline.core.relay import Text

            try:
                if not ctx.send(Text(token=STORE_APOLOGY, last=True)):
                    ctx.log("apology_failed", "error", error="the caller is gone (410)")
            except Exception as post_exc:  # noqa: BLE001 - the apology is best effort
                ctx.log("apology_failed", "error", error=repr(post_exc))
        return Response(503)

    def _route_for(self, event: Message, ctx: Context) -> str:
        if event.route_key not in ("", DEFAULT) and event.route_key in self.routes:
            return event.route_key
        msg = ctx.message
        if msg is not None and self.selector.expression == "$request.body.type":
            kind = getattr(msg, "type", "")
            return kind if kind in self.routes and not kind.startswith("$") else DEFAULT
        return self.selector.select(event.body, self.routes)

    def _before_relay(self, ctx: Context) -> None:
        """Session bookkeeping the relay protocol needs before the handler runs."""
        msg = ctx.message
        kind = type(msg).__name__
        if kind == "Setup":
            self._create_session(ctx)
        elif kind == "Interrupt" or (kind == "Prompt" and getattr(msg, "last", True)):
            # A final prompt or a barge-in starts a new turn; work still streaming for
            # an older turn sees the bump and stops (turn fencing).
            ctx.update_session(lambda r: r.evolve(turn=r.turn + 1))

    def _create_session(self, ctx: Context) -> None:
        msg: Any = ctx.message
        conn = ctx.connection
        assert conn is not None
        record = SessionRecord(
            session_id=msg.session_id or conn.connection_id,
            connection_id=conn.connection_id,
            call_sid=msg.call_sid or None,
            data={"setup": {k: v for k, v in msg.raw.items() if k != "type"}},
        )
        try:
            ctx._session = self.store.put(record)
        except VersionConflictError:
            # A duplicate setup (redelivery): keep the record that is there.
            ctx._session = self.store.get(record.session_id)
        ctx._session_loaded = True

    def _emit(self, ctx: Context, result: Any) -> Response:
        """Send what a message handler returned or yielded."""
        if result is None:
            return Response(200)
        if isinstance(result, Response):
            return result
        if hasattr(result, "__aiter__"):
            self._run(self._drain_async(ctx, result))
        elif isinstance(result, str) and self.protocol == "relay":
            from warmline.core.relay import Text

            ctx.send(Text(token=result, last=True))
        elif isinstance(result, str | bytes | Mapping) or hasattr(result, "to_json"):
            ctx.send(result)
        elif isinstance(result, Iterable):
            for item in result:
                if not ctx.send(item):
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                    break
            ctx.end_stream()
        else:
            raise ConfigurationError(f"a route handler returned a {type(result).__name__}")
        return Response(200)

    async def _drain_async(self, ctx: Context, stream: Any) -> None:
        async for item in stream:
            if not ctx.send(item):
                await stream.aclose()
                break
        ctx.end_stream()

    def _call(self, handler: Handler, ctx: Context) -> Any:
        # A coroutine function returns an awaitable, run on the loop; a plain function's
        # result is used as is (so sync apps never import asyncio).
        return self._resolve(handler(ctx))

    def _resolve(self, value: Any) -> Any:
        if hasattr(value, "__await__"):
            return self._run(value)
        return value

    def _run(self, awaitable: Any) -> Any:
        """Run a coroutine on this thread's event loop (created on first need)."""
        loop = self._loops.get(get_ident())
        if loop is None:
            import asyncio

            loop = self._loops[get_ident()] = asyncio.new_event_loop()
        return loop.run_until_complete(awaitable)

    def close(self) -> None:
        """Close the event loops, if any were made (tests, servers; Lambda never calls
        this). Call it once no thread is handling an event."""
        loops, self._loops = self._loops, {}
        for loop in loops.values():
            loop.close()


def _handshake_url(event: Connect) -> str:
    conn = event.connection
    url = f"wss://{conn.domain_name}/{conn.stage}"
    if event.query:
        from urllib.parse import urlencode

        # surrogatepass: a lone surrogate from the event is a failed check, not a crash
        url += "?" + urlencode(dict(event.query), errors="surrogatepass")
    return url


def _http_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(204)
    if isinstance(result, str):
        kind = "text/xml" if result.lstrip().startswith("<") else "text/plain; charset=utf-8"
        return Response(200, {"Content-Type": kind}, result)
    if isinstance(result, Mapping | list):
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        return Response(200, {"Content-Type": "application/json"}, body)
    raise ConfigurationError(f"an HTTP handler returned a {type(result).__name__}")


def _connect_response(result: Any) -> Response:
    if result is None or result is True:
        return Response(200)
    if result is False:
        return Response(403)
    if isinstance(result, Response):
        return result
    if isinstance(result, int):
        return Response(result)
    raise ConfigurationError(f"$connect handler returned a {type(result).__name__}")
