"""The Lambda hot path stays lean: checked in a fresh interpreter, where nothing is cached."""

from __future__ import annotations

import pytest

import warmline
from warmline.testing import modules_after

#: What must never load on the hot path (heavy third-party packages, docs/performance.md),
#: plus standard-library modules whose cost we keep off it on purpose: asyncio (~30 ms),
#: logging (~14 ms), typing (~5 ms; annotations are strings), and the HTTP/TLS stack,
#: which only the first send needs.
HEAVY = (
    "boto3",
    "botocore",
    "twilio",
    "openai",
    "numpy",
    "redis",
    "pydantic",
    "starlette",
    "uvicorn",
    "aiobotocore",
    "websockets",
    "httpx",
)
AVOIDED = ("asyncio", "logging", "ssl", "typing", "http.client")


def test_hot_path_import_loads_no_heavy_module() -> None:
    loaded = modules_after("import warmline, warmline.adapters.aws_lambda")
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_hot_path_import_avoids_costly_stdlib_modules() -> None:
    loaded = modules_after("import warmline, warmline.adapters.aws_lambda")
    assert sorted(m for m in AVOIDED if m in loaded) == []


def test_a_sync_call_through_the_lambda_handler_never_imports_asyncio() -> None:
    code = (
        "import json\n"
        "from warmline import App, lambda_handler\n"
        "from warmline.connections.local import LocalConnections\n"
        "from warmline.stores.memory import MemoryStore\n"
        "from warmline.testing import LambdaContext, websocket_event\n"
        "conns = LocalConnections()\n"
        "app = App(store=MemoryStore(), connections=lambda ref: conns)\n"
        "app.route('prompt')(lambda ctx: 'hi')\n"
        "h = lambda_handler(app)\n"
        "conns.open('c1')\n"
        "body = json.dumps({'type': 'prompt', 'voicePrompt': 'x', 'lang': 'en-US', 'last': True})\n"
        "h(websocket_event('MESSAGE', body=body, connection_id='c1'), LambdaContext())\n"
    )
    loaded = modules_after(code)
    assert "asyncio" not in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


def test_package_all_names_resolve() -> None:
    for name in warmline.__all__:
        assert getattr(warmline, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = warmline.not_a_name


RELAY_EXPORTS = (
    "InboundMessage",
    "Setup",
    "Prompt",
    "Dtmf",
    "Interrupt",
    "Info",
    "Error",
    "Text",
    "Play",
    "SendDigits",
    "Language",
    "End",
)


def test_the_relay_messages_are_exported_and_loaded_on_first_use() -> None:
    from warmline.core import relay

    assert sorted(n for n in RELAY_EXPORTS if n not in warmline.__all__) == []
    assert [n for n in RELAY_EXPORTS if getattr(warmline, n) is not getattr(relay, n)] == []
    assert "warmline.core.relay" not in modules_after("import warmline")
    assert "warmline.core.relay" in modules_after("from warmline import Prompt")


def test_dir_lists_exactly_all() -> None:
    assert dir(warmline) == sorted(warmline.__all__)
