"""``warmline dev --serverless``: run a Serverless Framework WebSocket service locally.

Reads ``serverless.yml`` unchanged: ``functions.*.events[].websocket`` routes (a route key,
or ``{route, routeResponseSelectionExpression, authorizer}``),
``provider.websocketsApiRouteSelectionExpression``, ``schedule`` events with ``rate`` (one
expression or a list), ``enabled`` and ``input``, ``sqs`` and ``sns`` events,
``provider.environment`` merged under each function's, per-function ``timeout``,
``memorySize``, ``runtime`` and ``reservedConcurrency``, and the variables of
:mod:`warmline.templates.serverless.variables`.

Names follow the framework's defaults (Serverless Framework docs, "Functions"): a function
``hello`` of service ``svc`` on stage ``dev`` is ``svc-dev-hello`` unless it sets ``name``,
so code that reads ``AWS_LAMBDA_FUNCTION_NAME`` or invokes a sibling by name works as
deployed. Defaults are the framework's: ``memorySize`` 1024 MB, ``timeout`` 6 s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warmline.templates.build import StackBuilder
from warmline.templates.cloudformation.document import load_document
from warmline.templates.cloudformation.intrinsics import Resolver, StackContext
from warmline.templates.cloudformation.resource_types import explain_resource
from warmline.templates.cloudformation.services import SERVICE_TYPES, add_resource
from warmline.templates.report import SourceError, Translation, guard
from warmline.templates.serverless.iam import ServiceRoles
from warmline.templates.serverless.variables import Variables

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT_S", "translate_serverless"]

#: The framework's defaults for ``provider.memorySize`` and ``provider.timeout``.
DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT_S = 6
_DEFAULT_SELECTION = "$request.body.action"


def translate_serverless(
    path: Path,
    *,
    options: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    account: str = "123456789012",
) -> Translation:
    """Translate a serverless.yml into a dev config.

    Args:
        path: ``serverless.yml`` (or ``.yaml``/``.json``), or its directory.
        options: CLI options for ``${opt:...}`` (``stage``, ``region``...).
        env: the environment for ``${env:...}`` (default ``os.environ``).
        account: ``${aws:accountId}``.

    Raises:
        SourceError: the file cannot be read or translated (names the key).
    """
    path = Path(path)
    if path.is_dir():
        path = next(
            (
                path / n
                for n in ("serverless.yml", "serverless.yaml", "serverless.json")
                if (path / n).is_file()
            ),
            path / "serverless.yml",
        )
    document = load_document(path)
    variables = Variables(
        document,
        source=path,
        options=dict(options or {}),
        env=dict(os.environ if env is None else env),
        account=account,
    )
    with guard("provider", path):
        stage = str(variables.stage())
        builder = StackBuilder(path, "serverless", region=str(variables.region()), account=account)
        provider = document.get("provider")
        if not isinstance(provider, dict):
            raise SourceError("missing provider section", where="provider", source=path)
        if variables.get("provider.name", "aws") != "aws":
            raise SourceError(
                "only provider.name: aws is supported", where="provider.name", source=path
            )
        service = variables.get("service")
        if isinstance(service, dict):
            service = service.get("name")
        if not isinstance(service, str) or not service:
            raise SourceError("missing service name", where="service", source=path)
        selection = variables.get(
            "provider.websocketsApiRouteSelectionExpression", _DEFAULT_SELECTION
        )
        builder.set_websocket(
            stage=stage,
            selection=str(selection),
            where="provider.stage",
            selection_where="provider.websocketsApiRouteSelectionExpression",
        )
    functions = document.get("functions") or {}
    if not isinstance(functions, dict):
        raise SourceError("must be a mapping", where="functions", source=path)
    with guard("resources.Resources", path):
        resolver = _resolver(document, variables, builder, f"{service}-{stage}")
    roles = ServiceRoles(
        variables,
        document,
        path,
        region=builder.region,
        account=account,
        stack_name=f"{service}-{stage}",
    )
    names = {}
    for key in functions:
        with guard(f"functions.{key}", path):
            name = variables.get(f"functions.{key}.name") or f"{service}-{stage}-{key}"
            names[key] = str(name)
            if _function(builder, variables, resolver, key, names[key], path):
                builder.iam[names[key]] = roles.function_iam(key, names[key])
    consumed: set[str] = set()
    for key in functions:
        events = variables.get(f"functions.{key}.events") or []
        if not isinstance(events, list):
            raise SourceError("must be a list", where=f"functions.{key}.events", source=path)
        for index, event in enumerate(events):
            with guard(f"functions.{key}.events[{index}]", path):
                _event(builder, variables, key, names, index, event, consumed)
    with guard("plugins / resources", path):
        plugins = document.get("plugins")
        if plugins:
            builder.note(
                "plugins", "info", "", f"plugins are not run: {', '.join(map(str, plugins))}"
            )
        resources = (document.get("resources") or {}).get("Resources") or {}
        for logical_id, resource in resources.items():
            if not isinstance(resource, dict):
                continue
            kind = str(resource.get("Type", "?"))
            physical = resolver.name_of(logical_id)
            where = f"resources.Resources.{logical_id}.Properties"
            if kind in SERVICE_TYPES:
                props = resolver.resolve(_resource_props(variables, logical_id), where)
                add_resource(builder, kind, physical, props, logical_id, where)
                continue
            if logical_id in consumed:
                continue
            note_kind, message = explain_resource(kind, physical)
            builder.note(f"resources.Resources.{logical_id}", note_kind, kind, message)
    return builder.build()


def _resolver(
    document: Mapping[str, Any], variables: Variables, builder: StackBuilder, stack_name: str
) -> Resolver:
    """CloudFormation intrinsics over ``resources.Resources`` (``Ref``, ``Fn::GetAtt``...).

    A function's ``environment`` may say ``{Ref: ConnectionsTable}``; the framework hands
    such values to CloudFormation, so they resolve to the names the resources get locally.
    """
    raw = (document.get("resources") or {}).get("Resources") or {}
    resources = {
        logical_id: {
            "Type": str(resource.get("Type", "")),
            "Properties": _resource_props(variables, logical_id),
        }
        for logical_id, resource in raw.items()
        if isinstance(resource, dict)
    }
    return Resolver(
        StackContext(
            resources=resources,
            parameters={},
            conditions={},
            mappings={},
            region=builder.region,
            account=builder.account,
            stack_name=stack_name,
            source=builder.source,
        )
    )


def _function(
    builder: StackBuilder,
    variables: Variables,
    resolver: Resolver,
    key: str,
    name: str,
    path: Path,
) -> bool:
    """Add one function; False when it does not run locally."""
    where = f"functions.{key}"
    fn = variables.get(where)
    if not isinstance(fn, dict):
        raise SourceError("must be a mapping", where=where, source=path)
    if "image" in fn:
        builder.skipped[name] = "container image"
        builder.note(where, "unsupported", "function", "container image functions are not run")
        return False
    artifact = (fn.get("package") or {}).get("artifact")
    code = path.parent / str(artifact) if artifact else path.parent
    environment = resolver.resolve(
        {**(variables.get("provider.environment") or {}), **(fn.get("environment") or {})},
        f"{where}.environment",
    )
    added = builder.add_function(
        name,
        resource=where,
        type_="function",
        where=where,
        handler=fn.get("handler"),
        code=code,
        runtime=fn.get("runtime") or variables.get("provider.runtime"),
        memory=fn.get("memorySize") or variables.get("provider.memorySize", DEFAULT_MEMORY_MB),
        timeout=fn.get("timeout") or variables.get("provider.timeout", DEFAULT_TIMEOUT_S),
        environment=environment,
        reserved_concurrency=fn.get("reservedConcurrency"),
    )
    if fn.get("layers"):
        builder.note(where, "unsupported", "function", "layers are not attached (not on sys.path)")
    return added


def _event(
    builder: StackBuilder,
    variables: Variables,
    key: str,
    names: Mapping[str, str],
    index: int,
    event: Any,
    consumed: set[str],
) -> None:
    where = f"functions.{key}.events[{index}]"
    name = names[key]
    if not isinstance(event, dict) or len(event) != 1:
        raise builder.error("each event must be a mapping with one event type", where)
    ((event_type, spec),) = event.items()
    where = f"{where}.{event_type}"
    if event_type == "websocket":
        if isinstance(spec, str):
            spec = {"route": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("route"), str):
            raise builder.error("needs a route", where)
        authorizer = _authorizer(builder, variables, spec.get("authorizer"), names, where)
        route = spec["route"]
        if route in builder.routes:
            # The framework compiles one route resource per key, so the last one deployed wins.
            builder.note(
                where,
                "info",
                "websocket event",
                f"route {route} is also on {builder.routes[route]['function']}; "
                f"the last one ({name}) serves it, as after a deploy",
            )
            del builder.routes[route]
        builder.add_route(
            route,
            name,
            route_response="routeResponseSelectionExpression" in spec,
            resource=where,
            type_="websocket event",
            where=where,
            authorization="NONE" if authorizer is None else "CUSTOM",
            authorizer=authorizer,
        )
    elif event_type == "schedule":
        _schedule(builder, key, name, index, spec, where)
    elif event_type == "sqs":
        arn = spec.get("arn") if isinstance(spec, dict) else spec
        queue = _logical_or_last(arn)
        consumed.add(queue)
        options: dict[str, Any] = {}
        if isinstance(spec, dict):
            if "batchSize" in spec:
                options["batch_size"] = int(spec["batchSize"])
            if spec.get("functionResponseType") == "ReportBatchItemFailures":
                options["report_batch_item_failures"] = True
        queue_props = _resource_props(variables, queue)
        if "VisibilityTimeout" in queue_props:
            options["visibility_timeout"] = float(queue_props["VisibilityTimeout"])
        builder.add_sqs(
            str(queue_props.get("QueueName") or queue),
            name,
            options=options,
            resource=where,
            type_="sqs event",
            where=where,
        )
    elif event_type == "sns":
        topic = spec.get("topicName") or spec.get("arn") if isinstance(spec, dict) else spec
        topic_name = _logical_or_last(topic)
        consumed.add(topic_name)
        builder.add_sns(topic_name, name, resource=where, type_="sns event")
    else:
        builder.note(
            where,
            "unsupported",
            f"{event_type} event",
            f"{event_type} events are not emulated; invoke {name} through the Lambda API instead",
        )


def _authorizer(
    builder: StackBuilder, variables: Variables, spec: Any, names: Mapping[str, str], where: str
) -> str | None:
    """The authorizer of a ``websocket`` event (``authorizer: auth`` or ``{name|arn,
    identitySource}``), added to the builder; its name, or None when there is none.

    The framework's default identity source is the ``Auth`` header.
    """
    if not spec:
        return None
    where = f"{where}.authorizer"
    if isinstance(spec, str):
        spec = {"arn": spec} if spec.startswith("arn:") else {"name": spec}
    if not isinstance(spec, dict):
        raise builder.error("must be a function name or a mapping with name or arn", where)
    sources = spec.get("identitySource") or ["route.request.header.Auth"]
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, list) or not all(isinstance(v, str) for v in sources):
        raise builder.error("identitySource must be a list of strings", where)
    key = spec.get("name")
    if isinstance(key, str) and key in names:
        function = names[key]
    else:
        arn = str(spec.get("arn") or key or "")
        function = arn.rsplit(":function:", 1)[-1].split(":")[0]
        if function not in builder.functions and function not in builder.skipped:
            builder.note(
                where,
                "unsupported",
                "authorizer",
                f"authorizer {arn!r} is not a function of this service: not run, "
                "every connection is let in",
            )
            return None
    name = f"{where}:{function}"
    if builder.add_authorizer(name, function, sources, resource=where, type_="authorizer"):
        return name
    return None


def _schedule(
    builder: StackBuilder, key: str, name: str, index: int, spec: Any, where: str
) -> None:
    if isinstance(spec, str):
        spec = {"rate": spec}
    if not isinstance(spec, dict):
        raise builder.error("must be an expression or a mapping with rate", where)
    rates = spec.get("rate")
    rates = rates if isinstance(rates, list) else [rates]
    for extra in ("inputPath", "inputTransformer"):
        if extra in spec:
            builder.note(
                where,
                "unsupported",
                "schedule event",
                f"{extra} is not applied; the event is sent as is",
            )
    for n, rate in enumerate(rates):
        base = str(spec.get("name") or f"{key}-schedule-{index + 1}")
        builder.add_schedule(
            base if n == 0 else f"{base}-{n + 1}",
            expression=rate,
            targets=[name],
            input_=spec.get("input"),
            enabled=spec.get("enabled", True) is not False,
            resource=where,
            type_="schedule event",
            where=f"{where}.rate",
        )


def _logical_or_last(value: Any) -> str:
    """The logical id in ``Fn::GetAtt``/``Ref``, or the last part of an ARN/name."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt" and isinstance(arg, list) and arg:
            return str(arg[0])
    return str(value).rsplit(":", 1)[-1]


def _resource_props(variables: Variables, logical_id: str) -> dict[str, Any]:
    try:
        props = variables.get(f"resources.Resources.{logical_id}.Properties") or {}
    except SourceError:  # e.g. an ${ssm:...} a local run does not need
        return {}
    return props if isinstance(props, dict) else {}
