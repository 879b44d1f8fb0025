"""CloudFormation intrinsics, conditions and the Terraform expression subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from warmline.templates.cloudformation.intrinsics import Resolver, StackContext
from warmline.templates.report import SourceError
from warmline.templates.terraform.hcl_expr import ExpressionError, evaluate_source


def _resolver(**extra: Any) -> Resolver:
    return Resolver(
        StackContext(
            resources={
                "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "named"}},
                "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            },
            parameters={"Env": "prod", "Zones": ["a", "b"]},
            conditions={
                "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
            },
            mappings={"Sizes": {"prod": {"Memory": 512}}},
            region="eu-west-1",
            account="111122223333",
            stack_name="chat",
            source=Path("t.yaml"),
            **extra,
        )
    )


def test_intrinsics_resolve_what_a_local_run_reads() -> None:
    r = _resolver()
    assert r.resolve({"Fn::Sub": "${AWS::StackName}-${Env}-${Fn.Arn}-${!Lit}"}, "x") == (
        "chat-prod-arn:aws:lambda:eu-west-1:111122223333:function:named-${Lit}"
    )
    assert r.resolve({"Fn::Sub": ["${A}/${AWS::Region}", {"A": {"Ref": "Fn"}}]}, "x") == (
        "named/eu-west-1"
    )
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Env"}]]}, "x") == "a-prod"
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y"]}]}, "x") == "y"
    assert r.resolve({"Fn::If": ["NotProd", 1, {"Ref": "AWS::NoValue"}]}, "x") is not None
    assert r.resolve({"K": {"Fn::If": ["NotProd", 1, {"Ref": "AWS::NoValue"}]}}, "x") == {}
    assert r.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]}, "x") == 512
    assert r.resolve({"Fn::Base64": "hi"}, "x") == "aGk="
    assert r.resolve({"Fn::GetAZs": ""}, "x")[0] == "eu-west-1a"
    assert r.resolve({"Ref": "Queue"}, "x").endswith("/111122223333/Queue")
    assert r.resolve({"Fn::And": [{"Condition": "IsProd"}, {"Fn::Or": [False, True]}]}, "x")


def test_import_value_is_reported_and_dangling_refs_fail() -> None:
    seen: list[str] = []
    r = _resolver(on_import=lambda name, where: seen.append(name))
    assert r.resolve({"Fn::ImportValue": "shared-table"}, "x") == "imported-shared-table"
    assert seen == ["shared-table"]
    with pytest.raises(SourceError, match="no such parameter or resource"):
        r.resolve({"Ref": "Nope"}, "Resources.A.Properties.B")
    with pytest.raises(SourceError, match="no condition named"):
        r.resolve({"Fn::If": ["Missing", 1, 2]}, "x")


def test_terraform_expressions() -> None:
    refs = {"var": {"stage": "qa", "n": 2}}

    def lookup(root: str, keys: list[Any]) -> Any:
        return refs[root][keys[0]]

    here = Path(".")
    assert evaluate_source('"relay-${var.stage}"', lookup, here) == "relay-qa"
    assert evaluate_source("var.n * 3 + 1", lookup, here) == 7
    assert evaluate_source('var.stage == "qa" ? "yes" : "no"', lookup, here) == "yes"
    assert evaluate_source('jsonencode({ a = true, "b" = [1, "x"] })', lookup, here) == (
        '{"a":true,"b":[1,"x"]}'
    )
    assert evaluate_source('format("%s-%d", var.stage, 5)', lookup, here) == "qa-5"
    with pytest.raises(ExpressionError, match="not supported"):
        evaluate_source("nosuch(1)", lookup, here)
