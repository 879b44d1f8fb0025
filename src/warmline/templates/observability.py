"""The alarms, dashboard and access-log format both templates render, decided once here.

Each writer (SAM in ``cloudformation/observability.py``, Terraform in
``terraform/observability.py``) only spells these in its own syntax, so the two templates
alarm on the same metrics with the same statistics, thresholds and ``DatapointsToAlarm``.

Alarms (docs/observability.md has the table and the reasons):

- ``FirstTokenP95``: warmline's ``FirstTokenMs`` (EMF), p95 per minute over
  ``first_token_p95_ms``, 3 of 5 minutes: a sustained slow first answer, not one slow call.
- ``ColdConnect`` (opt-in): ``ColdConnects`` Sum >= 1 in one ``cold_connect_window_s``
  window, for teams that pay for warmth (pings, provisioned concurrency) and want to know
  when it failed.
- ``Throttles``: ``AWS/Lambda Throttles`` Sum >= 1 in 1 of 5 minutes.
- ``AsyncEventAge``: ``AWS/Lambda AsyncEventAge`` Maximum over ``async_event_age_ms`` in
  1 of 5 minutes, for functions invoked asynchronously (the offload worker, SNS
  subscribers): events queueing inside Lambda mean answers arrive late.
- ``DeadLetters``: ``AWS/SQS ApproximateNumberOfMessagesVisible`` Maximum >= 1 on each
  dead-letter queue, 1 of 1 five-minute periods: a turn was given up on.

The functions' ``Errors`` and p99 ``Duration`` alarms stay beside each function in the
writers; every alarm notifies the same topic (:func:`alarm_topic_needed`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from warmline.metrics import DEFAULT_NAMESPACE, NAMESPACE_ENV
from warmline.templates.plan import Plan

__all__ = [
    "ACCESS_LOG_FORMAT",
    "ERRORS_DATAPOINTS",
    "ERRORS_PERIODS",
    "ERRORS_PERIOD_S",
    "P99_PERIODS",
    "P99_PERIOD_S",
    "AlarmSpec",
    "alarm_topic_needed",
    "alarms",
    "async_functions",
    "dashboard_widget",
    "dashboard_widgets",
    "metrics_namespace",
    "websocket_functions",
]

#: The per-function alarms both templates render. Without ``DatapointsToAlarm`` an alarm
#: needs every one of its ``EvaluationPeriods`` to breach (M defaults to N,
#: docs/protocols.md §8.7): the errors alarm fires on one minute with an error among the
#: last five ("1 out of 5"), the p99 Duration alarm on 15 sustained minutes.
ERRORS_PERIOD_S, ERRORS_PERIODS, ERRORS_DATAPOINTS = 60, 5, 1
P99_PERIOD_S, P99_PERIODS = 300, 3

#: The WebSocket stage's access-log line, one JSON object per request: the ``$context``
#: variables of API Gateway's WebSocket access logging
#: (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html)
#: that tie a frame to its function invocation and its caller's wait. Every value is a
#: string (a variable without a value is written ``-``, which would break a bare number);
#: ``error`` is ``messageString``, the message already quoted and escaped.
ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","extendedRequestId":"$context.extendedRequestId",'
    '"connectionId":"$context.connectionId","eventType":"$context.eventType",'
    '"routeKey":"$context.routeKey","messageId":"$context.messageId",'
    '"status":"$context.status","integrationLatency":"$context.integrationLatency",'
    '"requestTimeEpoch":"$context.requestTimeEpoch","connectedAt":"$context.connectedAt",'
    '"error":$context.error.messageString}'
)


class AlarmSpec(NamedTuple):
    """One CloudWatch alarm, format-neutral.

    ``dimensions`` values are references the writer resolves: ``("function", name)`` is
    the deployed function's name, ``("queue_name", queue)`` a dead-letter queue's name.
    ``statistic`` is ``Sum``/``Maximum`` or a percentile (``p95``, an extended statistic).
    """

    key: str
    owner: str
    description: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, tuple[str, str]], ...]
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints: int
    threshold: float
    comparison: str

    @property
    def extended(self) -> bool:
        """A percentile: ``ExtendedStatistic`` rather than ``Statistic``."""
        return self.statistic.startswith("p")


def metrics_namespace(plan: Plan, function: str) -> str:
    """The namespace ``function`` writes its EMF metrics to (its environment's
    ``WARMLINE_METRICS_NAMESPACE``, else warmline's default)."""
    return plan.functions[function].environment.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE


def websocket_functions(plan: Plan) -> list[str]:
    """The functions behind WebSocket routes, in route order."""
    return list(dict.fromkeys(r.function for r in plan.routes))


def async_functions(plan: Plan) -> list[str]:
    """Functions invoked asynchronously: dispatch targets and SNS subscribers."""
    names = {ref[1] for fn in plan.functions.values() for ref in fn.env_refs.values()
             if ref[0] == "function"}  # fmt: skip
    names |= {f for t in plan.topics for f in t.functions}
    return sorted(n for n in names if n in plan.functions)


def alarm_topic_needed(plan: Plan) -> bool:
    """True when the template creates the alarms' SNS topic (no ``alarm_topic_arn``)."""
    return not plan.alarm_topic_arn


def _fn(name: str) -> tuple[tuple[str, tuple[str, str]], ...]:
    return (("FunctionName", ("function", name)),)


def alarms(plan: Plan) -> list[AlarmSpec]:
    """Every alarm beyond each function's Errors and p99 Duration, in a stable order."""
    obs = plan.observability
    out: list[AlarmSpec] = []
    for name in websocket_functions(plan):
        own = (("function", ("function", name)),)
        out.append(
            AlarmSpec(
                "FirstTokenP95", name,
                f"{name}: first-token p95 above {obs.first_token_p95_ms:g} ms in 3 of 5 minutes",
                metrics_namespace(plan, name), "FirstTokenMs", own, "p95", 60, 5, 3,
                obs.first_token_p95_ms, "GreaterThanThreshold",
            )
        )  # fmt: skip
        if obs.cold_connect_alarm:
            out.append(
                AlarmSpec(
                    "ColdConnect", name,
                    f"{name}: a $connect met a cold start within {obs.cold_connect_window_s} s",
                    metrics_namespace(plan, name), "ColdConnects", own, "Sum",
                    obs.cold_connect_window_s, 1, 1, 1, "GreaterThanOrEqualToThreshold",
                )
            )  # fmt: skip
    for name in plan.functions:
        out.append(
            AlarmSpec(
                "Throttles", name, f"{name}: invocations throttled",
                "AWS/Lambda", "Throttles", _fn(name), "Sum", 60, 5, 1, 1,
                "GreaterThanOrEqualToThreshold",
            )
        )  # fmt: skip
    for name in async_functions(plan):
        out.append(
            AlarmSpec(
                "AsyncEventAge", name,
                f"{name}: an async event waited over {obs.async_event_age_ms} ms in Lambda",
                "AWS/Lambda", "AsyncEventAge", _fn(name), "Maximum", 60, 5, 1,
                obs.async_event_age_ms, "GreaterThanThreshold",
            )
        )  # fmt: skip
    for q in plan.queues:
        if q.max_receive_count:
            out.append(
                AlarmSpec(
                    "DeadLetters", q.name, f"{q.name}: messages in the dead-letter queue",
                    "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                    (("QueueName", ("queue_name", q.name)),), "Maximum", 300, 1, 1, 1,
                    "GreaterThanOrEqualToThreshold",
                )
            )  # fmt: skip
    return out


class Widget(NamedTuple):
    """One dashboard graph: a title and its metrics as (namespace, metric, dimension
    reference, statistic)."""

    title: str
    metrics: tuple[tuple[str, str, tuple[str, tuple[str, str]], str], ...]


def dashboard_widget(index: int, title: str, metrics: list[Any], region: Any) -> dict[str, Any]:
    """One widget of the dashboard body, laid out two to a row (the CloudWatch API
    reference's "Dashboard Body Structure and Syntax", linked in docs/observability.md)."""
    return {
        "type": "metric",
        "x": (index % 2) * 12,
        "y": (index // 2) * 6,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "period": 60,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard_widgets(plan: Plan) -> list[Widget]:
    """The dashboard: the alarms' metrics, plus each wait a caller notices."""
    ws = websocket_functions(plan)
    out: list[Widget] = []

    def own(
        metric: str, stat: str
    ) -> tuple[tuple[str, str, tuple[str, tuple[str, str]], str], ...]:
        return tuple((metrics_namespace(plan, n), metric, ("function", ("function", n)), stat)
                     for n in ws)  # fmt: skip

    for metric, title in (
        ("FirstTokenMs", "First token, ms (p50, p95)"),
        ("SetupToGreetingMs", "Setup -> greeting, ms (p50, p95)"),
        ("ConnectToSetupMs", "Connect -> setup, ms (p50, p95)"),
    ):
        out.append(Widget(title, own(metric, "p50") + own(metric, "p95")))
    out.append(Widget("Cold connects and warm-up pings", own("ColdConnects", "Sum")
                      + own("WarmupPings", "Sum")))  # fmt: skip
    out.append(Widget("Apologies, store errors and retries", own("Apologies", "Sum")
                      + own("StoreErrors", "Sum") + own("StoreRetries", "Sum")))  # fmt: skip
    lam = [("AWS/Lambda", m, ("FunctionName", ("function", n)), "Sum")
           for m in ("Errors", "Throttles") for n in plan.functions]  # fmt: skip
    out.append(Widget("Function errors and throttles", tuple(lam)))
    asyncs = async_functions(plan)
    if asyncs:
        age = [("AWS/Lambda", "AsyncEventAge", ("FunctionName", ("function", n)), "Maximum")
               for n in asyncs]  # fmt: skip
        lag = [(metrics_namespace(plan, n), "OffloadLagMs", ("function", ("function", n)), "p95")
               for n in asyncs]  # fmt: skip
        out.append(Widget("Async event age and offload lag, ms", tuple(age + lag)))
    dlqs = [("AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", ("queue_name", q.name)),
             "Maximum") for q in plan.queues if q.max_receive_count]  # fmt: skip
    if dlqs:
        out.append(Widget("Dead-letter queue depth", tuple(dlqs)))
    return out
