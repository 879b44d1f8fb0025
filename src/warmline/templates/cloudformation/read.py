"""``warmline dev --template``: run a SAM or plain CloudFormation WebSocket stack locally.

AWS SAM CLI cannot run WebSocket APIs locally (its long-standing most requested feature),
and AWS's own WebSocket chat sample is a SAM template with ``AWS::ApiGatewayV2`` resources.
This module reads such a template unchanged and produces the emulator's config:

- ``AWS::ApiGatewayV2::Api`` (``ProtocolType: WEBSOCKET``), ``Route``, ``Integration``
  (``AWS_PROXY`` URIs resolved to the function), ``RouteResponse``, ``Stage``;
- ``AWS::Serverless::Function`` / ``AWS::Lambda::Function`` with ``Globals``, and SAM
  events of type ``Schedule``/``ScheduleV2``/``SQS``/``SNS``;
- ``AWS::Events::Rule`` and ``AWS::Scheduler::Schedule`` schedules with constant ``Input``,
  ``AWS::Lambda::EventSourceMapping`` from SQS, ``AWS::SNS::Topic`` subscriptions.

Everything else becomes a :class:`~warmline.templates.report.Note` (see
:mod:`warmline.templates.cloudformation.resources`), never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from warmline.templates.build import StackBuilder
from warmline.templates.cloudformation.document import load_document
from warmline.templates.cloudformation.intrinsics import Resolver, StackContext
from warmline.templates.cloudformation.parameters import parse_overrides, resolve_parameters
from warmline.templates.cloudformation.resources import ResourceReader
from warmline.templates.report import SourceError, Translation

__all__ = ["SAM_TRANSFORM", "translate_template"]

#: The transform that makes a template a SAM template.
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
_STACK_NAME_RE = re.compile(r"[^A-Za-z0-9-]")


def translate_template(
    path: Path,
    *,
    parameter_overrides: Mapping[str, str] | Iterable[str] | None = None,
    region: str = "us-east-1",
    account: str = "123456789012",
    stack_name: str | None = None,
) -> Translation:
    """Translate a SAM/CloudFormation template (YAML or JSON) into a dev config.

    Args:
        path: the template file.
        parameter_overrides: ``{"Key": "Value"}`` or SAM CLI strings (``"A=1 B=2"``).
        region, account: ``AWS::Region`` / ``AWS::AccountId`` (and the config's).
        stack_name: ``AWS::StackName`` (default: the template directory's name).

    Returns:
        The config and the notes about what does not run.

    Raises:
        SourceError: the template cannot be read or translated (names resource/property).
    """
    path = Path(path)
    document = load_document(path)
    transform = document.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    fmt = "sam" if SAM_TRANSFORM in transforms else "cloudformation"
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise SourceError("missing or empty Resources section", where="Resources", source=path)
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise SourceError(
                "must be a mapping with a string Type", where=f"Resources.{logical_id}", source=path
            )
        if "Properties" in resource and not isinstance(resource["Properties"], dict):
            raise SourceError(
                "must be a mapping", where=f"Resources.{logical_id}.Properties", source=path
            )
    if parameter_overrides is None:
        overrides: Mapping[str, str] = {}
    elif isinstance(parameter_overrides, Mapping):
        overrides = parameter_overrides
    else:
        overrides = parse_overrides(parameter_overrides, source=path)
    parameters = resolve_parameters(document.get("Parameters"), overrides, source=path)
    builder = StackBuilder(path, fmt, region=region, account=account)

    def on_import(name: str, where: str) -> None:
        builder.note(
            where,
            "unsupported",
            "Fn::ImportValue",
            f"cross-stack export {name!r} cannot be read locally; it resolves to 'imported-{name}'",
        )

    stack = StackContext(
        resources=resources,
        parameters=parameters,
        conditions=_section(document, "Conditions", path),
        mappings=_section(document, "Mappings", path),
        region=region,
        account=account,
        stack_name=stack_name or _STACK_NAME_RE.sub("-", path.resolve().parent.name) or "local",
        source=path,
        on_import=on_import,
    )
    resolver = Resolver(stack)
    globals_ = _section(document, "Globals", path)
    function_globals = globals_.get("Function", {})
    if not isinstance(function_globals, dict):
        raise SourceError("must be a mapping", where="Globals.Function", source=path)
    reader = ResourceReader(resolver, builder, function_globals)
    reader.read_all()
    return builder.build()


def _section(document: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = document.get(key) or {}
    if not isinstance(value, dict):
        raise SourceError("must be a mapping", where=key, source=path)
    return value
