"""The SAM template's alarms, dashboard, alarm topic and WebSocket access logs.

What to alarm on is decided in :mod:`warmline.templates.observability`; this module only
writes it as CloudFormation: ``AWS::CloudWatch::Alarm``, ``AWS::CloudWatch::Dashboard``
(its body a ``Fn::Sub`` of the JSON, so function names resolve), ``AWS::SNS::Topic``
when no ``alarm_topic_arn`` is given, and the stage's ``AccessLogSettings`` with a log
group of its own.
"""

from __future__ import annotations

import json
from typing import Any

from warmline.templates.observability import (
    ACCESS_LOG_FORMAT,
    alarm_topic_needed,
    alarms,
    dashboard_widget,
    dashboard_widgets,
)
from warmline.templates.plan import Plan, logical_id

__all__ = ["ACCESS_LOG_GROUP", "ALARM_TOPIC", "DASHBOARD", "add_observability", "alarm_actions"]

ALARM_TOPIC = "AlarmTopic"
ACCESS_LOG_GROUP = "WebSocketAccessLogGroup"
DASHBOARD = "Dashboard"
_STAGE = "WebSocketStage"


def alarm_actions(plan: Plan) -> list[Any]:
    """Where every alarm notifies: the given topic, or the one this template creates."""
    if alarm_topic_needed(plan):
        return [{"Ref": ALARM_TOPIC}]
    return [plan.alarm_topic_arn]


def _resolve(plan: Plan, ref: tuple[str, str]) -> Any:
    kind, name = ref
    if kind == "function":
        return {"Ref": plan.functions[name].logical + "Function"}
    return {"Fn::GetAtt": [logical_id(name, "DeadLetterQueue"), "QueueName"]}


def _sub_ref(plan: Plan, ref: tuple[str, str]) -> str:
    kind, name = ref
    if kind == "function":
        return "${" + plan.functions[name].logical + "Function}"
    return "${" + logical_id(name, "DeadLetterQueue") + ".QueueName}"


def add_observability(plan: Plan, res: dict[str, Any], outputs: dict[str, Any]) -> None:
    """Add the alarm topic, the alarms, the dashboard and the access logs to ``res``."""
    if alarm_topic_needed(plan):
        res[ALARM_TOPIC] = {
            "Type": "AWS::SNS::Topic",
            "Properties": {"KmsMasterKeyId": "alias/aws/sns"},
        }
        outputs["AlarmTopicArn"] = {"Value": {"Ref": ALARM_TOPIC}}
    actions = alarm_actions(plan)
    for spec in alarms(plan):
        props: dict[str, Any] = {
            "AlarmDescription": spec.description,
            "Namespace": spec.namespace,
            "MetricName": spec.metric,
            "Dimensions": [{"Name": k, "Value": _resolve(plan, ref)} for k, ref in spec.dimensions],
            "ExtendedStatistic" if spec.extended else "Statistic": spec.statistic,
            "Period": spec.period_s,
            "EvaluationPeriods": spec.evaluation_periods,
            "DatapointsToAlarm": spec.datapoints,
            "Threshold": spec.threshold,
            "ComparisonOperator": spec.comparison,
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
        }
        res[logical_id(spec.owner, spec.key + "Alarm")] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": props,
        }
    if plan.observability.dashboard:
        res[DASHBOARD] = {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {"DashboardBody": {"Fn::Sub": _dashboard_body(plan)}},
        }
    if plan.websocket and plan.observability.access_logs:
        _access_logs(plan, res)


def _dashboard_body(plan: Plan) -> str:
    widgets = []
    for i, widget in enumerate(dashboard_widgets(plan)):
        metrics = [[ns, metric, dim, _sub_ref(plan, ref), {"stat": stat}]
                   for ns, metric, (dim, ref), stat in widget.metrics]  # fmt: skip
        widgets.append(dashboard_widget(i, widget.title, metrics, "${AWS::Region}"))
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def _access_logs(plan: Plan, res: dict[str, Any]) -> None:
    res[ACCESS_LOG_GROUP] = {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": {"Fn::Sub": "/warmline/${AWS::StackName}/websocket-access"},
            "RetentionInDays": plan.log_retention_days,
        },
    }
    res[_STAGE]["Properties"]["AccessLogSettings"] = {
        "DestinationArn": {"Fn::GetAtt": [ACCESS_LOG_GROUP, "Arn"]},
        "Format": ACCESS_LOG_FORMAT,
    }
