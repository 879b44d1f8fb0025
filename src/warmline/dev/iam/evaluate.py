"""IAM policy evaluation for one principal's identity-based statements.

The rules are IAM's (docs/protocols.md §8.5; [policy evaluation logic]
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)):

1. A statement applies when its action part and its resource part both match: ``Action``
   lists a matching pattern (``NotAction``: lists none), and ``Resource`` lists a matching
   pattern (``NotResource``: lists none).
2. Any applicable ``Deny`` decides: explicit deny, whatever allows it elsewhere.
3. Otherwise any applicable ``Allow`` decides: allowed.
4. Otherwise: implicit deny.

Matching ([Action](https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html),
[Resource](https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html)):
``*`` is any run of characters and ``?`` any one character, in both. Action names compare
without regard to case (``S3:GetObject`` is ``s3:getobject``); resources compare with it.
In a resource ARN a wildcard stays inside its colon-separated segment, except a ``*`` that
ends a segment, which "can expand to match beyond the colon boundaries"; within a segment
it spans ``/`` (``.../prod/*`` matches ``.../prod/POST/@connections/x``).

Statements with a ``Condition`` cannot be evaluated here (no request context): the
conservative reading is taken, so that what works locally works on AWS: a conditional
``Allow`` never applies, a conditional ``Deny`` always does. Start-up lines say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from warmline.config.iam import PolicyStatement

__all__ = ["Decision", "action_matches", "evaluate", "resource_matches"]

Outcome = Literal["allowed", "explicit_deny", "implicit_deny"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What IAM decided for one (action, resource).

    Attributes:
        outcome: ``allowed``, ``explicit_deny`` or ``implicit_deny``.
        statement: the statement that decided (None for an implicit deny).
    """

    outcome: Outcome
    statement: PolicyStatement | None = None

    @property
    def allowed(self) -> bool:
        """Whether the request may proceed."""
        return self.outcome == "allowed"


_action_patterns: dict[str, re.Pattern[str]] = {}
_resource_patterns: dict[str, re.Pattern[str]] = {}


def _action_regex(pattern: str) -> re.Pattern[str]:
    compiled = _action_patterns.get(pattern)
    if compiled is None:
        body = "".join(
            ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()
        )
        compiled = re.compile(body, re.DOTALL)
        if len(_action_patterns) < 4096:
            _action_patterns[pattern] = compiled
    return compiled


def _resource_regex(pattern: str) -> re.Pattern[str]:
    compiled = _resource_patterns.get(pattern)
    if compiled is None:
        out = []
        for index, char in enumerate(pattern):
            if char == "*":
                ends_segment = index + 1 == len(pattern) or pattern[index + 1] == ":"
                out.append(".*" if ends_segment else "[^:]*")
            elif char == "?":
                out.append("[^:]")
            else:
                out.append(re.escape(char))
        compiled = re.compile("".join(out), re.DOTALL)
        if len(_resource_patterns) < 4096:
            _resource_patterns[pattern] = compiled
    return compiled


def action_matches(pattern: str, action: str) -> bool:
    """Whether an ``Action`` pattern matches ``action`` (case-insensitive, ``*``/``?``)."""
    return _action_regex(pattern).fullmatch(action.lower()) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """Whether a ``Resource`` pattern matches ``resource`` (case-sensitive ARN matching)."""
    if pattern == "*":
        return True
    return _resource_regex(pattern).fullmatch(resource) is not None


def _applies(st: PolicyStatement, action: str, resource: str) -> bool:
    if st.actions:
        if not any(action_matches(p, action) for p in st.actions):
            return False
    elif any(action_matches(p, action) for p in st.not_actions):
        return False
    if st.resources:
        return any(resource_matches(p, resource) for p in st.resources)
    return not any(resource_matches(p, resource) for p in st.not_resources)


def evaluate(statements: Iterable[PolicyStatement], action: str, resource: str) -> Decision:
    """IAM's decision for a request by a principal holding ``statements``.

    Args:
        statements: the principal's identity-based statements.
        action: e.g. ``execute-api:ManageConnections``.
        resource: the request's resource ARN.
    """
    allow: PolicyStatement | None = None
    for st in statements:
        if st.effect == "Deny":
            if _applies(st, action, resource):
                return Decision("explicit_deny", st)
        elif allow is None and not st.conditional and _applies(st, action, resource):
            allow = st
    if allow is not None:
        return Decision("allowed", allow)
    return Decision("implicit_deny")
