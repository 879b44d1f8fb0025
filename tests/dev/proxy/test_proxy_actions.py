"""The IAM action and resource each proxied call to a local service needs."""

from __future__ import annotations

import json

import pytest

from warmline.dev.proxy.actions import required_checks
from warmline.dev.proxy.authorize import ProxiedRequest

PREFIX = "arn:aws:{}:us-east-1:123456789012:"


def _json(service: str, target: str, body: dict[str, object]) -> ProxiedRequest:
    headers = (("X-Amz-Target", target), ("Content-Type", "application/x-amz-json-1.0"))
    host = f"{service}.us-east-1.amazonaws.com"
    return ProxiedRequest(host, service, "POST", "/", headers, json.dumps(body).encode())


def _query(service: str, form: str) -> ProxiedRequest:
    headers = (("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),)
    host = f"{service}.us-east-1.amazonaws.com"
    return ProxiedRequest(host, service, "POST", "/", headers, form.encode())


def _s3(
    method: str, target: str, host: str = "s3.us-east-1.amazonaws.com", **headers: str
) -> ProxiedRequest:
    body = headers.pop("body", "").encode()
    return ProxiedRequest(host, "s3", method, target, tuple(headers.items()), body)


def _checks(request: ProxiedRequest) -> list[tuple[str, str]] | None:
    return required_checks(request, "us-east-1", "123456789012")


DDB = PREFIX.format("dynamodb")


@pytest.mark.parametrize(
    ("target", "body", "expected"),
    [
        ("PutItem", {"TableName": "calls"}, [("dynamodb:PutItem", DDB + "table/calls")]),
        (
            "Query",
            {"TableName": "calls", "IndexName": "by-caller"},
            [("dynamodb:Query", DDB + "table/calls/index/by-caller")],
        ),
        ("ListTables", {}, [("dynamodb:ListTables", "*")]),
        (
            "BatchWriteItem",
            {"RequestItems": {"a": [], "b": []}},
            [
                ("dynamodb:BatchWriteItem", DDB + "table/a"),
                ("dynamodb:BatchWriteItem", DDB + "table/b"),
            ],
        ),
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "a"}}, {"Delete": {"TableName": "b"}}]},
            [("dynamodb:PutItem", DDB + "table/a"), ("dynamodb:DeleteItem", DDB + "table/b")],
        ),
        ("ExecuteStatement", {"Statement": "SELECT * FROM a"}, None),
    ],
)
def test_dynamodb_actions_come_from_the_target_and_resources_from_the_body(
    target: str, body: dict[str, object], expected: list[tuple[str, str]] | None
) -> None:
    assert _checks(_json("dynamodb", f"DynamoDB_20120810.{target}", body)) == expected


def test_sqs_names_the_queue_from_its_url_or_name_and_batches_as_single_actions() -> None:
    sqs = PREFIX.format("sqs")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"
    assert _checks(_json("sqs", "AmazonSQS.SendMessageBatch", {"QueueUrl": url})) == [
        ("sqs:SendMessage", sqs + "jobs")
    ]
    assert _checks(_json("sqs", "AmazonSQS.GetQueueUrl", {"QueueName": "jobs"})) == [
        ("sqs:GetQueueUrl", sqs + "jobs")
    ]
    # the query protocol of older SDKs: Action in the form
    assert _checks(_query("sqs", "Action=DeleteMessage&QueueUrl=" + url)) == [
        ("sqs:DeleteMessage", sqs + "jobs")
    ]


def test_sns_ssm_secrets_and_sts_resources() -> None:
    topic = PREFIX.format("sns") + "events"
    assert _checks(_query("sns", f"Action=Publish&TopicArn={topic}&Message=m")) == [
        ("sns:Publish", topic)
    ]
    ssm = PREFIX.format("ssm")
    assert _checks(_json("ssm", "AmazonSSM.GetParameters", {"Names": ["/a/b", "c"]})) == [
        ("ssm:GetParameters", ssm + "parameter/a/b"),
        ("ssm:GetParameters", ssm + "parameter/c"),
    ]
    secret = _json("secretsmanager", "secretsmanager.GetSecretValue", {"SecretId": "token"})
    assert _checks(secret) == [
        ("secretsmanager:GetSecretValue", PREFIX.format("secretsmanager") + "secret:token-??????")
    ]
    assert _checks(_query("sts", "Action=GetCallerIdentity&Version=2011-06-15")) == []


@pytest.mark.parametrize(
    ("method", "target", "host", "expected"),
    [
        (
            "GET",
            "/k%20x.txt",
            "rec.s3.us-east-1.amazonaws.com",
            [("s3:GetObject", "arn:aws:s3:::rec/k x.txt")],
        ),
        (
            "PUT",
            "/rec/a/b.txt",
            "s3.us-east-1.amazonaws.com",
            [("s3:PutObject", "arn:aws:s3:::rec/a/b.txt")],
        ),
        (
            "GET",
            "/rec/k?tagging",
            "s3.amazonaws.com",
            [("s3:GetObjectTagging", "arn:aws:s3:::rec/k")],
        ),
        (
            "GET",
            "/rec?list-type=2&prefix=a",
            "s3.amazonaws.com",
            [("s3:ListBucket", "arn:aws:s3:::rec")],
        ),
        ("PUT", "/rec", "s3.amazonaws.com", [("s3:CreateBucket", "arn:aws:s3:::rec")]),
        ("GET", "/", "s3.amazonaws.com", [("s3:ListAllMyBuckets", "*")]),
        ("GET", "/rec?object-lock", "s3.amazonaws.com", None),
    ],
)
def test_s3_actions_come_from_the_method_the_key_and_the_subresource(
    method: str, target: str, host: str, expected: list[tuple[str, str]] | None
) -> None:
    assert _checks(_s3(method, target, host)) == expected


def test_s3_copy_also_reads_its_source_and_delete_objects_names_each_key() -> None:
    copy = _s3("PUT", "/rec/new", **{"x-amz-copy-source": "src/old%20one"})
    assert _checks(copy) == [
        ("s3:PutObject", "arn:aws:s3:::rec/new"),
        ("s3:GetObject", "arn:aws:s3:::src/old one"),
    ]
    body = "<Delete><Object><Key>a</Key></Object><Object><Key>b</Key></Object></Delete>"
    assert _checks(_s3("POST", "/rec?delete", body=body)) == [
        ("s3:DeleteObject", "arn:aws:s3:::rec/a"),
        ("s3:DeleteObject", "arn:aws:s3:::rec/b"),
    ]
