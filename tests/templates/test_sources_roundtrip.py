"""What ``warmline deploy render`` writes (SAM, Terraform), ``warmline dev`` reads back.

The rendered templates point at the zips ``warmline deploy package`` builds; the test
zips the fixture code there itself (no pip), translates each template, checks it matches
the warmline config it came from, and runs it with a real WebSocket client.
"""

from __future__ import annotations

import asyncio
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sources_helpers import serving
from websockets.asyncio.client import connect

from warmline.config import DevConfig
from warmline.templates.cloudformation.read import translate_template
from warmline.templates.report import Translation
from warmline.templates.terraform.read import translate_terraform

deploy_model = pytest.importorskip("warmline.templates.plan")
deploy_settings = pytest.importorskip("warmline.config.deploy")
render_sam = pytest.importorskip("warmline.templates.cloudformation.write")
render_terraform = pytest.importorskip("warmline.templates.terraform.write")

PROJECT = """
[functions.agent]
handler = "app.handler"
code = "code"
memory = 512
timeout = 29
environment = { GREETING = "hi" }

[functions.worker]
handler = "app.handler"
code = "code"
timeout = 60

[websocket]
stage = "prod"
route_selection_expression = "$request.body.type"

[websocket.routes]
"$connect" = "agent"
"$default" = { function = "agent", route_response = true }
"$disconnect" = "agent"
"prompt" = { function = "agent", route_response = true }

[schedules.warm]
expression = "rate(5 minutes)"
targets = ["agent", "worker"]
input = { warmer = true, concurrency = 2 }

[sqs.jobs]
function = "worker"
batch_size = 20
report_batch_item_failures = true
max_receive_count = 3

[sns.alerts]
functions = ["worker"]

[deploy]
stack_name = "calls"
"""
APP = """
import json
import os


def handler(event, context):
    body = json.loads(event.get("body") or "{}")
    reply = {"greeting": os.environ.get("GREETING"), "type": body.get("type")}
    return {"statusCode": 200, "body": json.dumps(reply)}
"""


def _render(tmp_path: Path) -> tuple[DevConfig, Path, Path]:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(APP)
    (tmp_path / "warmline.toml").write_text(PROJECT)
    project = deploy_settings.load_project(tmp_path / "warmline.toml")
    plan = deploy_model.build_plan(project)
    sam = render_sam.write_sam(plan, tmp_path / "sam")
    tf = render_terraform.write_terraform(plan, tmp_path / "tf")
    for rendered in (sam, tf):
        for zipped in re.findall(r"[\w./-]*build/lambda/[\w-]+\.zip", rendered.read_text()):
            target = (rendered.parent / zipped).resolve()
            target.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(target, "w") as archive:
                archive.write(tmp_path / "code" / "app.py", "app.py")
    return project.config, sam, tf.parent


def _shape(config: DevConfig, names: dict[str, str]) -> dict[str, Any]:
    """The config with functions renamed to their warmline names, for comparison."""
    return {
        "functions": sorted(
            (names[f.name], f.handler, f.memory_mb, f.timeout_s, f.environment.get("GREETING"))
            for f in config.functions.values()
        ),
        "websocket": (
            config.websocket.stage,
            config.websocket.route_selection_expression,
            sorted(
                (r.key, names[r.function], r.route_response)
                for r in config.websocket.routes.values()
            ),
        ),
        "schedules": sorted(
            (s.expression, json.dumps(s.input, sort_keys=True), sorted(names[t] for t in s.targets))
            for s in config.schedules.values()
        ),
        "sqs": sorted(
            (names[q.function], q.batch_size, q.report_batch_item_failures, q.max_receive_count)
            for q in config.sqs.values()
        ),
        "sns": sorted(sorted(names[f] for f in t.functions) for t in config.sns.values()),
    }


def _names(translation: Translation) -> dict[str, str]:
    """Translated function name -> warmline name (by suffix: AgentFunction, calls-agent)."""
    out = {}
    for name in translation.config.functions:
        for warmline_name in ("agent", "worker"):
            if warmline_name in name.lower():
                out[name] = warmline_name
    return out


async def _talk(config: DevConfig) -> None:
    async with serving(config) as server:
        assert server.ws_url.endswith("/prod")
        async with connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "prompt"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 15)) == {
                "greeting": "hi",
                "type": "prompt",
            }


def test_rendered_sam_and_terraform_read_back_as_the_same_config(tmp_path: Path) -> None:
    original, sam, tf = _render(tmp_path)
    expected = _shape(original, {n: n for n in original.functions})
    for translation in (translate_template(sam), translate_terraform(tf, env={})):
        assert _shape(translation.config, _names(translation)) == expected
        assert translation.unsupported() == []
        (table,) = translation.config.services.tables
        assert (table.keys, table.attributes, table.ttl_attribute) == (
            (("pk", "HASH"),),
            (("pk", "S"),),
            "expires_at",
        )
        asyncio.run(_talk(translation.config))
