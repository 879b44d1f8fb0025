"""Lambda async invoke over one keep-alive socket, signed with the standard library: no boto3.

Why: the router that hands a turn to a worker runs on the caller's critical path, often on
a cold start. boto3 with a ``lambda`` client costs ~300 ms to import and build in a fresh
interpreter; ``hashlib`` + ``hmac`` + ``http.client`` cost ~60 ms. The HTTP code is now the
``@connections`` client's own (:mod:`warmline.connections.http1`, ``socket`` only, shared
with it, as is the TLS context's cost), which dropped ``http.client``'s ~28 ms
(PROTOCOLS.md §6; figures in ``connections/apigw.py``).

The request is what botocore sends for ``Invoke(InvocationType="Event")`` (checked against
botocore in ``tests/offload/test_offload_lambda_invoke.py``):

* ``POST /2015-03-31/functions/{name}/invocations``, the name (or ARN) percent-encoded with
  nothing but ``-._~`` kept (``:`` -> ``%3A``); the canonical URI encodes it a second time.
* Signed headers ``host;x-amz-date;x-amz-invocation-type;x-amz-security-token`` with service
  ``lambda``; the payload hash is not sent as a header.
* ``202`` means queued (PROTOCOLS.md §3.4); the request id (``x-amzn-RequestId``) is the
  delivery's message id. 429 and 5xx are retried with jittered backoff inside a small
  budget (the router has at most 29 s, §2.5); other statuses raise :class:`DispatchError`.

The endpoint is ``https://lambda.{region}.amazonaws.com`` unless ``endpoint_url`` or
``AWS_ENDPOINT_URL_LAMBDA`` (then ``AWS_ENDPOINT_URL``) says otherwise, as boto3 reads them;
the local emulator serves the same API (``warmline.dev.gateway.invoke_api``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from _thread import allocate_lock
from collections.abc import Callable, Mapping

from warmline.connections.http1 import split_endpoint
from warmline.connections.sigv4 import (
    ALGORITHM,
    Credentials,
    SigV4Signer,
    amz_date,
    canonical_uri,
    quote,
    region_from_environment,
)
from warmline.errors import ConfigurationError, WarmlineError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Any

    from warmline.connections.http1 import Http1Connection

__all__ = [
    "ENDPOINT_ENV",
    "DispatchError",
    "LambdaInvokeDispatcher",
    "sign_request",
]

#: boto3's service-specific endpoint variable for Lambda (the emulator sets it).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_LAMBDA"
_GLOBAL_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
_IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
#: Signing name of the Lambda API.
SERVICE = "lambda"
#: API version prefix of the Invoke operation.
_INVOKE_PATH = "/2015-03-31/functions/{}/invocations"
#: An accepted async invocation (PROTOCOLS.md §3.4).
STATUS_QUEUED = 202
#: Socket timeout of one attempt; queuing an event answers in milliseconds.
DEFAULT_TIMEOUT_S = 3.0
#: How long throttles and 5xx may be retried; well inside the 29 s route limit (§2.5).
DEFAULT_RETRY_BUDGET_S = 2.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 0.5
_USER_AGENT = "warmline/0.1 (stdlib sigv4)"


class DispatchError(WarmlineError):
    """A dispatcher could not queue the work.

    Attributes:
        status: the HTTP status, when there was a response.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def sign_request(
    signer: SigV4Signer,
    method: str,
    host: str,
    wire_path: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    now: float,
) -> dict[str, str]:
    """SigV4 headers for a request without a query string, signing ``headers`` too.

    Generalises :meth:`SigV4Signer.sign` (which signs a fixed set for ``@connections``) to
    any extra headers, as botocore signs every header it sends but ``User-Agent``/``Expect``.

    Args:
        signer: holds region, service and the cached signing key.
        method: the HTTP method.
        host: the ``Host`` header exactly as sent.
        wire_path: the path exactly as sent.
        headers: extra headers to sign (e.g. ``X-Amz-Invocation-Type``).
        body: the request body.
        credentials: the keys to sign with.
        now: wall-clock epoch seconds, read fresh for every attempt.

    Returns:
        ``X-Amz-Date``, ``X-Amz-Security-Token`` (with a token) and ``Authorization``.
    """
    stamp = amz_date(now)
    date = stamp[:8]
    canon: dict[str, str] = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    canon["host"] = host
    canon["x-amz-date"] = stamp
    if credentials.token is not None:
        canon["x-amz-security-token"] = " ".join(credentials.token.split())
    names = sorted(canon)
    signed = ";".join(names)
    canonical = "\n".join(
        (
            method.upper(),
            canonical_uri(wire_path),
            "",
            "".join(f"{name}:{canon[name]}\n" for name in names),
            signed,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{date}/{signer.region}/{signer.service}/aws4_request"
    to_sign = "\n".join(
        (ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
    )
    signature = hmac.new(
        signer.signing_key(credentials.secret_key, date), to_sign.encode("utf-8"), "sha256"
    ).hexdigest()
    out = {"X-Amz-Date": stamp}
    if credentials.token is not None:
        out["X-Amz-Security-Token"] = credentials.token
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return out


class LambdaInvokeDispatcher:
    """A :class:`~warmline.types.Dispatcher` that invokes a function asynchronously.

    One keep-alive socket per dispatcher (reused across warm invocations); a reused socket
    that turns out dead is replaced and the request re-signed and sent once more.

    Args:
        function_name: the worker's name, ``name:alias`` or ARN.
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
            raise ConfigurationError("LambdaInvokeDispatcher needs a function name")
        env = os.environ if environ is None else environ
        resolved = region or region_from_environment(env)
        if not resolved:
            raise ConfigurationError("no region for Lambda invoke: pass region= or AWS_REGION")
        self.function_name = function_name
        self.region: str = resolved
        if endpoint_url is None and env.get(_IGNORE_ENDPOINTS_ENV, "").lower() != "true":
            endpoint_url = env.get(ENDPOINT_ENV) or env.get(_GLOBAL_ENDPOINT_ENV) or None
        self.endpoint = endpoint_url or f"https://lambda.{resolved}.amazonaws.com"
        self._scheme, self._host, self._port, self._host_header, base = split_endpoint(
            self.endpoint, "Lambda"
        )
        self._path = base + _INVOKE_PATH.format(quote(function_name))
        self._credentials = credentials
        self._env = env
        self._signer = SigV4Signer(resolved, SERVICE)
        self._timeout_s = timeout_s
        self._retry_budget_s = retry_budget_s
        self._clock = clock
        self._conn: Http1Connection | None = None
        self._ssl: ssl.SSLContext | None = None
        self._lock = allocate_lock()

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
        if self._credentials is None:
            self._credentials = Credentials.from_environment(self._env)
        with self._lock:
            deadline = time.monotonic() + self._retry_budget_s
            attempt = 0
            while True:
                attempt += 1
                status, request_id, detail = self._exchange(body)
                if status == STATUS_QUEUED:
                    return request_id
                if status not in _RETRY_STATUSES:
                    raise DispatchError(
                        f"Lambda invoke of {self.function_name!r} answered {status}: {detail}",
                        status=status,
                    )
                delay = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2.0 ** (attempt - 1))
                delay *= int.from_bytes(os.urandom(2), "big") / 65536
                if time.monotonic() + delay > deadline:
                    raise DispatchError(
                        f"Lambda invoke of {self.function_name!r} still answered {status} "
                        f"after {attempt} attempts",
                        status=status,
                    )
                time.sleep(delay)

    def close(self) -> None:
        """Close the kept-alive socket."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _exchange(self, body: bytes) -> tuple[int, str, str]:
        from warmline.connections.http1 import ProtocolError, RemoteDisconnected, message

        assert self._credentials is not None
        for resend in (False, True):
            conn = self._connection()
            reused = conn.sock is not None
            headers = {"X-Amz-Invocation-Type": "Event"}
            signed = sign_request(
                self._signer,
                "POST",
                self._host_header,
                self._path,
                headers,
                body,
                self._credentials,
                self._clock(),
            )
            headers.update(signed)
            request = message(
                "POST",
                self._path,
                [("Host", self._host_header), ("User-Agent", _USER_AGENT), *headers.items()],
                body,
            )
            try:
                response = conn.request(request)
            except (ConnectionResetError, BrokenPipeError, RemoteDisconnected) as exc:
                if reused and not resend:
                    continue
                raise DispatchError(f"Lambda invoke failed: {type(exc).__name__}") from exc
            except (OSError, ProtocolError, ValueError) as exc:
                raise DispatchError(f"Lambda invoke failed: {exc!r}") from exc
            request_id = response.headers.get("x-amzn-requestid", "")
            detail = response.headers.get("x-amzn-errortype", "").partition(":")[0]
            return response.status, request_id, f"{detail} {response.body[:200]!r}".strip()
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> Http1Connection:
        from warmline.connections.http1 import CA_BUNDLE_ENV, Http1Connection, client_tls

        if self._conn is None:
            tls = None
            if self._scheme == "https":
                if self._ssl is None:
                    self._ssl = client_tls(self._env.get(CA_BUNDLE_ENV))
                tls = self._ssl
            self._conn = Http1Connection(self._host, self._port, self._timeout_s, tls)
        return self._conn
