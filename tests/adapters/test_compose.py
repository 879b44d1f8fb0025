"""The composition edge: the environment, read once, becomes the App's ports.

The core never reads ``os.environ`` (checked here by a grep); the adapters compose the
ports an App was not given, and what the App's constructor got explicitly wins.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from warmline.adapters.aws_lambda import lambda_handler
from warmline.adapters.compose import compose, from_environment
from warmline.adapters.loops import FreshLoop, ThreadLoops
from warmline.connections.local import LocalConnections
from warmline.core.app import App
from warmline.core.events import ConnectionRef
from warmline.core.wiring import Wiring
from warmline.errors import ConfigurationError
from warmline.log import StepLogger
from warmline.stores.faulty import FaultyStore
from warmline.stores.memory import MemoryStore
from warmline.stores.sqlite import SQLiteStore
from warmline.testing import LambdaContext, modules_after, websocket_event

CORE = Path(__file__).resolve().parents[2] / "src" / "warmline" / "core"


def test_the_default_store_follows_warmline_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from warmline.stores.dynamodb import DynamoDBStore

    monkeypatch.setenv("WARMLINE_STORE", "memory")
    assert isinstance(lambda_handler(App()).app.store, MemoryStore)  # type: ignore[attr-defined]
    monkeypatch.setenv("WARMLINE_STORE", "dynamodb")
    monkeypatch.setenv("WARMLINE_DYNAMODB_TABLE", "calls")
    store = lambda_handler(App()).app.store  # type: ignore[attr-defined]
    assert isinstance(store, DynamoDBStore) and store.table_name == "calls"
    monkeypatch.setenv("WARMLINE_STORE", "postgres")
    with pytest.raises(ConfigurationError, match="WARMLINE_STORE"):
        _ = lambda_handler(App()).app.store  # type: ignore[attr-defined]


def test_dynamodb_without_a_table_is_a_configuration_error() -> None:
    app = App().compose(from_environment({"WARMLINE_STORE": "dynamodb"}))
    with pytest.raises(ConfigurationError, match="WARMLINE_DYNAMODB_TABLE"):
        _ = app.store


def test_the_app_wraps_its_store_only_under_warmline_dev(tmp_path: Path) -> None:
    inner = SQLiteStore(tmp_path / "a.sqlite3")
    assert App(store=inner).compose(from_environment({})).store is inner
    wrapped = App(store=inner).compose(from_environment({"WARMLINE_DEV_FAULTS": "1"})).store
    assert isinstance(wrapped, FaultyStore) and wrapped.inner is inner


def test_explicit_arguments_win_over_the_environment() -> None:
    store = MemoryStore()
    conns = LocalConnections()
    env = {"WARMLINE_STORE": "postgres", "TWILIO_AUTH_TOKEN": "from-env"}
    app = App(store=store, connections=lambda ref: conns, twilio_auth_token="explicit")
    app.compose(from_environment(env))
    assert app.store is store
    assert app.twilio_auth_token() == "explicit"
    # an explicit empty token wins too, and is no token (never the environment's)
    assert App(twilio_auth_token="").compose(from_environment(env)).twilio_auth_token() is None


def test_the_twilio_token_comes_from_the_environment_and_turns_checks_on() -> None:
    app = App(store=MemoryStore(), public_url="wss://abc.example.com/prod")
    handler = lambda_handler(app, log=StepLogger(io.StringIO()))
    app.compose(from_environment({"TWILIO_AUTH_TOKEN": "t0ken"}))

    unsigned = handler(websocket_event("CONNECT"), LambdaContext())

    assert app.twilio_auth_token() == "t0ken"
    assert unsigned == {"statusCode": 403}


def test_a_token_without_a_signature_check_fails_closed() -> None:
    app = App(store=MemoryStore(), twilio_auth_token="t0ken")
    app.compose(Wiring())
    handler = lambda_handler(app, log=StepLogger(io.StringIO()))

    assert handler(websocket_event("CONNECT"), LambdaContext()) == {"statusCode": 403}


def test_an_uncomposed_app_names_what_is_missing() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match="session store"):
        _ = app.store
    with pytest.raises(ConfigurationError, match="ConnectionClient"):
        app.connections_for(websocket_ref())
    assert app.runner is None and app.signature_check is None


def test_a_coroutine_without_a_runner_is_a_configuration_error_and_is_closed() -> None:
    app = App(store=MemoryStore())

    async def answer() -> str:
        return "never"

    coroutine = answer()
    with pytest.raises(ConfigurationError, match="runner"):
        app.run(coroutine)
    assert coroutine.cr_frame is None  # closed, so no "never awaited" warning


def test_compose_keeps_the_first_wiring_and_overrides_apply() -> None:
    app = App()
    first = compose(app, {}, runner=FreshLoop())
    compose(app, {"WARMLINE_STORE": "memory"})
    assert first is app
    assert isinstance(app.runner, FreshLoop)
    assert isinstance(from_environment({}).runner, ThreadLoops)


def test_the_runners_run_coroutines_and_thread_loops_keep_theirs() -> None:
    async def value() -> int:
        return 42

    loops = ThreadLoops()
    try:
        assert loops.run(value()) == 42
        assert loops.run(value()) == 42
    finally:
        loops.close()
    assert FreshLoop().run(value()) == 42


def test_composing_reads_no_backend_and_a_warm_up_loads_the_post_path() -> None:
    """Composing imports nothing heavy; the warm-up then loads what the first post needs,
    without http.client."""
    composed = modules_after(
        "from warmline import App, lambda_handler\nh = lambda_handler(App())\n"
    )
    assert (
        sorted(m for m in ("boto3", "ssl", "socket", "sqlite3", "asyncio") if m in composed) == []
    )
    warmed = modules_after(
        "import os\n"
        "os.environ['AWS_ACCESS_KEY_ID'] = 'a'; os.environ['AWS_SECRET_ACCESS_KEY'] = 'b'\n"
        "from warmline import App, lambda_handler\n"
        "from warmline.stores.memory import MemoryStore\n"
        "h = lambda_handler(App(store=MemoryStore()))\n"
        "assert h({'warmer': True}, None)['warmup'] is True\n"
    )
    assert {"warmline.connections.apigw", "socket"} <= warmed
    assert "http.client" not in warmed


def test_the_core_reads_no_environment_and_imports_no_io_module() -> None:
    sources = {p.name: p.read_text() for p in CORE.glob("*.py")}
    assert sorted(name for name, text in sources.items() if "os.environ" in text) == []
    io_import = re.compile(r"^\s*(import|from)\s+(socket|ssl|asyncio)\b", re.MULTILINE)
    assert sorted(name for name, text in sources.items() if io_import.search(text)) == []
    layered = re.compile(
        r"^\s*(import|from)\s+warmline\.(adapters|stores|connections|twilio|types)\b",
        re.MULTILINE,
    )
    assert sorted(name for name, text in sources.items() if layered.search(text)) == []


def websocket_ref() -> ConnectionRef:
    return ConnectionRef("c1", "abc.example.com", "prod")
