"""The Lambda async-invoke dispatcher: hands a turn to the worker function.

A thin :class:`~warmline.types.Dispatcher` over :class:`warmline.aws.lambda_invoke.LambdaClient`
(SigV4-signed ``Invoke`` with ``InvocationType=Event`` over one keep-alive socket, no
boto3): it serialises the payload as compact JSON and reports a refused or failed invoke
as :class:`DispatchError`, the error every dispatcher raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from warmline.aws.lambda_invoke import (
    DEFAULT_RETRY_BUDGET_S,
    DEFAULT_TIMEOUT_S,
    ENDPOINT_ENV,
    InvokeError,
    LambdaClient,
)
from warmline.errors import ServiceError

if TYPE_CHECKING:
    from typing import Any

    from warmline.aws.credentials import Credentials

__all__ = ["ENDPOINT_ENV", "DispatchError", "LambdaInvokeDispatcher"]


class DispatchError(ServiceError):
    """A dispatcher could not queue the work."""


class LambdaInvokeDispatcher:
    """A :class:`~warmline.types.Dispatcher` that invokes a function asynchronously.

    Takes the arguments of :class:`warmline.aws.lambda_invoke.LambdaClient` (the worker's
    name, ``name:alias`` or ARN; region; endpoint; credentials; timeout; retry budget;
    clock; environment), with the same defaults.

    Raises:
        ConfigurationError: no function name, no region, or a malformed endpoint.
    """

    def __init__(
        self,
        function_name: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        credentials: Credentials | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._client = LambdaClient(
            function_name,
            region,
            endpoint_url,
            credentials=credentials,
            timeout_s=timeout_s,
            retry_budget_s=retry_budget_s,
            clock=clock,
            environ=environ,
        )
        self.function_name = function_name
        self.region = self._client.region
        self.endpoint = self._client.endpoint

    def __repr__(self) -> str:
        return f"LambdaInvokeDispatcher({self.function_name!r}, endpoint={self.endpoint!r})"

    def dispatch(self, payload: Mapping[str, Any]) -> str:
        """Queue ``payload`` as one Event invocation of the worker.

        Returns:
            The request id Lambda answered (``x-amzn-RequestId``), ``""`` if none.

        Raises:
            DispatchError: not accepted (status in the message) or the network failed.
        """
        import json

        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            return self._client.invoke_event(body)
        except InvokeError as exc:
            raise DispatchError(str(exc), status=exc.status) from exc

    def close(self) -> None:
        """Close the kept-alive socket."""
        self._client.close()
