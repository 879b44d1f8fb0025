"""The App: route registration and dispatch of normalized events, with no I/O of its own.

Adapters (Lambda, the dev emulator, ASGI, Amazon Connect) turn raw input into a
normalized event (:mod:`warmline.core.events`) and call :meth:`App.handle` with an
:class:`Invocation` that carries what only they know: whether this environment is cold,
how much time is left, a clock, the step logger. Everything that is I/O goes through the
ports (:mod:`warmline.core.ports`), which the App gets from its constructor or, for the
rest, from the :class:`~warmline.core.wiring.Wiring` an adapter composes
(:meth:`App.compose`). The App never reads the environment, picks a backend or owns an
event loop.

Where each event goes:

- ``WarmUp``: the pre-warm (once per environment), never a handler or the store.
- ``Message``: :mod:`warmline.core.conversation` (parse, route, session, emit).
- ``Connect``, ``HttpRequest``: :mod:`warmline.core.http` (signature check, responses).
- ``Disconnect``, ``WorkerTask``, ``Scheduled``, ``ContactFlow``: their one handler.

Handlers may be plain functions or coroutines and may return generators or async
generators of tokens; coroutines run on the wired :class:`~warmline.core.ports.Runner`, so
a sync app never loads ``asyncio`` (~30 ms to import).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from warmline.core.context import Context, Invocation
from warmline.core.conversation import STORE_APOLOGY, handle_message
from warmline.core.events import (
    Connect,
    ContactFlow,
    Disconnect,
    Event,
    HttpRequest,
    Message,
    Scheduled,
    WarmUp,
    WorkerTask,
)
from warmline.core.http import Response, handle_connect, handle_http
from warmline.core.routing import CONNECT, DEFAULT, DISCONNECT, RouteSelector, check_route_key
from warmline.core.session import DEFAULT_TTL_S
from warmline.errors import ConfigurationError

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, TypeVar

    from warmline.core.context import FrameTranslator
    from warmline.core.events import ConnectionRef
    from warmline.core.ports import (
        ConnectionClient,
        ConnectionsFactory,
        Runner,
        SessionStore,
        SignatureCheck,
        StepLog,
        StoreFactory,
    )
    from warmline.core.relay import Dtmf, Error, InboundMessage, Info, Interrupt, Prompt, Setup
    from warmline.core.wiring import Wiring

    R = TypeVar("R")
    Handler = Callable[[Context[Any]], Any]
    F = TypeVar("F", bound=Callable[..., Any])
    UserConnections = Callable[[ConnectionRef], ConnectionClient]

__all__ = ["STORE_APOLOGY", "App", "Context", "FlowReply", "Invocation", "Response"]


class FlowReply:
    """What a ``@app.contact_flow`` handler said, for the Connect adapter to flatten.

    Attributes:
        items: the frames and strings the handler returned or yielded, in order.
        fields: the handler's log fields (``intent``, ``answered``, ...).
        session: the contact's session as the handler left it.
    """

    __slots__ = ("items", "fields", "session")

    def __init__(self, items: list[Any], fields: dict[str, Any], session: Any) -> None:
        self.items = items
        self.fields = fields
        self.session = session


class App:
    """A voice/chat WebSocket application: routes plus the ports they use.

    Args:
        protocol: ``"relay"`` (Twilio ConversationRelay frames, parsed and validated) or
            ``"raw"`` (message bodies as text).
        route_selection_expression: API Gateway's ``$request.body.<path>``.
        store: a SessionStore, or a zero-argument factory (default: the composed one;
            ``lambda_handler`` composes what ``WARMLINE_STORE`` names, SQLite by default).
        connections: factory of ConnectionClient per connection (default: the composed
            one, the ``@connections`` HTTP client for the event's domain and stage).
        twilio_auth_token: the key of the X-Twilio-Signature checks on ``$connect`` and the
            Twilio webhooks; a str or a zero-argument callable (read the secret lazily,
            e.g. :func:`warmline.secrets.secret_getter`). Default: the composed one
            (``TWILIO_AUTH_TOKEN``, or its SSM parameter or Secrets Manager secret). An
            empty token is no token.
        allow_unsigned: what happens when there is no token. False (the default, also
            when None and the wiring does not opt out): ``$connect`` and the Twilio
            webhooks are refused with 403 and an ``unsigned_refused`` log line (fail
            closed). True: they are accepted unsigned, for local development and
            channels nobody signs (the browser softphone under ``warmline dev``).
            Signatures are always checked when a token is configured.
        public_url: the ``wss://`` URL exactly as in the TwiML (signatures are over it);
            default ``wss://{domainName}/{stage}`` plus the query string.
        session_ttl_s: TTL of session records.
        name: shows up in logs.
        signature_check: checks handshakes (default: the composed one, Twilio's).
        runner: runs coroutines (default: the composed one, an event loop per thread).
    """

    def __init__(
        self,
        *,
        protocol: Literal["relay", "raw"] = "relay",
        route_selection_expression: str = "$request.body.type",
        store: SessionStore | StoreFactory | None = None,
        connections: UserConnections | None = None,
        twilio_auth_token: str | Callable[[], str | None] | None = None,
        public_url: str | None = None,
        session_ttl_s: int = DEFAULT_TTL_S,
        name: str = "warmline",
        signature_check: SignatureCheck | None = None,
        runner: Runner | None = None,
        allow_unsigned: bool | None = None,
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
        self._connections_arg = connections
        self._twilio_auth_token = twilio_auth_token
        self._allow_unsigned = allow_unsigned
        self._signature_check = signature_check
        self._runner = runner
        self._wiring: Wiring | None = None
        self.public_url = public_url
        self.session_ttl_s = session_ttl_s
        self.name = name
        self._prewarmed = False

    # --- registration ------------------------------------------------------------------
    def route(self, key: str) -> Callable[[F], F]:
        """Decorator: handle messages whose route key is ``key``."""
        check_route_key(key)

        def register(fn: F) -> F:
            if key in self.routes:
                raise ConfigurationError(f"route {key!r} is already handled by {self.routes[key]}")
            self.routes[key] = fn
            return fn

        return register

    on = route

    def setup(self, fn: Callable[[Context[Setup]], R]) -> Callable[[Context[Setup]], R]:
        """Decorator: handle ConversationRelay ``setup`` (the call's first message)."""
        return self._typed("setup", fn)

    def prompt(self, fn: Callable[[Context[Prompt]], R]) -> Callable[[Context[Prompt]], R]:
        """Decorator: handle ``prompt`` (what the caller said; partial unless ``last``)."""
        return self._typed("prompt", fn)

    def dtmf(self, fn: Callable[[Context[Dtmf]], R]) -> Callable[[Context[Dtmf]], R]:
        """Decorator: handle ``dtmf`` (a key the caller pressed)."""
        return self._typed("dtmf", fn)

    def interrupt(self, fn: Callable[[Context[Interrupt]], R]) -> Callable[[Context[Interrupt]], R]:
        """Decorator: handle ``interrupt`` (the caller talked over the answer)."""
        return self._typed("interrupt", fn)

    def info(self, fn: Callable[[Context[Info]], R]) -> Callable[[Context[Info]], R]:
        """Decorator: handle ``info`` (Twilio's speaker, tokens-played, latency events)."""
        return self._typed("info", fn)

    def error(self, fn: Callable[[Context[Error]], R]) -> Callable[[Context[Error]], R]:
        """Decorator: handle ``error`` (Twilio reports a problem, e.g. a dropped frame)."""
        return self._typed("error", fn)

    def _typed(self, kind: str, fn: F) -> F:
        """Register a typed relay route: its messages are always of that type."""
        if self.protocol != "relay" or self.selector.expression != "$request.body.type":
            raise ConfigurationError(
                f"@app.{kind} needs protocol='relay' and routes by $request.body.type; "
                f"use @app.route({kind!r})"
            )
        return self.route(kind)(fn)

    def connect(self, fn: F) -> F:
        """Decorator: handle ``$connect``; return a Response, a status or False to reject."""
        return self.route(CONNECT)(fn)

    def disconnect(self, fn: F) -> F:
        """Decorator: handle ``$disconnect`` (best effort on AWS; the socket is closed)."""
        return self.route(DISCONNECT)(fn)

    def default(
        self, fn: Callable[[Context[InboundMessage | None]], R]
    ) -> Callable[[Context[InboundMessage | None]], R]:
        """Decorator: handle messages no other route matches."""
        return self.route(DEFAULT)(fn)

    def http(self, path: str, methods: tuple[str, ...] = ("POST",)) -> Callable[[F], F]:
        """Decorator: handle HTTP requests to ``path`` (e.g. Twilio's TwiML webhook).

        The handler returns a :class:`Response`, a ``str`` (sent as ``text/xml`` when it
        starts with ``<``, else ``text/plain``) or a JSON-serialisable ``dict``.
        """
        if not path.startswith("/"):
            raise ConfigurationError(f"an HTTP path must start with '/': {path!r}")

        def register(fn: F) -> F:
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

    def prewarm(self, fn: Callable[[], R]) -> Callable[[], R]:
        """Decorator: run ``fn`` on the first warm-up ping of an environment.

        Use it to import heavy modules or open connections before a real call needs them.
        """
        self.prewarm_hooks.append(fn)
        return fn

    def worker(self, fn: F) -> F:
        """Decorator: handle async work (Lambda Event invoke, SNS, SQS)."""
        self._special["worker"] = fn
        return fn

    def schedule(self, fn: F) -> F:
        """Decorator: handle EventBridge scheduled events that are not warm-ups."""
        self._special["schedule"] = fn
        return fn

    def contact_flow(
        self, fn: Callable[[Context[Prompt | Dtmf | None]], R]
    ) -> Callable[[Context[Prompt | Dtmf | None]], R]:
        """Decorator: handle Amazon Connect contact-flow invocations.

        ``ctx.message`` is the customer's turn (a ``Prompt``, a ``Dtmf``, or None when
        the block sent neither) and ``ctx.session`` the contact's record. Return what a
        relay route returns (text and end frames, tokens); the Connect adapter turns it
        into the flow's flat map. A ``dict`` is returned to the flow as it is.
        """
        self._special["contact_flow"] = fn
        return fn

    def handles(self, kind: str) -> bool:
        """True when a ``worker``, ``schedule`` or ``contact_flow`` handler is registered."""
        return kind in self._special

    # --- ports -------------------------------------------------------------------------
    def compose(self, wiring: Wiring) -> App:
        """Take the ports this App was not given from ``wiring`` (the adapter's edge).

        Constructor arguments win; a later ``compose`` replaces the earlier wiring.

        Returns:
            The App, for chaining.
        """
        self._wiring = wiring
        return self

    def _port(self, name: str) -> Any:
        """The composed Wiring's ``name`` (None before any composition)."""
        return getattr(self._wiring, name) if self._wiring is not None else None

    @property
    def composed(self) -> bool:
        """True once an adapter (or the caller) composed this App with a Wiring."""
        return self._wiring is not None

    @property
    def store(self) -> SessionStore:
        """The session store, created on first use."""
        if self._store is not None:
            return self._store
        arg = self._store_arg if self._store_arg is not None else self._port("store")
        if arg is None:
            raise ConfigurationError(
                "this App has no session store: pass App(store=...) or serve it through an "
                "adapter (lambda_handler, AsgiApp, connect_handler), which composes one"
            )
        store: SessionStore = arg() if callable(arg) and not hasattr(arg, "put") else arg  # type: ignore[assignment]
        wrap = self._port("store_wrapper")
        self._store = wrap(store) if wrap is not None else store
        return self._store

    def connections_for(self, ref: ConnectionRef, log: StepLog | None = None) -> ConnectionClient:
        """The ConnectionClient for ``ref``'s API and stage.

        Args:
            ref: the connection.
            log: the invocation's step logger; the composed ``@connections`` client logs
                its retries and reconnects there.
        """
        if self._connections_arg is not None:
            return self._connections_arg(ref)
        factory: ConnectionsFactory | None = self._port("connections")
        if factory is None:
            raise ConfigurationError(
                "this App has no ConnectionClient: pass App(connections=...) or serve it "
                "through an adapter, which composes one"
            )
        return factory(ref, log)

    def use_connections(self, factory: UserConnections) -> None:
        """Replace the ConnectionClient factory: an adapter that owns the sockets itself
        (the ASGI server) sends on them directly instead of through ``@connections``."""
        self._connections_arg = factory

    def twilio_auth_token(self) -> str | None:
        """The Twilio auth token, or None when none is configured ("" counts as none).

        Raises:
            ConfigurationError: the token's source is configured but cannot be read (an
                SSM parameter or Secrets Manager secret); callers refuse the request.
        """
        token = self._twilio_auth_token
        if token is None:
            token = self._port("twilio_auth_token")
        value = token() if callable(token) else token
        return value or None

    @property
    def allow_unsigned(self) -> bool:
        """True when unsigned Twilio traffic is accepted while no token is configured: the
        constructor's ``allow_unsigned``, else the wiring's, else False (fail closed)."""
        if self._allow_unsigned is not None:
            return self._allow_unsigned
        return bool(self._port("allow_unsigned"))

    @property
    def signature_check(self) -> SignatureCheck | None:
        """What checks ``$connect`` handshakes when a token is set."""
        return self._signature_check or self._port("signature_check")

    @property
    def runner(self) -> Runner | None:
        """What runs handlers' coroutines."""
        return self._runner or self._port("runner")

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
            import json

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
            A :class:`Response` for WebSocket and HTTP events; a :class:`FlowReply` (or
            the handler's dict) for a contact flow; for other events whatever the handler
            returned (a warm-up returns a small JSON object).
        """
        inv = invocation or Invocation()
        if isinstance(event, WarmUp):
            return self._handle_warmup(event, inv)
        if isinstance(event, Message):
            return handle_message(self, event, inv)
        if isinstance(event, Connect):
            return handle_connect(self, event, inv)
        if isinstance(event, HttpRequest):
            return handle_http(self, event, inv)
        if isinstance(event, Disconnect):
            ctx: Context[None] = Context(self, event, inv, DISCONNECT)
            handler = self.routes.get(DISCONNECT)
            if handler is not None:
                self.call(handler, ctx)
            ctx.log("disconnect", statusCode=event.status_code, reason=event.reason or None)
            return Response(200)
        kind = {WorkerTask: "worker", Scheduled: "schedule", ContactFlow: "contact_flow"}.get(
            type(event), ""
        )
        handler = self._special.get(kind)
        if handler is None:
            inv.log("unhandled", "error", event=type(event).__name__)
            raise ConfigurationError(f"no handler registered for {type(event).__name__} events")
        if isinstance(event, ContactFlow):
            return self._handle_contact_flow(event, inv, handler)
        return self.call(handler, Context(self, event, inv, kind))

    def _handle_contact_flow(self, event: ContactFlow, inv: Invocation, handler: Handler) -> Any:
        ctx: Context[Any] = Context(self, event, inv, "contact_flow")
        ctx.message = event.message
        result = self.call(handler, ctx)
        if isinstance(result, Mapping):
            return result
        if result is None:
            items: list[Any] = []
        elif hasattr(result, "__aiter__"):
            items = self.run(_collect(result))
        elif isinstance(result, str | bytes) or hasattr(result, "to_json"):
            items = [result]
        else:
            items = list(result)
        return FlowReply(items, ctx.fields, ctx.session)

    def _handle_warmup(self, event: WarmUp, inv: Invocation) -> Any:
        from warmline.core.warmup import warmup_response

        ran = 0
        if not self._prewarmed:
            self._prewarmed = True
            self._prewarm_ports()
            for hook in self.prewarm_hooks:
                self.resolve(hook())
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

    def _prewarm_ports(self) -> None:
        """Load what the first real message needs, so a warmed environment is fully warm:
        the relay messages, the session store (its connection) and, when the composed
        ``@connections`` client is the one in use, its modules (the wiring's pre-warm)."""
        if self.protocol == "relay":
            import warmline.core.relay  # noqa: F401
        _ = self.store
        prewarm = self._port("prewarm")
        if self._connections_arg is None and prewarm is not None:
            prewarm()

    def call(self, handler: Handler, ctx: Context[Any]) -> Any:
        """Run ``handler``; a coroutine it returns runs on the runner, a plain result is
        used as is (so sync apps never need a loop)."""
        return self.resolve(handler(ctx))

    def resolve(self, value: Any) -> Any:
        """``value``, or its result when it is awaitable."""
        if hasattr(value, "__await__"):
            return self.run(value)
        return value

    def run(self, awaitable: Any) -> Any:
        """Run a coroutine to completion on the wired runner.

        Raises:
            ConfigurationError: no runner is wired (the coroutine is closed unrun).
        """
        runner = self.runner
        if runner is None:
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
            raise ConfigurationError(
                "a handler returned a coroutine and this App has no runner: pass "
                "App(runner=...) or serve it through an adapter, which composes one"
            )
        return runner.run(awaitable)

    def close(self) -> None:
        """Close the runner's event loops, if any were made (tests, servers; Lambda never
        calls this). Call it once no thread is handling an event."""
        runner = self.runner
        if runner is not None:
            runner.close()


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]
