"""``Iam``: the emulator's account: its principals, their keys, and the checks.

One object per ``DevServer``. Endpoints that AWS protects with SigV4 and IAM
(``@connections``, the Lambda Invoke API, and the local AWS services) call
:meth:`Iam.verify` with the request as received, then :meth:`Iam.authorize` with the
action and resource ARN the request needs; both raise nothing and cost a few µs on the warm
path (the derived signing key and each decision are cached)::

    iam = Iam(config)
    principal = iam.verify(method="POST", path=..., query="", headers=..., body=b"",
                           service="execute-api")          # raises SignatureRejected
    decision = iam.authorize(principal, "execute-api:ManageConnections", arn)
    if not decision.allowed:
        message = iam.denial_message(principal, action, arn, decision, service="execute-api")

``enforce=False`` (``warmline dev --no-iam``) skips the policy evaluation only: AWS checks
every signature whatever the policies say, and so does the emulator.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from warmline.dev.iam.evaluate import Decision, evaluate
from warmline.dev.iam.principals import Principal, developer_principal, function_principal
from warmline.dev.iam.roles import Role, resolve_roles
from warmline.dev.iam.verify import verify

if TYPE_CHECKING:
    from collections.abc import Iterable

    from warmline.aws.credentials import Credentials
    from warmline.config import DevConfig
    from warmline.config.deploy import DeploySettings

__all__ = ["Iam", "connections_resource", "function_resource"]

_ALLOWED = Decision("allowed")
#: Decisions kept per principal; the resources are few (the @connections ARN uses the
#: route's ``{connectionId}``, not each id), so this rarely fills.
_MAX_DECISIONS = 1024


def connections_resource(config: DevConfig, method: str) -> str:
    """The resource a ``@connections`` request is authorized on.

    API Gateway authorizes the route, not the connection: its denials name
    ``.../{stage}/{METHOD}/@connections/{connectionId}`` with the braces as they stand
    (docs/protocols.md §8.5), so a policy matches that text.
    """
    ws = config.websocket
    return (
        f"arn:aws:execute-api:{config.region}:{config.account}:"
        f"{ws.api_id}/{ws.stage}/{method}/@connections/{{connectionId}}"
    )


def function_resource(config: DevConfig, name: str, qualifier: str | None = None) -> str:
    """A function's ARN as ``lambda:InvokeFunction`` sees it (with its qualifier, if any)."""
    arn = f"arn:aws:lambda:{config.region}:{config.account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


class Iam:
    """The emulated account's identities and checks.

    Args:
        config: the functions and their roles.
        enforce: evaluate policies (False: ``--no-iam``, every signed request is allowed).
        deploy: the ``[deploy]`` table (None: read beside ``config.source``).
        developer: the developer's keys (None: fresh random ones).
    """

    def __init__(
        self,
        config: DevConfig,
        *,
        enforce: bool = True,
        deploy: DeploySettings | None = None,
        developer: Credentials | None = None,
    ) -> None:
        self.config = config
        self.enforce = enforce
        self.roles: dict[str, Role] = resolve_roles(config, deploy)
        self.functions: dict[str, Principal] = {
            name: function_principal(name, role.role_name, config.account, role.statements)
            for name, role in self.roles.items()
        }
        self.developer = developer_principal(config.account, developer)
        self.by_key: dict[str, Principal] = {
            p.credentials.access_key: p for p in (*self.functions.values(), self.developer)
        }
        self._decisions: dict[tuple[str, str, str], Decision] = {}

    def verify(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        service: str,
        now: float | None = None,
    ) -> Principal:
        """The principal that signed the request (see :func:`warmline.dev.iam.verify.verify`).

        Raises:
            SignatureRejected: not authentic.
        """
        return verify(
            self.by_key,
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            region=self.config.region,
            service=service,
            now=time.time() if now is None else now,
        )

    def authorize(self, principal: Principal, action: str, resource: str) -> Decision:
        """IAM's decision for ``principal`` doing ``action`` on ``resource``."""
        if not self.enforce:
            return _ALLOWED
        key = (principal.credentials.access_key, action, resource)
        decision = self._decisions.get(key)
        if decision is None:
            decision = evaluate(principal.statements, action, resource)
            if len(self._decisions) >= _MAX_DECISIONS:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    @staticmethod
    def denial_message(
        principal: Principal, action: str, resource: str, decision: Decision, *, service: str
    ) -> str:
        """AWS's ``AccessDeniedException`` message for a denied request.

        API Gateway masks the account in the resource (``********1234``) and names no
        reason for an implicit deny; Lambda says which kind of policy decided [obs].
        """
        shown = resource
        if service == "execute-api":
            parts = resource.split(":", 5)
            if len(parts) == 6 and len(parts[4]) > 4:
                parts[4] = "*" * (len(parts[4]) - 4) + parts[4][-4:]
                shown = ":".join(parts)
        text = f"User: {principal.arn} is not authorized to perform: {action} on resource: {shown}"
        if decision.outcome == "explicit_deny":
            return text + " with an explicit deny in an identity-based policy"
        if service == "lambda":
            return text + f" because no identity-based policy allows the {action} action"
        return text

    def function_environment(self, name: str) -> dict[str, str]:
        """The credential variables of function ``name``'s environments."""
        return self.functions[name].environment()

    def startup_lines(self) -> list[str]:
        """One line per function naming what it may do (and what is not evaluated)."""
        lines = []
        for name, role in self.roles.items():
            grants = [st.describe() for st in role.statements] or ["nothing (no statements)"]
            lines.append(f"iam {name} (role {role.role_name}) may:")
            lines.extend(f"  {grant}" for grant in grants)
            lines.extend(f"  note: {note}" for note in role.notes)
        if not self.enforce:
            lines.append("iam: --no-iam: policies are not evaluated (signatures still are)")
        return lines
