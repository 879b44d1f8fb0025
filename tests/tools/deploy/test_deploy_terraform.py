"""``warmline deploy render --target terraform``: parsed back with python-hcl2, IAM scoped.

``terraform validate`` needs the provider plugin (a download), so the checks that run here
are structural: the file parses, every reference points at a resource the file declares,
and each policy document's statements carry exactly the expected actions and resources.
``checkov`` runs too when it is on PATH (it is not in the test extra: its pins clash with
the project's).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_projects import KMS_ARN, agent_project, full_plan

from warmline.templates.plan import DYNAMODB_ACTIONS, build_plan
from warmline.templates.terraform.hcl import Block, Expr, Tpl, render, value
from warmline.templates.terraform.write import write_terraform

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (test extra)")

ARN = "arn:${data.aws_partition.current.partition}"
RA = "${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
EXEC = "${aws_apigatewayv2_api.ws.execution_arn}"


def parse(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(
        strip_string_quotes=True, with_comments=False, explicit_blocks=False
    )
    return hcl2.loads(path.read_text(), serialization_options=options)  # type: ignore[no-any-return]


def unquote(key: str) -> str:
    return key[1:-1] if key.startswith('"') and key.endswith('"') else key


def index(doc: dict[str, Any], section: str) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in doc.get(section, []):
        for kind, named in entry.items():
            for name, body in named.items():
                out[(unquote(kind), unquote(name))] = body
    return out


@pytest.fixture(scope="module")
def tf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("tf")
    full = write_terraform(full_plan(base / "full"), base / "full" / "infra")
    http = write_terraform(
        full_plan(base / "http", 'twiml = { function = "agent", endpoint = "http_api" }'),
        base / "http" / "infra",
    )
    agent = write_terraform(build_plan(agent_project()), base / "agent" / "infra")
    return {"paths": [full, http, agent], "full": parse(full), "texts": [full.read_text()]}


def statements(doc: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    policy = index(doc, "data")[("aws_iam_policy_document", name)]
    return {st["sid"]: st for st in policy["statement"]}


def test_rendered_files_parse_and_every_reference_is_declared(tf: dict[str, Any]) -> None:
    for path in tf["paths"]:
        doc = parse(path)
        text = path.read_text()
        declared = {f"{k}.{n}" for k, n in index(doc, "resource")}
        declared |= {f"data.{k}.{n}" for k, n in index(doc, "data")}
        refs = re.findall(r"\b((?:data\.)?aws_[a-z0-9_]+\.[a-z0-9_]+)\.[a-z_]+", text)
        assert len(set(refs)) > 10
        for ref in refs:
            assert ref in declared, f"{path}: {ref} is not declared"
        assert ("aws_iam_role_policy", "agent") in index(doc, "resource")


def test_no_statement_uses_a_wildcard_action_or_resource(tf: dict[str, Any]) -> None:
    for (kind, name), body in index(tf["full"], "data").items():
        if kind != "aws_iam_policy_document" or name.endswith("_assume"):
            continue
        for st in body["statement"]:
            assert all("*" not in action for action in st["actions"]), st
            assert "*" not in st["resources"], st


def test_manage_connections_is_scoped_to_the_stage_connections(tf: dict[str, Any]) -> None:
    for fn in ("agent", "worker"):
        st = statements(tf["full"], fn)["ManageConnections"]
        assert st["actions"] == ["execute-api:ManageConnections"]
        assert st["resources"] == [
            f"{EXEC}/prod/{method}/@connections/*" for method in ("POST", "GET", "DELETE")
        ]


def test_table_queue_topic_worker_and_secret_grants(tf: dict[str, Any]) -> None:
    agent = statements(tf["full"], "agent")
    assert sorted(agent["SessionTable"]["actions"]) == sorted(DYNAMODB_ACTIONS)
    assert agent["SessionTable"]["resources"] == ["${aws_dynamodb_table.sessions.arn}"]
    assert agent["SendJobs"]["actions"] == ["sqs:SendMessage"]
    assert agent["SendJobs"]["resources"] == ["${aws_sqs_queue.jobs.arn}"]
    assert agent["PublishAlerts"]["resources"] == ["${aws_sns_topic.alerts.arn}"]
    assert agent["InvokeWorker"]["actions"] == ["lambda:InvokeFunction"]
    assert agent["InvokeWorker"]["resources"] == ["${aws_lambda_function.worker.arn}"]
    assert agent["TwilioAuthTokenSecret"]["actions"] == ["ssm:GetParameter"]
    assert agent["TwilioAuthTokenSecret"]["resources"] == [
        f"{ARN}:ssm:{RA}:parameter/warmline/twilio-auth-token"
    ]
    assert agent["Logs"]["resources"] == ["${aws_cloudwatch_log_group.agent.arn}:*"]
    worker = statements(tf["full"], "worker")
    assert "SendJobs" not in worker and "InvokeWorker" not in worker
    assert worker["OpenaiApiKeySecret"]["resources"] == [
        f"{ARN}:secretsmanager:{RA}:secret:warmline/openai-??????"
    ]
    key = worker["OpenaiApiKeySecretKey"]
    assert key["actions"] == ["kms:Decrypt"] and key["resources"] == [KMS_ARN]
    condition = key["condition"][0]
    assert condition["variable"] == "kms:ViaService"
    assert condition["values"] == ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]


def test_functions_table_and_secret_free_environment(tf: dict[str, Any]) -> None:
    resources = index(tf["full"], "resource")
    agent = resources[("aws_lambda_function", "agent")]
    assert agent["runtime"] == "python3.12" and agent["architectures"] == ["arm64"]
    assert (agent["memory_size"], agent["timeout"]) == (512, 29)
    assert agent["filename"] == "${path.module}/../build/lambda/agent.zip"
    env = agent["environment"][0]["variables"]
    assert env["TWILIO_AUTH_TOKEN_PARAMETER"] == "/warmline/twilio-auth-token"
    assert "TWILIO_AUTH_TOKEN" not in env
    assert "dev-token-do-not-ship" not in tf["texts"][0]
    table = resources[("aws_dynamodb_table", "sessions")]
    assert table["billing_mode"] == "PAY_PER_REQUEST" and table["hash_key"] == "pk"
    assert table["attribute"] == [{"name": "pk", "type": "S"}]
    assert table["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
    assert resources[("aws_cloudwatch_log_group", "agent")]["retention_in_days"] == 30


def test_websocket_api_routes_schedule_queue_and_url(tf: dict[str, Any]) -> None:
    resources = index(tf["full"], "resource")
    api = resources[("aws_apigatewayv2_api", "ws")]
    assert api["protocol_type"] == "WEBSOCKET"
    assert api["route_selection_expression"] == "$request.body.type"
    routes = {n: b for (k, n), b in resources.items() if k == "aws_apigatewayv2_route"}
    assert sorted(r["route_key"] for r in routes.values()) == sorted(
        ["$connect", "$default", "$disconnect", "prompt"]
    )
    assert routes["default"]["route_response_selection_expression"] == "$default"
    assert ("aws_apigatewayv2_route_response", "default") in resources
    integration = resources[("aws_apigatewayv2_integration", "agent")]
    assert integration["integration_type"] == "AWS_PROXY"
    assert integration["timeout_milliseconds"] == 29000
    perm = resources[("aws_lambda_permission", "apigw_agent")]
    assert perm["source_arn"] == f"{EXEC}/prod/*"
    targets = [b for (k, n), b in resources.items() if k == "aws_cloudwatch_event_target"]
    assert len(targets) == 2
    assert all(json.loads(t["input"]) == {"warmer": True, "concurrency": 2} for t in targets)
    for fn in ("agent", "worker"):
        rule_perm = resources[("aws_lambda_permission", f"rule_warm_{fn}")]
        assert rule_perm["principal"] == "events.amazonaws.com"
        assert rule_perm["source_arn"] == "${aws_cloudwatch_event_rule.warm.arn}"
    mapping = resources[("aws_lambda_event_source_mapping", "jobs")]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    invoke = resources[("aws_lambda_permission", "url_invoke_agent")]
    assert invoke["action"] == "lambda:InvokeFunction"
    assert invoke["invoked_via_function_url"] is True
    assert resources[("aws_lambda_function_url", "agent")]["authorization_type"] == "NONE"
    alarm = resources[("aws_cloudwatch_metric_alarm", "worker_duration_p99")]
    assert (alarm["extended_statistic"], alarm["threshold"]) == ("p99", 20000)


def test_the_errors_alarm_fires_on_any_error_within_five_minutes(tf: dict[str, Any]) -> None:
    """The same "1 out of 5" alarm as the SAM template."""
    resources = index(tf["full"], "resource")
    for fn in ("agent", "worker"):
        alarm = resources[("aws_cloudwatch_metric_alarm", f"{fn}_errors")]
        assert (alarm["namespace"], alarm["metric_name"]) == ("AWS/Lambda", "Errors")
        assert alarm["statistic"] == "Sum"
        assert (alarm["period"], alarm["evaluation_periods"]) == (60, 5)
        assert alarm["datapoints_to_alarm"] == 1
        assert (alarm["threshold"], alarm["comparison_operator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )


def test_literal_strings_never_interpolate() -> None:
    assert value("${var.x} and %{if}") == '"$${var.x} and %%{if}"'
    assert value(Tpl("${var.x}")) == '"${var.x}"'
    assert value(Expr("aws_x.y.arn")) == "aws_x.y.arn"
    text = render([Block("locals").set("a", 'say "hi"\n').set("b", {"k-1": [1, True]})])
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)
    parsed = hcl2.loads(text, serialization_options=options)
    assert parsed["locals"][0]["b"] == {"k-1": [1, True]}


@pytest.mark.slow
def test_checkov_finds_no_high_severity_issue(tf: dict[str, Any], tmp_path: Path) -> None:
    checkov = shutil.which("checkov")
    if checkov is None:
        pytest.skip("checkov is not on PATH (optional; not in the test extra)")
    done = subprocess.run(
        [checkov, "-d", str(tf["paths"][0].parent), "--framework", "terraform", "-o", "json",
         "--quiet", "--compact"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(done.stdout or "{}")
    failed = report.get("results", {}).get("failed_checks", []) if isinstance(report, dict) else []
    if any(not c.get("severity") for c in failed):
        # Offline, checkov cannot fetch its severity data (the guidelines API).
        pytest.skip("checkov reports no severities without its online guidelines API")
    high = [c for c in failed if str(c["severity"]).upper() in ("HIGH", "CRITICAL")]
    assert high == [], high
