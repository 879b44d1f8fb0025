"""CloudFormation intrinsic functions, resolved for what a local run needs.

A local run needs concrete strings where a function's handler, code, environment, a
route's integration or a schedule's input are written with ``Ref``/``Sub``/``GetAtt``...
So resolution is lazy: the translator asks for the properties it uses, and an intrinsic
it cannot evaluate in a property it never reads (an IAM policy, say) costs nothing.

Values follow the AWS CloudFormation User Guide ("Intrinsic function reference", "Pseudo
parameters reference", each resource type's "Return values"): ``Ref`` to a Lambda function
is its name, to an SQS queue its URL, to an SNS topic its ARN; ``GetAtt Function.Arn`` is
``arn:aws:lambda:REGION:ACCOUNT:function:NAME``. Names of resources that do not exist
locally are their logical ids (or their ``*Name`` property when the template sets one).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmline.config.model import LOCAL_API_ID
from warmline.templates.report import SourceError

__all__ = ["NO_VALUE", "PSEUDO_PARAMETERS", "Resolver", "StackContext"]


class _NoValue:
    """``AWS::NoValue``: removes the property or list item that holds it."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()

PSEUDO_PARAMETERS = (
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
    "AWS::NoValue",
)
#: ``Sub`` placeholders: ``${Name}``, ``${Res.Attr}``; ``${!Literal}`` stays ``${Literal}``.
_SUB_RE = re.compile(r"\$\{([^}]*)\}")
#: Properties whose value is the physical name of a resource, by type.
_NAME_PROPERTIES = {
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Events::Rule": "Name",
    "AWS::ApiGatewayV2::Stage": "StageName",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
}


@dataclass(slots=True)
class StackContext:
    """What intrinsics resolve against.

    Attributes:
        resources: the raw ``Resources`` section.
        parameters: parameter values after defaults and overrides (strings or lists).
        conditions: the raw ``Conditions`` section.
        mappings: the raw ``Mappings`` section.
        region, account, stack_name: the pseudo parameters.
        source: the template, for messages.
        api_id: what ``Ref`` to a WebSocket API gives (the emulator's ``apiId``).
        on_import: called with (name, where) for each ``Fn::ImportValue``.
    """

    resources: Mapping[str, Any]
    parameters: Mapping[str, Any]
    conditions: Mapping[str, Any]
    mappings: Mapping[str, Any]
    region: str
    account: str
    stack_name: str
    source: Path
    api_id: str = LOCAL_API_ID
    on_import: Callable[[str, str], None] | None = None
    names: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Evaluates intrinsic functions in template values.

    Args:
        stack: the context.
    """

    def __init__(self, stack: StackContext) -> None:
        self.stack = stack
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    def error(self, message: str, where: str) -> SourceError:
        """A :class:`SourceError` located in this template."""
        return SourceError(message, where=where, source=self.stack.source)

    # --- names and attributes ----------------------------------------------------------------

    def type_of(self, logical_id: str) -> str:
        """The ``Type`` of a resource ('' if it is not a mapping with a string type)."""
        resource = self.stack.resources.get(logical_id)
        if isinstance(resource, dict) and isinstance(resource.get("Type"), str):
            return str(resource["Type"])
        return ""

    def name_of(self, logical_id: str) -> str:
        """The physical name a resource gets locally (its name property or logical id)."""
        if logical_id in self.stack.names:
            return self.stack.names[logical_id]
        # S3 bucket names are lowercase: a bucket without BucketName is named locally by
        # its logical id in lowercase (CloudFormation generates a lowercase name too).
        name = logical_id.lower() if self.type_of(logical_id) == "AWS::S3::Bucket" else logical_id
        prop = _NAME_PROPERTIES.get(self.type_of(logical_id))
        resource = self.stack.resources.get(logical_id)
        if prop and isinstance(resource, dict):
            props = resource.get("Properties")
            if isinstance(props, dict) and prop in props:
                self.stack.names[logical_id] = logical_id  # guards a self-reference
                value = self.resolve(props[prop], f"Resources.{logical_id}.Properties.{prop}")
                if isinstance(value, str) and value:
                    name = value
        self.stack.names[logical_id] = name
        return name

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.stack.region}:{self.stack.account}:{resource}"

    def ref(self, target: str, where: str) -> Any:
        """``Ref``: a parameter's value, a pseudo parameter or a resource's ``Ref`` value."""
        stack = self.stack
        pseudo = {
            "AWS::Region": stack.region,
            "AWS::AccountId": stack.account,
            "AWS::StackName": stack.stack_name,
            "AWS::StackId": self._arn("cloudformation", f"stack/{stack.stack_name}/local"),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if target in pseudo:
            return pseudo[target]
        if target in stack.parameters:
            return stack.parameters[target]
        if target not in stack.resources:
            raise self.error(f"Ref to {target!r}: no such parameter or resource", where)
        kind = self.type_of(target)
        name = self.name_of(target)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{stack.region}.amazonaws.com/{stack.account}/{name}"
        if kind == "AWS::SNS::Topic":
            return self._arn("sns", name)
        if kind == "AWS::ApiGatewayV2::Api":
            return stack.api_id
        return name

    def get_att(self, target: str, attribute: str, where: str) -> Any:
        """``Fn::GetAtt`` for the attributes a local run reads; others are placeholders."""
        if target not in self.stack.resources:
            raise self.error(f"Fn::GetAtt {target}.{attribute}: no such resource", where)
        kind = self.type_of(target)
        name = self.name_of(target)
        region = self.stack.region
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return self._arn("lambda", f"function:{name}")
        if kind in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            suffix = "/stream/local" if attribute == "StreamArn" else ""
            return self._arn("dynamodb", f"table/{name}{suffix}")
        if kind == "AWS::SQS::Queue":
            if attribute == "QueueName":
                return name
            if attribute == "QueueUrl":
                return self.ref(target, where)
            return self._arn("sqs", name)
        if kind == "AWS::SNS::Topic":
            return name if attribute == "TopicName" else self._arn("sns", name)
        if kind == "AWS::ApiGatewayV2::Api":
            if attribute == "ApiEndpoint":
                return f"wss://{self.stack.api_id}.execute-api.{region}.amazonaws.com"
            return self.stack.api_id
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{self.stack.account}:role/{name}"
        if kind == "AWS::Events::Rule":
            return self._arn("events", f"rule/{name}")
        if attribute == "Arn":
            service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
            return self._arn(service, name)
        return f"{name}.{attribute}"

    # --- conditions ------------------------------------------------------------------------

    def condition(self, name: str, where: str) -> bool:
        """A named condition's value (evaluated once, cycles refused)."""
        if name in self._conditions:
            return self._conditions[name]
        if name not in self.stack.conditions:
            raise self.error(f"no condition named {name!r} in Conditions", where)
        if name in self._evaluating:
            raise self.error(f"condition {name!r} refers to itself", where)
        self._evaluating.add(name)
        try:
            value = self.resolve(self.stack.conditions[name], f"Conditions.{name}")
        finally:
            self._evaluating.discard(name)
        if not isinstance(value, bool):
            raise self.error("a condition must evaluate to true or false", f"Conditions.{name}")
        self._conditions[name] = value
        return value

    # --- evaluation ------------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """``value`` with every intrinsic evaluated and ``AWS::NoValue`` removed.

        Raises:
            SourceError: an unknown function, a bad argument or a dangling reference,
                naming ``where``.
        """
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                if not isinstance(arg, str):
                    raise self.error("Ref takes a name", where)
                return self.ref(arg, where)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg, where)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg, f"{where}.{key}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            resolved = self.resolve(item, f"{where}.{key}")
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out

    def _function(self, name: str, arg: Any, where: str) -> Any:
        handler = getattr(self, f"_fn_{name.lower()}", None)
        if handler is None:
            raise self.error(f"unknown or unsupported intrinsic function Fn::{name}", where)
        result: Any = handler(arg, where)
        return result

    def _list(self, arg: Any, size: int | None, where: str) -> list[Any]:
        if not isinstance(arg, list) or (size is not None and len(arg) != size):
            count = f"{size} " if size is not None else ""
            raise self.error(f"expects a list of {count}arguments, got {arg!r}", where)
        return arg

    def _string(self, value: Any, where: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise self.error(f"expects a string, got {value!r}", where)
        return value

    def _fn_getatt(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        parts = self._list(arg, 2, where)
        target, attribute = (self._string(self.resolve(p, where), where) for p in parts)
        return self.get_att(target, attribute, where)

    def _fn_sub(self, arg: Any, where: str) -> str:
        variables: dict[str, Any] = {}
        if isinstance(arg, list):
            text, raw_vars = self._list(arg, 2, where)
            if not isinstance(raw_vars, dict):
                raise self.error("the second argument must be a mapping of variables", where)
            variables = {k: self.resolve(v, f"{where}.{k}") for k, v in raw_vars.items()}
        else:
            text = arg
        text = self._string(text, where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self._string(variables[name], where)
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self._string(self.get_att(resource, attribute, where), where)
            value = self.ref(name, where)
            if isinstance(value, list):
                return ",".join(self._string(v, where) for v in value)
            return self._string(value, where)

        return _SUB_RE.sub(replace, text)

    def _fn_join(self, arg: Any, where: str) -> str:
        delimiter, items = self._list(arg, 2, where)
        items = self.resolve(items, where)
        if not isinstance(items, list):
            raise self.error("the second argument must be a list", where)
        return self._string(delimiter, where).join(self._string(i, where) for i in items)

    def _fn_select(self, arg: Any, where: str) -> Any:
        index, items = self._list(arg, 2, where)
        index = self.resolve(index, where)
        items = self.resolve(items, where)
        try:
            return items[int(index)]
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise self.error(f"cannot select {index!r} from {items!r}", where) from exc

    def _fn_split(self, arg: Any, where: str) -> list[str]:
        delimiter, text = self._list(arg, 2, where)
        return self._string(self.resolve(text, where), where).split(self._string(delimiter, where))

    def _fn_if(self, arg: Any, where: str) -> Any:
        name, if_true, if_false = self._list(arg, 3, where)
        chosen = if_true if self.condition(self._string(name, where), where) else if_false
        return self.resolve(chosen, where)

    def _bool(self, value: Any, where: str) -> bool:
        value = self.resolve(value, where)
        if not isinstance(value, bool):
            raise self.error(f"expects a condition, got {value!r}", where)
        return value

    def _fn_equals(self, arg: Any, where: str) -> bool:
        left, right = (self.resolve(v, where) for v in self._list(arg, 2, where))
        return bool(self._string(left, where) == self._string(right, where))

    def _fn_not(self, arg: Any, where: str) -> bool:
        return not self._bool(self._list(arg, 1, where)[0], where)

    def _fn_and(self, arg: Any, where: str) -> bool:
        return all(self._bool(v, where) for v in self._list(arg, None, where))

    def _fn_or(self, arg: Any, where: str) -> bool:
        return any(self._bool(v, where) for v in self._list(arg, None, where))

    def _fn_findinmap(self, arg: Any, where: str) -> Any:
        items = self._list(arg, None, where)
        if len(items) not in (3, 4):
            raise self.error("expects [MapName, TopLevelKey, SecondLevelKey]", where)
        keys = [self._string(self.resolve(k, where), where) for k in items[:3]]
        try:
            return self.stack.mappings[keys[0]][keys[1]][keys[2]]
        except (KeyError, TypeError) as exc:
            if len(items) == 4 and isinstance(items[3], dict) and "DefaultValue" in items[3]:
                return self.resolve(items[3]["DefaultValue"], where)
            raise self.error(f"no Mappings entry {'.'.join(keys)}", where) from exc

    def _fn_importvalue(self, arg: Any, where: str) -> str:
        name = self._string(self.resolve(arg, where), where)
        if self.stack.on_import is not None:
            self.stack.on_import(name, where)
        return f"imported-{name}"

    def _fn_base64(self, arg: Any, where: str) -> str:
        text = self._string(self.resolve(arg, where), where)
        return base64.b64encode(text.encode()).decode()

    def _fn_getazs(self, arg: Any, where: str) -> list[str]:
        region = self.resolve(arg, where) or self.stack.region
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_length(self, arg: Any, where: str) -> int:
        value = self.resolve(arg, where)
        if not isinstance(value, list):
            raise self.error("expects a list", where)
        return len(value)

    def _fn_tojsonstring(self, arg: Any, where: str) -> str:
        return json.dumps(self.resolve(arg, where), separators=(",", ":"))
