"""SnsDispatcher and SqsDispatcher against a real moto server, read back as Lambda would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from offload_helpers import moto_endpoint_fixture

from warmline.adapters.aws_lambda import to_event
from warmline.core.events import WorkerTask
from warmline.offload.dispatchers import SnsDispatcher, SqsDispatcher
from warmline.offload.lambda_invoke import DispatchError
from warmline.offload.payload import TurnPayload

pytestmark = pytest.mark.slow

PAYLOAD = TurnPayload("C=1", "VX1", 4, prompt="opening hours?", lang="en-US", created_at=1.5)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    yield from moto_endpoint_fixture()


def _client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


def _sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    """The SQS event source mapping's record for a received message (docs/protocols.md §4.3)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "eventSource": "aws:sqs",
                "attributes": {"ApproximateReceiveCount": "1"},
            }
        ]
    }


def test_sqs_dispatch_arrives_as_a_worker_task(moto_endpoint: str) -> None:
    sqs = _client("sqs", moto_endpoint)
    url = sqs.create_queue(QueueName="turns")["QueueUrl"]
    dispatcher = SqsDispatcher(url, endpoint_url=moto_endpoint, region="us-east-1")
    message_id = dispatcher.dispatch(PAYLOAD.to_dict())
    dispatcher.close()
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert message["MessageId"] == message_id
    (task,) = to_event(_sqs_record(message))  # type: ignore[misc]
    assert isinstance(task, WorkerTask) and task.delivery == "sqs"
    assert TurnPayload.from_dict(task.payload) == PAYLOAD
    sqs.close()


def test_fifo_queue_drops_a_second_dispatch_of_the_same_turn(moto_endpoint: str) -> None:
    sqs = _client("sqs", moto_endpoint)
    url = sqs.create_queue(QueueName="turns.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dispatcher = SqsDispatcher(url, client=sqs)
    dispatcher.dispatch(PAYLOAD.to_dict())
    dispatcher.dispatch(PAYLOAD.to_dict())  # a retried router
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["turn"] == 4
    sqs.close()


def test_sns_dispatch_reaches_a_subscriber(moto_endpoint: str) -> None:
    sns = _client("sns", moto_endpoint)
    sqs = _client("sqs", moto_endpoint)
    topic = sns.create_topic(Name="turns")["TopicArn"]
    url = sqs.create_queue(QueueName="sns-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    dispatcher = SnsDispatcher(topic, endpoint_url=moto_endpoint, region="us-east-1")
    message_id = dispatcher.dispatch(PAYLOAD.to_dict())
    dispatcher.close()
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["MessageId"] == message_id
    record = {
        "Records": [
            {
                "EventSource": "aws:sns",
                "Sns": {"MessageId": envelope["MessageId"], "Message": envelope["Message"]},
            }
        ]
    }
    (task,) = to_event(record)  # type: ignore[misc]
    assert TurnPayload.from_dict(task.payload) == PAYLOAD
    sns.close()
    sqs.close()


def test_a_missing_topic_is_a_dispatch_error(moto_endpoint: str) -> None:
    dispatcher = SnsDispatcher(
        "arn:aws:sns:us-east-1:123456789012:nope", endpoint_url=moto_endpoint, region="us-east-1"
    )
    with pytest.raises(DispatchError, match="nope"):
        dispatcher.dispatch(PAYLOAD.to_dict())
    dispatcher.close()
