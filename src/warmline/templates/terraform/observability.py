"""The Terraform module's alarms, dashboard, alarm topic and WebSocket access logs.

What to alarm on is decided in :mod:`warmline.templates.observability`; this module only
writes it as HCL: ``aws_cloudwatch_metric_alarm``, ``aws_cloudwatch_dashboard`` (its body
``jsonencode`` of an object whose function names are references), ``aws_sns_topic`` when
no ``alarm_topic_arn`` is given, and the WebSocket stage's ``access_log_settings`` with a
log group of its own.
"""

from __future__ import annotations

from typing import Any

from warmline.templates.observability import (
    ACCESS_LOG_FORMAT,
    alarm_topic_needed,
    alarms,
    dashboard_widget,
    dashboard_widgets,
)
from warmline.templates.plan import Plan
from warmline.templates.terraform.hcl import Block, Expr, Tpl, value

__all__ = ["access_log_settings", "alarm_actions", "observability_blocks"]


def _name(name: str) -> str:
    from warmline.templates.terraform.write import tf_name  # write.py imports this module

    return tf_name(name)


def alarm_actions(plan: Plan) -> list[Any]:
    """Where every alarm notifies: the given topic, or the one this module creates."""
    if alarm_topic_needed(plan):
        return [Expr("aws_sns_topic.alarms.arn")]
    return [plan.alarm_topic_arn]


def _resolve(ref: tuple[str, str]) -> Expr:
    kind, name = ref
    if kind == "function":
        return Expr(f"aws_lambda_function.{_name(name)}.function_name")
    return Expr(f"aws_sqs_queue.{_name(name)}_dlq.name")


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")


def observability_blocks(plan: Plan) -> list[Block]:
    """The alarm topic, the alarms, the dashboard and the access-log group."""
    out: list[Block] = []
    if alarm_topic_needed(plan):
        out.append(
            Block("resource", ("aws_sns_topic", "alarms"))
            .set("name", Tpl("${var.name_prefix}-alarms"))
            .set("kms_master_key_id", "alias/aws/sns")
        )
    actions = alarm_actions(plan)
    for spec in alarms(plan):
        key = _snake(spec.key)
        block = (
            Block("resource", ("aws_cloudwatch_metric_alarm", f"{_name(spec.owner)}_{key}"))
            .set("alarm_name", Tpl(f"${{var.name_prefix}}-{spec.owner}-{key.replace('_', '-')}"))
            .set("alarm_description", spec.description)
            .set("namespace", spec.namespace)
            .set("metric_name", spec.metric)
            .set("dimensions", {k: _resolve(ref) for k, ref in spec.dimensions})
            .set("extended_statistic" if spec.extended else "statistic", spec.statistic)
            .set("period", spec.period_s)
            .set("evaluation_periods", spec.evaluation_periods)
            .set("datapoints_to_alarm", spec.datapoints)
            .set("threshold", spec.threshold)
            .set("comparison_operator", spec.comparison)
            .set("treat_missing_data", "notBreaching")
            .set("alarm_actions", actions)
        )  # fmt: skip
        out.append(block)
    if plan.observability.dashboard:
        out.append(
            Block("resource", ("aws_cloudwatch_dashboard", "main"))
            .set("dashboard_name", Tpl("${var.name_prefix}"))
            .set("dashboard_body", Expr(f"jsonencode({value(_dashboard(plan), 1)})"))
        )
    if plan.websocket and plan.observability.access_logs:
        out.append(
            Block("resource", ("aws_cloudwatch_log_group", "ws_access"))
            .set("name", Tpl("/warmline/${var.name_prefix}/websocket-access"))
            .set("retention_in_days", plan.log_retention_days)
        )
    return out


def _dashboard(plan: Plan) -> dict[str, Any]:
    widgets = []
    for i, widget in enumerate(dashboard_widgets(plan)):
        metrics = [[ns, metric, dim, _resolve(ref), {"stat": stat}]
                   for ns, metric, (dim, ref), stat in widget.metrics]  # fmt: skip
        region = Expr("data.aws_region.current.region")
        widgets.append(dashboard_widget(i, widget.title, metrics, region))
    return {"widgets": widgets}


def access_log_settings(plan: Plan, stage: Block) -> None:
    """Give the WebSocket ``stage`` its ``access_log_settings`` block (when enabled)."""
    if plan.observability.access_logs:
        stage.add(Block("access_log_settings")).set(
            "destination_arn", Expr("aws_cloudwatch_log_group.ws_access.arn")
        ).set("format", ACCESS_LOG_FORMAT)
