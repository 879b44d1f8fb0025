"""What gets deployed, independent of SAM or Terraform: functions, wiring and IAM.

Both renderers read one :class:`Plan`, so the two templates cannot drift apart on the
part that matters most, least-privilege IAM. A policy statement names its resources
abstractly (:class:`Ref`: "the table", "queue jobs", "the @connections of the stage") and
each renderer spells the ARN in its own language. Who gets what:

- ``logs:CreateLogStream``, ``logs:PutLogEvents`` on its own log group: every function;
- ``execute-api:ManageConnections`` on ``API_ID/STAGE/{POST,GET,DELETE}/@connections/*``
  (post, GetConnection, DeleteConnection, docs/protocols.md §2.4): route functions and workers;
- ``dynamodb:GetItem``, ``PutItem``, ``DeleteItem``, ``ConditionCheckItem`` on the
  sessions table (no index ARN: the store has none): every function;
- ``sqs:SendMessage`` on queue q: every function but q's consumer, which gets the
  receive/delete/attributes actions its event source mapping needs (§4.3);
- ``sns:Publish`` on topic t: every function not subscribed to it (§4.2);
- ``lambda:InvokeFunction`` on the worker (``[deploy] worker``): every other function;
- ``lambda:InvokeFunction`` on itself (any version: ``name`` and ``name:*``): a function a
  warm-up rule asks for a fan-out (lambda-warmer's ``{"warmer": true, "concurrency": N}``,
  docs/protocols.md §4.4). Rendered as a policy of its own, attached after the function
  exists (a role policy naming its own function's ARN would be a dependency cycle);
- ``ssm:GetParameter`` / ``secretsmanager:GetSecretValue`` on exactly the parameter or
  secret ``[deploy.secrets]`` names, plus ``kms:Decrypt`` on a customer-managed key only
  through that service (``kms:ViaService``): the functions the secret lists.

The DynamoDB actions are the ones :class:`~warmline.stores.dynamodb.DynamoDBStore` uses:
``GetItem`` and ``TransactWriteItems``, whose IAM permissions are those of the items it
writes (``PutItem``, ``DeleteItem``, ``ConditionCheckItem``); table creation and TTL setup
are the template's job, never the function's.

Secrets: a function's plain environment must not carry one. An environment variable whose
name looks like a secret (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*API_KEY*``...) is an
error unless ``[deploy.secrets]`` declares where it lives (its dev value is then dropped and
``<NAME>_PARAMETER`` / ``<NAME>_SECRET_ID`` carries the name) or ``[deploy]
plain_environment`` says it is not a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from warmline.config import DevConfig, FunctionConfig, ScheduleConfig
from warmline.config.deploy import (
    PUBLISH_ALIAS,
    DeploySettings,
    FunctionDeploy,
    Project,
    SecretRef,
)
from warmline.config.observability import ObservabilitySettings
from warmline.core import limits
from warmline.errors import ConfigurationError

__all__ = [
    "CONNECTION_METHODS",
    "DYNAMODB_ACTIONS",
    "ENV_PUBLIC_URL",
    "ENV_STORE",
    "ENV_TABLE",
    "ENV_WORKER",
    "MAX_RULE_TARGETS",
    "SELF_INVOKE_SID",
    "SQS_CONSUMER_ACTIONS",
    "FunctionPlan",
    "Plan",
    "QueuePlan",
    "Ref",
    "RoutePlan",
    "SchedulePlan",
    "Statement",
    "TopicPlan",
    "build_plan",
    "function_statements",
    "logical_id",
]

#: The @connections operations a function may call (docs/protocols.md §2.4).
CONNECTION_METHODS = ("POST", "GET", "DELETE")
#: What DynamoDBStore needs (GetItem + the item actions of TransactWriteItems).
DYNAMODB_ACTIONS = (
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
)
#: What an SQS event source mapping needs from its function's role (docs/protocols.md §4.3;
#: the actions of AWS's AWSLambdaSQSQueueExecutionRole, scoped to the one queue).
SQS_CONSUMER_ACTIONS = (
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)
#: The statement letting a function invoke itself (a warm-up fan-out).
SELF_INVOKE_SID = "InvokeSelf"
#: EventBridge allows at most 5 targets per rule (EventBridge quotas page).
MAX_RULE_TARGETS = 5
#: SQS batches above 10 need a batching window of at least 1 s (docs/protocols.md §4.3).
SQS_BATCH_WITHOUT_WINDOW = 10
#: Environment variables the template sets for the app (names documented in docs/deploy.md).
ENV_TABLE = "WARMLINE_DYNAMODB_TABLE"
ENV_STORE = "WARMLINE_STORE"
ENV_PUBLIC_URL = "WARMLINE_PUBLIC_URL"
ENV_WORKER = "WARMLINE_WORKER_FUNCTION"
_SECRET_NAME_RE = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE
)
_RATE_RE = re.compile(r"^rate\((\d+)\s+(second|minute|hour|day)s?\)$")


class Ref(NamedTuple):
    """An abstract resource, spelled as an ARN (or name/URL) by each renderer.

    ``kind`` is one of ``table``, ``queue``, ``topic``, ``function``, ``log_group``,
    ``function_versions`` (every qualified ARN of function ``name``: ``<arn>:*``),
    ``connections`` (``name`` = HTTP method), ``ssm`` (``name`` = parameter name),
    ``secret`` (``name`` = secret name), ``kms`` (``name`` = key ARN), ``arn`` (``name`` =
    an ARN pattern written in ``warmline.toml``, rendered as it is).
    """

    kind: str
    name: str = ""


class Statement(NamedTuple):
    """One IAM policy statement; ``via_service`` adds ``kms:ViaService`` (``ssm``...)."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[Ref, ...]
    via_service: str = ""
    effect: str = "Allow"


class RoutePlan(NamedTuple):
    """A WebSocket route and its Lambda proxy integration."""

    key: str
    function: str
    route_response: bool


class SchedulePlan(NamedTuple):
    """An EventBridge rule; ``input`` is the constant JSON text or "" (§4.1), and
    ``target_inputs`` a target's own input text where it has one."""

    name: str
    expression: str
    targets: tuple[str, ...]
    input: str
    enabled: bool
    target_inputs: Mapping[str, str] = {}

    def input_for(self, target: str) -> str:
        """The ``Input`` text of ``target`` ("" for the scheduled event)."""
        return self.target_inputs.get(target, self.input)


class QueuePlan(NamedTuple):
    """An SQS queue, its event source mapping and optional dead-letter queue (§4.3)."""

    name: str
    function: str
    batch_size: int
    batching_window_s: int
    visibility_timeout_s: int
    report_batch_item_failures: bool
    max_receive_count: int | None


class TopicPlan(NamedTuple):
    """An SNS topic with Lambda subscriptions (§4.2)."""

    name: str
    functions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FunctionPlan:
    """One Lambda function as deployed.

    ``environment`` holds literal values; ``env_refs`` values the template resolves
    (``("table",)``, ``("queue_url", name)``, ``("topic", name)``, ``("function", name)``,
    ``("ws_url",)``).
    """

    name: str
    logical: str
    handler: str
    code_dir: Path
    memory_mb: int
    timeout_s: int
    runtime: str
    architecture: str
    environment: Mapping[str, str]
    env_refs: Mapping[str, tuple[str, ...]]
    statements: tuple[Statement, ...]
    reserved_concurrency: int | None
    p99_ms: float
    artifact: Path
    twiml: str = ""  # "", "function_url" or "http_api"
    #: statements naming the function itself: a policy attached once the function exists.
    self_statements: tuple[Statement, ...] = ()
    #: Start-up options ([deploy.functions.<name>]); either one publishes the function
    #: behind ``alias``, which every trigger then calls.
    provisioned_concurrency: int | None = None
    snapstart: bool = False

    @property
    def alias(self) -> str | None:
        """The alias triggers call (``live``), or None: the unpublished function."""
        return PUBLISH_ALIAS if self.provisioned_concurrency is not None or self.snapstart else None


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything both renderers emit."""

    stack_name: str
    functions: Mapping[str, FunctionPlan]
    routes: tuple[RoutePlan, ...]
    stage: str
    route_selection_expression: str
    schedules: tuple[SchedulePlan, ...]
    queues: tuple[QueuePlan, ...]
    topics: tuple[TopicPlan, ...]
    table: bool
    log_retention_days: int
    alarm_topic_arn: str
    warnings: tuple[str, ...] = field(default=())
    observability: ObservabilitySettings = field(default_factory=ObservabilitySettings)

    @property
    def websocket(self) -> bool:
        """Whether there is a WebSocket API (any route)."""
        return bool(self.routes)

    @property
    def integration_timeout_ms(self) -> int:
        """The integration timeout: API Gateway's maximum, not raisable (§2.5)."""
        return int(limits.INTEGRATION_TIMEOUT_S * 1000)


def logical_id(name: str, suffix: str = "") -> str:
    """A CloudFormation logical ID (alphanumeric) from a config name: ``my-fn`` -> ``MyFn``."""
    parts = re.split(r"[^A-Za-z0-9]+", name)
    camel = "".join(p[:1].upper() + (p[1:].lower() if p.isupper() else p[1:]) for p in parts if p)
    if not camel or not camel[0].isalpha():
        camel = "F" + camel
    return camel + suffix


def build_plan(project: Project) -> Plan:
    """Resolve the config and the deploy settings into a :class:`Plan`.

    Raises:
        ConfigurationError: something AWS would reject (a seconds rate, too many rule
            targets) or a plain-text secret in a function's environment.
    """
    config, deploy = project.config, project.deploy
    warnings: list[str] = []
    for route in config.websocket.routes.values():
        if route.authorization != "NONE":  # deploying it unprotected would open the API
            raise ConfigurationError(
                f"websocket.routes.{route.key}: warmline deploy does not render "
                f"{route.authorization} authorization yet; deploy this API with its template"
            )
    routes = tuple(
        RoutePlan(r.key, r.function, r.route_response) for r in config.websocket.routes.values()
    )
    route_fns = {r.function for r in routes}
    fanouts = _fanout_targets(config)
    queues = tuple(_queue(q, config, warnings) for q in config.sqs.values())
    topics = tuple(TopicPlan(t.name, t.functions) for t in config.sns.values())
    schedules = tuple(_schedule(s) for s in config.schedules.values())
    workers = {q.function for q in queues} | {f for t in topics for f in t.functions}
    if deploy.worker:
        workers.add(deploy.worker)
    logicals: dict[str, str] = {}
    for name in config.functions:
        lid = logical_id(name)
        if lid in logicals.values():
            raise ConfigurationError(f"functions.{name}: its resource name {lid} is taken")
        logicals[name] = lid
    functions = {
        name: _function(
            fn, project, logicals[name], (route_fns, workers, fanouts), queues, topics, warnings
        )
        for name, fn in config.functions.items()
    }
    return Plan(
        stack_name=deploy.stack_name,
        functions=functions,
        routes=routes,
        stage=deploy.stage or config.websocket.stage,
        route_selection_expression=config.websocket.route_selection_expression,
        schedules=schedules,
        queues=queues,
        topics=topics,
        table=deploy.table,
        log_retention_days=deploy.log_retention_days,
        alarm_topic_arn=deploy.alarm_topic_arn,
        warnings=tuple(warnings),
        observability=deploy.observability,
    )


def function_statements(project: Project) -> dict[str, tuple[Statement, ...]]:
    """Each function's IAM statements exactly as :func:`build_plan` grants them.

    Unlike :func:`build_plan` this checks nothing else (a seconds rate or a secret in the
    environment are the deploy's concerns), so ``warmline dev`` can evaluate the deployed
    statements for any config it runs.
    """
    config, deploy = project.config, project.deploy
    route_fns = {r.function for r in config.websocket.routes.values()}
    queues = tuple(_queue(q, config, []) for q in config.sqs.values())
    topics = tuple(TopicPlan(t.name, t.functions) for t in config.sns.values())
    workers = {q.function for q in queues} | {f for t in topics for f in t.functions}
    if deploy.worker:
        workers.add(deploy.worker)
    roles = (route_fns, workers, _fanout_targets(config))
    return {
        name: tuple(_grants(fn, deploy, roles, queues, topics)[0])
        for name, fn in config.functions.items()
    }


def _fanout_targets(config: DevConfig) -> set[str]:
    """The functions a rule's constant input asks to fan out (they invoke themselves)."""
    from warmline.core.warmup import planned_fanout

    return {
        target
        for s in config.schedules.values()
        for target in s.targets
        if planned_fanout(s.input_for(target)) > 0
    }


def _function(
    fn: FunctionConfig,
    project: Project,
    logical: str,
    roles: tuple[set[str], set[str], set[str]],
    queues: tuple[QueuePlan, ...],
    topics: tuple[TopicPlan, ...],
    warnings: list[str],
) -> FunctionPlan:
    deploy = project.deploy
    name = fn.name
    environment, secret_refs = _environment(fn, deploy)
    granted, env_refs = _grants(fn, deploy, roles, queues, topics)
    statements = [st for st in granted if st.sid != SELF_INVOKE_SID]
    if deploy.table:
        environment.setdefault(ENV_STORE, "dynamodb")
    for secret in secret_refs:
        environment[secret.env_var] = secret.name
    timeout = int(-(-fn.timeout_s // 1))  # Lambda takes whole seconds
    if timeout != fn.timeout_s:
        warnings.append(f"functions.{name}.timeout {fn.timeout_s} s rounded up to {timeout} s")
    own = deploy.functions.get(name)
    p99 = own.p99_ms if own is not None and own.p99_ms is not None else timeout * 1000 * 0.8
    twiml = deploy.twiml.endpoint if deploy.twiml and deploy.twiml.function == name else ""
    return FunctionPlan(
        name=name,
        logical=logical,
        handler=fn.handler,
        code_dir=fn.code_dir,
        memory_mb=fn.memory_mb,
        timeout_s=timeout,
        runtime=deploy.runtime,
        architecture=deploy.architecture,
        environment=environment,
        env_refs=env_refs,
        statements=tuple(statements),
        reserved_concurrency=fn.reserved_concurrency,
        p99_ms=p99,
        artifact=(project.base_dir / deploy.artifacts / f"{name}.zip"),
        twiml=twiml,
        self_statements=tuple(st for st in granted if st.sid == SELF_INVOKE_SID),
        **_startup(own),
    )


def _startup(own: FunctionDeploy | None) -> dict[str, Any]:
    """The function's start-up options, as :class:`FunctionPlan` fields."""
    if own is None:
        return {}
    return {"provisioned_concurrency": own.provisioned_concurrency, "snapstart": own.snapstart}


def _grants(
    fn: FunctionConfig,
    deploy: DeploySettings,
    roles: tuple[set[str], set[str], set[str]],
    queues: tuple[QueuePlan, ...],
    topics: tuple[TopicPlan, ...],
) -> tuple[list[Statement], dict[str, tuple[str, ...]]]:
    """The least-privilege statements of one function and the references they imply.

    ``roles``: the route functions, the workers and the functions that fan out.
    """
    name = fn.name
    route_fns, workers, fanouts = roles
    secret_refs = [s for s in deploy.secrets.values() if name in s.functions]
    env_refs: dict[str, tuple[str, ...]] = {}
    statements = [
        Statement("Logs", ("logs:CreateLogStream", "logs:PutLogEvents"), (Ref("log_group", name),))
    ]
    if route_fns and (name in route_fns or name in workers):
        statements.append(
            Statement(
                "ManageConnections",
                ("execute-api:ManageConnections",),
                tuple(Ref("connections", m) for m in CONNECTION_METHODS),
            )
        )
        env_refs[ENV_PUBLIC_URL] = ("ws_url",)
    if deploy.table:
        statements.append(Statement("SessionTable", DYNAMODB_ACTIONS, (Ref("table"),)))
        env_refs[ENV_TABLE] = ("table",)
    for q in queues:
        env = f"WARMLINE_SQS_{_env_suffix(q.name)}_URL"
        if q.function == name:
            statements.append(
                Statement(
                    f"Consume{logical_id(q.name)}", SQS_CONSUMER_ACTIONS, (Ref("queue", q.name),)
                )
            )
        else:
            statements.append(
                Statement(
                    f"Send{logical_id(q.name)}", ("sqs:SendMessage",), (Ref("queue", q.name),)
                )
            )
            env_refs[env] = ("queue_url", q.name)
    for t in topics:
        if name not in t.functions:
            statements.append(
                Statement(f"Publish{logical_id(t.name)}", ("sns:Publish",), (Ref("topic", t.name),))
            )
            env_refs[f"WARMLINE_SNS_{_env_suffix(t.name)}_ARN"] = ("topic", t.name)
    if deploy.worker and deploy.worker != name:
        statements.append(
            Statement("InvokeWorker", ("lambda:InvokeFunction",), (Ref("function", deploy.worker),))
        )
        env_refs[ENV_WORKER] = ("function", deploy.worker)
    if name in fanouts:
        statements.append(
            Statement(
                SELF_INVOKE_SID,
                ("lambda:InvokeFunction",),
                (Ref("function", name), Ref("function_versions", name)),
            )
        )
    for secret in secret_refs:
        sid = logical_id(secret.env, "Secret")
        if secret.store == "ssm":
            statements.append(Statement(sid, ("ssm:GetParameter",), (Ref("ssm", secret.name),)))
        else:
            statements.append(
                Statement(sid, ("secretsmanager:GetSecretValue",), (Ref("secret", secret.name),))
            )
        if secret.kms_key_arn:
            statements.append(
                Statement(
                    sid + "Key",
                    ("kms:Decrypt",),
                    (Ref("kms", secret.kms_key_arn),),
                    via_service=secret.store,
                )
            )
    statements.extend(_extra_statements(fn))
    return statements, env_refs


def _extra_statements(fn: FunctionConfig) -> list[Statement]:
    """The function's own ``statements`` from ``warmline.toml``, deployed as written.

    Raises:
        ConfigurationError: a ``not_action``/``not_resource`` statement (not rendered).
    """
    if fn.iam is None or fn.iam.origin != "config":
        return []
    out = []
    for index, st in enumerate(fn.iam.statements):
        if st.not_actions or st.not_resources:
            raise ConfigurationError(
                f"functions.{fn.name}.statements[{index}]: not_action/not_resource statements "
                "are evaluated by warmline dev but not rendered by warmline deploy; use "
                "action/resource"
            )
        sid = st.sid or f"Extra{index + 1}"
        resources = tuple(Ref("arn", r) for r in st.resources)
        out.append(Statement(sid, st.actions, resources, effect=st.effect))
    return out


def _environment(
    fn: FunctionConfig, deploy: DeploySettings
) -> tuple[dict[str, str], list[SecretRef]]:
    """The plain environment (secrets removed) and the secrets this function reads."""
    secrets = [s for s in deploy.secrets.values() if fn.name in s.functions]
    declared = {s.env for s in deploy.secrets.values()}
    environment: dict[str, str] = {}
    for key, value in fn.environment.items():
        if key in declared:
            continue  # a dev value; on AWS the name of the parameter replaces it
        if key == "WARMLINE_ALLOW_UNSIGNED":
            continue  # a local opt-out of Twilio signatures is never deployed
        if value and _SECRET_NAME_RE.search(key) and key not in deploy.plain_environment:
            raise ConfigurationError(
                f"functions.{fn.name}.environment.{key} looks like a secret: declare it in "
                f'[deploy.secrets.{key}] (ssm = "/name") so the template carries only the '
                "parameter name, or list it in [deploy] plain_environment"
            )
        environment[key] = value
    return environment, secrets


def _queue(q: Any, config: DevConfig, warnings: list[str]) -> QueuePlan:
    timeout = config.functions[q.function].timeout_s
    visibility = int(-(-q.visibility_timeout_s // 1))
    if visibility < timeout:
        # AWS refuses a mapping whose queue hides messages for less than the function runs.
        warnings.append(
            f"sqs.{q.name}.visibility_timeout {q.visibility_timeout_s:g} s is below "
            f"{q.function}'s timeout; deployed as {int(-(-timeout // 1))} s"
        )
        visibility = int(-(-timeout // 1))
    window = 1 if q.batch_size > SQS_BATCH_WITHOUT_WINDOW else 0
    return QueuePlan(
        q.name,
        q.function,
        q.batch_size,
        window,
        visibility,
        q.report_batch_item_failures,
        q.max_receive_count,
    )


def _schedule(schedule: ScheduleConfig) -> SchedulePlan:
    name, expression, targets = schedule.name, schedule.expression, schedule.targets
    where = f"schedules.{name}"
    if len(targets) > MAX_RULE_TARGETS:
        raise ConfigurationError(
            f"{where}.targets: EventBridge allows {MAX_RULE_TARGETS} targets per rule; split it"
        )
    rate = _RATE_RE.match(expression.strip())
    if rate and rate.group(2) == "second":
        raise ConfigurationError(
            f"{where}.expression {expression!r}: seconds are a warmline dev extension; "
            "EventBridge's smallest rate is rate(1 minute)"
        )
    own = {
        target: json.dumps(value, separators=(",", ":"))
        for target, value in schedule.inputs.items()
        if value is not None
    }
    constant = schedule.input
    text = "" if constant is None else json.dumps(constant, separators=(",", ":"))
    return SchedulePlan(name, expression, targets, text, schedule.enabled, own)


def _env_suffix(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).upper()
