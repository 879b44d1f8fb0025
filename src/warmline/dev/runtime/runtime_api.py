"""The Lambda Runtime API inside one environment: how runtimes other than the built-in run.

Node.js, ``provided.al2023``/``provided.al2`` (an executable ``bootstrap``) and Python under
AWS's own runtime interface client (``runtime_client = "aws"``) talk to Lambda over HTTP
(docs/protocols.md §3.10). Their environment is created exactly as a Python one (forked,
sandboxed, in its own process group, its output on the environment's pipe); instead of
importing a handler it serves the Runtime API on ``127.0.0.1:<port>``, starts the runtime
as its child with ``AWS_LAMBDA_RUNTIME_API`` set, and relays:

* the first ``GET /runtime/invocation/next`` ends init (``ready``, Init Duration from the
  fork); ``POST /runtime/init/error``, or the runtime exiting first, fails it;
* an invoke frame from the emulator answers the waiting ``next`` with the event and the
  ``Lambda-Runtime-*`` headers; ``POST /runtime/invocation/{id}/response`` or ``/error``
  becomes the result frame. One invocation at a time: the emulator sends the next invoke
  only after this one's result, and a ``next`` waits until then;
* a response over 6 MB is refused with 413 and fails the invocation
  (``Function.ResponseSizeTooLarge``); an unknown request id gets 400, a second answer to
  the same invocation 403;
* the runtime exiting mid-invocation ends this process with its exit status, which the
  emulator reports as ``Runtime.ExitError``; the function timeout kills the process group,
  the runtime included.

The emulator's bookkeeping (START/END/REPORT, timeouts, the dashboard) sees the same frames
as from a Python environment. Standard library only, and nothing the zygote has not loaded
already (``select``, ``socket``, ``json``): the zygote imports this module for every
environment.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from warmline.dev.runtime.wire import MAX_RESPONSE_BYTES, SyncChannel, frame

__all__ = ["relay"]

_PREFIX = "/2018-06-01/runtime/"
#: A request body past this is not read: the connection is closed.
_MAX_BODY = 4 * MAX_RESPONSE_BYTES
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    413: "Request Entity Too Large",
}


class _Conn:
    """One HTTP/1.1 connection from the runtime: its buffer and its parked ``next``."""

    __slots__ = ("buf", "continued", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.continued = False

    def take_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        """The next whole request in the buffer, if one has arrived.

        Raises:
            ValueError: a malformed or oversize request.
        """
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 64 * 1024:
                raise ValueError("header too large")
            return None
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        method, target, _version = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parsed = _dechunk(buf, start)
            if parsed is None:
                self._continue(headers)
                return None
            body, used = parsed
        else:
            size = int(headers.get("content-length") or 0)
            if size > _MAX_BODY:
                raise ValueError("body too large")
            if len(buf) < start + size:
                self._continue(headers)
                return None
            body, used = bytes(buf[start : start + size]), start + size
        del buf[:used]
        self.continued = False
        return method, target, headers, body

    def _continue(self, headers: Mapping[str, str]) -> None:
        """Answer ``Expect: 100-continue`` (curl sends it before a large body)."""
        if not self.continued and headers.get("expect", "").lower() == "100-continue":
            self.continued = True
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """A chunked body from ``pos``: ``(body, end offset)``, or None while incomplete."""
    parts: list[bytes] = []
    total = 0
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer = buf.find(b"\r\n", pos)
            return (b"".join(parts), trailer + 2) if trailer >= 0 else None
        total += size
        if total > _MAX_BODY:
            raise ValueError("body too large")
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def _response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines.append("Content-Type: application/json")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _error_reply(status: int, error_type: str, message: str) -> bytes:
    return _response(
        status, json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    )


_ACCEPTED = _response(202, b'{"status":"OK"}')


def _peak_kb(pid: int) -> int:
    """The runtime process's peak resident memory (``VmHWM``), 0 when unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _function_error(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The error a runtime posted: its JSON as sent, or a minimal one around its text."""
    try:
        error = json.loads(body) if body else None
    except ValueError:
        error = None
    if not isinstance(error, dict):
        error = {"errorMessage": body.decode(errors="replace")}
    error.setdefault("errorType", headers.get("lambda-runtime-function-error-type", "Unhandled"))
    error.setdefault("errorMessage", "")
    return error


def _payload_json(body: bytes) -> bytes:
    """The response as the JSON text a result frame embeds (text that is not JSON: a string)."""
    if not body.strip():
        return b"null"
    try:
        json.loads(body)
    except ValueError:
        return json.dumps(body.decode(errors="replace")).encode()
    return body


class _Relay:
    """The state of one environment's Runtime API: the runtime, its connections, the invocation."""

    def __init__(
        self,
        channel: SyncChannel,
        config: Mapping[str, Any],
        t0: float,
        trace_header: Callable[[Any], str],
    ) -> None:
        self.channel = channel
        self.config = config
        self.t0 = t0
        self.trace_header = trace_header
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.conns: dict[int, _Conn] = {}
        self.initialised = False
        #: the connection whose ``next`` waits for an invoke.
        self.parked: _Conn | None = None
        #: the invoke not yet handed to the runtime, then the one it runs.
        self.pending: dict[str, Any] | None = None
        self.current: str | None = None
        self.answered: set[str] = set()
        self.started = 0.0
        self.pid = 0

    @property
    def address(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return f"{host}:{port}"

    def start_runtime(self) -> None:
        """Start the runtime's command with ``AWS_LAMBDA_RUNTIME_API`` (init error if it cannot)."""
        api = self.config["runtime_api"]
        argv = [str(a) for a in api["command"]]
        env = dict(os.environ)
        env.update(api.get("env") or {})
        env["AWS_LAMBDA_RUNTIME_API"] = self.address
        try:
            self.pid = os.posix_spawnp(argv[0], argv, env)
        except OSError as exc:
            self.init_failed(
                {
                    "errorType": "Runtime.InvalidEntrypoint",
                    "errorMessage": f"Couldn't start {argv[0]}: {exc.strerror or exc}",
                }
            )

    def init_failed(self, error: Mapping[str, Any]) -> NoReturn:
        init_ms = (time.monotonic() - self.t0) * 1000.0
        self.channel.send({"t": "init_error", "error": dict(error), "init_ms": init_ms})
        self.stop(1)

    def stop(self, code: int) -> NoReturn:
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(code)

    # --- the loop -------------------------------------------------------------------------

    def serve(self) -> NoReturn:
        pidfd = os.pidfd_open(self.pid) if hasattr(os, "pidfd_open") else -1
        wire = self.channel.fileno()
        listener = self.listener.fileno()
        while True:
            watched = [listener, *self.conns]
            if self.initialised and self.pending is None and self.current is None:
                watched.append(wire)
            if pidfd >= 0:
                watched.append(pidfd)
            readable, _, _ = select.select(watched, [], [], None if pidfd >= 0 else 0.2)
            if pidfd < 0 or pidfd in readable:
                self.reap()
            for fd in readable:
                if fd == listener:
                    sock, _ = self.listener.accept()
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.conns[sock.fileno()] = _Conn(sock)
                elif fd == wire:
                    self.on_invoke()
                elif fd in self.conns:
                    self.on_readable(self.conns[fd])

    def reap(self) -> None:
        """The runtime exited: fail init, or end this environment with its status."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        self.pid = 0
        if not self.initialised:
            how = f"exit status {code}" if code >= 0 else f"signal: {signal.Signals(-code).name}"
            self.init_failed(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"Runtime exited with error: {how}",
                }
            )
        # Mid-invocation or idle: the emulator sees this process end as the runtime did.
        os._exit(code if code >= 0 else 128 - code)

    def on_invoke(self) -> None:
        message = self.channel.recv()
        if message is None:  # the emulator closed the environment
            self.stop(0)
        self.pending = message
        if self.parked is not None:
            conn, self.parked = self.parked, None
            self.hand_out(conn)

    def hand_out(self, conn: _Conn) -> None:
        """Answer a waiting ``next`` with the pending invoke."""
        message = self.pending
        assert message is not None
        self.pending = None
        request_id = str(message["id"])
        event = message.get("event")
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(message["deadline_ms"])),
            "Lambda-Runtime-Invoked-Function-Arn": str(self.config["arn"]),
            "Lambda-Runtime-Trace-Id": self.trace_header(event),
        }
        client_context = message.get("client_context")
        if client_context:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        self.current = request_id
        self.started = time.perf_counter()
        body = json.dumps(event, separators=(",", ":")).encode()
        self.send(conn, _response(200, body, headers))

    def on_readable(self, conn: _Conn) -> None:
        try:
            chunk = conn.sock.recv(256 * 1024)
        except OSError:
            chunk = b""
        if not chunk:
            self.drop(conn)
            return
        conn.buf += chunk
        while True:
            try:
                request = conn.take_request()
            except (ValueError, IndexError):
                self.send(conn, _error_reply(400, "InvalidRequest", "malformed request"))
                self.drop(conn)
                return
            if request is None:
                return
            self.route(conn, *request)
            if conn.sock.fileno() < 0:
                return

    def drop(self, conn: _Conn) -> None:
        self.conns.pop(conn.sock.fileno(), None)
        if self.parked is conn:
            self.parked = None
        conn.sock.close()

    def send(self, conn: _Conn, data: bytes) -> None:
        try:
            conn.sock.sendall(data)
        except OSError:
            self.drop(conn)

    # --- the endpoints --------------------------------------------------------------------

    def route(
        self, conn: _Conn, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        path = target.split("?", 1)[0]
        if not path.startswith(_PREFIX):
            self.send(conn, _error_reply(404, "NotFound", f"no such resource: {path}"))
            return
        resource = path[len(_PREFIX) :]
        if resource == "invocation/next" and method == "GET":
            self.next(conn)
        elif resource == "init/error" and method == "POST":
            if self.initialised:
                self.send(conn, _error_reply(403, "InvalidStateTransition", "init has ended"))
                return
            self.send(conn, _ACCEPTED)
            self.init_failed(_function_error(headers, body))
        elif resource.startswith("invocation/") and method == "POST":
            request_id, _, kind = resource[len("invocation/") :].partition("/")
            if kind not in ("response", "error"):
                self.send(conn, _error_reply(404, "NotFound", f"no such resource: {path}"))
            else:
                self.answer(conn, request_id, kind, headers, body)
        else:
            self.send(conn, _error_reply(404, "NotFound", f"no such resource: {method} {path}"))

    def next(self, conn: _Conn) -> None:
        if not self.initialised:
            self.initialised = True
            init_ms = (time.monotonic() - self.t0) * 1000.0
            self.channel.send({"t": "ready", "init_ms": init_ms, "pid": os.getpid()})
        if self.current is not None:  # a next before this invocation's answer: it is over
            self.finish(
                {
                    "errorType": "Runtime.InvalidResponse",
                    "errorMessage": "the runtime asked for the next invocation without answering",
                }
            )
        if self.pending is not None:
            self.hand_out(conn)
        else:
            self.parked = conn

    def answer(
        self, conn: _Conn, request_id: str, kind: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        if request_id != self.current:
            if request_id in self.answered:
                self.send(
                    conn,
                    _error_reply(403, "InvalidStateTransition", "invocation already answered"),
                )
            else:
                self.send(conn, _error_reply(400, "InvalidRequestID", "Invalid request ID"))
            return
        if kind == "error":
            self.finish(_function_error(headers, body))
            self.send(conn, _ACCEPTED)
        elif len(body) > MAX_RESPONSE_BYTES:
            self.finish(
                {
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": "Response payload size exceeded maximum allowed payload "
                    f"size ({MAX_RESPONSE_BYTES} bytes).",
                }
            )
            self.send(
                conn,
                _error_reply(
                    413,
                    "RequestEntityTooLarge",
                    f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                ),
            )
        else:
            self.finish(None, _payload_json(body))
            self.send(conn, _ACCEPTED)

    def finish(self, error: Mapping[str, Any] | None, payload: bytes = b"null") -> None:
        """Send this invocation's result frame; the next invoke may come."""
        request_id = self.current
        assert request_id is not None
        self.current = None
        self.answered.add(request_id)
        if len(self.answered) > 64:
            self.answered.clear()
            self.answered.add(request_id)
        duration_ms = (time.perf_counter() - self.started) * 1000.0
        peak = _peak_kb(self.pid)
        if error is None:
            head = json.dumps(
                {"t": "result", "id": request_id, "ok": True, "duration_ms": duration_ms,
                 "maxrss_kb": peak},
                separators=(",", ":"),
            ).encode()  # fmt: skip
            self.channel.send_bytes(frame(head[:-1] + b',"payload":' + payload + b"}"))
        else:
            self.channel.send(
                {"t": "result", "id": request_id, "ok": False, "error": dict(error),
                 "duration_ms": duration_ms, "maxrss_kb": peak}
            )  # fmt: skip


def relay(
    channel: SyncChannel,
    config: Mapping[str, Any],
    t0: float,
    trace_header: Callable[[Any], str],
) -> NoReturn:
    """Serve the Runtime API to the configured runtime until the emulator closes the socket.

    Args:
        channel: this environment's socket to the emulator.
        config: its configuration (``runtime_api``: the command and its variables).
        t0: ``time.monotonic()`` when the environment started (init starts there).
        trace_header: ``_X_AMZN_TRACE_ID`` for an event (``Lambda-Runtime-Trace-Id``).
    """
    state = _Relay(channel, config, t0, trace_header)
    state.start_runtime()
    state.serve()
