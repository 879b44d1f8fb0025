"""``AwsProxy``: AWS host names reach the emulator from inside a function, as they reach AWS.

Every environment gets ``HTTPS_PROXY`` pointing here (loopback is in ``NO_PROXY``, so a
handler posting to its event's ``https://{domainName}/{stage}`` goes straight to the
emulator, and the lean path never crosses the proxy). botocore, ``requests`` and
``urllib`` honour those variables and open a ``CONNECT host:443`` tunnel; the proxy then
acts by the host's :class:`~warmline.dev.proxy.routing.Route`:

- the emulator's or moto's hosts: the proxy answers the tunnel itself, terminating TLS
  with a certificate for that exact name signed by the emulator's CA (which the function
  trusts through ``AWS_CA_BUNDLE``), reads each HTTP/1.1 request whole, asks its
  authorizer (:class:`~warmline.dev.proxy.authorize.ServiceAuthorizer`: SigV4 and IAM),
  and forwards it unchanged (the ``Host`` header and the SigV4 signature over it
  included) on one upstream connection per tunnel;
  responses flow back as bytes;
- AWS hosts that are not emulated: the same TLS termination, and every request is answered
  with an error in the service's protocol naming the host and what to do, so the SDK
  raises it as a ``ClientError`` the developer reads in the function's log;
  with ``--aws-profile`` / ``--aws-passthrough`` they are re-signed with the developer's
  credentials and sent to AWS instead (:mod:`~warmline.dev.proxy.upstream`);
- any other host: relayed byte for byte (a function outside a VPC reaches the internet).

Only ``CONNECT`` is served: AWS SDKs use ``https`` for every AWS endpoint, and the
environments get no ``HTTP_PROXY``, so plain-``http`` calls never come here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from xml.sax.saxutils import escape

from warmline.dev.proxy import authorize as hook
from warmline.dev.proxy.authorize import Denial, ProxiedRequest
from warmline.dev.proxy.certs import HostCertificates
from warmline.dev.proxy.routing import Route, RouteKind, Router
from warmline.dev.proxy.upstream import AwsUpstream

__all__ = ["AwsProxy", "error_response"]

#: Longest request head and chunk-size line the proxy reads.
_STREAM_LIMIT = 1 << 20
#: The status of a refused host's answers: a client error botocore does not retry.
_REFUSED_STATUS = 403
_REFUSED_CODE = "NotEmulatedByWarmline"
_JSON_SERVICES = ("lambda", "execute-api")


def error_response(denial: Denial, request: ProxiedRequest | None) -> bytes:
    """An HTTP response carrying ``denial`` in the protocol the request's service speaks.

    JSON protocols (``X-Amz-Target``, a JSON content type, Lambda and ``@connections``)
    read the code from ``__type`` or ``x-amzn-ErrorType`` and the message from
    ``message``; SQS's JSON protocol also sends the query-protocol code in
    ``x-amzn-query-error``, which SDKs report. Query protocols (SNS, STS, SQS's older
    form) read ``ErrorResponse/Error/Code``; S3 reads ``Error/Code`` at the root.
    """
    request_id = str(uuid.uuid4())
    use_json = request is None or (
        request.service in _JSON_SERVICES
        or request.header("X-Amz-Target") is not None
        or "json" in (request.header("Content-Type") or "")
    )
    extra = ""
    code = denial.code
    if use_json:
        body = json.dumps(
            {"__type": code, "message": denial.message}, separators=(",", ":")
        ).encode()
        content_type = "application/x-amz-json-1.0"
        if denial.query_code:
            extra = f"x-amzn-query-error: {denial.query_code};Sender\r\n"
    else:
        code = denial.query_code or code
        error = f"<Code>{escape(code)}</Code><Message>{escape(denial.message)}</Message>"
        if request is not None and request.service == "s3":
            body = f"<Error>{error}<RequestId>{request_id}</RequestId></Error>".encode()
        else:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type>{error}</Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
        content_type = "text/xml"
    head = (
        f"HTTP/1.1 {denial.status} Error\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amzn-ErrorType: {code}\r\n"
        f"x-amzn-RequestId: {request_id}\r\n"
        f"{extra}"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class AwsProxy:
    """The HTTPS proxy every environment's SDK goes through for AWS host names.

    Args:
        router: decides each host's route.
        certificates: issues the TLS certificates for terminated hosts.
        emulator: ``(host, port)`` of the emulator's listener (``@connections``, Invoke).
        services: ``(host, port)`` of the moto server, or None when none runs.
        log: where a refused host is reported (once per host).
        authorize: decides whether each request to an emulated host goes on (None:
            :func:`~warmline.dev.proxy.authorize.authorize`, which allows all).
        upstream: re-signs and sends the calls routed to real AWS (the router routes none
            there without it).
    """

    def __init__(
        self,
        router: Router,
        certificates: HostCertificates,
        *,
        emulator: tuple[str, int],
        services: tuple[str, int] | None = None,
        log: Callable[[str], None] | None = None,
        authorize: Callable[[ProxiedRequest], Denial | None] | None = None,
        upstream: AwsUpstream | None = None,
    ) -> None:
        self.router = router
        self.upstream = upstream
        self.authorize = authorize
        self.certificates = certificates
        self.emulator = emulator
        self.services = services
        self._log = log
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reported: set[str] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the value of the environments' ``HTTPS_PROXY``."""
        if self._port is None:
            raise RuntimeError("AwsProxy is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_STREAM_LIMIT)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and drop every tunnel."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None
        self.certificates.close()

    # --- one client connection ----------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the SDK or the upstream went away; the tunnel ends with it
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.split(" ", 1)[0]
        host, sep, port_text = target.rpartition(":")
        if method != "CONNECT" or not sep or not port_text.isdigit():
            writer.write(
                b"HTTP/1.1 405 Only CONNECT tunnels are proxied\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        host = host.strip("[]")
        route = self.router.route(host)
        if route.kind is RouteKind.TUNNEL:
            await self._tunnel(reader, writer, host, int(port_text))
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self.certificates.context(host))
        if route.kind is RouteKind.REFUSE:
            self._report(host, route)
        await self._requests(reader, writer, host, route)

    async def _tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            reason = f"cannot reach {host}:{port}: {exc}".replace("\r", " ").replace("\n", " ")
            writer.write(f"HTTP/1.1 502 {reason}\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, route: Route
    ) -> None:
        """Read requests from the TLS tunnel; forward each allowed one upstream."""
        upstream: asyncio.StreamWriter | None = None
        pump: asyncio.Task[None] | None = None
        try:
            while True:
                read = await _read_request(reader, writer, host, route.service)
                if read is None:
                    return
                request, raw = read
                if route.kind is RouteKind.REFUSE or (
                    route.kind is RouteKind.AWS and self.upstream is None
                ):
                    denial: Denial | None = Denial(_REFUSED_STATUS, _REFUSED_CODE, route.reason)
                elif route.kind is RouteKind.AWS:
                    assert self.upstream is not None
                    resigned = self.upstream.resign(request)
                    denial = resigned if isinstance(resigned, Denial) else None
                    raw = resigned if isinstance(resigned, bytes) else raw
                else:
                    denial = (self.authorize or hook.authorize)(request)
                if denial is not None:
                    writer.write(error_response(denial, request))
                    await writer.drain()
                    return
                if upstream is None and route.kind is RouteKind.AWS:
                    assert self.upstream is not None
                    self._report(host, route, f"sent to AWS with your credentials: {host}")
                    up_reader, upstream = await self.upstream.open(host)
                    pump = asyncio.create_task(_pipe(up_reader, writer))
                elif upstream is None:
                    address = self.emulator if route.kind is RouteKind.EMULATOR else self.services
                    assert address is not None
                    up_reader, upstream = await asyncio.open_connection(*address)
                    pump = asyncio.create_task(_pipe(up_reader, writer))
                elif pump is not None and pump.done():
                    return  # the upstream closed its end; the SDK reconnects
                upstream.write(raw)
                await upstream.drain()
        finally:
            # Reached at the SDK's EOF or after an error answer: no response is in flight.
            if upstream is not None:
                upstream.close()
            if pump is not None:
                pump.cancel()

    def _report(self, host: str, route: Route, line: str | None = None) -> None:
        if self._log is not None and host not in self._reported:
            self._reported.add(host)
            self._log(line or f"refused a call to {host}: {route.reason}")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF, then end the other side's writing."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, service: str
) -> tuple[ProxiedRequest, bytes] | None:
    """The next request on the tunnel and its bytes to forward (None at EOF).

    ``Expect: 100-continue`` is answered here and dropped from the forwarded head (SigV4
    never signs it), so the whole body is read before the request is judged.
    """
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _version = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    fields = {k.lower(): v for k, v in headers}
    if fields.get("expect", "").lower() == "100-continue":
        headers = [(k, v) for k, v in headers if k.lower() != "expect"]
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        head = ("\r\n".join([lines[0], *(f"{k}: {v}" for k, v in headers)]) + "\r\n\r\n").encode(
            "latin-1"
        )
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0") or 0))
    request = ProxiedRequest(host, service, method, target, tuple(headers), body)
    return request, head + body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body with its framing (through the trailer's blank line)."""
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        parts.append(size_line)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                parts.append(trailer)
                if trailer == b"\r\n":
                    return b"".join(parts)
        parts.append(await reader.readexactly(size + 2))
