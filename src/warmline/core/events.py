"""The normalized events the core handles, whatever delivered them.

An adapter (Lambda, the dev emulator, an ASGI server, a Connect flow) turns its raw input
into exactly one of these; the :class:`~warmline.core.app.App` never sees raw AWS shapes.
Events are frozen, slotted value objects (:class:`~warmline.core._struct.Struct`): they are
facts about the past.

========================  ===================================================================
``Connect``               API Gateway ``$connect`` (handshake headers and query string)
``Message``               a WebSocket message (``$default`` or a custom route)
``Disconnect``            ``$disconnect`` (best effort on AWS, docs/protocols.md §2.1)
``WarmUp``                a warm-up ping: EventBridge, serverless-plugin-warmup, lambda-warmer,
                          warmline's own call-tied pre-warm (docs/protocols.md §4.4)
``Scheduled``             an EventBridge scheduled event that is *not* a warm-up
``WorkerTask``            async work: Lambda ``Event`` invoke, SNS or SQS record
``ContactFlow``           an Amazon Connect contact-flow invocation (docs/protocols.md §4.5)
``HttpRequest``           an HTTP request (Twilio webhooks: the TwiML endpoint, ``action``)
========================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from warmline.core._struct import Struct, init_fields

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Connect",
    "ConnectionRef",
    "ContactFlow",
    "Disconnect",
    "Event",
    "Headers",
    "HttpRequest",
    "Message",
    "Scheduled",
    "WarmUp",
    "WorkerTask",
]


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive header mapping.

    API Gateway passes header names with the case the client sent (docs/protocols.md §2.2), so
    ``X-Twilio-Signature`` may arrive as ``x-twilio-signature``.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in (items or {}).items():
            self._items[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class ConnectionRef(Struct):
    """Where a WebSocket event came from: enough to answer through ``@connections``.

    Attributes:
        connection_id: API Gateway's connection id.
        domain_name: the API's domain (``abc.execute-api.REGION.amazonaws.com`` or custom).
        stage: the stage name.
        api_id: the API id.
        request_id: API Gateway's id for this request.
        connected_at_ms: epoch ms of the connect.
        request_time_ms: epoch ms of this request.
        source_ip: the client's IP.
        user_agent: the client's User-Agent.
    """

    __slots__ = (
        "connection_id",
        "domain_name",
        "stage",
        "api_id",
        "request_id",
        "connected_at_ms",
        "request_time_ms",
        "source_ip",
        "user_agent",
    )
    connection_id: str
    domain_name: str
    stage: str
    api_id: str
    request_id: str
    connected_at_ms: int
    request_time_ms: int
    source_ip: str
    user_agent: str

    def __init__(
        self,
        connection_id: str,
        domain_name: str = "",
        stage: str = "",
        api_id: str = "",
        request_id: str = "",
        connected_at_ms: int = 0,
        request_time_ms: int = 0,
        source_ip: str = "",
        user_agent: str = "",
    ) -> None:
        init_fields(
            self,
            connection_id=connection_id,
            domain_name=domain_name,
            stage=stage,
            api_id=api_id,
            request_id=request_id,
            connected_at_ms=connected_at_ms,
            request_time_ms=request_time_ms,
            source_ip=source_ip,
            user_agent=user_agent,
        )


class Connect(Struct):
    """``$connect``: the handshake. Returning non-2xx rejects it (docs/protocols.md §2.3)."""

    __slots__ = ("connection", "headers", "query")
    connection: ConnectionRef
    headers: Headers
    query: Mapping[str, str]

    def __init__(
        self,
        connection: ConnectionRef,
        headers: Headers | None = None,
        query: Mapping[str, str] | None = None,
    ) -> None:
        init_fields(
            self,
            connection=connection,
            headers=headers if headers is not None else Headers(),
            query=query if query is not None else {},
        )


class Message(Struct):
    """A WebSocket message.

    Attributes:
        connection: where it came from.
        body: the raw message text (API Gateway delivers text; binary closes with 1003).
        route_key: the route API Gateway chose (``$default`` or a custom key), if any.
        message_id: API Gateway's message id.
    """

    __slots__ = ("connection", "body", "route_key", "message_id")
    connection: ConnectionRef
    body: str
    route_key: str
    message_id: str

    def __init__(
        self,
        connection: ConnectionRef,
        body: str,
        route_key: str = "$default",
        message_id: str = "",
    ) -> None:
        init_fields(
            self, connection=connection, body=body, route_key=route_key, message_id=message_id
        )


class Disconnect(Struct):
    """``$disconnect``: the socket is already closed; posting to it gets 410."""

    __slots__ = ("connection", "status_code", "reason")
    connection: ConnectionRef
    status_code: int | None
    reason: str

    def __init__(
        self, connection: ConnectionRef, status_code: int | None = None, reason: str = ""
    ) -> None:
        init_fields(self, connection=connection, status_code=status_code, reason=reason)


class WarmUp(Struct):
    """A warm-up ping. Never reaches a route handler or the session store.

    Attributes:
        source: ``aws.events``, ``serverless-plugin-warmup``, ``lambda-warmer``,
            ``warmline`` (call-tied pre-warm) or ``input`` (a configured constant input).
        concurrency: how many environments the pinger wants warm (lambda-warmer fan-out).
        invocation: this ping's index within the fan-out (1-based).
        correlation_id: lambda-warmer's correlation id, if any.
        raw: the original payload.
    """

    __slots__ = ("source", "concurrency", "invocation", "correlation_id", "raw")
    source: str
    concurrency: int
    invocation: int
    correlation_id: str
    raw: Any

    def __init__(
        self,
        source: str,
        concurrency: int = 1,
        invocation: int = 1,
        correlation_id: str = "",
        raw: Any = None,
    ) -> None:
        init_fields(
            self,
            source=source,
            concurrency=concurrency,
            invocation=invocation,
            correlation_id=correlation_id,
            raw=raw,
        )


class Scheduled(Struct):
    """An EventBridge scheduled event that is not a warm-up (docs/protocols.md §4.1)."""

    __slots__ = ("rule_arns", "time", "raw")
    rule_arns: tuple[str, ...]
    time: str
    raw: Mapping[str, Any]

    def __init__(self, rule_arns: tuple[str, ...], time: str, raw: Mapping[str, Any]) -> None:
        init_fields(self, rule_arns=rule_arns, time=time, raw=raw)


class WorkerTask(Struct):
    """Work handed to a worker function (docs/protocols.md §3.4, §4.2, §4.3).

    Attributes:
        payload: the dispatched JSON object.
        delivery: ``invoke`` (Lambda async), ``sns`` or ``sqs``.
        message_id: the delivery's id (SQS messageId, SNS MessageId), for partial failures.
        attempt: SQS ApproximateReceiveCount, else 1.
    """

    __slots__ = ("payload", "delivery", "message_id", "attempt")
    payload: Mapping[str, Any]
    delivery: str
    message_id: str
    attempt: int

    def __init__(
        self,
        payload: Mapping[str, Any],
        delivery: str = "invoke",
        message_id: str = "",
        attempt: int = 1,
    ) -> None:
        init_fields(
            self, payload=payload, delivery=delivery, message_id=message_id, attempt=attempt
        )


class ContactFlow(Struct):
    """An Amazon Connect contact-flow invocation (docs/protocols.md §4.5).

    Attributes:
        contact_id: ``ContactData.ContactId``.
        initial_contact_id: ``InitialContactId`` (else ``contact_id``): the session key,
            kept across transfers.
        parameters: the block's parameters (string values only).
        contact_data: ``Details.ContactData`` as sent.
        message: the customer's turn as a relay message: a ``Prompt`` (words), a
            ``Dtmf`` (keys) or None (no input); the Connect adapter reads it from the
            parameters it is configured with.
        turn: the session turn the adapter claimed for this request (0: none); the
            handler's session writes are fenced to it.
    """

    __slots__ = (
        "contact_id",
        "initial_contact_id",
        "parameters",
        "contact_data",
        "message",
        "turn",
    )
    contact_id: str
    initial_contact_id: str
    parameters: Mapping[str, str]
    contact_data: Mapping[str, Any]
    message: Any
    turn: int

    def __init__(
        self,
        contact_id: str,
        initial_contact_id: str,
        parameters: Mapping[str, str],
        contact_data: Mapping[str, Any],
        message: Any = None,
        turn: int = 0,
    ) -> None:
        init_fields(
            self,
            contact_id=contact_id,
            initial_contact_id=initial_contact_id,
            parameters=parameters,
            contact_data=contact_data,
            message=message,
            turn=turn,
        )


class HttpRequest(Struct):
    """An HTTP request: Lambda function URL, API Gateway HTTP/REST API, or a local server.

    Attributes:
        method: upper-case HTTP method.
        path: the path as the client requested it (without the query string).
        url: the full public URL, as the client (Twilio) requested it; signatures cover it.
        headers: case-insensitive headers.
        query: query-string parameters (last value wins).
        body: the raw body.
        source_ip: the client's address.
    """

    __slots__ = ("method", "path", "url", "headers", "query", "body", "source_ip")
    method: str
    path: str
    url: str
    headers: Headers
    query: Mapping[str, str]
    body: bytes
    source_ip: str

    def __init__(
        self,
        method: str,
        path: str,
        url: str,
        headers: Headers | None = None,
        query: Mapping[str, str] | None = None,
        body: bytes = b"",
        source_ip: str = "",
    ) -> None:
        init_fields(
            self,
            method=method,
            path=path,
            url=url,
            headers=headers if headers is not None else Headers(),
            query=query if query is not None else {},
            body=body,
            source_ip=source_ip,
        )

    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields (last value wins)."""
        from urllib.parse import parse_qsl

        text = self.body.decode("utf-8", errors="replace")
        return dict(parse_qsl(text, keep_blank_values=True))


Event = Connect | Message | Disconnect | WarmUp | Scheduled | WorkerTask | ContactFlow | HttpRequest
