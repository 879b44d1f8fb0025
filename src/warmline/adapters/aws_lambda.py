"""The AWS Lambda adapter: API Gateway WebSocket proxy events in, proxy results out.

Usage::

    app = warmline.App()
    ...
    handler = warmline.lambda_handler(app)   # the function's handler

Order of checks for each raw event (docs/protocols.md §2.2, §4):

1. Warm-up pings (EventBridge schedule, serverless-plugin-warmup, lambda-warmer,
   warmline's pre-warm, configured constant inputs) — answered before anything else.
2. API Gateway WebSocket events, by ``requestContext.eventType``.
3. Amazon Connect ``ContactFlowEvent``.
4. SQS and SNS records, then any other JSON object: async work for ``@app.worker``.

``lambda_handler`` is the composition edge of a Lambda function: it reads the
environment once (:func:`warmline.adapters.compose.from_environment`) and composes the
App's ports that were not given explicitly. This module is on every cold start: it
imports only the standard library's cheapest modules and warmline's pure core. The event
loop, the store and the HTTP client are created on first use and kept for the life of
the environment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence

from warmline.core.app import STORE_APOLOGY, App, FlowReply, Invocation, Response
from warmline.core.events import (
    Connect,
    ConnectionRef,
    ContactFlow,
    Disconnect,
    Event,
    Headers,
    HttpRequest,
    Message,
    WarmUp,
    WorkerTask,
)
from warmline.core.limits import INTEGRATION_TIMEOUT_S, WARMUP_HOLD_S
from warmline.core.warmup import detect_warmup, parse_scheduled, runs_hooks, warmup_response
from warmline.errors import InvalidEventError
from warmline.log import StepLogger

# typing costs ~5 ms to import; annotations are strings, so it is only needed
# by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    LambdaHandler = Callable[[Any, Any], Any]

__all__ = [
    "STORE_APOLOGY",
    "complete_warmup",
    "lambda_handler",
    "to_event",
    "warmup_inputs_from_environment",
]

#: The reserved variable holding the function's name (docs/protocols.md §8.2).
_FUNCTION_NAME_ENV = "AWS_LAMBDA_FUNCTION_NAME"
#: Longest wait for the awaited fan-out invoke: a cold child may take the 10 s init limit
#: (docs/protocols.md §3.1).
_FANOUT_TIMEOUT_S = 12.0


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _int(value: Any, default: int) -> int:
    """A number field of an event, or ``default`` when it is missing or not a finite number.

    The timestamps and counters are informational: a garbled one must not turn a valid
    message into an exception (``int("x")`` raises ValueError, ``int(1e400)`` OverflowError).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        return int(value)
    except (ValueError, OverflowError):
        return default


def _connection_ref(rc: Mapping[str, Any]) -> ConnectionRef:
    identity = rc.get("identity") if isinstance(rc.get("identity"), Mapping) else {}
    assert isinstance(identity, Mapping)
    connection_id = rc.get("connectionId")
    if not isinstance(connection_id, str) or not connection_id:
        raise InvalidEventError("API Gateway event without requestContext.connectionId")
    return ConnectionRef(
        connection_id=connection_id,
        domain_name=str(rc.get("domainName") or ""),
        stage=str(rc.get("stage") or ""),
        api_id=str(rc.get("apiId") or ""),
        request_id=str(rc.get("requestId") or ""),
        connected_at_ms=_int(rc.get("connectedAt"), 0),
        request_time_ms=_int(rc.get("requestTimeEpoch"), 0),
        source_ip=str(identity.get("sourceIp") or ""),
        user_agent=str(identity.get("userAgent") or ""),
    )


def _websocket_event(raw: Mapping[str, Any], rc: Mapping[str, Any]) -> Event:
    kind = rc.get("eventType")
    ref = _connection_ref(rc)
    if kind == "CONNECT":
        return Connect(
            connection=ref,
            headers=Headers(_str_map(raw.get("headers"))),
            query=_str_map(raw.get("queryStringParameters")),
        )
    if kind == "DISCONNECT":
        code = rc.get("disconnectStatusCode")
        return Disconnect(
            connection=ref,
            status_code=code if isinstance(code, int) else None,
            reason=str(rc.get("disconnectReason") or ""),
        )
    if kind == "MESSAGE":
        body = raw.get("body")
        if raw.get("isBase64Encoded"):
            # API Gateway closes binary frames with 1003 (§2.1); a base64 body here means a
            # non-WebSocket integration. Decode what we can rather than fail.
            import base64

            try:
                body = base64.b64decode(str(body)).decode("utf-8")
            except ValueError:
                body = ""
        return Message(
            connection=ref,
            body=body if isinstance(body, str) else "",
            route_key=str(rc.get("routeKey") or "$default"),
            message_id=str(rc.get("messageId") or ""),
        )
    raise InvalidEventError(f"unknown requestContext.eventType {kind!r}")


def _http_event(raw: Mapping[str, Any], rc: Mapping[str, Any]) -> HttpRequest:
    """Function URL / HTTP API (payload 2.0) or REST API (1.0) request."""
    headers = Headers(_str_map(raw.get("headers")))
    http = rc.get("http") if isinstance(rc.get("http"), Mapping) else None
    if http is not None:
        method = str(http.get("method") or "GET").upper()
        path = str(raw.get("rawPath") or http.get("path") or "/")
        query_string = str(raw.get("rawQueryString") or "")
        source_ip = str(http.get("sourceIp") or "")
    else:
        method = str(raw.get("httpMethod") or "GET").upper()
        path = str(raw.get("path") or "/")
        from urllib.parse import urlencode

        query_string = urlencode(_str_map(raw.get("queryStringParameters")))
        identity = rc.get("identity") if isinstance(rc.get("identity"), Mapping) else {}
        source_ip = str(identity.get("sourceIp") or "") if isinstance(identity, Mapping) else ""
    body = raw.get("body") or ""
    if raw.get("isBase64Encoded"):
        import base64

        try:
            data = base64.b64decode(str(body))
        except ValueError as exc:
            raise InvalidEventError("isBase64Encoded body is not base64") from exc
    else:
        try:
            data = str(body).encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: no HTTP client sends one
            raise InvalidEventError("the body is not valid UTF-8 text") from exc
    host = headers.get("Host") or str(rc.get("domainName") or "localhost")
    scheme = headers.get("X-Forwarded-Proto") or "https"
    url = f"{scheme}://{host}{path}" + (f"?{query_string}" if query_string else "")
    from urllib.parse import parse_qsl

    return HttpRequest(
        method=method,
        path=path,
        url=url,
        headers=headers,
        query=dict(parse_qsl(query_string, keep_blank_values=True)),
        body=data,
        source_ip=source_ip,
    )


def _records(raw: Mapping[str, Any]) -> list[WorkerTask] | None:
    records = raw.get("Records")
    if not isinstance(records, list):
        return None
    tasks: list[WorkerTask] = []
    for record in records:
        if not isinstance(record, Mapping):
            raise InvalidEventError("a Records entry is not an object")
        if record.get("eventSource") == "aws:sqs":
            attrs = record.get("attributes")
            attrs = attrs if isinstance(attrs, Mapping) else {}
            tasks.append(
                WorkerTask(
                    payload=_json_object(record.get("body"), "SQS body"),
                    delivery="sqs",
                    message_id=str(record.get("messageId") or ""),
                    attempt=_int(attrs.get("ApproximateReceiveCount"), 1),
                )
            )
        elif record.get("EventSource") == "aws:sns":
            sns = record.get("Sns")
            sns = sns if isinstance(sns, Mapping) else {}
            tasks.append(
                WorkerTask(
                    payload=_json_object(sns.get("Message"), "SNS Message"),
                    delivery="sns",
                    message_id=str(sns.get("MessageId") or ""),
                )
            )
        else:
            raise InvalidEventError("a Records entry is neither SQS nor SNS")
    return tasks


def _json_object(text: Any, what: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError as exc:
        raise InvalidEventError(f"{what} is not JSON") from exc
    if not isinstance(value, Mapping):
        raise InvalidEventError(f"{what} is not a JSON object")
    return value


def to_event(
    raw: Any,
    *,
    client_context_custom: Mapping[str, Any] | None = None,
    constant_warmup_inputs: Sequence[Mapping[str, Any]] = (),
    schedules_are_warmups: bool = True,
) -> Event | list[WorkerTask]:
    """Normalize one raw Lambda event.

    Returns:
        One event, or for an SQS/SNS batch the list of its records as WorkerTasks.

    Raises:
        InvalidEventError: a shape warmline does not know.
    """
    warm = detect_warmup(
        raw,
        client_context_custom=client_context_custom,
        constant_inputs=constant_warmup_inputs,
        schedules_are_warmups=schedules_are_warmups,
    )
    if warm is not None:
        return warm
    if not isinstance(raw, Mapping):
        raise InvalidEventError(f"a Lambda event of type {type(raw).__name__}")
    rc = raw.get("requestContext")
    if isinstance(rc, Mapping) and "eventType" in rc:
        return _websocket_event(raw, rc)
    if isinstance(rc, Mapping) and ("http" in rc or "httpMethod" in raw):
        return _http_event(raw, rc)
    if raw.get("Name") == "ContactFlowEvent":
        from warmline.adapters.connect_flow import parse_contact_flow

        return parse_contact_flow(raw)
    scheduled = parse_scheduled(raw)
    if scheduled is not None:
        return scheduled
    records = _records(raw)
    if records is not None:
        return records
    return WorkerTask(payload=raw, delivery="invoke")


def _client_context_custom(context: Any) -> Mapping[str, Any] | None:
    cc = getattr(context, "client_context", None)
    custom = getattr(cc, "custom", None)
    return custom if isinstance(custom, Mapping) else None


def warmup_inputs_from_environment(
    environ: Mapping[str, str] | None = None,
) -> list[Mapping[str, Any]]:
    """The warm-up inputs ``warmline.toml`` declared for this function (read once).

    Raises:
        ConfigurationError: ``WARMLINE_WARMUP_INPUTS`` is not a JSON list of objects.
    """
    import os

    from warmline.core.warmup import WARMUP_INPUTS_ENV, parse_warmup_inputs
    from warmline.errors import ConfigurationError

    env = os.environ if environ is None else environ
    try:
        return parse_warmup_inputs(env.get(WARMUP_INPUTS_ENV, ""))
    except ValueError as exc:
        raise ConfigurationError(f"{WARMUP_INPUTS_ENV}: {exc}") from exc


def lambda_handler(
    app: App,
    *,
    constant_warmup_inputs: Sequence[Mapping[str, Any]] = (),
    schedules_are_warmups: bool = True,
    log: StepLogger | None = None,
) -> LambdaHandler:
    """Make the Lambda handler for ``app``.

    Args:
        app: the application.
        constant_warmup_inputs: JSON inputs of your warm-up rules to treat as pings, in
            addition to those ``warmline.toml`` declares (``WARMLINE_WARMUP_INPUTS``).
        schedules_are_warmups: treat every EventBridge scheduled event as a warm-up
            (default; set False if ``@app.schedule`` should get them).
        log: the step logger (default: JSON lines on stdout, which Lambda ships).

    Returns:
        ``handler(event, context)`` for the function's configuration.
    """
    from warmline.adapters.observe import compose_observed, observers, trace_fields

    constant_warmup_inputs = [*constant_warmup_inputs, *warmup_inputs_from_environment()]
    hooks = observers(app.name)
    compose_observed(app, hooks)
    state = {"cold": True}
    logger = log or StepLogger(base={"app": app.name}, also=hooks)

    def handler(raw: Any, context: Any = None) -> Any:
        cold = state["cold"]
        state["cold"] = False
        started = time.monotonic()
        logger.bind(**trace_fields())
        remaining = _remaining_ms(raw, context, started)
        invocation = Invocation(
            cold=cold,
            remaining_ms=remaining,
            clock=time.monotonic,
            log=logger,
            request_id=str(getattr(context, "aws_request_id", "") or ""),
            function_name=str(getattr(context, "function_name", "") or ""),
        )
        try:
            event = to_event(
                raw,
                client_context_custom=_client_context_custom(context),
                constant_warmup_inputs=constant_warmup_inputs,
                schedules_are_warmups=schedules_are_warmups,
            )
        except InvalidEventError as exc:
            logger("invalid_event", "error", error=str(exc), cold=cold)
            return {"statusCode": 400}
        if isinstance(event, list):
            return _handle_batch(app, event, invocation)
        if isinstance(event, WorkerTask) and not app.handles("worker"):
            # An object of no known shape is async work only if the app takes async work;
            # otherwise it is garbage: a 400, not an exception (and no async retries).
            logger("invalid_event", "error", error="an event of no known shape", cold=cold)
            return {"statusCode": 400}
        if isinstance(event, WarmUp) and not runs_hooks(event):
            # released as soon as the environment is ready: a call is about to connect
            logger("warmup", warmup=True, source=event.source, cold=cold, hooks=0)
            return warmup_response(event)
        result = app.handle(event, invocation)
        if isinstance(event, WarmUp):
            return complete_warmup(event, result, context, invocation.remaining_ms, logger)
        if isinstance(result, FlowReply) and isinstance(event, ContactFlow):
            from warmline.adapters.connect_response import flow_response

            return flow_response(result, event)
        return result.to_lambda() if isinstance(result, Response) else result

    handler.app = app  # type: ignore[attr-defined]
    return handler


def complete_warmup(
    w: WarmUp,
    response: Any,
    context: Any,
    remaining_ms: Callable[[], int],
    log: StepLogger,
) -> Any:
    """Finish a warm-up: perform its fan-out, or hold a fan-out child's environment.

    lambda-warmer's first invocation invokes its own function N - 1 times, all but the last
    as ``Event`` and the last as ``RequestResponse``, awaited, so N environments are busy
    at once; each child holds its environment ``WARMUP_HOLD_S`` so the others land
    elsewhere (docs/protocols.md §4.4). A ping that is neither (a schedule, warmline's
    call-tied pre-warm) returns as soon as the environment is ready.

    Args:
        w: the ping.
        response: what the App answered it (:func:`warmline.core.warmup.warmup_response`).
        context: the Lambda context (function name and version, request id).
        remaining_ms: the invocation's time left.
        log: the step logger.

    Returns:
        The answer to the pinger, saying how many invocations really ran.
    """
    from warmline.core.warmup import fanout_plan, fanout_response

    if w.invocation > 1:
        time.sleep(WARMUP_HOLD_S)  # lambda-warmer's delay: keep this environment busy
        return response
    if w.concurrency <= 1 or not isinstance(response, Mapping):
        return response
    request_id = str(getattr(context, "aws_request_id", "") or "")
    plan = fanout_plan(w, correlation_id=request_id)
    invoked, failures = _fan_out(plan, context, remaining_ms, log) if plan else (0, [])
    return fanout_response(response, w, invoked=invoked, failures=failures)


def _fan_out(
    plan: list[dict[str, Any]], context: Any, remaining_ms: Callable[[], int], log: StepLogger
) -> tuple[int, list[str]]:
    """Invoke this function once per payload: ``Event`` but the last, which is awaited.

    Returns:
        How many invokes Lambda accepted, and why the others failed.
    """
    import os

    from warmline.aws.lambda_invoke import LambdaClient
    from warmline.errors import WarmlineError

    name = str(getattr(context, "function_name", "") or os.environ.get(_FUNCTION_NAME_ENV, ""))
    version = str(getattr(context, "function_version", "") or "$LATEST")
    target = f"{name}:{version}"
    # the awaited child may start cold: give it the init limit, within our own time left
    timeout_s = max(1.0, min(_FANOUT_TIMEOUT_S, remaining_ms() / 1000 - 0.2))
    invoked, failures = 0, []
    try:
        client = LambdaClient(target, timeout_s=timeout_s)
    except WarmlineError as exc:
        failures = [str(exc)] * len(plan)
    else:
        try:
            for n, payload in enumerate(plan, 1):
                body = json.dumps(payload, separators=(",", ":")).encode()
                try:
                    if n < len(plan):
                        client.invoke_event(body)
                    else:
                        client.invoke_sync(body)
                    invoked += 1
                except (WarmlineError, OSError) as exc:
                    failures.append(str(exc))
        finally:
            client.close()
    detail = {"error": failures[0][:200]} if failures else {}
    level = "warning" if failures else "info"
    log("warmup_fanout", level, function=target, invoked=invoked, failed=len(failures), **detail)
    return invoked, failures


def _handle_batch(app: App, tasks: list[WorkerTask], invocation: Invocation) -> Any:
    """Run each record; SQS failures are reported per item (ReportBatchItemFailures)."""
    failures: list[dict[str, str]] = []
    for task in tasks:
        try:
            app.handle(task, invocation)
        except Exception as exc:  # one bad record must not fail the batch
            invocation.log("task_failed", "error", messageId=task.message_id, error=repr(exc))
            if task.delivery != "sqs":
                raise
            failures.append({"itemIdentifier": task.message_id})
    if tasks and tasks[0].delivery == "sqs":
        return {"batchItemFailures": failures}
    return None


def _remaining_ms(raw: Any, context: Any, started: float) -> Callable[[], int]:
    """Time left: Lambda's own deadline, capped by API Gateway's 29 s for WebSocket routes."""
    get = getattr(context, "get_remaining_time_in_millis", None)
    cap_ms: float | None = None
    if isinstance(raw, Mapping) and isinstance(raw.get("requestContext"), Mapping):
        cap_ms = INTEGRATION_TIMEOUT_S * 1000

    def remaining() -> int:
        elapsed_ms = (time.monotonic() - started) * 1000
        left = float(get()) if callable(get) else 900_000 - elapsed_ms
        if cap_ms is not None:
            left = min(left, cap_ms - elapsed_ms)
        return max(0, int(left))

    return remaining
