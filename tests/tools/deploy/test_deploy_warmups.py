"""Warm-ups declared in ``warmline.toml`` reach the templates: an hourly rule with two
targets and a constant input (one target with its own), ``WARMLINE_WARMUP_INPUTS`` on each
target so the handlers short-circuit those inputs, and ``lambda:InvokeFunction`` on itself
for the function whose input asks lambda-warmer for a fan-out (as a policy of its own, so
the role and the function do not need each other first)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_projects import cfn_lint_command, write_project

from warmline.config.deploy import load_project
from warmline.core.warmup import WARMUP_INPUTS_ENV
from warmline.templates.cloudformation.write import write_sam
from warmline.templates.plan import SELF_INVOKE_SID, build_plan
from warmline.templates.terraform.write import write_terraform

HOURLY = """
[functions.ws]
handler = "app.handler"
code = "code"

[functions.connect]
handler = "app.handler"
code = "code"

[websocket.routes]
"$default" = "ws"

[schedules.hourly]
expression = "rate(1 hour)"
targets = ["ws", "connect"]
input = { ping = "hourly" }
inputs = { ws = { warmer = true, concurrency = 3 } }
warmup = true

[deploy]
stack_name = "calls"
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("hourly"), text=HOURLY)


def test_each_target_carries_its_input_as_a_warm_up(project: Path) -> None:
    config = load_project(project).config
    ws, connect = config.functions["ws"], config.functions["connect"]
    assert json.loads(ws.environment[WARMUP_INPUTS_ENV]) == [{"concurrency": 3, "warmer": True}]
    assert json.loads(connect.environment[WARMUP_INPUTS_ENV]) == [{"ping": "hourly"}]


def test_sam_renders_the_rule_the_inputs_and_the_self_invoke(project: Path, tmp_path: Path) -> None:
    path = write_sam(build_plan(load_project(project)), tmp_path / "deploy")
    template = json.loads(path.read_text())
    res = template["Resources"]
    rule = res["HourlyRule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    inputs = {t["Id"]: json.loads(t["Input"]) for t in rule["Targets"]}
    assert inputs == {"ws": {"warmer": True, "concurrency": 3}, "connect": {"ping": "hourly"}}
    for lid, expected in (
        ("Ws", [{"concurrency": 3, "warmer": True}]),
        ("Connect", [{"ping": "hourly"}]),
    ):
        env = res[f"{lid}Function"]["Properties"]["Environment"]["Variables"]
        assert json.loads(env[WARMUP_INPUTS_ENV]) == expected
    policy = res["WsSelfPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "WsRole"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Sid"] == SELF_INVOKE_SID
    assert statement["Action"] == ["lambda:InvokeFunction"]
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["WsFunction", "Arn"]},
        {"Fn::Sub": "${WsFunction.Arn}:*"},
    ]
    # Only the function that fans out may invoke itself; no inline policy names itself.
    assert "ConnectSelfPolicy" not in res
    inline = json.dumps(res["WsRole"]["Properties"]["Policies"])
    assert "WsFunction" not in inline


@pytest.mark.slow
def test_the_sam_template_passes_cfn_lint(project: Path, tmp_path: Path) -> None:
    path = write_sam(build_plan(load_project(project)), tmp_path / "deploy")
    lint = subprocess.run(
        [*cfn_lint_command(), "--include-checks", "I", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_terraform_renders_the_rule_the_inputs_and_the_self_invoke(
    project: Path, tmp_path: Path
) -> None:
    hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (test extra)")
    path = write_terraform(build_plan(load_project(project)), tmp_path / "infra")
    options = hcl2.SerializationOptions(
        strip_string_quotes=True, with_comments=False, explicit_blocks=False
    )
    doc: dict[str, Any] = hcl2.loads(path.read_text(), serialization_options=options)
    resources = _index(doc, "resource")
    data = _index(doc, "data")
    rule = resources[("aws_cloudwatch_event_rule", "hourly")]
    assert rule["schedule_expression"] == "rate(1 hour)"
    assert json.loads(resources[("aws_cloudwatch_event_target", "hourly_ws")]["input"]) == {
        "warmer": True,
        "concurrency": 3,
    }
    assert json.loads(resources[("aws_cloudwatch_event_target", "hourly_connect")]["input"]) == {
        "ping": "hourly"
    }
    for fn, expected in (
        ("ws", [{"concurrency": 3, "warmer": True}]),
        ("connect", [{"ping": "hourly"}]),
    ):
        env = resources[("aws_lambda_function", fn)]["environment"][0]["variables"]
        assert json.loads(env[WARMUP_INPUTS_ENV]) == expected
    (statement,) = data[("aws_iam_policy_document", "ws_self")]["statement"]
    assert statement["actions"] == ["lambda:InvokeFunction"]
    assert statement["resources"] == [
        "${aws_lambda_function.ws.arn}",
        "${aws_lambda_function.ws.arn}:*",
    ]
    attached = resources[("aws_iam_role_policy", "ws_self")]
    assert attached["role"] == "${aws_iam_role.ws.id}"
    assert ("aws_iam_role_policy", "connect_self") not in resources
    # the function depends on its main policy only: no cycle through its own ARN
    assert "ws_self" not in json.dumps(resources[("aws_lambda_function", "ws")]["depends_on"])


def _index(doc: dict[str, Any], section: str) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in doc.get(section, []):
        for kind, named in entry.items():
            for name, body in named.items():
                out[(kind.strip('"'), name.strip('"'))] = body
    return out
