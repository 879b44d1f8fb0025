"""Provisioned concurrency, SnapStart and reserved concurrency in both renderers.

The full project with ``provisioned_concurrency`` on the agent and ``snapstart`` on the
worker: the SAM template passes cfn-lint and ``sam validate --lint``; ``main.tf`` uses
only arguments of the AWS provider's schema (tests/tools/deploy/fixtures), for every
resource kind it writes, and requires the provider release that has them; every trigger
calls the alias in both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_projects import FULL, cfn_lint_command, write_project

from warmline.config.deploy import load_project
from warmline.errors import ConfigurationError
from warmline.templates.cloudformation.write import write_sam
from warmline.templates.plan import Plan, build_plan
from warmline.templates.terraform.write import AWS_PROVIDER_VERSION, write_terraform

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (test extra)")

SCHEMA = Path(__file__).with_name("fixtures") / "aws_provider_schema.json"
#: Where `make sam-cli` installs SAM CLI (its own venv: its pins clash with the project's).
SAM_TOOL = Path.home() / ".cache" / "warmline-tools" / "sam" / "bin" / "sam"
WORKER_HEAD = "[deploy.functions.worker]\np99_ms = 20000\n"
STARTUP = (
    WORKER_HEAD + "snapstart = true\n\n[deploy.functions.agent]\nprovisioned_concurrency = 2\n"
)
#: Terraform's meta-arguments: allowed in every resource, in no provider schema.
META = {"depends_on", "count", "for_each", "provider", "lifecycle"}


def startup_plan(directory: Path, replace: tuple[str, str] = (WORKER_HEAD, STARTUP)) -> Plan:
    return build_plan(load_project(write_project(directory, text=FULL.replace(*replace))))


def parse_tf(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(
        strip_string_quotes=True, with_comments=False, explicit_blocks=False
    )
    return hcl2.loads(path.read_text(), serialization_options=options)  # type: ignore[no-any-return]


def tf_resources(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for entry in doc.get("resource", []):
        for kind, named in entry.items():
            for name, body in named.items():
                out[(kind.strip('"'), name.strip('"'))] = body
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("publish")
    plan = startup_plan(base / "project")
    sam = write_sam(plan, base / "project" / "deploy")
    tf = write_terraform(plan, base / "project" / "infra")
    return {
        "sam_path": sam,
        "sam": json.loads(sam.read_text()),
        "tf_path": tf,
        "tf_text": tf.read_text(),
        "tf": tf_resources(parse_tf(tf)),
    }


# --- warmline.toml --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("provisioned_concurrency = 0", "provisioned_concurrency must be a positive integer"),
        ("provisioned_concurrency = true", "provisioned_concurrency must be a positive integer"),
        ('snapstart = "yes"', "snapstart must be true or false"),
        ("snapstart = true\nprovisioned_concurrency = 1", "cannot both apply to one version"),
    ],
)
def test_bad_startup_options_are_named(tmp_path: Path, options: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        startup_plan(tmp_path, (WORKER_HEAD, WORKER_HEAD + options + "\n"))


def test_snapstart_needs_python_312(tmp_path: Path) -> None:
    # The default runtime (python3.12) takes it: see `rendered`.
    text = FULL.replace(WORKER_HEAD, STARTUP).replace(
        'stack_name = "calls"\n', 'stack_name = "calls"\nruntime = "python3.11"\n'
    )
    with pytest.raises(ConfigurationError, match="snapstart needs python3.12 or newer"):
        build_plan(load_project(write_project(tmp_path, text=text)))


def test_provisioned_concurrency_cannot_exceed_reserved(tmp_path: Path) -> None:
    text = FULL.replace(WORKER_HEAD, STARTUP).replace(
        "memory = 512\n", "memory = 512\nreserved_concurrency = 1\n"
    )
    with pytest.raises(ConfigurationError, match=r"provisioned_concurrency \(2\) exceeds .*\(1\)"):
        build_plan(load_project(write_project(tmp_path, text=text)))


# --- SAM ------------------------------------------------------------------------------------


def test_sam_publishes_with_the_options(rendered: dict[str, Any]) -> None:
    res = rendered["sam"]["Resources"]
    agent = res["AgentFunction"]["Properties"]
    worker = res["WorkerFunction"]["Properties"]
    assert agent["AutoPublishAlias"] == worker["AutoPublishAlias"] == "live"
    assert agent["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert "SnapStart" not in agent
    assert worker["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "ProvisionedConcurrencyConfig" not in worker


def test_sam_triggers_call_the_alias(rendered: dict[str, Any]) -> None:
    res = rendered["sam"]["Resources"]
    text = json.dumps({k: v for k, v in res.items() if v["Type"] != "AWS::CloudWatch::Alarm"})
    for fn in ("Agent", "Worker"):
        # Only the function's own definition and its URL's target name it unqualified.
        assert f'"Ref": "{fn}Function"' not in text
        assert f"${{{fn}Function.Arn}}" not in text
    url = res["AgentUrl"]["Properties"]
    assert url == {"TargetFunctionArn": {"Fn::GetAtt": ["AgentFunction", "Arn"]},
                   "AuthType": "NONE", "Qualifier": "live"}  # fmt: skip
    assert res["AgentApiPermission"]["Properties"]["FunctionName"] == {
        "Ref": "AgentFunctionAliaslive"
    }
    assert "${AgentFunctionAliaslive}/invocations" in res["AgentIntegration"]["Properties"][
        "IntegrationUri"]["Fn::Sub"]  # fmt: skip
    assert res["JobsMapping"]["Properties"]["FunctionName"] == {"Ref": "WorkerFunctionAliaslive"}
    env = res["AgentFunction"]["Properties"]["Environment"]["Variables"]
    assert env["WARMLINE_WORKER_FUNCTION"] == {"Ref": "WorkerFunctionAliaslive"}
    invoke = next(
        st
        for st in res["AgentRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        if st["Sid"] == "InvokeWorker"
    )
    assert invoke["Resource"] == [{"Ref": "WorkerFunctionAliaslive"}]
    # Alarms still watch the function (every version).
    dims = res["AgentErrorsAlarm"]["Properties"]["Dimensions"]
    assert dims == [{"Name": "FunctionName", "Value": {"Ref": "AgentFunction"}}]


@pytest.mark.slow
def test_sam_template_passes_cfn_lint(rendered: dict[str, Any]) -> None:
    lint = subprocess.run(
        [*cfn_lint_command(), "--include-checks", "I", "--", str(rendered["sam_path"])],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert (lint.returncode, lint.stdout.strip()) == (0, ""), lint.stdout + lint.stderr


def sam_command() -> str:
    """SAM CLI: $WARMLINE_SAM, `sam` on PATH, or the one `make sam-cli` installs."""
    for candidate in (os.environ.get("WARMLINE_SAM"), shutil.which("sam"), str(SAM_TOOL)):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("SAM CLI is not installed (make sam-cli puts it in ~/.cache/warmline-tools)")


@pytest.mark.slow
def test_sam_template_passes_sam_validate_lint(rendered: dict[str, Any]) -> None:
    done = subprocess.run(
        [sam_command(), "validate", "--lint", "--template-file", str(rendered["sam_path"]),
         "--region", "us-east-1"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


# --- Terraform ------------------------------------------------------------------------------


def test_terraform_publishes_with_the_options(rendered: dict[str, Any]) -> None:
    tf = rendered["tf"]
    assert tf[("aws_lambda_function", "agent")]["publish"] is True
    assert tf[("aws_lambda_function", "worker")]["snap_start"] == [
        {"apply_on": "PublishedVersions"}
    ]
    assert "snap_start" not in tf[("aws_lambda_function", "agent")]
    for fn in ("agent", "worker"):
        alias = tf[("aws_lambda_alias", fn)]
        assert alias["name"] == "live"
        assert alias["function_version"] == f"${{aws_lambda_function.{fn}.version}}"
    pc = tf[("aws_lambda_provisioned_concurrency_config", "agent")]
    assert pc["provisioned_concurrent_executions"] == 2
    assert pc["qualifier"] == "${aws_lambda_alias.agent.name}"
    assert ("aws_lambda_provisioned_concurrency_config", "worker") not in tf


def test_terraform_triggers_call_the_alias(rendered: dict[str, Any]) -> None:
    tf = rendered["tf"]
    for (kind, name), body in tf.items():
        if kind in ("aws_cloudwatch_metric_alarm", "aws_lambda_alias"):
            continue
        text = json.dumps(body)
        assert not re.search(r"aws_lambda_function\.(agent|worker)\.(arn|invoke_arn)\b", text), name
        if kind in ("aws_lambda_permission", "aws_lambda_function_url"):
            assert body["qualifier"] == f"${{aws_lambda_alias.{body_fn(body)}.name}}", name
    integration = tf[("aws_apigatewayv2_integration", "agent")]
    assert integration["integration_uri"] == "${aws_lambda_alias.agent.invoke_arn}"
    env = tf[("aws_lambda_function", "agent")]["environment"][0]["variables"]
    assert env["WARMLINE_WORKER_FUNCTION"] == "${aws_lambda_alias.worker.arn}"


def body_fn(body: dict[str, Any]) -> str:
    match = re.fullmatch(r"\$\{aws_lambda_function\.(\w+)\.function_name\}", body["function_name"])
    assert match is not None, body
    return match.group(1)


def provider_schema() -> tuple[dict[str, Any], dict[str, str]]:
    """Resource schemas (the excerpt, or $WARMLINE_TF_PROVIDER_SCHEMA's full dump) and the
    release that added each newer argument."""
    excerpt = json.loads(SCHEMA.read_text())
    path = os.environ.get("WARMLINE_TF_PROVIDER_SCHEMA")
    doc = json.loads(Path(path).read_text()) if path else excerpt
    schemas = doc["provider_schemas"]["registry.terraform.io/hashicorp/aws"]["resource_schemas"]
    return schemas, excerpt["since"]


def unknown_arguments(body: dict[str, Any], block: dict[str, Any], where: str) -> list[str]:
    """The keys of ``body`` its schema ``block`` does not define (or only computes)."""
    out = []
    attributes = block.get("attributes", {})
    nested = block.get("block_types", {})
    for key, value in body.items():
        if key in META or key.startswith("__"):
            continue
        if key in nested:
            for item in value if isinstance(value, list) else [value]:
                out += unknown_arguments(item, nested[key]["block"], f"{where}.{key}")
        elif key not in attributes or not (
            attributes[key].get("optional") or attributes[key].get("required")
        ):
            out.append(f"{where}.{key}")
    return out


def test_terraform_arguments_exist_in_the_provider_schema(rendered: dict[str, Any]) -> None:
    # Every kind the file uses must have a schema: a kind the renderer starts using without
    # one fails here instead of going unchecked.
    schemas, _ = provider_schema()
    kinds = {kind for kind, _ in rendered["tf"]}
    assert sorted(kinds - schemas.keys()) == []
    assert {"aws_cloudwatch_metric_alarm", "aws_apigatewayv2_stage", "aws_lambda_alias"} <= kinds
    problems: list[str] = []
    for (kind, name), body in rendered["tf"].items():
        problems += unknown_arguments(body, schemas[kind]["block"], f"{kind}.{name}")
    assert problems == []


def test_the_provider_constraint_admits_only_releases_with_every_argument(
    rendered: dict[str, Any],
) -> None:
    _, since = provider_schema()
    text = rendered["tf_text"]
    floor = re.fullmatch(r"~>\s*(\d+)\.(\d+)", AWS_PROVIDER_VERSION)
    assert floor is not None, AWS_PROVIDER_VERSION
    assert f'version = "{AWS_PROVIDER_VERSION}"' in text
    used = [v for k, v in since.items() if re.search(rf"\b{k.split('.')[1]}\s*=", text)]
    assert used, "the file uses an argument newer than 6.0"
    need = max(tuple(map(int, v.split(".")[:2])) for v in used)
    assert (int(floor.group(1)), int(floor.group(2))) >= need


def test_schema_check_rejects_an_unknown_argument() -> None:
    schemas, _ = provider_schema()
    block = schemas["aws_lambda_alias"]["block"]
    body = {"name": "live", "function_name": "f", "function_version": "1", "qualifier": "x"}
    assert unknown_arguments(body, block, "alias") == ["alias.qualifier"]
    computed = {"name": "live", "function_name": "f", "function_version": "1", "arn": "a"}
    assert unknown_arguments(computed, block, "alias") == ["alias.arn"]
    stage = schemas["aws_apigatewayv2_stage"]["block"]
    logs = {"destination_arn": "a", "format": "f", "level": "INFO"}
    nested = {"api_id": "a", "name": "live", "access_log_settings": logs}
    assert unknown_arguments(nested, stage, "stage") == ["stage.access_log_settings.level"]


# --- reserved concurrency -------------------------------------------------------------------


def test_reserved_concurrency_reaches_both_renderers(tmp_path: Path) -> None:
    text = FULL.replace("timeout = 60\n", "timeout = 60\nreserved_concurrency = 5\n")
    plan = build_plan(load_project(write_project(tmp_path, text=text)))
    sam = json.loads(write_sam(plan, tmp_path / "deploy").read_text())
    assert sam["Resources"]["WorkerFunction"]["Properties"]["ReservedConcurrentExecutions"] == 5
    assert "ReservedConcurrentExecutions" not in sam["Resources"]["AgentFunction"]["Properties"]
    tf = tf_resources(parse_tf(write_terraform(plan, tmp_path / "infra")))
    assert tf[("aws_lambda_function", "worker")]["reserved_concurrent_executions"] == 5
    assert "reserved_concurrent_executions" not in tf[("aws_lambda_function", "agent")]
