"""Alarms, dashboard, alarm topic and WebSocket access logs in both rendered templates.

Each alarm's metric, statistic, threshold and ``DatapointsToAlarm`` are asserted on the
SAM template and the Terraform module alike; cfn-lint and ``sam validate --lint`` (when a
SAM CLI is found) check the SAM template with every option on.
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
from deploy_projects import cfn_lint_command, full_plan

from warmline.config.observability import parse_observability
from warmline.errors import ConfigurationError
from warmline.templates.cloudformation.write import write_sam
from warmline.templates.terraform.write import write_terraform

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (test extra)")

TOPIC = "arn:aws:sns:us-east-1:123456789012:oncall"
OPTIONS = f"""alarm_topic_arn = "{TOPIC}"
[deploy.observability]
first_token_p95_ms = 900
cold_connect_alarm = true
cold_connect_window_s = 600
async_event_age_ms = 30000
"""
#: (alarm, namespace, metric, statistic, period, evaluation periods, datapoints, threshold)
EXPECTED = {
    "AgentFirstTokenP95Alarm": ("warmline", "FirstTokenMs", "p95", 60, 5, 3, 900),
    "AgentColdConnectAlarm": ("warmline", "ColdConnects", "Sum", 600, 1, 1, 1),
    "AgentThrottlesAlarm": ("AWS/Lambda", "Throttles", "Sum", 60, 5, 1, 1),
    "WorkerThrottlesAlarm": ("AWS/Lambda", "Throttles", "Sum", 60, 5, 1, 1),
    "WorkerAsyncEventAgeAlarm": ("AWS/Lambda", "AsyncEventAge", "Maximum", 60, 5, 1, 30000),
    "JobsDeadLettersAlarm": (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, 1, 1, 1,
    ),
    "AgentErrorsAlarm": ("AWS/Lambda", "Errors", "Sum", 60, 5, 1, 1),
}  # fmt: skip
TF_NAMES = {
    "AgentFirstTokenP95Alarm": "agent_first_token_p95",
    "AgentColdConnectAlarm": "agent_cold_connect",
    "AgentThrottlesAlarm": "agent_throttles",
    "WorkerThrottlesAlarm": "worker_throttles",
    "WorkerAsyncEventAgeAlarm": "worker_async_event_age",
    "JobsDeadLettersAlarm": "jobs_dead_letters",
    "AgentErrorsAlarm": "agent_errors",
}
CONTEXT_FIELDS = (
    "requestId", "connectionId", "eventType", "routeKey", "status", "integrationLatency",
    "error.messageString",
)  # fmt: skip


@pytest.fixture(scope="module")
def sam(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("obs-sam")
    plain = write_sam(full_plan(base / "plain"), base / "plain" / "deploy")
    opts = write_sam(full_plan(base / "opts", OPTIONS), base / "opts" / "deploy")
    return {
        "paths": [plain, opts],
        "plain": json.loads(plain.read_text()),
        "opts": json.loads(opts.read_text()),
    }


@pytest.fixture(scope="module")
def tf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("obs-tf")
    out = {}
    for name, extra in (("plain", ""), ("opts", OPTIONS)):
        path = write_terraform(full_plan(base / name, extra), base / name / "infra")
        options = hcl2.SerializationOptions(
            strip_string_quotes=True, with_comments=False, explicit_blocks=False
        )
        out[name] = hcl2.loads(path.read_text(), serialization_options=options)
        out[name + "_text"] = path.read_text()
    return out


def _tf_resources(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in doc.get("resource", []):
        for kind, named in entry.items():
            for name, body in named.items():
                found[(kind.strip('"'), name.strip('"'))] = body
    return found


def test_sam_alarms_watch_each_metric_with_its_statistic_threshold_and_datapoints(
    sam: dict[str, Any],
) -> None:
    res = sam["opts"]["Resources"]
    for name, (ns, metric, stat, period, periods, datapoints, threshold) in EXPECTED.items():
        props = res[name]["Properties"]
        assert (props["Namespace"], props["MetricName"]) == (ns, metric), name
        assert props.get("ExtendedStatistic", props.get("Statistic")) == stat, name
        assert (props["Period"], props["EvaluationPeriods"]) == (period, periods), name
        assert props["DatapointsToAlarm"] == datapoints, name
        assert props["Threshold"] == threshold, name
        assert props["AlarmActions"] == [TOPIC], name
    first = res["AgentFirstTokenP95Alarm"]["Properties"]
    assert first["Dimensions"] == [{"Name": "function", "Value": {"Ref": "AgentFunction"}}]
    assert "Statistic" not in first
    dlq = res["JobsDeadLettersAlarm"]["Properties"]["Dimensions"]
    assert dlq == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]}}
    ]


def test_sam_without_a_topic_creates_one_and_every_alarm_notifies_it(sam: dict[str, Any]) -> None:
    res = sam["plain"]["Resources"]
    assert res["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) >= 7
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)
    assert "AgentColdConnectAlarm" not in res  # opt-in
    assert res["AgentFirstTokenP95Alarm"]["Properties"]["Threshold"] == 1500
    assert "AlarmTopic" not in sam["opts"]["Resources"]


def test_sam_access_logs_carry_the_context_fields_as_json(sam: dict[str, Any]) -> None:
    res = sam["plain"]["Resources"]
    settings = res["WebSocketStage"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["WebSocketAccessLogGroup", "Arn"]}
    fmt = settings["Format"]
    for field in CONTEXT_FIELDS:
        assert f"$context.{field}" in fmt
    # What API Gateway writes for one request parses as JSON, error quoted by messageString.
    line = re.sub(r"\$context\.error\.messageString", '"Internal server error"', fmt)
    line = re.sub(r"\$context\.[A-Za-z.]+", "x", line)
    assert json.loads(line)["error"] == "Internal server error"
    assert res["WebSocketAccessLogGroup"]["Properties"]["RetentionInDays"] == 30


def test_sam_dashboard_graphs_the_alarmed_metrics(sam: dict[str, Any]) -> None:
    body = sam["plain"]["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    subbed = body.replace("${AWS::Region}", "us-east-1")
    subbed = re.sub(r"\$\{(\w+)Function\}", r"\1-fn", subbed)
    subbed = subbed.replace("${JobsDeadLetterQueue.QueueName}", "jobs-dlq")
    widgets = json.loads(subbed)["widgets"]
    graphed = {(m[0], m[1], m[4]["stat"]) for w in widgets for m in w["properties"]["metrics"]}
    for ns, metric, stat, *_ in EXPECTED.values():
        assert (ns, metric, stat) in graphed or metric in ("ColdConnects",), metric
    assert ("warmline", "ColdConnects", "Sum") in graphed
    assert ("warmline", "SetupToGreetingMs", "p95") in graphed


@pytest.mark.slow
def test_observability_templates_pass_cfn_lint(sam: dict[str, Any]) -> None:
    lint = subprocess.run(
        [*cfn_lint_command(), "--include-checks", "I", "--", *map(str, sam["paths"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def _sam_cli() -> str | None:
    found = shutil.which("sam")
    cached = Path.home() / ".cache" / "warmline-tools" / "sam" / "bin" / "sam"
    return found or (str(cached) if cached.is_file() else None)


@pytest.mark.slow
def test_observability_templates_pass_sam_validate_lint(sam: dict[str, Any]) -> None:
    cli = _sam_cli()
    if cli is None:
        pytest.skip("no SAM CLI on PATH or in ~/.cache/warmline-tools/sam (a separate tool venv)")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    for path in sam["paths"]:
        done = subprocess.run(
            [cli, "validate", "--lint", "-t", str(path)],
            capture_output=True, text=True, cwd=path.parent, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr


def test_terraform_alarms_match_the_sam_ones(tf: dict[str, Any]) -> None:
    res = _tf_resources(tf["opts"])
    for sam_name, (ns, metric, stat, period, periods, datapoints, threshold) in EXPECTED.items():
        alarm = res[("aws_cloudwatch_metric_alarm", TF_NAMES[sam_name])]
        assert (alarm["namespace"], alarm["metric_name"]) == (ns, metric), sam_name
        assert alarm.get("extended_statistic", alarm.get("statistic")) == stat, sam_name
        assert (alarm["period"], alarm["evaluation_periods"]) == (period, periods), sam_name
        assert alarm["datapoints_to_alarm"] == datapoints, sam_name
        assert alarm["threshold"] == threshold, sam_name
        assert alarm["alarm_actions"] == [TOPIC], sam_name
    first = res[("aws_cloudwatch_metric_alarm", "agent_first_token_p95")]
    assert first["dimensions"] == {"function": "${aws_lambda_function.agent.function_name}"}


def test_terraform_without_a_topic_creates_one_and_logs_the_stage(tf: dict[str, Any]) -> None:
    res = _tf_resources(tf["plain"])
    assert ("aws_sns_topic", "alarms") in res
    alarms = [b for (kind, _), b in res.items() if kind == "aws_cloudwatch_metric_alarm"]
    assert all(a["alarm_actions"] == ["${aws_sns_topic.alarms.arn}"] for a in alarms)
    assert ("aws_cloudwatch_metric_alarm", "agent_cold_connect") not in res
    stage = res[("aws_apigatewayv2_stage", "ws")]
    (settings,) = stage["access_log_settings"]
    assert settings["destination_arn"] == "${aws_cloudwatch_log_group.ws_access.arn}"
    for field in CONTEXT_FIELDS:
        assert f"$context.{field}" in settings["format"]
    assert ("aws_cloudwatch_log_group", "ws_access") in res
    assert ("aws_cloudwatch_dashboard", "main") in res
    assert "jsonencode(" in tf["plain_text"] and "FirstTokenMs" in tf["plain_text"]


def test_observability_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="deploy.observability.nope"):
        parse_observability({"nope": 1})
    with pytest.raises(ConfigurationError, match="multiple of 60"):
        parse_observability({"cold_connect_window_s": 90})
    with pytest.raises(ConfigurationError, match="first_token_p95_ms"):
        parse_observability({"first_token_p95_ms": 0})
    with pytest.raises(ConfigurationError, match="true or false"):
        parse_observability({"access_logs": "yes"})
    assert parse_observability({}).cold_connect_alarm is False
