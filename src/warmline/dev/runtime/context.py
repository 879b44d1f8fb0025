"""The ``context`` object a handler receives, as Lambda's Python runtime builds it.

Field names and types follow docs/protocols.md §3.7 and the AWS Python runtime interface client:
``memory_limit_in_mb`` is the *string* from ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` (int-like,
as on AWS), ``identity`` always exists with ``None`` fields when there is no Cognito
identity, ``client_context`` is ``None`` unless the invoker sent one, and the remaining time
is computed from an epoch deadline in milliseconds, never negative.

Runs inside the environment process, so standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

__all__ = ["Client", "ClientContext", "CognitoIdentity", "LambdaContext"]


class CognitoIdentity:
    """``context.identity``: the Cognito identity of a mobile-SDK caller, if any."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity_id: str | None = None, pool_id: str | None = None) -> None:
        self.cognito_identity_id = identity_id
        self.cognito_identity_pool_id = pool_id

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id}, "
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    """``context.client_context.client``: the calling app, as the mobile SDK reports it."""

    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    """``context.client_context``: what the invoker sent as ``ClientContext``.

    serverless-plugin-warmup sends ``{"custom": ...}`` here (docs/protocols.md §4.4).
    """

    __slots__ = ("client", "custom", "env")

    def __init__(self, data: Mapping[str, Any]) -> None:
        client = data.get("client")
        self.client = Client(client) if isinstance(client, Mapping) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


class LambdaContext:
    """The second argument of every handler (docs/protocols.md §3.7)."""

    __slots__ = (
        "_deadline_ms",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
    )

    def __init__(
        self,
        *,
        aws_request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        function_name: str,
        function_version: str,
        memory_limit_in_mb: str,
        log_group_name: str,
        log_stream_name: str,
        client_context: Mapping[str, Any] | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self._deadline_ms = deadline_ms
        self.invoked_function_arn = invoked_function_arn
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity = CognitoIdentity()
        self.client_context = ClientContext(client_context) if client_context else None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function timeout kills this invocation."""
        return max(self._deadline_ms - int(round(time.time() * 1000)), 0)

    def log(self, msg: str) -> None:
        """Write ``msg`` to the function's log, like the AWS runtime's ``context.log``."""
        import sys

        sys.stdout.write(msg)
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )
