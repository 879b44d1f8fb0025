"""CloudFormation event sources: schedules, SQS mappings, SNS subscriptions, queues.

Called by :mod:`~warmline.templates.cloudformation.resources` once functions and the
WebSocket API are read: an ``AWS::Events::Rule`` or ``AWS::Scheduler::Schedule`` becomes a
schedule per distinct target ``Input`` (the config has one input per schedule), an
``AWS::Lambda::EventSourceMapping`` from SQS a queue, an ``AWS::SNS::Topic``/``Subscription``
with the ``lambda`` protocol a topic; a queue nothing consumes, or a dead-letter queue, is
explained in a note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warmline.templates.cloudformation.resources import ResourceReader

__all__ = ["read_mapping", "read_queue", "read_rule", "read_topic"]


def read_rule(reader: ResourceReader, logical_id: str) -> None:
    """An EventBridge rule or Scheduler schedule aimed at functions."""
    reader.handled.add(logical_id)
    kind = reader.resources[logical_id]["Type"]
    where = f"Resources.{logical_id}.Properties"
    expression = reader.get(logical_id, "ScheduleExpression")
    if expression is None:
        reader.b.note(
            logical_id,
            "unsupported",
            kind,
            "event-pattern rules are not emulated; only schedules fire",
        )
        return
    state = reader.get(logical_id, "State", "ENABLED")
    name = str(reader.get(logical_id, "Name") or logical_id)
    if kind == "AWS::Scheduler::Schedule":
        targets = [reader.get(logical_id, "Target")]
    else:
        targets = reader.get(logical_id, "Targets") or []
    groups: dict[str, tuple[Any, list[str]]] = {}
    for target in targets:
        if not isinstance(target, dict) or "Arn" not in target:
            raise reader.r.error("each target needs an Arn", f"{where}.Targets")
        function = reader.function_of(target["Arn"], logical_id, "target Arn")
        if function is None:
            continue
        constant = target.get("Input")
        group = groups.setdefault(repr(constant), (constant, []))
        group[1].append(function)
    for index, (constant, functions) in enumerate(groups.values()):
        reader.b.add_schedule(
            name if index == 0 else f"{name}-{index + 1}",
            expression=expression,
            targets=functions,
            input_=constant,
            enabled=state != "DISABLED",
            resource=logical_id,
            type_=kind,
            where=where,
        )


def read_mapping(reader: ResourceReader, logical_id: str) -> None:
    """An event source mapping: SQS feeds a function; others are noted."""
    reader.handled.add(logical_id)
    kind = "AWS::Lambda::EventSourceMapping"
    raw = reader.props(logical_id).get("EventSourceArn")
    queue = reader.ref_target(raw)
    if queue is None or reader.resources.get(queue, {}).get("Type") != "AWS::SQS::Queue":
        reader.b.note(logical_id, "unsupported", kind, "only SQS event sources are emulated")
        return
    function = reader.function_of(
        reader.get(logical_id, "FunctionName"), logical_id, "FunctionName"
    )
    if function is None:
        return
    options = reader.queue_options(queue)
    if reader.get(logical_id, "BatchSize") is not None:
        options["batch_size"] = int(reader.get(logical_id, "BatchSize"))
    if "ReportBatchItemFailures" in (reader.get(logical_id, "FunctionResponseTypes") or []):
        options["report_batch_item_failures"] = True
    reader.handled.add(queue)
    reader.b.add_sqs(
        reader.r.name_of(queue),
        function,
        options=options,
        resource=logical_id,
        type_=kind,
        where=f"Resources.{logical_id}",
    )


def read_topic(reader: ResourceReader, logical_id: str) -> None:
    """SNS topics with Lambda subscriptions (inline or ``AWS::SNS::Subscription``)."""
    kind = reader.resources[logical_id]["Type"]
    if kind == "AWS::SNS::Topic":
        subscriptions = reader.get(logical_id, "Subscription") or []
        topic = reader.r.name_of(logical_id)
    else:
        subscriptions = [
            {
                "Protocol": reader.get(logical_id, "Protocol"),
                "Endpoint": reader.get(logical_id, "Endpoint"),
            }
        ]
        topic = str(reader.get(logical_id, "TopicArn", "")).rsplit(":", 1)[-1]
        topic_id = reader.ref_target(reader.props(logical_id).get("TopicArn"))
        if topic_id is not None and reader.resources.get(topic_id, {}).get("Type") == (
            "AWS::SNS::Topic"
        ):
            reader.handled.add(topic_id)
    for sub in subscriptions:
        if isinstance(sub, dict) and sub.get("Protocol") == "lambda":
            function = reader.function_of(sub.get("Endpoint"), logical_id, "Endpoint")
            if function is not None:
                reader.handled.add(logical_id)
                reader.b.add_sns(topic, function, resource=logical_id, type_=kind)
    if logical_id not in reader.handled and kind == "AWS::SNS::Subscription":
        reader.handled.add(logical_id)
        reader.b.note(logical_id, "unsupported", kind, "only lambda subscriptions are emulated")


def read_queue(reader: ResourceReader, logical_id: str) -> None:
    """A dead-letter queue is noted; every queue is created in the local SQS (services.py)."""
    if logical_id in reader.handled:
        return
    reader.handled.add(logical_id)
    for other in reader.of_type("AWS::SQS::Queue"):
        redrive = reader.props(other).get("RedrivePolicy")
        if isinstance(redrive, dict) and reader.ref_target(redrive.get("deadLetterTargetArn")) == (
            logical_id
        ):
            reader.b.note(
                logical_id,
                "info",
                "AWS::SQS::Queue",
                f"dead-letter queue of {other}: locally, messages past maxReceiveCount are "
                "kept in the emulator's dead letters instead",
            )
            return
