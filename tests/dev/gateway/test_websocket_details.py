"""The small things API Gateway does exactly so, each pinned: headers, frames, times, 502."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from gateway_helpers import eventually, routed, run, started
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from warmline.dev.gateway.gateway import error_frame
from warmline.dev.server import DevServer

TRACE_RE = r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$"


def _client(server: DevServer) -> Any:
    keys = server.developer_credentials  # @connections checks signatures, as on AWS
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=server.connections_url,
        region_name="us-east-1",
        aws_access_key_id=keys.access_key,
        aws_secret_access_key=keys.secret_key,
        config=Config(retries={"max_attempts": 1}),
    )


def test_connect_headers_are_the_ones_api_gateway_forwards(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url):
                pass
            await eventually(lambda: routed(tmp_path, "$disconnect"))
        headers = routed(tmp_path, "$connect")[0]["headers"]
        names = {k.lower() for k in headers}
        assert not names & {"upgrade", "connection"}  # hop-by-hop: they end at API Gateway
        assert headers["X-Forwarded-Proto"] == "https"  # clients reach AWS over TLS only
        assert headers["X-Forwarded-Port"] == "443"
        assert re.match(TRACE_RE, headers["X-Amzn-Trace-Id"])
        assert headers["X-Forwarded-For"] == "127.0.0.1"
        assert "Sec-WebSocket-Key" in headers and "Sec-WebSocket-Version" in headers

    run(main())


def test_disconnect_headers_are_aws_fixed_set(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url, additional_headers=[("x-api-key", "k")]):
                pass
            gone = await eventually(lambda: routed(tmp_path, "$disconnect"))
        host = f"127.0.0.1:{server.port}"
        expected = {"Host": host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
        assert gone[0]["headers"] == expected
        assert gone[0]["multiValueHeaders"] == {k: [v] for k, v in expected.items()}

    run(main())


def test_error_frames_are_api_gateways_bytes(tmp_path: Path) -> None:
    """AWS writes ``{"message": "…", "connectionId":"…", "requestId":"…"}``: a space after
    the first colon and after the commas, none elsewhere (docs/protocols.md §2.6)."""
    websocket = {"routes": {"echo": {"function": "ws", "route_response": True}}}

    async def main() -> None:
        async with started(tmp_path, websocket=websocket) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "nothing"}))  # no route, no $default
                forbidden = await ws.recv()
                await ws.send(json.dumps({"action": "echo", "do": "raise"}))
                failed = await ws.recv()
        cid = routed(tmp_path, "echo")[0]["requestContext"]["connectionId"]
        rid = routed(tmp_path, "echo")[0]["requestContext"]["requestId"]
        assert failed == (
            f'{{"message": "Internal server error", "connectionId":"{cid}", "requestId":"{rid}"}}'
        )
        assert re.fullmatch(
            r'\{"message": "Forbidden", "connectionId":"' + re.escape(cid) + r'", '
            r'"requestId":"[A-Za-z0-9+/]{15}="\}',
            str(forbidden),
        )

    run(main())


def test_the_timeout_frame_is_byte_for_byte_the_observed_one() -> None:
    frame = error_frame("Endpoint request timed out", "yyyyyyyyyyyy=", "xxxxxxxxxx=")
    # Kludex/mangum#128, as the client received it
    assert frame == (
        '{"message": "Endpoint request timed out", "connectionId":"yyyyyyyyyyyy=", '
        '"requestId":"xxxxxxxxxx="}'
    )


def test_gone_exception_has_an_empty_message(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _client(server)
            with pytest.raises(client.exceptions.GoneException) as info:
                await asyncio.to_thread(
                    client.post_to_connection, ConnectionId="R1kmxc2VNjMCFIA=", Data=b"x"
                )
            client.close()
        assert info.value.response["Error"]["Message"] == ""
        assert str(info.value).endswith("operation: ")

    run(main())


def test_get_connection_connected_at_is_the_events_connected_at(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            client = _client(server)
            # a slow $connect: the connection exists only after it, connectedAt is its start
            async with connect(server.ws_url + "?do=sleep&seconds=0.3"):
                ctx = (await eventually(lambda: routed(tmp_path, "$connect")))[0]["requestContext"]
                info = await asyncio.to_thread(
                    client.get_connection, ConnectionId=ctx["connectionId"]
                )
            client.close()
        assert int(info["ConnectedAt"].timestamp() * 1000) == ctx["connectedAt"]

    run(main())


def test_posts_to_the_client_keep_an_idle_connection_open(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path, limits={"idle_timeout_s": 0.4}) as server:
            client = _client(server)
            async with connect(server.ws_url, ping_interval=None) as ws:
                cid = (await eventually(lambda: routed(tmp_path, "$connect")))[0]["requestContext"][
                    "connectionId"
                ]
                for n in range(8):  # 0.8 s of server-to-client messages only
                    await asyncio.to_thread(
                        client.post_to_connection, ConnectionId=cid, Data=f"{n}".encode()
                    )
                    assert await ws.recv() == f"{n}"
                    await asyncio.sleep(0.1)
                assert len(server.connections()) == 1
                with pytest.raises(ConnectionClosed) as info:  # silence: closed as before
                    await asyncio.wait_for(ws.recv(), 5)
            client.close()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001

    run(main())


@pytest.mark.parametrize(
    ("expression", "message", "route"),
    [
        ("${request.body.action}", {"action": "echo"}, "echo"),
        (
            "${request.body.service}/${request.body.action}",
            {"service": "chat", "action": "join"},
            "chat/join",
        ),
        ("$request.body.items[1].kind", {"items": [{"kind": "a"}, {"kind": "echo"}]}, "echo"),
        ("echo", {"anything": 1}, "echo"),  # a static expression
    ],
)
def test_documented_selection_expressions_route_messages(
    tmp_path: Path, expression: str, message: dict[str, Any], route: str
) -> None:
    websocket = {
        "route_selection_expression": expression,
        "routes": {
            route: {"function": "ws", "route_response": True},
            "$default": {"function": "ws", "route_response": True},
        },
    }

    async def main() -> None:
        async with started(tmp_path, websocket=websocket) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps(message))
                reply = json.loads(await ws.recv())
                await ws.send("not json")  # never selects a route
                other = json.loads(await ws.recv())
        assert reply["route"] == route and other["route"] == "$default"

    run(main())
