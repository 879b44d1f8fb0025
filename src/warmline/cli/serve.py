"""``warmline serve``: run an App as one always-on ASGI server (container mode).

Examples::

    warmline serve app:app --app-dir examples/agent --port 8080
    warmline serve examples/agent/app.py:app --port 0            # a free port, printed
    warmline serve app:app --redis redis://cache:6379/0          # one of several instances
    warmline serve --config examples/agent/warmline.toml         # as `warmline dev` runs it

One port serves the ConversationRelay WebSocket (``--ws-path``, default ``/ws``), the App's
HTTP routes (``/twiml``, ``/cr-action``) and ``/healthz`` + ``/readyz`` for a load balancer.
SIGTERM drains: new calls are refused, ``/readyz`` answers 503, open calls get up to
``--drain-timeout`` seconds to end; Twilio calls still open ``--handoff-grace`` seconds
before the end are moved to another instance (``end`` with a reconnect hand-off; the
``<Connect action>`` answer connects them again, to ``--reconnect-url`` when set); a
second SIGTERM stops at once.

``--config warmline.toml`` serves the function behind the WebSocket's ``$default`` route
as ``warmline dev`` does: APP defaults to its handler, ``--app-dir`` to its code, and its
``environment`` (and that of the ``[http]`` function) is applied; a variable already set
in the environment wins over the file.

The public URL (what the TwiML names and Twilio signs): ``--public-url``, else
``$WARMLINE_PUBLIC_URL``, else, on a loopback ``--host``, this server's own
``ws://127.0.0.1:PORT/ws``; it is exported as ``WARMLINE_PUBLIC_URL`` before the app is
imported (the sample agent reads it). In a container (``--host 0.0.0.0``) set it: without
it the App checks handshakes against ``wss://<Host header><ws-path>``.

Behind an ALB (or any proxy that appends to ``X-Forwarded-For``) pass
``--trusted-proxies 1``: by default nothing in front is trusted, the caller's address is
the socket's peer and forwarded headers are ignored.

Several instances: give each the same ``--redis`` (or ``$WARMLINE_SERVE_REDIS_URL``) and
a shared session store (``WARMLINE_STORE=redis`` or ``dynamodb``); a post for a call held
by another instance is forwarded to it (see :mod:`warmline.adapters.asgi_redis`), and an
instance that dies leaves its claims for at most ``--claim-lease`` seconds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "load_app", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the ``serve`` subcommand."""
    p = subparsers.add_parser(
        "serve",
        help="run an App as an ASGI server (WebSocket + HTTP on one port) under uvicorn",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(p)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "app",
        nargs="?",
        default=None,
        help="module:attribute (or path/to/file.py:attribute) of the App (default with "
        "--config: the $default route's handler)",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="TOML",
        help="warmline.toml: serve its $default function with its environment",
    )
    p.add_argument("--app-dir", default=None, help="directory added to sys.path first")
    p.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080, help="port (0: a free one)")
    p.add_argument("--workers", type=int, default=1, help="processes (only 1: scale out)")
    p.add_argument("--threads", type=int, default=64, help="events handled at once")
    p.add_argument("--ws-path", default="/ws", help="path of the WebSocket")
    p.add_argument("--public-url", default=None, help="the wss:// URL Twilio signs")
    p.add_argument("--drain-timeout", type=float, default=25.0, help="seconds to drain calls")
    p.add_argument("--redis", default=None, help="route posts between instances via Redis")
    p.add_argument(
        "--claim-lease",
        type=float,
        default=30.0,
        metavar="S",
        help="with --redis: seconds a dead instance's socket claims outlive it (default 30)",
    )
    p.add_argument(
        "--no-handoff",
        dest="handoff",
        action="store_false",
        help="on drain, wait for calls to end instead of moving them to another instance",
    )
    p.add_argument(
        "--handoff-grace",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds before the end of the drain at which open calls are moved (default 5)",
    )
    p.add_argument(
        "--reconnect-url",
        default=None,
        metavar="WSS_URL",
        help="where moved calls connect again (exported as WARMLINE_RECONNECT_URL; default: "
        "the relay URL of the TwiML, i.e. the load balancer)",
    )
    p.add_argument(
        "--trusted-proxies",
        type=int,
        default=0,
        metavar="N",
        help="proxies in front that append to X-Forwarded-For (default 0: none, the "
        "socket's peer is the caller and forwarded headers are ignored; 1 behind an ALB)",
    )
    p.add_argument(
        "--per-call",
        type=int,
        default=4,
        metavar="N",
        help="events of one call handled at once (fairness: a flooding caller holds at "
        "most N of the --threads workers)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds a connection has to send a whole request head (default 10)",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn's log level")


def load_app(spec: str, app_dir: str | None = None) -> Any:
    """Import ``module:attribute`` (or ``file.py:attribute``) and return the App.

    A Lambda handler made by ``lambda_handler(app)`` is accepted too (its ``app``).

    Raises:
        ConfigurationError: a malformed spec or an attribute that is not an App.
    """
    from warmline.core.app import App
    from warmline.errors import ConfigurationError

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"APP must be module:attribute, got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        app_dir = app_dir or str(path.parent)
        module_name = path.stem
    if app_dir:
        sys.path.insert(0, str(Path(app_dir).resolve()))
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    value = getattr(value, "app", value)
    if not isinstance(value, App):
        raise ConfigurationError(f"{spec} is a {type(value).__name__}, not a warmline App")
    return value


def apply_config(path: str) -> tuple[str, str, list[str]]:
    """Read ``warmline.toml``: the App spec and code dir of its ``$default`` function, and
    the names of the variables set from its ``environment`` (the process's own win).

    Raises:
        ConfigurationError: an unreadable config, or one without a ``$default`` route.
    """
    from warmline.config import load_config
    from warmline.errors import ConfigurationError

    config = load_config(Path(path))
    route = config.websocket.routes.get("$default")
    if route is None:
        raise ConfigurationError(f"{path}: no $default route to serve")
    function = config.functions[route.function]
    names = [route.function]
    if config.http_function and config.http_function not in names:
        names.append(config.http_function)
    applied: list[str] = []
    for name in names:
        for key, value in config.functions[name].environment.items():
            if key not in os.environ:
                os.environ[key] = value
                applied.append(key)
    module, _, attr = function.handler.rpartition(".")
    return f"{module}:{attr}", str(function.code_dir), sorted(applied)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean shutdown, 2 on configuration errors."""
    import asyncio

    from warmline.adapters.asgi import AsgiApp
    from warmline.adapters.asgi_server import bind_socket, make_server
    from warmline.errors import WarmlineError

    if args.workers != 1:
        print(
            "warmline serve: --workers must be 1 (open calls live in one process; run more "
            "instances behind the load balancer with --redis instead)",
            file=sys.stderr,
        )
        return 2
    if not args.ws_path.startswith("/"):
        print("warmline serve: --ws-path must start with '/'", file=sys.stderr)
        return 2
    if args.trusted_proxies < 0:
        print("warmline serve: --trusted-proxies must be 0 or more", file=sys.stderr)
        return 2
    if args.per_call < 1 or args.header_timeout <= 0:
        print(
            "warmline serve: --per-call must be 1 or more, --header-timeout above 0",
            file=sys.stderr,
        )
        return 2
    if args.claim_lease <= 0 or args.handoff_grace < 0:
        print(
            "warmline serve: --claim-lease must be above 0, --handoff-grace 0 or more",
            file=sys.stderr,
        )
        return 2
    applied: list[str] = []
    if args.config:
        try:
            spec, code_dir, applied = apply_config(args.config)
        except WarmlineError as exc:
            print(f"warmline serve: {exc}", file=sys.stderr)
            return 2
        args.app = args.app or spec
        args.app_dir = args.app_dir or code_dir
    if not args.app:
        print("warmline serve: give APP (module:attribute) or --config", file=sys.stderr)
        return 2
    if args.reconnect_url:
        os.environ["WARMLINE_RECONNECT_URL"] = args.reconnect_url
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"warmline serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        port = sock.getsockname()[1]
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        base = f"http://{shown}:{port}"
        public = args.public_url or os.environ.get("WARMLINE_PUBLIC_URL")
        if public:
            os.environ["WARMLINE_PUBLIC_URL"] = public
        elif args.host in ("127.0.0.1", "localhost", "::1"):
            os.environ["WARMLINE_PUBLIC_URL"] = f"ws://{shown}:{port}{args.ws_path}"
        try:
            app = load_app(args.app, args.app_dir)
            if args.public_url:
                app.public_url = args.public_url
            router = None
            redis_url = args.redis or os.environ.get("WARMLINE_SERVE_REDIS_URL")
            if redis_url:
                from warmline.adapters.asgi_redis import RedisRouter

                router = RedisRouter(redis_url, claim_ttl_s=args.claim_lease)
            asgi = AsgiApp(
                app,
                ws_path=args.ws_path,
                router=router,
                workers=args.threads,
                trusted_proxies=args.trusted_proxies,
                per_call=args.per_call,
                handoff=args.handoff,
                handoff_grace_s=args.handoff_grace,
            )
            server = make_server(
                asgi,
                drain_timeout_s=args.drain_timeout,
                header_timeout_s=args.header_timeout,
                log_level=args.log_level,
            )
        except (WarmlineError, ImportError, AttributeError) as exc:
            print(f"warmline serve: {exc}", file=sys.stderr)
            return 2
        print(f"warmline serve: {base} (WebSocket {base.replace('http', 'ws', 1)}{args.ws_path})")
        public = os.environ.get("WARMLINE_PUBLIC_URL") or (
            f"(unset: signatures checked against wss://<Host>{args.ws_path})"
        )
        print(f"  public URL {public}; health {base}/readyz", flush=True)
        if args.config:
            shown_env = ", ".join(applied) or "none (all already set)"
            print(f"  environment from {args.config}: {shown_env}", flush=True)
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m warmline.cli.serve``: the same command without the ``warmline`` entry."""
    parser = argparse.ArgumentParser(prog="warmline serve", description=__doc__)
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
