"""API Gateway WebSocket Lambda proxy events, shaped as docs/protocols.md §2.2.

Pure builders: the caller passes the connection's facts and the time, so each event field
is testable. Ids look like AWS's (``R1kmxc2VNjMCFIA=``: base64 of 11 random bytes, 16
characters), because handlers log, store and URL-encode them and should meet the ``=``.
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

__all__ = [
    "ConnectionInfo",
    "aws_id",
    "clf_time",
    "connect_event",
    "disconnect_event",
    "iso_time",
    "message_event",
    "select_route",
]

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
#: Headers API Gateway sends with ``$disconnect`` (docs/protocols.md §2.2: a small set).
_DISCONNECT_HEADERS = ("Host", "x-api-key", "X-Forwarded-For", "x-restapi")


def aws_id() -> str:
    """A connection/request/message id in AWS's format (base64 of 11 random bytes).

    From the ``random`` module, not ``os.urandom``: ids need to be unique, not secret, and
    two are made per message (a system call each, otherwise).
    """
    return base64.b64encode(_random_bits(88).to_bytes(11, "big")).decode()


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
    """What every event of one connection repeats."""

    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str | None
    domain_name: str
    stage: str
    api_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    query: list[tuple[str, str]] = field(default_factory=list)


def _request_context(
    info: ConnectionInfo, route_key: str, event_type: str, now_s: float, request_id: str
) -> dict[str, Any]:
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": clf_time(now_s),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": info.connected_at_ms,
        "requestTimeEpoch": int(now_s * 1000),
        "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
        "requestId": request_id,
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": info.api_id,
    }


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
    """The ``$disconnect`` event: a small header set, no ``messageId``."""
    context = _request_context(info, "$disconnect", "DISCONNECT", now_s, request_id)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    wanted = {h.lower() for h in _DISCONNECT_HEADERS}
    pairs = [(k, v) for k, v in info.headers if k.lower() in wanted]
    headers, multi_headers = _single_multi(pairs)
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def select_route(body: str, path: Sequence[str], routes: Mapping[str, Any]) -> str | None:
    """The route key for a message (docs/protocols.md §2.1), or None when nothing matches.

    The expression's value is looked up in the JSON body and stringified; an exact match on
    a configured route key wins, else ``$default`` (if configured).
    """
    value: Any
    if not path or (len(routes) <= 3 and all(k.startswith("$") for k in routes)):
        # Only $connect/$disconnect/$default: nothing to select, no body to parse.
        return "$default" if "$default" in routes else None
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if value is not None and not isinstance(value, dict | list):
        key = _stringify(value)
        if key in routes and not key.startswith("$"):
            return key
    return "$default" if "$default" in routes else None


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
