"""Each fixture stack is translated, then RUN: real WebSocket clients, schedules firing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from sources_helpers import FIXTURES, eventually, lines, serving
from websockets.asyncio.client import connect

from warmline.templates.cloudformation.read import translate_template
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform


def test_sam_chat_sendmessage_reaches_the_other_client_through_connections(
    tmp_path: Path,
) -> None:
    translation = translate_template(
        FIXTURES / "sam_chat" / "template.yaml",
        parameter_overrides=[f"LocalStoreDir={tmp_path} StageName=dev"],
    )
    assert translation.unsupported() == []
    assert [t.resource for t in translation.config.services.tables] == ["ConnectionsTable"]
    connections = tmp_path / "connections"

    async def main() -> None:
        async with serving(translation.config) as server:
            assert server.ws_url.endswith("/dev")
            async with connect(server.ws_url) as alice, connect(server.ws_url) as bob:
                await eventually(lambda: len(list(connections.glob("*"))) == 2)
                await alice.send(json.dumps({"action": "sendmessage", "data": "hi bob"}))
                assert await asyncio.wait_for(bob.recv(), 15) == "hi bob"
                assert await asyncio.wait_for(alice.recv(), 15) == "hi bob"
            await eventually(lambda: not list(connections.glob("*")))  # $disconnect ran
            server.trigger_schedule("SendMessageFunctionWarmUp")
            server.trigger_schedule("KeepConnectWarm")
            warm = await eventually(lambda: len(lines(tmp_path / "warmups.jsonl")) == 2 or None)
            assert warm
            fired = {(w["function"], w["source"]) for w in lines(tmp_path / "warmups.jsonl")}
            assert fired == {("sendmessage", "sam-schedule"), ("onconnect", "events-rule")}

    asyncio.run(main())


def test_serverless_routes_answer_with_route_responses_and_the_warmup_fires(
    tmp_path: Path,
) -> None:
    translation = translate_serverless(
        FIXTURES / "sls_relay" / "serverless.yml",
        options={"stage": "test"},
        env={"RELAY_RECORD_DIR": str(tmp_path), "RELAY_GREETING": "ahoy"},
    )
    config = translation.config
    assert config.websocket.stage == "test"
    assert config.websocket.route_selection_expression == "$request.body.type"
    schedule = config.schedules["relay-schedule-3"]
    assert schedule.input == {"warmer": True, "concurrency": 1}

    async def main() -> None:
        async with serving(config) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": "hello"}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
                assert reply["token"] == "ahoy: hello"
                assert reply["route"] == "prompt"
                assert (reply["function"], reply["memory"]) == ("relay-ws-test-relay", "512")
                assert (reply["mode"], reply["region"]) == ("relay", "eu-west-1")
                await ws.send(json.dumps({"type": "setup"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 15))["route"] == "$default"
            await eventually(lambda: len(lines(tmp_path / "connections.jsonl")) == 2 or None)
            routes = [r["route"] for r in lines(tmp_path / "connections.jsonl")]
            assert routes == ["$connect", "$disconnect"]
            assert lines(tmp_path / "connections.jsonl")[0]["table"] == "calls-test"
            server.trigger_schedule("relay-schedule-3")
            await eventually(lambda: lines(tmp_path / "warmups.jsonl"))
            warm = lines(tmp_path / "warmups.jsonl")[0]
            assert warm["function"] == "relay-ws-test-relay"
            assert warm["event"]["concurrency"] == 1

    asyncio.run(main())


def test_terraform_relay_answers_through_connections_and_the_rule_fires_on_its_own(
    tmp_path: Path,
) -> None:
    translation = translate_terraform(
        FIXTURES / "tf_relay", variables={"stage": "qa", "record_dir": str(tmp_path)}, env={}
    )
    config = translation.config
    assert config.region == "us-west-2"
    schedule = config.schedules["cr-relay-qa-warm"]
    assert (schedule.expression, schedule.input) == (
        "rate(5 minutes)",
        {"warmer": True, "stage": "qa"},
    )
    # shorten the 5-minute rule so the scheduler itself fires it during the test
    fast = dataclasses.replace(schedule, expression="rate(1 second)")
    config = dataclasses.replace(config, schedules={fast.name: fast})

    async def main() -> None:
        async with serving(config) as server:
            async with connect(server.ws_url) as ws:
                await ws.send(json.dumps({"type": "setup", "callSid": "CA1"}))
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": "hello"}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
                assert reply == {"type": "text", "token": "HI hello (qa)", "last": True}
            warm = await eventually(lambda: lines(tmp_path / "warmups.jsonl"))
            assert warm[0]["warmer"] is True and warm[0]["stage"] == "qa"
            assert server.scheduler.fired["cr-relay-qa-warm"] >= 1

    asyncio.run(main())
