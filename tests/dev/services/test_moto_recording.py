"""Which recorded requests the moto server drops before replaying: reads, never writes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from warmline.dev.services.moto_process import compact, is_read


def _json(target: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": "http://dynamodb.us-east-1.amazonaws.com/",
        "headers": {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0"},
        "body": "{}",
        "body_encoded": False,
    }


def _query(action: str, *, encoded: bool = False) -> dict[str, Any]:
    body = f"Action={action}&Version=2010-03-31"
    return {
        "method": "POST",
        "url": "http://sns.us-east-1.amazonaws.com/",
        "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        "body": base64.b64encode(body.encode()).decode() if encoded else body,
        "body_encoded": encoded,
    }


def _rest(method: str) -> dict[str, Any]:
    url = "http://bucket.s3.amazonaws.com/key.txt"
    return {"method": method, "url": url, "headers": {}, "body": "", "body_encoded": False}


@pytest.mark.parametrize(
    "entry",
    [
        _json("DynamoDB_20120810.GetItem"),
        _json("DynamoDB_20120810.Query"),
        _json("DynamoDB_20120810.Scan"),
        _json("DynamoDB_20120810.BatchGetItem"),
        _json("DynamoDB_20120810.DescribeTable"),
        _json("AmazonSSM.GetParameter"),
        _json("secretsmanager.GetSecretValue"),
        _json("AmazonSQS.ListQueues"),
        _query("ListTopics"),
        _query("GetTopicAttributes", encoded=True),
        _rest("GET"),
        _rest("HEAD"),
    ],
)
def test_reads_are_dropped(entry: dict[str, Any]) -> None:
    assert is_read(entry)


@pytest.mark.parametrize(
    "entry",
    [
        _json("DynamoDB_20120810.PutItem"),
        _json("DynamoDB_20120810.UpdateItem"),
        _json("DynamoDB_20120810.TransactWriteItems"),
        _json("AmazonSSM.PutParameter"),
        _json("AmazonSQS.SendMessage"),
        # it moves the message's receive count, which a redrive policy counts
        _json("AmazonSQS.ReceiveMessage"),
        _query("Publish"),
        _query("Subscribe", encoded=True),
        _rest("PUT"),
        _rest("DELETE"),
        _rest("POST"),
    ],
)
def test_writes_are_kept(entry: dict[str, Any]) -> None:
    assert not is_read(entry)


def test_compact_keeps_the_writes_in_order(tmp_path: Path) -> None:
    entries = [
        _json("DynamoDB_20120810.PutItem"),
        _json("DynamoDB_20120810.GetItem"),
        _query("Publish"),
        _rest("GET"),
        _json("DynamoDB_20120810.DeleteItem"),
    ]
    recording = tmp_path / "moto-recording.jsonl"
    lines = [json.dumps(e) for e in entries]
    recording.write_text("\n".join(lines) + "\n\n", encoding="utf-8")

    assert compact(recording) == (3, 2)

    assert recording.read_text(encoding="utf-8").splitlines() == [lines[0], lines[2], lines[4]]
    assert list(tmp_path.iterdir()) == [recording]  # no partial file left behind


def test_compact_leaves_a_recording_without_reads_untouched(tmp_path: Path) -> None:
    recording = tmp_path / "moto-recording.jsonl"
    recording.write_text(json.dumps(_json("DynamoDB_20120810.PutItem")) + "\n", encoding="utf-8")
    before = recording.stat().st_mtime_ns

    assert compact(recording) == (1, 0)

    assert recording.stat().st_mtime_ns == before
