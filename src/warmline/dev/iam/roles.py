"""Each function's execution role, resolved to concrete statements for the evaluator.

Where a function's statements come from:

- **warmline.toml** (``FunctionConfig.iam`` None or of origin ``config``): the statements
  ``warmline deploy render`` grants it (:func:`warmline.templates.plan.function_statements`,
  with the ``[deploy]`` table when the file has one), spelled as the ARNs the emulator
  serves, plus the function's own ``statements``. Local == deployed.
- **a template** (origin ``template``): the role the template declares, as its reader
  collected it (SAM ``Policies`` with policy templates expanded, ``AWS::IAM::Role``
  inline policies, ``AWS::IAM::Policy``, Terraform ``aws_iam_role_policy`` and policy
  documents, a serverless.yml's ``iam.role.statements``).

AWS managed policies have no local copy. The few a Lambda role commonly attaches are
expanded from :data:`MANAGED_POLICIES` (their published statements; for the broad
``*FullAccess`` policies only the service's own actions); any other grants **nothing**
locally, and a start-up line says so: a local run then fails where the deployed function
might not, which is the safe direction (add the statements the code relies on, or run
``warmline dev --no-iam``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from warmline.config.iam import PolicyStatement

if TYPE_CHECKING:
    from warmline.config import DevConfig, FunctionConfig
    from warmline.config.deploy import DeploySettings
    from warmline.templates.plan import Ref

__all__ = ["MANAGED_POLICIES", "Role", "managed_policy_name", "resolve_roles"]


def _allow(*actions: str, resource: str = "*") -> PolicyStatement:
    return PolicyStatement("Allow", actions=actions, resources=(resource,))


_LOGS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
#: AWS managed policies expanded locally, by name (AWS Managed Policy Reference Guide).
MANAGED_POLICIES: dict[str, tuple[PolicyStatement, ...]] = {
    "AWSLambdaBasicExecutionRole": (_allow(*_LOGS),),
    "AWSLambdaRole": (_allow("lambda:InvokeFunction"),),
    "AWSLambdaSQSQueueExecutionRole": (
        _allow("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS),
    ),
    "AWSLambdaDynamoDBExecutionRole": (
        _allow(
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
            *_LOGS,
        ),
    ),
    "AmazonAPIGatewayInvokeFullAccess": (
        _allow(
            "execute-api:Invoke",
            "execute-api:ManageConnections",
            resource="arn:aws:execute-api:*:*:*",
        ),
    ),
    "AmazonDynamoDBFullAccess": (_allow("dynamodb:*"),),
    "AmazonSQSFullAccess": (_allow("sqs:*"),),
    "AmazonSNSFullAccess": (_allow("sns:*"),),
    "AmazonS3FullAccess": (_allow("s3:*", "s3-object-lambda:*"),),
    "AWSLambda_FullAccess": (_allow("lambda:*"),),
    "AdministratorAccess": (_allow("*"),),
}


def managed_policy_name(arn: str) -> str:
    """``AWSLambdaBasicExecutionRole`` from ``arn:aws:iam::aws:policy/service-role/...``."""
    return arn.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Role:
    """A function's principal as the evaluator sees it.

    Attributes:
        role_name: the role's name.
        statements: every statement it holds, ARNs concrete.
        notes: start-up lines about what could not be taken over exactly.
    """

    role_name: str
    statements: tuple[PolicyStatement, ...]
    notes: tuple[str, ...] = ()


def _arn(ref: Ref, config: DevConfig, stack: str) -> str:
    """The ARN of one of the plan's abstract resources, as this emulator names it."""
    region, account = config.region, config.account
    kind, name = ref
    prefix = f"arn:aws:{{}}:{region}:{account}:"
    if kind == "log_group":
        return prefix.format("logs") + f"log-group:/aws/lambda/{name}:*"
    if kind == "connections":
        ws = config.websocket
        return prefix.format("execute-api") + f"{ws.api_id}/{ws.stage}/{name}/@connections/*"
    if kind == "table":
        return prefix.format("dynamodb") + f"table/{stack}-sessions"
    if kind == "queue":
        return prefix.format("sqs") + name
    if kind == "topic":
        return prefix.format("sns") + name
    if kind == "function":
        return prefix.format("lambda") + f"function:{name}"
    if kind == "function_versions":
        return prefix.format("lambda") + f"function:{name}:*"
    if kind == "ssm":
        return prefix.format("ssm") + f"parameter/{name.lstrip('/')}"
    if kind == "secret":
        return prefix.format("secretsmanager") + f"secret:{name}-??????"
    return name  # kms, arn: already an ARN


def _from_config(
    fn: FunctionConfig, config: DevConfig, granted: tuple[object, ...], stack: str
) -> Role:
    from warmline.templates.plan import Statement

    own = fn.iam.statements if fn.iam is not None else ()
    statements = []
    for st in granted[: len(granted) - len(own)]:  # the function's own come last
        assert isinstance(st, Statement)
        resources = tuple(_arn(ref, config, stack) for ref in st.resources)
        statements.append(
            PolicyStatement(
                "Allow" if st.effect == "Allow" else "Deny",
                actions=st.actions,
                resources=resources,
                sid=st.sid,
                conditional=bool(st.via_service),
            )
        )
    return Role(f"{fn.name}-role", (*statements, *own))


def _from_template(fn: FunctionConfig) -> Role:
    assert fn.iam is not None
    statements = list(fn.iam.statements)
    notes = list(fn.iam.notes)
    for name in fn.iam.unexpanded:
        known = MANAGED_POLICIES.get(managed_policy_name(name))
        if known is not None:
            statements.extend(known)
        else:
            notes.append(
                f"{name} is not expanded locally: it grants nothing here (declare the "
                "statements you rely on, or run with --no-iam)"
            )
    if any(st.conditional for st in statements):
        notes.append(
            "statements with a Condition are not evaluated: a conditional Allow grants "
            "nothing locally, a conditional Deny always denies"
        )
    return Role(fn.iam.role_name or f"{fn.name}-role", tuple(statements), tuple(notes))


def resolve_roles(config: DevConfig, deploy: DeploySettings | None = None) -> dict[str, Role]:
    """Every function's role.

    Args:
        config: what runs.
        deploy: the ``[deploy]`` table of the same file (None: read from ``config.source``
            when that is a ``warmline.toml``/``pyproject.toml``, else the defaults).
    """
    from warmline.config.deploy import Project
    from warmline.templates.plan import function_statements

    settings = deploy if deploy is not None else _deploy_settings(config)
    base = config.source.parent if config.source is not None else Path.cwd()
    project = Project(config, settings, base)
    granted: Mapping[str, tuple[object, ...]] = function_statements(project)
    roles = {}
    for name, fn in config.functions.items():
        if fn.iam is not None and fn.iam.origin == "template":
            roles[name] = _from_template(fn)
        else:
            roles[name] = _from_config(fn, config, granted[name], settings.stack_name)
    return roles


def _deploy_settings(config: DevConfig) -> DeploySettings:
    """The ``[deploy]`` table beside the config, or the defaults (none, or unreadable: the
    deploy command reports its errors; the emulator still runs)."""
    from warmline.config.deploy import DeploySettings, load_project
    from warmline.errors import ConfigurationError

    source = config.source
    if source is not None and source.suffix == ".toml" and source.is_file():
        try:
            return load_project(source).deploy
        except ConfigurationError:
            pass
    return DeploySettings()
