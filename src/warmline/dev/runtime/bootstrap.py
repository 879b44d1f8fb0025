"""Inside one environment: set it up, import the handler, then serve invocations forever.

This is the emulator's stand-in for Lambda's Python runtime (the runtime interface client).
It runs in the environment process, forked from the pre-started runtime process (see
:mod:`warmline.dev.runtime.zygote`) or, as a fallback, in a fresh interpreter
(``python -m warmline.dev.runtime.bootstrap FD T0``). Either way the user's module is
imported *here*, once per environment, so its init cost is paid and measured as on AWS
(docs/performance.md, runtime_coldstart).

Faithful details, after the AWS runtime interface client:

* handler names ``"pkg/mod.func"`` or ``"pkg.mod.func"``; init failures are classified as
  ``Runtime.MalformedHandlerName``, ``Runtime.ImportModuleError``,
  ``Runtime.UserCodeSyntaxError``, ``Runtime.HandlerNotFound`` or the exception's class;
* a handler exception becomes ``{"errorType", "errorMessage", "stackTrace"}`` and the
  environment lives on; an unserialisable return value is ``Runtime.MarshalError``;
  ``Decimal`` serialises as a number;
* stdout is line-buffered and the root logger writes
  ``[LEVEL]\\t<time>Z\\t<request id>\\tmessage`` lines, as on Lambda.

After each invocation the environment flushes stdout and stderr before it sends the result,
so everything the invocation printed is in the output pipe when the emulator reads the
result (:meth:`warmline.dev.runtime.environment.LinePipe.drain`).

Standard library only: this module is what the pre-started process imports. It also
imports what AWS's Python runtime has loaded before it imports the handler module (its
runtime interface client talks HTTP to the Runtime API and encodes JSON with Decimal
support): ``http.client``, ``decimal``, ``uuid``, ``json``, ``logging``, ``socket``,
``traceback``. Environments forked from it start with them, so user init is measured on
top of them as on AWS — the same list ``warmline coldstart --lambda`` preloads
(``warmline.tools.coldstart.LAMBDA_BOOTSTRAP_MODULES``).
"""

from __future__ import annotations

import decimal  # noqa: F401 - preloaded as by AWS's runtime (module docstring)
import http.client  # noqa: F401 - preloaded as by AWS's runtime (module docstring)
import importlib
import json
import logging
import os
import resource
import socket
import sys
import time
import traceback
import uuid  # noqa: F401 - preloaded as by AWS's runtime (module docstring)
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from warmline.dev.runtime import runtime_api, sandbox, snapshot_hooks
from warmline.dev.runtime.context import LambdaContext
from warmline.dev.runtime.wire import MAX_RESPONSE_BYTES, SyncChannel, frame

__all__ = [
    "apply_environment",
    "sandbox",
    "exit_for",
    "trace_header",
    "load_handler",
    "main",
    "prepare",
    "run",
    "serve",
]

Handler = Callable[[Any, Any], Any]

#: The request being served, for the Lambda log format of the root logger.
_current_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


def _install_logging() -> None:
    """Give the root logger Lambda's handler and format (level stays WARNING, as there)."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)


_prepared = False
_CTYPES = ("ctypes", "ctypes._endian")
#: The emulator's own modules, taken out of ``sys.modules`` by :func:`prepare` but kept
#: alive: freed, each object would be written to (a copy-on-write page fault apiece in a
#: forked environment, ~0.4 ms per environment). The user's ``import warmline`` still
#: executes every module afresh.
_retired_modules: list[Any] = []


#: The emulator's module names, recorded by :func:`preload` (None: it has not run here).
_own_modules: list[str] | None = None
#: Modules loaded from outside the standard library, recorded by :func:`preload`: a
#: sandboxed environment retires them too (they are not on its import path).
_foreign_modules: list[str] = []


def _warmline_modules() -> list[str]:
    return [m for m in sys.modules if m == "warmline" or m.startswith("warmline.")]


def preload() -> None:
    """Once, in the process environments are forked from (the zygote), before it forks.

    The set-up every environment would otherwise repeat for itself: an empty process
    environment (each function's variables are applied on top), line-buffered stdout and
    the root logger in Lambda's format. ~0.7 ms of CPU less per environment, which a load
    that scales out pays dozens of times on a laptop's two cores.
    """
    global _own_modules, _foreign_modules
    if _own_modules is not None:
        return
    _own_modules = _warmline_modules()
    sandbox.load_libc()
    own = set(_own_modules)
    _foreign_modules = [m for m in sandbox.foreign_modules() if m not in own]
    os.environ.clear()
    try:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except AttributeError:  # replaced by something that is not a TextIOWrapper
        pass
    _install_logging()


def prepare() -> None:
    """The part of runtime set-up that does not depend on the function.

    A spare environment (forked by the zygote before any request) runs this while it waits
    for its configuration, so it is off the cold-start path; otherwise
    :func:`apply_environment` runs it. What :func:`preload` did in the parent is not
    repeated.
    """
    global _prepared
    if _prepared:
        return
    _prepared = True
    if os.environ:
        os.environ.clear()
    # User code must pay for importing warmline itself, as it would on AWS. The names come
    # from the parent when it preloaded: walking sys.modules here touches (and copies) the
    # pages of every module name, ~0.4 ms.
    preload()  # in a forked environment: done by the parent already, names and all
    assert _own_modules is not None
    _retired_modules.extend(sys.modules.pop(n) for n in _own_modules if n in sys.modules)
    # ctypes serves the sandbox's mount calls (it holds its own reference); the user's
    # ``import ctypes`` loads it afresh, as on Lambda.
    _retired_modules.extend(sys.modules.pop(n) for n in _CTYPES if n in sys.modules)
    sys.modules["snapshot_restore_py"] = snapshot_hooks


def apply_environment(config: Mapping[str, Any], *, clear: bool = True) -> None:
    """Make this process look like a Lambda environment of the configured function.

    Args:
        config: the environment's configuration from the emulator (``env``, ``code_dir``).
        clear: a new environment (replace every variable, put ``code_dir`` on
            ``sys.path``) rather than a restore in snapstart mode (update the variables).
    """
    env: Mapping[str, str] = config["env"]
    code_dir = str(config["code_dir"])
    if clear:
        prepare()
        os.environ.clear()
        _isolate(config, code_dir)
    os.environ.update(env)
    time.tzset()
    os.chdir(code_dir)
    if not clear:
        _install_logging()


def _isolate(config: Mapping[str, Any], code_dir: str) -> None:
    """The sandbox (when configured): Lambda's filesystem view and import path."""
    policy = config.get("sandbox")
    import_path = config.get("import_path")
    if policy is not None:
        sandbox.enter(policy)
    if config.get("debug"):
        _attach_debugger(config["debug"])
    if import_path is None:
        sys.path.insert(0, code_dir)
        return
    kept = [sys.modules[n] for n in _foreign_modules if n in sys.modules]
    _retired_modules.extend(kept)  # kept alive, as in prepare()
    sandbox.restrict_imports(code_dir, [str(p) for p in import_path], _foreign_modules)


def _attach_debugger(options: Mapping[str, Any]) -> None:
    """``--debug``: the terminal and/or debugpy (:mod:`warmline.dev.runtime.debugger`).

    After the sandbox (debugpy starts threads, and a threaded process cannot enter a user
    namespace), before the import path is restricted (debugpy is not on Lambda's). The
    emulator's modules this loads leave ``sys.modules`` again: the function imports its
    own warmline, as on AWS.
    """
    from warmline.dev.runtime import debugger

    debugger.attach(options)
    loaded = [n for n in sys.modules if n == "warmline" or n.startswith("warmline.")]
    _retired_modules.extend(sys.modules.pop(n) for n in loaded)


def _fault(error_type: str, message: str, trace: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": trace or []}


def _user_trace(tb: Any) -> list[str]:
    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return traceback.format_list(frames)


def load_handler(name: str) -> tuple[Handler | None, dict[str, Any] | None]:
    """Import the handler's module and find the function, as Lambda's runtime does.

    Args:
        name: ``"module.func"``, module path with dots or slashes.

    Returns:
        ``(handler, None)`` or ``(None, error)`` with a Lambda-style error dict.
    """
    try:
        modname, fname = name.rsplit(".", 1)
    except ValueError as exc:
        return None, _fault("Runtime.MalformedHandlerName", f"Bad handler '{name}': {exc}")
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            return None, _fault(
                "Runtime.BuiltInModuleConflict",
                f"Cannot use built-in module {modname} as a handler module",
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        # As AWS's runtime interface client: the message only, an empty stack trace.
        message = f"Unable to import module '{modname}': {exc}"
        return None, _fault("Runtime.ImportModuleError", message)
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        return None, _fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace
        )
    except Exception as exc:  # any init failure is reported, not raised
        return None, _fault(type(exc).__name__, str(exc), _user_trace(exc.__traceback__))
    handler = getattr(module, fname, None)
    if handler is None:
        return None, _fault(
            "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
        )
    return handler, None


def _log_error(error: Mapping[str, Any]) -> None:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    trace = error.get("stackTrace")
    if trace is not None:  # even empty, as AWS's runtime interface client writes it
        lines.append("Traceback (most recent call last):")
        lines.extend(str(entry).rstrip("\n") for entry in trace)
    sys.stderr.write("\n".join(lines) + "\n")


def _default(obj: Any) -> Any:
    # The AWS runtime serialises Decimal (DynamoDB numbers) as a float.
    if type(obj).__name__ == "Decimal" and type(obj).__module__ in ("decimal", "_decimal"):
        return float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


#: ``json.dumps(result, default=_default)`` without building an encoder per call (the same
#: settings, so the same text).
_encode = json.JSONEncoder(default=_default).encode
_quote = json.encoder.encode_basestring_ascii


def _maxrss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _flush() -> None:
    # Before the result is sent: the emulator reads the output pipe dry when the result
    # arrives, so the invocation's prints must be in the pipe by then.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def serve(channel: SyncChannel, handler: Handler, config: Mapping[str, Any]) -> NoReturn:
    """Run invocations until the emulator closes the socket, then exit.

    Args:
        channel: the environment's socket.
        handler: the user's function.
        config: the environment's configuration (names for the context object).
    """
    global _current_request_id
    arn = str(config["arn"])
    name = str(config["function"])
    memory = str(config["memory_mb"])
    group = str(config["log_group"])
    stream = str(config["log_stream"])
    perf = time.perf_counter
    store_faults = False
    while True:
        message = channel.recv()
        if message is None:
            os._exit(0)
        request_id = str(message["id"])
        _current_request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = trace_header(message["event"])
        context = LambdaContext(
            aws_request_id=request_id,
            deadline_ms=int(message["deadline_ms"]),
            invoked_function_arn=arn,
            function_name=name,
            function_version="$LATEST",
            memory_limit_in_mb=memory,
            log_group_name=group,
            log_stream_name=stream,
            client_context=message.get("client_context"),
        )
        faults = message.get("faults")
        if faults is not None or store_faults:  # store faults injected into this invocation
            from warmline.stores import faulty

            faulty.set_active(faults.get("store") if faults else None)
            store_faults = faults is not None
        started = perf()
        body: bytes
        try:
            result = handler(message["event"], context)
            try:
                payload = _encode(result)
            except (TypeError, ValueError, OverflowError) as exc:
                error = _fault("Runtime.MarshalError", f"Unable to marshal response: {exc}")
                _log_error(error)
                body = _error_body(request_id, error, started)
            else:
                if len(payload) > MAX_RESPONSE_BYTES:
                    error = _fault(
                        "Function.ResponseSizeTooLarge",
                        "Response payload size exceeded maximum allowed payload size "
                        f"({MAX_RESPONSE_BYTES} bytes).",
                    )
                    _log_error(error)
                    body = _error_body(request_id, error, started)
                else:
                    # Written out, not json.dumps of a dict (~10 µs): per invocation.
                    duration_ms = (perf() - started) * 1000.0
                    body = (
                        f'{{"t":"result","id":{_quote(request_id)},"ok":true,'
                        f'"duration_ms":{duration_ms!r},"maxrss_kb":{_maxrss_kb()},'
                        f'"payload":{payload}}}'
                    ).encode()
        except Exception as exc:  # the handler's error is the result
            error = _fault(type(exc).__name__, str(exc), _user_trace(exc.__traceback__))
            error["requestId"] = request_id
            _log_error(error)
            body = _error_body(request_id, error, started)
        _flush()
        channel.send_bytes(frame(body))


def trace_header(event: Any) -> str:
    """``_X_AMZN_TRACE_ID`` for one invocation (docs/protocols.md §8.2).

    Lambda's runtime sets it before each invocation from the trace header of the request
    that caused it: the ``Root`` of the ``X-Amzn-Trace-Id`` that API Gateway put on the
    event's headers (``$connect``), or a fresh root when the event carries none, then the
    Lambda segment's ``Parent`` id and ``Sampled=0`` (nothing is traced locally).
    """
    root = None
    headers = event.get("headers") if type(event) is dict else None
    if type(headers) is dict:
        header = headers.get("X-Amzn-Trace-Id") or headers.get("x-amzn-trace-id")
        if isinstance(header, str):
            root = next((p for p in header.split(";") if p.startswith("Root=")), None)
    bits = os.urandom(20).hex()
    if root is None:
        root = f"Root=1-{int(time.time()):08x}-{bits[:24]}"
    return f"{root};Parent={bits[24:]};Sampled=0"


def _error_body(request_id: str, error: dict[str, Any], started: float) -> bytes:
    message = {
        "t": "result",
        "id": request_id,
        "ok": False,
        "error": error,
        "duration_ms": (time.perf_counter() - started) * 1000.0,
        "maxrss_kb": _maxrss_kb(),
    }
    return json.dumps(message, default=repr).encode()


def _init_ms(t0: float) -> float:
    return (time.monotonic() - t0) * 1000.0


def run(channel: SyncChannel, config: Mapping[str, Any], t0: float) -> NoReturn:
    """A new on-demand environment: set up, import the handler, report, serve.

    Args:
        channel: this environment's socket to the emulator.
        config: its configuration.
        t0: ``time.monotonic()`` when the environment started (init starts there).
    """
    try:
        apply_environment(config)
    except OSError as exc:  # the sandbox could not be set up: run no user code
        failed = _fault("Sandbox.Failed", f"the environment could not be isolated: {exc}")
        channel.send({"t": "init_error", "error": failed, "init_ms": _init_ms(t0)})
        os._exit(1)
    if "runtime_api" in config:  # Node.js, provided.*, awslambdaric: over HTTP
        runtime_api.relay(channel, config, t0, trace_header)
    handler, error = load_handler(str(config["handler"]))
    if handler is None:
        assert error is not None
        channel.send({"t": "init_error", "error": error, "init_ms": _init_ms(t0)})
        os._exit(1)
    channel.send({"t": "ready", "init_ms": _init_ms(t0), "pid": os.getpid()})
    serve(channel, handler, config)


def main(argv: list[str] | None = None) -> NoReturn:
    """Fallback entry point: a fresh interpreter per environment.

    ``python -m warmline.dev.runtime.bootstrap FD T0`` where FD is the inherited socket
    and T0 the emulator's ``time.monotonic()`` when it started this process (so the
    interpreter's own start-up counts as runtime init, as on AWS). The configuration is
    the first frame on the socket.
    """
    args = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(args[0]))
    t0 = float(args[1])
    channel = SyncChannel(sock)
    config = channel.recv()
    if config is None:
        os._exit(0)
    try:
        run(channel, config, t0)
    except SystemExit as exc:
        exit_for(exc)


def exit_for(exc: SystemExit) -> NoReturn:
    """Leave the process with the status ``sys.exit`` asked for, without cleanup handlers."""
    code = exc.code
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        if code is None:
            os._exit(0)
        if isinstance(code, int):
            os._exit(code & 0xFF)
        sys.stderr.write(f"{code}\n")
        os._exit(1)


if __name__ == "__main__":
    main()
