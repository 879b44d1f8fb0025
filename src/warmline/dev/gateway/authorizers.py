"""Authorization on ``$connect``: Lambda REQUEST authorizers and the ``AWS_IAM`` hook.

API Gateway lets a WebSocket API authorize the upgrade only (docs/protocols.md §2.1, §8.6);
later routes of the connection are not checked again but see the result. The rules,
applied in this order:

- **Identity sources.** Every configured ``route.request.header.<Name>`` (name compared
  without case) and ``route.request.querystring.<name>`` must be present and non-empty;
  otherwise the upgrade gets **401** and the authorizer is not called.
- **The call.** The authorizer function gets a ``REQUEST`` event whose ``methodArn`` is
  ``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect``. Every handshake
  calls it: WebSocket APIs do not cache authorizer results
  (``AuthorizerResultTtlInSeconds`` is "supported only for HTTP API Lambda authorizers",
  CloudFormation's ``AWS::ApiGatewayV2::Authorizer`` reference).
- **The answer.** An authorizer that fails with the message ``Unauthorized`` gives **401**
  (Lambda authorizers' convention); any other failure, a timeout, or a result without a
  ``principalId`` and a valid ``policyDocument`` gives **500**; so does a ``context`` whose
  values are not strings, numbers or booleans (API Gateway fails when it passes them on).
  The policy is evaluated against the methodArn for ``execute-api:Invoke`` as IAM does
  (wildcards ``*`` and ``?``, actions without case, an explicit ``Deny`` over any
  ``Allow``, no ``Allow`` = denied): denied gives **403**.
- **The result.** An allowed connection carries ``requestContext.authorizer``: the
  ``principalId``, the ``context`` keys with their values stringified (the Lambda
  authorizer output reference: "The returned values are all stringified") and
  ``integrationLatency`` (ms), on ``$connect`` and every later event of that connection.
  It is built once per connection, so a message pays nothing for it.

``AWS_IAM`` needs the upgrade request SigV4-signed (an ``Authorization`` header or a
presigned ``X-Amz-Signature`` query). Without a signature the answer is **403**; a signed
request is handed to :attr:`Gateway.iam_verifier` (:func:`iam_verifier`: the emulator's
SigV4 check, then ``execute-api:Invoke`` on the route's ARN
``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect``, docs/protocols.md
§8.6), and accepted unverified when none is set. A caller let in this way is named in
``requestContext.identity`` (``accountId``, ``accessKey``, ``userArn``) of every event of
the connection.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from warmline.config.model import IDENTITY_SOURCE_RE
from warmline.dev.gateway.events import ConnectionInfo, authorizer_event
from warmline.dev.gateway.http import Request, Response

if TYPE_CHECKING:
    from warmline.config import AuthorizerConfig, RouteConfig
    from warmline.dev.gateway.gateway import Gateway
    from warmline.dev.iam import Iam
    from warmline.dev.runtime import InvokeResult

__all__ = [
    "IamVerifier",
    "authorize",
    "iam_verifier",
    "evaluate_result",
    "method_arn",
    "missing_identity",
    "policy_allows",
    "wildcard_match",
]

#: Checks a SigV4-signed upgrade for ``execute-api:Invoke`` on the methodArn: the refusal
#: to send, or, to let it in, the caller's ``requestContext.identity`` fields (or None).
IamVerifier = Callable[[Request, str], "Response | Mapping[str, str] | None"]

_JSON = [("Content-Type", "application/json")]
#: API Gateway's default gateway responses [doc: REST API gateway responses; the
#: WebSocket upgrade's bodies are not published, the statuses are].
UNAUTHORIZED = Response(401, b'{"message":"Unauthorized"}', _JSON)
EXPLICIT_DENY = Response(
    403,
    b'{"Message":"User is not authorized to access this resource with an explicit deny"}',
    _JSON,
)
NOT_ALLOWED = Response(403, b'{"Message":"User is not authorized to access this resource"}', _JSON)
UNSIGNED = Response(403, b'{"message":"Forbidden"}', _JSON)
AUTHORIZER_ERROR = Response(500, b'{"message":null}', _JSON)
#: The action an authorizer's policy must allow on the methodArn.
INVOKE_ACTION = "execute-api:Invoke"
#: The message that makes a failed authorizer a 401 rather than a 500.
UNAUTHORIZED_MESSAGE = "Unauthorized"


def method_arn(region: str, account: str, api_id: str, stage: str) -> str:
    """The ``$connect`` methodArn (docs/protocols.md §8.6)."""
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/$connect"


def missing_identity(sources: Sequence[str], request: Request) -> bool:
    """True when an identity source is absent or empty (the 401 without a call)."""
    query: dict[str, str] = {}
    for key, given in request.query:
        if given or key not in query:
            query[key] = given
    for source in sources:
        match = IDENTITY_SOURCE_RE.match(source)
        if match is None:
            return True  # not a source the emulator can read: validated at load time
        where, name = match.groups()
        value: str | None = request.header(name) if where == "header" else query.get(name)
        if not value:
            return True
    return False


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's string match: ``*`` any run, ``?`` one character, the rest literal."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _statement_matches(statement: Mapping[str, Any], arn: str) -> bool:
    """Whether one statement applies to ``execute-api:Invoke`` on ``arn``.

    Raises:
        ValueError: the statement is malformed.
    """
    matched = []
    for key, target, ignore_case in (("Action", INVOKE_ACTION, True), ("Resource", arn, False)):
        positive, negative = statement.get(key), statement.get("Not" + key)
        if (positive is None) == (negative is None):
            raise ValueError(f"a statement needs exactly one of {key} and Not{key}")
        patterns = _strings(positive if positive is not None else negative)
        if patterns is None:
            raise ValueError(f"{key} must be a string or a list of strings")
        hit = any(wildcard_match(p, target, ignore_case=ignore_case) for p in patterns)
        matched.append(hit if positive is not None else not hit)
    return all(matched)


def policy_allows(document: Any, arn: str) -> bool | None:
    """Evaluate a policy document for ``execute-api:Invoke`` on ``arn``.

    Returns:
        True when allowed, False when explicitly denied, None when nothing allows it.

    Raises:
        ValueError: the document is malformed (the authorizer's error, a 500).
    """
    if not isinstance(document, dict):
        raise ValueError("policyDocument must be an object")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise ValueError("policyDocument.Statement must be a statement or a list of them")
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            raise ValueError("a statement must be an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"Effect must be Allow or Deny, got {effect!r}")
        if _statement_matches(statement, arn):
            if effect == "Deny":
                return False
            allowed = True
    return True if allowed else None


def _stringified(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate_result(
    result: InvokeResult, arn: str, latency_ms: int
) -> tuple[Response | None, dict[str, Any] | None]:
    """Turn the authorizer's invocation into the refusal or ``requestContext.authorizer``.

    Returns:
        ``(refusal, None)`` when the upgrade is refused, ``(None, authorizer)`` when allowed.
    """
    if result.status != "ok":
        message = (result.error or {}).get("errorMessage")
        return (UNAUTHORIZED if message == UNAUTHORIZED_MESSAGE else AUTHORIZER_ERROR), None
    payload = result.payload
    if not isinstance(payload, dict):
        return AUTHORIZER_ERROR, None
    principal = payload.get("principalId")
    context = payload.get("context")
    if context is None:
        context = {}
    if not isinstance(principal, str | int | float) or isinstance(principal, bool):
        return AUTHORIZER_ERROR, None
    if not isinstance(context, dict) or not all(
        isinstance(v, str | int | float | bool) for v in context.values()
    ):
        return AUTHORIZER_ERROR, None
    try:
        verdict = policy_allows(payload.get("policyDocument"), arn)
    except ValueError:
        return AUTHORIZER_ERROR, None
    if verdict is not True:
        return (EXPLICIT_DENY if verdict is False else NOT_ALLOWED), None
    authorizer: dict[str, Any] = {str(k): _stringified(v) for k, v in context.items()}
    authorizer["principalId"] = str(principal)
    authorizer["integrationLatency"] = latency_ms
    return None, authorizer


def _signed(request: Request) -> bool:
    auth = request.header("Authorization") or ""
    return auth.startswith("AWS4-HMAC-SHA256 ") or any(
        name == "X-Amz-Signature" for name, _ in request.query
    )


async def authorize(
    gateway: Gateway,
    route: RouteConfig,
    info: ConnectionInfo,
    request: Request,
    headers: Sequence[tuple[str, str]],
    now: float,
    request_id: str,
) -> Response | None:
    """Authorize one upgrade on a route whose ``authorization`` is not ``NONE``.

    On success, sets ``info.authorizer`` (for a Lambda authorizer) and returns None.

    Args:
        gateway: runs the authorizer and holds the IAM verifier.
        route: the ``$connect`` route.
        info: the connection being opened.
        request: the upgrade request.
        headers: what the authorizer's event carries (the handshake's and API Gateway's).
        now: the handshake's time.
        request_id: the ``$connect`` request id, repeated in the authorizer's context.

    Returns:
        The refusal to send, or None to go on to the ``$connect`` integration.
    """
    config = gateway.config
    arn = method_arn(config.region, config.account, info.api_id, info.stage)
    if route.authorization == "AWS_IAM":
        if not _signed(request):
            return UNSIGNED
        verifier = gateway.iam_verifier
        verdict = verifier(request, arn) if verifier is not None else None
        if isinstance(verdict, Response):
            return verdict
        if verdict:
            info.identity = dict(verdict)
        return None
    assert route.authorizer is not None  # validated at load time
    spec: AuthorizerConfig = config.websocket.authorizers[route.authorizer]
    if missing_identity(spec.identity_sources, request):
        return UNAUTHORIZED
    event = authorizer_event(info, headers, arn, now, request_id)
    started = time.monotonic()
    invocation = gateway.spawn(gateway.runtime.invoke(spec.function, event))
    try:
        result = await asyncio.wait_for(
            asyncio.shield(invocation), config.limits.integration_timeout_s
        )
    except TimeoutError:
        return AUTHORIZER_ERROR
    latency_ms = int((time.monotonic() - started) * 1000)
    refusal, authorizer = evaluate_result(result, arn, latency_ms)
    if refusal is None:
        info.authorizer = authorizer
    return refusal


def _presigned_as_header(request: Request) -> tuple[str, list[tuple[str, str]]]:
    """A presigned upgrade's query and headers rewritten as the header form of the same
    signature: the ``X-Amz-*`` parameters become ``Authorization``, ``X-Amz-Date`` and
    ``X-Amz-Security-Token``; the canonical query keeps every parameter but the signature."""
    from urllib.parse import unquote

    raw_query = request.target.partition("?")[2]
    params: dict[str, str] = {}
    kept = []
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        params[unquote(name)] = unquote(value)
        if unquote(name) != "X-Amz-Signature":
            kept.append(part)
    headers = list(request.headers)
    authorization = (
        f"{params.get('X-Amz-Algorithm', '')} Credential={params.get('X-Amz-Credential', '')}, "
        f"SignedHeaders={params.get('X-Amz-SignedHeaders', '')}, "
        f"Signature={params.get('X-Amz-Signature', '')}"
    )
    headers.append(("Authorization", authorization))
    headers.append(("X-Amz-Date", params.get("X-Amz-Date", "")))
    if "X-Amz-Security-Token" in params:
        headers.append(("X-Amz-Security-Token", params["X-Amz-Security-Token"]))
    return "&".join(kept), headers


def iam_verifier(iam: Iam) -> IamVerifier:
    """The ``AWS_IAM`` check of ``$connect`` with the emulator's account.

    The upgrade's signature is verified for the ``execute-api`` service (header or
    presigned form); the signer must then be allowed ``execute-api:Invoke`` on the route's
    ARN. Refusals are 403 with AWS's message (API Gateway's masked account in a denial).
    """
    from warmline.dev.iam import SignatureRejected

    def verify(request: Request, arn: str) -> Response | Mapping[str, str] | None:
        path, _, query = request.target.partition("?")
        headers: Sequence[tuple[str, str]] = request.headers
        if request.header("Authorization") is None:
            query, headers = _presigned_as_header(request)
        try:
            principal = iam.verify(
                method=request.method,
                path=path,
                query=query,
                headers=headers,
                body=b"",
                service="execute-api",
            )
        except SignatureRejected as exc:
            return Response(403, json.dumps({"message": exc.message}).encode(), _JSON)
        decision = iam.authorize(principal, INVOKE_ACTION, arn)
        if not decision.allowed:
            message = iam.denial_message(
                principal, INVOKE_ACTION, arn, decision, service="execute-api"
            )
            return Response(403, json.dumps({"Message": message}).encode(), _JSON)
        return {
            "accountId": iam.config.account,
            "accessKey": principal.credentials.access_key,
            "userArn": principal.arn,
        }

    return verify
