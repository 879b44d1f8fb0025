"""Provisioned concurrency and SnapStart in ``main.tf``: a published version and its alias.

The Terraform form of :mod:`warmline.templates.cloudformation.publish`. A function with
either option gets ``publish = true`` (each code change publishes a version), an
``aws_lambda_alias`` named ``live`` on the latest version, and per option an
``aws_lambda_provisioned_concurrency_config`` on the alias or a ``snap_start`` block
(``apply_on = "PublishedVersions"``). Both options only apply to published versions
(https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html,
https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html).

Callers are pointed at the alias: ``.arn`` and ``.invoke_arn`` of the function become the
alias's (integrations, queue mappings, subscriptions, schedule targets, IAM grants), other
functions' environment names the alias ARN, and permissions and the function URL gain a
``qualifier``. Alarms, the log group and the outputs keep naming the function.
"""

from __future__ import annotations

import re
from typing import Any

from warmline.templates.plan import FunctionPlan, Plan
from warmline.templates.terraform.hcl import Block, Expr, Tpl

__all__ = ["apply_publish_options"]

#: Resource types that describe the function rather than call it: left as they are.
_DESCRIBES = frozenset({"aws_cloudwatch_metric_alarm", "aws_cloudwatch_log_group"})
#: Resources that take the alias as ``qualifier`` beside the function's name.
_QUALIFIED = frozenset({"aws_lambda_permission", "aws_lambda_function_url"})


def apply_publish_options(plan: Plan, blocks: list[Block]) -> None:
    """Publish the functions that ask for it and send their callers to the alias (in place:
    ``blocks`` gains the alias and provisioned-concurrency resources)."""
    from warmline.templates.terraform.write import tf_name  # write imports this module

    for fn in plan.functions.values():
        if fn.alias is None:
            continue
        n = tf_name(fn.name)
        function, alias = f"aws_lambda_function.{n}", f"aws_lambda_alias.{n}"
        for block in blocks:
            kind = block.labels[0] if block.labels else ""
            if block.type == "output" or kind in _DESCRIBES:
                continue
            if block.type == "resource" and block.labels == ("aws_lambda_function", n):
                _publish(block, fn)
            elif kind in _QUALIFIED:
                if ("function_name", Expr(f"{function}.function_name")) in block.body:
                    block.set("qualifier", Expr(f"{alias}.name"))
            else:
                _to_alias(block, function, alias)
        blocks.extend(_alias_blocks(fn, n))


def _publish(block: Block, fn: FunctionPlan) -> None:
    block.body.insert(0, ("publish", True))
    if fn.snapstart:
        block.add(Block("snap_start")).set("apply_on", "PublishedVersions")


def _alias_blocks(fn: FunctionPlan, n: str) -> list[Block]:
    alias = (
        Block("resource", ("aws_lambda_alias", n))
        .set("name", fn.alias)
        .set("description", "the published version every trigger calls")
        .set("function_name", Expr(f"aws_lambda_function.{n}.function_name"))
        .set("function_version", Expr(f"aws_lambda_function.{n}.version"))
    )
    out = [alias]
    if fn.provisioned_concurrency is not None:
        out.append(
            Block("resource", ("aws_lambda_provisioned_concurrency_config", n))
            .set("function_name", Expr(f"aws_lambda_alias.{n}.function_name"))
            .set("qualifier", Expr(f"aws_lambda_alias.{n}.name"))
            .set("provisioned_concurrent_executions", fn.provisioned_concurrency)
        )
    return out


def _to_alias(block: Block, function: str, alias: str) -> None:
    """Rewrite, in place, each reference of ``block`` that calls ``function``."""
    calls = re.compile(rf"\b{re.escape(function)}\.(invoke_arn|arn)\b")
    named = re.compile(rf"\b{re.escape(function)}\.function_name\b")

    def rewrite(value: Any, *, environment: bool) -> Any:
        if isinstance(value, Expr | Tpl):
            text = calls.sub(rf"{alias}.\1", value)
            if environment:  # another function's environment: the ARN it invokes
                text = named.sub(f"{alias}.arn", text)
            return type(value)(text)
        if isinstance(value, dict):
            return {k: rewrite(v, environment=environment) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v, environment=environment) for v in value]
        return value

    def walk(node: Block, *, environment: bool) -> None:
        for i, item in enumerate(node.body):
            if isinstance(item, Block):
                walk(item, environment=environment or item.type == "environment")
            else:
                node.body[i] = (item[0], rewrite(item[1], environment=environment))

    walk(block, environment=False)
