"""Recognize warm-up pings before any routing, and plan lambda-warmer's fan-out.

A warm-up ping that reaches business logic does real damage: it opens sessions, writes to
the store, counts as a call in latency metrics. So the adapter asks :func:`detect_warmup`
first, for every event, and answers a match with :func:`warmup_response` (after the app's
pre-warm hooks).

Rules, in the order they are applied:

1. Only JSON objects can be pings. Lists, strings, numbers and ``None`` are not.
2. Shapes that belong to real traffic are never pings, whatever else they carry (a
   ``source`` or ``warmer`` key included): API Gateway / ALB / function-URL events
   (``requestContext``), SQS/SNS/S3/DynamoDB batches (``Records``), Amazon Connect
   (``Name == "ContactFlowEvent"`` or ``Details.ContactData``) (docs/protocols.md §2.2, §4.2,
   §4.3, §4.5).
3. warmline's own pre-warm: ``{"warmline": "warmup", "concurrency": N}``; with
   ``"hooks": false`` (the call-tied pre-warm) the environment is released as soon as its
   init is done, without running the App's pre-warm hooks (:func:`runs_hooks`).
4. serverless-plugin-warmup: ``{"source": "serverless-plugin-warmup"}`` in the payload or
   in the client context's ``custom`` (§4.4).
5. lambda-warmer: ``event[warmer_flag]`` truthy (§4.4).
6. EventBridge ``Scheduled Event`` from ``aws.events`` (§4.1), if schedules are warm-ups.
7. A configured constant input (a rule's ``Input``), compared strictly (``true`` is not
   ``1``). Known shapes win over rule 7 because they carry more (fan-out, correlation).

Everything here is pure: no clock, no environment, no I/O. The adapter performs the
invokes that :func:`fanout_plan` describes and reports what really ran with
:func:`fanout_response`; :func:`planned_fanout` tells a deploy plan that a configured input
will make the function invoke itself (it then needs ``lambda:InvokeFunction`` on itself).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from warmline.core.events import Scheduled, WarmUp

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_WARMUP_CONCURRENCY",
    "PLUGIN_SOURCE",
    "SCHEDULE_DETAIL_TYPE",
    "SCHEDULE_SOURCE",
    "WARMER_CONCURRENCY",
    "WARMER_CORRELATION_ID",
    "WARMER_INVOCATION",
    "WARMER_TEST_FIELD",
    "WARMLINE_CONCURRENCY",
    "WARMLINE_CORRELATION_ID",
    "WARMLINE_HOOKS",
    "WARMLINE_INVOCATION",
    "WARMLINE_KEY",
    "WARMLINE_VALUE",
    "WARMUP_INPUTS_ENV",
    "detect_warmup",
    "fanout_plan",
    "fanout_response",
    "parse_scheduled",
    "parse_warmup_inputs",
    "planned_fanout",
    "runs_hooks",
    "warmup_response",
]

# --- EventBridge scheduled rule (docs/protocols.md §4.1) -----------------------------------
SCHEDULE_SOURCE = "aws.events"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"

# --- serverless-plugin-warmup (docs/protocols.md §4.4) -------------------------------------
PLUGIN_SOURCE = "serverless-plugin-warmup"

# --- lambda-warmer v1.1.2 (docs/protocols.md §4.4) ------------------------------------------
WARMER_INVOCATION = "__WARMER_INVOCATION__"
WARMER_CONCURRENCY = "__WARMER_CONCURRENCY__"
WARMER_CORRELATION_ID = "__WARMER_CORRELATIONID__"
#: ``event["test"]`` truthy: recognize the ping but do not fan out.
WARMER_TEST_FIELD = "test"

# --- warmline's call-tied pre-warm (this project's own format) -------------------------
WARMLINE_KEY = "warmline"
WARMLINE_VALUE = "warmup"
#: Fields of a warmline pre-warm; children of a fan-out carry ``invocation`` >= 2.
WARMLINE_CONCURRENCY = "concurrency"
WARMLINE_INVOCATION = "invocation"
WARMLINE_CORRELATION_ID = "correlationId"
#: ``false``: answer at once, without the App's pre-warm hooks (a call is about to connect).
WARMLINE_HOOKS = "hooks"

#: The function's environment variable holding the constant inputs of the warm-up rules
#: that target it, as a JSON list: ``warmline.toml`` declares them (``[schedules.X]
#: warmup = true``), ``warmline dev`` and ``warmline deploy render`` set it, and the
#: handlers read it once, at composition.
WARMUP_INPUTS_ENV = "WARMLINE_WARMUP_INPUTS"

#: warmline's own cap on a fan-out, not an AWS limit: every extra environment is a billed
#: invoke that holds one unit of the account's concurrency while it sleeps, and a typo
#: (``"concurrency": 1000``) must not exhaust the account. Override per call if needed.
MAX_WARMUP_CONCURRENCY = 50

# Keys that mark real traffic (rule 2).
_TRAFFIC_KEYS = ("requestContext", "Records")


def detect_warmup(
    event: object,
    *,
    client_context_custom: Mapping[str, Any] | None = None,
    constant_inputs: Sequence[Mapping[str, Any]] = (),
    warmer_flag: str = "warmer",
    concurrency_field: str = "concurrency",
    schedules_are_warmups: bool = True,
    max_concurrency: int = MAX_WARMUP_CONCURRENCY,
) -> WarmUp | None:
    """Tell whether a raw Lambda event is a warm-up ping (rules in the module docstring).

    Args:
        event: the raw event, as Lambda passed it.
        client_context_custom: ``context.client_context.custom`` if the invoke had one.
        constant_inputs: the JSON ``Input`` of each warm-up rule you configured.
        warmer_flag: lambda-warmer's ``flag`` option.
        concurrency_field: lambda-warmer's ``concurrency`` option (field name).
        schedules_are_warmups: treat every EventBridge scheduled event as a ping; set it
            to False when a schedule does real work (then see :func:`parse_scheduled`).
        max_concurrency: clamp for requested fan-out sizes.

    Returns:
        The ping, or ``None`` when the event is not one (route it normally).
    """
    if not isinstance(event, Mapping) or _is_traffic(event):
        return None
    cap = max(1, max_concurrency)
    if event.get(WARMLINE_KEY) == WARMLINE_VALUE:
        concurrency = _count(event.get(WARMLINE_CONCURRENCY), cap)
        return WarmUp(
            source="warmline",
            concurrency=concurrency,
            invocation=min(_count(event.get(WARMLINE_INVOCATION), cap), concurrency),
            correlation_id=_text(event.get(WARMLINE_CORRELATION_ID)),
            raw=event,
        )
    if event.get("source") == PLUGIN_SOURCE or (
        isinstance(client_context_custom, Mapping)
        and client_context_custom.get("source") == PLUGIN_SOURCE
    ):
        # The plugin makes its own parallel invokes; each one is a single ping (§4.4).
        return WarmUp(source=PLUGIN_SOURCE, raw=event)
    if event.get(warmer_flag):
        return _lambda_warmer(event, concurrency_field, cap)
    if _is_schedule(event):
        return WarmUp(source=SCHEDULE_SOURCE, raw=event) if schedules_are_warmups else None
    if any(_same_json(event, expected) for expected in constant_inputs):
        return WarmUp(source="input", raw=event)
    return None


def parse_scheduled(event: object) -> Scheduled | None:
    """Read an EventBridge scheduled event that is meant to do work (docs/protocols.md §4.1).

    Call it after :func:`detect_warmup` returned ``None``.

    Args:
        event: the raw event.

    Returns:
        The schedule (rule ARNs, ISO time) or ``None`` if the event is not one.
    """
    if not isinstance(event, Mapping) or _is_traffic(event) or not _is_schedule(event):
        return None
    resources = event.get("resources")
    arns = (
        tuple(arn for arn in resources if isinstance(arn, str))
        if isinstance(resources, list | tuple)
        else ()
    )
    return Scheduled(rule_arns=arns, time=_text(event.get("time")), raw=event)


def parse_warmup_inputs(text: str) -> list[Mapping[str, Any]]:
    """The constant inputs of :data:`WARMUP_INPUTS_ENV` (``""``: none).

    Raises:
        ValueError: not a JSON list of objects.
    """
    if not text.strip():
        return []
    import json

    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"{WARMUP_INPUTS_ENV} must be a JSON list of objects")
    return value


def runs_hooks(w: WarmUp) -> bool:
    """Whether the ping should run the App's pre-warm hooks before it is answered.

    A call-tied pre-warm (``"hooks": false``) should not: Twilio opens the WebSocket a few
    hundred milliseconds after the TwiML (docs/protocols.md §1.6), and an environment still
    busy with the hooks then makes ``$connect`` start another, cold one. The hooks' work
    (opening an index, a TLS context) happens at first use instead.
    """
    raw = w.raw if isinstance(w.raw, Mapping) else {}
    return not (w.source == "warmline" and raw.get(WARMLINE_HOOKS) is False)


def warmup_response(w: WarmUp) -> dict[str, Any]:
    """What the handler returns to the pinger: small, JSON-serializable, no secrets.

    Args:
        w: the detected ping.

    Returns:
        ``{"warmup": true, "source": ..., "invocation": i, "concurrency": n}`` plus
        ``correlationId`` when the ping had one.
    """
    body: dict[str, Any] = {
        "warmup": True,
        "source": w.source,
        "invocation": w.invocation,
        "concurrency": w.concurrency,
    }
    if w.correlation_id:
        body["correlationId"] = w.correlation_id
    return body


def fanout_plan(
    w: WarmUp,
    *,
    warmer_flag: str = "warmer",
    correlation_id: str = "",
) -> list[dict[str, Any]]:
    """The payloads the first invocation sends to itself so N environments are warm.

    lambda-warmer's first invocation invokes ``<function>:<version>`` for i = 2..N; send
    every payload with ``InvocationType="Event"`` except the last, which is sent with
    ``RequestResponse`` and awaited, so the environments overlap in time (§4.4). A
    warmline pre-warm fans out the same way in its own format.

    Args:
        w: the detected ping.
        warmer_flag: lambda-warmer's ``flag`` option; children carry it set to ``true``.
        correlation_id: used when the ping had none (pass the request id).

    Returns:
        One payload per extra invocation, in order; empty for a fan-out child
        (invocation > 1 or lambda-warmer's ``__WARMER_*`` keys present), for N == 1,
        when the ping has ``test`` set, or for sources that do not fan out.
    """
    raw = w.raw if isinstance(w.raw, Mapping) else {}
    if w.invocation > 1 or w.concurrency <= 1 or raw.get(WARMER_TEST_FIELD):
        return []
    cid = w.correlation_id or correlation_id
    total = w.concurrency
    if w.source == "lambda-warmer":
        if WARMER_INVOCATION in raw or WARMER_CONCURRENCY in raw:
            return []  # a child never fans out again: no self-invoke loops
        return [
            {
                warmer_flag: True,
                WARMER_INVOCATION: i,
                WARMER_CONCURRENCY: total,
                WARMER_CORRELATION_ID: cid,
            }
            for i in range(2, total + 1)
        ]
    if w.source == "warmline":
        if WARMLINE_INVOCATION in raw:
            return []
        return [
            {
                WARMLINE_KEY: WARMLINE_VALUE,
                WARMLINE_CONCURRENCY: total,
                WARMLINE_INVOCATION: i,
                WARMLINE_CORRELATION_ID: cid,
            }
            for i in range(2, total + 1)
        ]
    return []


def fanout_response(
    response: Mapping[str, Any], w: WarmUp, *, invoked: int, failures: Sequence[str] = ()
) -> dict[str, Any]:
    """The first invocation's answer once its fan-out ran: the count that really ran.

    Args:
        response: :func:`warmup_response` of the ping.
        w: the ping.
        invoked: how many of the :func:`fanout_plan` invokes Lambda accepted.
        failures: why the others were not.

    Returns:
        ``response`` with ``concurrency`` = 1 + ``invoked`` (this one and the invokes that
        were made), ``requested`` = what the ping asked for and, if some failed,
        ``failed`` (their count) and ``error`` (the first reason).
    """
    body = dict(response)
    body["concurrency"] = 1 + invoked
    body["requested"] = w.concurrency
    if failures:
        body["failed"] = len(failures)
        body["error"] = failures[0][:200]
    return body


def planned_fanout(payload: object, *, warmer_flag: str = "warmer") -> int:
    """How many times a function invokes itself when ``payload`` reaches it (0: never).

    For a deploy plan: a warm-up rule whose constant input asks lambda-warmer (or warmline)
    for N environments makes the target invoke itself N - 1 times.
    """
    w = detect_warmup(payload, warmer_flag=warmer_flag)
    return 0 if w is None else len(fanout_plan(w, warmer_flag=warmer_flag))


# --- internals ------------------------------------------------------------------------


def _lambda_warmer(event: Mapping[str, Any], concurrency_field: str, cap: int) -> WarmUp:
    # lambda-warmer: concurrency = event[field] if numeric and > 1 else 1; the total is
    # __WARMER_CONCURRENCY__ when present (a fan-out child), else that concurrency.
    requested = _count(event.get(concurrency_field), cap)
    total = _count(event[WARMER_CONCURRENCY], cap) if WARMER_CONCURRENCY in event else requested
    return WarmUp(
        source="lambda-warmer",
        concurrency=total,
        invocation=min(_count(event.get(WARMER_INVOCATION), cap), total),
        correlation_id=_text(event.get(WARMER_CORRELATION_ID)),
        raw=event,
    )


def _is_traffic(event: Mapping[str, Any]) -> bool:
    if any(key in event for key in _TRAFFIC_KEYS):
        return True
    if event.get("Name") == "ContactFlowEvent":
        return True
    details = event.get("Details")
    return isinstance(details, Mapping) and "ContactData" in details


def _is_schedule(event: Mapping[str, Any]) -> bool:
    return (
        event.get("source") == SCHEDULE_SOURCE and event.get("detail-type") == SCHEDULE_DETAIL_TYPE
    )


def _count(value: object, cap: int) -> int:
    """A positive count from JSON: numbers and numeric strings; anything else is 1."""
    number: float
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return 1
    else:
        return 1
    if not math.isfinite(number) or number < 1:
        return 1
    return min(int(number), cap)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _same_json(a: object, b: object) -> bool:
    """JSON equality: like ``==``, but ``true`` is not ``1`` and lists equal tuples."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping | list | tuple) or isinstance(b, Mapping | list | tuple):
        return False
    return a == b
