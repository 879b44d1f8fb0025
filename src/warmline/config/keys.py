"""Every key of ``warmline.toml``, table by table: what the loaders accept and what the
reference page lists.

The loaders check each table with ``_only(table, where, allowed("functions.<name>"))``, and
the documentation site renders :data:`TABLES` as its configuration reference, so a key
cannot be accepted without being documented, nor documented without being accepted.

A table path is the dotted TOML path with ``<...>`` where the user picks the name
(``functions.<name>``, ``websocket.routes.<route>``); ``""`` is the top level. Each key maps
to ``(type, default, what it does)``; the default is ``"required"`` when the loader needs
the key and ``"-"`` when leaving it out means "none". Adding a key is one line here plus
its check in the loader.

``[agent]`` and ``[agent.llm]`` belong to the reference agent, which runs on Lambda and so
may not import this package (the layer contract): their keys live in
:data:`warmline.agent.settings.SETTINGS` and
:data:`warmline.agent.providers.config.SETTINGS`, included here by reference. The fault
names of ``[faults]`` are :data:`warmline.config.faults.FAULTS`.
"""

from __future__ import annotations

from collections.abc import Mapping

from warmline.agent.providers.config import SETTINGS as _LLM_SETTINGS
from warmline.agent.settings import SETTINGS as _AGENT_SETTINGS

__all__ = ["TABLES", "Key", "allowed"]

#: ``(type, default, what it does)``.
Key = tuple[str, str, str]

TABLES: Mapping[str, Mapping[str, Key]] = {
    "": {
        "functions": ("table", "required", "the Lambda functions, one `[functions.<name>]` each"),
        "websocket": ("table", "-", "the API Gateway WebSocket API: stage, routes, authorizers"),
        "http": ("table", "-", "the function behind a Lambda function URL (TwiML, webhooks)"),
        "schedules": ("table", "-", "EventBridge schedules, one `[schedules.<name>]` each"),
        "sqs": ("table", "-", "SQS queues feeding a function, one `[sqs.<name>]` each"),
        "sns": ("table", "-", "SNS topics with Lambda subscribers, one `[sns.<name>]` each"),
        "limits": ("table", "-", "platform limits; the defaults are AWS's"),
        "faults": ("table", "-", "faults `warmline dev` injects on purpose"),
        "region": ("string", '"us-east-1"', "the AWS region the emulator reports"),
        "account": ("string", '"123456789012"', "the AWS account id the emulator reports"),
        "deploy": ("table", "-", "settings only `warmline deploy` reads"),
        "agent": ("table", "-", "settings of the reference agent (`[agent.llm]`)"),
        "coldstart": ("table", "-", "`budget_ms` for `warmline coldstart`"),
    },
    "functions.<name>": {
        "handler": ("string", "required", "`module.function` that Lambda calls"),
        "code": ("string", '"."', "the code directory, relative to the config file"),
        "memory": ("integer", "128", "memory in MB, 128..10240"),
        "timeout": ("number", "3", "timeout in seconds, up to 900"),
        "environment": ("table", "{}", "environment variables (strings, numbers, booleans)"),
        "reserved_concurrency": ("integer", "-", "the most environments at once"),
        "runtime": (
            "string",
            "-",
            "`python3.X`, `nodejs18.x`/`nodejs20.x`/`nodejs22.x`, `provided.al2023`/`provided.al2`",
        ),
        "ephemeral_storage": ("integer", "512", "size of `/tmp` in MB, 512..10240"),
        "statements": ("list of tables", "-", "IAM statements of the execution role"),
        "runtime_client": (
            "string",
            "the built-in runtime",
            '`"aws"` runs a Python function under awslambdaric, AWS\'s runtime client',
        ),
    },
    "functions.<name>.statements[]": {
        "effect": ("string", '"Allow"', '`"Allow"` or `"Deny"`'),
        "action": ("string or list", "-", "IAM actions (`dynamodb:GetItem`, wildcards)"),
        "not_action": ("string or list", "-", "every action but these"),
        "resource": ("string or list", "-", "resource ARNs (wildcards)"),
        "not_resource": ("string or list", "-", "every resource but these"),
        "sid": ("string", "-", "a statement id"),
    },
    "http": {
        "function": ("string", "-", "the function answering HTTP requests"),
    },
    "websocket": {
        "stage": ("string", '"dev"', "the stage name in the URL"),
        "route_selection_expression": (
            "string",
            '"$request.body.action"',
            "which part of a message picks the route",
        ),
        "api_id": ("string", '"warmline00"', "the API id the emulator reports"),
        "routes": ("table", "{}", "route key -> function name or `[websocket.routes.<route>]`"),
        "authorizers": ("table", "{}", "Lambda REQUEST authorizers by name"),
    },
    "websocket.routes.<route>": {
        "function": ("string", "required", "the function integrated with the route"),
        "route_response": ("boolean", "false", "send the handler's `body` back to the client"),
        "authorization": (
            "string",
            '"NONE"',
            '`"NONE"`, `"AWS_IAM"` or `"CUSTOM"` (on `$connect` only)',
        ),
        "authorizer": ("string", "-", "a `websocket.authorizers` name (`CUSTOM`)"),
    },
    "websocket.authorizers.<name>": {
        "function": ("string", "required", "the authorizer function"),
        "identity_sources": (
            "list of strings",
            "[]",
            "`route.request.header.<Name>` or `route.request.querystring.<name>`",
        ),
    },
    "schedules.<name>": {
        "expression": ("string", "required", "`rate(...)` or `cron(...)`"),
        "targets": ("list of strings", "required", "the functions invoked"),
        "input": ("table or JSON string", "-", "the constant event each target receives"),
        "inputs": ("table", "-", "target -> its own constant event (instead of `input`)"),
        "warmup": ("boolean", "false", "the inputs are warm-up pings, answered before routing"),
        "enabled": ("boolean", "true", "whether the rule fires"),
    },
    "sqs.<name>": {
        "function": ("string", "required", "the function the event source mapping invokes"),
        "batch_size": ("integer", "10", "most messages per invocation, 1..10000"),
        "visibility_timeout": ("number", "30", "seconds a received message stays hidden"),
        "report_batch_item_failures": (
            "boolean",
            "false",
            "the handler returns `batchItemFailures`",
        ),
        "max_receive_count": ("integer", "-", "receives before a message is dropped"),
    },
    "sns.<name>": {
        "functions": ("list of strings", "required", "the subscribed functions"),
    },
    "limits": {
        "integration_timeout_s": ("number", "29", "seconds a route's invocation may take"),
        "idle_timeout_s": ("number", "600", "an idle connection closes after this"),
        "max_connection_s": ("number", "7200", "a connection closes after this"),
        "idle_reclaim_s": ("number", "600", "an idle environment is reclaimed after this"),
        "max_frame_bytes": ("integer", "32768", "largest WebSocket frame"),
        "max_message_bytes": ("integer", "131072", "largest WebSocket message"),
        "max_post_bytes": ("integer", "131072", "largest `@connections` POST body"),
        "async_retry_delays_s": (
            "list of numbers",
            "[60, 120]",
            "waits before the retries of a failed async invocation",
        ),
        "write_buffer_limit_bytes": (
            "integer",
            "4194304",
            "bytes queued to a slow client before it is dropped",
        ),
        "async_throttle_backoff_s": ("number", "1", "first wait after a throttled async event"),
        "max_event_age_s": ("number", "21600", "an async event older than this is dropped"),
    },
    "faults": {
        "seed": ("integer", "-", "the same seed injects the same faults"),
        "<fault>": (
            "number or table",
            "-",
            "a fault by name (`connections.throttle`): a rate 0..1 or a `[faults.<fault>]`",
        ),
    },
    "faults.<fault>": {
        "rate": ("number", "1", "probability per chance, 0..1"),
        "after": ("integer", "0", "chances spared first"),
        "count": ("integer", "-", "most injections in all"),
        "ms": ("number", "0", "the delay, stall or kill time"),
        "functions": ("list of strings", "[]", "lambda.*, store.*, async.*: only these"),
    },
    "deploy": {
        "stack_name": ("string", '"warmline"', "stack name / resource name prefix"),
        "runtime": ("string", '"python3.12"', "Lambda managed runtime, python3.11 or newer"),
        "architecture": ("string", '"arm64"', '`"arm64"` or `"x86_64"`'),
        "log_retention_days": ("integer", "14", "CloudWatch Logs retention"),
        "stage": ("string", "-", "the WebSocket stage on AWS (default: `websocket.stage`)"),
        "table": ("boolean", "true", "create the DynamoDB sessions table"),
        "worker": ("string", "-", "the function async work is dispatched to"),
        "twiml": (
            "table or false",
            "the `[http]` function",
            "the TwiML endpoint: `[deploy.twiml]`; false for none",
        ),
        "artifacts": ("string", '"build/lambda"', "where `deploy package` writes the zips"),
        "extras": ("list of strings", "[]", "warmline extras bundled in the zips"),
        "requirements": ("list of strings", "[]", "other pip requirements bundled"),
        "budget_mb": ("number", "5", "zipped package size above which `package` warns"),
        "warmline": ("string", '"pip"', 'how warmline is staged: `"pip"` or `"copy"`'),
        "python": ("string", "found", "interpreter that compiles the `.pyc`"),
        "alarm_topic_arn": ("string", "-", "SNS topic the alarms notify"),
        "plain_environment": ("list of strings", "[]", "secret-looking names that are not"),
        "exclude": ("list of strings", "[]", "patterns left out of the zips"),
        "secrets": ("table", "{}", "secrets by environment variable, `[deploy.secrets.<ENV>]`"),
        "functions": ("table", "{}", "per-function settings, `[deploy.functions.<name>]`"),
        "observability": (
            "table",
            "{}",
            "alarms, dashboard, access logs, `[deploy.observability]`",
        ),
    },
    "deploy.observability": {
        "first_token_p95_ms": ("number", "1500", "alarm when a minute's first-token p95 is over"),
        "cold_connect_alarm": ("boolean", "false", "alarm on any cold `$connect` in the window"),
        "cold_connect_window_s": ("integer", "300", "that window in seconds, a multiple of 60"),
        "async_event_age_ms": ("integer", "60000", "alarm when an async event waited longer"),
        "access_logs": ("boolean", "true", "API Gateway access logs for the WebSocket stage"),
        "dashboard": ("boolean", "true", "a CloudWatch dashboard of the same metrics"),
    },
    "deploy.twiml": {
        "function": ("string", "required", "the function answering `/twiml`"),
        "endpoint": ("string", '"function_url"', '`"function_url"` or `"http_api"`'),
    },
    "deploy.secrets.<ENV>": {
        "ssm": ("string", "-", "an SSM SecureString parameter NAME (one of ssm/secretsmanager)"),
        "secretsmanager": ("string", "-", "a Secrets Manager secret NAME"),
        "kms_key_arn": ("string", "-", "a customer-managed key to allow `kms:Decrypt` on"),
        "functions": ("list of strings", "every function", "the functions that may read it"),
    },
    "deploy.functions.<name>": {
        "extras": ("list of strings", "`deploy.extras`", "replaces the global extras"),
        "requirements": ("list of strings", "`deploy.requirements`", "replaces the global list"),
        "exclude": ("list of strings", "[]", "added to `deploy.exclude` for this zip"),
        "p99_ms": ("number", "-", "p99 Duration alarm threshold"),
        "provisioned_concurrency": (
            "integer",
            "-",
            "environments kept initialised, on the alias `live` every trigger calls",
        ),
        "snapstart": ("boolean", "false", "SnapStart on published versions (python3.12 and later)"),
    },
    "agent": _AGENT_SETTINGS,
    "agent.llm": _LLM_SETTINGS,
    "coldstart": {
        "budget_ms": ("number", "-", "`warmline coldstart` fails over this many ms"),
    },
}


def allowed(table: str) -> set[str]:
    """The keys ``table`` accepts (a path of :data:`TABLES`)."""
    return set(TABLES[table])
