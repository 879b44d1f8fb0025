"""The ``@connections`` management API (docs/protocols.md §2.4), as boto3 expects it.

``POST/GET/DELETE /{stage}/@connections/{id}`` with AWS's statuses and the error type in
``x-amzn-ErrorType`` (botocore's rest-json parser reads the code from it), so
``boto3.client("apigatewaymanagementapi", endpoint_url=...)`` works unchanged.

As on AWS, every request is authenticated before anything else is looked at
(docs/protocols.md §8.5): its SigV4 signature must be valid for the keys of a function (or
the developer) of this emulator (``UnrecognizedClientException`` for unknown keys or a wrong
session token, ``InvalidSignatureException`` for a wrong secret or a stale ``X-Amz-Date``),
and the caller's role must allow ``execute-api:ManageConnections`` on
``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/@connections/{connectionId}``
(``AccessDeniedException`` otherwise, with AWS's message). Only then come 410/413/429.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from warmline.dev.gateway.events import iso_time
from warmline.dev.gateway.http import DROP, Request, Response, json_response
from warmline.dev.gateway.signed import authenticate
from warmline.dev.iam import connections_resource

if TYPE_CHECKING:
    from warmline.dev.gateway.gateway import Gateway
    from warmline.dev.gateway.websocket import WebSocketConnection

__all__ = ["handle", "handle_with_faults"]

#: The answer to a delivered post (one shared object: it is the hot path's response).
OK = Response(200)
#: AWS answers a gone connection with an empty body (SDKs report no message: boto3 an
#: empty one, the Java SDK ``null``, the PHP SDK "Unable to parse error information").
GONE = Response(
    410, b"", [("Content-Type", "application/json"), ("x-amzn-ErrorType", "GoneException")]
)
#: Close code/reason when DeleteConnection closes a socket [inf: AWS's are unpublished].
DELETE_CLOSE_CODE = 1000
DELETE_CLOSE_REASON = ""


def _error(status: int, error_type: str, message: str | None) -> Response:
    return json_response(status, {"message": message}, [("x-amzn-ErrorType", error_type)])


def handle(gateway: Gateway, request: Request, connection_id: str) -> Response:
    """Serve one ``@connections`` request.

    Args:
        gateway: holds the open connections and limits.
        request: the HTTP request.
        connection_id: the percent-decoded id from the path.
    """
    ws = gateway.connections.get(connection_id)
    refused = _refusal(gateway, request, ws)
    if refused is not None:
        return refused
    assert ws is not None
    if request.method == "GET":
        return json_response(
            200,
            {
                "connectedAt": iso_time(ws.connected_at),
                "identity": {"sourceIp": ws.info.source_ip, "userAgent": ws.info.user_agent},
                "lastActiveAt": iso_time(ws.last_active_at),
            },
        )
    if request.method == "DELETE":
        ws.close(DELETE_CLOSE_CODE, DELETE_CLOSE_REASON)
        return Response(204)
    data = request.body
    if ws.write_buffer_size() > gateway.config.limits.write_buffer_limit_bytes:
        return _error(429, "LimitExceededException", "Client buffer is full")
    try:
        data.decode()
    except UnicodeDecodeError:
        ws.post(data, text=False)
    else:
        ws.post(data, text=True)  # the checked bytes as they are: no decode/encode round trip
    return OK


#: ``x-amzn-ErrorType`` of each way a signature fails (docs/protocols.md §8.5).
_REJECTED_TYPES = {
    "incomplete": "IncompleteSignatureException",
    "unrecognized": "UnrecognizedClientException",
    "scope": "InvalidSignatureException",
    "expired": "InvalidSignatureException",
    "mismatch": "InvalidSignatureException",
}


def _refusal(gateway: Gateway, request: Request, ws: WebSocketConnection | None) -> Response | None:
    """AWS's answer to a request that cannot act at all (unsigned, badly signed, not
    allowed, wrong method, the connection gone, a post over the size limit), or None."""
    if request.method not in ("POST", "GET", "DELETE") or not request.header("Authorization"):
        return _error(403, "ForbiddenException", "Missing Authentication Token")
    denied = authenticate(
        gateway,
        request,
        service="execute-api",
        action="execute-api:ManageConnections",
        resource=connections_resource(gateway.config, request.method),
        rejected_types=_REJECTED_TYPES,
    )
    if denied is not None:
        return denied
    if ws is None or not ws.open:
        return GONE
    if request.method == "POST" and len(request.body) > gateway.config.limits.max_post_bytes:
        return _error(413, "PayloadTooLargeException", "Message too long")
    return None


async def handle_with_faults(gateway: Gateway, request: Request, connection_id: str) -> Response:
    """:func:`handle` with the ``connections.*`` and ``client.abort`` faults applied.

    Only POSTs to an open connection, correctly addressed, are chances: a fault never
    hides a 403/410/413 the caller's code must handle anyway. Dropped, throttled and
    failed posts deliver nothing, so a retry that succeeds delivers exactly once.
    """
    faults = gateway.faults
    ws = gateway.connections.get(connection_id)
    if (
        faults is None
        or ws is None
        or request.method != "POST"
        or _refusal(gateway, request, ws) is not None
    ):
        return handle(gateway, request, connection_id)
    if faults.fire("connections.drop", detail=connection_id):
        return DROP
    if faults.fire("connections.throttle", detail=connection_id):
        return _error(429, "LimitExceededException", "Rate exceeded")
    if faults.fire("connections.error", detail=connection_id):
        return _error(500, "InternalServerErrorException", "Internal server error")
    delay = faults.fire("connections.delay", detail=connection_id)
    if delay is not None:
        await asyncio.sleep(delay.ms / 1000.0)
    response = handle(gateway, request, connection_id)
    if response.status == 200 and faults.fire("client.abort", detail=connection_id):
        ws.abort()
    return response
