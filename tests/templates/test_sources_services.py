"""Tables, queues, topics, buckets, parameters and secrets read from each template format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmline.config.services import Index, Table
from warmline.templates.cloudformation.read import translate_template
from warmline.templates.report import SourceError
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform

SAM = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.handler
      Runtime: python3.12
      Environment:
        Variables:
          TABLE: !Ref Calls
          TABLE_ARN: !GetAtt Calls.Arn
          SIMPLE: !Ref Simple
          BUCKET: !Ref Recordings
          PARAM: !Ref Greeting
          SECRET: !Ref Token
          QUEUE_URL: !Ref Jobs
          TOPIC_ARN: !Ref Events
  Calls:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-calls"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: N}
        - {AttributeName: caller, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: by-caller
          KeySchema: [{AttributeName: caller, KeyType: HASH}]
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [status]}
      LocalSecondaryIndexes:
        - IndexName: by-caller-local
          KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: caller, KeyType: RANGE}]
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Simple:
    Type: AWS::Serverless::SimpleTable
    Properties:
      PrimaryKey: {Name: callSid, Type: String}
  Recordings:
    Type: AWS::S3::Bucket
  Greeting:
    Type: AWS::SSM::Parameter
    Properties: {Name: /app/greeting, Type: String, Value: hello}
  Token:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: app-token
      GenerateSecretString:
        SecretStringTemplate: '{"user": "bot"}'
        GenerateStringKey: password
        PasswordLength: 12
        ExcludePunctuation: true
  Jobs:
    Type: AWS::SQS::Queue
  Events:
    Type: AWS::SNS::Topic
    Properties: {TopicName: events}
"""


def _stack(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sam_resources_are_created_under_the_names_ref_gives(tmp_path: Path) -> None:
    translation = translate_template(_stack(tmp_path, "template.yaml", SAM), stack_name="chat")
    services = translation.config.services
    assert translation.unsupported() == []
    calls, simple = services.tables
    assert calls == Table(
        "chat-calls",
        (("pk", "HASH"), ("sk", "RANGE")),
        (("pk", "S"), ("sk", "N"), ("caller", "S")),
        (Index("by-caller", (("caller", "HASH"),), "INCLUDE", ("status",)),),
        (Index("by-caller-local", (("pk", "HASH"), ("caller", "RANGE")), "KEYS_ONLY"),),
        "expires_at",
        "Calls",
    )
    assert simple.keys == (("callSid", "HASH"),) and simple.attributes == (("callSid", "S"),)
    assert [b.name for b in services.buckets] == ["recordings"]
    assert [(p.name, p.value) for p in services.parameters] == [("/app/greeting", "hello")]
    (secret,) = services.secrets
    value = json.loads(secret.value or "")
    assert value["user"] == "bot" and len(value["password"]) == 12
    assert value["password"].isalnum()
    assert [q.name for q in services.queues] == ["Jobs"]
    assert [t.name for t in services.topics] == ["events"]
    env = translation.config.functions["Fn"].environment
    assert env["TABLE"] == "chat-calls"
    assert env["TABLE_ARN"] == "arn:aws:dynamodb:us-east-1:123456789012:table/chat-calls"
    assert (env["SIMPLE"], env["BUCKET"], env["PARAM"], env["SECRET"]) == (
        "Simple",
        "recordings",
        "/app/greeting",
        "app-token",
    )
    assert env["QUEUE_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/Jobs"
    assert env["TOPIC_ARN"] == "arn:aws:sns:us-east-1:123456789012:events"


def test_a_table_whose_key_is_not_defined_names_the_resource(tmp_path: Path) -> None:
    bad = SAM.replace(
        "{AttributeName: sk, AttributeType: N}", "{AttributeName: sx, AttributeType: N}"
    )
    with pytest.raises(SourceError) as caught:
        translate_template(_stack(tmp_path, "template.yaml", bad))
    assert "Resources.Calls.Properties: key attribute 'sk' is not in AttributeDefinitions" in str(
        caught.value
    )


def test_serverless_resources_and_ref_in_environment(tmp_path: Path) -> None:
    path = _stack(
        tmp_path,
        "serverless.yml",
        """
service: chat
provider:
  name: aws
  runtime: python3.12
  environment:
    TABLE_NAME: {Ref: ConnectionsTable}
    QUEUE_ARN: {"Fn::GetAtt": [Jobs, Arn]}
functions:
  ws:
    handler: app.handler
    events:
      - sqs: {arn: {"Fn::GetAtt": [Jobs, Arn]}}
resources:
  Resources:
    ConnectionsTable:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: ${self:service}-${sls:stage}-connections
        AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
        KeySchema: [{AttributeName: id, KeyType: HASH}]
    Jobs:
      Type: AWS::SQS::Queue
      Properties: {QueueName: chat-jobs}
""",
    )
    translation = translate_serverless(path, env={})
    assert [t.name for t in translation.config.services.tables] == ["chat-dev-connections"]
    # a queue feeding a function exists in the local SQS too
    assert [q.name for q in translation.config.services.queues] == ["chat-jobs"]
    env = translation.config.functions["chat-dev-ws"].environment
    assert env["TABLE_NAME"] == "chat-dev-connections"
    assert env["QUEUE_ARN"] == "arn:aws:sqs:us-east-1:123456789012:chat-jobs"


def test_terraform_resources_with_indexes_ttl_and_a_secret_version(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "main.tf").write_text(
        """
resource "aws_lambda_function" "fn" {
  function_name = "fn"
  filename      = "."
  handler       = "app.handler"
  runtime       = "python3.12"
  role          = "arn:aws:iam::123456789012:role/r"
  environment {
    variables = {
      TABLE  = aws_dynamodb_table.calls.name
      BUCKET = aws_s3_bucket.recordings.id
      QUEUE  = aws_sqs_queue.jobs.url
    }
  }
}
resource "aws_dynamodb_table" "calls" {
  name      = "calls"
  hash_key  = "pk"
  range_key = "sk"
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "N"
  }
  attribute {
    name = "caller"
    type = "S"
  }
  global_secondary_index {
    name            = "by-caller"
    hash_key        = "caller"
    projection_type = "ALL"
  }
  local_secondary_index {
    name            = "by-caller-local"
    range_key       = "caller"
    projection_type = "KEYS_ONLY"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
}
resource "aws_s3_bucket" "recordings" {
  bucket = "call-recordings"
}
resource "aws_sqs_queue" "jobs" {
  name       = "jobs"
  fifo_queue = true
}
resource "aws_sns_topic" "events" {
  name = "events"
}
resource "aws_ssm_parameter" "greeting" {
  name  = "/app/greeting"
  type  = "String"
  value = "hello"
}
resource "aws_secretsmanager_secret" "token" {
  name = "app-token"
}
resource "aws_secretsmanager_secret_version" "token" {
  secret_id     = aws_secretsmanager_secret.token.id
  secret_string = jsonencode({ token = "abc" })
}
"""
    )
    translation = translate_terraform(tmp_path, env={})
    services = translation.config.services
    assert translation.unsupported() == []
    (table,) = services.tables
    assert table.keys == (("pk", "HASH"), ("sk", "RANGE"))
    assert table.global_indexes == (Index("by-caller", (("caller", "HASH"),), "ALL"),)
    assert table.local_indexes == (
        Index("by-caller-local", (("pk", "HASH"), ("caller", "RANGE")), "KEYS_ONLY"),
    )
    assert table.ttl_attribute == "expires_at"
    assert [q.name for q in services.queues] == ["jobs.fifo"]
    assert [b.name for b in services.buckets] == ["call-recordings"]
    assert [t.name for t in services.topics] == ["events"]
    assert [(p.name, p.value) for p in services.parameters] == [("/app/greeting", "hello")]
    assert [(s.name, s.value) for s in services.secrets] == [("app-token", '{"token":"abc"}')]
    env = translation.config.functions["fn"].environment
    assert (env["TABLE"], env["BUCKET"]) == ("calls", "call-recordings")
