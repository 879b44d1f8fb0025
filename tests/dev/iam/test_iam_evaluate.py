"""IAM's matching and evaluation rules, table-driven from the IAM User Guide's examples.

Sources: "IAM JSON policy elements: Action" / "Resource" and "Policy evaluation logic"
(docs/protocols.md §8.5).
"""

from __future__ import annotations

import pytest

from warmline.config.iam import PolicyStatement
from warmline.dev.iam import action_matches, evaluate, resource_matches

ACCOUNT = "123456789012"
POST_ARN = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/prod/POST/@connections/{{connectionId}}"


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("*", "execute-api:ManageConnections", True),
        ("s3:*", "s3:GetObject", True),
        ("iam:*AccessKey*", "iam:CreateAccessKey", True),
        ("iam:*AccessKey*", "iam:ListAccessKeys", True),
        ("iam:*AccessKey*", "iam:ListUsers", False),
        ("S3:getobject", "s3:GetObject", True),  # action names ignore case
        ("execute-api:ManageConnections", "EXECUTE-API:managecONNECTIONS", True),
        ("lambda:Invoke?unction", "lambda:InvokeFunction", True),
        ("lambda:Invoke?unction", "lambda:InvokeFFunction", False),
        ("lambda:InvokeFunction", "lambda:InvokeFunctionUrl", False),
        ("execute-api:Invoke", "execute-api:ManageConnections", False),
    ],
)
def test_action_patterns_match_as_iam_matches_them(
    pattern: str, action: str, matches: bool
) -> None:
    assert action_matches(pattern, action) is matches


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        ("*", POST_ARN, True),
        # IAM guide: all users under a path; "*" spans "/" within a segment.
        (
            f"arn:aws:iam::{ACCOUNT}:user/accounting/*",
            f"arn:aws:iam::{ACCOUNT}:user/accounting/bob",
            True,
        ),
        (
            f"arn:aws:iam::{ACCOUNT}:user/accounting/*",
            f"arn:aws:iam::{ACCOUNT}:user/accounting/managers/alice",
            True,
        ),
        (
            f"arn:aws:iam::{ACCOUNT}:user/accounting/*",
            f"arn:aws:iam::{ACCOUNT}:user/marketing/bob",
            False,
        ),
        (
            "arn:aws:s3:::amzn-s3-demo-bucket/*",
            "arn:aws:s3:::amzn-s3-demo-bucket/folder/file.txt",
            True,
        ),
        # resources are case-sensitive ("the IAM user name is case sensitive").
        (f"arn:aws:iam::{ACCOUNT}:user/Bob", f"arn:aws:iam::{ACCOUNT}:user/bob", False),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-1", True),
        ("arn:aws:s3:::bucket-?", "arn:aws:s3:::bucket-12", False),
        # a "*" inside a segment stays in it; one that ends a segment crosses colons.
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f*x",
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fo:x",
            False,
        ),
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f*x",
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:fox",
            True,
        ),
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:my*",
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:myfn:prod",
            True,
        ),
        (
            f"arn:aws:lambda:*:{ACCOUNT}:function:target",
            f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:target",
            True,
        ),
        # a qualified ARN needs the qualifier or a wildcard (docs/protocols.md §8.5).
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:target",
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:target:live",
            False,
        ),
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:target:*",
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:target:live",
            True,
        ),
        # @connections: the forms templates use.
        (
            f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/prod/POST/@connections/*",
            POST_ARN,
            True,
        ),
        (
            f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/prod/GET/@connections/*",
            POST_ARN,
            False,
        ),
        (f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/*", POST_ARN, True),
        (f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/dev/*", POST_ARN, False),
        ("arn:aws:execute-api:*:*:*/@connections/*", POST_ARN, True),  # serverless' own
        ("arn:aws:execute-api:*:*:*", POST_ARN, True),  # AmazonAPIGatewayInvokeFullAccess
        (f"arn:aws:execute-api:us-east-1:{ACCOUNT}:other/*", POST_ARN, False),
    ],
)
def test_resource_patterns_match_as_iam_matches_them(
    pattern: str, resource: str, matches: bool
) -> None:
    assert resource_matches(pattern, resource) is matches


def _st(effect: str = "Allow", **kw: object) -> PolicyStatement:
    return PolicyStatement(effect, **kw)  # type: ignore[arg-type]


MANAGE = "execute-api:ManageConnections"


def test_an_explicit_deny_beats_every_allow() -> None:
    statements = [
        _st(actions=("execute-api:*",), resources=("*",)),
        _st("Deny", actions=(MANAGE,), resources=("arn:aws:execute-api:*:*:*/*/POST/*",)),
        _st(actions=(MANAGE,), resources=(POST_ARN,)),
    ]
    decision = evaluate(statements, MANAGE, POST_ARN)
    assert decision.outcome == "explicit_deny"
    assert decision.statement is statements[1]
    get_arn = POST_ARN.replace("/POST/", "/GET/")
    assert evaluate(statements, MANAGE, get_arn).allowed


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert evaluate([], MANAGE, POST_ARN).outcome == "implicit_deny"
    only_logs = [_st(actions=("logs:PutLogEvents",), resources=("*",))]
    assert evaluate(only_logs, MANAGE, POST_ARN).outcome == "implicit_deny"


def test_not_action_and_not_resource_invert_their_lists() -> None:
    everything_but_iam = [_st(not_actions=("iam:*",), resources=("*",))]
    assert evaluate(everything_but_iam, MANAGE, POST_ARN).allowed
    assert not evaluate(everything_but_iam, "iam:CreateUser", "*").allowed
    not_prod = [_st(actions=(MANAGE,), not_resources=("arn:aws:execute-api:*:*:*/prod/*",))]
    assert not evaluate(not_prod, MANAGE, POST_ARN).allowed
    assert evaluate(not_prod, MANAGE, POST_ARN.replace("/prod/", "/dev/")).allowed
    deny_all_but_logs = [
        _st(actions=("*",), resources=("*",)),
        _st("Deny", not_actions=("logs:*",), resources=("*",)),
    ]
    assert evaluate(deny_all_but_logs, MANAGE, POST_ARN).outcome == "explicit_deny"
    assert evaluate(deny_all_but_logs, "logs:PutLogEvents", "*").allowed


def test_conditions_are_read_conservatively() -> None:
    conditional_allow = [_st(actions=(MANAGE,), resources=("*",), conditional=True)]
    assert evaluate(conditional_allow, MANAGE, POST_ARN).outcome == "implicit_deny"
    conditional_deny = [
        _st(actions=(MANAGE,), resources=("*",)),
        _st("Deny", actions=(MANAGE,), resources=("*",), conditional=True),
    ]
    assert evaluate(conditional_deny, MANAGE, POST_ARN).outcome == "explicit_deny"
