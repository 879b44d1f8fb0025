"""The check in front of the emulator's AWS APIs (``@connections``, the Lambda Invoke API).

As on AWS (docs/protocols.md §8.5), a request is authenticated before anything else is
looked at: its SigV4 signature must be valid for the keys of a function (or the developer)
of this emulator, and the caller's role must allow the action on the resource. Both APIs
answer a refusal the same way: 403 with the error type in ``x-amzn-ErrorType`` (botocore
reads the code from it), the signature's kind of failure named by the API's own table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from warmline.dev.gateway.http import Request, Response, json_response
from warmline.dev.iam import SignatureRejected

if TYPE_CHECKING:
    from warmline.dev.gateway.gateway import Gateway

__all__ = ["authenticate"]


def authenticate(
    gateway: Gateway,
    request: Request,
    *,
    service: str,
    action: str,
    resource: str,
    rejected_types: Mapping[str, str],
) -> Response | None:
    """403 unless a known principal signed ``request`` for ``service`` and may do
    ``action`` on ``resource``; else None.

    Args:
        gateway: holds the emulated account (``gateway.iam``).
        request: the HTTP request.
        service: the signing name the endpoint expects (``execute-api``, ``lambda``).
        action: the IAM action the request performs.
        resource: the ARN it acts on.
        rejected_types: ``x-amzn-ErrorType`` per kind of signature failure
            (``ForbiddenException`` for a kind not listed).
    """
    iam = gateway.iam
    if iam is None:  # no account to check against: fail closed
        return _refused(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    path, _, query = request.target.partition("?")
    try:
        principal = iam.verify(
            method=request.method,
            path=path,
            query=query,
            headers=request.headers,
            body=request.body,
            service=service,
        )
    except SignatureRejected as exc:
        return _refused(rejected_types.get(exc.kind, "ForbiddenException"), exc.message)
    decision = iam.authorize(principal, action, resource)
    if decision.allowed:
        return None
    message = iam.denial_message(principal, action, resource, decision, service=service)
    return json_response(403, {"Message": message}, [("x-amzn-ErrorType", "AccessDeniedException")])


def _refused(error_type: str, message: str) -> Response:
    return json_response(403, {"message": message}, [("x-amzn-ErrorType", error_type)])
