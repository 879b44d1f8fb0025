"""A function's execution role, read from a Terraform module.

For ``aws_lambda_function.F`` whose ``role`` refers to ``aws_iam_role.R`` (docs/protocols.md
§8.5), the statements are those of:

- ``R``'s ``inline_policy`` blocks and every ``aws_iam_role_policy`` whose ``role`` refers
  to ``R`` (``policy`` as ``jsonencode({...})``, a JSON string or heredoc, or
  ``data.aws_iam_policy_document.D.json``, whose ``statement`` blocks are read: ``effect``,
  ``actions``/``not_actions``, ``resources``/``not_resources``, ``condition``);
- every ``aws_iam_role_policy_attachment`` of ``R``: an ``aws_iam_policy`` of the module is
  read, an AWS managed policy ARN is left to the emulator; ``R``'s ``managed_policy_arns``
  likewise.

A ``role`` that is not an ``aws_iam_role`` of the module is unknown: nothing is granted and
a note says so. A policy that does not evaluate becomes a note and grants nothing.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from warmline.config.iam import FunctionIam, PolicyStatement, statements_from_document
from warmline.errors import ConfigurationError
from warmline.templates.report import SourceError

if TYPE_CHECKING:
    from warmline.templates.terraform.module import TerraformModule

__all__ = ["HANDLED_TYPES", "function_iam"]

#: The resource types read here (the translator does not note them when a role uses them).
HANDLED_TYPES = ("aws_iam_role", "aws_iam_role_policy", "aws_iam_role_policy_attachment")
_ROLE_RE = re.compile(r"aws_iam_role\.([A-Za-z0-9_\-]+)")
_POLICY_RE = re.compile(r"aws_iam_policy\.([A-Za-z0-9_\-]+)")
_DOCUMENT_RE = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_\-]+)\.json\}$")


class _Reader:
    def __init__(self, module: TerraformModule, handled: set[tuple[str, str]]) -> None:
        self.m = module
        self.handled = handled
        self.statements: list[PolicyStatement] = []
        self.unexpanded: list[str] = []
        self.notes: list[str] = []

    def policy(self, raw: Any, where: str) -> None:
        """Add the statements of a raw ``policy`` argument."""
        try:
            match = _DOCUMENT_RE.match(raw) if isinstance(raw, str) else None
            if match is not None:
                self.statements.extend(self.document_source(match.group(1)))
                return
            value = self.m.eval(raw, where)
            document = json.loads(value) if isinstance(value, str) else value
            self.statements.extend(statements_from_document(document, where))
        except (SourceError, ConfigurationError, ValueError) as exc:
            self.notes.append(f"{where} is not read ({exc}): it grants nothing locally")

    def document_source(self, name: str) -> list[PolicyStatement]:
        """The statements of ``data.aws_iam_policy_document.NAME``."""
        where = f"data.aws_iam_policy_document.{name}"
        body = self.m.data.get(("aws_iam_policy_document", name))
        if body is None:
            raise SourceError("no such data source", where=where, source=self.m.dir)
        out: list[PolicyStatement] = []
        for index, block in enumerate(body.get("statement") or []):
            at = f"{where}.statement[{index}]"
            raw: dict[str, Any] = {}
            for key, element in (
                ("sid", "Sid"),
                ("effect", "Effect"),
                ("actions", "Action"),
                ("not_actions", "NotAction"),
                ("resources", "Resource"),
                ("not_resources", "NotResource"),
            ):
                if key in block:
                    raw[element] = self.m.eval(block[key], f"{at}.{key}")
            if block.get("condition"):
                raw["Condition"] = {"local": "not evaluated"}
            out.extend(statements_from_document([raw], at))
        return out

    def attachment(self, raw_arn: Any, where: str) -> None:
        match = _POLICY_RE.search(str(raw_arn))
        if match is not None and ("aws_iam_policy", match.group(1)) in self.m.resources:
            name = match.group(1)
            self.handled.add(("aws_iam_policy", name))
            body = self.m.resources[("aws_iam_policy", name)]
            self.policy(body.get("policy"), f"aws_iam_policy.{name}.policy")
            return
        try:
            self.unexpanded.append(str(self.m.eval(raw_arn, where)))
        except SourceError as exc:
            self.notes.append(f"{where} is not read ({exc})")


def _refers_to(raw: Any, role: str) -> bool:
    match = _ROLE_RE.search(str(raw))
    return match is not None and match.group(1) == role


def function_iam(
    module: TerraformModule, function: str, handled: set[tuple[str, str]]
) -> FunctionIam:
    """The role of ``aws_lambda_function.{function}``; marks what it read in ``handled``."""
    reader = _Reader(module, handled)
    raw_role = module.resources[("aws_lambda_function", function)].get("role")
    match = _ROLE_RE.search(str(raw_role))
    if match is None or ("aws_iam_role", match.group(1)) not in module.resources:
        reader.notes.append(
            f"role {raw_role} is not an aws_iam_role of this module: its policies are unknown "
            "here and grant nothing locally"
        )
        return FunctionIam(
            "template", str(raw_role).rsplit("/", 1)[-1], (), (), tuple(reader.notes)
        )
    role = match.group(1)
    handled.add(("aws_iam_role", role))
    body = module.resources[("aws_iam_role", role)]
    for index, inline in enumerate(body.get("inline_policy") or []):
        if isinstance(inline, dict) and "policy" in inline:
            reader.policy(inline["policy"], f"aws_iam_role.{role}.inline_policy[{index}].policy")
    for index, arn in enumerate(body.get("managed_policy_arns") or []):
        reader.attachment(arn, f"aws_iam_role.{role}.managed_policy_arns[{index}]")
    for (kind, name), resource in module.resources.items():
        if not _refers_to(resource.get("role"), role):
            continue
        if kind == "aws_iam_role_policy":
            handled.add((kind, name))
            reader.policy(resource.get("policy"), f"{kind}.{name}.policy")
        elif kind == "aws_iam_role_policy_attachment":
            handled.add((kind, name))
            reader.attachment(resource.get("policy_arn"), f"{kind}.{name}.policy_arn")
    return FunctionIam(
        origin="template",
        role_name=module.name_of("aws_iam_role", role),
        statements=tuple(reader.statements),
        unexpanded=tuple(dict.fromkeys(reader.unexpanded)),
        notes=tuple(reader.notes),
    )
