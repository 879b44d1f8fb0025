"""examples/llm-agent: its configuration loads as deployed (signatures on, the worker
granted and named in both templates), and it answers a signed call under ``warmline dev``
against a fake OpenAI-compatible model, grounded in the knowledge base."""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from warmline.agent.settings import AgentConfig, load_agent_config
from warmline.config.deploy import load_project
from warmline.templates.cloudformation.write import render_sam
from warmline.templates.plan import build_plan
from warmline.templates.terraform.write import render_terraform
from warmline.twilio.signature import compute_signature

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "llm-agent"
TOKEN = "llm-example-token"
KEY = "sk-example-not-a-real-key"

sys.path.insert(0, str(ROOT / "tests" / "agent" / "providers"))
from fake_model import Script, example_under_dev, fake_model, normalized  # noqa: E402


def test_the_example_config_loads_with_offload_auto_and_signatures_on() -> None:
    config = load_agent_config(EXAMPLE / "warmline.toml")
    assert (config.offload, config.worker, config.top_k) == ("auto", "worker", 3)
    assert config.llm is not None and config.llm["provider"] == "openai"
    assert config.llm["tools"] is True
    assert (
        config.answer_budget_s()
        < load_project(EXAMPLE / "warmline.toml").config.functions["worker"].timeout_s
    )  # the worker outlives the whole-answer budget
    text = (EXAMPLE / "warmline.toml").read_text() + (EXAMPLE / "app.py").read_text()
    assert "ALLOW_UNSIGNED" not in text.upper() and "allow_unsigned" not in text
    assert config == AgentConfig.from_mapping(
        tomllib.loads((EXAMPLE / "warmline.toml").read_text())["agent"]
    )


def test_deploy_render_grants_and_names_the_worker_from_the_agent_table() -> None:
    project = load_project(EXAMPLE / "warmline.toml")
    assert project.deploy.worker == "worker"
    plan = build_plan(project)
    sam = render_sam(plan)
    variables = [
        v["Properties"].get("Environment", {}).get("Variables", {})
        for v in sam["Resources"].values()
        if v["Type"] == "AWS::Serverless::Function"
    ]
    assert sum("WARMLINE_WORKER_FUNCTION" in v for v in variables) == 1  # the router only
    assert "lambda:InvokeFunction" in json.dumps(sam)
    terraform = render_terraform(plan)
    assert "WARMLINE_WORKER_FUNCTION" in terraform and "lambda:InvokeFunction" in terraform


@pytest.mark.slow
def test_the_example_answers_a_signed_call_under_warmline_dev(tmp_path: Path) -> None:
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

    script = Script("support hours", ["We answer ", "every day ", "of the week."])

    async def run(model_url: str) -> list[dict[str, Any]]:
        config = example_under_dev(
            model_url, tmp_path / "sessions.sqlite3", auth_token=TOKEN, api_key=KEY
        )
        sink = LogSink(console=None, path=tmp_path / "dev.log")
        server = DevServer(config, port=0, log_sink=sink)
        await server.start()
        try:
            from websockets.asyncio.client import connect

            url = server.ws_url
            signed = {"X-Twilio-Signature": compute_signature(url, {}, TOKEN)}
            async with connect(url, additional_headers=signed) as ws:
                setup = {"type": "setup", "sessionId": "VXexample", "callSid": "CAexample"}
                await ws.send(json.dumps(setup))
                frames: list[dict[str, Any]] = []
                prompt = {
                    "type": "prompt",
                    "voicePrompt": "What are your customer support hours?",
                    "last": True,
                }
                sent = False
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    frames.append(frame)
                    if frame.get("last") and not sent:
                        await ws.send(json.dumps(prompt))
                        sent = True
                    elif frame.get("last"):
                        return frames
        finally:
            await server.close()
            sink.close()

    with fake_model([script]) as model:
        frames = asyncio.run(run(model.url))
    answer = frames[[n for n, f in enumerate(frames) if f.get("last")][0] + 1 :]
    assert normalized("".join(f["token"] for f in answer)) == "We answer every day of the week."
    (request,) = model.server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "(support-hours)" in request.json["messages"][0]["content"]
    assert KEY not in (tmp_path / "dev.log").read_text()


def test_an_unsigned_handshake_is_refused_by_the_example() -> None:
    import importlib.util

    from warmline.testing import LambdaContext, websocket_event

    spec = importlib.util.spec_from_file_location("llm_agent_app", EXAMPLE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        event = websocket_event("CONNECT", connection_id="unsigned=")
        assert module.handler(event, LambdaContext())["statusCode"] in (401, 403)
    finally:
        module.app.close()
