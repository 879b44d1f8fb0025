"""Lambda ``Invoke``: ``InvocationType=Event`` (queue an asynchronous invocation), and
``RequestResponse`` (wait for the result: lambda-warmer's last fan-out invoke).

Used on the caller's critical path, often on a cold start: the router that hands a turn to
a worker (:class:`warmline.offload.lambda_invoke.LambdaInvokeDispatcher`) and the call-tied
pre-warm (:mod:`warmline.twilio.prewarm`). boto3 with a ``lambda`` client costs an order of
magnitude more to import and build than this module with :mod:`warmline.aws`.

The request is what botocore sends for ``Invoke(InvocationType="Event")`` (checked against
botocore in ``tests/aws/test_lambda_invoke.py``):

* ``POST /2015-03-31/functions/{name}/invocations``, the name (or ARN) percent-encoded with
  nothing but ``-._~`` kept (``:`` -> ``%3A``); the canonical URI encodes it a second time.
* Signed headers ``host;x-amz-date;x-amz-invocation-type;x-amz-security-token`` with service
  ``lambda``; the payload hash is not sent as a header.
* ``202`` means queued (docs/protocols.md §3.4); the request id (``x-amzn-RequestId``) is the
  delivery's message id. 429 and 5xx are retried with jittered backoff inside a small
  budget (the router has at most 29 s, §2.5); other statuses raise :class:`InvokeError`.

The endpoint is ``https://lambda.{region}.amazonaws.com`` unless ``endpoint_url`` or
``AWS_ENDPOINT_URL_LAMBDA`` (then ``AWS_ENDPOINT_URL``) says otherwise, as boto3 reads them;
the local emulator serves the same API (``warmline.dev.gateway.invoke_api``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from warmline.aws.client import AwsClient, RetryPolicy
from warmline.aws.credentials import endpoint_from_environment, region_from_environment
from warmline.aws.sigv4 import SigV4Signer, quote
from warmline.errors import ConfigurationError, ServiceError

if TYPE_CHECKING:
    from warmline.aws.credentials import Credentials
    from warmline.http1 import Response

__all__ = [
    "ENDPOINT_ENV",
    "SERVICE",
    "STATUS_OK",
    "STATUS_QUEUED",
    "InvokeError",
    "LambdaClient",
]

#: boto3's service-specific endpoint variable for Lambda (the emulator sets it).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_LAMBDA"
#: Signing name of the Lambda API.
SERVICE = "lambda"
#: API version prefix of the Invoke operation.
_INVOKE_PATH = "/2015-03-31/functions/{}/invocations"
#: An accepted async invocation (docs/protocols.md §3.4).
STATUS_QUEUED = 202
#: Socket timeout of one attempt; queuing an event answers in milliseconds.
DEFAULT_TIMEOUT_S = 3.0
#: How long throttles and 5xx may be retried; well inside the 29 s route limit (§2.5).
DEFAULT_RETRY_BUDGET_S = 2.0
_BACKOFF_CAP_S = 0.5
_EVENT = {"X-Amz-Invocation-Type": "Event"}
_REQUEST_RESPONSE = {"X-Amz-Invocation-Type": "RequestResponse"}
#: A synchronous invocation that ran (the function may still have failed: see
#: ``X-Amz-Function-Error``).
STATUS_OK = 200


class InvokeError(ServiceError):
    """Lambda did not queue the invocation."""


class LambdaClient:
    """Queues asynchronous invocations of one function over one keep-alive socket.

    Args:
        function_name: the function's name, ``name:alias`` or ARN.
        region: the function's region (default ``AWS_REGION``).
        endpoint_url: overrides the endpoint (default ``AWS_ENDPOINT_URL_LAMBDA``, then
            ``AWS_ENDPOINT_URL``, then ``https://lambda.{region}.amazonaws.com``).
        credentials: default: read from the environment on first use.
        timeout_s: socket timeout of one attempt.
        retry_budget_s: time allowed for retrying 429/5xx.
        clock: wall-clock epoch seconds for ``X-Amz-Date``.
        environ: the environment to read (default ``os.environ``).

    Raises:
        ConfigurationError: no function name, no region, or a malformed endpoint.
    """

    __slots__ = ("function_name", "region", "endpoint", "_client", "_path")

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
        if not function_name:
            raise ConfigurationError("a Lambda invoke needs a function name")
        env = os.environ if environ is None else environ
        resolved = region or region_from_environment(env)
        if not resolved:
            raise ConfigurationError("no region for Lambda invoke: pass region= or AWS_REGION")
        self.function_name = function_name
        self.region: str = resolved
        self.endpoint = (
            endpoint_url
            or endpoint_from_environment(ENDPOINT_ENV, env)
            or f"https://lambda.{resolved}.amazonaws.com"
        )
        self._client = AwsClient(
            self.endpoint,
            SigV4Signer(resolved, SERVICE),
            what="Lambda",
            retry=RetryPolicy(retry_budget_s, cap_s=_BACKOFF_CAP_S),
            credentials=credentials,
            environ=env,
            timeout_s=timeout_s,
            clock=clock,
        )
        self._path = self._client.base_path + _INVOKE_PATH.format(quote(function_name))

    def __repr__(self) -> str:
        return f"LambdaClient({self.function_name!r}, endpoint={self.endpoint!r})"

    def invoke_event(self, body: bytes) -> str:
        """Queue ``body`` (the event, as JSON) as one asynchronous invocation.

        Returns:
            The request id Lambda answered (``x-amzn-RequestId``), ``""`` if none.

        Raises:
            InvokeError: not accepted (status in the message) or the network failed.
            ConfigurationError: no credentials.
        """
        response = self._invoke(body, _EVENT, STATUS_QUEUED)
        return response.headers.get("x-amzn-requestid", "")

    def invoke_sync(self, body: bytes) -> bytes:
        """Invoke with ``body`` and wait for the function's result (``RequestResponse``).

        Returns:
            The function's response payload.

        Raises:
            InvokeError: not invoked, or the function failed (``X-Amz-Function-Error``).
            ConfigurationError: no credentials.
        """
        response = self._invoke(body, _REQUEST_RESPONSE, STATUS_OK)
        error = response.headers.get("x-amz-function-error", "")
        if error:
            raise InvokeError(
                f"{self.function_name!r} failed ({error}): {response.body[:200]!r}",
                status=STATUS_OK,
            )
        return response.body

    def _invoke(self, body: bytes, headers: Mapping[str, str], expected: int) -> Response:
        try:
            response, attempts = self._client.request("POST", self._path, body, headers)
        except ConfigurationError:
            raise
        except (OSError, ValueError) as exc:
            raise InvokeError(f"Lambda invoke failed: {exc!r}") from exc
        status = response.status
        if status == expected:
            return response
        if response.error:  # closed without an answer
            raise InvokeError(f"Lambda invoke failed: {response.error}")
        if status in self._client.retry.statuses:
            raise InvokeError(
                f"Lambda invoke of {self.function_name!r} still answered {status} "
                f"after {attempts} attempts",
                status=status,
            )
        kind = response.headers.get("x-amzn-errortype", "").partition(":")[0]
        detail = f"{kind} {response.body[:200]!r}".strip()
        raise InvokeError(
            f"Lambda invoke of {self.function_name!r} answered {status}: {detail}",
            status=status,
        )

    def warm(self) -> None:
        """Import the socket code and build the TLS context now (a warm-up ping)."""
        self._client.warm()

    def close(self) -> None:
        """Close the kept-alive socket."""
        self._client.close()
