"""Async invocations, schedules, SQS and SNS through the bus and the real runtime."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gateway_helpers import eventually, records, run, started

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def test_async_invoke_retries_twice_after_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            server.invoke_async("worker", {"fail_times": 2})
            assert await server.drain()
            delivery = server.bus.deliveries[0]
            assert delivery.attempts == ["error", "error", "ok"]
        assert len(records(tmp_path, "async")) == 3

    run(main())


def test_async_invoke_gives_up_after_two_retries(tmp_path: Path) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            server.invoke_async("worker", {"fail_times": 5})
            assert await server.drain()
            assert server.bus.deliveries[0].attempts == ["error"] * 3
        assert len(records(tmp_path, "async")) == 3

    run(main())


def test_an_event_whose_last_retry_fails_is_logged_as_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def main() -> None:
        async with started(tmp_path) as server:
            request_id = server.invoke_async("worker", {"fail_times": 5})
            assert await server.drain()
        err = capsys.readouterr().err
        dropped = [line for line in err.splitlines() if "dropped" in line]
        assert len(dropped) == 1 and request_id in dropped[0]
        assert "after 2 retries" in dropped[0]

    run(main())


def test_schedule_fires_the_eventbridge_event_to_every_target(tmp_path: Path) -> None:
    schedules = {
        "tick": {"expression": "rate(1 second)", "targets": ["worker"]},
        "off": {"expression": "rate(1 second)", "targets": ["worker"], "enabled": False},
        "const": {
            "expression": "cron(0 3 * * ? *)",
            "targets": ["worker", "worker"],
            "input": {"warmer": True},
        },
    }

    async def main() -> None:
        async with started(tmp_path, schedules=schedules) as server:
            await eventually(lambda: records(tmp_path, "async"), timeout=5)
            server.trigger_schedule("const")
            await eventually(lambda: len(records(tmp_path, "async")) >= 3)
            assert server.scheduler.fired["off"] == 0
            assert server.scheduler.fired["tick"] >= 1
        events = records(tmp_path, "async")
        scheduled = [e for e in events if e.get("source") == "aws.events"]
        assert events.count({"warmer": True}) == 2
        event = scheduled[0]
        assert event["detail-type"] == "Scheduled Event"
        assert event["version"] == "0" and event["detail"] == {}
        assert event["account"] == "123456789012" and event["region"] == "us-east-1"
        assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/tick"]
        assert re.match(UUID_RE, event["id"])
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", event["time"])

    run(main())


def test_sqs_batches_and_retries_only_the_reported_failures(tmp_path: Path) -> None:
    sqs = {
        "jobs": {
            "function": "worker",
            "batch_size": 3,
            "visibility_timeout": 0.2,
            "report_batch_item_failures": True,
        }
    }

    async def main() -> None:
        async with started(tmp_path, sqs=sqs) as server:
            ids = [server.send_sqs("jobs", body) for body in ("ok-1", "fail-2", "ok-3", "ok-4")]
            await eventually(lambda: server.bus.queues["jobs"].idle and records(tmp_path, "sqs"))
            assert await server.drain()
        batches = records(tmp_path, "sqs")
        seen = [[(r["body"], r["attributes"]["ApproximateReceiveCount"]) for r in b["Records"]]
                for b in batches]  # fmt: skip
        assert seen[0] == [("ok-1", "1"), ("fail-2", "1"), ("ok-3", "1")]
        assert ("fail-2", "2") in [item for batch in seen for item in batch]
        assert sorted(body for batch in seen for body, count in batch) == sorted(
            ["ok-1", "fail-2", "ok-3", "ok-4", "fail-2"]
        )
        record = batches[0]["Records"][0]
        assert record["messageId"] == ids[0]
        assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:jobs"
        assert set(record["attributes"]) == {
            "ApproximateReceiveCount", "SentTimestamp", "SenderId",
            "ApproximateFirstReceiveTimestamp",
        }  # fmt: skip
        assert re.match(r"^[0-9a-f]{32}$", record["md5OfBody"])

    run(main())


def test_sqs_error_retries_the_whole_batch_and_ignores_failures_when_not_enabled(
    tmp_path: Path,
) -> None:
    sqs = {"jobs": {"function": "worker", "batch_size": 10, "visibility_timeout": 0.1}}

    async def main() -> None:
        async with started(tmp_path, sqs=sqs) as server:
            server.send_sqs("jobs", "crash-batch")
            server.send_sqs("jobs", "fail-reported")
            await eventually(lambda: len(records(tmp_path, "sqs")) >= 2)
            assert await server.drain()
        batches = records(tmp_path, "sqs")
        # first receive raised: both records come back; the second batch succeeds and the
        # reported failure is ignored (ReportBatchItemFailures is off, as AWS's default)
        assert len(batches) == 2
        assert [r["attributes"]["ApproximateReceiveCount"] for r in batches[1]["Records"]] == [
            "2",
            "2",
        ]

    run(main())


def test_sns_publish_invokes_subscribers_with_the_sns_record(tmp_path: Path) -> None:
    sns = {"alerts": {"functions": ["worker"]}}

    async def main() -> None:
        async with started(tmp_path, sns=sns) as server:
            message_id = server.publish_sns("alerts", '{"a": 1}', subject="hi")
            assert await server.drain()
        (event,) = records(tmp_path, "sns")
        (record,) = event["Records"]
        assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
        assert record["EventSubscriptionArn"].startswith(
            "arn:aws:sns:us-east-1:123456789012:alerts:"
        )
        sns_part = record["Sns"]
        assert sns_part["Type"] == "Notification"
        assert sns_part["MessageId"] == message_id
        assert sns_part["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:alerts"
        assert (sns_part["Subject"], sns_part["Message"]) == ("hi", '{"a": 1}')
        for key in ("Timestamp", "SignatureVersion", "Signature", "SigningCertUrl",
                    "UnsubscribeUrl", "MessageAttributes"):  # fmt: skip
            assert key in sns_part

    run(main())


def test_sqs_message_past_max_receive_count_goes_to_the_dead_letters(tmp_path: Path) -> None:
    sqs = {
        "jobs": {
            "function": "worker",
            "visibility_timeout": 0.05,
            "report_batch_item_failures": True,
            "max_receive_count": 1,
        }
    }

    async def main() -> None:
        async with started(tmp_path, sqs=sqs) as server:
            failed = server.send_sqs("jobs", "fail-once")
            server.send_sqs("jobs", "ok")
            await eventually(lambda: records(tmp_path, "sqs"))
            assert await server.drain()
            queue = server.bus.queues["jobs"]
            assert [m.message_id for m in queue.dead_letters] == [failed]
            assert queue.messages == []
        assert len(records(tmp_path, "sqs")) == 1  # never redelivered

    run(main())
