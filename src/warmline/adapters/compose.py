"""The composition edge: the environment, read once, becomes the App's Wiring.

The core never reads ``os.environ``; the adapters call :func:`from_environment` when they
are made (at import of the function's handler module) and hand the result to
:meth:`warmline.core.app.App.compose`. What the App's constructor got explicitly wins.

==============================  ==========================================================
``WARMLINE_STORE``              ``sqlite`` (default), ``dynamodb``, ``redis``, ``memory``
``WARMLINE_DYNAMODB_TABLE``     the table, with ``WARMLINE_STORE=dynamodb``
``WARMLINE_REDIS_URL``          the server, with ``WARMLINE_STORE=redis``
``WARMLINE_SQLITE_PATH``        the SQLite file (read by the SQLite store)
``TWILIO_AUTH_TOKEN``           the key of the handshake and webhook signature checks (or
                                ``TWILIO_AUTH_TOKEN_PARAMETER``: its SSM parameter, or
                                ``TWILIO_AUTH_TOKEN_SECRET_ID``: its Secrets Manager secret,
                                read at the first handshake; :mod:`warmline.secrets`)
``WARMLINE_ALLOW_UNSIGNED``     ``1``/``true``: accept unsigned Twilio traffic while no
                                token is configured (local development; ``warmline deploy
                                render`` never deploys it). Unset: refused (fail closed)
``WARMLINE_DEV_FAULTS``         set by ``warmline dev``: the store is wrapped in the fault
                                injector (:mod:`warmline.stores.faulty`)
``AWS_LAMBDA_FUNCTION_NAME``    on AWS: the pre-warm also makes the TLS context
==============================  ==========================================================

Reading is cheap and builds nothing: every backend (boto3 behind DynamoDB, sqlite3, the
HTTP client, ``ssl``) is imported by the factory the App calls at first use, so composing
at import time costs the cold start nothing.
"""

from __future__ import annotations

import os

from warmline.core.wiring import Wiring
from warmline.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from warmline.core.app import App
    from warmline.core.events import ConnectionRef
    from warmline.core.ports import ConnectionClient, SessionStore, StepLog

__all__ = [
    "ALLOW_UNSIGNED_ENV",
    "STORE_KINDS",
    "allow_unsigned_from",
    "compose",
    "from_environment",
]

#: The values ``WARMLINE_STORE`` accepts.
STORE_KINDS = ("sqlite", "dynamodb", "redis", "memory")
#: The environment's explicit opt-out of Twilio signatures while no token is configured.
ALLOW_UNSIGNED_ENV = "WARMLINE_ALLOW_UNSIGNED"
_YES = ("1", "true", "yes")
_NO = ("", "0", "false", "no")


def from_environment(environ: Mapping[str, str] | None = None, **overrides: Any) -> Wiring:
    """The default ports, as the environment configures them.

    Args:
        environ: the environment to read (default ``os.environ``), read once, here.
        **overrides: Wiring fields to set instead (``runner=FreshLoop()``, ...).

    Returns:
        The Wiring: store factory (with the fault wrapper under ``warmline dev``), the
        ``@connections`` client factory and its pre-warm, the Twilio signature check and
        token, and a per-thread event loop runner.
    """
    from warmline.adapters.loops import ThreadLoops

    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {
        "store": _store_factory(env),
        "store_wrapper": _fault_wrapper if env.get("WARMLINE_DEV_FAULTS") else None,
        "connections": _connections,
        "signature_check": _signature_check,
        "twilio_auth_token": _twilio_token(env),
        "runner": ThreadLoops(),
        "prewarm": _prewarm_connections(env),
        "allow_unsigned": allow_unsigned_from(env),
    }
    values.update(overrides)
    return Wiring(**values)


def compose(app: App, environ: Mapping[str, str] | None = None, **overrides: Any) -> App:
    """Compose ``app`` from the environment unless it was composed already.

    The adapters call this when they wrap an App, so one App served by two adapters, or
    an App the caller composed by hand, keeps its first wiring.

    Returns:
        ``app``.
    """
    if not app.composed:
        app.compose(from_environment(environ, **overrides))
    return app


def _store_factory(env: Mapping[str, str]) -> Callable[[], SessionStore]:
    """The store ``WARMLINE_STORE`` names: what ``warmline deploy render`` sets on the
    functions it deploys. Made at first use; a bad setting raises there, by name."""
    kind = env.get("WARMLINE_STORE", "sqlite").lower()

    def make() -> SessionStore:
        if kind == "dynamodb":
            from warmline.stores.dynamodb import DynamoDBStore

            table = env.get("WARMLINE_DYNAMODB_TABLE")
            if not table:
                raise ConfigurationError("WARMLINE_STORE=dynamodb needs WARMLINE_DYNAMODB_TABLE")
            return DynamoDBStore(table)
        if kind == "redis":
            from warmline.stores.redis import RedisStore

            return RedisStore.from_environment(env)
        if kind == "memory":
            from warmline.stores.memory import MemoryStore

            return MemoryStore()
        if kind != "sqlite":
            raise ConfigurationError(
                f"WARMLINE_STORE must be sqlite, dynamodb, redis or memory: {kind!r}"
            )
        from warmline.stores.sqlite import SQLiteStore

        return SQLiteStore.from_environment(env)

    return make


def _fault_wrapper(store: SessionStore) -> SessionStore:
    from warmline.stores.faulty import FaultyStore

    return FaultyStore(store)


def _connections(ref: ConnectionRef, log: StepLog | None = None) -> ConnectionClient:
    from warmline.connections.apigw import ApiGatewayConnections

    return ApiGatewayConnections.for_request(ref.domain_name, ref.stage, log=log)


def _signature_check(headers: Mapping[str, str], url: str, auth_token: str) -> None:
    from warmline.twilio.signature import validate_handshake

    validate_handshake(headers, url, auth_token)


def allow_unsigned_from(env: Mapping[str, str]) -> bool:
    """True when ``WARMLINE_ALLOW_UNSIGNED`` opts out of signatures (``1``, ``true``,
    ``yes``); False when it is unset or says no.

    Raises:
        ConfigurationError: any other value: an opt-out must be unambiguous.
    """
    value = env.get(ALLOW_UNSIGNED_ENV, "").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise ConfigurationError(f"{ALLOW_UNSIGNED_ENV} must be 1 or 0 (true/false), not {value!r}")


def _twilio_token(env: Mapping[str, str]) -> Callable[[], str | None] | None:
    """The token from ``TWILIO_AUTH_TOKEN`` or, read on first use, its SSM parameter or
    Secrets Manager secret (:func:`warmline.secrets.secret`); None when none is set (an
    empty ``TWILIO_AUTH_TOKEN`` is none)."""
    name = "TWILIO_AUTH_TOKEN"
    if env.get(name):
        token = env[name]
        return lambda: token
    if env.get(f"{name}_PARAMETER") or env.get(f"{name}_SECRET_ID"):

        def read() -> str | None:
            from warmline.secrets import secret

            return secret(name, env)

        return read
    return None


def _prewarm_connections(env: Mapping[str, str]) -> Callable[[], None]:
    """Load the ``@connections`` client's modules and, on AWS over HTTPS, make the TLS
    context: paid by a warm-up instead of the first caller's first answer."""
    on_aws = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
    https = not env.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", "").startswith("http://")

    def prewarm() -> None:
        import socket  # noqa: F401

        import warmline.connections.apigw  # noqa: F401

        if on_aws and https:
            import ssl

            ssl.create_default_context()

    return prewarm
