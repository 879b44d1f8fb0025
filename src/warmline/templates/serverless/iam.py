"""A function's execution role, read from a serverless.yml.

The framework gives every function one shared role unless told otherwise (Serverless
Framework docs, "IAM Permissions For Functions"), holding:

- the log statements it always adds (``logs:CreateLogStream``, ``logs:CreateLogGroup``,
  ``logs:PutLogEvents``);
- ``execute-api:ManageConnections`` on ``arn:aws:execute-api:*:*:*/@connections/*`` when
  the service has a ``websocket`` event (its websockets compiler adds that statement to the
  default role);
- the SQS consumer actions on the function's queue for an ``sqs`` event;
- ``provider.iam.role.statements`` (v3) or ``provider.iamRoleStatements`` (v2), and the
  managed policies of ``provider.iam.role.managedPolicies`` / ``provider.iamManagedPolicies``.

A function's own ``iamRoleStatements`` (the serverless-iam-roles-per-function plugin) give it
a role of its own, with the provider's statements only under ``iamRoleStatementsInherit``.
A custom ``provider.iam.role`` / function ``role`` (an ARN or a resource name) is not read:
nothing is granted and a note says so. Statements resolve through the framework's variables
and CloudFormation intrinsics; one that does not resolve becomes a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from warmline.config.iam import FunctionIam, PolicyStatement, statements_from_document
from warmline.errors import ConfigurationError
from warmline.templates.cloudformation.intrinsics import Resolver, StackContext
from warmline.templates.report import SourceError

if TYPE_CHECKING:
    from warmline.templates.serverless.variables import Variables

__all__ = ["ServiceRoles"]

_LOGS = PolicyStatement(
    "Allow",
    actions=("logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents"),
    resources=("*",),
    sid="ServerlessLogs",
)
_WEBSOCKETS = PolicyStatement(
    "Allow",
    actions=("execute-api:ManageConnections",),
    resources=("arn:aws:execute-api:*:*:*/@connections/*",),
    sid="ServerlessWebsockets",
)
_SQS = PolicyStatement(
    "Allow",
    actions=("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
    resources=("*",),
    sid="ServerlessSqs",
)


class ServiceRoles:
    """The roles of one service's functions.

    Args:
        variables: the service's variables (resolves ``${...}``).
        document: the raw service document.
        source: the serverless.yml.
        region, account, stack_name: for intrinsics.
    """

    def __init__(
        self,
        variables: Variables,
        document: dict[str, Any],
        source: Path,
        *,
        region: str,
        account: str,
        stack_name: str,
    ) -> None:
        self.v = variables
        self.source = source
        section = document.get("resources")
        raw = section.get("Resources") if isinstance(section, dict) else None
        # Properties with the framework's variables resolved (a table's
        # ``${self:service}-...`` name), as the stack's reader resolves them.
        resources = {
            logical_id: {
                "Type": str(resource.get("Type", "")),
                "Properties": self._properties(logical_id),
            }
            for logical_id, resource in (raw.items() if isinstance(raw, dict) else ())
            if isinstance(resource, dict)
        }
        self.resolver = Resolver(
            StackContext(
                resources=resources,
                parameters={},
                conditions={},
                mappings={},
                region=region,
                account=account,
                stack_name=stack_name,
                source=source,
            )
        )
        functions = document.get("functions")
        self.websockets = any(
            isinstance(e, dict) and "websocket" in e
            for fn in (functions.values() if isinstance(functions, dict) else [])
            if isinstance(fn, dict) and isinstance(fn.get("events"), list)
            for e in fn["events"]
        )
        self.notes: list[str] = []
        self.provider = self._statements(
            self._first("provider.iam.role.statements", "provider.iamRoleStatements"),
            "provider.iam.role.statements",
        )
        managed = self._first("provider.iam.role.managedPolicies", "provider.iamManagedPolicies")
        self.managed = tuple(str(m) for m in managed) if isinstance(managed, list) else ()
        custom = self._get("provider.iam.role")
        self.custom_role = custom if isinstance(custom, str) else self._get("provider.role")

    def _properties(self, logical_id: str) -> dict[str, Any]:
        try:
            props = self.v.get(f"resources.Resources.{logical_id}.Properties") or {}
        except SourceError:  # e.g. an ${ssm:...} a local run does not need
            return {}
        return props if isinstance(props, dict) else {}

    def _get(self, path: str) -> Any:
        try:
            return self.v.get(path)
        except SourceError as exc:
            self.notes.append(f"{path} is not read ({exc})")
            return None

    def _first(self, *paths: str) -> Any:
        for path in paths:
            value = self._get(path)
            if value:
                return value
        return None

    def _statements(self, raw: Any, where: str) -> tuple[PolicyStatement, ...]:
        out: list[PolicyStatement] = []
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            at = f"{where}[{index}]"
            try:
                resolved = self.resolver.resolve(item, at)
                out.extend(statements_from_document([resolved], at))
            except (SourceError, ConfigurationError) as exc:
                self.notes.append(f"{at} is not read ({exc}): it grants nothing locally")
        return tuple(out)

    def function_iam(self, key: str, name: str) -> FunctionIam:
        """The role of ``functions.{key}`` (deployed as ``name``)."""
        where = f"functions.{key}"
        own_role = self._get(f"{where}.role") or self.custom_role
        if own_role:
            return FunctionIam(
                "template",
                str(own_role).rsplit("/", 1)[-1],
                notes=(
                    f"role {own_role} is not read: its policies are unknown here and grant "
                    "nothing locally",
                ),
            )
        events = self._get(f"{where}.events")
        sqs = isinstance(events, list) and any(isinstance(e, dict) and "sqs" in e for e in events)
        base = [_LOGS, *([_SQS] if sqs else []), *([_WEBSOCKETS] if self.websockets else [])]
        own = self._get(f"{where}.iamRoleStatements")
        if own is not None:
            statements = [*base, *self._statements(own, f"{where}.iamRoleStatements")]
            if self._get(f"{where}.iamRoleStatementsInherit"):
                statements.extend(self.provider)
            role = f"{name}-role"
        else:
            statements = [*base, *self.provider]
            role = "IamRoleLambdaExecution"
        notes = tuple(self.notes)
        self.notes = []
        return FunctionIam("template", role, tuple(statements), self.managed, notes)
