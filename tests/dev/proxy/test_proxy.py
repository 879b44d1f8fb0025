"""The AWS proxy with real clients: boto3 through it, raw CONNECT tunnels, the IAM hook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from proxy_helpers import read_request

from warmline.dev.gateway.tls import make_certificates
from warmline.dev.proxy import authorize as hook
from warmline.dev.proxy.authorize import Denial, ProxiedRequest
from warmline.dev.proxy.certs import HostCertificates
from warmline.dev.proxy.routing import SERVED_NAMES, Router
from warmline.dev.proxy.server import AwsProxy


def _proxy(tmp_path: Path, upstream_port: int) -> tuple[AwsProxy, Path]:
    certs = make_certificates(tmp_path, ["127.0.0.1"])
    assert certs.ca_key is not None
    proxy = AwsProxy(
        Router(api_id="warmline00", region="us-east-1", services=SERVED_NAMES),
        HostCertificates(certs.ca_cert, certs.ca_key),
        emulator=("127.0.0.1", upstream_port),
        services=("127.0.0.1", upstream_port),
    )
    return proxy, certs.ca_cert


def _dynamodb(proxy: AwsProxy, ca: Path) -> object:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        verify=str(ca),
        config=Config(proxies={"https": proxy.url}, retries={"max_attempts": 1}),
    )


def test_a_denial_from_the_hook_reaches_boto3_as_the_service_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ProxiedRequest] = []

    def deny(request: ProxiedRequest) -> Denial:
        seen.append(request)
        return Denial(400, "AccessDeniedException", "no dynamodb:ListTables for you")

    monkeypatch.setattr(hook, "authorize", deny)

    async def main() -> None:
        proxy, ca = _proxy(tmp_path, 9)  # nothing listens upstream: denied calls never go there
        await proxy.start()
        try:
            client = _dynamodb(proxy, ca)
            with pytest.raises(ClientError) as caught:
                await asyncio.to_thread(client.list_tables)  # type: ignore[attr-defined]
        finally:
            await proxy.close()
        assert caught.value.response["Error"] == {
            "Code": "AccessDeniedException",
            "Message": "no dynamodb:ListTables for you",
        }
        (request,) = seen
        assert (request.host, request.service, request.method) == (
            "dynamodb.us-east-1.amazonaws.com",
            "dynamodb",
            "POST",
        )
        assert request.header("X-Amz-Target") == "DynamoDB_20120810.ListTables"
        assert (request.header("Authorization") or "").startswith(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"
        )
        assert request.body == b"{}"

    asyncio.run(main())


def test_allowed_requests_are_forwarded_unchanged_host_and_signature_included(
    tmp_path: Path,
) -> None:
    received: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        body = b'{"TableNames":["from-upstream"]}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        proxy, ca = _proxy(tmp_path, server.sockets[0].getsockname()[1])
        await proxy.start()
        try:
            client = _dynamodb(proxy, ca)
            got = await asyncio.to_thread(client.list_tables)  # type: ignore[attr-defined]
        finally:
            await proxy.close()
            server.close()
        assert got["TableNames"] == ["from-upstream"]
        (raw,) = received
        assert b"Host: dynamodb.us-east-1.amazonaws.com\r\n" in raw
        assert b"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" in raw
        assert raw.startswith(b"POST / HTTP/1.1\r\n") and raw.endswith(b"\r\n\r\n{}")

    asyncio.run(main())


def test_non_aws_hosts_are_tunnelled_byte_for_byte(tmp_path: Path) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.readexactly(5))
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        proxy, _ = _proxy(tmp_path, 9)
        await proxy.start()
        try:
            reader, writer = await asyncio.open_connection(*proxy.url[7:].split(":"))
            writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert (
                await reader.readuntil(b"\r\n\r\n")
                == b"HTTP/1.1 200 Connection established\r\n\r\n"
            )
            writer.write(b"hello")
            assert await reader.read() == b"echo:hello"
            writer.close()
            # a plain (non-CONNECT) proxy request is refused
            reader, writer = await asyncio.open_connection(*proxy.url[7:].split(":"))
            writer.write(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 405 ")
            writer.close()
        finally:
            await proxy.close()
            server.close()

    asyncio.run(main())


def test_warmlines_own_client_tunnels_through_https_proxy_like_botocore(tmp_path: Path) -> None:
    from warmline.aws.client import AwsClient, RetryPolicy
    from warmline.aws.credentials import Credentials
    from warmline.aws.sigv4 import SigV4Signer

    received: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        proxy, ca = _proxy(tmp_path, server.sockets[0].getsockname()[1])
        await proxy.start()
        env = {
            "HTTPS_PROXY": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "AWS_CA_BUNDLE": str(ca),
        }
        client = AwsClient(
            "https://lambda.us-east-1.amazonaws.com",
            SigV4Signer("lambda", "us-east-1"),
            what="Lambda",
            retry=RetryPolicy(0),
            credentials=Credentials("AKIDEXAMPLE", "secret"),
            environ=env,
        )
        try:
            response, _ = await asyncio.to_thread(
                client.request, "POST", "/2015-03-31/functions/f/invocations", b"{}"
            )
        finally:
            client.close()
            await proxy.close()
            server.close()
        assert (response.status, response.body) == (200, b"ok")
        (head,) = received
        assert head.startswith(b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\n")
        assert b"Host: lambda.us-east-1.amazonaws.com\r\n" in head

    asyncio.run(main())
