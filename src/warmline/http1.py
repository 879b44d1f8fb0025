"""One keep-alive HTTP/1.1 connection: the one HTTP client of warmline's production code.

Every AWS client (:mod:`warmline.aws`) and the LLM providers' streaming transport
(:mod:`warmline.agent.providers.transport`) send over it, so it sits beside both packages
rather than inside either.

Why not ``http.client``: a voice call posts every token to ``@connections`` and a cold
environment posts its first token while the caller waits. ``http.client`` sends a request
in two writes (head, then body: two TCP segments, two wake-ups of the peer), checks every
header with a regex and parses every response head with ``email.feedparser``; importing it
loads ``email.parser`` too. This module writes a request in one ``sendall``, splits the
response head as bytes and imports ``socket`` only (``ssl`` as well for https endpoints),
on the first request (``bench/import_cost.py`` measures the import side).

What it does: sends a request that the caller built (:func:`message`: head + body) in one
write; reads the status line and headers; reads the body, whole or as it arrives, by
``Content-Length``, by chunked transfer coding, or to the end of the stream (then the
connection is not reused); honours ``Connection: close``; reaches an https endpoint
through an HTTP proxy's ``CONNECT`` tunnel when ``HTTPS_PROXY`` says so
(:func:`proxy_from_environment`, botocore's rules). What it does not: proxies for plain
http, proxy credentials, redirects, ``Expect: 100-continue``, compression (the caller
sends ``Accept-Encoding: identity``), pipelining.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    import socket
    import ssl

__all__ = [
    "DEFAULT_PORTS",
    "Http1Connection",
    "ProtocolError",
    "RemoteDisconnected",
    "Response",
    "client_tls",
    "message",
    "proxy_from_environment",
    "split_endpoint",
]

#: Ports implied by the scheme (and left out of the Host header).
DEFAULT_PORTS = {"http": 80, "https": 443}

#: Longest response head we accept; API Gateway's are a few hundred bytes.
MAX_HEAD_BYTES = 64 * 1024
#: Longest response body we accept (GetConnection's document is < 1 KB; errors are small).
MAX_BODY_BYTES = 1024 * 1024
_READ_SIZE = 65536


def message(method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """A whole request, head and body, ready for :meth:`Http1Connection.request`.

    ``Content-Length`` is added for a body (and for POST/PUT without one).

    Raises:
        ValueError: a header name or value, the method or the path holds CR, LF or NUL
            (it would split the request: header injection).
    """
    lines = [f"{method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    for line in lines:
        if "\r" in line or "\n" in line or "\x00" in line:
            raise ValueError(f"CR, LF or NUL inside a request line or header: {line[:60]!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def client_tls(ca_bundle: str | None) -> ssl.SSLContext:
    """The client TLS context of an AWS endpoint: the default CA store, or the file
    ``ca_bundle`` (``AWS_CA_BUNDLE``, as boto3 honours it). ``ssl`` is imported here, on
    the first https request only."""
    import ssl

    return ssl.create_default_context(cafile=ca_bundle or None)


def split_endpoint(endpoint: str, what: str) -> tuple[str, str, int, str, str]:
    """Split an endpoint URL into scheme, host, port, Host header and base path.

    Written out rather than ``urllib.parse`` (a few ms of import) since only this shape is
    valid: ``scheme://host[:port][/base/path]``. Every AWS client takes its endpoint
    through it (:class:`warmline.aws.client.AwsClient`).

    Args:
        endpoint: e.g. ``https://abc.execute-api.eu-west-1.amazonaws.com/prod``.
        what: names the endpoint in errors (``"@connections"``, ``"Lambda"``).

    Raises:
        ConfigurationError: any other shape (names it).
    """
    if any(c in endpoint for c in " \t\r\n\x00"):
        # it becomes the request line and the Host header, written out as they are
        raise ConfigurationError(f"{what} endpoint holds white space: {endpoint!r}")
    scheme, sep, rest = endpoint.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        raise ConfigurationError(
            f"{what} endpoint must be http(s)://host[:port][/path]: {endpoint!r}"
        )
    if "?" in rest or "#" in rest:
        raise ConfigurationError(f"{what} endpoint takes no query or fragment: {endpoint!r}")
    netloc, slash, path = rest.partition("/")
    if not netloc or "@" in netloc:
        raise ConfigurationError(f"{what} endpoint needs a plain host: {endpoint!r}")
    if netloc.startswith("["):  # IPv6 literal
        bracket = netloc.find("]")
        if bracket < 0:
            raise ConfigurationError(f"unterminated IPv6 address in {what} endpoint {endpoint!r}")
        host, port_text = netloc[1:bracket], netloc[bracket + 1 :].removeprefix(":")
        shown = f"[{host.lower()}]"
    else:
        host, _, port_text = netloc.partition(":")
        shown = host.lower()
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigurationError(f"bad port in {what} endpoint {endpoint!r}") from None
    if not 0 < port < 65536:
        raise ConfigurationError(f"bad port in {what} endpoint {endpoint!r}")
    host_header = shown if port == DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    base_path = (slash + path).rstrip("/")
    return scheme, host.lower(), port, host_header, base_path


def proxy_from_environment(
    scheme: str, host: str, environ: Mapping[str, str]
) -> tuple[str, int] | None:
    """The ``(host, port)`` of the HTTP proxy an https request to ``host`` goes through.

    botocore's rules (``urllib.request.getproxies`` / ``proxy_bypass``): ``https_proxy``,
    else ``HTTPS_PROXY``; none for a host ``NO_PROXY`` (``no_proxy`` first) lists, by equal
    name or as a domain suffix (``example.com`` and ``.example.com`` both cover
    ``a.example.com``), or for every host when it is ``*``. Only https endpoints are
    tunnelled (AWS's endpoints all are; plain-http ones are local). On AWS no such variable
    is set, so this is a few dictionary lookups, once per client.

    Raises:
        ConfigurationError: the proxy URL is not ``http://host[:port]`` (credentials,
            an https proxy and paths are not supported).
    """
    if scheme != "https":
        return None
    url = environ.get("https_proxy") or environ.get("HTTPS_PROXY")
    if not url:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    name = host.lower()
    for entry in no_proxy.split(","):
        entry = entry.strip().lstrip(".").lower()
        if entry == "*" or (entry and (name == entry or name.endswith("." + entry))):
            return None
    if "://" not in url:
        url = "http://" + url  # urllib reads a bare host:port as http
    scheme_, _host, port, _header, path = split_endpoint(url, "HTTPS_PROXY")
    if scheme_ != "http" or path:
        raise ConfigurationError(f"HTTPS_PROXY must be http://host[:port]: {url!r}")
    return _host, port


class RemoteDisconnected(ConnectionResetError):
    """The peer closed the connection before a complete answer (as ``http.client``'s)."""


class ProtocolError(OSError):
    """The answer is not HTTP/1.x as we can read it (garbage, oversized, bad length)."""


class Response:
    """Status, lower-cased headers and body of one answer.

    Attributes:
        error: for a pseudo-answer of status 0 (the peer closed without answering), the
            name of the exception that showed it; ``""`` otherwise.
    """

    __slots__ = ("body", "error", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, error: str = "") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error


# How the body of the current answer is framed (Http1Connection._mode).
_DONE = 0  # no body left (or none at all)
_LENGTH = 1  # Content-Length: ``_left`` bytes to go
_CHUNKED = 2  # chunked: ``_left`` bytes of the current chunk to go (then CRLF), or -1
_TO_EOF = 3  # until the peer closes


class Http1Connection:
    """A socket to ``host:port`` (TLS when ``tls`` is given), opened on first use.

    Either :meth:`request` (send, read the whole answer) or, for an answer read as it
    arrives, :meth:`send`, :meth:`read_head`, then :meth:`read_some` until ``b""``; after
    that, :attr:`reusable` says whether the socket may carry another request.

    Args:
        host: name or address to connect to (also the TLS server name).
        port: TCP port.
        timeout_s: connect and per-read timeout.
        tls: the client TLS context for https, or None for plain http.
        proxy: ``(host, port)`` of an HTTP proxy to tunnel through with ``CONNECT``
            (:func:`proxy_from_environment`), or None to connect directly.
    """

    __slots__ = (
        "_buffer",
        "_host",
        "_keep",
        "_left",
        "_mode",
        "_port",
        "_proxy",
        "_timeout_s",
        "_tls",
        "sock",
    )

    def __init__(
        self,
        host: str,
        port: int,
        timeout_s: float,
        tls: ssl.SSLContext | None = None,
        proxy: tuple[str, int] | None = None,
    ) -> None:
        self._proxy = proxy
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        self._tls = tls
        self._buffer = b""
        self._mode = _DONE
        self._left = 0
        self._keep = False
        #: the open socket, or None (never opened, or closed after an error / close).
        self.sock: socket.socket | None = None

    @property
    def reusable(self) -> bool:
        """The last answer was read to its end and the peer keeps the connection open."""
        return self.sock is not None and self._mode == _DONE and self._keep

    def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        sock, self.sock = self.sock, None
        self._buffer = b""
        self._mode = _DONE
        if sock is not None:
            sock.close()

    def request(self, message: bytes, max_body: int = MAX_BODY_BYTES) -> Response:
        """Send ``message`` (head and body, as one write) and read the whole answer.

        Args:
            message: the request, from :func:`message`.
            max_body: the longest body accepted.

        Raises:
            RemoteDisconnected, ConnectionResetError, BrokenPipeError: the peer closed the
                connection before answering (the socket is closed).
            TimeoutError: no answer in time (the socket is closed).
            ProtocolError: an answer we cannot read (the socket is closed).
            OSError: connecting failed.
        """
        self.send(message)
        try:
            status, headers = self.read_head()
            if self._mode == _LENGTH and self._left > max_body:
                raise ProtocolError(f"Content-Length over {max_body}: {self._left}")
            parts: list[bytes] = []
            size = 0
            while piece := self.read_some():
                size += len(piece)
                if size > max_body:
                    raise ProtocolError(f"body too long (over {max_body} bytes)")
                parts.append(piece)
        except BaseException:
            self.close()
            raise
        if not self.reusable:
            self.close()
        return Response(status, headers, b"".join(parts))

    def send(self, message: bytes) -> None:
        """Open the socket if needed and send ``message`` in one write.

        Raises:
            OSError: connecting or sending failed (the socket is closed).
        """
        if self.sock is None:
            self._open()
        assert self.sock is not None
        try:
            self.sock.sendall(message)
        except BaseException:
            self.close()
            raise

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Read the answer's status line and headers (interim 1xx answers are skipped).

        Returns:
            The status and the headers, names in lower case.

        Raises:
            RemoteDisconnected: the peer closed the connection without an answer.
            ProtocolError: not an HTTP/1.x answer, or a head over ``MAX_HEAD_BYTES``.
            TimeoutError, OSError: reading failed.
        """
        while True:
            status, headers, version = self._read_head_once()
            if not 100 <= status < 200:  # an interim answer we did not ask for: skip it
                break
        self._keep = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
        self._left = 0
        if status in (204, 304):
            self._mode = _DONE
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode, self._left = _CHUNKED, -1
        elif (length := headers.get("content-length")) is not None:
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length: {length[:40]!r}")
            self._mode, self._left = _LENGTH, int(length)
            if not self._left:
                self._mode = _DONE
        else:
            self._mode, self._keep = _TO_EOF, False
        return status, headers

    def read_some(self, limit: int = _READ_SIZE) -> bytes:
        """The next bytes of the body (at most ``limit``), ``b""`` at its end.

        Blocks until some arrive; returns what has arrived rather than waiting for more.

        Raises:
            RemoteDisconnected: the peer closed the connection mid-body.
            ProtocolError: bad chunk framing.
            TimeoutError, OSError: reading failed.
        """
        mode = self._mode
        if mode == _DONE:
            return b""
        if mode == _CHUNKED and self._left <= 0 and not self._next_chunk():
            return b""
        if not self._buffer and not self._fill():
            if mode == _TO_EOF:
                self._mode = _DONE
                return b""
            raise RemoteDisconnected("the peer closed the connection mid-answer")
        if mode == _TO_EOF:
            piece, self._buffer = self._buffer[:limit], self._buffer[limit:]
            return piece
        take = min(self._left, limit)
        piece, self._buffer = self._buffer[:take], self._buffer[take:]
        self._left -= len(piece)
        if mode == _LENGTH and not self._left:
            self._mode = _DONE
        return piece

    def open(self) -> None:
        """Connect (and shake hands, for TLS) now rather than on the first request.

        Raises:
            OSError: connecting failed.
        """
        if self.sock is None:
            self._open()

    # --- internals -----------------------------------------------------------------------
    def _open(self) -> None:
        import socket  # on the first request: importing this module stays free of it

        proxy = self._proxy
        address = proxy if proxy is not None else (self._host, self._port)
        sock = socket.create_connection(address, self._timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None:
                _tunnel(sock, self._host, self._port)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._buffer = b""
        self._mode = _DONE

    def _fill(self) -> bool:
        """Read more into the buffer; False at the end of the stream."""
        assert self.sock is not None
        chunk = self.sock.recv(_READ_SIZE)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _read_head_once(self) -> tuple[int, dict[str, str], str]:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("response head too long")
            if not self._fill():
                raise RemoteDisconnected("the peer closed the connection without an answer")
        head = self._buffer[:end].decode("latin-1")
        self._buffer = self._buffer[end + 4 :]
        status_line, _, header_text = head.partition("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in header_text.split("\r\n") if header_text else ():
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"malformed header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers, parts[0]

    def _next_chunk(self) -> bool:
        """Start the next chunk (after the CRLF ending the last one); False at the end."""
        if self._left == 0 and self._read_line():
            raise ProtocolError("chunk not followed by CRLF")
        size_text = self._read_line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_text[:40]!r}") from None
        if size < 0:
            raise ProtocolError(f"bad chunk size: {size_text[:40]!r}")
        if size == 0:
            while self._read_line():  # trailers, up to the empty line
                pass
            self._mode = _DONE
            return False
        self._left = size
        return True

    def _read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
                return line
            if len(self._buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("chunk line too long")
            if not self._fill():
                raise RemoteDisconnected("the peer closed the connection mid-answer")


def _tunnel(sock: socket.socket, host: str, port: int) -> None:
    """Ask the proxy on ``sock`` for a tunnel to ``host:port``; the TLS handshake follows.

    Raises:
        ProtocolError: the proxy refused (its status line is in the message).
    """
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RemoteDisconnected(f"the proxy closed the tunnel to {target}")
        head += chunk
        if len(head) > MAX_HEAD_BYTES:
            raise ProtocolError("proxy response head too long")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        raise ProtocolError(f"the proxy refused CONNECT {target}: {status_line[:120]}")
