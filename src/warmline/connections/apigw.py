"""The ``@connections`` management API, signed and sent by :mod:`warmline.aws` (no boto3).

Why not boto3: boto3 and an ``apigatewaymanagementapi`` client cost an order of magnitude
more to import and build than the whole warmline hot path (docs/protocols.md §6,
``bench/import_cost.py``), and a post through boto3 costs several times the CPU. On a voice
call every token goes through here.

Behaviour (docs/protocols.md §2.4, §6), on :class:`warmline.aws.client.AwsClient`:

* One keep-alive connection per client, reused across the invocations of a warm Lambda
  environment (:meth:`ApiGatewayConnections.for_request` hands out one shared client per
  endpoint); a reused socket that turns out dead is replaced and the request re-signed and
  sent once more (see :mod:`warmline.aws.client` for the trade this makes).
* A fresh socket that the peer closes or resets without an answer is retried like a 5xx
  (backoff, within the retry budget), as botocore retries ``ConnectionClosedError``. The
  same trade again: a peer that acted before resetting gets the token twice, but the
  alternative is failing the whole turn mid-answer, and a doubled word is less harm to a
  caller than half an answer and an error. (``warmline dev --fault connections.drop``
  resets before delivering; tests/reliability/test_fault_injection_connections.py.)
* 200/204 succeed; 410 raises :class:`ConnectionGoneError` at once (the caller hung up);
  413 :class:`PayloadTooLargeError` (bodies over ``MAX_POST_BYTES`` are refused before
  sending); 403 :class:`ForbiddenError`; 429 and 5xx are retried with exponential backoff and
  full jitter while the retry budget lasts, then :class:`ThrottledError`. Every attempt is
  signed again, with a fresh ``X-Amz-Date``.
* Other network failures (refused, timed out, TLS errors) raise :class:`ConnectionsError`
  without a retry: a timed-out post may well be in the peer's hands still.

Imports: the signer and the client are small and imported at module top; ``socket`` is
imported on the first request (or by :meth:`~ApiGatewayConnections.warm`), and an ``ssl``
context (with the CA bundle) is built only for an ``https`` endpoint. Neither ``hashlib``
nor ``http.client`` is ever loaded (tests/connections/test_apigw.py checks both).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from warmline.aws.client import NO_ANSWER, RETRY_STATUSES, AwsClient, RetryPolicy
from warmline.aws.credentials import (
    Credentials,
    endpoint_from_environment,
    region_from_environment,
)
from warmline.aws.sigv4 import SigV4Signer, quote
from warmline.core.limits import MAX_POST_BYTES
from warmline.errors import (
    ConfigurationError,
    ConnectionGoneError,
    ConnectionsError,
    ForbiddenError,
    LocalProtocolError,
    PayloadTooLargeError,
    ThrottledError,
)
from warmline.http1 import split_endpoint
from warmline.types import ConnectionInfo

if TYPE_CHECKING:
    import ssl

    from warmline.http1 import Response

__all__ = ["ENDPOINT_ENV", "SERVICE", "ApiGatewayConnections", "Credentials", "connection_path"]

#: boto3's service-specific endpoint variable; the full base URL including the stage. The
#: local emulator sets it (e.g. ``http://127.0.0.1:3001/dev``).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
#: The signing name of API Gateway's management API (docs/protocols.md §2.4, §6).
SERVICE = "execute-api"
#: Socket timeout of one attempt (connect, send, read). A post answers in milliseconds.
DEFAULT_TIMEOUT_S = 5.0
#: Time allowed for retrying 429/5xx; well under the 29 s integration timeout (§2.5).
DEFAULT_RETRY_BUDGET_S = 3.0
#: Backoff before retry n: uniform(0, min(CAP, BASE * 2**(n-1))) ("full jitter").
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0
#: A socket idle longer than this is reopened rather than trusted: after a freeze a peer
#: may have dropped it without a FIN [inf; API Gateway's keep-alive timeout is unpublished].
DEFAULT_MAX_IDLE_S = 60.0
#: Statuses worth retrying: LimitExceededException (rate or client buffer full), 5xx (§2.4)
#: and a fresh socket closed without an answer.
_RETRY_STATUSES = RETRY_STATUSES | {NO_ANSWER}
_MAX_SHARED = 8  # clients kept by ApiGatewayConnections.for_request (one per endpoint)


def connection_path(base_path: str, connection_id: str) -> str:
    """The wire path of ``/@connections/{id}`` under ``base_path`` (docs/protocols.md §2.4, §6).

    The id is percent-encoded once with only ``-._~`` (and letters, digits) left as they
    are, UTF-8 first. ``urllib.parse.quote``'s default ``safe='/'`` is wrong here: ids may
    contain ``/``.

    Args:
        base_path: the endpoint's path, e.g. ``/prod`` or ``""`` (no trailing slash).
        connection_id: the raw connection id, e.g. ``R1kmxc2VNjMCFIA=``.

    Returns:
        e.g. ``/prod/@connections/R1kmxc2VNjMCFIA%3D``.
    """
    return f"{base_path}/@connections/{quote(connection_id)}"


class ApiGatewayConnections:
    """A :class:`~warmline.types.ConnectionClient` for API Gateway's ``@connections`` API.

    Not safe to share between processes; calls from several threads are serialised.

    Args:
        endpoint: ``https://{domainName}/{stage}``, a custom domain with its base path, or a
            local emulator such as ``http://127.0.0.1:3001/dev``.
        credentials: the keys to sign with (default: read from the environment now).
        region: the signing region (default: taken from an ``execute-api`` host name, else
            ``AWS_REGION`` / ``AWS_DEFAULT_REGION``). The API's own region must sign, which
            need not be the function's.
        timeout_s: socket timeout of one attempt.
        retry_budget_s: how long 429/5xx answers may be retried before ThrottledError.
        max_idle_s: reopen a kept-alive socket idle for longer than this.
        clock: wall-clock epoch seconds, read for every ``X-Amz-Date``.
        monotonic: seconds for the retry budget and idle time.
        sleep: waits between retries.
        ssl_context: TLS settings for https (default: system CAs, or ``AWS_CA_BUNDLE``).
        log: a step logger (:class:`warmline.log.StepLogger`) told about retries and
            reconnects; it gets statuses and counts, never headers or bodies.
        environ: the environment to read (default ``os.environ``).

    Raises:
        ConfigurationError: a malformed endpoint, no region, or no credentials.
    """

    __slots__ = ("endpoint", "region", "_client")

    _shared: ClassVar[dict[tuple[str, Credentials, str | None], ApiGatewayConnections]] = {}

    def __init__(
        self,
        endpoint: str,
        *,
        credentials: Credentials | None = None,
        region: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
        max_idle_s: float = DEFAULT_MAX_IDLE_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: ssl.SSLContext | None = None,
        log: Callable[..., object] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        scheme, host, _port, host_header, base_path = split_endpoint(endpoint, "@connections")
        resolved = region or _region_from_host(host) or region_from_environment(env)
        if not resolved:
            raise ConfigurationError(
                f"no region to sign @connections requests to {scheme}://{host_header}"
                f"{base_path}: pass region= or set AWS_REGION"
            )
        credentials = credentials or Credentials.from_environment(env)
        if any(c in (credentials.token or "") for c in "\r\n"):
            raise ConfigurationError("the AWS session token holds a line break")
        self.region: str = resolved
        self._client = AwsClient(
            endpoint,
            SigV4Signer(resolved, SERVICE),
            what="@connections",
            log_prefix="connections",
            retry=RetryPolicy(
                retry_budget_s, _RETRY_STATUSES, base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S
            ),
            credentials=credentials,
            environ=env,
            timeout_s=timeout_s,
            max_idle_s=max_idle_s,
            unsigned_headers=(("Accept-Encoding", "identity"),),
            clock=clock,
            monotonic=monotonic,
            sleep=sleep,
            ssl_context=ssl_context,
            log=log,
        )
        self.endpoint = self._client.endpoint

    # --- construction from an event ------------------------------------------------------
    @classmethod
    def for_request(
        cls,
        domain_name: str,
        stage: str,
        *,
        environ: Mapping[str, str] | None = None,
        log: Callable[..., object] | None = None,
    ) -> ApiGatewayConnections:
        """The shared client for the API an event came from.

        ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI``, when set (and
        ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is not ``true``), is the full base URL,
        stage included, as boto3 reads it; the local emulator sets it. Otherwise the
        endpoint is ``https://{domain_name}/{stage}``. For a custom domain whose API mapping
        has a base path other than the stage name, the event does not carry that path:
        construct the client with the right endpoint instead.

        The same client is returned for the same endpoint and credentials, so its
        keep-alive socket outlives the invocation. ``log``, when given, becomes the
        client's step logger for retries and reconnects (the current invocation's).

        Raises:
            ConfigurationError: no endpoint variable and no domain name.
        """
        env = os.environ if environ is None else environ
        endpoint = endpoint_from_environment(ENDPOINT_ENV, env, use_global=False)
        if not endpoint:
            if not domain_name:
                raise ConfigurationError(
                    f"the event has no domainName and {ENDPOINT_ENV} is not set"
                )
            endpoint = f"https://{domain_name}/{stage}" if stage else f"https://{domain_name}"
        credentials = Credentials.from_environment(env)
        key = (endpoint, credentials, region_from_environment(env))
        client = cls._shared.get(key)
        if client is not None:
            if log is not None:
                client._client.log = log
            return client
        client = cls(endpoint, credentials=credentials, environ=env, log=log)
        if len(cls._shared) >= _MAX_SHARED:
            oldest = next(iter(cls._shared))
            cls._shared.pop(oldest).close()
        cls._shared[key] = client
        return client

    @classmethod
    def close_shared(cls) -> None:
        """Close and forget every client :meth:`for_request` handed out (tests, shutdown)."""
        while cls._shared:
            cls._shared.popitem()[1].close()

    # --- the ConnectionClient protocol ---------------------------------------------------
    def post(self, connection_id: str, data: bytes | str) -> None:
        """``PostToConnection``: send one message to a WebSocket client.

        Raises:
            ConnectionGoneError: 410, the client is gone; stop sending to it.
            PayloadTooLargeError: over ``MAX_POST_BYTES`` (refused before sending) or 413.
            ForbiddenError: 403, the role lacks ``execute-api:ManageConnections``.
            ThrottledError: 429/5xx until the retry budget ran out.
            ConnectionsError: the request failed on the network.
            LocalProtocolError: ``connection_id`` is empty, a dot segment or holds lone
                surrogates: refused before anything is sent.
        """
        body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if len(body) > MAX_POST_BYTES:
            raise PayloadTooLargeError(
                f"{len(body)} bytes is over the {MAX_POST_BYTES}-byte PostToConnection limit"
            )
        self._call("POST", connection_id, body)

    def get(self, connection_id: str) -> ConnectionInfo:
        """``GetConnection``: when the client connected and was last active.

        Raises:
            ConnectionGoneError: 410, the client is gone.
            ConnectionsError: as for :meth:`post`, or an answer that is not the documented
                JSON object.
        """
        payload = self._call("GET", connection_id, b"")
        try:
            doc = json.loads(payload)
            identity = doc.get("identity") or {}
            return ConnectionInfo(
                connected_at=str(doc["connectedAt"]),
                last_active_at=str(doc["lastActiveAt"]),
                source_ip=str(identity.get("sourceIp") or ""),
                user_agent=str(identity.get("userAgent") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConnectionsError(
                f"GetConnection answered {payload[:200]!r}, not a connection document", status=200
            ) from exc

    def delete(self, connection_id: str) -> None:
        """``DeleteConnection``: close the client's WebSocket.

        Raises:
            ConnectionGoneError: 410, already gone.
            ConnectionsError: as for :meth:`post`.
        """
        self._call("DELETE", connection_id, b"")

    # --- lifecycle -----------------------------------------------------------------------
    def warm(self, *, connect: bool = False) -> None:
        """Import the HTTP code and build the TLS context now (e.g. at module init).

        Args:
            connect: also open the keep-alive socket (TCP and TLS handshakes) now, so that
                a cold environment's first post, usually the first words of an answer,
                does not pay them (on AWS ~2-3 round trips to ``execute-api``). Not with
                SnapStart: a socket opened before the snapshot is dead after a restore
                (the first post would find it closed and reopen it, paying both). A socket
                that idles past ``max_idle_s`` or that the peer closed is replaced on use,
                as any kept-alive one.

        Raises:
            ConnectionsError: ``connect`` and the endpoint cannot be reached.
        """
        try:
            self._client.warm(connect=connect)
        except OSError as exc:
            raise ConnectionsError(
                f"@connections endpoint {self.endpoint} unreachable: {exc!r}"
            ) from exc

    def close(self) -> None:
        """Close the kept-alive socket; the next request opens a new one."""
        self._client.close()

    def __enter__(self) -> ApiGatewayConnections:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ApiGatewayConnections({self.endpoint!r}, region={self.region!r})"

    # --- internals -----------------------------------------------------------------------
    def _call(self, method: str, connection_id: str, body: bytes) -> bytes:
        if not connection_id or connection_id in (".", ".."):
            # "" and dot segments would address another resource once AWS normalises the path.
            raise LocalProtocolError(f"not a connection id: {connection_id!r}")
        try:
            path = connection_path(self._client.base_path, connection_id)
        except UnicodeEncodeError as exc:  # lone surrogates: no UTF-8 form, no wire form
            raise LocalProtocolError(f"not a connection id: {connection_id!a}") from exc
        try:
            response, attempts = self._client.request(method, path, body)
        except OSError as exc:
            raise ConnectionsError(
                f"@connections {method} to {self.endpoint} failed: {exc!r}"
            ) from exc
        status = response.status
        if 200 <= status < 300:
            return response.body
        detail = _describe(response)
        if status not in _RETRY_STATUSES:
            raise _status_error(status, f"@connections {method} {connection_id!r}: {detail}")
        budget = self._client.retry.budget_s
        if status == NO_ANSWER:
            raise ConnectionsError(
                f"@connections {method} to {self.endpoint}: {detail} "
                f"{attempts} times in {budget:g} s"
            )
        raise ThrottledError(
            f"@connections {method} still answered {detail} after {attempts} "
            f"attempts in {budget:g} s",
            status=status,
        )


def _region_from_host(host: str) -> str | None:
    """``eu-west-1`` from ``abc123.execute-api.eu-west-1.amazonaws.com`` (or ``.com.cn``)."""
    parts = host.split(".")
    if len(parts) >= 5 and parts[1] == "execute-api" and parts[3] == "amazonaws":
        return parts[2]
    return None


def _describe(response: Response) -> str:
    """``410 GoneException``, plus the ``message`` of the AWS error body when there is one."""
    status, payload = response.status, response.body
    if status == NO_ANSWER:
        return f"closed without an answer ({response.error})"
    error_type = response.headers.get("x-amzn-errortype", "").partition(":")[0]
    message = ""
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        message = payload[:200].decode("utf-8", "replace")
    else:
        if isinstance(doc, dict):
            found = doc.get("message") or doc.get("Message")
            message = found[:200] if isinstance(found, str) else ""
    return " ".join(part for part in (str(status), error_type, message) if part)


def _status_error(status: int, detail: str) -> ConnectionsError:
    if status == 410:
        return ConnectionGoneError(detail, status=status)
    if status == 413:
        return PayloadTooLargeError(detail, status=status)
    if status == 403:
        return ForbiddenError(detail, status=status)
    return ConnectionsError(detail, status=status)
