"""Authorizers, route selection and duplicate routes as SAM/CloudFormation, Terraform and
serverless.yml declare them; one stack run end to end with a real authorizer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sources_helpers import eventually, lines, serving
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from warmline.templates.cloudformation.read import translate_template
from warmline.templates.report import SourceError
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform

APP = """\
import json, os

def handler(event, context):
    with open(os.path.join(os.environ["RECORD_DIR"], "events.jsonl"), "a") as fh:
        fh.write(json.dumps(event) + "\\n")
    return {"statusCode": 200}
"""

AUTH = """\
def handler(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    effect = "Allow" if token == "good" else "Deny"
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}
    return {
        "principalId": "caller-7",
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": {"tenant": "acme", "tier": 2},
    }
"""

SAM = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: code/
    Environment:
      Variables:
        RECORD_DIR: {record_dir}
Resources:
  App:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
  Auth:
    Type: AWS::Serverless::Function
    Properties:
      Handler: auth.handler
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: chat
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: {selection}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {{ApiId: !Ref Api, StageName: prod}}
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/functions/${{App.Arn}}/x
  Authorizer:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      ApiId: !Ref Api
      Name: token
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub arn:aws:apigateway:${{AWS::Region}}:lambda:path/functions/${{Auth.Arn}}/x
      IdentitySource: [route.request.querystring.token]
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Authorizer
      Target: !Sub integrations/${{Integ}}
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Sub integrations/${{Integ}}
"""


def _sam(tmp_path: Path, selection: str = "$request.body.action") -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text(APP)
    (code / "auth.py").write_text(AUTH)
    path = tmp_path / "template.yaml"
    path.write_text(SAM.format(record_dir=tmp_path, selection=selection))
    return path


def test_a_cloudformation_authorizer_is_attached_to_connect(tmp_path: Path) -> None:
    config = translate_template(_sam(tmp_path)).config
    route = config.websocket.routes["$connect"]
    assert (route.authorization, route.authorizer) == ("CUSTOM", "Authorizer")
    authorizer = config.websocket.authorizers["Authorizer"]
    assert authorizer.function == "Auth"
    assert authorizer.identity_sources == ("route.request.querystring.token",)
    assert config.websocket.routes["$default"].authorization == "NONE"


def test_a_cloudformation_stack_with_an_authorizer_runs(tmp_path: Path) -> None:
    """The acceptance pair: a deny is a 403 at the handshake; an allow puts the context in
    ``requestContext.authorizer`` of ``$default``."""
    config = translate_template(_sam(tmp_path)).config
    record = tmp_path / "events.jsonl"

    async def main() -> None:
        async with serving(config) as server:
            url = f"ws://127.0.0.1:{server.port}/prod"
            with pytest.raises(InvalidStatus) as info:
                async with connect(url + "?token=bad"):
                    pass
            assert info.value.response.status_code == 403
            async with connect(url + "?token=good") as ws:
                await ws.send(json.dumps({"action": "hello"}))
                await eventually(lambda: len(lines(record)) >= 2)

    asyncio.run(main())
    default = [e for e in lines(record) if e["requestContext"]["routeKey"] == "$default"]
    authorizer = default[0]["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "caller-7"
    assert (authorizer["tenant"], authorizer["tier"]) == ("acme", "2")


def test_a_bad_selection_expression_names_the_api_property(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        translate_template(_sam(tmp_path, selection="$request.header.action"))
    assert info.value.where == "Resources.Api.Properties.RouteSelectionExpression"


def test_a_template_selection_expression_is_accepted(tmp_path: Path) -> None:
    selection = "'${request.body.service}/${request.body.action}'"
    config = translate_template(_sam(tmp_path, selection=selection)).config
    assert config.websocket.selection == (("service",), "/", ("action",))


def test_authorization_on_another_route_is_refused_as_aws_does(tmp_path: Path) -> None:
    path = _sam(tmp_path)
    path.write_text(
        path.read_text().replace(
            "      RouteKey: $default\n",
            "      RouteKey: $default\n      AuthorizationType: AWS_IAM\n",
        )
    )
    with pytest.raises(SourceError, match=r"\$connect route only"):
        translate_template(path)


TERRAFORM = """\
resource "aws_lambda_function" "app" {
  function_name = "app"
  filename      = "code"
  handler       = "app.handler"
  runtime       = "python3.12"
}

resource "aws_lambda_function" "auth" {
  function_name = "auth"
  filename      = "code"
  handler       = "auth.handler"
  runtime       = "python3.12"
}

resource "aws_apigatewayv2_api" "ws" {
  name                       = "ws"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"
}

resource "aws_apigatewayv2_integration" "app" {
  api_id           = aws_apigatewayv2_api.ws.id
  integration_type = "AWS_PROXY"
  integration_uri  = aws_lambda_function.app.invoke_arn
}

resource "aws_apigatewayv2_authorizer" "token" {
  api_id           = aws_apigatewayv2_api.ws.id
  name             = "token"
  authorizer_type  = "REQUEST"
  authorizer_uri   = aws_lambda_function.auth.invoke_arn
  identity_sources = ["route.request.header.Authorization"]
}

resource "aws_apigatewayv2_route" "connect" {
  api_id             = aws_apigatewayv2_api.ws.id
  route_key          = "$connect"
  authorization_type = "CUSTOM"
  authorizer_id      = aws_apigatewayv2_authorizer.token.id
  target             = "integrations/${aws_apigatewayv2_integration.app.id}"
}
"""


def test_a_terraform_authorizer_is_attached_to_connect(tmp_path: Path) -> None:
    _sam(tmp_path)  # the code directory
    (tmp_path / "main.tf").write_text(TERRAFORM)
    translation = translate_terraform(tmp_path, env={})
    route = translation.config.websocket.routes["$connect"]
    assert route.authorization == "CUSTOM"
    assert route.authorizer == "aws_apigatewayv2_authorizer.token"
    authorizer = translation.config.websocket.authorizers[route.authorizer]
    assert authorizer.function == "auth"
    assert authorizer.identity_sources == ("route.request.header.Authorization",)
    assert not any("authorizer" in n.resource for n in translation.unsupported())


SERVERLESS = """\
service: chat
provider:
  name: aws
  runtime: python3.12
functions:
  connect:
    handler: app.handler
    events:
      - websocket:
          route: $connect
          authorizer: auth
  first:
    handler: app.handler
    events:
      - websocket: $default
  second:
    handler: app.handler
    events:
      - websocket: $default
  auth:
    handler: auth.handler
"""


def test_serverless_authorizer_defaults_to_the_auth_header(tmp_path: Path) -> None:
    _sam(tmp_path)
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "auth.py").write_text(AUTH)
    (tmp_path / "serverless.yml").write_text(SERVERLESS)
    translation = translate_serverless(tmp_path / "serverless.yml", env={})
    websocket = translation.config.websocket
    route = websocket.routes["$connect"]
    assert route.authorization == "CUSTOM" and route.authorizer is not None
    authorizer = websocket.authorizers[route.authorizer]
    assert authorizer.function == "chat-dev-auth"
    assert authorizer.identity_sources == ("route.request.header.Auth",)
    # two functions on one route: the last one serves it, as after `serverless deploy`
    assert websocket.routes["$default"].function == "chat-dev-second"
    notes = [n.message for n in translation.notes if "$default" in n.message]
    assert notes and "chat-dev-first" in notes[0] and "chat-dev-second" in notes[0]


def test_deploy_refuses_an_authorizer_it_cannot_render(tmp_path: Path) -> None:
    """Rendering the API without its authorizer would deploy it open to anyone."""
    from warmline.config.deploy import load_project
    from warmline.errors import ConfigurationError
    from warmline.templates.plan import build_plan

    _sam(tmp_path)
    text = (
        '[functions.ws]\nhandler = "app.handler"\ncode = "code"\n'
        '[functions.auth]\nhandler = "auth.handler"\ncode = "code"\n'
        '[websocket.routes]\n"$connect" = { function = "ws", authorizer = "token" }\n'
        '[websocket.authorizers.token]\nfunction = "auth"\n'
    )
    (tmp_path / "warmline.toml").write_text(text)
    with pytest.raises(ConfigurationError, match=r"routes\.\$connect.*CUSTOM"):
        build_plan(load_project(tmp_path / "warmline.toml"))
