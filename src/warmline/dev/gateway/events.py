"""API Gateway WebSocket Lambda proxy events, shaped as docs/protocols.md §2.2.

Pure builders: the caller passes the connection's facts and the time, so each event field
is testable. Ids look like AWS's (``R1kmxc2VNjMCFIA=``: base64 of 11 random bytes, 16
characters), because handlers log, store and URL-encode them and should meet the ``=``.

Headers are AWS's, not the socket's: ``$connect`` gets the handshake's headers without the
hop-by-hop ones (API Gateway terminates the upgrade), with ``X-Amzn-Trace-Id`` and
``X-Forwarded-Proto: https`` (clients reach API Gateway over TLS only); ``$disconnect`` gets
``Host`` and three fixed empty headers (``x-api-key``, ``X-Forwarded-For``, ``x-restapi``),
as recorded from AWS in aws-lambda-go's ``apigw-websocket-request-disconnect.json``. A
connection that passed a Lambda authorizer carries its result as ``requestContext.authorizer``
on every event (docs/protocols.md §8.6).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import getrandbits as _random_bits
from typing import Any

from warmline.config.selection import Part

__all__ = [
    "HOP_BY_HOP",
    "ConnectionInfo",
    "authorizer_event",
    "aws_id",
    "clf_time",
    "connect_event",
    "disconnect_event",
    "iso_time",
    "message_event",
    "select_route",
    "trace_id",
]

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
#: The fixed headers API Gateway adds to ``$disconnect`` after ``Host`` (docs/protocols.md §2.2).
_DISCONNECT_HEADERS = (("x-api-key", ""), ("X-Forwarded-For", ""), ("x-restapi", ""))
#: Connection-level headers (RFC 9110 §7.6.1) that end at API Gateway, lower case.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
    }
)


def aws_id() -> str:
    """A connection/request/message id in AWS's format (base64 of 11 random bytes).

    From the ``random`` module, not ``os.urandom``: ids need to be unique, not secret, and
    two are made per message (a system call each, otherwise).
    """
    return base64.b64encode(_random_bits(88).to_bytes(11, "big")).decode()


def trace_id(epoch_s: float) -> str:
    """An X-Ray trace header as API Gateway adds it: ``Root=1-{epoch hex}-{96 random bits}``."""
    return f"Root=1-{int(epoch_s):08x}-{_random_bits(96):024x}"


def clf_time(epoch_s: float) -> str:
    """``20/Jan/2024:11:54:57 +0000`` (the CLF ``requestTime``; formatted once a second)."""
    second = int(epoch_s)
    cached_second, cached = _last_clf[0]
    if cached_second == second:
        return cached
    t = time.gmtime(second)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    text = f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{clock} +0000"
    _last_clf[0] = (second, text)
    return text


_last_clf: list[tuple[int, str]] = [(-1, "")]


def iso_time(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds, as GetConnection returns (``...T11:54:57.419Z``)."""
    dt = datetime.fromtimestamp(epoch_s, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class ConnectionInfo:
    """What every event of one connection repeats.

    ``headers`` are the handshake's as API Gateway forwards them to ``$connect`` (see the
    module docstring); ``authorizer`` is the ``requestContext.authorizer`` of a connection
    that a Lambda authorizer let in (None: no authorizer); ``identity`` the
    ``requestContext.identity`` fields of an ``AWS_IAM``-authorized caller (None: none).
    """

    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str | None
    domain_name: str
    stage: str
    api_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)
    authorizer: dict[str, Any] | None = None
    identity: dict[str, str] | None = None


def _request_context(
    info: ConnectionInfo, route_key: str, event_type: str, now_s: float, request_id: str
) -> dict[str, Any]:
    context = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": clf_time(now_s),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": info.connected_at_ms,
        "requestTimeEpoch": int(now_s * 1000),
        "identity": (
            {"sourceIp": info.source_ip, "userAgent": info.user_agent}
            if info.identity is None
            else {**info.identity, "sourceIp": info.source_ip, "userAgent": info.user_agent}
        ),
        "requestId": request_id,
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": info.api_id,
    }
    if info.authorizer is not None:
        context["authorizer"] = info.authorizer
    return context


def _single_multi(
    pairs: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # last one wins, as API Gateway's single-value maps
        multi.setdefault(name, []).append(value)
    return single, multi


def connect_event(info: ConnectionInfo, now_s: float, request_id: str) -> dict[str, Any]:
    """The ``$connect`` event: handshake headers, query string, ``messageId: null``."""
    context = _request_context(info, "$connect", "CONNECT", now_s, request_id)
    context["messageId"] = None
    headers, multi_headers = _single_multi(info.headers)
    event: dict[str, Any] = {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if info.query:
        query, multi_query = _single_multi(info.query)
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = multi_query
    return event


def authorizer_event(
    info: ConnectionInfo,
    headers: Sequence[tuple[str, str]],
    method_arn: str,
    now_s: float,
    request_id: str,
) -> dict[str, Any]:
    """A Lambda REQUEST authorizer's event for ``$connect`` (docs/protocols.md §8.6).

    ``headers`` are the handshake's as the client sent them plus API Gateway's own
    (``Connection``/``Upgrade`` included, as AWS's example shows); the request context is
    the ``$connect`` one. The query maps are always present, empty without a query.
    """
    context = _request_context(info, "$connect", "CONNECT", now_s, request_id)
    context["messageId"] = None
    single, multi = _single_multi(headers)
    query, multi_query = _single_multi(info.query)
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": context,
    }


def message_event(
    info: ConnectionInfo,
    route_key: str,
    body: str,
    now_s: float,
    request_id: str,
    message_id: str,
) -> dict[str, Any]:
    """A MESSAGE event for ``$default`` or a custom route."""
    context = _request_context(info, route_key, "MESSAGE", now_s, request_id)
    context["messageId"] = message_id
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    info: ConnectionInfo, now_s: float, request_id: str, status_code: int, reason: str
) -> dict[str, Any]:
    """The ``$disconnect`` event: ``Host`` and AWS's fixed empty headers, no ``messageId``."""
    context = _request_context(info, "$disconnect", "DISCONNECT", now_s, request_id)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    host = next((v for k, v in info.headers if k.lower() == "host"), info.domain_name)
    headers, multi_headers = _single_multi([("Host", host), *_DISCONNECT_HEADERS])
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def select_route(body: str, selection: Sequence[Part], routes: Mapping[str, Any]) -> str | None:
    """The route key for a message (docs/protocols.md §2.1), or None when nothing matches.

    The parsed selection expression is evaluated against the JSON body (a path that is not
    there gives ``""``; values are stringified as AWS does); an exact match on a configured
    custom route key wins, else ``$default`` (if configured). A body that is not JSON
    always goes to ``$default``.
    """
    default = "$default" if "$default" in routes else None
    if not selection or (len(routes) <= 3 and all(k.startswith("$") for k in routes)):
        return default  # only $connect/$disconnect/$default: no body to parse
    try:
        document = json.loads(body)
    except ValueError:
        return default
    if len(selection) == 1:
        part = selection[0]
        key = part if isinstance(part, str) else _evaluate(document, part)
    else:
        key = "".join(p if isinstance(p, str) else _evaluate(document, p) for p in selection)
    if key in routes and not key.startswith("$"):
        return key
    return default


def _evaluate(document: Any, path: tuple[str | int, ...]) -> str:
    value = document
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return ""
    return _stringify(value)


def _stringify(value: Any) -> str:
    """A JSON value as the expression's text: ``true``, ``5``, ``[a, b]`` (AWS's form)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_stringify(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))  # [inf]: AWS does not say
    if value is None:
        return ""
    return str(value)
