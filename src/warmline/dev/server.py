"""``DevServer``: the whole local emulator behind one port.

Wires the configuration to the Lambda runtime (one process per environment), the gateway
(WebSocket API, ``@connections``, Invoke API and TLS on one port), the async bus (Event
invocations, SQS, SNS) and the scheduler. Start order matters: the port is bound first so
the endpoint URLs are known before any environment exists, because functions read them
from their environment at init, as they would read AWS's. Every function gets credentials
of its own (:mod:`warmline.dev.iam`), and ``@connections`` and the Invoke API check the
signature and the function's IAM statements; callers that are not functions sign with
:attr:`DevServer.developer_credentials`::

    server = DevServer(load_config(Path("warmline.toml")), port=0)
    await server.start()
    print(server.ws_url)            # ws://127.0.0.1:PORT/dev
    ...
    await server.close()
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warmline.aws.credentials import Credentials
from warmline.config import DevConfig
from warmline.config.faults import FaultPlan
from warmline.dev.debug import DEBUG_TIMEOUT_S, debug_config
from warmline.dev.faults import FaultInjector
from warmline.dev.gateway import authorizers
from warmline.dev.gateway.access import AccessPolicy, is_loopback, validate_token
from warmline.dev.gateway.bus import AsyncBus
from warmline.dev.gateway.gateway import Gateway
from warmline.dev.gateway.listener import Listener
from warmline.dev.gateway.scheduler import Scheduler
from warmline.dev.gateway.tls import Certificates, make_certificates, server_context
from warmline.dev.gateway.web import WebConsole
from warmline.dev.iam import Iam
from warmline.dev.proxy.upstream import combined_ca_bundle, resolve_credentials
from warmline.dev.reload import CodeWatcher
from warmline.dev.runtime import FunctionSpec, InvokeResult, LogSink, Runtime
from warmline.dev.runtime.isolation import SESSIONS_FILE
from warmline.dev.runtime.runtime import ProcessMode
from warmline.dev.services.access import AwsAccess

__all__ = ["ConnectionSnapshot", "DevServer", "exposure_warning"]

#: How long the code watcher may take to start watching.
WATCH_START_S = 10.0


@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    """An open WebSocket connection, for tests and the console."""

    connection_id: str
    source_ip: str
    user_agent: str | None
    connected_at: float
    last_active_at: float


class DevServer:
    """The emulator: API Gateway WebSocket + Lambda on ``host:port``.

    Args:
        config: the parsed configuration.
        host: interface to bind (loopback by default).
        port: TCP port; 0 picks a free one (see :attr:`port` after start).
        log_sink: where Lambda log lines go (default: the console).
        process_mode: the runtime's ``"auto"``, ``"fork"`` or ``"spawn"``.
        tls: also serve https/wss on the same port (needed by handlers that build
            ``https://`` endpoints) and run the AWS proxy for AWS host names; without it
            functions reach no AWS host name (Lambda's included: offload cannot invoke).
        state_dir: where local AWS services keep their data between runs (None: not kept).
        reset_services: start local AWS services from the template's resources only.
        aws_passthrough: send calls to AWS services that are not emulated to AWS, re-signed
            with the developer's credentials (``aws_profile``'s, else the default chain).
        aws_profile: the AWS profile whose credentials those calls carry (implies
            ``aws_passthrough``); functions also get the system CA bundle plus the
            emulator's CA.
        control_token: opens the control and event endpoints (``/_warmline/events``,
            ``/_warmline/faults``) to clients off loopback that show it (None: loopback
            only); see :mod:`warmline.dev.gateway.access`.
        allowed_hosts: Host names served besides IP literals, ``localhost``, the machine's
            name and ``host`` (a tunnel's name, ``.example.com`` for a domain, ``*``: any).
        iam: evaluate IAM policies on ``@connections`` and Invoke calls (False:
            ``--no-iam``; signatures are checked either way, as AWS does).
        developer_credentials: the keys of callers that are not functions (None: fresh
            random ones, see :attr:`developer_credentials`).
        debug: ``--debug``: ``function`` to attach to a debugger, with ``tty`` (the
            terminal's device) and/or ``port`` (debugpy's); its timeouts are lifted
            (:mod:`warmline.dev.debug`).
        reload: watch the functions' code and retire their environments after an edit
            (:mod:`warmline.dev.reload`; ``warmline dev`` on unless ``--no-reload``).
        runtime_options: passed to :class:`~warmline.dev.runtime.Runtime` (``sandbox``,
            ``state_dir``, ``memory_budget_mb``, ``account_concurrency``).

    Raises:
        ValueError: a control token too short or with unusable characters.
    """

    def __init__(
        self,
        config: DevConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 3001,
        log_sink: LogSink | None = None,
        process_mode: ProcessMode = "auto",
        tls: bool = True,
        state_dir: Path | None = None,
        reset_services: bool = False,
        aws_passthrough: bool = False,
        aws_profile: str | None = None,
        control_token: str | None = None,
        allowed_hosts: Iterable[str] = (),
        iam: bool = True,
        developer_credentials: Credentials | None = None,
        reload: bool = False,
        debug: Mapping[str, Any] | None = None,
        **runtime_options: Any,
    ) -> None:
        debugged = str(debug["function"]) if debug else None
        if debugged is not None:
            config = debug_config(config, debugged)
            runtime_options.setdefault("init_timeout_s", DEBUG_TIMEOUT_S)
        self.config = config
        #: the function attached to a debugger (``--debug``), if any.
        self.debugged = debugged
        self._reload = reload
        #: the code watcher (after :meth:`start`, with ``reload``).
        self.watcher: CodeWatcher | None = None
        #: the emulated account: every function's keys and statements, the checks.
        self.iam = Iam(config, enforce=iam, developer=developer_credentials)
        self.host = host
        self.control_token = validate_token(control_token) if control_token else None
        # AWS's own names for the emulated API and Lambda reach it through the proxy (a
        # name under amazonaws.com cannot be rebound to this machine by a web page).
        aws_names = (
            f"{config.websocket.api_id}.execute-api.{config.region}.amazonaws.com",
            f"lambda.{config.region}.amazonaws.com",
        )
        self.access = AccessPolicy(
            bind_host=host,
            control_token=self.control_token,
            allowed_hosts=(*allowed_hosts, *aws_names),
        )
        #: the project's state folder: dependency builds, the session store (beside
        #: warmline.toml, else in the working directory).
        self.state_root = (
            config.source.absolute().parent if config.source else Path.cwd()
        ) / ".warmline"
        runtime_options.setdefault("state_dir", self.state_root)
        self._requested_port = port
        self._port: int | None = None
        self._tls = tls
        self._tmp: Path | None = None
        self.certificates: Certificates | None = None
        specs = [
            FunctionSpec(
                name=f.name,
                handler=f.handler,
                code_dir=f.code_dir,
                memory_mb=f.memory_mb,
                timeout_s=f.timeout_s,
                # The execution role's credentials, as Lambda sets them (docs/protocols.md
                # §8.2); the function's own variables still win, as they do for every
                # other variable here.
                environment={**self.iam.function_environment(f.name), **f.environment},
                reserved_concurrency=f.reserved_concurrency,
                runtime=f.runtime,
                runtime_client=f.runtime_client,
                ephemeral_storage_mb=f.ephemeral_storage_mb,
                # warmline deploy package bundles warmline with every function of a
                # warmline.toml (or pyproject.toml); a template's zip holds what it declares.
                bundles_warmline=config.source is None or config.source.suffix == ".toml",
                debug=_debug_options(debug) if f.name == debugged else None,
            )
            for f in config.functions.values()
        ]
        #: every log line of every environment (the dashboard subscribes to it).
        self.log_sink = log_sink if log_sink is not None else LogSink()
        self.runtime = Runtime(
            specs,
            log_sink=self.log_sink,
            idle_reclaim_s=config.limits.idle_reclaim_s,
            region=config.region,
            process_mode=process_mode,
            **runtime_options,
        )
        self.bus = AsyncBus(self.runtime.invoke, config, self._log)
        self.scheduler = Scheduler(config, self.bus.submit)
        #: the faults injected on purpose (``[faults]``, ``--fault``, PUT /_warmline/faults).
        self.faults = FaultInjector(config.faults, log=self._log)
        self.runtime.faults = self.faults
        self.bus.faults = self.faults
        self.gateway: Gateway | None = None
        self._listener: Listener | None = None
        credentials = None
        if aws_passthrough or aws_profile:
            credentials = resolve_credentials(aws_profile)  # ConfigurationError: says why
        #: local AWS services (moto) and the proxy that routes AWS host names (with TLS).
        self.aws = AwsAccess(
            config,
            host=host,
            state_dir=state_dir,
            reset=reset_services,
            aws_credentials=credentials,
            credentials_from=f"profile {aws_profile}" if aws_profile else "your default profile",
            log=self._log,
            iam=self.iam,
        )

    # --- URLs and keys ---------------------------------------------------------------------

    @property
    def developer_credentials(self) -> Credentials:
        """The keys for boto3 in tests or a shell (everything is allowed to them)."""
        return self.iam.developer.credentials

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("DevServer is not started")
        return self._port

    @property
    def host_port(self) -> str:
        """``HOST:PORT`` as in ``domainName``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://HOST:PORT/STAGE``."""
        return f"ws://{self.host_port}/{self.config.websocket.stage}"

    @property
    def connections_url(self) -> str:
        """The ``@connections`` endpoint URL for boto3 (``http://HOST:PORT/STAGE``)."""
        return f"http://{self.host_port}/{self.config.websocket.stage}"

    @property
    def https_connections_url(self) -> str:
        """The same endpoint over TLS (trust :attr:`certificates` ``.ca_cert``)."""
        return f"https://{self.host_port}/{self.config.websocket.stage}"

    @property
    def web_url(self) -> str:
        """The softphone page (``/dashboard`` under it: the live dashboard)."""
        return f"http://{self.host_port}/_warmline/"

    @property
    def control_url(self) -> str | None:
        """The dashboard URL that hands a browser the control token (None: no token)."""
        if self.control_token is None:
            return None
        return f"{self.web_url}dashboard?token={self.control_token}"

    @property
    def lambda_url(self) -> str:
        """``endpoint_url`` for boto3's ``lambda`` client."""
        return f"http://{self.host_port}"

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port, make the TLS certificate, start the runtime, serve."""
        listener_gateway = Gateway(self.config, self.runtime, self.bus, "")
        listener = Listener(listener_gateway, None, self.access)
        self._port = listener.bind(self.host, self._requested_port)
        if not is_loopback(listener.address):
            self._log(exposure_warning(self, listener.address))
        listener_gateway.host_port = self.host_port
        listener_gateway.faults = self.faults
        listener_gateway.iam = self.iam
        # AWS_IAM on $connect: SigV4 and execute-api:Invoke with the same account.
        listener_gateway.iam_verifier = authorizers.iam_verifier(self.iam)
        # The browser pages at /_warmline/: the softphone and the live dashboard.
        listener_gateway.web = WebConsole(listener_gateway)
        listener_gateway.web.fire_schedule = self.trigger_schedule
        self.log_sink.subscribe(listener_gateway.web.on_record)
        self.gateway = listener_gateway
        self._listener = listener
        # No AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI: AWS has no default @connections
        # endpoint, so a client built without endpoint_url fails there and must fail here
        # (docs/protocols.md §8.2); the event's https://{domainName}/{stage} reaches this
        # port, with AWS_CA_BUNDLE below.
        # No AWS_ENDPOINT_URL_LAMBDA either: as on AWS, the SDKs (and warmline's own
        # clients) resolve lambda.{region}.amazonaws.com, which HTTPS_PROXY brings here.
        env = {
            # Where the local WebSocket API is, for apps that hand out their own URL
            # (the TwiML endpoint).
            "WARMLINE_DEV_WS_URL": self.ws_url,
            # Apps wrap their session store so store.* faults can reach it (stores/faulty.py).
            "WARMLINE_DEV_FAULTS": "1",
            # Sessions in the project's .warmline/ beside warmline.toml (else the working
            # directory), file 0600: not a /tmp file every emulator on the machine shares.
            "WARMLINE_SQLITE_PATH": str(self.state_root / SESSIONS_FILE),
        }
        try:
            if self._tls:
                self._tmp = Path(tempfile.mkdtemp(prefix="warmline-dev-"))
                names = [self.host, "127.0.0.1", "localhost", "::1"]
                self.certificates = make_certificates(self._tmp, names)
                listener.ssl_context = server_context(self.certificates)
                env["AWS_CA_BUNDLE"] = self._ca_bundle(self.certificates.ca_cert)
                env.update(await self.aws.start(self.certificates, self.port))
            self.runtime.set_extra_env(env)
            await self.runtime.start()
            for line in self.runtime.notices:
                self._log(line)
            if self._reload:
                await self._watch_code()
        except BaseException:
            if self.watcher is not None:
                await self.watcher.close()
            await self.aws.close()
            await listener.close()
            self._cleanup_tmp()
            raise
        listener.start()
        self.bus.start()
        self.scheduler.start()

    async def _watch_code(self) -> None:
        """Start the code watcher and wait until it watches (an edit after start counts)."""
        dirs = {name: Path(f.code_dir) for name, f in self.config.functions.items()}
        self.watcher = CodeWatcher(self.runtime, dirs, self._log)
        self.watcher.start()
        await asyncio.wait_for(self.watcher.watching.wait(), WATCH_START_S)

    async def close(self) -> None:
        """Stop serving, drop every socket, stop the runtime."""
        if self.watcher is not None:
            await self.watcher.close()
        await self.scheduler.close()
        if self.gateway is not None and self.gateway.web is not None:
            self.log_sink.unsubscribe(self.gateway.web.on_record)
        if self._listener is not None:
            await self._listener.close()
        if self.gateway is not None:
            await self.gateway.close()
        await self.bus.close()
        await self.runtime.close()
        await self.aws.close()
        self.log_sink.flush()
        self._cleanup_tmp()

    def _ca_bundle(self, emulator_ca: Path) -> str:
        """The functions' ``AWS_CA_BUNDLE``: the emulator's CA, plus the system's CAs when
        calls go to real AWS (``--aws-profile``)."""
        if self.aws.upstream is None or self._tmp is None:
            return str(emulator_ca)
        combined = combined_ca_bundle(emulator_ca, self._tmp / "ca-bundle.pem")
        if combined is None:
            self._log("no system CA bundle found: functions trust the emulator's CA only")
            return str(emulator_ca)
        return str(combined)

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # --- for tests and the console ----------------------------------------------------------

    def connections(self) -> list[ConnectionSnapshot]:
        """The open WebSocket connections."""
        if self.gateway is None:
            return []
        return [
            ConnectionSnapshot(
                ws.connection_id,
                ws.info.source_ip,
                ws.info.user_agent,
                ws.connected_at,
                ws.last_active_at,
            )
            for ws in self.gateway.connections.values()
            if ws.open
        ]

    async def invoke(self, function: str, event: Any) -> InvokeResult:
        """A RequestResponse invocation."""
        return await self.runtime.invoke(function, event)

    def invoke_async(self, function: str, event: Any) -> str:
        """An Event invocation (queued with retries); returns its request id."""
        if function not in self.config.functions:
            raise KeyError(function)
        return self.bus.submit(function, event)

    def send_sqs(self, queue: str, body: str, attributes: Mapping[str, Any] | None = None) -> str:
        """SendMessage to a configured queue; returns the MessageId.

        Raises:
            KeyError: unknown queue.
        """
        return self.bus.queues[queue].send(body, attributes)

    def publish_sns(self, topic: str, message: str, subject: str | None = None) -> str:
        """Publish to a configured topic; returns the MessageId.

        Raises:
            KeyError: unknown topic.
        """
        return self.bus.publish_sns(topic, message, subject)

    def trigger_schedule(self, name: str) -> list[str]:
        """Fire a schedule now; returns the async request ids.

        Raises:
            KeyError: unknown schedule.
        """
        ids = self.scheduler.fire(name)
        self._log(f"schedule {name} fired now: {len(ids)} Event invocation(s)")
        return ids

    def set_faults(self, plan: FaultPlan) -> None:
        """Inject ``plan`` from now on (counters start over); ``FaultPlan()``: none."""
        self.faults.replace(plan)

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the async bus and queues are idle; False on timeout."""
        return await self.bus.drain(timeout)

    @staticmethod
    def _log(line: str) -> None:
        print(f"[warmline dev] {line}", file=sys.stderr)


def _debug_options(debug: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a debugged function's environment needs: the terminal and debugpy's port."""
    assert debug is not None
    return {k: debug[k] for k in ("tty", "port") if debug.get(k)}


def exposure_warning(server: DevServer, address: str) -> str:
    """What a non-loopback bind lets every host that reaches ``address`` use.

    Args:
        server: the server (bound: its port is known).
        address: the bound address (``0.0.0.0``, ``::``, a LAN address).
    """
    port = server.port
    stage = server.config.websocket.stage
    where = "every interface" if address in ("0.0.0.0", "::") else address
    lines = [
        f"WARNING: listening on {where} (--host {server.host}), not loopback: anyone who "
        f"can reach this machine on port {port} can use",
        f"  - the WebSocket API (/{stage}): connect and send to the functions",
        f"  - @connections (/{stage}/@connections/ID): post to, read and close live connections",
        "  - the Invoke API (/2015-03-31/functions/NAME/invocations): run any function",
    ]
    if server.config.http_function is not None:
        lines.append(f"  - the function URL (/ -> {server.config.http_function})")
    if server.control_token is not None:
        lines.append(
            "  - the control endpoints (/_warmline/events, /_warmline/faults): only with the "
            "control token (token-protected)"
        )
    else:
        lines.append(
            "  - not the control endpoints (/_warmline/events, /_warmline/faults): loopback "
            "only, as no --control-token is set"
        )
    lines.append("Bind 127.0.0.1 (the default) unless other machines must call in.")
    return "\n".join(lines)
