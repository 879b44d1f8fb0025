"""Translation details: JSON, variable precedence, zips, inline code, SQS/SNS events."""

from __future__ import annotations

import asyncio
import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

from sources_helpers import FIXTURES, LOCAL_STATE, eventually, lines, serving

from warmline.templates.cloudformation.document import load_document
from warmline.templates.cloudformation.read import translate_template
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform


def test_a_json_template_translates_like_its_yaml(tmp_path: Path) -> None:
    root = tmp_path / "sam"
    shutil.copytree(FIXTURES / "sam_chat", root, ignore=LOCAL_STATE)
    as_json = root / "template.json"
    as_json.write_text(json.dumps(load_document(root / "template.yaml")))
    from_yaml = translate_template(root / "template.yaml", parameter_overrides={"StageName": "dev"})
    from_json = translate_template(as_json, parameter_overrides={"StageName": "dev"})
    # equal but for the file they came from
    assert replace(from_yaml.config, source=None) == replace(from_json.config, source=None)
    assert from_json.format == "sam"


def test_conditions_drop_the_local_store_when_the_parameter_is_empty() -> None:
    translation = translate_template(FIXTURES / "sam_chat" / "template.yaml")
    env = translation.config.functions["SendMessageFunction"].environment
    assert "STORE_DIR" not in env  # !If [UseLocalStore, ..., !Ref AWS::NoValue]
    assert env["TABLE_NAME"] == "simplechat_connections"
    assert env["STACK"] == "sam-chat-us-east-1"  # ${AWS::StackName}: the directory's name
    assert translation.config.websocket.stage == "Prod"


def test_terraform_variables_follow_terraform_precedence(tmp_path: Path) -> None:
    root = tmp_path / "tf"
    shutil.copytree(FIXTURES / "tf_relay", root, ignore=LOCAL_STATE)
    (root / "terraform.tfvars").write_text('stage = "fromtfvars"\n')
    (root / "local.tfvars").write_text('stage = "fromfile"\n')
    env = {"TF_VAR_stage": "fromenv", "TF_VAR_warm_enabled": "false"}
    assert translate_terraform(root, env=env).config.websocket.stage == "fromtfvars"
    translation = translate_terraform(root, env=env, var_files=[root / "local.tfvars"])
    assert translation.config.websocket.stage == "fromfile"
    assert translation.config.schedules["cr-relay-fromfile-warm"].enabled is False
    cli = translate_terraform(
        root, env=env, var_files=[root / "local.tfvars"], variables={"stage": "fromcli"}
    )
    assert cli.config.websocket.stage == "fromcli"
    assert translate_terraform(root, env={}, region="ap-south-1").config.region == "ap-south-1"


def test_serverless_file_variables_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "h.py").write_text("def main(event, context):\n    return 1\n")
    (tmp_path / "config.yml").write_text("greeting: howdy\n")
    (tmp_path / "serverless.yml").write_text(
        "service: s\nprovider:\n  name: aws\n  runtime: python3.12\n"
        "  environment:\n    G: ${file(./config.yml):greeting}\n"
        "    N: ${env:MISSING, ${self:custom.n}}\n"
        "custom:\n  n: 7\n"
        "functions:\n  f:\n    handler: h.main\n    events:\n"
        "      - websocket: $default\n      - schedule: rate(1 hour)\n"
        "      - http: GET /\n"
    )
    translation = translate_serverless(tmp_path, env={})
    fn = translation.config.functions["s-dev-f"]
    assert dict(fn.environment) == {"G": "howdy", "N": "7"}
    assert (fn.memory_mb, fn.timeout_s) == (1024, 6.0)  # the framework's defaults
    assert translation.config.schedules["f-schedule-2"].expression == "rate(1 hour)"
    assert [n.type for n in translation.unsupported()] == ["http event"]


def test_zip_and_inline_code_become_runnable_directories(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "relay.zip", "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 'zipped'\n")
    (tmp_path / "main.tf").write_text(
        'resource "aws_lambda_function" "f" {\n  function_name = "zipped"\n'
        '  runtime = "python3.11"\n  handler = "app.handler"\n  filename = "relay.zip"\n}\n'
        'resource "aws_lambda_function" "node" {\n  function_name = "node"\n'
        '  runtime = "java21"\n  handler = "index.handler"\n  filename = "relay.zip"\n}\n'
    )
    translation = translate_terraform(tmp_path, env={})
    code_dir = translation.config.functions["zipped"].code_dir
    assert (code_dir / "app.py").read_text().endswith("'zipped'\n")
    assert [n.resource for n in translation.unsupported()] == ["aws_lambda_function.node"]

    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Inline:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        "      Runtime: python3.11\n      Handler: index.handler\n      Code:\n"
        "        ZipFile: |\n          def handler(event, context):\n"
        "              return 'inline'\n"
    )
    inline = translate_template(template).config.functions["Inline"]
    assert "return 'inline'" in (inline.code_dir / "index.py").read_text()


def test_sam_sqs_and_sns_events_feed_the_function(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "worker.py").write_text(
        "import json, os\n\n"
        "def handler(event, context):\n"
        "    with open(os.path.join(os.environ['RECORD_DIR'], 'records.jsonl'), 'a') as fh:\n"
        "        for record in event['Records']:\n"
        "            fh.write(json.dumps(record) + '\\n')\n"
    )
    (tmp_path / "template.yaml").write_text(
        f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {{QueueName: jobs, VisibilityTimeout: 45}}
  Alerts:
    Type: AWS::SNS::Topic
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: worker.handler
      Runtime: python3.12
      Environment: {{Variables: {{RECORD_DIR: "{tmp_path}"}}}}
      Events:
        FromQueue:
          Type: SQS
          Properties: {{Queue: !GetAtt Jobs.Arn, BatchSize: 5}}
        FromTopic:
          Type: SNS
          Properties: {{Topic: !Ref Alerts}}
        Http:
          Type: Api
          Properties: {{Path: /, Method: get}}
"""
    )
    translation = translate_template(tmp_path / "template.yaml")
    queue = translation.config.sqs["jobs"]
    assert (queue.function, queue.batch_size, queue.visibility_timeout_s) == ("Worker", 5, 45.0)
    assert translation.config.sns["Alerts"].functions == ("Worker",)
    assert [n.resource for n in translation.unsupported()] == ["Worker.Events.Http"]

    async def main() -> None:
        async with serving(translation.config) as server:
            server.send_sqs("jobs", "job-1")
            server.publish_sns("Alerts", "alert-1")
            await eventually(lambda: len(lines(tmp_path / "records.jsonl")) == 2 or None)
            sources = {
                r.get("eventSource") or r.get("EventSource")
                for r in lines(tmp_path / "records.jsonl")
            }
            assert sources == {"aws:sqs", "aws:sns"}

    asyncio.run(main())
