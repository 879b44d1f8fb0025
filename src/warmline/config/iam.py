"""IAM policy statements as data: what a function's execution role may do.

The emulator evaluates these (``warmline.dev.iam``); the template readers and the
``warmline.toml`` parser produce them. They live here, below both, because the template
formats may not import the emulator. A statement keeps IAM's own elements
(docs/protocols.md §8.5): ``Effect``, ``Action`` or ``NotAction``, ``Resource`` or
``NotResource``; a ``Condition`` is remembered but not evaluated (the evaluator decides
what that means, conservatively).

In ``warmline.toml`` a function's extra statements are TOML tables with IAM's element names
in lower case (``effect`` defaults to ``Allow``)::

    [functions.worker]
    handler = "worker.handler"

    [[functions.worker.statements]]
    action = "execute-api:ManageConnections"
    resource = "arn:aws:execute-api:*:*:*/*/POST/@connections/*"

    [[functions.worker.statements]]
    effect = "Deny"
    action = ["lambda:InvokeFunction"]
    resource = "*"

Template readers pass IAM policy documents (JSON shape) to :func:`statements_from_document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from warmline.errors import ConfigurationError

__all__ = [
    "Effect",
    "FunctionIam",
    "IamOrigin",
    "PolicyStatement",
    "statements_from_document",
    "statements_from_toml",
]

Effect = Literal["Allow", "Deny"]
#: Where a function's IAM came from: ``config`` (warmline.toml: the deploy plan's
#: least-privilege statements plus the extra ``statements``) or ``template`` (the role the
#: template declares, complete).
IamOrigin = Literal["config", "template"]


@dataclass(frozen=True, slots=True)
class PolicyStatement:
    """One IAM policy statement.

    Exactly one of ``actions``/``not_actions`` and one of ``resources``/``not_resources``
    is non-empty (checked at construction by the parsers below).
    """

    effect: Effect
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    sid: str = ""
    #: the statement has a ``Condition`` (not evaluated locally).
    conditional: bool = False

    def describe(self) -> str:
        """A one-line summary, e.g. ``Allow execute-api:ManageConnections on arn:...``."""
        acts = self.actions or tuple(f"NOT {a}" for a in self.not_actions)
        res = self.resources or tuple(f"NOT {r}" for r in self.not_resources)
        cond = " (with a Condition)" if self.conditional else ""
        return f"{self.effect} {', '.join(acts)} on {', '.join(res)}{cond}"


@dataclass(frozen=True, slots=True)
class FunctionIam:
    """A function's execution role as declared by its source.

    Attributes:
        origin: ``config`` (the plan's statements are added) or ``template``.
        role_name: the role's name (the principal is ``assumed-role/{role_name}/{function}``).
        statements: the role's statements (for ``config``: the extra ones).
        unexpanded: managed policies and policy templates that could not be expanded
            locally; they grant nothing here (see ``warmline.dev.iam``).
        notes: anything else the start-up lines should say about this role.
    """

    origin: IamOrigin = "config"
    role_name: str = ""
    statements: tuple[PolicyStatement, ...] = ()
    unexpanded: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigurationError(f"{where} must be a string or a non-empty list of strings")


def _statement(raw: Mapping[str, Any], where: str, keys: Mapping[str, str]) -> PolicyStatement:
    """Build one statement; ``keys`` maps IAM's element names to the names used in ``raw``."""
    allowed = set(keys.values())
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise ConfigurationError(f"{where}: unknown key {unknown[0]!r}")
    effect = raw.get(keys["Effect"], "Allow")
    if effect not in ("Allow", "Deny"):
        raise ConfigurationError(f"{where}.{keys['Effect']} must be Allow or Deny, got {effect!r}")
    parts: dict[str, tuple[str, ...]] = {}
    for element in ("Action", "NotAction", "Resource", "NotResource"):
        name = keys[element]
        if name in raw:
            parts[element] = _strings(raw[name], f"{where}.{name}")
    for one, other in (("Action", "NotAction"), ("Resource", "NotResource")):
        if (one in parts) == (other in parts):
            raise ConfigurationError(f"{where} needs exactly one of {keys[one]} / {keys[other]}")
    sid = raw.get(keys["Sid"], "")
    return PolicyStatement(
        effect=effect,
        actions=parts.get("Action", ()),
        not_actions=parts.get("NotAction", ()),
        resources=parts.get("Resource", ()),
        not_resources=parts.get("NotResource", ()),
        sid=str(sid),
        conditional=bool(raw.get(keys["Condition"])),
    )


_IAM_KEYS = {
    k: k for k in ("Effect", "Action", "NotAction", "Resource", "NotResource", "Sid", "Condition")
}
_IAM_KEYS_EXTRA = ("Principal", "NotPrincipal")
_TOML_KEYS = {
    "Effect": "effect",
    "Action": "action",
    "NotAction": "not_action",
    "Resource": "resource",
    "NotResource": "not_resource",
    "Sid": "sid",
    "Condition": "condition",
}


def statements_from_document(document: Any, where: str) -> tuple[PolicyStatement, ...]:
    """The statements of an IAM policy document (``{"Version", "Statement": ...}``).

    ``Statement`` may be one statement or a list; a bare list of statements is accepted
    too (SAM ``Policies`` entries are documents).

    Raises:
        ConfigurationError: not a policy document (names ``where``).
    """
    if isinstance(document, Mapping) and "Statement" in document:
        raw = document["Statement"]
        where = f"{where}.Statement"
    else:
        raw = document
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list):
        raise ConfigurationError(f"{where} must be a policy document or a list of statements")
    out = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"{at} must be a mapping")
        body = {k: v for k, v in item.items() if k not in _IAM_KEYS_EXTRA}
        out.append(_statement(body, at, _IAM_KEYS))
    return tuple(out)


def statements_from_toml(value: Any, where: str) -> tuple[PolicyStatement, ...]:
    """The ``statements`` list of a ``warmline.toml`` function (lower-case element names).

    Raises:
        ConfigurationError: naming the bad key.
    """
    if not isinstance(value, list):
        raise ConfigurationError(f"{where} must be a list of tables")
    out = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"{at} must be a table")
        if "condition" in item:
            raise ConfigurationError(
                f"{at}.condition: conditions are not supported in warmline.toml (they could "
                "be neither evaluated locally nor rendered for deploy)"
            )
        out.append(_statement(item, at, _TOML_KEYS))
    return tuple(out)
