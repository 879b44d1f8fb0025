"""Render a :class:`~warmline.templates.plan.Plan` as one Terraform file (``main.tf``).

The same resources as the SAM template, in the AWS provider's words. IAM policies are
``aws_iam_policy_document`` data sources, not ``jsonencode`` strings, so each statement is
a block that reviewers (and the tests, through ``python-hcl2``) can read as structure.

Requires the AWS provider 6.29 or a later 6.x: ``aws_lambda_permission.invoked_via_function_url``
(the ``lambda:InvokeFunction`` grant that function URLs need since October 2025) arrived in
6.29, and ``data.aws_region.current.region`` is a 6.x attribute.

The Lambda zips are referenced relative to the module (``${path.module}/...``) with
``filebase64sha256``, so ``terraform apply`` redeploys a function exactly when its zip
changed; ``warmline deploy package`` builds reproducible zips for that reason.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from warmline.templates.observability import (
    ERRORS_DATAPOINTS,
    ERRORS_PERIOD_S,
    ERRORS_PERIODS,
    P99_PERIOD_S,
    P99_PERIODS,
)
from warmline.templates.plan import FunctionPlan, Plan, Ref, Statement
from warmline.templates.terraform.hcl import Block, Expr, Tpl, render
from warmline.templates.terraform.observability import (
    access_log_settings,
    alarm_actions,
    observability_blocks,
)
from warmline.templates.terraform.publish import apply_publish_options

__all__ = ["TERRAFORM_NAME", "render_terraform", "tf_name", "write_terraform"]

TERRAFORM_NAME = "main.tf"
#: 6.29: ``aws_lambda_permission.invoked_via_function_url``, the newest argument the file
#: uses (tests/tools/deploy/test_deploy_publish.py checks every argument).
AWS_PROVIDER_VERSION = "~> 6.29"
_ARN = "arn:${data.aws_partition.current.partition}"
_REGION_ACCOUNT = "${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
QUEUE_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600


def tf_name(name: str) -> str:
    """A Terraform identifier from a config name: ``my-fn`` -> ``my_fn``."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", name).lower()
    return out if out[:1].isalpha() or out[:1] == "_" else f"f_{out}"


def _fn(name: str) -> str:
    return f"aws_lambda_function.{tf_name(name)}"


def _invoke_permission(label: str, sid: str, function: str, principal: str, source: Any) -> Block:
    """``lambda:InvokeFunction`` on ``function`` for ``principal`` calling from ``source``."""
    return (
        Block("resource", ("aws_lambda_permission", label))
        .set("statement_id", sid)
        .set("action", "lambda:InvokeFunction")
        .set("function_name", Expr(f"{_fn(function)}.function_name"))
        .set("principal", principal)
        .set("source_arn", source)
    )


def resource_arn(plan: Plan, ref: Ref) -> Any:
    """The Terraform expression of an abstract resource (see :class:`Ref`)."""
    kind, name = ref
    if kind == "log_group":
        # The provider's log group ``arn`` has no ":*"; stream ARNs need it.
        return Tpl(f"${{aws_cloudwatch_log_group.{tf_name(name)}.arn}}:*")
    if kind == "connections":
        return Tpl(f"${{aws_apigatewayv2_api.ws.execution_arn}}/{plan.stage}/{name}/@connections/*")
    if kind == "table":
        return Expr("aws_dynamodb_table.sessions.arn")
    if kind == "queue":
        return Expr(f"aws_sqs_queue.{tf_name(name)}.arn")
    if kind == "topic":
        return Expr(f"aws_sns_topic.{tf_name(name)}.arn")
    if kind == "function":
        return Expr(f"{_fn(name)}.arn")
    if kind == "function_versions":
        return Tpl(f"${{{_fn(name)}.arn}}:*")
    if kind == "ssm":
        return Tpl(f"{_ARN}:ssm:{_REGION_ACCOUNT}:parameter/{name.lstrip('/')}")
    if kind == "secret":
        return Tpl(f"{_ARN}:secretsmanager:{_REGION_ACCOUNT}:secret:{name}-??????")
    if kind in ("kms", "arn"):
        return name
    raise ValueError(f"unknown resource kind {kind!r}")  # pragma: no cover - model bug


def _env_value(plan: Plan, spec: tuple[str, ...]) -> Any:
    kind = spec[0]
    if kind == "table":
        return Expr("aws_dynamodb_table.sessions.name")
    if kind == "ws_url":
        return Tpl(
            "wss://${aws_apigatewayv2_api.ws.id}.execute-api.${data.aws_region.current.region}"
            f".${{data.aws_partition.current.dns_suffix}}/{plan.stage}"
        )
    if kind == "queue_url":
        return Expr(f"aws_sqs_queue.{tf_name(spec[1])}.url")
    if kind == "topic":
        return Expr(f"aws_sns_topic.{tf_name(spec[1])}.arn")
    if kind == "function":
        return Expr(f"{_fn(spec[1])}.function_name")
    raise ValueError(f"unknown environment reference {spec!r}")  # pragma: no cover


def render_terraform(plan: Plan, *, out_dir: Path | None = None) -> str:
    """The ``main.tf`` text.

    Args:
        plan: what to deploy.
        out_dir: where the file will be written; zip paths are relative to it (default:
            absolute paths).
    """
    blocks: list[Block] = [_terraform_block(), _prefix_variable(plan)]
    for kind in ("aws_partition", "aws_region", "aws_caller_identity"):
        blocks.append(Block("data", (kind, "current")))
    for fn in plan.functions.values():
        blocks.extend(_function(plan, fn, out_dir))
    if plan.table:
        blocks.append(_table())
    if plan.websocket:
        blocks.extend(_websocket(plan))
    for fn in plan.functions.values():
        if fn.twiml == "function_url":
            blocks.extend(_function_url(fn))
        elif fn.twiml == "http_api":
            blocks.extend(_http_api(fn))
    for q in plan.queues:
        blocks.extend(_queue(q))
    for t in plan.topics:
        blocks.extend(_topic(t))
    for s in plan.schedules:
        blocks.extend(_schedule(s))
    blocks.extend(observability_blocks(plan))
    blocks.extend(_outputs(plan))
    apply_publish_options(plan, blocks)
    header = (
        f"{plan.stack_name}: rendered by `warmline deploy render --target terraform`.\n"
        "Build the zips first: `warmline deploy package`."
    )
    return render(blocks, header)


def write_terraform(plan: Plan, out_dir: Path) -> Path:
    """Render and write ``main.tf`` into ``out_dir``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / TERRAFORM_NAME
    path.write_text(render_terraform(plan, out_dir=out_dir), encoding="utf-8")
    return path


def _terraform_block() -> Block:
    tf = Block("terraform").set("required_version", ">= 1.5")
    tf.add(Block("required_providers")).set(
        "aws", {"source": "hashicorp/aws", "version": AWS_PROVIDER_VERSION}
    )
    return tf


def _prefix_variable(plan: Plan) -> Block:
    return (
        Block("variable", ("name_prefix",))
        .set("description", "Prefix of every resource name")
        .set("type", Expr("string"))
        .set("default", plan.stack_name)
    )


def _statement(plan: Plan, st: Statement) -> Block:
    block = Block("statement").set("sid", st.sid).set("effect", st.effect)
    block.set("actions", list(st.actions))
    block.set("resources", [resource_arn(plan, r) for r in st.resources])
    if st.via_service:
        cond = block.add(Block("condition"))
        cond.set("test", "StringEquals").set("variable", "kms:ViaService")
        cond.set(
            "values", [Tpl(f"{st.via_service}.${{data.aws_region.current.region}}.amazonaws.com")]
        )
    return block


def _function(plan: Plan, fn: FunctionPlan, out_dir: Path | None) -> list[Block]:
    n = tf_name(fn.name)
    log = (
        Block("resource", ("aws_cloudwatch_log_group", n))
        .set("name", Tpl(f"/warmline/${{var.name_prefix}}/{fn.name}"))
        .set("retention_in_days", plan.log_retention_days)
    )
    assume = Block("data", ("aws_iam_policy_document", f"{n}_assume"))
    st = assume.add(Block("statement")).set("actions", ["sts:AssumeRole"])
    st.add(Block("principals")).set("type", "Service").set("identifiers", ["lambda.amazonaws.com"])
    role = (
        Block("resource", ("aws_iam_role", n))
        .set("name", Tpl(f"${{var.name_prefix}}-{fn.name}"))
        .set("assume_role_policy", Expr(f"data.aws_iam_policy_document.{n}_assume.json"))
    )
    doc = Block("data", ("aws_iam_policy_document", n))
    for statement in fn.statements:
        doc.add(_statement(plan, statement))
    policy = (
        Block("resource", ("aws_iam_role_policy", n))
        .set("name", Tpl(f"${{var.name_prefix}}-{fn.name}"))
        .set("role", Expr(f"aws_iam_role.{n}.id"))
        .set("policy", Expr(f"data.aws_iam_policy_document.{n}.json"))
    )
    artifact = fn.artifact if out_dir is None else Path(os.path.relpath(fn.artifact, out_dir))
    path = (
        artifact.as_posix() if artifact.is_absolute() else f"${{path.module}}/{artifact.as_posix()}"
    )
    lam = (
        Block("resource", ("aws_lambda_function", n))
        .set("function_name", Tpl(f"${{var.name_prefix}}-{fn.name}"))
        .set("role", Expr(f"aws_iam_role.{n}.arn"))
        .set("handler", fn.handler)
        .set("runtime", fn.runtime)
        .set("architectures", [fn.architecture])
        .set("memory_size", fn.memory_mb)
        .set("timeout", fn.timeout_s)
        .set("filename", Tpl(path))
        .set("source_code_hash", Expr(f'filebase64sha256("{path}")'))
        .set("reserved_concurrent_executions", fn.reserved_concurrency)
    )
    env: dict[str, Any] = dict(sorted(fn.environment.items()))
    env.update({k: _env_value(plan, v) for k, v in sorted(fn.env_refs.items())})
    if env:
        lam.add(Block("environment")).set("variables", env)
    lam.add(Block("logging_config")).set("log_format", "Text").set(
        "log_group", Expr(f"aws_cloudwatch_log_group.{n}.name")
    )
    # The role's policy must exist before the first invocation writes logs.
    lam.set("depends_on", [Expr(f"aws_iam_role_policy.{n}")])
    actions = alarm_actions(plan)
    errors = (
        Block("resource", ("aws_cloudwatch_metric_alarm", f"{n}_errors"))
        .set("alarm_name", Tpl(f"${{var.name_prefix}}-{fn.name}-errors"))
        .set("alarm_description", f"{fn.name}: invocations ending in an error")
        .set("namespace", "AWS/Lambda")
        .set("metric_name", "Errors")
        .set("dimensions", {"FunctionName": Expr(f"{_fn(fn.name)}.function_name")})
        .set("statistic", "Sum")
        .set("period", ERRORS_PERIOD_S)
        .set("evaluation_periods", ERRORS_PERIODS)
        .set("datapoints_to_alarm", ERRORS_DATAPOINTS)
        .set("threshold", 1)
        .set("comparison_operator", "GreaterThanOrEqualToThreshold")
        .set("treat_missing_data", "notBreaching")
        .set("alarm_actions", actions)
    )
    p99 = (
        Block("resource", ("aws_cloudwatch_metric_alarm", f"{n}_duration_p99"))
        .set("alarm_name", Tpl(f"${{var.name_prefix}}-{fn.name}-duration-p99"))
        .set("alarm_description", f"{fn.name}: p99 duration above {fn.p99_ms:g} ms")
        .set("namespace", "AWS/Lambda")
        .set("metric_name", "Duration")
        .set("dimensions", {"FunctionName": Expr(f"{_fn(fn.name)}.function_name")})
        .set("extended_statistic", "p99")
        .set("period", P99_PERIOD_S)
        .set("evaluation_periods", P99_PERIODS)
        .set("threshold", fn.p99_ms)
        .set("comparison_operator", "GreaterThanThreshold")
        .set("treat_missing_data", "notBreaching")
        .set("alarm_actions", actions)
    )
    blocks = [log, assume, role, doc, policy, lam, errors, p99]
    if fn.self_statements:
        # Its own ARN: a policy of its own, attached once the function exists (the main
        # policy comes first: the function depends on it).
        self_doc = Block("data", ("aws_iam_policy_document", f"{n}_self"))
        for statement in fn.self_statements:
            self_doc.add(_statement(plan, statement))
        blocks += [
            self_doc,
            Block("resource", ("aws_iam_role_policy", f"{n}_self"))
            .set("name", Tpl(f"${{var.name_prefix}}-{fn.name}-self"))
            .set("role", Expr(f"aws_iam_role.{n}.id"))
            .set("policy", Expr(f"data.aws_iam_policy_document.{n}_self.json")),
        ]
    return blocks


def _table() -> Block:
    table = (
        Block("resource", ("aws_dynamodb_table", "sessions"))
        .set("name", Tpl("${var.name_prefix}-sessions"))
        .set("billing_mode", "PAY_PER_REQUEST")
        .set("hash_key", "pk")
    )
    table.add(Block("attribute")).set("name", "pk").set("type", "S")
    table.add(Block("ttl")).set("attribute_name", "expires_at").set("enabled", True)
    table.add(Block("server_side_encryption")).set("enabled", True)
    return table


def _route_name(key: str) -> str:
    return tf_name(key[1:]) if key.startswith("$") else "route_" + tf_name(key)


def _websocket(plan: Plan) -> list[Block]:
    api = (
        Block("resource", ("aws_apigatewayv2_api", "ws"))
        .set("name", Tpl("${var.name_prefix}-ws"))
        .set("protocol_type", "WEBSOCKET")
        .set("route_selection_expression", plan.route_selection_expression)
    )
    out = [api]
    for name in dict.fromkeys(r.function for r in plan.routes):
        n = tf_name(name)
        out.append(
            Block("resource", ("aws_apigatewayv2_integration", n))
            .set("api_id", Expr("aws_apigatewayv2_api.ws.id"))
            .set("integration_type", "AWS_PROXY")
            .set("integration_uri", Expr(f"{_fn(name)}.invoke_arn"))
            .set("timeout_milliseconds", plan.integration_timeout_ms)
        )
        out.append(
            _invoke_permission(
                f"apigw_{n}",
                "AllowWebSocketApi",
                name,
                "apigateway.amazonaws.com",
                Tpl(f"${{aws_apigatewayv2_api.ws.execution_arn}}/{plan.stage}/*"),
            )
        )
    routes = []
    for route in plan.routes:
        r = _route_name(route.key)
        routes.append(Expr(f"aws_apigatewayv2_route.{r}"))
        block = (
            Block("resource", ("aws_apigatewayv2_route", r))
            .set("api_id", Expr("aws_apigatewayv2_api.ws.id"))
            .set("route_key", route.key)
            .set("authorization_type", "NONE")
            .set(
                "target",
                Tpl(f"integrations/${{aws_apigatewayv2_integration.{tf_name(route.function)}.id}}"),
            )
        )
        out.append(block)
        if route.route_response:
            block.set("route_response_selection_expression", "$default")
            out.append(
                Block("resource", ("aws_apigatewayv2_route_response", r))
                .set("api_id", Expr("aws_apigatewayv2_api.ws.id"))
                .set("route_id", Expr(f"aws_apigatewayv2_route.{r}.id"))
                .set("route_response_key", "$default")
            )
    deployment = Block("resource", ("aws_apigatewayv2_deployment", "ws")).set(
        "api_id", Expr("aws_apigatewayv2_api.ws.id")
    )
    # A new deployment whenever a route or its target changes (else it is not live).
    ids = ", ".join(f"{r}.id, {r}.target" for r in routes)
    deployment.set("triggers", {"redeployment": Expr(f"sha1(jsonencode([{ids}]))")})
    deployment.add(Block("lifecycle")).set("create_before_destroy", True)
    deployment.set("depends_on", routes)
    stage = (
        Block("resource", ("aws_apigatewayv2_stage", "ws"))
        .set("api_id", Expr("aws_apigatewayv2_api.ws.id"))
        .set("name", plan.stage)
        .set("deployment_id", Expr("aws_apigatewayv2_deployment.ws.id"))
    )
    access_log_settings(plan, stage)
    return [*out, deployment, stage]


def _function_url(fn: FunctionPlan) -> list[Block]:
    n = tf_name(fn.name)
    url = (
        Block("resource", ("aws_lambda_function_url", n))
        .set("function_name", Expr(f"{_fn(fn.name)}.function_name"))
        .set("authorization_type", "NONE")
    )
    # Public (Twilio cannot sign with SigV4; the app checks X-Twilio-Signature).
    perm = (
        Block("resource", ("aws_lambda_permission", f"url_{n}"))
        .set("statement_id", "AllowPublicFunctionUrl")
        .set("action", "lambda:InvokeFunctionUrl")
        .set("function_name", Expr(f"{_fn(fn.name)}.function_name"))
        .set("principal", "*")
        .set("function_url_auth_type", "NONE")
    )
    invoke = (
        Block("resource", ("aws_lambda_permission", f"url_invoke_{n}"))
        .set("statement_id", "AllowInvokeViaFunctionUrl")
        .set("action", "lambda:InvokeFunction")
        .set("function_name", Expr(f"{_fn(fn.name)}.function_name"))
        .set("principal", "*")
        .set("invoked_via_function_url", True)
    )
    return [url, perm, invoke]


def _http_api(fn: FunctionPlan) -> list[Block]:
    n = tf_name(fn.name)
    out = [
        Block("resource", ("aws_apigatewayv2_api", "twiml"))
        .set("name", Tpl("${var.name_prefix}-twiml"))
        .set("protocol_type", "HTTP"),
        Block("resource", ("aws_apigatewayv2_integration", f"http_{n}"))
        .set("api_id", Expr("aws_apigatewayv2_api.twiml.id"))
        .set("integration_type", "AWS_PROXY")
        .set("integration_uri", Expr(f"{_fn(fn.name)}.invoke_arn"))
        .set("payload_format_version", "2.0"),
    ]
    for key in ("POST /twiml", "GET /twiml", "POST /cr-action"):
        out.append(
            Block("resource", ("aws_apigatewayv2_route", "twiml_" + tf_name(key)))
            .set("api_id", Expr("aws_apigatewayv2_api.twiml.id"))
            .set("route_key", key)
            .set("target", Tpl(f"integrations/${{aws_apigatewayv2_integration.http_{n}.id}}"))
        )
    out.append(
        Block("resource", ("aws_apigatewayv2_stage", "twiml"))
        .set("api_id", Expr("aws_apigatewayv2_api.twiml.id"))
        .set("name", "$default")
        .set("auto_deploy", True)
    )
    out.append(
        _invoke_permission(
            f"http_{n}",
            "AllowTwimlHttpApi",
            fn.name,
            "apigateway.amazonaws.com",
            Tpl("${aws_apigatewayv2_api.twiml.execution_arn}/*/*"),
        )
    )
    return out


def _queue(q: Any) -> list[Block]:
    n = tf_name(q.name)
    out = []
    queue = (
        Block("resource", ("aws_sqs_queue", n))
        .set("name", Tpl(f"${{var.name_prefix}}-{q.name}"))
        .set("visibility_timeout_seconds", q.visibility_timeout_s)
        .set("message_retention_seconds", QUEUE_RETENTION_S)
        .set("sqs_managed_sse_enabled", True)
    )
    if q.max_receive_count:
        out.append(
            Block("resource", ("aws_sqs_queue", f"{n}_dlq"))
            .set("name", Tpl(f"${{var.name_prefix}}-{q.name}-dlq"))
            .set("message_retention_seconds", DLQ_RETENTION_S)
            .set("sqs_managed_sse_enabled", True)
        )
        queue.set(
            "redrive_policy",
            Expr(
                f"jsonencode({{ deadLetterTargetArn = aws_sqs_queue.{n}_dlq.arn, "
                f"maxReceiveCount = {q.max_receive_count} }})"
            ),
        )
    out.append(queue)
    mapping = (
        Block("resource", ("aws_lambda_event_source_mapping", n))
        .set("event_source_arn", Expr(f"aws_sqs_queue.{n}.arn"))
        .set("function_name", Expr(f"{_fn(q.function)}.arn"))
        .set("batch_size", q.batch_size)
        .set("enabled", True)
    )
    if q.batching_window_s:
        mapping.set("maximum_batching_window_in_seconds", q.batching_window_s)
    if q.report_batch_item_failures:
        mapping.set("function_response_types", ["ReportBatchItemFailures"])
    out.append(mapping)
    return out


def _topic(t: Any) -> list[Block]:
    n = tf_name(t.name)
    out = [
        Block("resource", ("aws_sns_topic", n)).set("name", Tpl(f"${{var.name_prefix}}-{t.name}"))
    ]
    for name in t.functions:
        f = tf_name(name)
        out.append(
            Block("resource", ("aws_sns_topic_subscription", f"{n}_{f}"))
            .set("topic_arn", Expr(f"aws_sns_topic.{n}.arn"))
            .set("protocol", "lambda")
            .set("endpoint", Expr(f"{_fn(name)}.arn"))
        )
        out.append(
            _invoke_permission(
                f"sns_{n}_{f}",
                f"AllowSns{n}",
                name,
                "sns.amazonaws.com",
                Expr(f"aws_sns_topic.{n}.arn"),
            )
        )
    return out


def _schedule(s: Any) -> list[Block]:
    n = tf_name(s.name)
    out = [
        Block("resource", ("aws_cloudwatch_event_rule", n))
        .set("name", Tpl(f"${{var.name_prefix}}-{s.name}"))
        .set("description", f"warm-up / schedule {s.name}")
        .set("schedule_expression", s.expression)
        .set("state", "ENABLED" if s.enabled else "DISABLED")
    ]
    for name in s.targets:
        f = tf_name(name)
        out.append(
            Block("resource", ("aws_cloudwatch_event_target", f"{n}_{f}"))
            .set("rule", Expr(f"aws_cloudwatch_event_rule.{n}.name"))
            .set("target_id", name[:64])
            .set("arn", Expr(f"{_fn(name)}.arn"))
            .set("input", s.input_for(name) or None)
        )
        out.append(
            _invoke_permission(
                f"rule_{n}_{f}",
                f"AllowRule{n}",
                name,
                "events.amazonaws.com",
                Expr(f"aws_cloudwatch_event_rule.{n}.arn"),
            )
        )
    return out


def _outputs(plan: Plan) -> list[Block]:
    out = []
    if plan.websocket:
        out.append(
            Block("output", ("websocket_url",)).set(
                "value", Expr("aws_apigatewayv2_stage.ws.invoke_url")
            )
        )
    for fn in plan.functions.values():
        if fn.twiml == "function_url":
            url = f"${{aws_lambda_function_url.{tf_name(fn.name)}.function_url}}twiml"
            out.append(Block("output", ("twiml_url",)).set("value", Tpl(url)))
        elif fn.twiml == "http_api":
            url = "${aws_apigatewayv2_stage.twiml.invoke_url}twiml"
            out.append(Block("output", ("twiml_url",)).set("value", Tpl(url)))
    if plan.table:
        out.append(
            Block("output", ("session_table",)).set(
                "value", Expr("aws_dynamodb_table.sessions.name")
            )
        )
    return out
