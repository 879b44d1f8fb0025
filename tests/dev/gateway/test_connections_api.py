"""``@connections`` with boto3's own client, over http:// and (from a handler) https://."""

from __future__ import annotations

import asyncio
import datetime
import http.client
import json
import socket
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from gateway_helpers import eventually, routed, run, started
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from warmline.dev.server import DevServer


def _client(server: DevServer, **config: Any) -> Any:
    creds = server.developer_credentials
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=server.connections_url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(retries={"max_attempts": 1}, **config),
    )


async def _connection_id(record_dir: Path) -> str:
    events = await eventually(lambda: routed(record_dir, "$connect"))
    return str(events[-1]["requestContext"]["connectionId"])


def test_post_get_delete_with_boto3(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _client(server)
            async with connect(server.ws_url, user_agent_header="agent/2") as ws:
                cid = await _connection_id(tmp_path)
                await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"hi")
                assert await ws.recv() == "hi"
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=cid, Data=b"\xff\x00"
                )
                assert await ws.recv() == b"\xff\x00"  # not UTF-8 -> binary frame
                info = await asyncio.to_thread(client.get_connection, ConnectionId=cid)
                assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "agent/2"}
                assert isinstance(info["ConnectedAt"], datetime.datetime)
                assert info["LastActiveAt"] >= info["ConnectedAt"]
                await asyncio.to_thread(client.delete_connection, ConnectionId=cid)
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
            gone = await eventually(lambda: routed(tmp_path, "$disconnect"))
            assert gone[0]["requestContext"]["connectionId"] == cid
            for call in (
                lambda: client.post_to_connection(ConnectionId=cid, Data=b"late"),
                lambda: client.get_connection(ConnectionId=cid),
                lambda: client.delete_connection(ConnectionId=cid),
            ):
                with pytest.raises(client.exceptions.GoneException):
                    await asyncio.to_thread(call)
            client.close()

    run(main())


def test_posts_arrive_in_order_before_the_route_response(tmp_path: Path) -> None:
    """Posts are written at the end of the loop pass (after the poster's 200): they must
    still reach the client in the order they were made, text and binary alike, and all of
    them before the route response of the same invocation."""

    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                posts = [f"post {n}" for n in range(20)] + ["hex:ff00", "last"]
                await ws.send(json.dumps({"action": "echo", "do": "post_many", "posts": posts}))
                got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(len(posts) + 1)]
                assert got == [*posts[:20], b"\xff\x00", "last", "route response"]
                assert server.gateway is not None
                assert server.gateway._pass_end == []

    run(main())


def test_post_over_128_kb_is_413_and_exactly_128_kb_is_delivered(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _client(server)
            async with connect(server.ws_url, max_size=None) as ws:
                cid = await _connection_id(tmp_path)
                with pytest.raises(client.exceptions.PayloadTooLargeException):
                    await asyncio.to_thread(
                        client.post_to_connection, ConnectionId=cid, Data=b"x" * 131_073
                    )
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId=cid, Data=b"y" * 131_072
                )
                assert len(await ws.recv()) == 131_072
            client.close()

    run(main())


def test_post_while_connect_is_running_is_gone(tmp_path: Path) -> None:
    release = tmp_path / "release"

    async def main() -> None:
        async with started(tmp_path) as server:
            client = _client(server)

            async def open_slowly() -> Any:
                return await connect(f"{server.ws_url}?do=block&until={release}")

            opening = asyncio.create_task(open_slowly())
            cid = await _connection_id(tmp_path)
            assert server.gateway is not None and cid in server.gateway.pending
            with pytest.raises(client.exceptions.GoneException):
                await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"x")
            release.touch()
            ws = await opening
            await asyncio.to_thread(client.post_to_connection, ConnectionId=cid, Data=b"now")
            assert await ws.recv() == "now"
            await ws.close()
            client.close()

    run(main())


def _raw(server: DevServer, method: str, path: str, headers: dict[str, str]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=b"data" if method == "POST" else None, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_unsigned_request_is_403_and_unknown_id_is_410(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            status, headers, body = await asyncio.to_thread(
                _raw, server, "POST", "/dev/@connections/abc%3D", {}
            )
            assert status == 403
            assert headers["x-amzn-ErrorType"] == "ForbiddenException"
            assert json.loads(body) == {"message": "Missing Authentication Token"}
            # A forged header is refused before the connection is looked at.
            signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=x/y, Signature=z"}
            status, headers, _ = await asyncio.to_thread(
                _raw, server, "GET", "/dev/@connections/abc%3D", signed
            )
            assert (status, headers["x-amzn-ErrorType"]) == (403, "IncompleteSignatureException")
            client = _client(server)
            with pytest.raises(client.exceptions.GoneException):
                await asyncio.to_thread(client.get_connection, ConnectionId="abc=")
            client.close()
            status, _, _ = await asyncio.to_thread(_raw, server, "GET", "/nope", signed)
            assert status == 404

    run(main())


def test_post_is_429_when_the_client_does_not_read(tmp_path: Path) -> None:
    limits = {"write_buffer_limit_bytes": 64 * 1024}

    async def main() -> None:
        async with started(tmp_path, limits=limits) as server:
            client = _client(server)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            async with connect(server.ws_url, sock=sock, max_size=None, max_queue=None) as ws:
                cid = await _connection_id(tmp_path)
                ws.transport.pause_reading()  # the client stops reading its socket
                posted = 0
                with pytest.raises(client.exceptions.LimitExceededException):
                    while posted < 500:  # kernel buffers fill first, then the server's
                        await asyncio.to_thread(
                            client.post_to_connection, ConnectionId=cid, Data=b"z" * 131_072
                        )
                        posted += 1
                ws.transport.resume_reading()
                assert posted > 0
            client.close()

    run(main())


def test_unmodified_boto3_handler_posts_through_https_domain_name(tmp_path: Path) -> None:
    websocket = {"routes": {"sendmessage": "chat"}}

    async def main() -> None:
        async with started(tmp_path, websocket=websocket) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "sendmessage", "data": "hello all"}))
                assert await asyncio.wait_for(ws.recv(), 20) == "hello all"
                info = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert info == {"sourceIp": "127.0.0.1"}

    run(main())
