"""A tiny HTTP/1.1 request parser and response writer, sans-I/O.

One port serves WebSocket upgrades, ``@connections`` and the Lambda Invoke API, as one
API Gateway host serves both ``wss://`` and the ``@connections`` callback URL. websockets'
own server refuses non-GET requests, so requests are parsed here: request line, headers,
``Content-Length`` bodies and keep-alive (boto3 keeps connections open). Chunked request
bodies are not needed by boto3's clients and are refused with 411.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

#: Percent-decoding of path segments, remembered: every ``@connections`` post names its
#: connection id (``...%3D``) again, and decoding it each time shows in the emulator's CPU
#: per echo.
_unquote_segment = functools.lru_cache(maxsize=4096)(unquote)

__all__ = ["HttpError", "Request", "RequestParser", "Response", "json_response"]

#: Largest request head (line + headers); API Gateway's URL limit is 4096 chars (§2.5).
MAX_HEAD_BYTES = 64 * 1024
#: Largest request body accepted at all (the Invoke API's 6 MB sync payload, §3.4).
MAX_BODY_BYTES = 6 * 1024 * 1024 + 1024

_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    202: "Accepted",
    204: "No Content",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    411: "Length Required",
    413: "Payload Too Large",
    421: "Misdirected Request",
    426: "Upgrade Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


#: Keep-alive answers with no headers and no body, encoded once (every post gets one).
_BARE = {
    status: f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Length: 0\r\n\r\n".encode()
    for status in (200, 204)
}


class HttpError(Exception):
    """A request that cannot be parsed; answer with ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Request:
    """One parsed request; header names keep the client's case."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    _by_name: dict[str, str] | None = None

    @property
    def path(self) -> str:
        """The raw (still percent-encoded) path."""
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> list[tuple[str, str]]:
        """Decoded query parameters in order."""
        if "?" not in self.target:
            return []
        return parse_qsl(self.target.split("?", 1)[1], keep_blank_values=True)

    def header(self, name: str) -> str | None:
        """A header's value, looked up case-insensitively (last one wins)."""
        by_name = self._by_name
        if by_name is None:  # built on the first lookup; a request is looked up ~5 times
            by_name = self._by_name = {key.lower(): value for key, value in self.headers}
        return by_name.get(name.lower())

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the response."""
        conn = (self.header("Connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    def path_segments(self) -> list[str]:
        """Path segments, each percent-decoded (so ``R1k%3D`` becomes ``R1k=``)."""
        return [_unquote_segment(p) if "%" in p else p for p in self.path.split("/")[1:]]


@dataclass(slots=True)
class Response:
    """A response to serialize with :meth:`encode`."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encode(self, *, keep_alive: bool = True) -> bytes:
        """Status line, headers (plus Content-Length/Connection) and body."""
        if keep_alive and not self.headers and not self.body and self.status in _BARE:
            return _BARE[self.status]
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.status != 101:
            lines.append(f"Content-Length: {len(self.body)}")
            if not keep_alive:
                lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


#: Not an answer: reset the socket without one (the ``connections.drop`` fault).
DROP = Response(0)


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    """A JSON response with ``Content-Type: application/json``."""
    return Response(
        status,
        json.dumps(payload).encode(),
        [("Content-Type", "application/json"), *(headers or [])],
    )


class RequestParser:
    """Incremental parser: ``feed(bytes)``, then ``next_request()`` until None."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    def take_rest(self) -> bytes:
        """Bytes received after the last request (e.g. early WebSocket frames)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest

    def next_request(self) -> Request | None:
        """The next complete request, or None when more bytes are needed.

        Raises:
            HttpError: malformed request, or over the size limits.
        """
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise HttpError(400, "request head too large")
            return None
        head = bytes(self._buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, "bad request line")
        headers: list[tuple[str, str]] = []
        by_name: dict[str, str] = {}  # the lookup table, built in the same pass
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(400, "bad header line")
            value = value.strip()
            headers.append((name, value))
            by_name[name.lower()] = value
        request = Request(parts[0], parts[1], parts[2], headers, _by_name=by_name)
        if by_name.get("transfer-encoding", "").lower() not in ("", "identity"):
            raise HttpError(411, "chunked request bodies are not supported")
        length_text = by_name.get("content-length") or "0"
        if not length_text.isdigit():
            raise HttpError(400, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")
        total = end + 4 + length
        if len(self._buf) < total:
            return None
        request.body = bytes(self._buf[end + 4 : total])
        del self._buf[:total]
        return request
