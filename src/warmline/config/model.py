"""The ``warmline.toml`` model (or ``[tool.warmline]``): what ``warmline dev`` runs and deploys.

The file describes what a SAM/serverless template would describe on AWS, reduced to what
the emulator needs: the functions, the WebSocket API's routes, the schedules, the SQS queues
and SNS topics that feed functions, and the platform limits (overridable so tests can
shorten the 29 s / 10 min / 2 h timers). Every problem raises :class:`ConfigurationError`
naming the offending key, because a config error found at start is cheap and one found
mid-call is not. The dataclasses are here; :mod:`warmline.config.load` reads and checks a
file into them, :mod:`warmline.config.deploy` reads the ``[deploy]`` table beside them::

    region = "us-east-1"

    [functions.ws]
    handler = "app.handler"          # module.func, module relative to `code`
    code = "src"                     # relative to this file
    memory = 256                     # MB
    timeout = 30                     # seconds
    environment = { TABLE = "calls" }
    statements = [                   # IAM beyond the deploy plan's (config/iam.py)
      { action = "dynamodb:GetItem", resource = "arn:aws:dynamodb:*:*:table/calls" },
    ]

    [websocket]
    stage = "dev"
    route_selection_expression = "$request.body.action"

    [websocket.routes]
    "$connect" = { function = "ws", authorizer = "token" }   # or authorization = "AWS_IAM"
    "$default" = { function = "ws", route_response = true }

    [websocket.authorizers.token]    # a Lambda REQUEST authorizer, run on $connect only
    function = "auth"
    identity_sources = ["route.request.querystring.token"]

    [schedules.warm]
    expression = "rate(5 minutes)"   # or cron(0/5 * * * ? *); rate(N seconds) is a
                                     # dev/test extension (AWS's minimum is 1 minute)
    targets = ["ws", "worker"]
    input = { ping = "warm" }        # optional constant input
    inputs = { worker = { ping = "warm-worker" } }   # optional, per target
    warmup = true                    # the inputs are warm-up pings (answered before routing)
    enabled = true

    [sqs.jobs]
    function = "worker"
    batch_size = 10
    visibility_timeout = 30
    report_batch_item_failures = true

    [sns.alerts]
    functions = ["worker"]

    [limits]
    integration_timeout_s = 29

    [faults]                         # optional: break things on purpose (config/faults.py)
    seed = 7
    connections.throttle = 0.1
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmline.config.faults import FaultPlan
from warmline.config.iam import FunctionIam
from warmline.config.selection import Part, parse_selection
from warmline.config.services import ServiceResources
from warmline.core import limits

__all__ = [
    "AUTHORIZATION_TYPES",
    "DEFAULT_SQS_BATCH_SIZE",
    "DEFAULT_SQS_VISIBILITY_TIMEOUT_S",
    "AuthorizerConfig",
    "DevConfig",
    "FunctionConfig",
    "LOCAL_API_ID",
    "Limits",
    "RouteConfig",
    "ScheduleConfig",
    "SnsTopicConfig",
    "SqsQueueConfig",
    "WebSocketConfig",
]

#: SQS event source mapping default batch size; max 10,000 (standard) (docs/protocols.md §4.3).
DEFAULT_SQS_BATCH_SIZE = 10
MAX_SQS_BATCH_SIZE = 10_000
#: SQS's default queue visibility timeout (30 s): a failed batch is visible again after it.
DEFAULT_SQS_VISIBILITY_TIMEOUT_S = 30.0
#: Async invocation waits before retry 1 and 2 (docs/protocols.md §3.4).
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)
#: A throttled async event is retried with backoff from 1 s up to 5 min until it is
#: 6 h old (docs/protocols.md §3.4: "throttles/5xx retried up to 6 h with backoff 1 s -> 5 min").
ASYNC_THROTTLE_BACKOFF_S = 1.0
ASYNC_THROTTLE_BACKOFF_MAX_S = 300.0
MAX_EVENT_AGE_S = 6 * 3600.0
#: A PostToConnection is refused with 429 when the client's unsent bytes exceed this
#: (docs/protocols.md §2.4 "client buffer full"); AWS does not publish the size [inf].
WRITE_BUFFER_LIMIT_BYTES = 4 * 1024 * 1024
#: The emulated WebSocket API's ``apiId``: ten lowercase letters and digits, the shape of
#: AWS's ids, so ``{apiId}.execute-api.{region}.amazonaws.com`` is a host name the
#: emulator's proxy routes to its ``@connections`` (docs/protocols.md §2.4).
LOCAL_API_ID = "warmline00"
RESERVED_ROUTES = ("$connect", "$disconnect", "$default")
#: A route's ``AuthorizationType`` (docs/protocols.md §8.6); anything but NONE on $connect only.
AUTHORIZATION_TYPES = ("NONE", "AWS_IAM", "CUSTOM")
#: The identity sources a WebSocket REQUEST authorizer reads that the emulator can check.
IDENTITY_SOURCE_RE = re.compile(r"^route\.request\.(header|querystring)\.(.+)$")
STAGE_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One Lambda function (becomes a runtime ``FunctionSpec``)."""

    name: str
    handler: str
    code_dir: Path
    memory_mb: int = 128
    timeout_s: float = 3.0
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    #: the declared runtime (``python3.12``, ``nodejs20.x``, ``provided.al2023``).
    runtime: str | None = None
    #: ``"aws"``: a Python function runs under awslambdaric over the Runtime API.
    runtime_client: str | None = None
    #: the size of each environment's private ``/tmp`` (``EphemeralStorage``), in MB.
    ephemeral_storage_mb: int = 512
    #: its execution role (:mod:`warmline.config.iam`); None: the deploy plan's statements.
    iam: FunctionIam | None = None


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A route key's integration; ``route_response`` sends the return ``body`` back.

    ``authorization`` is the route's ``AuthorizationType``: ``NONE``, ``AWS_IAM`` (the
    upgrade request must be SigV4-signed) or ``CUSTOM`` (the Lambda authorizer named by
    ``authorizer`` runs first). AWS allows anything but ``NONE`` on ``$connect`` only.
    """

    key: str
    function: str
    route_response: bool = False
    authorization: str = "NONE"
    authorizer: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorizerConfig:
    """A Lambda REQUEST authorizer of the WebSocket API (docs/protocols.md §8.6).

    ``identity_sources`` are ``route.request.header.<Name>`` / ``route.request.querystring.<name>``;
    when one is missing or empty API Gateway answers 401 without calling ``function``.
    """

    name: str
    function: str
    identity_sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    """The WebSocket API: stage, route selection, routes and authorizers."""

    stage: str = "dev"
    route_selection_expression: str = "$request.body.action"
    api_id: str = LOCAL_API_ID
    routes: Mapping[str, RouteConfig] = field(default_factory=dict)
    authorizers: Mapping[str, AuthorizerConfig] = field(default_factory=dict)

    @property
    def selection(self) -> tuple[Part, ...]:
        """The parsed route selection expression (see :mod:`warmline.config.selection`)."""
        return parse_selection(self.route_selection_expression)  # validated at parse time

    @property
    def selection_path(self) -> tuple[str | int, ...]:
        """The JSON path of a one-variable expression, e.g. ``("action",)``; ``()`` otherwise."""
        parts = self.selection
        return parts[0] if len(parts) == 1 and isinstance(parts[0], tuple) else ()


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """An EventBridge rule with a schedule expression (docs/protocols.md §4.1).

    Attributes:
        input: the constant input every target gets (None: the scheduled event).
        inputs: per-target constant inputs, overriding ``input`` (EventBridge gives each
            target its own ``Input``).
        warmup: the inputs are warm-up pings: each target answers them before any
            routing (they reach the function as ``WARMLINE_WARMUP_INPUTS``).
    """

    name: str
    expression: str
    targets: tuple[str, ...]
    input: Any = None
    enabled: bool = True
    inputs: Mapping[str, Any] = field(default_factory=dict)
    warmup: bool = False

    def input_for(self, target: str) -> Any:
        """The constant input ``target`` gets (None: the scheduled event)."""
        return self.inputs.get(target, self.input)


@dataclass(frozen=True, slots=True)
class SqsQueueConfig:
    """An SQS queue with an event source mapping to one function (docs/protocols.md §4.3)."""

    name: str
    function: str
    batch_size: int = DEFAULT_SQS_BATCH_SIZE
    visibility_timeout_s: float = DEFAULT_SQS_VISIBILITY_TIMEOUT_S
    report_batch_item_failures: bool = False
    max_receive_count: int | None = None


@dataclass(frozen=True, slots=True)
class SnsTopicConfig:
    """An SNS topic with Lambda subscriptions (docs/protocols.md §4.2)."""

    name: str
    functions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    """Platform limits; the defaults are AWS's, tests shorten them."""

    integration_timeout_s: float = limits.INTEGRATION_TIMEOUT_S
    idle_timeout_s: float = float(limits.IDLE_TIMEOUT_S)
    max_connection_s: float = float(limits.MAX_CONNECTION_S)
    idle_reclaim_s: float = float(limits.IDLE_RECLAIM_S)
    max_frame_bytes: int = limits.MAX_FRAME_BYTES
    max_message_bytes: int = limits.MAX_MESSAGE_BYTES
    max_post_bytes: int = limits.MAX_POST_BYTES
    async_retry_delays_s: tuple[float, ...] = ASYNC_RETRY_DELAYS_S
    write_buffer_limit_bytes: int = WRITE_BUFFER_LIMIT_BYTES
    async_throttle_backoff_s: float = ASYNC_THROTTLE_BACKOFF_S
    max_event_age_s: float = MAX_EVENT_AGE_S


@dataclass(frozen=True, slots=True)
class DevConfig:
    """Everything ``warmline dev`` runs."""

    functions: Mapping[str, FunctionConfig]
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    schedules: Mapping[str, ScheduleConfig] = field(default_factory=dict)
    sqs: Mapping[str, SqsQueueConfig] = field(default_factory=dict)
    sns: Mapping[str, SnsTopicConfig] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    region: str = "us-east-1"
    account: str = "123456789012"
    #: The function behind a Lambda function URL: every HTTP request that is neither
    #: ``@connections`` nor the Invoke API goes to it (payload format 2.0).
    http_function: str | None = None
    #: faults to inject (``[faults]``, :mod:`warmline.config.faults`); none by default.
    faults: FaultPlan = field(default_factory=FaultPlan)
    source: Path | None = None
    #: the tables, queues, topics, buckets, parameters and secrets created in local services.
    services: ServiceResources = field(default_factory=ServiceResources)
