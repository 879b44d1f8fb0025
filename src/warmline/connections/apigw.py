"""The ``@connections`` management API over ``http.client``, signed with the stdlib signer.

Why not boto3: a fresh interpreter pays ~336 ms for boto3 and an ``apigatewaymanagementapi``
client, against ~57 ms for a standard-library signer plus ``http.client`` (PROTOCOLS.md §6),
and a post through boto3 costs ~5x the CPU. On a voice call every token goes through here.

Behaviour (PROTOCOLS.md §2.4, §6):

* One keep-alive connection per client. A warm Lambda environment reuses it across
  invocations (:meth:`ApiGatewayConnections.for_request` hands out one shared client per
  endpoint). After a freeze the socket may be dead: before reuse it is polled for EOF and
  dropped when idle longer than ``max_idle_s``; if a reused socket still fails
  (``ConnectionResetError``, ``BrokenPipeError``, ``RemoteDisconnected``, ``BadStatusLine``),
  the request is re-signed and sent once more on a new connection. (If the peer had
  already acted on it before the socket died, the message arrives twice; urllib3 and
  botocore make the same trade, and a socket that died while idle never delivered it.)
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

Imports: :mod:`warmline.connections.http1` is small and imported at module top; the
``socket`` module it needs is imported on the first request (or by :meth:`warm`), and an
``ssl`` context (with the CA bundle) is built only for an ``https`` endpoint. Measured 2026-11-23
on this project's 2-core machine (CPython 3.11.7, bytecode cached, fresh interpreters):

* ``import warmline.connections.apigw`` after ``warmline.core.app``: 10.5 ms median of 9
  (10.1 min), of which ``hashlib`` + ``hmac`` ~3.5 ms; in a bare interpreter 25 ms (23),
  of which ``json`` ~10 ms and ``typing`` ~4 ms, both loaded by Lambda's own runtime
  before the handler. It was ~34 ms bare until ``warmline.types`` stopped importing
  ``dataclasses`` (``inspect`` and all: ~11 ms).
* first request, http: :meth:`warm` 6.4 ms median of 9 (4.4 min); with ``http.client``,
  as before, it was 28 ms (21) on a quiet machine and 42 ms in the same loaded run as the
  6.4 ms, two thirds of it ``email.parser``.
* first request, https: add ``ssl`` and the TLS context with the default CA bundle,
  22-33 ms (PROTOCOLS.md §6 measured 35 ms + 21 ms for ``http.client`` + ``ssl``).
* per post, warm, to ``warmline dev`` over loopback: ~0.11 ms CPU (3,000 posts; it was
  ~0.30 ms over ``http.client``), of which the SigV4 signature ~0.035 ms.
"""

from __future__ import annotations

import json
import os
import time
from _thread import allocate_lock  # threading.Lock without importing threading (~2 ms)
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from warmline.connections.http1 import CA_BUNDLE_ENV, split_endpoint
from warmline.connections.sigv4 import Credentials, SigV4Signer, connection_path
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
from warmline.types import ConnectionInfo

if TYPE_CHECKING:
    import ssl

    from warmline.connections.http1 import Http1Connection

__all__ = ["ENDPOINT_ENV", "ApiGatewayConnections"]

#: boto3's service-specific endpoint variable; the full base URL including the stage. The
#: local emulator sets it (e.g. ``http://127.0.0.1:3001/dev``).
ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
#: boto3's switch that makes configured endpoint URLs be ignored.
_IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
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
#: Pseudo-status of a request whose fresh socket was closed or reset without an answer.
_NO_ANSWER = 0
#: Statuses worth retrying: LimitExceededException (rate or client buffer full) and 5xx (§2.4).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, _NO_ANSWER})
_MAX_SHARED = 8  # clients kept by ApiGatewayConnections.for_request (one per endpoint)
_USER_AGENT = "warmline/0.1 (stdlib sigv4)"


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

    __slots__ = (
        "endpoint",
        "region",
        "_scheme",
        "_host",
        "_port",
        "_host_header",
        "_base_path",
        "_credentials",
        "_signer",
        "_timeout_s",
        "_retry_budget_s",
        "_max_idle_s",
        "_clock",
        "_monotonic",
        "_sleep",
        "_ssl_context",
        "_log",
        "_ca_bundle",
        "_conn",
        "_last_used",
        "_lock",
    )

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
        scheme, host, port, host_header, base_path = split_endpoint(endpoint, "@connections")
        self.endpoint = f"{scheme}://{host_header}{base_path}"
        self._scheme = scheme
        self._host = host
        self._port = port
        self._host_header = host_header
        self._base_path = base_path
        resolved = (
            region
            or _region_from_host(host)
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
        )
        if not resolved:
            raise ConfigurationError(
                f"no region to sign @connections requests to {self.endpoint}: "
                "pass region= or set AWS_REGION"
            )
        self.region: str = resolved
        self._credentials = credentials or Credentials.from_environment(env)
        if any(c in (self._credentials.token or "") for c in "\r\n"):
            raise ConfigurationError("the AWS session token holds a line break")
        self._signer = SigV4Signer(resolved)
        self._timeout_s = timeout_s
        self._retry_budget_s = retry_budget_s
        self._max_idle_s = max_idle_s
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._ssl_context = ssl_context
        self._ca_bundle = env.get(CA_BUNDLE_ENV) or None
        self._log = log
        self._conn: Http1Connection | None = None
        self._last_used = 0.0
        self._lock = allocate_lock()

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
        endpoint = env.get(ENDPOINT_ENV, "")
        if not endpoint or env.get(_IGNORE_ENDPOINTS_ENV, "").lower() == "true":
            if not domain_name:
                raise ConfigurationError(
                    f"the event has no domainName and {ENDPOINT_ENV} is not set"
                )
            endpoint = f"https://{domain_name}/{stage}" if stage else f"https://{domain_name}"
        credentials = Credentials.from_environment(env)
        key = (endpoint, credentials, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))
        client = cls._shared.get(key)
        if client is not None:
            if log is not None:
                client._log = log
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
        import socket  # noqa: F401 - what http1 loads on its first request

        if self._scheme == "https":
            self._tls_context()
        if connect:
            with self._lock:
                conn, _reused = self._checkout()
                if conn.sock is None:
                    try:
                        conn.open()
                    except OSError as exc:
                        raise ConnectionsError(
                            f"@connections endpoint {self.endpoint} unreachable: {exc!r}"
                        ) from exc
                    self._last_used = self._monotonic()

    def close(self) -> None:
        """Close the kept-alive socket; the next request opens a new one."""
        with self._lock:  # not in the middle of another thread's request
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

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
            path = connection_path(self._base_path, connection_id)
        except UnicodeEncodeError as exc:  # lone surrogates: no UTF-8 form, no wire form
            raise LocalProtocolError(f"not a connection id: {connection_id!a}") from exc
        with self._lock:
            deadline = self._monotonic() + self._retry_budget_s
            attempt = 0
            while True:
                attempt += 1
                status, payload, error_type = self._exchange(method, path, body)
                if 200 <= status < 300:
                    return payload
                detail = _describe(status, error_type, payload)
                if status not in _RETRY_STATUSES:
                    raise _status_error(
                        status, f"@connections {method} {connection_id!r}: {detail}"
                    )
                delay = _backoff(attempt)
                if self._monotonic() + delay > deadline:
                    if status == _NO_ANSWER:
                        raise ConnectionsError(
                            f"@connections {method} to {self.endpoint}: {detail} "
                            f"{attempt} times in {self._retry_budget_s:g} s"
                        )
                    raise ThrottledError(
                        f"@connections {method} still answered {detail} after {attempt} "
                        f"attempts in {self._retry_budget_s:g} s",
                        status=status,
                    )
                if self._log is not None:
                    self._log("connections.retry", "warning", status=status, attempt=attempt)
                self._sleep(delay)

    def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        """One request's status, body and AWS error type; resent once on a dead reused socket."""
        from warmline.connections.http1 import ProtocolError, RemoteDisconnected, message

        for resend in (False, True):
            conn, reused = self._checkout()
            signed = self._signer.sign(
                method, self._host_header, path, body, self._credentials, self._clock()
            )
            # The headers http.client sent for the same call, in one write (see http1.py).
            headers = [
                ("Host", self._host_header),
                ("Accept-Encoding", "identity"),
                ("User-Agent", _USER_AGENT),
                *signed.items(),
            ]
            request = message(method, path, headers, body if method == "POST" else b"")
            try:
                response = conn.request(request)
            except (ConnectionResetError, BrokenPipeError, RemoteDisconnected) as exc:
                if reused and not resend:
                    if self._log is not None:
                        self._log("connections.reconnect", error=type(exc).__name__)
                    continue
                return _NO_ANSWER, b"", type(exc).__name__  # retried with backoff
            except (OSError, ProtocolError) as exc:
                raise ConnectionsError(
                    f"@connections {method} to {self.endpoint} failed: {exc!r}"
                ) from exc
            self._last_used = self._monotonic()
            error_type = response.headers.get("x-amzn-errortype", "")
            return response.status, response.body, error_type.partition(":")[0]
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(self) -> tuple[Http1Connection, bool]:
        """The connection to use, and whether its socket already carried a request."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._new_connection()
        sock = conn.sock
        if sock is None:  # never opened, or closed after an error or ``Connection: close``
            return conn, False
        if self._monotonic() - self._last_used > self._max_idle_s or _peer_closed(sock):
            conn.close()
            return conn, False
        return conn, True

    def _new_connection(self) -> Http1Connection:
        from warmline.connections.http1 import Http1Connection

        tls = self._tls_context() if self._scheme == "https" else None
        return Http1Connection(self._host, self._port, self._timeout_s, tls)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            from warmline.connections.http1 import client_tls

            self._ssl_context = client_tls(self._ca_bundle)
        return self._ssl_context


def _region_from_host(host: str) -> str | None:
    """``eu-west-1`` from ``abc123.execute-api.eu-west-1.amazonaws.com`` (or ``.com.cn``)."""
    parts = host.split(".")
    if len(parts) >= 5 and parts[1] == "execute-api" and parts[3] == "amazonaws":
        return parts[2]
    return None


def _peer_closed(sock: Any) -> bool:
    """True when a kept-alive socket is readable: the peer closed it (or sent stray bytes)."""
    import select

    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff before retry number ``attempt``."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
    return ceiling * int.from_bytes(os.urandom(2), "big") / 65536


def _describe(status: int, error_type: str, payload: bytes) -> str:
    """``410 GoneException``, plus the ``message`` of the AWS error body when there is one."""
    if status == _NO_ANSWER:
        return f"closed without an answer ({error_type})"
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
