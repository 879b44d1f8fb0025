"""``warmline dev --terraform DIR``: run a module-free Terraform WebSocket stack locally.

The common ConversationRelay-on-Lambda layout is one directory of ``.tf`` files:
``aws_apigatewayv2_api`` (``protocol_type = "WEBSOCKET"``) with ``_route``,
``_integration`` (``AWS_PROXY`` to a function's ``invoke_arn``), ``_route_response`` and
``_stage``; ``aws_lambda_function`` with its code from an ``archive_file`` data source
(``source_dir``/``source_file``) or a ``filename`` zip; an ``aws_cloudwatch_event_rule``
``rate(5 minutes)`` warm-up with an ``aws_cloudwatch_event_target`` and its ``input``;
``aws_lambda_permission``; plus ``aws_scheduler_schedule``,
``aws_lambda_event_source_mapping`` (SQS) and ``aws_sns_topic_subscription``. Every other
resource is a note, as in :mod:`warmline.templates.cloudformation.resources`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from warmline.templates.build import StackBuilder
from warmline.templates.report import NoteKind, SourceError, Translation, guard
from warmline.templates.terraform.iam import function_iam
from warmline.templates.terraform.module import TerraformModule
from warmline.templates.terraform.services import SERVICE_KINDS, read_service

__all__ = ["translate_terraform"]

_FUNCTION_ARN_RE = re.compile(r":function:([^:/]+)")
_API_REF_RE = re.compile(r"aws_apigatewayv2_api\.([A-Za-z0-9_\-]+)")
_ROUTE_REF_RE = re.compile(r"aws_apigatewayv2_route\.([A-Za-z0-9_\-]+)")
_IGNORED = {
    "aws_iam_role": "no function that runs here uses this role",
    "aws_iam_policy": "attached to no role of a function that runs here",
    "aws_iam_role_policy": "attached to no role of a function that runs here",
    "aws_iam_role_policy_attachment": "attached to no role of a function that runs here",
    "aws_lambda_permission": "the emulator invokes functions without IAM permissions",
    "aws_apigatewayv2_deployment": "routes are live as soon as the emulator starts",
    "aws_apigatewayv2_integration_response": "AWS_PROXY integrations return the response",
    "aws_cloudwatch_log_group": "function logs go to the console",
    "aws_cloudwatch_metric_alarm": "no metrics locally",
    "aws_cloudwatch_dashboard": "no metrics locally (the warmline dev dashboard shows them)",
    "aws_lambda_alias": "the emulator runs $LATEST",
    "aws_lambda_layer_version": "layers are not attached (their code is not on sys.path)",
}
#: Services that are not emulated (tables, queues, topics, buckets, parameters and secrets
#: are created in the local services: services.py).
_SERVICES = {
    "aws_sfn_state_machine": ("Step Functions", "SFN"),
}


def translate_terraform(
    directory: Path,
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    region: str | None = None,
    account: str = "123456789012",
) -> Translation:
    """Translate a Terraform root module (a directory of ``.tf`` files) into a dev config.

    Args:
        directory: the module directory.
        variables: ``-var NAME=VALUE`` values.
        var_files: ``-var-file`` paths.
        env: environment for ``TF_VAR_*`` (default ``os.environ``).
        region: overrides the aws provider's ``region`` (default: it, else us-east-1).
        account: ``data.aws_caller_identity``'s ``account_id``.

    Raises:
        SourceError: unreadable HCL, a variable without a value, an unsupported expression
            in a property the run needs (naming ``type.name.argument``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SourceError("--terraform takes the directory of the .tf files", source=directory)
    module = TerraformModule(
        directory,
        variables=variables or {},
        var_files=var_files,
        env=os.environ if env is None else env,
        region=region or "us-east-1",
        account=account,
    )
    if region is None and module.providers and "region" in module.providers[0]:
        module.region = str(module.eval(module.providers[0]["region"], "provider.aws.region"))
    return _Translator(module).run()


class _Translator:
    def __init__(self, module: TerraformModule) -> None:
        self.m = module
        self.b = StackBuilder(module.dir, "terraform", region=module.region, account=module.account)
        self.handled: set[tuple[str, str]] = set()
        self.live = self._live_resources()

    def _live_resources(self) -> list[tuple[str, str]]:
        live = []
        for address, body in self.m.resources.items():
            where = ".".join(address)
            if "for_each" in body:
                self.handled.add(address)
                self.b.note(where, "unsupported", address[0], "for_each is not expanded; not run")
                continue
            if "count" in body:
                with guard(f"{where}.count", self.m.dir):
                    count = int(self.m.eval(body["count"], f"{where}.count"))
                if count == 0:
                    self.handled.add(address)
                    self.b.note(where, "info", address[0], "skipped: count = 0")
                    continue
                if count != 1:
                    self.b.note(where, "info", address[0], f"count = {count}: one instance runs")
            live.append(address)
        return live

    def of_type(self, kind: str) -> list[str]:
        return [name for k, name in self.live if k == kind]

    def function_of(self, value: Any, where: str, kind: str) -> str | None:
        text = str(value)
        match = _FUNCTION_ARN_RE.search(text)
        name = match.group(1) if match else text
        if name in self.b.functions or name in self.b.skipped:
            return name
        self.b.note(where, "unsupported", kind, f"{text!r} is not a function of this module")
        return None

    def run(self) -> Translation:
        for name in self.m.modules:
            self.b.note(f"module.{name}", "unsupported", "module", "modules are not followed")
        self._each("aws_lambda_function", self.function)
        with guard("aws_apigatewayv2_api (the WebSocket API)", self.m.dir):
            self.api()
        self._each("aws_cloudwatch_event_rule", self.rule)
        self._each("aws_scheduler_schedule", self.scheduler)
        self._each("aws_lambda_event_source_mapping", self.mapping)
        self._each("aws_sns_topic_subscription", self.subscription)
        for kind in (*SERVICE_KINDS, "aws_secretsmanager_secret_version"):
            for name in self.of_type(kind):
                if kind in SERVICE_KINDS:
                    with guard(f"{kind}.{name}", self.m.dir):
                        self.b.add_resource(read_service(self.m, kind, name))
                self.handled.add((kind, name))
        for kind, name in self.live:
            if (kind, name) not in self.handled:
                note_kind, message = self.explain(kind, name)
                self.b.note(f"{kind}.{name}", note_kind, kind, message)
        return self.b.build()

    def _each(self, kind: str, read: Callable[[str], None]) -> None:
        for name in self.of_type(kind):
            with guard(f"{kind}.{name}", self.m.dir):
                read(name)

    def explain(self, kind: str, name: str) -> tuple[NoteKind, str]:
        if kind in _IGNORED:
            return "ignored", _IGNORED[kind]
        physical = self.m.name_of(kind, name)
        if kind in _SERVICES:
            service, env = _SERVICES[kind]
            return "unsupported", (
                f"{service} is not emulated: its name is {physical!r}; handler calls to {service} "
                f"go to AWS, or to AWS_ENDPOINT_URL_{env} if set (e.g. a local emulator)"
            )
        return "unsupported", f"not emulated; nothing runs for {kind}.{name}"

    # --- functions --------------------------------------------------------------------------

    def function(self, name: str) -> None:
        kind = "aws_lambda_function"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        physical = self.m.name_of(kind, name)
        if (
            self.m.attr(kind, name, "package_type") == "Image"
            or "image_uri" in self.m.resources[(kind, name)]
        ):
            self.b.skipped[physical] = "container image"
            self.b.note(where, "unsupported", kind, "container image functions are not run")
            return
        code = self.code(name, where)
        if code is None:
            self.b.skipped[physical] = "code on S3"
            self.b.note(where, "unsupported", kind, "code is on S3; use filename or archive_file")
            return
        environment = self.m.eval(
            self.m.block(kind, name, "environment").get("variables", {}),
            f"{where}.environment.variables",
        )
        reserved = self.m.attr(kind, name, "reserved_concurrent_executions", -1)
        added = self.b.add_function(
            physical,
            resource=where,
            type_=kind,
            where=where,
            handler=self.m.attr(kind, name, "handler"),
            code=code,
            runtime=self.m.attr(kind, name, "runtime"),
            memory=self.m.attr(kind, name, "memory_size", 128),
            timeout=self.m.attr(kind, name, "timeout", 3),
            environment=environment,
            reserved_concurrency=None if reserved == -1 else reserved,
        )
        if added:
            with guard(f"{where}.role", self.m.dir):
                self.b.iam[physical] = function_iam(self.m, name, self.handled)
        if self.m.attr(kind, name, "layers"):
            self.b.note(where, "unsupported", kind, "layers are not attached (not on sys.path)")

    def code(self, name: str, where: str) -> Path | None:
        filename = self.m.attr("aws_lambda_function", name, "filename")
        if filename is None:
            return None
        for (kind, data_name), body in self.m.data.items():
            if kind != "archive_file" or "output_path" not in body:
                continue
            output = self.m.eval(body["output_path"], f"data.archive_file.{data_name}.output_path")
            if output != filename:
                continue
            if "source_dir" in body:
                return Path(
                    self.m.eval(body["source_dir"], f"data.archive_file.{data_name}.source_dir")
                )
            if "source_file" in body:
                source_file = Path(
                    self.m.eval(body["source_file"], f"data.archive_file.{data_name}.source_file")
                )
                return source_file.parent
            raise self.m.error(
                "only source_dir and source_file archives are read",
                f"data.archive_file.{data_name}",
            )
        path = Path(str(filename))
        return path if path.is_absolute() else self.m.dir / path

    # --- the WebSocket API ------------------------------------------------------------------

    def _api_of(self, kind: str, name: str) -> str | None:
        match = _API_REF_RE.search(str(self.m.resources[(kind, name)].get("api_id", "")))
        return match.group(1) if match else None

    def api(self) -> None:
        chosen: str | None = None
        for name in self.of_type("aws_apigatewayv2_api"):
            self.handled.add(("aws_apigatewayv2_api", name))
            where = f"aws_apigatewayv2_api.{name}"
            protocol = self.m.attr("aws_apigatewayv2_api", name, "protocol_type")
            if protocol != "WEBSOCKET":
                self.b.note(
                    where,
                    "unsupported",
                    "aws_apigatewayv2_api",
                    f"{protocol} APIs are not emulated",
                )
            elif chosen is None:
                chosen = name
            else:
                self.b.note(
                    where,
                    "unsupported",
                    "aws_apigatewayv2_api",
                    f"one WebSocket API runs per dev server ({chosen})",
                )
        if chosen is None:
            return
        stages = [
            n
            for n in self.of_type("aws_apigatewayv2_stage")
            if self._api_of("aws_apigatewayv2_stage", n) == chosen
        ]
        stage = "dev"
        if stages:
            stage = str(self.m.attr("aws_apigatewayv2_stage", stages[0], "name"))
            self.handled.update(("aws_apigatewayv2_stage", s) for s in stages)
        selection = self.m.attr(
            "aws_apigatewayv2_api", chosen, "route_selection_expression", "$request.body.action"
        )
        where = (
            f"aws_apigatewayv2_stage.{stages[0]}.name"
            if stages
            else f"aws_apigatewayv2_api.{chosen}"
        )
        self.b.set_websocket(
            stage=stage,
            selection=str(selection),
            where=where,
            selection_where=f"aws_apigatewayv2_api.{chosen}.route_selection_expression",
        )
        for name in self.of_type("aws_apigatewayv2_authorizer"):
            if self._api_of("aws_apigatewayv2_authorizer", name) == chosen:
                with guard(f"aws_apigatewayv2_authorizer.{name}", self.m.dir):
                    self.authorizer(name)
        integrations: dict[str, str | None] = {}
        for name in self.of_type("aws_apigatewayv2_integration"):
            if self._api_of("aws_apigatewayv2_integration", name) != chosen:
                continue
            kind = "aws_apigatewayv2_integration"
            self.handled.add((kind, name))
            address = f"{kind}.{name}"
            integration_type = self.m.attr(kind, name, "integration_type")
            if integration_type != "AWS_PROXY":
                integrations[address] = None
                self.b.note(
                    address,
                    "unsupported",
                    kind,
                    f"integration_type {integration_type} is not emulated (AWS_PROXY is)",
                )
                continue
            uri = self.m.attr(kind, name, "integration_uri")
            integrations[address] = self.function_of(uri, address, kind)
        responses = set()
        for name in self.of_type("aws_apigatewayv2_route_response"):
            self.handled.add(("aws_apigatewayv2_route_response", name))
            body = self.m.resources[("aws_apigatewayv2_route_response", name)]
            match = _ROUTE_REF_RE.search(str(body.get("route_id", "")))
            if match:
                responses.add(match.group(1))
        for name in self.of_type("aws_apigatewayv2_route"):
            if self._api_of("aws_apigatewayv2_route", name) == chosen:
                self.route(name, integrations, name in responses)

    def authorizer(self, name: str) -> None:
        """A Lambda REQUEST authorizer, named by its address (what a route's
        ``authorizer_id`` evaluates to)."""
        kind = "aws_apigatewayv2_authorizer"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        authorizer_type = self.m.attr(kind, name, "authorizer_type")
        if authorizer_type != "REQUEST":
            self.b.note(
                where,
                "unsupported",
                kind,
                f"authorizer_type {authorizer_type} is not a WebSocket authorizer (REQUEST is)",
            )
            return
        function = self.function_of(self.m.attr(kind, name, "authorizer_uri", ""), where, kind)
        sources = self.m.attr(kind, name, "identity_sources", []) or []
        if not isinstance(sources, list) or not all(isinstance(v, str) for v in sources):
            raise self.m.error("must be a list of strings", f"{where}.identity_sources")
        if function is not None:
            self.b.add_authorizer(where, function, sources, resource=where, type_=kind)

    def route(self, name: str, integrations: dict[str, str | None], has_response: bool) -> None:
        kind = "aws_apigatewayv2_route"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        key = self.m.attr(kind, name, "route_key")
        target = str(self.m.attr(kind, name, "target", ""))
        if not target.startswith("integrations/"):
            self.b.note(
                where,
                "unsupported",
                kind,
                f"route {key} has no integrations/ target; it runs nothing",
            )
            return
        address = target.removeprefix("integrations/")
        if address not in integrations:
            raise self.m.error(
                f"target {target!r} is not an integration of this API", f"{where}.target"
            )
        function = integrations[address]
        if function is None:
            return
        authorization = str(self.m.attr(kind, name, "authorization_type", "NONE")).upper()
        authorizer = None
        if authorization not in ("NONE", "AWS_IAM", "CUSTOM"):
            raise self.m.error(
                f"authorization_type {authorization} is not one of NONE, AWS_IAM, CUSTOM "
                "(JWT is for HTTP APIs)",
                f"{where}.authorization_type",
            )
        if authorization == "CUSTOM":
            authorizer = str(self.m.attr(kind, name, "authorizer_id", ""))
            if not authorizer.startswith("aws_apigatewayv2_authorizer."):
                raise self.m.error(
                    "authorization_type CUSTOM needs authorizer_id = "
                    "aws_apigatewayv2_authorizer.<name>.id",
                    f"{where}.authorizer_id",
                )
        route_response = (
            has_response or "route_response_selection_expression" in self.m.resources[(kind, name)]
        )
        self.b.add_route(
            str(key),
            function,
            route_response=route_response,
            resource=where,
            type_=kind,
            where=where,
            authorization=authorization,
            authorizer=authorizer,
        )

    # --- schedules, queues, topics --------------------------------------------------------

    def rule(self, name: str) -> None:
        kind = "aws_cloudwatch_event_rule"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        expression = self.m.attr(kind, name, "schedule_expression")
        if expression is None:
            self.b.note(
                where,
                "unsupported",
                kind,
                "event-pattern rules are not emulated; only schedules fire",
            )
            return
        enabled = (
            self.m.attr(kind, name, "is_enabled", True) is not False
            and self.m.attr(kind, name, "state", "ENABLED") != "DISABLED"
        )
        rule_name = self.m.name_of(kind, name)
        groups: dict[str, tuple[Any, list[str]]] = {}
        for target in self.of_type("aws_cloudwatch_event_target"):
            if self.m.attr("aws_cloudwatch_event_target", target, "rule") != rule_name:
                continue
            self.handled.add(("aws_cloudwatch_event_target", target))
            address = f"aws_cloudwatch_event_target.{target}"
            function = self.function_of(
                self.m.attr("aws_cloudwatch_event_target", target, "arn"),
                address,
                "aws_cloudwatch_event_target",
            )
            if function is None:
                continue
            constant = self.m.attr("aws_cloudwatch_event_target", target, "input")
            groups.setdefault(repr(constant), (constant, []))[1].append(function)
        if not groups:
            self.b.note(where, "info", kind, "no Lambda target: nothing fires")
        for index, (constant, functions) in enumerate(groups.values()):
            self.b.add_schedule(
                rule_name if index == 0 else f"{rule_name}-{index + 1}",
                expression=expression,
                targets=functions,
                input_=constant,
                enabled=enabled,
                resource=where,
                type_=kind,
                where=f"{where}.schedule_expression",
            )

    def scheduler(self, name: str) -> None:
        kind = "aws_scheduler_schedule"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        target = self.m.eval(self.m.block(kind, name, "target"), f"{where}.target")
        function = self.function_of(target.get("arn"), where, kind)
        if function is None:
            return
        self.b.add_schedule(
            self.m.name_of(kind, name),
            expression=self.m.attr(kind, name, "schedule_expression"),
            targets=[function],
            input_=target.get("input"),
            enabled=self.m.attr(kind, name, "state", "ENABLED") != "DISABLED",
            resource=where,
            type_=kind,
            where=f"{where}.schedule_expression",
        )

    def mapping(self, name: str) -> None:
        kind = "aws_lambda_event_source_mapping"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        raw = str(self.m.resources[(kind, name)].get("event_source_arn", ""))
        match = re.search(r"aws_sqs_queue\.([A-Za-z0-9_\-]+)", raw)
        if match is None:
            self.b.note(where, "unsupported", kind, "only SQS event sources are emulated")
            return
        function = self.function_of(self.m.attr(kind, name, "function_name"), where, kind)
        if function is None:
            return
        queue = match.group(1)
        self.handled.add(("aws_sqs_queue", queue))
        options: dict[str, Any] = {}
        visibility = self.m.attr("aws_sqs_queue", queue, "visibility_timeout_seconds")
        if visibility is not None:
            options["visibility_timeout"] = float(visibility)
        redrive = self.m.attr("aws_sqs_queue", queue, "redrive_policy")
        if isinstance(redrive, str) and redrive:
            redrive = json.loads(redrive)
        if isinstance(redrive, dict) and "maxReceiveCount" in redrive:
            options["max_receive_count"] = int(redrive["maxReceiveCount"])
            dlq = re.search(
                r"aws_sqs_queue\.([A-Za-z0-9_\-]+)",
                str(self.m.resources[("aws_sqs_queue", queue)].get("redrive_policy", "")),
            )
            if dlq is not None and ("aws_sqs_queue", dlq.group(1)) not in self.handled:
                self.handled.add(("aws_sqs_queue", dlq.group(1)))
                self.b.note(
                    f"aws_sqs_queue.{dlq.group(1)}",
                    "info",
                    "aws_sqs_queue",
                    f"dead-letter queue of aws_sqs_queue.{queue}: locally, messages past "
                    "maxReceiveCount are kept in the emulator's dead letters instead",
                )
        batch = self.m.attr(kind, name, "batch_size")
        if batch is not None:
            options["batch_size"] = int(batch)
        if "ReportBatchItemFailures" in (self.m.attr(kind, name, "function_response_types") or []):
            options["report_batch_item_failures"] = True
        self.b.add_sqs(
            self.m.name_of("aws_sqs_queue", queue),
            function,
            options=options,
            resource=where,
            type_=kind,
            where=where,
        )

    def subscription(self, name: str) -> None:
        kind = "aws_sns_topic_subscription"
        self.handled.add((kind, name))
        where = f"{kind}.{name}"
        if self.m.attr(kind, name, "protocol") != "lambda":
            self.b.note(where, "unsupported", kind, "only lambda subscriptions are emulated")
            return
        function = self.function_of(self.m.attr(kind, name, "endpoint"), where, kind)
        if function is None:
            return
        match = re.search(
            r"aws_sns_topic\.([A-Za-z0-9_\-]+)",
            str(self.m.resources[(kind, name)].get("topic_arn", "")),
        )
        if match:
            self.handled.add(("aws_sns_topic", match.group(1)))
        topic = str(self.m.attr(kind, name, "topic_arn")).rsplit(":", 1)[-1]
        self.b.add_sns(topic, function, resource=where, type_=kind)
