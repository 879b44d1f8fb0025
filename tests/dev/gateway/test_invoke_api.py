"""The Lambda Invoke API with boto3's ``lambda`` client."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from gateway_helpers import eventually, records, run, started

from warmline.dev.server import DevServer


def _lambda(server: DevServer) -> Any:
    creds = server.developer_credentials
    return boto3.client(
        "lambda",
        endpoint_url=server.lambda_url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )


def test_request_response_returns_the_payload_and_client_context(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _lambda(server)
            context = base64.b64encode(json.dumps({"custom": {"warmer": True}}).encode())
            response = await asyncio.to_thread(
                client.invoke,
                FunctionName="worker",
                Payload=json.dumps({"n": 1}).encode(),
                ClientContext=context.decode(),
            )
            assert response["StatusCode"] == 200
            assert "FunctionError" not in response
            assert response["ExecutedVersion"] == "$LATEST"
            payload = json.loads(response["Payload"].read())
            assert payload == {"ok": True, "client_context": {"custom": {"warmer": True}}}
            client.close()
        assert records(tmp_path, "async") == [{"n": 1}]

    run(main())


def test_handler_error_is_200_with_function_error_unhandled(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _lambda(server)
            response = await asyncio.to_thread(
                client.invoke,
                FunctionName="arn:aws:lambda:us-east-1:123456789012:function:worker",
                Payload=json.dumps({"fail_times": 1}).encode(),
            )
            assert response["StatusCode"] == 200
            assert response["FunctionError"] == "Unhandled"
            error = json.loads(response["Payload"].read())
            assert error["errorType"] == "RuntimeError"
            assert error["errorMessage"] == "attempt 1 fails"
            client.close()

    run(main())


def test_event_is_202_and_runs_in_the_background_dry_run_is_204(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _lambda(server)
            response = await asyncio.to_thread(
                client.invoke,
                FunctionName="worker",
                InvocationType="Event",
                Payload=json.dumps({"n": 2}).encode(),
            )
            assert response["StatusCode"] == 202
            response["Payload"].read()  # else botocore keeps the socket checked out
            await eventually(lambda: records(tmp_path, "async"))
            dry = await asyncio.to_thread(
                client.invoke, FunctionName="worker", InvocationType="DryRun", Payload=b"{}"
            )
            assert dry["StatusCode"] == 204
            dry["Payload"].read()
            assert await server.drain()
            client.close()
        assert records(tmp_path, "async") == [{"n": 2}]

    run(main())


def test_unknown_function_is_resource_not_found(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _lambda(server)
            with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
                await asyncio.to_thread(client.invoke, FunctionName="nope", Payload=b"{}")
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
            client.close()

    run(main())
