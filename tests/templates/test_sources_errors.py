"""Malformed and unsupported stacks: clear messages naming resource and property, notes."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from sources_helpers import FIXTURES

from warmline.errors import ConfigurationError
from warmline.templates.cli_options import add_source_arguments, config_from_args
from warmline.templates.cloudformation.read import translate_template
from warmline.templates.report import SourceError
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform

FUNCTION = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: {handler}
      Runtime: {runtime}
"""


def _template(tmp_path: Path, text: str, *, module: str = "app") -> Path:
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / f"{module}.py").write_text("def handler(event, context):\n    return 1\n")
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = _template(tmp_path, "Resources:\n  Fn:\n    Type: a: b\n")
    with pytest.raises(SourceError) as info:
        translate_template(path)
    assert "not valid YAML" in str(info.value) and "line 3" in str(info.value)
    assert isinstance(info.value, ConfigurationError)


def test_unknown_short_form_tag_is_named(tmp_path: Path) -> None:
    text = FUNCTION.format(handler="!Bogus app.handler", runtime="python3.12")
    with pytest.raises(SourceError, match="unknown intrinsic function tag !Bogus"):
        translate_template(_template(tmp_path, text))


def test_unknown_long_form_intrinsic_names_resource_and_property(tmp_path: Path) -> None:
    text = FUNCTION.format(handler="{'Fn::Bogus': x}", runtime="python3.12")
    with pytest.raises(SourceError) as info:
        translate_template(_template(tmp_path, text))
    assert info.value.where == "Resources.Fn.Properties.Handler.Fn::Bogus"
    assert "Fn::Bogus" in info.value.detail


def test_missing_handler_file_names_the_function(tmp_path: Path) -> None:
    text = FUNCTION.format(handler="missing.handler", runtime="python3.12")
    with pytest.raises(SourceError) as info:
        translate_template(_template(tmp_path, text))
    assert info.value.where == "Resources.Fn.Properties"
    assert "missing.py" in str(info.value)


def test_an_unsupported_runtime_is_listed_and_its_route_dropped(
    tmp_path: Path,
) -> None:
    text = (
        FUNCTION.format(handler="app.handler", runtime="python3.12")
        + """
  NodeFn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: index.handler
      Runtime: java21
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  NodeInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:lambda:path/functions/${NodeFn.Arn}/invocations
  NodeRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $connect, Target: !Sub "integrations/${NodeInteg}"}
  Authorizer:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties: {ApiId: !Ref Api, AuthorizerType: REQUEST}
"""
    )
    translation = translate_template(_template(tmp_path, text))
    assert list(translation.config.functions) == ["Fn"]
    assert translation.config.websocket.routes == {}
    notes = {n.resource: n.message for n in translation.unsupported()}
    assert "java21" in notes["NodeFn"]
    assert "$connect" in notes["NodeRoute"] and "accepted without running" in notes["NodeRoute"]
    assert "Authorizer" in notes


def test_parameters_need_a_value_and_overrides_must_exist(tmp_path: Path) -> None:
    text = "Parameters:\n  Table:\n    Type: String\n" + FUNCTION.format(
        handler="app.handler", runtime="python3.12"
    )
    path = _template(tmp_path, text)
    with pytest.raises(SourceError) as info:
        translate_template(path)
    assert info.value.where == "Parameters.Table" and "--parameter-overrides" in str(info.value)
    with pytest.raises(SourceError, match="no parameter 'Nope'"):
        translate_template(path, parameter_overrides=["Table=t Nope=1"])
    assert translate_template(path, parameter_overrides=["ParameterKey=Table,ParameterValue=t"])


def test_cli_options_print_the_report_and_reject_misuse(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_source_arguments(parser)
    out = io.StringIO()
    args = parser.parse_args(
        [
            "--template",
            str(FIXTURES / "sam_chat" / "template.yaml"),
            "--parameter-overrides",
            "StageName=test",
        ]
    )
    config = config_from_args(args, out=out)
    assert config is not None and config.websocket.stage == "test"
    assert "not run: ConnectionsTable" not in out.getvalue()
    assert "local: ConnectionsTable (DynamoDB table " in out.getvalue()
    assert config_from_args(parser.parse_args([])) is None
    with pytest.raises(ConfigurationError, match="-var and -var-file need --terraform"):
        config_from_args(parser.parse_args(["-var", "a=1"]))
    args = parser.parse_args(["--terraform", str(FIXTURES / "tf_relay"), "-var", "nope=1"])
    with pytest.raises(ConfigurationError, match="no variable 'nope'"):
        config_from_args(args)


def test_serverless_remote_variable_without_fallback_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "h.py").write_text("def main(event, context):\n    return 1\n")
    (tmp_path / "serverless.yml").write_text(
        "service: s\nprovider:\n  name: aws\n  runtime: python3.12\n"
        "  environment:\n    KEY: ${ssm:/app/key}\n"
        "functions:\n  f:\n    handler: h.main\n    events:\n      - websocket: $default\n"
    )
    with pytest.raises(SourceError) as info:
        translate_serverless(tmp_path / "serverless.yml", env={})
    assert info.value.where == "provider.environment.KEY"
    assert "fallback" in str(info.value)


def test_terraform_errors_name_the_resource_argument(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('resource "aws_lambda_function" "f" {\n  handler = \n')
    with pytest.raises(SourceError, match="not valid HCL"):
        translate_terraform(tmp_path, env={})
    (tmp_path / "main.tf").write_text(
        'resource "aws_lambda_function" "f" {\n  function_name = "f"\n'
        '  runtime = "python3.12"\n  filename = "code"\n'
        '  handler = [for s in ["a"] : s][0]\n}\n'
    )
    (tmp_path / "code").mkdir()
    with pytest.raises(SourceError) as info:
        translate_terraform(tmp_path, env={})
    assert info.value.where == "aws_lambda_function.f.handler"
    (tmp_path / "main.tf").write_text('variable "stage" {\n  type = string\n}\n')
    with pytest.raises(SourceError) as info:
        translate_terraform(tmp_path, env={})
    assert info.value.where == "variable.stage" and "-var stage=VALUE" in str(info.value)
