"""Render a :class:`~warmline.templates.plan.Plan` as an AWS SAM template (JSON).

JSON, not YAML: CloudFormation and ``sam deploy`` read both, and JSON needs no YAML
library and no ``!Sub`` tags (the long ``Fn::Sub`` forms are used throughout). Functions
are ``AWS::Serverless::Function`` only for ``CodeUri``: ``sam deploy`` uploads the zip that
``warmline deploy package`` built. Everything else is plain CloudFormation, so the IAM
role, the API Gateway routes and the permissions are exactly what the plan says — no SAM
policy templates or implicit event wiring that would widen them.

The WebSocket deployment's logical ID carries a hash of the routes: CloudFormation never
redeploys an unchanged ``AWS::ApiGatewayV2::Deployment``, so a new route would otherwise
exist but not be live on the stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from warmline.templates.cloudformation.observability import add_observability, alarm_actions
from warmline.templates.cloudformation.publish import apply_publish_options
from warmline.templates.observability import (
    ERRORS_DATAPOINTS,
    ERRORS_PERIOD_S,
    ERRORS_PERIODS,
    P99_PERIOD_S,
    P99_PERIODS,
)
from warmline.templates.plan import FunctionPlan, Plan, Ref, Statement, logical_id

__all__ = [
    "DLQ_RETENTION_S",
    "QUEUE_RETENTION_S",
    "TEMPLATE_NAME",
    "render_sam",
    "resource_arn",
    "write_sam",
]

TEMPLATE_NAME = "template.json"
_ARN = "arn:${AWS::Partition}"
_REGION_ACCOUNT = "${AWS::Region}:${AWS::AccountId}"
_TABLE = "SessionTable"
_API = "WebSocketApi"
_STAGE = "WebSocketStage"
_HTTP_API = "TwimlHttpApi"
#: Stateful resources say what happens on delete: sessions, queued turns and logs are
#: short-lived by design (TTL, retention), so a removed stack removes them too.
_EPHEMERAL = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
#: SQS retention: the default 4 days for turns, the maximum 14 days for dead letters (time
#: to inspect them) (SQS quotas page).
QUEUE_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600


def _sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


def _ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def _att(name: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [name, attribute]}


def _fn(plan: Plan, name: str) -> str:
    return plan.functions[name].logical + "Function"


def resource_arn(plan: Plan, ref: Ref) -> Any:
    """The CloudFormation expression of an abstract resource (see :class:`Ref`)."""
    kind, name = ref
    if kind == "log_group":
        return _att(plan.functions[name].logical + "LogGroup")
    if kind == "connections":
        return _sub(
            f"{_ARN}:execute-api:{_REGION_ACCOUNT}:${{{_API}}}/{plan.stage}/{name}/@connections/*"
        )
    if kind == "table":
        return _att(_TABLE)
    if kind == "queue":
        return _att(logical_id(name, "Queue"))
    if kind == "topic":
        return _ref(logical_id(name, "Topic"))
    if kind == "function":
        return _att(_fn(plan, name))
    if kind == "function_versions":
        return _sub(f"${{{_fn(plan, name)}.Arn}}:*")
    if kind == "ssm":
        return _sub(f"{_ARN}:ssm:{_REGION_ACCOUNT}:parameter/{name.lstrip('/')}")
    if kind == "secret":
        # Secrets Manager appends "-" and 6 random characters to a secret's ARN.
        return _sub(f"{_ARN}:secretsmanager:{_REGION_ACCOUNT}:secret:{name}-??????")
    if kind in ("kms", "arn"):
        return name
    raise ValueError(f"unknown resource kind {kind!r}")  # pragma: no cover - model bug


def _statement(plan: Plan, st: Statement) -> dict[str, Any]:
    resources = [resource_arn(plan, r) for r in st.resources]
    out: dict[str, Any] = {
        "Sid": st.sid,
        "Effect": st.effect,
        "Action": list(st.actions),
        "Resource": resources,
    }
    if st.via_service:
        out["Condition"] = {
            "StringEquals": {
                "kms:ViaService": _sub(f"{st.via_service}.${{AWS::Region}}.amazonaws.com")
            }
        }
    return out


def _env_value(plan: Plan, spec: tuple[str, ...]) -> Any:
    kind = spec[0]
    if kind == "table":
        return _ref(_TABLE)
    if kind == "ws_url":
        return _sub(
            f"wss://${{{_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{plan.stage}"
        )
    if kind == "queue_url":
        return _ref(logical_id(spec[1], "Queue"))
    if kind == "topic":
        return _ref(logical_id(spec[1], "Topic"))
    if kind == "function":
        return _ref(_fn(plan, spec[1]))
    raise ValueError(f"unknown environment reference {spec!r}")  # pragma: no cover


def render_sam(plan: Plan, *, out_dir: Path | None = None) -> dict[str, Any]:
    """The SAM template as a JSON-ready dict.

    Args:
        plan: what to deploy.
        out_dir: where the template will be written; ``CodeUri`` paths are relative to it
            (default: absolute paths).
    """
    res: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for fn in plan.functions.values():
        _function(plan, fn, res, out_dir)
    if plan.table:
        res[_TABLE] = {
            "Type": "AWS::DynamoDB::Table",
            **_EPHEMERAL,
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                "SSESpecification": {"SSEEnabled": True},
            },
        }
        outputs["SessionTableName"] = {"Value": _ref(_TABLE)}
    if plan.websocket:
        _websocket(plan, res)
        outputs["WebSocketUrl"] = {"Value": _env_value(plan, ("ws_url",))}
    for fn in plan.functions.values():
        if fn.twiml == "function_url":
            _function_url(fn, res)
            outputs["TwimlUrl"] = {"Value": _sub(f"${{{fn.logical}Url.FunctionUrl}}twiml")}
        elif fn.twiml == "http_api":
            _http_api(plan, fn, res)
            outputs["TwimlUrl"] = {
                "Value": _sub(
                    f"https://${{{_HTTP_API}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/twiml"
                )
            }
    for q in plan.queues:
        _queue(plan, q, res)
    for t in plan.topics:
        _topic(plan, t, res)
    for s in plan.schedules:
        _schedule(plan, s, res)
    for fn in plan.functions.values():
        outputs[f"{fn.logical}FunctionName"] = {"Value": _ref(fn.logical + "Function")}
    add_observability(plan, res, outputs)
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"{plan.stack_name}: rendered by `warmline deploy render --target sam`",
        "Resources": res,
        "Outputs": outputs,
    }
    apply_publish_options(plan, template)
    return template


def write_sam(plan: Plan, out_dir: Path) -> Path:
    """Render and write ``template.json`` into ``out_dir``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / TEMPLATE_NAME
    template = render_sam(plan, out_dir=out_dir)
    path.write_text(json.dumps(template, indent=2) + "\n", encoding="utf-8")
    return path


def _function(plan: Plan, fn: FunctionPlan, res: dict[str, Any], out_dir: Path | None) -> None:
    lid = fn.logical
    res[lid + "LogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        **_EPHEMERAL,
        "Properties": {
            "LogGroupName": _sub(f"/warmline/${{AWS::StackName}}/{fn.name}"),
            "RetentionInDays": plan.log_retention_days,
        },
    }
    res[lid + "Role"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": f"{lid}Policy",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [_statement(plan, st) for st in fn.statements],
                    },
                }
            ],
        },
    }
    env: dict[str, Any] = dict(sorted(fn.environment.items()))
    env.update({k: _env_value(plan, v) for k, v in sorted(fn.env_refs.items())})
    code = fn.artifact if out_dir is None else Path(os.path.relpath(fn.artifact, out_dir))
    props: dict[str, Any] = {
        "CodeUri": code.as_posix(),
        "Handler": fn.handler,
        "Runtime": fn.runtime,
        "Architectures": [fn.architecture],
        "MemorySize": fn.memory_mb,
        "Timeout": fn.timeout_s,
        "Role": _att(lid + "Role"),
        "LoggingConfig": {"LogGroup": _ref(lid + "LogGroup"), "LogFormat": "Text"},
    }
    if env:
        props["Environment"] = {"Variables": env}
    if fn.reserved_concurrency is not None:
        props["ReservedConcurrentExecutions"] = fn.reserved_concurrency
    res[lid + "Function"] = {"Type": "AWS::Serverless::Function", "Properties": props}
    if fn.self_statements:
        # Its own ARN: a policy of its own, or the role and the function would need
        # each other first.
        res[lid + "SelfPolicy"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": f"{lid}SelfPolicy",
                "Roles": [_ref(lid + "Role")],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [_statement(plan, st) for st in fn.self_statements],
                },
            },
        }
    actions = alarm_actions(plan)
    dims = [{"Name": "FunctionName", "Value": _ref(lid + "Function")}]
    res[lid + "ErrorsAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"{fn.name}: invocations ending in an error",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": dims,
            "Statistic": "Sum",
            "Period": ERRORS_PERIOD_S,
            "EvaluationPeriods": ERRORS_PERIODS,
            "DatapointsToAlarm": ERRORS_DATAPOINTS,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
        },
    }
    res[lid + "DurationP99Alarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"{fn.name}: p99 duration above {fn.p99_ms:g} ms",
            "Namespace": "AWS/Lambda",
            "MetricName": "Duration",
            "Dimensions": dims,
            "ExtendedStatistic": "p99",
            "Period": P99_PERIOD_S,
            "EvaluationPeriods": P99_PERIODS,
            "Threshold": fn.p99_ms,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
        },
    }


def _route_logical(key: str) -> str:
    if key.startswith("$"):
        return logical_id(key[1:], "Route")
    return "Route" + logical_id(key)


def _websocket(plan: Plan, res: dict[str, Any]) -> None:
    res[_API] = {
        "Type": "AWS::ApiGatewayV2::Api",
        "Properties": {
            "Name": _sub("${AWS::StackName}-ws"),
            "ProtocolType": "WEBSOCKET",
            "RouteSelectionExpression": plan.route_selection_expression,
        },
    }
    route_ids = []
    for name in dict.fromkeys(r.function for r in plan.routes):
        lid = plan.functions[name].logical
        res[lid + "Integration"] = {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": _ref(_API),
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": _sub(
                    f"{_ARN}:apigateway:${{AWS::Region}}:lambda:path/2015-03-31/functions/"
                    f"${{{lid}Function.Arn}}/invocations"
                ),
                "TimeoutInMillis": plan.integration_timeout_ms,
            },
        }
        res[lid + "ApiPermission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": _ref(lid + "Function"),
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": _sub(
                    f"{_ARN}:execute-api:{_REGION_ACCOUNT}:${{{_API}}}/{plan.stage}/*"
                ),
            },
        }
    for route in plan.routes:
        rid = _route_logical(route.key)
        route_ids.append(rid)
        props: dict[str, Any] = {
            "ApiId": _ref(_API),
            "RouteKey": route.key,
            "AuthorizationType": "NONE",
            "Target": _sub(
                f"integrations/${{{plan.functions[route.function].logical}Integration}}"
            ),
        }
        if route.route_response:
            props["RouteResponseSelectionExpression"] = "$default"
            res[rid + "Response"] = {
                "Type": "AWS::ApiGatewayV2::RouteResponse",
                "Properties": {
                    "ApiId": _ref(_API),
                    "RouteId": _ref(rid),
                    "RouteResponseKey": "$default",
                },
            }
        res[rid] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": props}
    digest = hashlib.sha256(
        json.dumps([list(r) for r in plan.routes], sort_keys=True).encode()
    ).hexdigest()[:10]
    deployment = f"WebSocketDeployment{digest}"
    res[deployment] = {
        "Type": "AWS::ApiGatewayV2::Deployment",
        "DependsOn": route_ids,
        "Properties": {"ApiId": _ref(_API)},
    }
    res[_STAGE] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        "Properties": {
            "ApiId": _ref(_API),
            "StageName": plan.stage,
            "DeploymentId": _ref(deployment),
        },
    }


def _function_url(fn: FunctionPlan, res: dict[str, Any]) -> None:
    lid = fn.logical
    res[lid + "Url"] = {
        "Type": "AWS::Lambda::Url",
        "Properties": {"TargetFunctionArn": _att(lid + "Function"), "AuthType": "NONE"},
    }
    # Public, because Twilio cannot sign with SigV4; the app checks X-Twilio-Signature.
    res[lid + "UrlPermission"] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunctionUrl",
            "FunctionName": _ref(lid + "Function"),
            "Principal": "*",
            "FunctionUrlAuthType": "NONE",
        },
    }
    # Since October 2025 a function URL also needs lambda:InvokeFunction, limited here to
    # calls that come through the URL (Lambda "Control access to function URLs").
    res[lid + "UrlInvokePermission"] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": _ref(lid + "Function"),
            "Principal": "*",
            "InvokedViaFunctionUrl": True,
        },
    }


def _http_api(plan: Plan, fn: FunctionPlan, res: dict[str, Any]) -> None:
    lid = fn.logical
    res[_HTTP_API] = {
        "Type": "AWS::ApiGatewayV2::Api",
        "Properties": {"Name": _sub("${AWS::StackName}-twiml"), "ProtocolType": "HTTP"},
    }
    res[lid + "HttpIntegration"] = {
        "Type": "AWS::ApiGatewayV2::Integration",
        "Properties": {
            "ApiId": _ref(_HTTP_API),
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": _att(lid + "Function"),
            "PayloadFormatVersion": "2.0",
        },
    }
    for key in ("POST /twiml", "GET /twiml", "POST /cr-action"):
        res["TwimlRoute" + logical_id(key)] = {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": _ref(_HTTP_API),
                "RouteKey": key,
                "Target": _sub(f"integrations/${{{lid}HttpIntegration}}"),
            },
        }
    res["TwimlHttpStage"] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        "Properties": {"ApiId": _ref(_HTTP_API), "StageName": "$default", "AutoDeploy": True},
    }
    res[lid + "HttpPermission"] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": _ref(lid + "Function"),
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": _sub(f"{_ARN}:execute-api:{_REGION_ACCOUNT}:${{{_HTTP_API}}}/*/*"),
        },
    }


def _queue(plan: Plan, q: Any, res: dict[str, Any]) -> None:
    qid = logical_id(q.name, "Queue")
    props: dict[str, Any] = {
        "VisibilityTimeout": q.visibility_timeout_s,
        "SqsManagedSseEnabled": True,
        "MessageRetentionPeriod": QUEUE_RETENTION_S,
    }
    if q.max_receive_count:
        dlq = logical_id(q.name, "DeadLetterQueue")
        res[dlq] = {
            "Type": "AWS::SQS::Queue",
            **_EPHEMERAL,
            "Properties": {
                "SqsManagedSseEnabled": True,
                "MessageRetentionPeriod": DLQ_RETENTION_S,
            },
        }
        props["RedrivePolicy"] = {
            "deadLetterTargetArn": _att(dlq),
            "maxReceiveCount": q.max_receive_count,
        }
    res[qid] = {"Type": "AWS::SQS::Queue", **_EPHEMERAL, "Properties": props}
    mapping: dict[str, Any] = {
        "EventSourceArn": _att(qid),
        "FunctionName": _ref(_fn(plan, q.function)),
        "BatchSize": q.batch_size,
        "Enabled": True,
    }
    if q.batching_window_s:
        mapping["MaximumBatchingWindowInSeconds"] = q.batching_window_s
    if q.report_batch_item_failures:
        mapping["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    res[logical_id(q.name, "Mapping")] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": mapping,
    }


def _topic(plan: Plan, t: Any, res: dict[str, Any]) -> None:
    tid = logical_id(t.name, "Topic")
    res[tid] = {"Type": "AWS::SNS::Topic", "Properties": {}}
    for name in t.functions:
        lid = plan.functions[name].logical
        res[f"{tid}{lid}Subscription"] = {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "Protocol": "lambda",
                "TopicArn": _ref(tid),
                "Endpoint": _att(lid + "Function"),
            },
        }
        res[f"{tid}{lid}Permission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": _ref(lid + "Function"),
                "Principal": "sns.amazonaws.com",
                "SourceArn": _ref(tid),
            },
        }


def _schedule(plan: Plan, s: Any, res: dict[str, Any]) -> None:
    rid = logical_id(s.name, "Rule")
    targets = []
    for name in s.targets:
        target: dict[str, Any] = {"Id": name[:64], "Arn": _att(_fn(plan, name))}
        if s.input_for(name):
            target["Input"] = s.input_for(name)
        targets.append(target)
        lid = plan.functions[name].logical
        res[f"{rid}{lid}Permission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": _ref(lid + "Function"),
                "Principal": "events.amazonaws.com",
                "SourceArn": _att(rid),
            },
        }
    res[rid] = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": f"warm-up / schedule {s.name}",
            "ScheduleExpression": s.expression,
            "State": "ENABLED" if s.enabled else "DISABLED",
            "Targets": targets,
        },
    }
