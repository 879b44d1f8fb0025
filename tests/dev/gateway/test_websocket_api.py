"""The WebSocket API end to end: a real client against DevServer and the real runtime."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from gateway_helpers import AWS_ID_RE, eventually, records, routed, run, started
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

CLF_RE = r"^\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000$"


async def _closed(ws: Any) -> ConnectionClosed:
    """Receive until the server closes; the ConnectionClosed describing it."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as exc:
        return exc


def test_connect_event_has_headers_query_and_the_full_request_context(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            url = server.ws_url + "?token=abc&multi=1&multi=2"
            headers = [("X-Twilio-Signature", "sig"), ("X-Multi", "a"), ("X-Multi", "b")]
            async with connect(url, additional_headers=headers, user_agent_header="agent/1"):
                pass
            await eventually(lambda: routed(tmp_path, "$disconnect"))
        event = routed(tmp_path, "$connect")[0]
        assert event["headers"]["X-Twilio-Signature"] == "sig"
        assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
        assert event["headers"]["Host"] == f"127.0.0.1:{server.port}"
        assert "Sec-WebSocket-Key" in event["headers"]
        assert event["queryStringParameters"] == {"token": "abc", "multi": "2"}
        assert event["multiValueQueryStringParameters"]["multi"] == ["1", "2"]
        assert event["isBase64Encoded"] is False
        ctx = event["requestContext"]
        assert ctx["routeKey"] == "$connect" and ctx["eventType"] == "CONNECT"
        assert "messageId" in ctx and ctx["messageId"] is None
        assert ctx["messageDirection"] == "IN"
        assert ctx["stage"] == "dev" and ctx["apiId"] == "warmline00"  # ten [a-z0-9], as AWS ids
        assert ctx["domainName"] == f"127.0.0.1:{server.port}"
        assert ctx["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "agent/1"}
        for key in ("connectionId", "requestId", "extendedRequestId"):
            assert re.match(AWS_ID_RE, ctx[key]), (key, ctx[key])
        assert re.match(CLF_RE, ctx["requestTime"])
        assert isinstance(ctx["requestTimeEpoch"], int) and isinstance(ctx["connectedAt"], int)
        assert abs(ctx["requestTimeEpoch"] - ctx["connectedAt"]) < 60_000

    run(main())


def test_message_and_disconnect_events_repeat_the_connection_facts(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "echo"}))
                await ws.recv()
                await ws.close(code=4000, reason="bye")
            await eventually(lambda: routed(tmp_path, "$disconnect"))
        connect_ctx = routed(tmp_path, "$connect")[0]["requestContext"]
        message = routed(tmp_path, "echo")[0]
        ctx = message["requestContext"]
        assert ctx["eventType"] == "MESSAGE" and re.match(AWS_ID_RE, ctx["messageId"])
        assert message["body"] == json.dumps({"action": "echo"})
        assert message["isBase64Encoded"] is False
        assert "headers" not in message and "queryStringParameters" not in message
        assert ctx["connectionId"] == connect_ctx["connectionId"]
        assert ctx["connectedAt"] == connect_ctx["connectedAt"]
        assert ctx["requestId"] != connect_ctx["requestId"]
        gone = routed(tmp_path, "$disconnect")[0]
        dctx = gone["requestContext"]
        assert dctx["eventType"] == "DISCONNECT" and "messageId" not in dctx
        assert (dctx["disconnectStatusCode"], dctx["disconnectReason"]) == (4000, "bye")
        assert dctx["connectionId"] == connect_ctx["connectionId"]
        assert "Sec-WebSocket-Key" not in gone["headers"]
        assert gone["headers"]["Host"] == f"127.0.0.1:{server.port}"

    run(main())


@pytest.mark.parametrize(
    ("query", "status"),
    [("status=403", 403), ("status=401", 401), ("do=raise", 502)],  # a raise: 502 (§8.6)
)
def test_connect_refused_with_the_integration_status(
    tmp_path: Path, query: str, status: int
) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"{server.ws_url}?{query}"):
                    pass
            assert info.value.response.status_code == status
            assert server.connections() == []
        assert routed(tmp_path, "$disconnect") == []

    run(main())


def test_connect_past_the_integration_timeout_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path, limits={"integration_timeout_s": 0.3}) as server:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"{server.ws_url}?do=sleep&seconds=1"):
                    pass
            assert info.value.response.status_code == 504

    run(main())


def test_connect_response_headers_select_the_subprotocol(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url, subprotocols=["relay", "other"]) as ws:  # type: ignore[list-item]
                assert ws.subprotocol == "relay"

    run(main())


def test_wrong_stage_is_not_found(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{server.port}/prod"):
                    pass
            assert info.value.response.status_code == 404

    run(main())


def test_route_selection_custom_default_and_non_json(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                replies = []
                bodies = [
                    {"action": "echo"},
                    {"action": "nope"},
                    "plain text",
                    [1, 2],
                    {"action": 5},
                ]
                for value in bodies:
                    body = value if isinstance(value, str) else json.dumps(value)
                    await ws.send(body)
                    replies.append(json.loads(await ws.recv()))
        assert [r["route"] for r in replies] == ["echo"] + ["$default"] * 4
        assert replies[2]["echo"] == "plain text"

    run(main())


def test_selection_expression_follows_a_nested_path(tmp_path: Path) -> None:
    websocket = {
        "route_selection_expression": "$request.body.meta.kind",
        "routes": {"echo": {"function": "ws", "route_response": True}},
    }

    async def main() -> None:
        async with started(tmp_path, websocket=websocket) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"meta": {"kind": "echo"}}))
                assert json.loads(await ws.recv())["route"] == "echo"
                await ws.send(json.dumps({"action": "echo"}))
                forbidden = json.loads(await ws.recv())
        # no $default route: AWS answers with a Forbidden frame and keeps the connection
        assert forbidden["message"] == "Forbidden"
        assert re.match(AWS_ID_RE, forbidden["connectionId"])
        assert re.match(AWS_ID_RE, forbidden["requestId"])

    run(main())


def test_return_value_is_sent_only_on_routes_with_a_route_response(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            assert server.gateway is not None
            gateway = server.gateway
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "quiet"}))
                await eventually(lambda: routed(tmp_path, "quiet"))
                await eventually(lambda: gateway.in_flight == 0)
                await ws.send(json.dumps({"action": "echo", "do": "plain"}))
                first = json.loads(await ws.recv())
        # the quiet route's {"statusCode": 200, "body": ...} never reached the client;
        # a non-proxy return value on a route-response route is sent as JSON
        assert first == {"route": "echo", "plain": True}

    run(main())


def test_integration_timeout_sends_the_aws_frame_and_keeps_the_connection(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        async with started(tmp_path, limits={"integration_timeout_s": 0.3}) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "echo", "do": "sleep", "seconds": 1.0}))
                frame = json.loads(await ws.recv())
                await ws.send(json.dumps({"action": "echo"}))
                after = json.loads(await ws.recv())
                # the Lambda runs on to completion after API Gateway gave up
                await eventually(lambda: (tmp_path / "slept.txt").exists())
        event = routed(tmp_path, "echo")[0]["requestContext"]
        assert frame == {
            "message": "Endpoint request timed out",
            "connectionId": event["connectionId"],
            "requestId": event["requestId"],
        }
        assert after["route"] == "echo"

    run(main())


def test_handler_error_sends_internal_server_error_frame(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "quiet", "do": "raise"}))
                frame = json.loads(await ws.recv())
                await ws.send(json.dumps({"action": "echo"}))
                assert json.loads(await ws.recv())["route"] == "echo"
        event = routed(tmp_path, "quiet")[0]["requestContext"]
        assert frame == {
            "message": "Internal server error",
            "connectionId": event["connectionId"],
            "requestId": event["requestId"],
        }

    run(main())


def test_messages_of_one_connection_run_concurrently(tmp_path: Path) -> None:
    release = tmp_path / "release"

    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                # the first message blocks until released; the second must not wait for it
                await ws.send(json.dumps({"action": "echo", "do": "block", "until": str(release)}))
                await ws.send(json.dumps({"action": "echo", "n": 2}))
                first = json.loads(await asyncio.wait_for(ws.recv(), 4))
                release.touch()
                second = json.loads(await asyncio.wait_for(ws.recv(), 4))
        assert '"n": 2' in first["echo"] and "block" in second["echo"]

    run(main())


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"binary", 1003),
        ("x" * (32 * 1024 + 1), 1009),  # one frame over 32 KB
        ([("y" * 30_000) for _ in range(5)], 1009),  # fragments each < 32 KB, message > 128 KB
    ],
    ids=["binary", "frame-over-32KB", "message-over-128KB"],
)
def test_protocol_limits_close_the_connection_then_disconnect_fires(
    tmp_path: Path, payload: Any, code: int
) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url, max_size=None) as ws:
                await ws.send(payload)
                closed = await _closed(ws)
            assert closed.rcvd is not None and closed.rcvd.code == code
            gone = await eventually(lambda: routed(tmp_path, "$disconnect"))
            assert gone[0]["requestContext"]["disconnectStatusCode"] == code
            assert server.connections() == []
        assert routed(tmp_path, "$default") == []

    run(main())


def test_message_just_under_the_limits_is_delivered(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(["a" * 32 * 1024 for _ in range(4)])  # exactly 128 KB
                reply = json.loads(await ws.recv())
        assert len(reply["echo"]) == 128 * 1024

    run(main())


def test_idle_connection_is_closed_but_data_frames_keep_it_open(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path, limits={"idle_timeout_s": 0.4}) as server:
            async with connect(server.ws_url, ping_interval=None) as ws:
                for _ in range(8):  # 0.8 s of activity, twice the idle timeout
                    await ws.send(json.dumps({"action": "quiet"}))
                    await asyncio.sleep(0.1)
                assert len(server.connections()) == 1
                closed = await _closed(ws)
            assert closed.rcvd is not None
            assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "Going away")
            gone = await eventually(lambda: routed(tmp_path, "$disconnect"))
            assert gone[0]["requestContext"]["disconnectStatusCode"] == 1001

    run(main())


def test_connection_is_closed_at_the_maximum_duration_even_when_active(tmp_path: Path) -> None:
    async def main() -> None:
        limits = {"max_connection_s": 0.5, "idle_timeout_s": 30}
        async with started(tmp_path, limits=limits) as server:
            async with connect(server.ws_url) as ws:

                async def chatter() -> None:
                    while True:
                        await ws.send(json.dumps({"action": "quiet"}))
                        await asyncio.sleep(0.05)

                task = asyncio.create_task(chatter())
                closed = await _closed(ws)
                task.cancel()
                with pytest.raises((asyncio.CancelledError, ConnectionClosed)):
                    await task
            assert closed.rcvd is not None and closed.rcvd.code == 1001
            await eventually(lambda: routed(tmp_path, "$disconnect"))

    run(main())


def test_connections_are_listed_while_open(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            async with connect(server.ws_url) as a, connect(server.ws_url) as b:
                assert a is not b
                listed = server.connections()
                ids = {c["requestContext"]["connectionId"] for c in routed(tmp_path, "$connect")}
                assert {c.connection_id for c in listed} == ids and len(ids) == 2
            await eventually(lambda: not server.connections())
            await eventually(lambda: len(routed(tmp_path, "$disconnect")) == 2)
        assert len(records(tmp_path)) == 4  # 2 x $connect, 2 x $disconnect

    run(main())


def test_a_finished_message_is_freed_without_the_garbage_collector(tmp_path: Path) -> None:
    """Under load, messages that only the collector could free (cycles between a message,
    its invocation and its timers) piled up into thousands of objects per collection and
    pauses of several ms in the emulator's loop."""
    import gc

    async def main() -> None:
        async with started(tmp_path) as server:
            assert server.gateway is not None
            gateway = server.gateway
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"action": "echo"}))  # cold: the environment
                await asyncio.wait_for(ws.recv(), 10)
                await eventually(lambda: gateway.in_flight == 0)
                gc.collect()
                gc.disable()
                try:
                    for n in range(20):  # warm: the per-message path
                        await ws.send(json.dumps({"action": "echo", "n": n}))
                        await asyncio.wait_for(ws.recv(), 10)
                    await eventually(lambda: gateway.in_flight == 0)
                    from warmline.dev.gateway.gateway import _PendingMessage
                    from warmline.dev.runtime.invocation import WarmInvocation

                    kinds = (_PendingMessage, WarmInvocation)
                    left = [o for o in gc.get_objects() if isinstance(o, kinds)]
                    assert left == []
                finally:
                    gc.enable()

    run(main())


def test_a_message_the_runtime_cannot_take_is_dropped_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Routing a message when the runtime refuses it (here: closed under a live gateway)
    must not leave the message pending (nor stop the other messages of the same pass)."""

    async def main() -> None:
        async with started(tmp_path) as server:
            assert server.gateway is not None
            gateway = server.gateway
            async with connect(server.ws_url) as ws:
                await server.runtime.close()
                await ws.send(json.dumps({"action": "echo", "n": 1}))
                await ws.send(json.dumps({"action": "echo", "n": 2}))
                seen: list[str] = []

                def both_logged() -> bool:
                    seen.append(capsys.readouterr().err)
                    return "".join(seen).count("runtime is closed") == 2

                await eventually(both_logged)
                assert gateway.in_flight == 0

    run(main())
