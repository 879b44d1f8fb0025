"""Provisioned concurrency and SnapStart in the SAM template: a published version and alias.

Both options apply to published versions only, never to ``$LATEST``
(https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html). A function with either one
gets SAM's ``AutoPublishAlias`` (a new version and the alias ``live`` on each code change,
https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/sam-resource-function.html)
and, per option, ``ProvisionedConcurrencyConfig`` (set on the alias) or
``SnapStart: {ApplyOn: PublishedVersions}``.

Every caller of such a function is then pointed at the alias, or the options would never
serve a request: the WebSocket and HTTP integrations, the function URL (``Qualifier``),
queue mappings, topic subscriptions, schedule targets, the resource policies of all of
these, and other functions' invokes (their environment and IAM grant name the alias ARN).
What describes the function itself keeps naming it: alarms (the ``FunctionName``
dimension aggregates every version), outputs and the log group.
"""

from __future__ import annotations

from typing import Any

from warmline.templates.plan import FunctionPlan, Plan

__all__ = ["alias_logical_id", "apply_publish_options"]

#: Resource types that describe the function rather than call it: left as they are.
_DESCRIBES = frozenset({"AWS::CloudWatch::Alarm", "AWS::Logs::LogGroup"})


def alias_logical_id(fn: FunctionPlan) -> str:
    """The alias resource SAM generates for ``AutoPublishAlias`` (``<Function>Alias<name>``)."""
    assert fn.alias is not None
    return f"{fn.logical}FunctionAlias{fn.alias}"


def apply_publish_options(plan: Plan, template: dict[str, Any]) -> None:
    """Publish the functions that ask for it and send their callers to the alias (in place)."""
    resources: dict[str, Any] = template["Resources"]
    for fn in plan.functions.values():
        if fn.alias is None:
            continue
        function_id = fn.logical + "Function"
        alias_id = alias_logical_id(fn)
        props = resources[function_id]["Properties"]
        props["AutoPublishAlias"] = fn.alias
        if fn.provisioned_concurrency is not None:
            props["ProvisionedConcurrencyConfig"] = {
                "ProvisionedConcurrentExecutions": fn.provisioned_concurrency
            }
        if fn.snapstart:
            props["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        for logical, resource in resources.items():
            if logical == function_id or resource["Type"] in _DESCRIBES:
                continue
            if resource["Type"] == "AWS::Lambda::Url":
                resource["Properties"]["Qualifier"] = fn.alias
                continue
            resource["Properties"] = _to_alias(resource["Properties"], function_id, alias_id)


def _to_alias(node: Any, function_id: str, alias_id: str) -> Any:
    """``node`` with each reference that calls the function turned into the alias ARN."""
    if isinstance(node, dict):
        if node == {"Ref": function_id} or node == {"Fn::GetAtt": [function_id, "Arn"]}:
            return {"Ref": alias_id}  # an alias's Ref is its ARN
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            text = node["Fn::Sub"].replace(f"${{{function_id}.Arn}}", f"${{{alias_id}}}")
            return {"Fn::Sub": text}
        return {key: _to_alias(value, function_id, alias_id) for key, value in node.items()}
    if isinstance(node, list):
        return [_to_alias(value, function_id, alias_id) for value in node]
    return node
