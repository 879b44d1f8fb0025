"""A function's execution role, read from a SAM or CloudFormation template.

What the emulator evaluates for each function (``warmline.dev.iam``), as AWS would build
the role (docs/protocols.md §8.5):

- ``Role: !GetAtt R.Arn`` naming an ``AWS::IAM::Role`` of the template: its inline
  ``Policies`` (``PolicyDocument``), its ``ManagedPolicyArns`` (an
  ``AWS::IAM::ManagedPolicy`` of the template is read; an AWS managed policy is left for
  the emulator to expand or refuse), and every ``AWS::IAM::Policy`` /
  ``AWS::IAM::ManagedPolicy`` whose ``Roles`` lists it;
- a ``Role`` outside the template (an ARN, a parameter): unknown, so nothing is granted and
  a note says so;
- a SAM function without ``Role``: the role SAM creates, ``AWSLambdaBasicExecutionRole``
  plus ``Policies``: managed policy names or ARNs, policy documents, and SAM policy templates
  (``DynamoDBCrudPolicy: {TableName: !Ref T}``), expanded by aws-sam-translator, the
  library SAM itself uses; an SQS event adds ``AWSLambdaSQSQueueExecutionRole`` as SAM does.

Intrinsics resolve as everywhere else in the reader; a policy that does not resolve becomes
a note and grants nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warmline.config.iam import FunctionIam, PolicyStatement, statements_from_document
from warmline.errors import ConfigurationError
from warmline.templates.report import SourceError

if TYPE_CHECKING:
    from warmline.templates.cloudformation.resources import ResourceReader

__all__ = ["function_iam"]

_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
_SQS = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
_ROLE = "AWS::IAM::Role"
_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


class _Collect:
    def __init__(self, reader: ResourceReader) -> None:
        self.reader = reader
        self.statements: list[PolicyStatement] = []
        self.unexpanded: list[str] = []
        self.notes: list[str] = []

    def document(self, raw: Any, where: str) -> None:
        """Add a raw (unresolved) policy document."""
        try:
            resolved = self.reader.r.resolve(raw, where)
            self.statements.extend(statements_from_document(resolved, where))
        except (SourceError, ConfigurationError) as exc:
            self.notes.append(f"{where} is not read ({exc}): it grants nothing locally")

    def result(self, role_name: str) -> FunctionIam:
        return FunctionIam(
            origin="template",
            role_name=role_name,
            statements=tuple(self.statements),
            unexpanded=tuple(dict.fromkeys(self.unexpanded)),
            notes=tuple(self.notes),
        )


def function_iam(
    reader: ResourceReader, logical_id: str, raw: dict[str, Any], sam: bool
) -> FunctionIam:
    """The role of function ``logical_id`` (``raw``: its properties, SAM globals merged)."""
    collect = _Collect(reader)
    where = f"Resources.{logical_id}.Properties"
    role = raw.get("Role")
    if role is not None:
        target = reader.ref_target(role)
        if target is not None and reader.r.type_of(target) == _ROLE:
            _role(collect, target)
            return collect.result(reader.r.name_of(target))
        shown = reader.r.resolve(role, f"{where}.Role")
        collect.notes.append(
            f"Role {shown} is not a role of this template: its policies are unknown here "
            "and grant nothing locally"
        )
        return collect.result(str(shown).rsplit("/", 1)[-1])
    if not sam:
        return collect.result(f"{logical_id}Role")
    collect.unexpanded.append(_BASIC)
    policies = raw.get("Policies")
    if policies is not None:
        _sam_policies(collect, policies, f"{where}.Policies")
    events = raw.get("Events")
    if isinstance(events, dict) and any(
        isinstance(e, dict) and e.get("Type") == "SQS" for e in events.values()
    ):
        collect.unexpanded.append(_SQS)
    return collect.result(f"{logical_id}Role")


def _role(collect: _Collect, role_id: str) -> None:
    reader = collect.reader
    reader.handled.add(role_id)
    props = reader.props(role_id)
    where = f"Resources.{role_id}.Properties"
    for index, policy in enumerate(props.get("Policies") or []):
        if isinstance(policy, dict) and "PolicyDocument" in policy:
            collect.document(policy["PolicyDocument"], f"{where}.Policies[{index}].PolicyDocument")
    for index, arn in enumerate(props.get("ManagedPolicyArns") or []):
        target = reader.ref_target(arn)
        if target is not None and reader.r.type_of(target) == "AWS::IAM::ManagedPolicy":
            reader.handled.add(target)
            collect.document(
                reader.props(target).get("PolicyDocument"), f"Resources.{target}.Properties"
            )
        else:
            try:
                collect.unexpanded.append(
                    str(reader.r.resolve(arn, f"{where}.ManagedPolicyArns[{index}]"))
                )
            except SourceError as exc:
                collect.notes.append(f"{where}.ManagedPolicyArns[{index}] is not read ({exc})")
    for policy_id in reader.of_type(*_POLICY_TYPES):
        roles = reader.props(policy_id).get("Roles") or []
        if any(reader.ref_target(r) == role_id for r in roles if isinstance(r, dict)):
            reader.handled.add(policy_id)
            collect.document(
                reader.props(policy_id).get("PolicyDocument"),
                f"Resources.{policy_id}.Properties.PolicyDocument",
            )


def _sam_policies(collect: _Collect, raw: Any, where: str) -> None:
    try:
        policies = collect.reader.r.resolve(raw, where)
    except SourceError as exc:
        collect.notes.append(f"{where} is not read ({exc}): it grants nothing locally")
        return
    items = policies if isinstance(policies, list) else [policies]
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if isinstance(item, str):
            collect.unexpanded.append(item)
        elif isinstance(item, dict) and "Statement" in item:
            collect.document(item, at)
        elif isinstance(item, dict) and len(item) == 1:
            ((name, params),) = item.items()
            _policy_template(collect, str(name), params, at)
        else:
            collect.notes.append(f"{at} is not a policy, a policy name or a policy template")


def _policy_template(collect: _Collect, name: str, params: Any, where: str) -> None:
    """Expand a SAM policy template with aws-sam-translator."""
    try:
        from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor
    except ImportError:
        collect.notes.append(
            f"{where}: policy template {name} needs aws-sam-translator (pip install "
            "'warmline[dev]'); it grants nothing locally"
        )
        return
    processor = PolicyTemplatesProcessor(
        PolicyTemplatesProcessor.get_default_policy_templates_json()
    )
    try:
        document = processor.convert(name, params if isinstance(params, dict) else {})
    except Exception as exc:  # the translator's errors share no useful base class
        collect.notes.append(f"{where}: policy template {name}: {exc}; it grants nothing locally")
        return
    collect.document(document, f"{where}.{name}")
