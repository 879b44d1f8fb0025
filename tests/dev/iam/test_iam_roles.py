"""Each function's statements, from warmline.toml (== the deploy plan) and from templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from warmline.config import load_config
from warmline.config.deploy import load_project
from warmline.dev.iam import Iam, connections_resource, function_resource
from warmline.dev.iam.roles import resolve_roles
from warmline.errors import ConfigurationError
from warmline.templates.cloudformation.read import translate_template
from warmline.templates.cloudformation.write import render_sam
from warmline.templates.plan import build_plan
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform

TEMPLATES = Path(__file__).parents[2] / "templates" / "fixtures"
MANAGE = "execute-api:ManageConnections"
INVOKE = "lambda:InvokeFunction"

TOML = """
region = "us-east-1"

[functions.ws]
handler = "app.handler"

[functions.worker]
handler = "app.handler"

[functions.cron]
handler = "app.handler"

[[functions.cron.statements]]
action = "execute-api:ManageConnections"
resource = "arn:aws:execute-api:*:*:*/*/GET/@connections/*"

[[functions.cron.statements]]
effect = "Deny"
action = ["lambda:*"]
resource = "*"

[websocket]
stage = "dev"

[websocket.routes]
"$default" = "ws"

[deploy]
worker = "worker"
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return None\n")
    path = tmp_path / "warmline.toml"
    path.write_text(TOML)
    return path


def test_warmline_toml_functions_get_the_deploy_plan_s_statements(tmp_path: Path) -> None:
    path = _project(tmp_path)
    config = load_config(path)
    iam = Iam(config)
    ws, worker, cron = (iam.functions[n] for n in ("ws", "worker", "cron"))
    post = connections_resource(config, "POST")
    assert iam.authorize(ws, MANAGE, post).allowed  # a route function
    assert iam.authorize(worker, MANAGE, post).allowed  # the [deploy] worker
    assert iam.authorize(ws, INVOKE, function_resource(config, "worker")).allowed
    assert not iam.authorize(worker, INVOKE, function_resource(config, "ws")).allowed
    assert not iam.authorize(cron, MANAGE, post).allowed  # neither: only its own GET
    assert iam.authorize(cron, MANAGE, connections_resource(config, "GET")).allowed
    assert iam.authorize(cron, INVOKE, function_resource(config, "worker")).outcome == (
        "explicit_deny"
    )
    # The deployed template carries the same extra statements.
    rendered = render_sam(build_plan(load_project(path)))
    policies = rendered["Resources"]["CronRole"]["Properties"]["Policies"]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    assert {
        "Sid": "Extra2",
        "Effect": "Deny",
        "Action": ["lambda:*"],
        "Resource": ["*"],
    } in statements


def test_a_bad_statement_names_its_key(tmp_path: Path) -> None:
    path = _project(tmp_path)
    path.write_text(TOML.replace('effect = "Deny"', 'effect = "Maybe"'))
    with pytest.raises(ConfigurationError, match=r"functions\.cron\.statements\[1\]\.effect"):
        load_config(path)
    path.write_text(TOML.replace('resource = "*"', 'resource = "*"\nnot_resource = "x"'))
    with pytest.raises(ConfigurationError, match="exactly one of resource / not_resource"):
        load_config(path)


def _statements(config: Any, name: str) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    role = resolve_roles(config)[name]
    return [(s.effect, s.actions, s.resources) for s in role.statements]


def test_sam_policies_expand_policy_templates_and_documents() -> None:
    config = translate_template(TEMPLATES / "sam_chat" / "template.yaml").config
    iam = Iam(config)
    send = iam.functions["SendMessageFunction"]
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/simplechat_connections"
    assert iam.authorize(send, "dynamodb:PutItem", table_arn).allowed  # DynamoDBCrudPolicy
    assert iam.authorize(send, "dynamodb:Query", table_arn + "/index/byCall").allowed
    assert not iam.authorize(send, "dynamodb:DeleteTable", table_arn).allowed
    assert iam.authorize(send, MANAGE, connections_resource(config, "POST")).allowed
    assert iam.authorize(send, "logs:PutLogEvents", "arn:aws:logs:x").allowed  # SAM's basic
    connect = iam.functions["OnConnectFunction"]
    assert not iam.authorize(connect, MANAGE, connections_resource(config, "POST")).allowed


def test_cloudformation_roles_policies_and_unknown_managed_policies(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "template.yaml").write_text(
        """
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      Code: .
      Role: !GetAtt FnRole.Arn
  FnRole:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns:
        - arn:aws:iam::aws:policy/AmazonAPIGatewayInvokeFullAccess
        - arn:aws:iam::aws:policy/AmazonBedrockFullAccess
      Policies:
        - PolicyName: inline
          PolicyDocument:
            Statement:
              - Effect: Deny
                Action: execute-api:ManageConnections
                Resource: !Sub arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:*/*/DELETE/*
  Extra:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref FnRole]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: [lambda:InvokeFunction]
            Resource: !Sub arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:Fn
"""
    )
    translation = translate_template(tmp_path / "template.yaml")
    iam = Iam(translation.config)
    fn = iam.functions["Fn"]
    config = translation.config
    assert fn.arn == "arn:aws:sts::123456789012:assumed-role/FnRole/Fn"
    assert iam.authorize(fn, MANAGE, connections_resource(config, "POST")).allowed
    assert not iam.authorize(fn, MANAGE, connections_resource(config, "DELETE")).allowed
    assert iam.authorize(fn, INVOKE, function_resource(config, "Fn")).allowed
    lines = iam.startup_lines()
    assert any("AmazonBedrockFullAccess is not expanded locally" in line for line in lines)
    assert not any(n.resource in ("FnRole", "Extra") for n in translation.notes)


def test_terraform_role_policies_from_policy_documents() -> None:
    config = translate_terraform(TEMPLATES / "tf_relay").config
    iam = Iam(config)
    relay = next(iter(iam.functions.values()))
    assert relay.arn.endswith(":assumed-role/cr-relay-live-role/cr-relay-live")
    assert iam.authorize(relay, MANAGE, connections_resource(config, "POST")).allowed
    assert not iam.authorize(relay, MANAGE, connections_resource(config, "DELETE")).allowed
    assert iam.authorize(relay, "logs:CreateLogStream", "arn:aws:logs:x").allowed


def test_serverless_gives_websocket_services_manage_connections() -> None:
    translation = translate_serverless(TEMPLATES / "sls_relay" / "serverless.yml", env={})
    iam = Iam(translation.config)
    relay = iam.functions["relay-ws-dev-relay"]
    post = connections_resource(translation.config, "POST")
    assert iam.authorize(relay, MANAGE, post).allowed
    # provider.iamRoleStatements names ${ssm:...}, which a local run cannot read.
    assert any("is not read" in line for line in iam.startup_lines())
