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
from typing import TYPE_CHECKING, Any

from warmline.templates.cli_options import add_source_arguments, config_from_args

if TYPE_CHECKING:
    from warmline.config import DevConfig
    from warmline.dev.envvars import EnvSources
    from warmline.dev.runtime import LogSink
    from warmline.dev.server import DevServer

__all__ = ["add_parser", "run"]


#: The environment variable that holds the control token when ``--control-token`` is not
#: given (a flag's value shows in ``ps`` to every user of the machine; the environment does
#: not).
CONTROL_TOKEN_ENV = "WARMLINE_DEV_CONTROL_TOKEN"

#: Where ``warmline dev`` appends its log lines unless told otherwise (the folder holds the
#: local SQLite session store too, ``warmline.stores.sqlite.LOCAL_PATH``).
DEFAULT_LOG_FILE = ".warmline/dev-logs.jsonl"
#: The port ``warmline dev`` listens on unless ``--port`` or :data:`PORT_ENV` says otherwise.
DEFAULT_PORT = 3001
#: The environment variable that sets the default port.
PORT_ENV = "WARMLINE_PORT"
#: Where the local AWS services (moto) keep their data between runs.
SERVICES_DIR = ".warmline/services"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``warmline dev`` and its options."""
    parser = subparsers.add_parser(
        "dev",
        help="run the local API Gateway WebSocket + Lambda emulator",
        description="Run the local API Gateway WebSocket + Lambda emulator.",
    )
    parser.add_argument("--config", type=Path, default=None, help="warmline.toml or pyproject.toml")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=_default_port(),
        help=f"port (default ${PORT_ENV} or {DEFAULT_PORT}; 0 = any free)",
    )
    parser.add_argument(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help="let clients off loopback use the control and event endpoints (/_warmline/events, "
        "/_warmline/faults) when they show TOKEN (16+ characters of A-Z a-z 0-9 . _ ~ -); "
        f"default ${CONTROL_TOKEN_ENV}; without one they answer loopback clients only",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also serve requests whose Host header is NAME (repeatable; .example.com: it and "
        "its subdomains, e.g. a tunnel's name); IP addresses, localhost and this machine's "
        "name are always served, any other Host gets 421 (DNS rebinding)",
    )
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
        help="write every log line here as JSON lines, for warmline report; started "
        f"afresh each run (default {DEFAULT_LOG_FILE}, next to the local session store)",
    )
    parser.add_argument(
        "--no-log-file", action="store_true", help="log to the console only, no file"
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help=f"start the local AWS services clean: forget what {SERVICES_DIR} kept",
    )
    parser.add_argument(
        "--aws-profile",
        default=None,
        metavar="NAME",
        help="send calls to AWS services that are not emulated (Bedrock...) to AWS, re-signed "
        "with profile NAME's credentials; the WebSocket API, Lambda, local services and IAM "
        "stay local (default: such calls are refused)",
    )
    parser.add_argument(
        "--aws-passthrough",
        action="store_true",
        help="the same with the default credentials of this shell (AWS_PROFILE, "
        "~/.aws/credentials...)",
    )
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run environments as plain host processes: writable code, a shared /tmp, "
        "everything installed importable (isolation is the default)",
    )
    parser.add_argument(
        "--env-vars",
        type=Path,
        default=None,
        metavar="FILE",
        help='variables for the functions in SAM CLI\'s format: {"Parameters": {NAME: value}} '
        "for every function, {FUNCTION: {NAME: value}} for one (it wins); .env beside the "
        "configuration is read too, under this file",
    )
    parser.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="hand this shell's variable NAME to every function (repeatable; nothing else "
        "of the shell reaches them, as on Lambda)",
    )
    parser.add_argument(
        "--debug",
        default=None,
        metavar="FUNCTION",
        help="run FUNCTION in one environment attached to this terminal: breakpoint() "
        "stops in pdb here; its timeouts are lifted while debugging",
    )
    parser.add_argument(
        "--debug-port",
        type=int,
        default=None,
        metavar="N",
        help="also start debugpy in that environment on 127.0.0.1:N for VS Code or PyCharm "
        "to attach (needs the debug extra: pip install 'warmline[debug]')",
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="do not watch the functions' code: an edit reaches only environments created "
        "after it (by default an edit retires warm environments once their invocation ends)",
    )
    parser.add_argument(
        "--no-iam",
        action="store_true",
        help="do not evaluate IAM policies on @connections and Lambda Invoke calls "
        "(signatures are still checked, as AWS always does)",
    )
    parser.add_argument(
        "--stack-name",
        default=None,
        metavar="NAME",
        help="AWS::StackName of a --template (default: the template folder's name); resource "
        "names built from it change with it",
    )
    add_source_arguments(parser)


def _default_port() -> int:
    """``$WARMLINE_PORT`` when set (``make dev PORT=...`` sets it), else 3001."""
    import os

    value = os.environ.get(PORT_ENV, "").strip()
    if not value:
        return DEFAULT_PORT
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"warmline dev: {PORT_ENV}={value!r} is not a port number") from None


def run(args: argparse.Namespace) -> int:
    """Start the emulator and serve until interrupted; returns the exit status."""
    import os

    from warmline.config import find_config, load_config
    from warmline.dev import envvars
    from warmline.dev.services.local import ServicesError
    from warmline.errors import ConfigurationError, MissingExtraError

    try:
        config = config_from_args(args) or load_config(args.config or find_config(Path.cwd()))
        config = with_fault_flags(config, args.fault, args.fault_seed)
        config, env_sources = envvars.apply(
            config, env_vars=args.env_vars, pass_env=args.pass_env, environ=os.environ
        )
    except ConfigurationError as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 2
    log_file: Path | None = None if args.no_log_file else args.log_file
    try:
        access = _access_options(args)
    except ValueError as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 2
    try:
        debug = _debug_options(args, config)
    except ValueError as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 2
    try:
        sink = _log_sink(log_file)
    except OSError as exc:
        print(f"warmline dev: cannot write the log file {log_file}: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(config, args, sink, log_file, access, env_sources, debug))
    except (MissingExtraError, ConfigurationError) as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 2
    except ServicesError as exc:
        print(f"warmline dev: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"warmline dev: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        sink.close()


def _debug_options(args: argparse.Namespace, config: DevConfig) -> dict[str, Any] | None:
    """``DevServer``'s ``debug`` from ``--debug`` and ``--debug-port`` (None: neither).

    Raises:
        ValueError: no function to debug, no terminal, or debugpy missing (says which).
    """
    import os

    function = args.debug
    if function is None and args.debug_port is None:
        return None
    if function is None:
        if len(config.functions) != 1:
            raise ValueError("--debug-port needs --debug FUNCTION (there are several functions)")
        function = next(iter(config.functions))
    if function not in config.functions:
        names = ", ".join(sorted(config.functions))
        raise ValueError(f"--debug {function}: no such function (functions: {names})")
    options: dict[str, Any] = {"function": function}
    if args.debug_port is not None:
        import importlib.util

        if importlib.util.find_spec("debugpy") is None:
            raise ValueError("--debug-port needs debugpy: pip install 'warmline[debug]'")
        options["port"] = args.debug_port
    if sys.stdin.isatty():
        options["tty"] = os.ttyname(sys.stdin.fileno())
    elif args.debug is not None and args.debug_port is None:
        raise ValueError("--debug needs a terminal on stdin for pdb (or give --debug-port N)")
    return options


def _access_options(args: argparse.Namespace) -> dict[str, Any]:
    """``DevServer``'s ``control_token`` and ``allowed_hosts`` from the flags.

    Raises:
        ValueError: an unusable control token (says why).
    """
    import os

    from warmline.dev.gateway.access import validate_token

    token = args.control_token or os.environ.get(CONTROL_TOKEN_ENV) or None
    return {
        "control_token": validate_token(token) if token else None,
        "allowed_hosts": tuple(args.allow_host),
    }


def self_command() -> str:
    """The command that runs this warmline again from the current shell.

    ``warmline`` when that is what ``PATH`` finds, else the script's path as it was typed
    (``.venv/bin/warmline``), else ``python -m warmline`` with this interpreter.
    """
    import os
    import shlex
    import shutil

    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) in ("warmline", "warmline.exe"):
        found = shutil.which("warmline")
        if found and os.path.realpath(found) == os.path.realpath(script):
            return "warmline"
        return shlex.quote(_short_path(script))
    return f"{shlex.quote(_short_path(sys.executable))} -m warmline"


def _short_path(path: str) -> str:
    """``path`` relative to the current folder when it lies under it."""
    import os

    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


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


def _print_debug(server: DevServer, debug: dict[str, Any]) -> None:
    """What ``--debug`` does, so nobody waits for a timeout that will not come."""
    name = server.debugged
    where = []
    if debug.get("tty"):
        where.append("breakpoint() stops in pdb in this terminal")
    if debug.get("port"):
        where.append(f"debugpy listens on 127.0.0.1:{debug['port']} (attach VS Code/PyCharm)")
    print(f"  Debug:        {name}: one environment; {'; '.join(where)}")
    print(
        "                timeouts suspended while debugging (the function's, INIT, the 29 s "
        "integration and the WebSocket idle timeout); a second concurrent call is throttled"
    )


def _print_environment(server: DevServer, sources: EnvSources | None) -> None:
    """Every variable each function gets, and where it came from (secrets masked)."""
    from warmline.dev.envvars import EnvSources, describe
    from warmline.dev.runtime.settings import INHERITED_ENV

    for name in server.config.functions:
        env = server.runtime.environment_of(name)
        for line in describe(name, env, sources or EnvSources({}), INHERITED_ENV):
            print(f"  {line}")


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
    args: argparse.Namespace,
    sink: LogSink,
    log_file: Path | None,
    access: dict[str, Any] | None = None,
    env_sources: EnvSources | None = None,
    debug: dict[str, Any] | None = None,
) -> int:
    from warmline.dev.server import DevServer

    server = DevServer(
        config,
        host=args.host,
        port=args.port,
        log_sink=sink,
        state_dir=Path(SERVICES_DIR),
        reset_services=args.reset,
        aws_passthrough=args.aws_passthrough,
        aws_profile=args.aws_profile,
        sandbox=not args.no_sandbox,
        iam=not args.no_iam,
        reload=not args.no_reload,
        debug=debug,
        **(access or {}),
    )
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
        if config.schedules:
            port = f"{PORT_ENV}={server.port} " if server.port != _default_port() else ""
            print(f"  Fire one now: {port}{self_command()} schedule fire NAME")
        if config.http_function is not None:
            print(f"  Function URL: {server.lambda_url}/ -> {config.http_function}")
        for line in server.aws.listing():
            print(f"  {line}")
        if server.debugged is not None:
            _print_debug(server, debug or {})
        if server.watcher is not None:
            print("  Reload:       on: saving a function's code retires its warm environments")
        else:
            print("  Reload:       off (--no-reload): an edit reaches new environments only")
        if log_file is not None:
            print(f"  Logs:         {log_file}  ({self_command()} report {log_file})")
        if config.faults.triggers:
            names = ", ".join(config.faults.triggers)
            print(f"  Faults:       {names}  (GET/PUT {server.web_url}faults)")
        if server.control_url is not None:
            print(
                "  Control:      /_warmline/events and /faults: loopback, or with the token "
                "(Authorization: Bearer TOKEN)"
            )
        _print_iam(server)
        _print_environment(server, env_sources)
        print(f"\nOpen the softphone:  {server.web_url}")
        print(f"Watch the backend:   {server.control_url or server.web_url + 'dashboard'}")
        if config.http_function is not None:
            print("Call it as Twilio would (signed TwiML webhook, then the WebSocket):")
            print(f"  {self_command()} call --twiml {server.lambda_url}/twiml")
        sys.stdout.flush()
        await stop.wait()
    finally:
        print("warmline dev: shutting down", file=sys.stderr)
        await server.close()
    return 0
