"""Reading a CloudFormation ``Resources`` section into a :class:`StackBuilder`.

Functions are read first, so every route, schedule or queue aimed at a function that does
not run (a Node.js runtime, an S3 ``CodeUri``, an image) becomes a note naming it instead of
a dangling reference. Every resource ends either in the config or in a note: the last step
walks the resources nothing consumed and explains each by type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warmline.templates.build import StackBuilder
from warmline.templates.cloudformation.events import read_mapping, read_queue, read_rule, read_topic
from warmline.templates.cloudformation.iam import function_iam
from warmline.templates.cloudformation.intrinsics import Resolver
from warmline.templates.cloudformation.resource_types import explain_resource, inline_code_dir
from warmline.templates.cloudformation.services import read_services
from warmline.templates.report import guard

__all__ = ["FUNCTION_TYPES", "ResourceReader"]

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_FUNCTION_ARN_RE = re.compile(r":function:([^:/]+)")
_INTEGRATION_TARGET_RE = re.compile(r"^integrations/(.+)$")


class ResourceReader:
    """Reads resources into ``builder`` through ``resolver``.

    Args:
        resolver: evaluates intrinsics for this template.
        builder: collects the config and notes.
        function_globals: SAM ``Globals.Function``.
    """

    def __init__(
        self, resolver: Resolver, builder: StackBuilder, function_globals: dict[str, Any]
    ) -> None:
        self.r = resolver
        self.b = builder
        self.globals = function_globals
        self.resources: dict[str, dict[str, Any]] = dict(resolver.stack.resources)
        self.handled: set[str] = set()
        self.api: str | None = None
        self.integrations: dict[str, str | None] = {}
        #: the API's authorizers by logical id (the ``AuthorizerId`` a route refers to).
        self.authorizer_ids: set[str] = set()

    # --- helpers --------------------------------------------------------------------------

    def props(self, logical_id: str) -> dict[str, Any]:
        """The raw ``Properties`` of a resource."""
        value = self.resources[logical_id].get("Properties") or {}
        assert isinstance(value, dict)
        return value

    def get(self, logical_id: str, prop: str, default: Any = None) -> Any:
        """A resolved property (``default`` if absent)."""
        raw = self.props(logical_id)
        if prop not in raw:
            return default
        return self.r.resolve(raw[prop], f"Resources.{logical_id}.Properties.{prop}")

    def of_type(self, *types: str) -> list[str]:
        """Logical ids of the live resources of these types, in template order."""
        return [k for k, v in self.resources.items() if v["Type"] in types]

    def function_of(self, arn: Any, logical_id: str, prop: str) -> str | None:
        """The local function an ARN/URI/name points at (None + note if none)."""
        text = str(arn)
        match = _FUNCTION_ARN_RE.search(text)
        name = match.group(1) if match else text
        if name in self.b.functions or name in self.b.skipped:
            return name
        self.b.note(
            logical_id,
            "unsupported",
            self.resources[logical_id]["Type"],
            f"{prop} {text!r} is not a function of this template; nothing runs for it",
        )
        return None

    @staticmethod
    def ref_target(raw: Any) -> str | None:
        """The logical id in a raw ``{"Ref": X}`` / ``{"Fn::GetAtt": [X, ...]}``."""
        if isinstance(raw, dict) and len(raw) == 1:
            if isinstance(raw.get("Ref"), str):
                return str(raw["Ref"])
            att = raw.get("Fn::GetAtt")
            if isinstance(att, list) and att and isinstance(att[0], str):
                return att[0]
        return None

    # --- the walk -------------------------------------------------------------------------

    def read_all(self) -> None:
        """Read every resource into the builder or a note."""
        for logical_id, resource in list(self.resources.items()):
            condition = resource.get("Condition")
            if isinstance(condition, str):
                where = f"Resources.{logical_id}.Condition"
                if not self.r.condition(condition, where):
                    self.b.note(
                        logical_id,
                        "info",
                        resource["Type"],
                        f"skipped: condition {condition} is false",
                    )
                    del self.resources[logical_id]
        self._each(self.of_type(*FUNCTION_TYPES), self.read_function)
        with guard("Resources (the WebSocket API)", self.b.source):
            self.read_api()
        rules = self.of_type("AWS::Events::Rule", "AWS::Scheduler::Schedule")
        self._each(rules, lambda logical_id: read_rule(self, logical_id))
        mappings = self.of_type("AWS::Lambda::EventSourceMapping")
        self._each(mappings, lambda logical_id: read_mapping(self, logical_id))
        topics = self.of_type("AWS::SNS::Topic", "AWS::SNS::Subscription")
        self._each(topics, lambda logical_id: read_topic(self, logical_id))
        with guard(
            "Resources (tables, queues, topics, buckets, parameters, secrets)", self.b.source
        ):
            read_services(self)
        self._each(self.of_type("AWS::SQS::Queue"), lambda logical_id: read_queue(self, logical_id))
        for logical_id, resource in self.resources.items():
            if logical_id not in self.handled:
                with guard(f"Resources.{logical_id}", self.b.source):
                    self.note_other(logical_id, resource["Type"])

    def _each(self, logical_ids: list[str], read: Callable[[str], None]) -> None:
        for logical_id in logical_ids:
            with guard(f"Resources.{logical_id}", self.b.source):
                read(logical_id)

    # --- functions --------------------------------------------------------------------------

    def read_function(self, logical_id: str) -> None:
        """One function (SAM or plain), with SAM ``Globals`` and ``Events``."""
        self.handled.add(logical_id)
        kind = self.resources[logical_id]["Type"]
        where = f"Resources.{logical_id}.Properties"
        sam = kind == "AWS::Serverless::Function"
        raw = {**self.globals, **self.props(logical_id)} if sam else self.props(logical_id)
        name = self.r.name_of(logical_id)

        def get(prop: str, default: Any = None) -> Any:
            return self.r.resolve(raw[prop], f"{where}.{prop}") if prop in raw else default

        if get("PackageType") == "Image":
            self.b.skipped[name] = "container image"
            self.b.note(logical_id, "unsupported", kind, "container image functions are not run")
            return
        handler = get("Handler")
        code, code_prop = self._code(get, sam, handler, where)
        if code is None:
            self.b.skipped[name] = "code on S3"
            self.b.note(
                logical_id,
                "unsupported",
                kind,
                f"{code_prop} is on S3; point it at the local source directory to run it",
            )
            return
        environment = dict((get("Environment") or {}).get("Variables") or {})
        if sam:
            global_env = self.r.resolve(self.globals.get("Environment") or {}, "Globals.Function")
            environment = {**(global_env.get("Variables") or {}), **environment}
        added = self.b.add_function(
            name,
            resource=logical_id,
            type_=kind,
            where=where,
            handler=handler,
            code=code,
            runtime=get("Runtime"),
            memory=get("MemorySize"),
            timeout=get("Timeout"),
            environment=environment,
            reserved_concurrency=get("ReservedConcurrentExecutions"),
            ephemeral_storage=get("EphemeralStorage"),
        )
        if added:
            self.b.iam[name] = function_iam(self, logical_id, raw, sam)
        if added and get("Layers"):
            self.b.note(
                logical_id, "unsupported", kind, "Layers are not attached (not on sys.path)"
            )
        if sam:
            events = raw.get("Events") or {}
            if not isinstance(events, dict):
                raise self.r.error("must be a mapping", f"{where}.Events")
            for event_name, event in events.items():
                self.read_sam_event(logical_id, name, event_name, event, f"{where}.Events")

    def _code(self, get: Any, sam: bool, handler: Any, where: str) -> tuple[Path | None, str]:
        base = self.b.source.parent
        if sam:
            inline = get("InlineCode")
            if isinstance(inline, str):
                return inline_code_dir(inline, handler), "InlineCode"
            uri = get("CodeUri", ".")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                return base / uri, "CodeUri"
            return None, "CodeUri"
        code = get("Code")
        if isinstance(code, str) and not code.startswith("s3://"):
            return base / code, "Code"
        if isinstance(code, dict) and isinstance(code.get("ZipFile"), str):
            return inline_code_dir(code["ZipFile"], handler), "Code.ZipFile"
        if code is None:
            raise self.r.error("missing Code", where)
        return None, "Code"

    def read_sam_event(
        self, logical_id: str, function: str, event_name: str, event: Any, where: str
    ) -> None:
        """A SAM function event: Schedule/ScheduleV2, SQS, SNS; others are noted."""
        kind = self.resources[logical_id]["Type"]
        where = f"{where}.{event_name}"
        if not isinstance(event, dict):
            raise self.r.error("must be a mapping with Type and Properties", where)
        event_type = event.get("Type")
        raw_props = event.get("Properties") or {}
        if not isinstance(raw_props, dict):
            raise self.r.error("must be a mapping", f"{where}.Properties")
        props = self.r.resolve(raw_props, f"{where}.Properties")
        if event_type in ("Schedule", "ScheduleV2"):
            expression = props.get("Schedule") or props.get("ScheduleExpression")
            state = props.get("State", "ENABLED")
            self.b.add_schedule(
                str(props.get("Name") or f"{logical_id}{event_name}"),
                expression=expression,
                targets=[function],
                input_=props.get("Input"),
                enabled=bool(props.get("Enabled", True)) and state != "DISABLED",
                resource=f"{logical_id}.Events.{event_name}",
                type_=f"{event_type} event",
                where=f"{where}.Properties",
            )
        elif event_type == "SQS":
            queue = self.ref_target(raw_props.get("Queue"))
            name = (
                self.r.name_of(queue) if queue else str(props.get("Queue", "")).rsplit(":", 1)[-1]
            )
            options = self.queue_options(queue)
            if "BatchSize" in props:
                options["batch_size"] = int(props["BatchSize"])
            if "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []):
                options["report_batch_item_failures"] = True
            self.b.add_sqs(
                name, function, options=options, resource=logical_id, type_=kind, where=where
            )
            if queue:
                self.handled.add(queue)
        elif event_type == "SNS":
            topic = str(props.get("Topic", "")).rsplit(":", 1)[-1]
            self.b.add_sns(topic, function, resource=logical_id, type_=kind)
            topic_id = self.ref_target(raw_props.get("Topic"))
            if topic_id:
                self.handled.add(topic_id)
        else:
            self.b.note(
                f"{logical_id}.Events.{event_name}",
                "unsupported",
                f"{event_type} event",
                f"{event_type} events are not emulated (warmline dev serves WebSocket APIs, "
                "schedules, SQS and SNS); invoke the function through the Lambda API instead",
            )

    def queue_options(self, queue: str | None) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if queue and queue in self.resources:
            visibility = self.get(queue, "VisibilityTimeout")
            if visibility is not None:
                options["visibility_timeout"] = float(visibility)
            redrive = self.get(queue, "RedrivePolicy") or {}
            if isinstance(redrive, dict) and "maxReceiveCount" in redrive:
                options["max_receive_count"] = int(redrive["maxReceiveCount"])
        return options

    # --- the WebSocket API --------------------------------------------------------------

    def read_api(self) -> None:
        """The first WebSocket API with its stage, integrations and routes."""
        for logical_id in self.of_type("AWS::ApiGatewayV2::Api"):
            self.handled.add(logical_id)
            protocol = self.get(logical_id, "ProtocolType")
            if protocol != "WEBSOCKET":
                self.b.note(
                    logical_id,
                    "unsupported",
                    "AWS::ApiGatewayV2::Api",
                    f"{protocol} APIs are not emulated (WebSocket APIs are)",
                )
            elif self.api is None:
                self.api = logical_id
            else:
                self.b.note(
                    logical_id,
                    "unsupported",
                    "AWS::ApiGatewayV2::Api",
                    f"only one WebSocket API runs per dev server ({self.api}); "
                    "this one and its routes are not served",
                )
        if self.api is None:
            return
        api_where = f"Resources.{self.api}.Properties.RouteSelectionExpression"
        selection = self.get(self.api, "RouteSelectionExpression", "$request.body.action")
        stages = [s for s in self.of_type("AWS::ApiGatewayV2::Stage") if self._on_api(s)]
        stage, stage_where = "dev", api_where
        if stages:
            stage = self.get(stages[0], "StageName")
            stage_where = f"Resources.{stages[0]}.Properties.StageName"
            for extra in stages[1:]:
                self.b.note(
                    extra,
                    "unsupported",
                    "AWS::ApiGatewayV2::Stage",
                    f"one stage is served: /{stage}",
                )
            self.handled.update(stages)
        else:
            self.b.note(self.api, "info", "AWS::ApiGatewayV2::Api", "no Stage: served under /dev")
        self.b.set_websocket(
            stage=str(stage), selection=str(selection), where=stage_where, selection_where=api_where
        )
        for logical_id in self.of_type("AWS::ApiGatewayV2::Integration"):
            if self._on_api(logical_id):
                with guard(f"Resources.{logical_id}", self.b.source):
                    self.read_integration(logical_id)
        for logical_id in self.of_type("AWS::ApiGatewayV2::Authorizer"):
            if self._on_api(logical_id):
                with guard(f"Resources.{logical_id}", self.b.source):
                    self.read_authorizer(logical_id)
        responses = set()
        for logical_id in self.of_type("AWS::ApiGatewayV2::RouteResponse"):
            if self._on_api(logical_id):
                self.handled.add(logical_id)
                route = self.ref_target(self.props(logical_id).get("RouteId"))
                if route:
                    responses.add(route)
        for logical_id in self.of_type("AWS::ApiGatewayV2::Route"):
            if self._on_api(logical_id):
                with guard(f"Resources.{logical_id}", self.b.source):
                    self.read_route(logical_id, logical_id in responses)

    def _on_api(self, logical_id: str) -> bool:
        return self.ref_target(self.props(logical_id).get("ApiId")) in (self.api, None)

    def read_integration(self, logical_id: str) -> None:
        """Map an integration to the function its ``AWS_PROXY`` URI invokes."""
        self.handled.add(logical_id)
        kind = "AWS::ApiGatewayV2::Integration"
        integration_type = self.get(logical_id, "IntegrationType")
        if integration_type != "AWS_PROXY":
            self.integrations[logical_id] = None
            self.b.note(
                logical_id,
                "unsupported",
                kind,
                f"IntegrationType {integration_type} is not emulated (AWS_PROXY is); "
                "routes using it run nothing",
            )
            return
        uri = self.get(logical_id, "IntegrationUri")
        if uri is None:
            raise self.r.error("missing IntegrationUri", f"Resources.{logical_id}.Properties")
        self.integrations[logical_id] = self.function_of(uri, logical_id, "IntegrationUri")

    def read_authorizer(self, logical_id: str) -> None:
        """A Lambda REQUEST authorizer (docs/protocols.md §8.6), named by its logical id."""
        self.handled.add(logical_id)
        kind = "AWS::ApiGatewayV2::Authorizer"
        where = f"Resources.{logical_id}.Properties"
        authorizer_type = self.get(logical_id, "AuthorizerType")
        if authorizer_type != "REQUEST":
            self.b.note(
                logical_id,
                "unsupported",
                kind,
                f"AuthorizerType {authorizer_type} is not a WebSocket authorizer (REQUEST is)",
            )
            return
        uri = self.get(logical_id, "AuthorizerUri")
        if uri is None:
            self.b.note(logical_id, "unsupported", kind, "no AuthorizerUri: nothing to run")
            return
        function = self.function_of(uri, logical_id, "AuthorizerUri")
        sources = self.get(logical_id, "IdentitySource") or []
        if isinstance(sources, str):
            sources = [s.strip() for s in sources.split(",") if s.strip()]
        if not isinstance(sources, list) or not all(isinstance(v, str) for v in sources):
            raise self.r.error("must be a list of strings", f"{where}.IdentitySource")
        if function is not None and self.b.add_authorizer(
            logical_id, function, sources, resource=logical_id, type_=kind
        ):
            self.authorizer_ids.add(logical_id)

    def _authorization(self, logical_id: str, where: str) -> tuple[str, str | None]:
        """A route's AuthorizationType and the logical id of its authorizer, if CUSTOM."""
        authorization = str(self.get(logical_id, "AuthorizationType", "NONE")).upper()
        if authorization not in ("NONE", "AWS_IAM", "CUSTOM"):
            raise self.r.error(
                f"AuthorizationType {authorization} is not one of NONE, AWS_IAM, CUSTOM "
                "(JWT is for HTTP APIs)",
                f"{where}.AuthorizationType",
            )
        if authorization != "CUSTOM":
            return authorization, None
        target = self.ref_target(self.props(logical_id).get("AuthorizerId"))
        if target is None or self.resources.get(target, {}).get("Type") != (
            "AWS::ApiGatewayV2::Authorizer"
        ):
            raise self.r.error(
                "AuthorizationType CUSTOM needs an AuthorizerId that refers to an "
                "AWS::ApiGatewayV2::Authorizer of this template",
                f"{where}.AuthorizerId",
            )
        return authorization, target

    def read_route(self, logical_id: str, has_response: bool) -> None:
        """One route: its key, integration, authorizer and route response."""
        self.handled.add(logical_id)
        kind = "AWS::ApiGatewayV2::Route"
        where = f"Resources.{logical_id}.Properties"
        key = self.get(logical_id, "RouteKey")
        if not isinstance(key, str) or not key:
            raise self.r.error("missing RouteKey", where)
        target = self.get(logical_id, "Target")
        match = _INTEGRATION_TARGET_RE.match(str(target or ""))
        if match is None:
            self.b.note(
                logical_id,
                "unsupported",
                kind,
                f"route {key} has no integrations/ Target; it runs nothing",
            )
            return
        integration = match.group(1)
        if integration not in self.integrations:
            raise self.r.error(
                f"Target {target!r}: no Integration {integration!r} on this API", f"{where}.Target"
            )
        function = self.integrations[integration]
        if function is None:
            return
        authorization, authorizer = self._authorization(logical_id, where)
        route_response = (
            has_response or self.get(logical_id, "RouteResponseSelectionExpression") is not None
        )
        self.b.add_route(
            key,
            function,
            route_response=route_response,
            resource=logical_id,
            type_=kind,
            where=where,
            authorization=authorization,
            authorizer=authorizer,
        )

    def note_other(self, logical_id: str, kind: str) -> None:
        """Explain a resource nothing consumed."""
        note_kind, message = explain_resource(kind, self.r.name_of(logical_id))
        self.b.note(logical_id, note_kind, kind, message)
