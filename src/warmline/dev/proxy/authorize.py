"""The one place the AWS proxy asks whether a request may go on: :class:`ServiceAuthorizer`.

Every request the proxy answers itself (it terminated TLS for the host: the emulator's
``@connections`` and Invoke API, the moto server's services) is parsed and handed to the
proxy's authorizer before it is forwarded. For a local service, as AWS does for the real
one (docs/protocols.md §8.5):

1. the SigV4 signature is verified against the emulator's principals (a function's own
   keys, or the developer's): unsigned, an unknown key, a wrong secret or a stale date is
   refused with the service's own error code (``UnrecognizedClientException``,
   ``InvalidSignatureException``... for JSON services, ``InvalidClientTokenId``,
   ``SignatureDoesNotMatch`` for query services, ``InvalidAccessKeyId`` for S3);
2. the IAM action and resource ARN the request needs are derived
   (:mod:`~warmline.dev.proxy.actions`) and evaluated against the caller's statements;
   a denial is the service's ``AccessDeniedException`` (SNS: ``AuthorizationError``,
   S3 and STS: ``AccessDenied``) naming the caller, the action and the resource.

``warmline dev --no-iam`` skips step 2 only, as :class:`~warmline.dev.iam.Iam` does.
Requests to the emulator's own host names (``@connections``, Lambda) pass here unchecked:
the emulator's endpoints verify and authorize them themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote

from warmline.dev.iam import SignatureRejected
from warmline.dev.proxy.actions import required_checks

if TYPE_CHECKING:
    from warmline.dev.iam import Iam

__all__ = ["Denial", "ProxiedRequest", "ServiceAuthorizer", "authorize"]


@dataclass(frozen=True, slots=True)
class ProxiedRequest:
    """One HTTP request as the function's SDK sent it (after TLS).

    Attributes:
        host: the AWS host name the SDK connected to (``dynamodb.us-east-1.amazonaws.com``).
        service: the service of that host (``dynamodb``, ``execute-api``, ``lambda``...).
        method: ``GET``, ``POST``...
        target: the request target (path and query).
        headers: the header fields in order, names as sent.
        body: the body as sent (chunked framing kept when the SDK used it).
    """

    host: str
    service: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header ``name`` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass(frozen=True, slots=True)
class Denial:
    """An error answer in AWS's shape: HTTP status, error code and message.

    Attributes:
        query_code: for SQS's JSON protocol, the query-protocol code SDKs report
            (sent as ``x-amzn-query-error``); ``""`` otherwise.
    """

    status: int
    code: str
    message: str
    query_code: str = ""


def authorize(request: ProxiedRequest) -> Denial | None:
    """The check of a proxy that serves no emulated account: every request is allowed."""
    del request
    return None


@dataclass(frozen=True, slots=True)
class _Errors:
    """One protocol family's error codes: (status, code) by what failed."""

    denied: tuple[int, str]
    unrecognized: tuple[int, str]
    mismatch: tuple[int, str]
    missing: tuple[int, str]
    incomplete: tuple[int, str]
    expired: tuple[int, str]


#: JSON services (DynamoDB, SSM, Secrets Manager) answer 400 [doc: each service's "Common
#: Errors"; DynamoDB's AccessDeniedException and UnrecognizedClientException are 400].
_JSON_ERRORS = _Errors(
    denied=(400, "AccessDeniedException"),
    unrecognized=(400, "UnrecognizedClientException"),
    mismatch=(400, "InvalidSignatureException"),
    missing=(400, "MissingAuthenticationTokenException"),
    incomplete=(400, "IncompleteSignatureException"),
    expired=(400, "InvalidSignatureException"),
)
#: Query services (SQS, STS; SNS names its denial ``AuthorizationError``) answer 403.
_QUERY_ERRORS = _Errors(
    denied=(403, "AccessDenied"),
    unrecognized=(403, "InvalidClientTokenId"),
    mismatch=(403, "SignatureDoesNotMatch"),
    missing=(403, "MissingAuthenticationToken"),
    incomplete=(403, "IncompleteSignature"),
    expired=(403, "SignatureDoesNotMatch"),
)
_SNS_ERRORS = replace(_QUERY_ERRORS, denied=(403, "AuthorizationError"))
#: S3 [doc: S3 API "Error responses"]: 403 for each, ``RequestTimeTooSkewed`` for a stale date.
_S3_ERRORS = _Errors(
    denied=(403, "AccessDenied"),
    unrecognized=(403, "InvalidAccessKeyId"),
    mismatch=(403, "SignatureDoesNotMatch"),
    missing=(403, "AccessDenied"),
    incomplete=(400, "AuthorizationHeaderMalformed"),
    expired=(403, "RequestTimeTooSkewed"),
)
_ERRORS = {"sns": _SNS_ERRORS, "sqs": _QUERY_ERRORS, "sts": _QUERY_ERRORS, "s3": _S3_ERRORS}
_S3_UNRECOGNIZED = "The AWS Access Key Id you provided does not exist in our records."
_S3_MISSING = "Access Denied"


class ServiceAuthorizer:
    """Verifies and authorizes the proxied calls to local services with ``iam``.

    Args:
        iam: the emulated account (principals, statements, ``--no-iam``).
    """

    __slots__ = ("account", "iam", "region")

    def __init__(self, iam: Iam) -> None:
        self.iam = iam
        self.region = iam.config.region
        self.account = iam.config.account

    def __call__(self, request: ProxiedRequest) -> Denial | None:
        """None to forward ``request``, or the service's error for it."""
        service = request.service
        if service in ("execute-api", "lambda"):
            return None  # the emulator's endpoints verify and authorize these themselves
        errors = _ERRORS.get(service, _JSON_ERRORS)
        path, _, query = request.target.partition("?")
        if service == "s3":
            # S3's canonical URI is the path as sent, not encoded a second time: decoding
            # it here lets the verifier's single encoding give it back.
            path = unquote(path)
        try:
            principal = self.iam.verify(
                method=request.method,
                path=path,
                query=query,
                headers=request.headers,
                body=request.body,
                service=service,
            )
        except SignatureRejected as exc:
            return _rejected(errors, exc, service)
        if not self.iam.enforce:
            return None
        checks = required_checks(request, self.region, self.account)
        for action, resource in checks or ():
            decision = self.iam.authorize(principal, action, resource)
            if not decision.allowed:
                # The wording AWS's services share: "... because no identity-based policy
                # allows the ACTION action" for an implicit deny (Iam's Lambda form).
                message = self.iam.denial_message(
                    principal, action, resource, decision, service="lambda"
                )
                status, code = errors.denied
                query_code = "AccessDenied" if service == "sqs" else ""
                if service == "sqs":
                    code = "AccessDeniedException"  # JSON's __type; SDKs report query_code
                return Denial(status, code, message, query_code)
        return None


def _rejected(errors: _Errors, exc: SignatureRejected, service: str) -> Denial:
    status, code = getattr(errors, exc.kind if exc.kind != "scope" else "mismatch")
    message = exc.message
    if service == "s3" and exc.kind == "unrecognized":
        message = _S3_UNRECOGNIZED
    elif service == "s3" and exc.kind == "missing":
        message = _S3_MISSING
    elif exc.kind == "missing" and errors is _JSON_ERRORS:
        message = "Request is missing Authentication Token"
    query_code = code if service == "sqs" else ""
    if service == "sqs":
        code = {
            "InvalidClientTokenId": "UnrecognizedClientException",
            "SignatureDoesNotMatch": "InvalidSignatureException",
        }.get(code, code)
    return Denial(status, code, message, query_code)
