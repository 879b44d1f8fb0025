"""``warmline deploy render --target sam``: cfn-lint clean, and IAM scoped exactly.

cfn-lint runs once for the module (three templates in one run: the full project, the
full project with an HTTP API for TwiML, the sample agent), informational checks on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_projects import KMS_ARN, agent_project, cfn_lint_command, full_plan, write_project

from warmline.config.deploy import load_project
from warmline.errors import ConfigurationError
from warmline.templates.cloudformation.write import write_sam
from warmline.templates.plan import DYNAMODB_ACTIONS, build_plan

ARN = "arn:${AWS::Partition}"
RA = "${AWS::Region}:${AWS::AccountId}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("sam")
    full = write_sam(full_plan(base / "full"), base / "full" / "deploy")
    http = write_sam(
        full_plan(base / "http", 'twiml = { function = "agent", endpoint = "http_api" }'),
        base / "http" / "deploy",
    )
    agent = write_sam(build_plan(agent_project()), base / "agent" / "deploy")
    return {
        "paths": [full, http, agent],
        "full": json.loads(full.read_text()),
        "http": json.loads(http.read_text()),
        "agent": json.loads(agent.read_text()),
    }


def resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def statements(template: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    assert len(policies) == 1
    return {st["Sid"]: st for st in policies[0]["PolicyDocument"]["Statement"]}


@pytest.mark.slow
def test_rendered_templates_pass_cfn_lint(rendered: dict[str, Any]) -> None:
    # One cfn-lint process for all three (its start-up, schemas and the SAM transform,
    # is most of the cost), informational checks included.
    lint = subprocess.run(
        [*cfn_lint_command(), "--include-checks", "I", "--", *map(str, rendered["paths"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.strip() == ""


def test_no_statement_uses_a_wildcard_action_or_resource(rendered: dict[str, Any]) -> None:
    for name in ("full", "http", "agent"):
        template = rendered[name]
        for role in resources(template, "AWS::IAM::Role"):
            for st in statements(template, role).values():
                assert st["Effect"] == "Allow"
                assert all("*" not in action for action in st["Action"]), st
                assert "*" not in st["Resource"], st
                assert all(r != {"Fn::Sub": "*"} for r in st["Resource"]), st


def test_manage_connections_is_scoped_to_the_stage_connections(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    for role in ("AgentRole", "WorkerRole"):  # the route function and the worker both post
        st = statements(template, role)["ManageConnections"]
        assert st["Action"] == ["execute-api:ManageConnections"]
        assert st["Resource"] == [
            {"Fn::Sub": f"{ARN}:execute-api:{RA}:${{WebSocketApi}}/prod/{method}/@connections/*"}
            for method in ("POST", "GET", "DELETE")
        ]


def test_table_actions_are_scoped_to_the_table(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    for role in ("AgentRole", "WorkerRole"):
        st = statements(template, role)["SessionTable"]
        assert sorted(st["Action"]) == sorted(DYNAMODB_ACTIONS)
        assert st["Resource"] == [{"Fn::GetAtt": ["SessionTable", "Arn"]}]
    table = template["Resources"]["SessionTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_send_publish_and_invoke_are_scoped_to_queue_topic_and_worker(
    rendered: dict[str, Any],
) -> None:
    template = rendered["full"]
    agent = statements(template, "AgentRole")
    assert agent["SendJobs"]["Action"] == ["sqs:SendMessage"]
    assert agent["SendJobs"]["Resource"] == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]
    assert agent["PublishAlerts"]["Action"] == ["sns:Publish"]
    assert agent["PublishAlerts"]["Resource"] == [{"Ref": "AlertsTopic"}]
    assert agent["InvokeWorker"]["Action"] == ["lambda:InvokeFunction"]
    assert agent["InvokeWorker"]["Resource"] == [{"Fn::GetAtt": ["WorkerFunction", "Arn"]}]
    worker = statements(template, "WorkerRole")
    # The consumer reads its queue; it neither sends to it, publishes to its own topic,
    # nor invokes itself.
    assert "SendJobs" not in worker and "PublishAlerts" not in worker
    assert "InvokeWorker" not in worker
    assert worker["ConsumeJobs"]["Resource"] == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}]
    assert worker["ConsumeJobs"]["Action"] == [
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
    ]
    env = template["Resources"]["AgentFunction"]["Properties"]["Environment"]["Variables"]
    assert env["WARMLINE_SQS_JOBS_URL"] == {"Ref": "JobsQueue"}
    assert env["WARMLINE_SNS_ALERTS_ARN"] == {"Ref": "AlertsTopic"}
    assert env["WARMLINE_WORKER_FUNCTION"] == {"Ref": "WorkerFunction"}


def test_secrets_are_names_with_exact_read_grants(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    text = json.dumps(template)
    assert "dev-token-do-not-ship" not in text
    agent_env = template["Resources"]["AgentFunction"]["Properties"]["Environment"]["Variables"]
    assert "TWILIO_AUTH_TOKEN" not in agent_env
    assert agent_env["TWILIO_AUTH_TOKEN_PARAMETER"] == "/warmline/twilio-auth-token"
    agent = statements(template, "AgentRole")
    assert agent["TwilioAuthTokenSecret"]["Action"] == ["ssm:GetParameter"]
    assert agent["TwilioAuthTokenSecret"]["Resource"] == [
        {"Fn::Sub": f"{ARN}:ssm:{RA}:parameter/warmline/twilio-auth-token"}
    ]
    assert not any("secretsmanager" in a for st in agent.values() for a in st["Action"])
    worker = statements(template, "WorkerRole")
    assert "TwilioAuthTokenSecret" not in worker
    secret = worker["OpenaiApiKeySecret"]
    assert secret["Action"] == ["secretsmanager:GetSecretValue"]
    assert secret["Resource"] == [
        {"Fn::Sub": f"{ARN}:secretsmanager:{RA}:secret:warmline/openai-??????"}
    ]
    key = worker["OpenaiApiKeySecretKey"]
    assert key["Action"] == ["kms:Decrypt"] and key["Resource"] == [KMS_ARN]
    assert key["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}
        }
    }
    worker_env = template["Resources"]["WorkerFunction"]["Properties"]["Environment"]
    assert worker_env["Variables"]["OPENAI_API_KEY_SECRET_ID"] == "warmline/openai"


def test_logs_are_scoped_to_the_functions_own_log_group(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    for lid in ("Agent", "Worker"):
        st = statements(template, f"{lid}Role")["Logs"]
        assert st["Resource"] == [{"Fn::GetAtt": [f"{lid}LogGroup", "Arn"]}]
        group = template["Resources"][f"{lid}LogGroup"]["Properties"]
        assert group["RetentionInDays"] == 30
        props = template["Resources"][f"{lid}Function"]["Properties"]
        assert props["LoggingConfig"]["LogGroup"] == {"Ref": f"{lid}LogGroup"}


def test_functions_default_to_arm64_python312(rendered: dict[str, Any]) -> None:
    fns = resources(rendered["full"], "AWS::Serverless::Function")
    agent = fns["AgentFunction"]["Properties"]
    assert agent["Runtime"] == "python3.12" and agent["Architectures"] == ["arm64"]
    assert (agent["MemorySize"], agent["Timeout"], agent["Handler"]) == (512, 29, "app.handler")
    assert agent["CodeUri"] == "../build/lambda/agent.zip"
    assert agent["Role"] == {"Fn::GetAtt": ["AgentRole", "Arn"]}


def test_websocket_api_routes_and_integrations(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    api = template["Resources"]["WebSocketApi"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.type"
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    assert sorted(r["Properties"]["RouteKey"] for r in routes.values()) == sorted(
        ["$connect", "$default", "$disconnect", "prompt"]
    )
    for route in routes.values():
        assert route["Properties"]["Target"] == {"Fn::Sub": "integrations/${AgentIntegration}"}
    integration = template["Resources"]["AgentIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["TimeoutInMillis"] == 29_000
    responses = resources(template, "AWS::ApiGatewayV2::RouteResponse")
    assert [r["Properties"]["RouteId"] for r in responses.values()] == [{"Ref": "DefaultRoute"}]
    permission = template["Resources"]["AgentApiPermission"]["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"] == {
        "Fn::Sub": f"{ARN}:execute-api:{RA}:${{WebSocketApi}}/prod/*"
    }
    deployment = next(iter(resources(template, "AWS::ApiGatewayV2::Deployment")))
    assert sorted(template["Resources"][deployment]["DependsOn"]) == sorted(routes)
    stage = template["Resources"]["WebSocketStage"]["Properties"]
    assert stage["StageName"] == "prod" and stage["DeploymentId"] == {"Ref": deployment}


def test_warmup_rule_has_every_target_its_input_and_permissions(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    rule = template["Resources"]["WarmRule"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(5 minutes)" and rule["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Targets"]] == [
        {"Fn::GetAtt": ["AgentFunction", "Arn"]},
        {"Fn::GetAtt": ["WorkerFunction", "Arn"]},
    ]
    assert all(
        json.loads(t["Input"]) == {"warmer": True, "concurrency": 2} for t in rule["Targets"]
    )
    for lid in ("Agent", "Worker"):
        perm = template["Resources"][f"WarmRule{lid}Permission"]["Properties"]
        assert perm["Principal"] == "events.amazonaws.com"
        assert perm["SourceArn"] == {"Fn::GetAtt": ["WarmRule", "Arn"]}
        assert perm["FunctionName"] == {"Ref": f"{lid}Function"}


def test_queue_mapping_reports_batch_item_failures(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    mapping = template["Resources"]["JobsMapping"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 20 and mapping["MaximumBatchingWindowInSeconds"] == 1
    queue = template["Resources"]["JobsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == 60  # raised to the worker's timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 3
    sub = template["Resources"]["AlertsTopicWorkerSubscription"]["Properties"]
    assert sub["Protocol"] == "lambda"
    perm = template["Resources"]["AlertsTopicWorkerPermission"]["Properties"]
    assert perm["Principal"] == "sns.amazonaws.com" and perm["SourceArn"] == {"Ref": "AlertsTopic"}


def test_twiml_function_url_is_public_only_through_the_url(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    assert template["Resources"]["AgentUrl"]["Properties"]["AuthType"] == "NONE"
    url_perm = template["Resources"]["AgentUrlPermission"]["Properties"]
    assert url_perm["Action"] == "lambda:InvokeFunctionUrl"
    assert url_perm["FunctionUrlAuthType"] == "NONE"
    invoke = template["Resources"]["AgentUrlInvokePermission"]["Properties"]
    assert invoke["Action"] == "lambda:InvokeFunction" and invoke["InvokedViaFunctionUrl"] is True
    assert template["Outputs"]["TwimlUrl"]["Value"] == {"Fn::Sub": "${AgentUrl.FunctionUrl}twiml"}
    assert "WorkerUrl" not in template["Resources"]


def test_twiml_on_an_http_api(rendered: dict[str, Any]) -> None:
    template = rendered["http"]
    assert "AgentUrl" not in template["Resources"]
    routes = resources(template, "AWS::ApiGatewayV2::Route")
    keys = {r["Properties"]["RouteKey"] for r in routes.values()}
    assert {"POST /twiml", "GET /twiml", "POST /cr-action"} <= keys
    perm = template["Resources"]["AgentHttpPermission"]["Properties"]
    assert perm["SourceArn"] == {"Fn::Sub": f"{ARN}:execute-api:{RA}:${{TwimlHttpApi}}/*/*"}


def test_alarms_on_errors_and_p99_duration(rendered: dict[str, Any]) -> None:
    template = rendered["full"]
    errors = template["Resources"]["WorkerErrorsAlarm"]["Properties"]
    assert (errors["MetricName"], errors["Statistic"]) == ("Errors", "Sum")
    p99 = template["Resources"]["WorkerDurationP99Alarm"]["Properties"]
    assert (p99["MetricName"], p99["ExtendedStatistic"], p99["Threshold"]) == (
        "Duration",
        "p99",
        20000,
    )
    agent = template["Resources"]["AgentDurationP99Alarm"]["Properties"]
    assert agent["Threshold"] == pytest.approx(29 * 1000 * 0.8)


def test_the_errors_alarm_fires_on_any_error_within_five_minutes(
    rendered: dict[str, Any],
) -> None:
    """One minute with an error among the last five alarms ("1 out of 5"): without
    DatapointsToAlarm CloudWatch would need all five minutes to breach."""
    for name in ("AgentErrorsAlarm", "WorkerErrorsAlarm"):
        errors = rendered["full"]["Resources"][name]["Properties"]
        assert errors["Namespace"] == "AWS/Lambda"
        assert (errors["MetricName"], errors["Statistic"]) == ("Errors", "Sum")
        assert (errors["Period"], errors["EvaluationPeriods"]) == (60, 5)
        assert errors["DatapointsToAlarm"] == 1
        assert (errors["Threshold"], errors["ComparisonOperator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )
        assert errors["TreatMissingData"] == "notBreaching"


def test_deploy_stage_overrides_the_dev_stage(tmp_path: Path) -> None:
    plan = full_plan(tmp_path, 'stage = "live"')
    assert plan.stage == "live"
    with pytest.raises(ConfigurationError, match="deploy.stage"):
        full_plan(tmp_path / "bad", 'stage = "a b"')


def test_sample_agent_template(rendered: dict[str, Any]) -> None:
    template = rendered["agent"]
    assert "AgentUrl" in template["Resources"]  # [http] function = "agent"
    rule = template["Resources"]["KeepWarmRule"]["Properties"]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["AgentFunction", "Arn"]}


def test_a_secret_in_plain_environment_is_refused(tmp_path: Path) -> None:
    text = """
[functions.ws]
handler = "app.handler"
code = "code"
environment = { OPENAI_API_KEY = "sk-live-123" }
"""
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY looks like a secret"):
        build_plan(load_project(write_project(tmp_path, text=text)))
    allowed = text + '\n[deploy]\nplain_environment = ["OPENAI_API_KEY"]\n'
    plan = build_plan(load_project(write_project(tmp_path, text=allowed)))
    assert plan.functions["ws"].environment["OPENAI_API_KEY"] == "sk-live-123"


def test_seconds_rates_are_refused(tmp_path: Path) -> None:
    base = '[functions.ws]\nhandler = "app.handler"\ncode = "code"\n'
    seconds = base + '[schedules.fast]\nexpression = "rate(10 seconds)"\ntargets = ["ws"]\n'
    with pytest.raises(ConfigurationError, match="rate\\(1 minute\\)"):
        build_plan(load_project(write_project(tmp_path, text=seconds)))
    one = base + '[schedules.one]\nexpression = "rate(1 minute)"\ntargets = ["ws"]\n'
    plan = build_plan(load_project(write_project(tmp_path, text=one)))
    assert plan.schedules[0].expression == "rate(1 minute)"
    assert plan.schedules[0].input == ""
    assert not plan.websocket and not plan.routes


def test_unknown_deploy_keys_are_named(tmp_path: Path) -> None:
    text = '[functions.ws]\nhandler = "app.handler"\ncode = "code"\n[deploy]\nruntim = "x"\n'
    with pytest.raises(ConfigurationError, match="deploy.runtim"):
        load_project(write_project(tmp_path, text=text))
    bad = '[functions.ws]\nhandler = "app.handler"\ncode = "code"\n[deploy]\nworker = "nope"\n'
    with pytest.raises(ConfigurationError, match="deploy.worker"):
        load_project(write_project(tmp_path, text=bad))


def test_the_samples_dev_opt_out_of_signatures_is_never_deployed(
    rendered: dict[str, Any],
) -> None:
    """The sample's warmline.toml accepts unsigned callers under ``warmline dev`` only."""
    assert "WARMLINE_ALLOW_UNSIGNED" in agent_project().config.functions["agent"].environment
    props = rendered["agent"]["Resources"]["AgentFunction"]["Properties"]
    variables = props["Environment"]["Variables"]
    assert "WARMLINE_ALLOW_UNSIGNED" not in variables
    assert variables["TWILIO_AUTH_TOKEN_PARAMETER"] == "/warmline/twilio-auth-token"
