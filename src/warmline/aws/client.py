"""Signed requests to one AWS endpoint over one keep-alive connection, with one retry policy.

:class:`AwsClient` is what the ``@connections`` client, the Lambda invoke client and the
SSM client are built on; each adds only its operation's path, headers and the meaning of
its statuses. Per client:

* **One keep-alive connection** (:class:`warmline.http1.Http1Connection`), reused across
  the invocations of a warm Lambda environment. After a freeze the socket may be dead:
  before reuse it is polled for EOF and dropped when idle longer than ``max_idle_s``.
* **Resend once on a dead reused socket**: if a reused socket still fails
  (``ConnectionResetError``, ``BrokenPipeError``, ``RemoteDisconnected``), the request is
  signed again and sent once more on a new connection. If the peer had already acted on it
  before the socket died, it acts twice; urllib3 and botocore make the same trade, and a
  socket that died while idle never delivered it.
* **No answer on a fresh socket** (closed or reset before a status line) is the
  pseudo-status :data:`NO_ANSWER`, which a :class:`RetryPolicy` may list as retryable, as
  botocore retries ``ConnectionClosedError``.
* **Retries** (:meth:`AwsClient.request`): statuses the policy lists are retried with
  exponential backoff and full jitter while its time budget lasts; every attempt is signed
  again, with a fresh ``X-Amz-Date``. The last answer is returned either way, with the
  number of attempts, and the caller turns statuses into its own errors.
* Other network failures (refused, timed out, TLS errors, an unreadable answer) raise
  ``OSError`` at once: a timed-out request may well be in the peer's hands still.

Calls from several threads are serialised; a client is not safe to share between processes.
"""

from __future__ import annotations

import os
import time
from _thread import allocate_lock  # threading.Lock without importing threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from warmline.aws.credentials import Credentials, ca_bundle_from_environment
from warmline.http1 import proxy_from_environment, split_endpoint

if TYPE_CHECKING:
    import ssl

    from warmline.aws.sigv4 import SigV4Signer
    from warmline.http1 import Http1Connection, Response

__all__ = ["NO_ANSWER", "RETRY_STATUSES", "USER_AGENT", "AwsClient", "RetryPolicy"]

#: Pseudo-status of a request whose fresh socket was closed or reset without an answer.
NO_ANSWER = 0
#: Throttling and server errors: what AWS's own SDKs retry.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Socket timeout of one attempt (connect, send, read) unless the client says otherwise.
DEFAULT_TIMEOUT_S = 5.0
#: A socket idle longer than this is reopened rather than trusted: after a freeze a peer
#: may have dropped it without a FIN [inf; AWS's keep-alive timeouts are unpublished].
DEFAULT_MAX_IDLE_S = 60.0
#: Sent (never signed) with every request.
USER_AGENT = "warmline/0.1 (stdlib sigv4)"


class RetryPolicy:
    """Which answers are retried, and for how long.

    Backoff before retry ``n`` is ``uniform(0, min(cap_s, base_s * 2**(n-1)))`` ("full
    jitter"); a retry whose backoff would end past the budget is not made.

    Args:
        budget_s: time allowed for retrying, from the first attempt.
        statuses: the statuses worth another attempt (may include :data:`NO_ANSWER`).
        base_s: the first backoff's ceiling.
        cap_s: the largest backoff ceiling.
    """

    __slots__ = ("base_s", "budget_s", "cap_s", "statuses")

    def __init__(
        self,
        budget_s: float,
        statuses: Iterable[int] = RETRY_STATUSES,
        *,
        base_s: float = 0.05,
        cap_s: float = 1.0,
    ) -> None:
        self.budget_s = budget_s
        self.statuses = frozenset(statuses)
        self.base_s = base_s
        self.cap_s = cap_s

    def __repr__(self) -> str:
        return f"RetryPolicy(budget_s={self.budget_s!r}, statuses={sorted(self.statuses)!r})"

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number ``attempt``."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling * int.from_bytes(os.urandom(2), "big") / 65536


class AwsClient:
    """Signed HTTP/1.1 requests to one endpoint of one AWS service.

    Args:
        endpoint: ``scheme://host[:port][/base/path]``.
        signer: signs for the service and region.
        what: names the endpoint in errors (``"@connections"``, ``"Lambda"``).
        retry: which statuses are retried, for how long.
        credentials: the keys to sign with (default: read from ``environ`` at the first
            request, then kept).
        environ: the environment to read (default ``os.environ``).
        timeout_s: socket timeout of one attempt.
        max_idle_s: reopen a kept-alive socket idle for longer than this.
        unsigned_headers: sent with every request after ``Host``, not signed.
        clock: wall-clock epoch seconds, read for every ``X-Amz-Date``.
        monotonic: seconds for the retry budget and idle time.
        sleep: waits between retries.
        ssl_context: TLS settings for https (default: system CAs, or ``AWS_CA_BUNDLE``).
            An https endpoint is reached through ``HTTPS_PROXY`` unless ``NO_PROXY``
            lists its host, as botocore does (read from ``environ`` once, here).
        log: a step logger (:class:`warmline.log.StepLogger`) told about retries and
            reconnects as ``{log_prefix}.retry`` / ``{log_prefix}.reconnect``; it gets
            statuses and counts, never headers or bodies.
        log_prefix: the first part of those events' names (default ``what``).

    Raises:
        ConfigurationError: a malformed endpoint.
    """

    __slots__ = (
        "base_path",
        "endpoint",
        "host_header",
        "log",
        "log_prefix",
        "retry",
        "scheme",
        "signer",
        "what",
        "_ca_bundle",
        "_clock",
        "_conn",
        "_credentials",
        "_environ",
        "_host",
        "_last_used",
        "_lock",
        "_max_idle_s",
        "_monotonic",
        "_port",
        "_proxy",
        "_sleep",
        "_ssl_context",
        "_timeout_s",
        "_unsigned",
    )

    def __init__(
        self,
        endpoint: str,
        signer: SigV4Signer,
        *,
        what: str,
        retry: RetryPolicy,
        credentials: Credentials | None = None,
        environ: Mapping[str, str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_idle_s: float = DEFAULT_MAX_IDLE_S,
        unsigned_headers: Iterable[tuple[str, str]] = (),
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        ssl_context: ssl.SSLContext | None = None,
        log: Callable[..., object] | None = None,
        log_prefix: str = "",
    ) -> None:
        env = os.environ if environ is None else environ
        self.scheme, self._host, self._port, self.host_header, self.base_path = split_endpoint(
            endpoint, what
        )
        self.endpoint = f"{self.scheme}://{self.host_header}{self.base_path}"
        self.signer = signer
        self.what = what
        self.retry = retry
        self.log = log
        self.log_prefix = log_prefix or what
        self._credentials = credentials
        self._environ = env
        self._timeout_s = timeout_s
        self._max_idle_s = max_idle_s
        self._unsigned = (("Host", self.host_header), *unsigned_headers, ("User-Agent", USER_AGENT))
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._ssl_context = ssl_context
        self._ca_bundle = ca_bundle_from_environment(env)
        # HTTPS_PROXY / NO_PROXY as botocore reads them, once: unset on AWS.
        self._proxy = proxy_from_environment(self.scheme, self._host, env)
        self._conn: Http1Connection | None = None
        self._last_used = 0.0
        self._lock = allocate_lock()

    @property
    def credentials(self) -> Credentials:
        """The keys requests are signed with, read from the environment on first use.

        Raises:
            ConfigurationError: none were given and the environment has none.
        """
        if self._credentials is None:
            self._credentials = Credentials.from_environment(self._environ)
        return self._credentials

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Response, int]:
        """Send a signed request, retrying what the policy lists while its budget lasts.

        Args:
            method: the HTTP method.
            path: the wire path (percent-encoded once), base path included.
            body: the request body.
            headers: sent and signed (e.g. ``X-Amz-Target``).

        Returns:
            The last answer (status :data:`NO_ANSWER` if the peer closed without one) and
            the number of attempts. A status the policy lists means the budget ran out.

        Raises:
            OSError: connecting failed, the attempt timed out, or the answer was not
                HTTP/1.x (:class:`warmline.http1.ProtocolError`).
            ValueError: a header holds CR, LF or NUL.
            ConfigurationError: no credentials.
        """
        credentials = self.credentials
        policy = self.retry
        with self._lock:
            deadline = self._monotonic() + policy.budget_s
            attempt = 0
            while True:
                attempt += 1
                response = self._exchange(method, path, body, headers, credentials)
                if response.status not in policy.statuses:
                    return response, attempt
                delay = policy.backoff(attempt)
                if self._monotonic() + delay > deadline:
                    return response, attempt
                if self.log is not None:
                    self.log(
                        f"{self.log_prefix}.retry",
                        "warning",
                        status=response.status,
                        attempt=attempt,
                    )
                self._sleep(delay)

    def warm(self, *, connect: bool = False) -> None:
        """Import the socket code and build the TLS context now (e.g. at module init).

        Args:
            connect: also open the keep-alive socket (TCP and TLS handshakes) now. Not
                with SnapStart: a socket opened before the snapshot is dead after a
                restore (the first request would find it closed and reopen it).

        Raises:
            OSError: ``connect`` and the endpoint cannot be reached.
        """
        import socket  # noqa: F401 - what the connection loads on its first request

        if self.scheme == "https":
            self._tls_context()
        if connect:
            with self._lock:
                conn, _reused = self._checkout()
                if conn.sock is None:
                    conn.open()
                    self._last_used = self._monotonic()

    def close(self) -> None:
        """Close the kept-alive socket; the next request opens a new one."""
        with self._lock:  # not in the middle of another thread's request
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __repr__(self) -> str:
        return f"AwsClient({self.endpoint!r}, {self.signer!r})"

    # --- internals -----------------------------------------------------------------------
    def _exchange(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str] | None,
        credentials: Credentials,
    ) -> Response:
        """One attempt: resent once on a reused socket that turns out dead."""
        from warmline.http1 import RemoteDisconnected, Response, message

        for resend in (False, True):
            conn, reused = self._checkout()
            signed = self.signer.sign(
                method, self.host_header, path, body, credentials, self._clock(), headers
            )
            lines = [*self._unsigned, *(headers.items() if headers else ()), *signed.items()]
            try:
                response = conn.request(message(method, path, lines, body))
            except (ConnectionResetError, BrokenPipeError, RemoteDisconnected) as exc:
                if reused and not resend:
                    if self.log is not None:
                        self.log(f"{self.log_prefix}.reconnect", error=type(exc).__name__)
                    continue
                return Response(NO_ANSWER, {}, b"", type(exc).__name__)
            self._last_used = self._monotonic()
            return response
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
        from warmline.http1 import Http1Connection

        tls = self._tls_context() if self.scheme == "https" else None
        return Http1Connection(self._host, self._port, self._timeout_s, tls, self._proxy)

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            from warmline.http1 import client_tls

            self._ssl_context = client_tls(self._ca_bundle)
        return self._ssl_context


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
