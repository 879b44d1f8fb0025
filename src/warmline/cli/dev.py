"""``warmline dev``: run the local API Gateway WebSocket + Lambda emulator.

Reads ``warmline.toml`` (or ``[tool.warmline]`` in ``pyproject.toml``) from the current
directory unless ``--config`` names a file, starts :class:`warmline.dev.server.DevServer`
and prints the URLs a client and a handler need. Runs until Ctrl-C. Every log line goes to
the console and, as JSON lines, to ``--log-file`` (default ``.warmline/dev-logs.jsonl``,
started afresh each run), which ``warmline report`` reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from warmline.templates.cli_options import add_source_arguments, config_from_args

if TYPE_CHECKING:
    from warmline.config import DevConfig
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

__all__ = ["add_parser", "run"]


#: Where ``warmline dev`` appends its log lines unless told otherwise (the folder holds the
#: local SQLite session store too, ``warmline.stores.sqlite.LOCAL_PATH``).
DEFAULT_LOG_FILE = ".warmline/dev-logs.jsonl"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``warmline dev`` and its options."""
    parser = subparsers.add_parser(
        "dev",
        help="run the local API Gateway WebSocket + Lambda emulator",
        description="Run the local API Gateway WebSocket + Lambda emulator.",
    )
    parser.add_argument("--config", type=Path, default=None, help="warmline.toml or pyproject.toml")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3001, help="port (default 3001; 0 = any free)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[=SPEC]",
        help="inject a fault (repeatable): NAME, NAME=RATE or NAME=key=value,... "
        "e.g. connections.throttle=0.1, lambda.kill=ms=150,count=1; names: "
        "lambda.kill, lambda.throttle, store.fail, store.stall, connections.drop, "
        "connections.delay, connections.throttle, connections.error, async.duplicate, "
        "async.delay, client.abort (see warmline.config.faults)",
    )
    parser.add_argument(
        "--fault-seed", type=int, default=None, help="seed for the faults' dice (repeatable runs)"
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        default=Path(DEFAULT_LOG_FILE),
        metavar="PATH",
        help="write every log line here as JSON lines, for `warmline report`; started "
        f"afresh each run (default {DEFAULT_LOG_FILE}, next to the local session store)",
    )
    parser.add_argument(
        "--no-log-file", action="store_true", help="log to the console only, no file"
    )
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="do not evaluate IAM policies on @connections and Lambda Invoke calls "
        "(signatures are still checked, as AWS always does)",
    )
    add_source_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Start the emulator and serve until interrupted; returns the exit status."""
    from warmline.config import find_config, load_config
    from warmline.errors import ConfigurationError, MissingExtraError

    try:
        config = config_from_args(args) or load_config(args.config or find_config(Path.cwd()))
        config = with_fault_flags(config, args.fault, args.fault_seed)
    except ConfigurationError as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 2
    log_file: Path | None = None if args.no_log_file else args.log_file
    try:
        sink = _log_sink(log_file)
    except OSError as exc:
        print(f"warmline dev: cannot write the log file {log_file}: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(
            _serve(config, args.host, args.port, sink, log_file, iam=not args.no_iam)
        )
    except MissingExtraError as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"warmline dev: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.close()


def _log_sink(log_file: Path | None) -> LogSink:
    """The console, plus the JSON-lines file unless there is none.

    The file is started afresh (its folder made): it holds this session, and a dev server
    left running all week would otherwise grow it without end.
    """
    from warmline.dev.runtime import LogSink

    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_bytes(b"")
    return LogSink(path=log_file)


def _print_iam(server: DevServer) -> None:
    """What each function may do, and the keys for callers that are not functions."""
    creds = server.developer_credentials
    for line in server.iam.startup_lines():
        print(f"  {line}")
    print(
        "  Keys for boto3 in a shell or a test (valid for this run, everything allowed):\n"
        f"    AWS_ACCESS_KEY_ID={creds.access_key} AWS_SECRET_ACCESS_KEY={creds.secret_key}"
    )


def with_fault_flags(config: DevConfig, flags: list[str], seed: int | None) -> DevConfig:
    """``config`` with the ``--fault`` flags added to (and overriding) its ``[faults]``.

    Raises:
        ConfigurationError: a bad flag (names it).
    """
    import dataclasses

    from warmline.config.faults import FaultPlan, parse_fault_flag

    if not flags and seed is None:
        return config
    triggers = dict(config.faults.triggers)
    for flag in flags:
        name, trigger = parse_fault_flag(flag, tuple(config.functions))
        triggers[name] = trigger
    plan = FaultPlan(triggers, seed if seed is not None else config.faults.seed)
    return dataclasses.replace(config, faults=plan)


async def _serve(
    config: DevConfig,
    host: str,
    port: int,
    sink: LogSink,
    log_file: Path | None,
    *,
    iam: bool = True,
) -> int:
    from warmline.dev.server import DevServer

    server = DevServer(config, host=host, port=port, log_sink=sink, iam=iam)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        routes = ", ".join(config.websocket.routes) or "(none)"
        count = len(config.functions)
        print(f"warmline dev: {config.source}: {count} function(s); routes: {routes}")
        print(f"  WebSocket:    {server.ws_url}")
        print(f"  @connections: {server.connections_url}  (also {server.https_connections_url})")
        print(f"  Lambda API:   {server.lambda_url}/2015-03-31/functions/NAME/invocations")
        for name, schedule in config.schedules.items():
            state = "" if schedule.enabled else " (disabled)"
            print(
                f"  schedule {name}: {schedule.expression} -> {', '.join(schedule.targets)}{state}"
            )
        if config.http_function is not None:
            print(f"  Function URL: {server.lambda_url}/ -> {config.http_function}")
        if log_file is not None:
            print(f"  Logs:         {log_file}  (warmline report {log_file})")
        if config.faults.triggers:
            names = ", ".join(config.faults.triggers)
            print(f"  Faults:       {names}  (GET/PUT {server.web_url}faults)")
        _print_iam(server)
        print(f"\nOpen the softphone:  {server.web_url}")
        print(f"Watch the backend:   {server.web_url}dashboard")
        if config.http_function is not None:
            print("Call it as Twilio would (signed TwiML webhook, then the WebSocket):")
            print(f"  .venv/bin/warmline call --twiml {server.lambda_url}/twiml")
        sys.stdout.flush()
        await stop.wait()
    finally:
        print("warmline dev: shutting down", file=sys.stderr)
        await server.close()
    return 0
