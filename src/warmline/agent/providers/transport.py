"""HTTP for the providers: :class:`warmline.http1.Http1Connection`, streamed from a thread.

The providers use the one HTTP/1.1 client warmline has, the one under its AWS clients,
rather than ``http.client`` or httpx: it writes a request in one
``sendall``, reads a body as it arrives (``read_some``: by ``Content-Length``, chunked or
to the end) and imports ``socket`` only, while ``http.client`` loads ``email.parser`` and
httpx far more. The one big fixed cost either way is the CA bundle:
``ssl.create_default_context()`` takes tens of ms, so the context is made once per
environment (:func:`ssl_context`, at the first HTTPS request or a pre-warm) and shared.

The socket blocks, and an answer must stream without stalling the event loop (the App
runs async answerers on its loop and posts each token as it comes), so a
:class:`StreamingResponse` runs the exchange in a daemon thread that hands each read to
the loop through ``call_soon_threadsafe`` into an ``asyncio.Queue``. The consumer waits
with a timeout; closing shuts the socket down, which wakes the thread's blocked read, and
waits (bounded) for the thread to close the connection itself, so no socket outlives
the answer.

Connections are kept alive between answers (a few per endpoint, for
:data:`IDLE_TTL_S`): a warm environment then skips the TCP and TLS handshakes, one to
three round trips to the provider, on every turn after the first. A kept connection is
checked before reuse (readable while idle means the server closed it) and, if the server
drops it anyway before answering, the request is sent once more on a new connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from warmline.agent.providers.errors import ProviderError, redact

if TYPE_CHECKING:
    import asyncio
    import socket
    import ssl

    from warmline.http1 import Http1Connection

__all__ = [
    "ERROR_BODY_LIMIT",
    "READ_SIZE",
    "Endpoint",
    "StreamingResponse",
    "UsageCallback",
    "close_idle_connections",
    "describe_exception",
    "parse_base_url",
    "prewarm",
    "request",
    "ssl_context",
]

#: Largest error body read before giving up on it (error JSON is a few hundred bytes).
ERROR_BODY_LIMIT = 64 * 1024
#: Bytes asked of the socket per read (``read_some`` returns what has arrived, up to this).
READ_SIZE = 16 * 1024
#: Longest whole (not streamed) response body read: embeddings of a large batch.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: How long closing waits for the reader thread once its socket is shut down.
_JOIN_TIMEOUT_S = 2.0
#: Idle keep-alive connections kept per endpoint (a Lambda environment serves one call
#: at a time, so one is the norm; two cover an answer and an embedding in flight).
MAX_IDLE_PER_ENDPOINT = 2
#: An idle connection older than this is closed rather than reused: servers and load
#: balancers drop idle keep-alive connections after tens of seconds (nginx's default
#: ``keepalive_timeout`` is 75 s, AWS ALB's idle timeout 60 s), and a Lambda environment
#: may sit frozen far longer between calls.
IDLE_TTL_S = 30.0

_idle: dict[Endpoint, list[tuple[float, Http1Connection]]] = {}
_idle_lock = threading.Lock()

_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


class Endpoint(NamedTuple):
    """Where requests go, from a base URL such as ``https://api.openai.com/v1``.

    Attributes:
        scheme: ``http`` or ``https``.
        host: host name or address.
        port: TCP port (the scheme's default when the URL has none).
        base_path: the URL's path without a trailing slash (``/v1`` or ``""``).
    """

    scheme: str
    host: str
    port: int
    base_path: str

    @property
    def host_header(self) -> str:
        """``Host`` as sent (and SigV4-signed): the port only when it is not the default."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_base_url(url: str) -> Endpoint:
    """Split a base URL into an :class:`Endpoint`.

    Raises:
        ConfigurationError: not an ``http(s)://`` URL with a host, or it has a query or
            ``user:password@``.
    """
    from urllib.parse import urlsplit

    from warmline.errors import ConfigurationError

    parts = urlsplit(url)
    if "@" in parts.netloc:  # not echoed: it may hold a password
        raise ConfigurationError("a provider base URL must not hold credentials; use api_key")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"a provider base URL must be http(s)://host[:port][/path]: {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"a provider base URL takes no query or fragment: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ConfigurationError(f"bad port in provider base URL {url!r}") from exc
    return Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def ssl_context() -> ssl.SSLContext:
    """The process's TLS context (system CA bundle), created once: loading it is costly."""
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            from warmline.http1 import client_tls

            _ssl_context = client_tls(None)
        return _ssl_context


def prewarm(endpoint: Endpoint) -> None:
    """Pay the first request's fixed costs now (a warm-up ping): imports, TLS context."""
    import asyncio  # noqa: F401  (the stream's queue)
    import socket  # noqa: F401  (what a connection loads when it opens)

    import warmline.http1  # noqa: F401

    if endpoint.scheme == "https":
        ssl_context()


def _checkout(endpoint: Endpoint, timeout_s: float) -> tuple[Http1Connection, bool]:
    """A kept-alive connection to ``endpoint`` if a live one is idle, else a new one.

    Returns:
        ``(connection, reused)``; a new connection is not connected yet.
    """
    now = time.monotonic()
    found: Http1Connection | None = None
    stale: list[Http1Connection] = []
    with _idle_lock:
        idle = _idle.get(endpoint, [])
        while idle and found is None:
            since, conn = idle.pop()
            if now - since <= IDLE_TTL_S and conn.sock is not None and not _dropped(conn.sock):
                found = conn
            else:
                stale.append(conn)
    for conn in stale:
        conn.close()
    if found is None or found.sock is None:
        return _connection(endpoint, timeout_s), False
    found.sock.settimeout(timeout_s)
    return found, True


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle socket is readable: EOF (the server closed it) or stray bytes."""
    import select

    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _checkin(endpoint: Endpoint, conn: Http1Connection) -> None:
    """Keep a connection whose response was read to the end, or close it if enough are."""
    with _idle_lock:
        idle = _idle.setdefault(endpoint, [])
        if len(idle) < MAX_IDLE_PER_ENDPOINT:
            idle.append((time.monotonic(), conn))
            return
    conn.close()


def close_idle_connections() -> None:
    """Close every kept-alive connection (tests; a process about to exit)."""
    with _idle_lock:
        conns = [conn for idle in _idle.values() for _, conn in idle]
        _idle.clear()
    for conn in conns:
        conn.close()


def _stale(exc: BaseException) -> bool:
    """A reused connection the server had closed: nothing was answered, send again."""
    return isinstance(exc, BrokenPipeError | ConnectionResetError)


def _connection(endpoint: Endpoint, timeout_s: float) -> Http1Connection:
    from warmline.http1 import Http1Connection

    tls = ssl_context() if endpoint.scheme == "https" else None
    return Http1Connection(endpoint.host, endpoint.port, timeout_s, tls)


def _message(
    endpoint: Endpoint, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> bytes:
    """The whole request: ``Host`` and ``Accept-Encoding: identity`` added, as usual."""
    from warmline.http1 import message

    lines = [("Host", endpoint.host_header)]
    if not any(name.lower() == "accept-encoding" for name in headers):
        lines.append(("Accept-Encoding", "identity"))
    lines += headers.items()
    return message(method, path, lines, body)


def describe_exception(
    exc: BaseException, *, provider: str, secrets: Sequence[str | None], started: bool
) -> ProviderError:
    """A socket or :mod:`warmline.http1` exception as a :class:`ProviderError`.

    Args:
        exc: what the transport raised.
        provider: for the message.
        secrets: redacted from the exception's text.
        started: whether the response had begun (a break then is a ``stream`` error).
    """
    from warmline.http1 import ProtocolError, RemoteDisconnected

    detail = redact(f"{type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, TimeoutError):
        return ProviderError(f"timed out ({detail})", provider=provider, kind="timeout")
    if isinstance(exc, ConnectionRefusedError):
        return ProviderError(f"connection refused ({detail})", provider=provider, kind="connect")
    if started or isinstance(exc, RemoteDisconnected):
        return ProviderError(
            f"the connection broke mid-response ({detail})", provider=provider, kind="stream"
        )
    if isinstance(exc, ProtocolError):
        return ProviderError(f"bad HTTP response ({detail})", provider=provider, kind="protocol")
    return ProviderError(f"could not connect ({detail})", provider=provider, kind="connect")


def request(
    endpoint: Endpoint,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    timeout_s: float,
    provider: str,
    secrets: Sequence[str | None] = (),
) -> tuple[int, dict[str, str], bytes]:
    """One blocking request (embeddings: small, not streamed).

    Returns:
        ``(status, headers with lower-case names, body)``.

    Raises:
        ProviderError: the server could not be reached, timed out or broke off.
    """
    request = _message(endpoint, method, path, headers, body)
    conn, reused = _checkout(endpoint, timeout_s)
    try:
        while True:
            try:
                response = conn.request(request, MAX_RESPONSE_BYTES)
                break
            except Exception as exc:
                if not (reused and _stale(exc)):
                    raise
                conn.close()
                conn, reused = _connection(endpoint, timeout_s), False
    except (OSError, ValueError) as exc:
        conn.close()
        raise describe_exception(exc, provider=provider, secrets=secrets, started=False) from exc
    if conn.reusable:
        _checkin(endpoint, conn)
    else:
        conn.close()
    return response.status, response.headers, response.body


class StreamingResponse:
    """One HTTP exchange whose body is read by a daemon thread and awaited in chunks.

    Use :meth:`open`, then :meth:`receive` until it returns ``b""``; always
    :meth:`aclose` (in a ``finally``).

    Attributes:
        status: the HTTP status.
        headers: response headers, names in lower case.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout_s: float,
        provider: str,
        secrets: Sequence[str | None],
    ) -> None:
        import asyncio

        self.status = 0
        self.headers: dict[str, str] = {}
        self._endpoint = endpoint
        self._request = _message(endpoint, method, path, headers, body)
        self._timeout_s = timeout_s
        self._provider = provider
        self._secrets = tuple(secrets)
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closed = False
        self._eof = False
        self._thread = threading.Thread(target=self._run, name="warmline-provider", daemon=True)

    @classmethod
    async def open(
        cls,
        endpoint: Endpoint,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        timeout_s: float,
        head_timeout_s: float,
        provider: str,
        secrets: Sequence[str | None] = (),
    ) -> StreamingResponse:
        """Send the request and wait for the response head.

        Args:
            timeout_s: the socket's timeout (connect, and each read in the thread).
            head_timeout_s: how long to wait for the status line and headers.

        Raises:
            TimeoutError: no response head within ``head_timeout_s`` (the caller knows
                which budget ran out, so it words the error).
            ProviderError: could not connect, or the response was not HTTP.
        """
        stream = cls(
            endpoint,
            method,
            path,
            headers,
            body,
            timeout_s=timeout_s,
            provider=provider,
            secrets=secrets,
        )
        stream._thread.start()
        try:
            item = await stream._get(head_timeout_s)
            if item[0] == "error":
                raise item[1]
        except BaseException:
            await stream.aclose()
            raise
        stream.status, stream.headers = item[1]
        return stream

    async def _get(self, timeout_s: float) -> tuple[str, Any]:
        import asyncio

        return await asyncio.wait_for(self._queue.get(), max(timeout_s, 0.0))

    async def receive(self, timeout_s: float) -> bytes:
        """The next bytes of the body, ``b""`` at its end.

        Raises:
            TimeoutError: nothing arrived within ``timeout_s``.
            ProviderError: the connection broke (``stream``).
        """
        if self._eof:
            return b""
        kind, value = await self._get(timeout_s)
        if kind == "error":
            self._eof = True
            raise value
        if kind == "eof":
            self._eof = True
            return b""
        data: bytes = value
        return data

    async def read_body(self, timeout_s: float, limit: int = ERROR_BODY_LIMIT) -> bytes:
        """The rest of the body, up to ``limit`` bytes (for error responses).

        Raises:
            TimeoutError: a read took longer than ``timeout_s``.
            ProviderError: the connection broke.
        """
        parts: list[bytes] = []
        size = 0
        while size < limit:
            data = await self.receive(timeout_s)
            if not data:
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)[:limit]

    async def aclose(self) -> None:
        """Stop reading and wait (bounded) until the thread has closed the connection."""
        import asyncio
        import socket

        with self._lock:
            self._closed = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the thread, or never connected
        if self._thread.is_alive() or not self._finished.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._finished), _JOIN_TIMEOUT_S)
            except TimeoutError:
                return  # still connecting: it closes its socket when connect returns
            # The thread has closed its connection and is returning: let it end, so no
            # thread is left to be frozen with the Lambda environment.
            self._thread.join(_JOIN_TIMEOUT_S)

    # --- the reader thread -------------------------------------------------------------
    def _post(self, item: tuple[str, Any]) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening
            return False
        return True

    def _done(self) -> None:
        def finish() -> None:
            if not self._finished.done():
                self._finished.set_result(None)

        try:
            self._loop.call_soon_threadsafe(finish)
        except RuntimeError:
            pass

    def _run(self) -> None:
        started = False
        keep = False
        conn, reused = _checkout(self._endpoint, self._timeout_s)
        try:
            while True:
                if not reused:
                    conn.open()
                with self._lock:
                    if self._closed:
                        return
                    self._sock = conn.sock
                try:
                    conn.send(self._request)
                    head = conn.read_head()
                    break
                except Exception as exc:
                    if not (reused and _stale(exc)) or self._closed:
                        raise
                    conn.close()
                    conn, reused = _connection(self._endpoint, self._timeout_s), False
            started = True
            if not self._post(("head", head)):
                return
            while not self._closed:
                data = conn.read_some(READ_SIZE)
                if not data:
                    with self._lock:
                        keep = not self._closed and conn.reusable
                        if keep:
                            self._sock = None  # closing the stream must not kill it now
                    self._post(("eof", None))
                    return
                if not self._post(("data", data)):
                    return
        except Exception as exc:  # every failure goes to the consumer, translated
            if not self._closed:
                error = describe_exception(
                    exc, provider=self._provider, secrets=self._secrets, started=started
                )
                error.__cause__ = exc
                self._post(("error", error))
        finally:
            if keep:
                _checkin(self._endpoint, conn)
            else:
                conn.close()
            self._done()


#: A callback receiving the provider's usage report (token counts), if it sends one.
UsageCallback = Callable[[Mapping[str, Any]], None]
