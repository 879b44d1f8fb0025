"""What a route handler gets: the event, its typed message, the session, a way to send.

:class:`Context` is generic in the message type, so a handler registered with a typed
decorator reads its message without casts::

    @app.prompt
    def answer(ctx: Context[Prompt]) -> Iterator[str]:
        yield from tokens(ctx.message.voice_prompt)

A bare ``Context`` is ``Context[InboundMessage | None]``. The generic base exists only for
the type checker (``typing`` costs ~5 ms to import); at run time ``Context[Prompt]`` is
``Context``.

:class:`Invocation` carries what only the adapter knows: whether the environment is cold,
the deadline, a clock, the step logger.
"""

from __future__ import annotations

from warmline.core.events import Connect, ConnectionRef, ContactFlow, Disconnect, Event, Message
from warmline.core.session import SessionRecord, compare_and_set
from warmline.errors import ConfigurationError, ConnectionGoneError
from warmline.log import StepLogger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Generic, Protocol

    from typing_extensions import TypeVar

    from warmline.core.app import App
    from warmline.core.ports import ConnectionClient, SessionStore
    from warmline.core.relay import InboundMessage

    M = TypeVar("M", default=InboundMessage | None, covariant=True)

    class _Generic(Generic[M]):
        """The type checker's view of Context's base: generic in the message type."""

        __slots__ = ()

    class FrameTranslator(Protocol):
        """Another wire protocol served on the relay routes (see :meth:`App.channel`)."""

        name: str

        def inbound(self, body: str) -> str | None: ...

        def outbound(self, frame: bytes | str, ctx: Context[Any]) -> bytes | str | None: ...

else:
    M = None

    class _Generic:
        """At run time ``Context[X]`` is ``Context``: no ``typing`` on the hot path."""

        __slots__ = ()

        def __class_getitem__(cls, item: object) -> type:
            return cls


__all__ = ["CAS_ATTEMPTS", "Context", "Invocation"]

#: How many times a session write that lost a compare-and-set race is retried.
CAS_ATTEMPTS = 8


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


class Context(_Generic[M]):
    """Everything a route handler gets: the event, the session, and a way to send.

    Attributes:
        app: the App.
        event: the normalized event.
        route: the route key chosen.
        message: the parsed ConversationRelay message (relay protocol, message routes;
            the customer's turn on a contact flow); None elsewhere.
        gone: set once a send found the connection gone (410): stop working on this call.
        fields: extra fields for this step's log line (intent, hitCount, topScore, ...).
        sends: how many frames this invocation sent.
        channel: the translator of the channel this message came on (None: the app's
            protocol).
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
        self.message: M = None  # type: ignore[assignment]  # set by the App before the handler
        self.invocation = invocation
        self.gone = False
        self.fields: dict[str, Any] = {}
        self._session: SessionRecord | None = None
        self._session_loaded = False
        self._connections: ConnectionClient | None = None
        self._stream_open = False
        self._started = invocation.clock()
        self.sends = 0
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

    def elapsed_ms(self) -> float:
        """Milliseconds since this Context was made, by the invocation's clock."""
        return round((self.invocation.clock() - self._started) * 1000, 2)

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
        """This call's session record, read from the store once per invocation.

        A WebSocket call's record is found by its connection; a contact's by its
        ``InitialContactId``.
        """
        if not self._session_loaded:
            event = self.event
            conn = self.connection
            if conn is not None:
                self._session = self.store.by_connection(conn.connection_id)
            elif isinstance(event, ContactFlow):
                self._session = self.store.get(event.initial_contact_id)
            self._session_loaded = True
        return self._session

    def set_session(self, record: SessionRecord | None) -> None:
        """Make ``record`` this invocation's session (the App, after creating it)."""
        self._session = record
        self._session_loaded = True

    def update_session(
        self, change: Callable[[SessionRecord], SessionRecord]
    ) -> SessionRecord | None:
        """Apply ``change`` to this call's session with compare-and-set, retrying races.

        On a contact flow the adapter claimed a turn (``event.turn``): a write lands only
        while the session is still at that turn, so a late answer never rewrites a newer
        turn's history.

        Returns:
            The stored record, or None when the call has no session (no ``setup`` yet,
            or the record expired).
        """
        record = self.session
        if record is None:
            return None
        event = self.event
        fence = event.turn if isinstance(event, ContactFlow) and event.turn else None
        tries = [0]

        def apply(r: SessionRecord) -> SessionRecord:
            tries[0] += 1
            return change(r) if fence is None or r.turn == fence else r

        try:
            stored = compare_and_set(
                self.store, record.session_id, apply, attempts=CAS_ATTEMPTS, current=record
            )
        finally:
            self._count_retries(tries[0] - 1)
        if stored is not None and (fence is None or stored.turn == fence):
            self._session = stored
        return stored

    def _count_retries(self, retries: int) -> None:
        """Add a session write's lost compare-and-set races to this step's ``storeRetries``."""
        if retries > 0:
            self.fields["storeRetries"] = self.fields.get("storeRetries", 0) + retries

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
            self.fields["firstSendMs"] = self.elapsed_ms()
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
