"""Who may call the emulator's AWS endpoints, and with which keys.

On Lambda every function runs with its execution role's temporary credentials in
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``
(docs/protocols.md §8.2): an ``ASIA...`` key id, a secret and a session token, and its
requests are made as ``arn:aws:sts::{account}:assumed-role/{role}/{function}``. The
emulator issues the same per function at start, random each run, so keys copied from one
function (or one run) do not work for another.

Callers that are not functions (tests, the developer's boto3 in a shell) use the
*developer* principal: long-term ``AKIA...`` keys (no session token), also random per run,
printed at start and held by ``DevServer.developer_credentials``. The developer is the
account's administrator: everything is allowed to it, as with an admin's keys on AWS.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from warmline.aws.credentials import Credentials
from warmline.config.iam import PolicyStatement

__all__ = [
    "DEVELOPER_NAME",
    "Principal",
    "developer_principal",
    "function_principal",
    "issue_credentials",
]

#: The developer principal's user name (``arn:aws:iam::{account}:user/{name}``).
DEVELOPER_NAME = "warmline-developer"
#: Access key id alphabet and length: ``AKIA``/``ASIA`` + 16 of ``A-Z2-7`` [obs].
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_KEY_TAIL = 16
#: Secret access keys are 40 characters of base64's alphabet [obs].
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SECRET_LENGTH = 40
#: STS session tokens start with this (base64 of a version header) and run to hundreds of
#: characters [obs]; the emulator's are shorter, as nothing reads their contents.
_TOKEN_PREFIX = "IQoJb3JpZ2luX2Vj"
_ADMIN = (PolicyStatement("Allow", actions=("*",), resources=("*",), sid="Developer"),)


@dataclass(frozen=True, slots=True)
class Principal:
    """An identity with keys and identity-based statements.

    Attributes:
        name: the function's name, or :data:`DEVELOPER_NAME`.
        arn: the caller ARN AWS names in an ``AccessDeniedException``.
        credentials: its keys (a session token for functions, none for the developer).
        statements: what its policies say.
        function: the function it runs as, or None for the developer.
    """

    name: str
    arn: str
    credentials: Credentials
    statements: tuple[PolicyStatement, ...]
    function: str | None = None

    def environment(self) -> dict[str, str]:
        """The three variables Lambda sets from the execution role's credentials."""
        creds = self.credentials
        env = {"AWS_ACCESS_KEY_ID": creds.access_key, "AWS_SECRET_ACCESS_KEY": creds.secret_key}
        if creds.token is not None:
            env["AWS_SESSION_TOKEN"] = creds.token
        return env


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def issue_credentials(*, temporary: bool) -> Credentials:
    """Fresh random keys: ``ASIA...`` with a session token, or ``AKIA...`` without."""
    prefix = "ASIA" if temporary else "AKIA"
    access_key = prefix + _random(_KEY_ALPHABET, _KEY_TAIL)
    secret = _random(_SECRET_ALPHABET, _SECRET_LENGTH)
    token = _TOKEN_PREFIX + secrets.token_urlsafe(96) if temporary else None
    return Credentials(access_key, secret, token)


def function_principal(
    function: str, role_name: str, account: str, statements: tuple[PolicyStatement, ...]
) -> Principal:
    """A function's execution role, with fresh temporary credentials."""
    arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{function}"
    return Principal(function, arn, issue_credentials(temporary=True), statements, function)


def developer_principal(account: str, credentials: Credentials | None = None) -> Principal:
    """The developer's principal (everything allowed), with fresh long-term keys."""
    creds = credentials if credentials is not None else issue_credentials(temporary=False)
    arn = f"arn:aws:iam::{account}:user/{DEVELOPER_NAME}"
    return Principal(DEVELOPER_NAME, arn, creds, _ADMIN)
