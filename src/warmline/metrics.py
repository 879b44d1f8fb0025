"""CloudWatch metrics as log lines: the Embedded Metric Format (EMF), no client, no API call.

A Lambda function's stdout goes to CloudWatch Logs, and CloudWatch Logs turns every line
that is an EMF document (a JSON object with an ``_aws.CloudWatchMetrics`` directive) into
metric data points (CloudWatch user guide, "Specification: Embedded metric format";
docs/observability.md links it; on Lambda no ``x-amzn-logs-format`` header is needed).
So the step logger is also the metrics client: :class:`EmfWriter` reads each step record
as it is written and, when the step carries a measurement, returns one more line, the EMF
document, which the logger writes after it. Nothing here imports more than the standard
library's ``time``.

The metrics (docs/observability.md has the table, with units and meaning):

==================  ============  ====================================================
Metric              Unit          From
==================  ============  ====================================================
FirstTokenMs        Milliseconds  a ``prompt``: handler start to its first post
                                  (``firstSendMs``); an offloaded turn: dispatch to the
                                  worker's first post (``lagMs + firstPostMs``)
TurnMs              Milliseconds  a ``prompt``: the handler's whole run (``durationMs``)
ConnectToSetupMs    Milliseconds  a ``setup``: its frame's ``requestTimeEpoch`` minus the
                                  connection's ``connectedAt`` (``sinceConnectMs``)
SetupToGreetingMs   Milliseconds  a ``setup``: handler start to its first post
Connects            Count         every ``$connect``
ColdConnects        Count         a ``$connect`` that ran in a new environment (1 or 0)
WarmupPings         Count         every warm-up ping answered
Apologies           Count         the store apology or the offload-dispatch apology
StoreErrors         Count         a message that met a store failure
StoreRetries        Count         compare-and-set retries of a message's session writes
OffloadLagMs        Milliseconds  an offloaded turn: dispatch to the worker's start
==================  ============  ====================================================

Dimensions stay low-cardinality, so the custom-metric bill stays flat: two dimension
sets, ``[function]`` (what the alarms watch) and ``[function, channel, route]``. ``route``
is a route key (``$connect``, ``setup``, ``prompt``, ...) or ``warmup``/``offload``;
``channel`` is the channel a frame came on (``default`` for the app's own protocol).
Ids (``connectionId``, ``callSid``, ``traceId``) ride along as plain properties: searchable
in Logs Insights, never dimensions.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = [
    "DEFAULT_NAMESPACE",
    "DIMENSION_SETS",
    "NAMESPACE_ENV",
    "SWITCH_ENV",
    "UNITS",
    "EmfWriter",
    "measure",
]

#: Turns the EMF lines off ("0", "off", "false", "no"); anything else leaves them on.
SWITCH_ENV = "WARMLINE_METRICS"
#: The CloudWatch namespace of warmline's metrics.
NAMESPACE_ENV = "WARMLINE_METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "warmline"
#: Each metric's CloudWatch unit (MetricDatum ``Unit`` values).
UNITS: dict[str, str] = {
    "FirstTokenMs": "Milliseconds",
    "TurnMs": "Milliseconds",
    "ConnectToSetupMs": "Milliseconds",
    "SetupToGreetingMs": "Milliseconds",
    "Connects": "Count",
    "ColdConnects": "Count",
    "WarmupPings": "Count",
    "Apologies": "Count",
    "StoreErrors": "Count",
    "StoreRetries": "Count",
    "OffloadLagMs": "Milliseconds",
}
#: ``[function]`` for alarms and the dashboard, ``[function, channel, route]`` to drill in.
DIMENSION_SETS: list[list[str]] = [["function"], ["function", "channel", "route"]]
#: Ids copied onto the EMF line as plain properties (never dimensions).
_IDS = ("connectionId", "callSid", "sessionId", "turn", "traceId")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _message(record: Mapping[str, Any], out: dict[str, float]) -> None:
    route = record.get("route")
    first = _number(record.get("firstSendMs"))
    if route == "prompt":
        duration = _number(record.get("durationMs"))
        if duration is not None:
            out["TurnMs"] = duration
        if first is not None:
            out["FirstTokenMs"] = first
    elif route == "setup":
        if first is not None:
            out["SetupToGreetingMs"] = first
        since = _number(record.get("sinceConnectMs"))
        if since is not None:
            out["ConnectToSetupMs"] = since
    retries = _number(record.get("storeRetries"))
    if retries:
        out["StoreRetries"] = retries


def _offload(record: Mapping[str, Any], out: dict[str, float]) -> None:
    lag = _number(record.get("lagMs"))
    if lag is not None:
        out["OffloadLagMs"] = lag
    first = _number(record.get("firstPostMs"))
    if first is not None:
        out["FirstTokenMs"] = first + (lag or 0.0)


def measure(record: Mapping[str, Any]) -> dict[str, float]:
    """The metric values one step record carries (``{}`` for most steps).

    Args:
        record: a step line as :class:`warmline.log.StepLogger` writes it.

    Returns:
        Metric name to value, names from :data:`UNITS`.
    """
    step = record.get("step")
    out: dict[str, float] = {}
    if step == "message":
        _message(record, out)
    elif step == "connect":
        out["Connects"] = 1.0
        out["ColdConnects"] = 1.0 if record.get("cold") else 0.0
    elif step == "warmup":
        out["WarmupPings"] = 1.0
    elif step == "store_unavailable":
        out["StoreErrors"] = 1.0
        out["Apologies"] = 1.0
    elif step == "offload.dispatch_failed":
        out["Apologies"] = 1.0
    elif step == "offload.turn":
        _offload(record, out)
    return out


def _route(record: Mapping[str, Any]) -> str:
    step = str(record.get("step") or "")
    if step == "connect":
        return "$connect"
    if step == "warmup":
        return "warmup"
    if step.startswith("offload."):
        return "offload"
    return str(record.get("route") or "-")


class EmfWriter:
    """Turns step records into EMF documents (a hook for :class:`warmline.log.StepLogger`).

    Args:
        namespace: the CloudWatch namespace (1-255 characters).
        function: the ``function`` dimension (the Lambda function's name).
        clock: epoch seconds for the document's ``Timestamp``.
    """

    __slots__ = ("namespace", "function", "_clock")

    def __init__(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        function: str = "-",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= len(namespace) <= 255:
            raise ValueError("a CloudWatch namespace has 1 to 255 characters")
        self.namespace = namespace
        self.function = function or "-"
        self._clock = clock

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """The EMF document for ``record``, or None when it measures nothing."""
        values = measure(record)
        if not values:
            return None
        directive = {
            "Namespace": self.namespace,
            "Dimensions": DIMENSION_SETS,
            "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
        }
        doc: dict[str, Any] = {
            "_aws": {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": [directive]},
            "function": self.function,
            "channel": str(record.get("channel") or "default"),
            "route": _route(record),
        }
        doc.update(values)
        for key in _IDS:
            if record.get(key) is not None:
                doc[key] = record[key]
        return doc
