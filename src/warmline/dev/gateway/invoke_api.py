"""The Lambda Invoke API: ``POST /2015-03-31/functions/{name}/invocations``.

So ``boto3.client("lambda", endpoint_url=...)`` (offload dispatchers, warm-up pings, tests)
works against the emulator: ``X-Amz-Invocation-Type`` RequestResponse (200 + payload;
a function error is still 200 with ``X-Amz-Function-Error: Unhandled``), Event (202, queued
on the async bus with AWS's retries, docs/protocols.md §3.4) and DryRun (204); an unknown
function is 404 ``ResourceNotFoundException``. ``X-Amz-Client-Context`` is base64 JSON.

Before anything else, as on AWS, the request's SigV4 signature (service ``lambda``) must
be valid for a function's or the developer's keys (403 ``UnrecognizedClientException`` /
``InvalidSignatureException`` / ``MissingAuthenticationTokenException``), and the caller
must be allowed ``lambda:InvokeFunction`` on the function's ARN, qualified when the request
names a qualifier (403 ``AccessDeniedException``; docs/protocols.md §8.5).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from warmline.dev.gateway.http import Request, Response, json_response
from warmline.dev.gateway.signed import authenticate
from warmline.dev.iam import function_resource

if TYPE_CHECKING:
    from warmline.dev.gateway.gateway import Gateway
    from warmline.dev.runtime import InvokeResult

__all__ = ["function_name", "handle", "qualifier"]

#: Largest synchronous request/response payload (6 MB) and async payload (1 MB) (§3.4).
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024


def function_name(raw: str) -> str:
    """The function name from a name, ``name:qualifier`` or an ARN."""
    if raw.startswith("arn:"):
        parts = raw.split(":")
        return parts[6] if len(parts) > 6 else raw
    return raw.split(":", 1)[0]


def qualifier(raw: str, query: str) -> str | None:
    """The qualifier of ``name:qualifier``, ``arn:...:function:name:qualifier`` or
    ``?Qualifier=``, or None."""
    if raw.startswith("arn:"):
        parts = raw.split(":")
        if len(parts) > 7:
            return parts[7]
    elif ":" in raw:
        return raw.split(":", 1)[1]
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "Qualifier" and value:
            return value
    return None


#: ``x-amzn-ErrorType`` of each way a signature fails (docs/protocols.md §8.5).
_REJECTED_TYPES = {
    "missing": "MissingAuthenticationTokenException",
    "incomplete": "IncompleteSignatureException",
    "unrecognized": "UnrecognizedClientException",
    "scope": "InvalidSignatureException",
    "expired": "InvalidSignatureException",
    "mismatch": "InvalidSignatureException",
}


def _error(status: int, error_type: str, message: str) -> Response:
    return json_response(
        status, {"Type": "User", "message": message}, [("x-amzn-ErrorType", error_type)]
    )


async def handle(gateway: Gateway, request: Request, raw_name: str) -> Response:
    """Serve one Invoke request."""
    if request.method != "POST":
        return _error(405, "InvalidRequestContentException", "Invoke requires POST")
    name = function_name(raw_name)
    denied = authenticate(
        gateway,
        request,
        service="lambda",
        action="lambda:InvokeFunction",
        resource=function_resource(
            gateway.config, name, qualifier(raw_name, request.target.partition("?")[2])
        ),
        rejected_types=_REJECTED_TYPES,
    )
    if denied is not None:
        return denied
    config = gateway.config
    if name not in config.functions:
        arn = f"arn:aws:lambda:{config.region}:{config.account}:function:{name}"
        return _error(404, "ResourceNotFoundException", f"Function not found: {arn}")
    invocation_type = request.header("X-Amz-Invocation-Type") or "RequestResponse"
    try:
        event: Any = json.loads(request.body) if request.body else {}
    except ValueError:
        return _error(
            400, "InvalidRequestContentException", "Could not parse request body into json"
        )
    if invocation_type == "DryRun":
        return Response(204)
    if invocation_type == "Event":
        if len(request.body) > MAX_ASYNC_PAYLOAD_BYTES:
            return _error(
                413, "RequestTooLargeException", "Request must be smaller than 1048576 bytes"
            )
        request_id = gateway.bus.submit(name, event)
        return Response(202, headers=[("x-amzn-RequestId", request_id)])
    if invocation_type != "RequestResponse":
        return _error(
            400, "InvalidParameterValueException", f"bad invocation type {invocation_type}"
        )
    if len(request.body) > MAX_SYNC_PAYLOAD_BYTES:
        return _error(413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes")
    client_context = _client_context(request.header("X-Amz-Client-Context"))
    result = await gateway.runtime.invoke(name, event, client_context=client_context)
    return _result_response(result)


def _client_context(header: str | None) -> dict[str, Any] | None:
    if not header:
        return None
    try:
        value = json.loads(base64.b64decode(header))
    except (ValueError, binascii.Error):
        return None
    return value if isinstance(value, dict) else None


def _result_response(result: InvokeResult) -> Response:
    headers = [
        ("Content-Type", "application/json"),
        ("X-Amz-Executed-Version", "$LATEST"),
        ("x-amzn-RequestId", result.request_id),
    ]
    if result.status == "throttled":
        return _error(429, "TooManyRequestsException", "Rate Exceeded.")
    if result.status == "ok":
        return Response(200, json.dumps(result.payload).encode(), headers)
    error = dict(result.error or {"errorMessage": result.status})
    headers.append(("X-Amz-Function-Error", "Unhandled"))
    return Response(200, json.dumps(error).encode(), headers)
