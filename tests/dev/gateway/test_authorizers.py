"""Authorization on ``$connect``: a real Lambda authorizer, IAM's policy matching, AWS_IAM."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import FIXTURES, eventually, records, routed, run, started
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from warmline.aws.credentials import Credentials
from warmline.dev.gateway.authorizers import method_arn, policy_allows, wildcard_match
from warmline.dev.gateway.http import Request, Response

ARN = "arn:aws:execute-api:us-east-1:123456789012:warmline00/dev/$connect"


def _overrides(tmp_path: Path, **route: Any) -> dict[str, Any]:
    env = {"RECORD_DIR": str(tmp_path)}
    connect_route = route or {"authorizer": "token"}
    return {
        "functions": {"auth": {"handler": "auth.handler", "code": ".", "environment": env}},
        "websocket": {
            "routes": {
                "$connect": {"function": "ws", **connect_route},
                "$disconnect": "ws",
                "$default": {"function": "ws", "route_response": True},
                "echo": {"function": "ws", "route_response": True},
            },
            "authorizers": {
                "token": {
                    "function": "auth",
                    "identity_sources": ["route.request.querystring.token"],
                }
            },
        },
    }


async def _refused(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **kwargs):
            pass
    return info.value.response.status_code


def test_an_authorizer_that_denies_gets_403_at_the_handshake(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path, **_overrides(tmp_path)) as server:
            assert await _refused(server.ws_url + "?token=deny") == 403
            assert server.connections() == []
        assert len(records(tmp_path, "auth")) == 1
        assert routed(tmp_path, "$connect") == []  # the integration never ran

    run(main())


def test_an_authorizer_that_allows_puts_its_context_on_every_route(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path, **_overrides(tmp_path)) as server:
            async with connect(server.ws_url + "?token=allow") as ws:
                await ws.send("plain text")  # $default
                await ws.recv()
                await ws.send(json.dumps({"action": "echo"}))
                await ws.recv()
            await eventually(lambda: routed(tmp_path, "$disconnect"))
        authorizer = routed(tmp_path, "$default")[0]["requestContext"]["authorizer"]
        latency = authorizer.pop("integrationLatency")
        assert isinstance(latency, int) and latency >= 0
        # principalId and the context keys, values stringified as API Gateway passes them
        assert authorizer == {"principalId": "user-1", "user": "ana", "n": "7", "admin": "true"}
        for route in ("$connect", "echo", "$disconnect"):
            context = routed(tmp_path, route)[0]["requestContext"]["authorizer"]
            assert context["principalId"] == "user-1" and context["user"] == "ana"

    run(main())


def test_a_missing_or_empty_identity_source_is_401_without_calling_the_authorizer(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with started(tmp_path, **_overrides(tmp_path)) as server:
            assert await _refused(server.ws_url) == 401
            assert await _refused(server.ws_url + "?token=") == 401
            assert await _refused(server.ws_url + "?other=allow") == 401
        assert records(tmp_path, "auth") == []

    run(main())


def test_header_identity_sources_are_matched_without_case(tmp_path: Path) -> None:
    overrides = _overrides(tmp_path)
    overrides["websocket"]["authorizers"]["token"]["identity_sources"] = [
        "route.request.header.X-Auth",
        "route.request.querystring.token",
    ]

    async def main() -> None:
        async with started(tmp_path, **overrides) as server:
            assert await _refused(server.ws_url + "?token=allow") == 401
            headers = [("x-auth", "secret")]
            async with connect(server.ws_url + "?token=allow", additional_headers=headers):
                pass
        assert len(records(tmp_path, "auth")) == 1

    run(main())


def test_the_authorizer_gets_aws_request_event(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path, **_overrides(tmp_path)) as server:
            async with connect(server.ws_url + "?token=allow&token=wildcard&x=1"):
                pass
            await eventually(lambda: routed(tmp_path, "$disconnect"))
        event = records(tmp_path, "auth")[0]
        # the last value wins in the single-value map: the fixture saw "wildcard"
        assert event["type"] == "REQUEST" and event["methodArn"] == ARN
        assert event["queryStringParameters"] == {"token": "wildcard", "x": "1"}
        assert event["multiValueQueryStringParameters"]["token"] == ["allow", "wildcard"]
        assert event["stageVariables"] == {}
        headers = {k.lower(): v for k, v in event["headers"].items()}
        assert headers["upgrade"] == "websocket" and "connection" in headers
        assert re.match(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$", headers["x-amzn-trace-id"])
        assert event["multiValueHeaders"]["Host"] == [f"127.0.0.1:{server.port}"]
        ctx = event["requestContext"]
        connect_ctx = routed(tmp_path, "$connect")[0]["requestContext"]
        assert ctx["routeKey"] == "$connect" and ctx["eventType"] == "CONNECT"
        assert "authorizer" not in ctx
        for key in ("connectionId", "requestId", "connectedAt", "apiId", "stage"):
            assert ctx[key] == connect_ctx[key], key
        # the wildcard policy allowed it; no context map: principalId and latency only
        assert set(connect_ctx["authorizer"]) == {"principalId", "integrationLatency"}

    run(main())


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("unauthorized", 401),  # the authorizer fails with "Unauthorized"
        ("raise", 500),
        ("malformed", 500),  # no policyDocument
        ("nested", 500),  # an object in the context map
        ("elsewhere", 403),  # allowed on another API only: nothing allows this one
    ],
)
def test_authorizer_failures_answer_as_api_gateway(tmp_path: Path, token: str, status: int) -> None:
    async def main() -> None:
        async with started(tmp_path, **_overrides(tmp_path)) as server:
            assert await _refused(f"{server.ws_url}?token={token}") == status
        assert routed(tmp_path, "$connect") == []

    run(main())


def test_every_handshake_calls_the_authorizer(tmp_path: Path) -> None:
    """WebSocket APIs cache no authorizer result: the same token is checked each time."""

    async def main() -> None:
        async with started(tmp_path, **_overrides(tmp_path)) as server:
            for _ in range(2):
                async with connect(server.ws_url + "?token=allow"):
                    pass
        assert len(records(tmp_path, "auth")) == 2

    run(main())


def test_aws_iam_connect_needs_a_signature_and_asks_the_verifier(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def refuse_all(request: Request, arn: str) -> Response:
        seen.append((request.header("Authorization") or "", arn))
        return Response(403, b'{"message":"denied by IAM"}')

    async def main() -> None:
        overrides = _overrides(tmp_path, authorization="AWS_IAM")
        async with started(tmp_path, **overrides) as server:
            assert server.gateway is not None
            assert await _refused(server.ws_url) == 403
            signed = [("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/...")]
            server.gateway.iam_verifier = None
            async with connect(server.ws_url, additional_headers=signed):
                pass  # no verifier connected: a signed upgrade is let in
            server.gateway.iam_verifier = refuse_all
            assert await _refused(server.ws_url, additional_headers=signed) == 403
            presigned = server.ws_url + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab"
            assert await _refused(presigned) == 403
        assert seen[0] == (signed[0][1], ARN) and len(seen) == 2
        assert len(routed(tmp_path, "$connect")) == 1

    run(main())


def _signed_headers(url: str, credentials: Credentials) -> list[tuple[str, str]]:
    """The upgrade's headers signed by botocore for ``execute-api``, as a client signs it."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    http_url = url.replace("ws://", "http://", 1)
    request = AWSRequest(method="GET", url=http_url)
    keys = BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    SigV4Auth(keys, "execute-api", "us-east-1").add_auth(request)
    return [(k, v) for k, v in request.headers.items() if k.lower() != "host"]


def _presigned(url: str, credentials: Credentials) -> str:
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(method="GET", url=url.replace("ws://", "http://", 1))
    keys = BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    SigV4QueryAuth(keys, "execute-api", "us-east-1", expires=60).add_auth(request)
    return str(request.url).replace("http://", "ws://", 1)


def test_aws_iam_connect_is_verified_with_the_emulators_account(tmp_path: Path) -> None:
    async def main() -> None:
        overrides = _overrides(tmp_path, authorization="AWS_IAM")
        async with started(tmp_path, **overrides) as server:
            developer = server.developer_credentials
            assert await _refused(server.ws_url) == 403  # unsigned
            headers = _signed_headers(server.ws_url, developer)
            async with connect(server.ws_url, additional_headers=headers):
                pass
            async with connect(_presigned(server.ws_url, developer)):
                pass
            # a role whose statements do not allow execute-api:Invoke on the route
            role = server.iam.functions["auth"]
            denied = _signed_headers(server.ws_url, role.credentials)
            with pytest.raises(InvalidStatus) as caught:
                async with connect(server.ws_url, additional_headers=denied):
                    pass
            assert caught.value.response.status_code == 403
            message = json.loads(caught.value.response.body)["Message"]
            assert message == (
                f"User: {role.arn} is not authorized to perform: execute-api:Invoke on "
                "resource: arn:aws:execute-api:us-east-1:********9012:warmline00/dev/$connect"
            )
            wrong = Credentials(developer.access_key, "x" * 40)
            wrong_headers = _signed_headers(server.ws_url, wrong)
            assert await _refused(server.ws_url, additional_headers=wrong_headers) == 403
        connects = routed(tmp_path, "$connect")
        assert len(connects) == 2
        identity = connects[0]["requestContext"]["identity"]
        assert identity["userArn"] == server.iam.developer.arn
        assert identity["accessKey"] == developer.access_key
        assert identity["accountId"] == "123456789012"

    run(main())


def test_authorizer_configuration_reaches_the_gateway(tmp_path: Path) -> None:
    from gateway_helpers import base_config

    from warmline.config import parse_config

    config = parse_config(base_config(tmp_path, **_overrides(tmp_path)), base_dir=FIXTURES)
    route = config.websocket.routes["$connect"]
    assert (route.authorization, route.authorizer) == ("CUSTOM", "token")
    assert config.websocket.authorizers["token"].identity_sources == (
        "route.request.querystring.token",
    )
    assert method_arn("us-east-1", "123456789012", "warmline00", "dev") == ARN


# --- IAM's matching, as the authorizer's policy is evaluated -------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "ignore_case", "expected"),
    [
        ("execute-api:*", "execute-api:Invoke", True, True),
        ("EXECUTE-API:invoke", "execute-api:Invoke", True, True),
        ("arn:aws:execute-api:*:*:warmline00/*", ARN, False, True),
        ("arn:aws:execute-api:us-east-1:123456789012:warmline00/dev/$connect", ARN, False, True),
        ("arn:aws:execute-api:us-east-1:123456789012:LOCAL/dev/$connect", ARN, False, False),
        ("arn:aws:execute-api:us-east-1:123456789012:warmline00/de?/$connect", ARN, False, True),
        ("arn:aws:execute-api:us-east-1:123456789012:warmline00/d?/$connect", ARN, False, False),
        ("arn:aws:execute-api:us-east-1:123456789012:warmline00/dev", ARN, False, False),
        ("*", ARN, False, True),
    ],
)
def test_wildcards_match_as_iam_does(
    pattern: str, value: str, ignore_case: bool, expected: bool
) -> None:
    assert wildcard_match(pattern, value, ignore_case=ignore_case) is expected


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_a_deny_beats_an_allow_and_nothing_allowed_is_none() -> None:
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": ["s3:*", "execute-api:*"], "Resource": [ARN]}
    assert policy_allows(_doc(allow), ARN) is True
    assert policy_allows(_doc(allow, deny), ARN) is False
    assert policy_allows(_doc({**allow, "Action": "lambda:InvokeFunction"}), ARN) is None
    not_resource = {"Effect": "Allow", "Action": "execute-api:Invoke", "NotResource": ARN}
    assert policy_allows(_doc(not_resource), ARN) is None
    assert policy_allows({"Statement": allow}, ARN) is True  # one statement, not a list


@pytest.mark.parametrize(
    "document",
    [
        None,
        {"Statement": []},
        {"Statement": ["Allow"]},
        _doc({"Effect": "allow", "Action": "execute-api:Invoke", "Resource": "*"}),
        _doc({"Effect": "Allow", "Resource": "*"}),
        _doc({"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": 5}),
    ],
)
def test_a_malformed_policy_is_an_error(document: Any) -> None:
    with pytest.raises(ValueError):
        policy_allows(document, ARN)


def test_without_an_authorizer_no_event_carries_one(tmp_path: Path) -> None:

    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                await ws.send("hello")
                await asyncio.wait_for(ws.recv(), 10)
        assert "authorizer" not in routed(tmp_path, "$default")[0]["requestContext"]

    run(main())
