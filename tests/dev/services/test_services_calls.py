"""Handlers reach the local services and the emulator by AWS's host names, as on AWS.

Every handler here uses boto3 with the SDK's defaults (no ``endpoint_url`` for the
services): the environment's ``HTTPS_PROXY`` takes ``dynamodb.us-east-1.amazonaws.com``
and the others to the run's moto server, ``{apiId}.execute-api...`` to the emulator, and
answers any other AWS host with an error naming it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from services_helpers import FIXTURES, recorded_calls
from websockets.asyncio.client import connect

from warmline.config import DevConfig, parse_config
from warmline.config.services import (
    Bucket,
    Index,
    Parameter,
    Queue,
    Secret,
    ServiceResources,
    Table,
    Topic,
)
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer
from warmline.dev.services.local import RECORDING_NAME

CALLS = FIXTURES / "calls"
ENV = {
    "TABLE_NAME": "calls",
    "QUEUE_NAME": "jobs",
    "BUCKET": "call-recordings",
    "PARAMETER": "/app/greeting",
    "SECRET": "app-token",
    "TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:events",
}
RESOURCES = ServiceResources(
    tables=(
        Table(
            "calls",
            (("pk", "HASH"),),
            (("pk", "S"), ("caller", "S")),
            global_indexes=(Index("by-caller", (("caller", "HASH"),), "ALL"),),
            ttl_attribute="expires_at",
        ),
    ),
    queues=(Queue("jobs"),),
    topics=(Topic("events"),),
    buckets=(Bucket("call-recordings"),),
    parameters=(Parameter("/app/greeting", "hello"),),
    secrets=(Secret("app-token", "s3cr3t"),),
)


ARN = "arn:aws:{}:us-east-1:123456789012:{}"
#: What the handlers need, as their role would grant it on AWS.
GRANTS: list[dict[str, Any]] = [
    {
        "action": [
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DescribeTable",
            "dynamodb:DescribeTimeToLive",
        ],
        "resource": ARN.format("dynamodb", "table/calls"),
    },
    {"action": "dynamodb:ListTables", "resource": "*"},
    {
        "action": ["sqs:GetQueueUrl", "sqs:SendMessage", "sqs:ReceiveMessage"],
        "resource": ARN.format("sqs", "jobs"),
    },
    {"action": ["s3:PutObject", "s3:GetObject"], "resource": "arn:aws:s3:::call-recordings/*"},
    {"action": "ssm:GetParameter", "resource": ARN.format("ssm", "parameter/app/greeting")},
    {
        "action": "secretsmanager:GetSecretValue",
        "resource": ARN.format("secretsmanager", "secret:app-token-??????"),
    },
    {"action": "sns:Publish", "resource": ENV["TOPIC_ARN"]},
    {"action": "lambda:InvokeFunction", "resource": ARN.format("lambda", "function:*")},
    {
        "action": "execute-api:ManageConnections",
        "resource": ARN.format("execute-api", "warmline00/dev/POST/@connections/*"),
    },
]


def _config(
    handlers: list[str],
    resources: ServiceResources,
    grants: list[dict[str, Any]] | None = None,
) -> DevConfig:
    functions = {
        name: {
            "handler": f"calls.{name}",
            "code": str(CALLS),
            "timeout": 30,
            "environment": ENV,
            "statements": GRANTS if grants is None else grants,
        }
        for name in handlers
    }
    config = parse_config({"functions": functions}, base_dir=CALLS)
    return dataclasses.replace(config, services=resources)


@asynccontextmanager
async def _serving(config: DevConfig, *, iam: bool = True) -> AsyncIterator[DevServer]:
    server = DevServer(config, port=0, log_sink=LogSink(console=None), iam=iam)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def _invoke(server: DevServer, name: str, event: dict[str, Any]) -> Any:
    result = await server.invoke(name, event)
    assert result.status == "ok", result.error
    return result.payload


def test_handlers_reach_each_declared_resource_with_the_sdk_defaults() -> None:
    async def main() -> None:
        async with _serving(_config(["dynamodb", "services"], RESOURCES)) as server:
            got = await _invoke(server, "dynamodb", {"pk": "CA1"})
            assert got["item"] == {"pk": {"S": "CA1"}, "n": {"N": "1"}}
            # the SDK resolved AWS's own endpoint; the proxy took it to moto
            assert got["endpoint"] == "https://dynamodb.us-east-1.amazonaws.com"
            assert (got["indexes"], got["ttl"], got["tables"]) == (
                ["by-caller"],
                "expires_at",
                ["calls"],
            )
            assert await _invoke(server, "services", {}) == {
                "queue": "hi",
                "object": "stored",
                "parameter": "hello",
                "secret": "s3cr3t",
                "published": True,
            }

    asyncio.run(main())


def test_an_aws_service_that_is_not_emulated_is_refused_with_its_name() -> None:
    async def main() -> None:
        handlers = ["not_emulated", "dynamodb_error", "invoke_by_host"]
        async with _serving(_config(handlers, ServiceResources())) as s:
            got = await _invoke(s, "not_emulated", {"service": "ec2"})
            assert got["code"] == "NotEmulatedByWarmline"
            assert "does not emulate ec2 (ec2.us-east-1.amazonaws.com)" in got["message"]
            assert "--aws-passthrough" in got["message"]
            # no table declared: no local DynamoDB, and the error says so
            got = await _invoke(s, "dynamodb_error", {})
            assert got["code"] == "NotEmulatedByWarmline"
            assert "DynamoDB is not running: the stack declares no DynamoDB" in got["message"]
            # lambda.{region}.amazonaws.com is the emulator's Invoke API
            event = {"function": "not_emulated", "event": {"service": "ec2"}}
            got = await _invoke(s, "invoke_by_host", event)
            assert got["code"] == "NotEmulatedByWarmline"

    asyncio.run(main())


def test_a_handler_building_the_endpoint_from_api_id_and_region_posts() -> None:
    async def main() -> None:
        async with _serving(_config(["post_by_api_id"], ServiceResources())) as server:
            assert server.config.websocket.api_id == "warmline00"
            async with connect(server.ws_url) as ws:
                (conn,) = server.connections()
                event = {"apiId": "warmline00", "stage": "dev", "connectionId": conn.connection_id}
                got = await _invoke(server, "post_by_api_id", event)
                assert got["code"] is None
                assert json.loads(got["env"]) == ["HTTPS_PROXY", "NO_PROXY"]
                assert await asyncio.wait_for(ws.recv(), 10) == "via apiId"
                # another API's id is not this run's API: refused, naming the one served
                got = await _invoke(server, "post_by_api_id", {**event, "apiId": "abc123defg"})
                assert got["code"] == "NotEmulatedByWarmline"
                assert "serves warmline00.execute-api.us-east-1.amazonaws.com" in got["message"]

    asyncio.run(main())


def test_data_written_by_handlers_is_kept_between_runs_and_reset_forgets_it(
    tmp_path: Path,
) -> None:
    config = _config(["dynamodb"], RESOURCES)

    async def run(pk: str | None, *, reset: bool = False) -> list[str]:
        server = DevServer(
            config,
            port=0,
            log_sink=LogSink(console=None),
            state_dir=tmp_path,
            reset_services=reset,
        )
        await server.start()
        try:
            if pk is not None:
                await _invoke(server, "dynamodb", {"pk": pk})
            import boto3

            assert server.aws.services is not None
            client = boto3.client(
                "dynamodb",
                endpoint_url=server.aws.services.endpoint,
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
            items = client.scan(TableName="calls")["Items"]
            return sorted(i["pk"]["S"] for i in items)
        finally:
            await server.close()

    assert asyncio.run(run("first")) == ["first"]
    assert asyncio.run(run("second")) == ["first", "second"]
    # Each start drops the reads recorded before it (they change nothing), so only the
    # second run's Scan and GetItem are left, beside both runs' writes.
    targets = [t for t, _ in recorded_calls(tmp_path / RECORDING_NAME)]
    assert targets.count("DynamoDB_20120810.PutItem") == 2
    assert targets.count("DynamoDB_20120810.GetItem") == 1
    assert targets.count("DynamoDB_20120810.Scan") == 1
    assert asyncio.run(run(None, reset=True)) == []


def test_a_role_without_the_grant_gets_each_services_access_denied() -> None:
    async def main() -> dict[str, Any]:
        async with _serving(_config(["denied"], RESOURCES, grants=[])) as server:
            return dict(await _invoke(server, "denied", {}))

    got = asyncio.run(main())
    caller = "arn:aws:sts::123456789012:assumed-role/denied-role/denied"
    assert got["dynamodb"] == [
        "AccessDeniedException",
        f"User: {caller} is not authorized to perform: dynamodb:PutItem on resource: "
        "arn:aws:dynamodb:us-east-1:123456789012:table/calls because no identity-based "
        "policy allows the dynamodb:PutItem action",
    ]
    # each service's own code, as boto3 reports it on AWS
    codes = {name: value[0] for name, value in got.items()}
    assert codes == {
        "dynamodb": "AccessDeniedException",
        "sqs": "AccessDenied",
        "s3": "AccessDenied",
        "ssm": "AccessDeniedException",
        "secretsmanager": "AccessDeniedException",
        "sns": "AuthorizationError",
    }
    assert "sqs:GetQueueUrl on resource: arn:aws:sqs:us-east-1:123456789012:jobs" in got["sqs"][1]
    assert "s3:GetObject on resource: arn:aws:s3:::call-recordings/k.txt" in got["s3"][1]
    parameter = "arn:aws:ssm:us-east-1:123456789012:parameter/app/greeting"
    assert f"ssm:GetParameter on resource: {parameter}" in got["ssm"][1]
    assert "sns:Publish on resource: " + ENV["TOPIC_ARN"] in got["sns"][1]


def test_no_iam_skips_the_policies_but_not_the_signatures() -> None:
    async def main() -> tuple[dict[str, Any], str]:
        async with _serving(_config(["denied"], RESOURCES, grants=[]), iam=False) as server:
            got = dict(await _invoke(server, "denied", {}))
            client = _through_proxy(server, "AKIAIOSFODNN7EXAMPLE", "wrong")
            with pytest.raises(ClientError) as caught:
                await asyncio.to_thread(client.list_tables)
            return got, caught.value.response["Error"]["Code"]

    got, code = asyncio.run(main())
    assert got["dynamodb"] is None and got["sns"] is None and got["ssm"] is None
    assert code == "UnrecognizedClientException"


def _through_proxy(server: DevServer, key: str, secret: str, token: str | None = None) -> Any:
    """boto3's DynamoDB client as a function's SDK reaches it: AWS's host, the proxy."""
    assert server.aws.proxy is not None and server.certificates is not None
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        verify=str(server.certificates.ca_cert),
        config=Config(proxies={"https": server.aws.proxy.url}, retries={"max_attempts": 1}),
    )


def test_calls_through_the_proxy_are_refused_unless_signed_with_known_keys() -> None:
    async def main() -> dict[str, str]:
        async with _serving(_config(["dynamodb"], RESOURCES)) as server:
            dev = server.developer_credentials
            fn = server.iam.functions["dynamodb"].credentials
            tables = await asyncio.to_thread(
                _through_proxy(server, dev.access_key, dev.secret_key).list_tables
            )
            assert tables["TableNames"] == ["calls"]
            cases = {
                "unknown key": _through_proxy(server, "AKIAIOSFODNN7EXAMPLE", dev.secret_key),
                "wrong secret": _through_proxy(server, dev.access_key, "x" * 40),
                "no session token": _through_proxy(server, fn.access_key, fn.secret_key),
                "function keys": _through_proxy(server, fn.access_key, fn.secret_key, fn.token),
            }
            out = {}
            for name, client in cases.items():
                try:
                    item = {"pk": {"S": "p"}}
                    await asyncio.to_thread(client.put_item, TableName="calls", Item=item)
                except ClientError as exc:
                    out[name] = exc.response["Error"]["Code"]
                else:
                    out[name] = "ok"
            return out

    assert asyncio.run(main()) == {
        "unknown key": "UnrecognizedClientException",
        "wrong secret": "InvalidSignatureException",
        "no session token": "UnrecognizedClientException",
        "function keys": "ok",
    }
