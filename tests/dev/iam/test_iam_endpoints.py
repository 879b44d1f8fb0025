"""@connections and the Invoke API check signatures and IAM as AWS does, end to end.

Real handlers in real environments, posting with boto3: with their own role's keys, with
wrong keys, from a role without ``execute-api:ManageConnections``, without an
``endpoint_url``. Each outcome is the one AWS gives (docs/protocols.md §8.5).

The functions' ``HTTPS_PROXY`` points at a closed loopback port (loopback itself is
exempt), so a client that goes to AWS's own host name fails here without leaving the
machine, as it would fail on AWS.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.asyncio.client import connect

from warmline.config import parse_config
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer

FIXTURES = Path(__file__).parent / "fixtures"


def _config() -> Any:
    poster = {"handler": "poster.handler", "code": ".", "timeout": 20}
    allow_all = {"action": "execute-api:*", "resource": "*"}
    deny_posts = {
        "effect": "Deny",
        "action": "execute-api:ManageConnections",
        "resource": "arn:aws:execute-api:*:*:*/*/POST/@connections/*",
    }
    invoke_target = {
        "action": "lambda:InvokeFunction",
        "resource": "arn:aws:lambda:*:*:function:target",
    }
    return parse_config(
        {
            "functions": {
                "ws": poster,  # a route function: the plan grants it ManageConnections
                "bare": poster,  # no route, no statements: logs only
                "denier": {**poster, "statements": [allow_all, deny_posts]},
                "caller": {**poster, "statements": [invoke_target]},
                "target": {"handler": "target.handler", "code": "."},
            },
            "websocket": {
                "stage": "dev",
                "routes": {
                    "$connect": "ws",
                    "$disconnect": "ws",
                    "$default": {"function": "ws", "route_response": True},
                },
            },
        },
        base_dir=FIXTURES,
    )


@asynccontextmanager
async def _started(*, iam: bool = True) -> AsyncIterator[DevServer]:
    server = DevServer(_config(), port=0, log_sink=LogSink(console=None), iam=iam)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _ask(ws: Any, body: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(body))
    while True:
        frame = await asyncio.wait_for(ws.recv(), 30)
        if frame != "posted":
            return dict(json.loads(frame))


async def _ids(ws: Any) -> dict[str, Any]:
    me = await _ask(ws, {"mode": "whoami"})
    return {k: me[k] for k in ("connectionId", "domainName", "stage")}


def test_the_role_s_own_keys_post_and_wrong_keys_get_aws_s_errors() -> None:
    async def main() -> None:
        async with _started() as server, connect(server.ws_url) as ws:
            await _ids(ws)
            assert (await _ask(ws, {"mode": "ok"}))["result"] == "ok"
            wrong_key = await _ask(ws, {"mode": "wrong-key"})
            assert (wrong_key["result"], wrong_key["status"]) == (
                "UnrecognizedClientException",
                403,
            )
            assert wrong_key["message"] == "The security token included in the request is invalid."
            wrong_secret = await _ask(ws, {"mode": "wrong-secret"})
            assert (wrong_secret["result"], wrong_secret["status"]) == (
                "InvalidSignatureException",
                403,
            )
            assert wrong_secret["message"].startswith("The request signature we calculated")
            no_token = await _ask(ws, {"mode": "no-token"})
            assert no_token["result"] == "UnrecognizedClientException"

    asyncio.run(main())


def test_a_role_without_manage_connections_gets_access_denied() -> None:
    async def main() -> None:
        async with _started() as server, connect(server.ws_url) as ws:
            ids = await _ids(ws)
            result = await server.invoke("bare", {**ids, "mode": "ok"})
            outcome = result.payload
            assert (outcome["result"], outcome["status"]) == ("AccessDeniedException", 403)
            account = server.config.account
            api = server.config.websocket.api_id
            assert outcome["message"] == (
                f"User: arn:aws:sts::{account}:assumed-role/bare-role/bare is not authorized to "
                "perform: execute-api:ManageConnections on resource: arn:aws:execute-api:"
                f"us-east-1:********{account[-4:]}:{api}/dev/POST/@connections/{{connectionId}}"
            )
            allowed = await server.invoke("ws", {**ids, "mode": "ok"})
            assert allowed.payload["result"] == "ok"
            assert await asyncio.wait_for(ws.recv(), 10) == "posted"

    asyncio.run(main())


def test_a_deny_statement_overrides_every_allow() -> None:
    async def main() -> None:
        async with _started() as server, connect(server.ws_url) as ws:
            ids = await _ids(ws)
            outcome = (await server.invoke("denier", {**ids, "mode": "ok"})).payload
            assert outcome["result"] == "AccessDeniedException"
            assert outcome["message"].endswith("with an explicit deny in an identity-based policy")

    asyncio.run(main())


def test_a_client_without_endpoint_url_goes_to_aws_s_host_and_fails() -> None:
    async def main() -> None:
        async with _started() as server, connect(server.ws_url) as ws:
            await _ids(ws)
            outcome = await _ask(ws, {"mode": "no-endpoint"})
            assert outcome["env_endpoint"] is None
            assert outcome["endpoint"] == "https://execute-api.us-east-1.amazonaws.com"
            # AWS: the host does not resolve; here the emulator's proxy refuses it, saying why
            assert outcome["result"] == "NotEmulatedByWarmline"
            assert "names no API" in outcome["message"]

    asyncio.run(main())


def test_invoke_needs_lambda_invoke_function_on_the_target() -> None:
    async def main() -> None:
        async with _started() as server:
            granted = (await server.invoke("caller", {"invoke": "target"})).payload
            assert granted == {"result": "ok", "payload": {"target": True, "event": {}},
                               "env_endpoint": None}  # fmt: skip
            refused = (await server.invoke("ws", {"invoke": "target"})).payload
            assert refused["result"] == "AccessDeniedException"
            assert refused["message"].endswith(
                "on resource: arn:aws:lambda:us-east-1:123456789012:function:target because "
                "no identity-based policy allows the lambda:InvokeFunction action"
            )

    asyncio.run(main())


def test_no_iam_skips_the_policies_but_never_the_signature() -> None:
    async def main() -> None:
        async with _started(iam=False) as server, connect(server.ws_url) as ws:
            ids = await _ids(ws)
            assert (await server.invoke("bare", {**ids, "mode": "ok"})).payload["result"] == "ok"
            wrong = (await server.invoke("bare", {**ids, "mode": "wrong-secret"})).payload
            assert wrong["result"] == "InvalidSignatureException"

    asyncio.run(main())


def _developer_client(server: DevServer, service: str, **keys: Any) -> Any:
    creds = server.developer_credentials
    defaults = {"aws_access_key_id": creds.access_key, "aws_secret_access_key": creds.secret_key}
    url = server.connections_url if service == "apigatewaymanagementapi" else server.lambda_url
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **{**defaults, **keys},
    )


def test_the_developer_s_keys_work_and_made_up_or_stale_ones_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def main() -> None:
        async with _started() as server, connect(server.ws_url) as ws:
            ids = await _ids(ws)
            client = _developer_client(server, "apigatewaymanagementapi")
            await asyncio.to_thread(
                client.post_to_connection, ConnectionId=ids["connectionId"], Data=b"dev"
            )
            assert await asyncio.wait_for(ws.recv(), 10) == "dev"
            lam = _developer_client(server, "lambda")
            response = await asyncio.to_thread(lam.invoke, FunctionName="target", Payload=b"{}")
            assert json.loads(response["Payload"].read())["target"] is True
            made_up = _developer_client(
                server, "apigatewaymanagementapi", aws_access_key_id="AKIAIOSFODNN7EXAMPLE"
            )
            with pytest.raises(ClientError) as refused:
                await asyncio.to_thread(
                    made_up.post_to_connection, ConnectionId=ids["connectionId"], Data=b"x"
                )
            assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
            stale = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            monkeypatch.setattr(
                botocore.auth,
                "get_current_datetime",
                lambda: stale - datetime.timedelta(minutes=6),
            )
            with pytest.raises(ClientError) as expired:
                await asyncio.to_thread(lam.invoke, FunctionName="target", Payload=b"{}")
            error = expired.value.response["Error"]
            assert error["Code"] == "InvalidSignatureException"
            assert error["Message"].startswith("Signature expired: ")
            assert error["Message"].endswith(" - 5 min.)")

    asyncio.run(main())
