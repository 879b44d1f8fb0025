"""Node.js functions under the emulated runtime, through warmline's Node bootstrap and real node.

What Lambda's Node.js runtimes do (docs/runtimes.md, docs/protocols.md §3.10): CommonJS and
ES module handlers (``.mjs`` and ``"type": "module"``), async and callback styles,
``callbackWaitsForEmptyEventLoop``, errors as ``{errorType, errorMessage, trace}``, the
init errors, console lines as ``time\\trequest id\\tLEVEL\\tmessage``, and the AWS SDK for
JavaScript v3 importable without bundling it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import FIXTURES, run, started

from warmline.dev.runtime.spec import FunctionSpec

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js functions need node and npm on PATH (make node installs them)",
)

NODE = FIXTURES / "node"
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(?P<id>[0-9a-f-]{36}|undefined)\t"
    r"(?P<level>[A-Z]+)\t(?P<message>.*)$"
)


def _node(folder: str, handler: str, **kwargs: Any) -> FunctionSpec:
    kwargs.setdefault("name", "f")
    kwargs.setdefault("timeout_s", 10.0)
    return FunctionSpec(handler=handler, code_dir=NODE / folder, runtime="nodejs20.x", **kwargs)


def test_a_commonjs_async_handler_gets_lambdas_context_and_logs_in_node_format(
    tmp_path: Path,
) -> None:
    async def go() -> None:
        async with started(_node("cjs", "index.handler"), state_dir=tmp_path) as (rt, logs):
            result = await rt.invoke("f", {"n": 1})
            assert result.status == "ok", result.error
            payload = result.payload
            assert payload["sdk"] == "function"  # the runtime's SDK, not bundled
            assert payload["requestId"] == result.request_id
            assert (payload["functionName"], payload["memory"]) == ("f", "128")
            assert payload["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:f"
            assert 0 < payload["remaining"] <= 10_000
            assert payload["trace"].startswith("Root=1-")
            assert payload["executionEnv"] == "AWS_Lambda_nodejs20.x"
            lines = [
                m for line in logs.for_request(result.request_id) if (m := LOG_LINE.match(line))
            ]
            assert [(m["id"], m["level"], m["message"]) for m in lines] == [
                (result.request_id, "INFO", "info line"),
                (result.request_id, "WARN", "warn\rline"),  # one event per call, as on Lambda
            ]

    run(go())


def test_es_module_handlers_mjs_and_type_module_import_the_sdk(tmp_path: Path) -> None:
    async def go() -> None:
        functions = [
            _node("mjs", "app.handler", name="mjs"),
            _node("typemodule", "index.handler", name="typemodule"),
        ]
        async with started(*functions, state_dir=tmp_path) as (rt, _):
            mjs = await rt.invoke("mjs", {"k": "v"})
            typed = await rt.invoke("typemodule", {})
        assert mjs.payload == {"esm": "mjs", "sdk": "function", "event": {"k": "v"}}, mjs.error
        assert typed.payload == {"esm": "type-module", "sdk": "function"}, typed.error

    run(go())


@pytest.mark.parametrize("wait", [True, False])
def test_callback_waits_for_the_empty_event_loop_unless_told_not_to(
    tmp_path: Path, wait: bool
) -> None:
    async def go() -> tuple[Any, list[str]]:
        functions = [_node("cjs", "index.callback", name="cb")]
        async with started(*functions, state_dir=tmp_path) as (rt, logs):
            result = await rt.invoke("cb", {"wait": wait})
            return result, logs.for_request(result.request_id)

    result, lines = run(go())
    assert result.payload == {"style": "callback", "pendingAtReturn": 1}
    # waiting: the 200 ms timer ran inside the invocation (before its END); not waiting: the
    # response went at once and the timer fires later, in no invocation of this one
    assert any(line.endswith("\tINFO\ttimer done") for line in lines) is wait


def test_errors_are_node_shaped_and_the_environment_stays_warm(tmp_path: Path) -> None:
    async def go() -> None:
        async with started(_node("cjs", "index.handler"), state_dir=tmp_path) as (rt, logs):
            thrown = await rt.invoke("f", {"action": "throw"})
            string = await rt.invoke("f", {"action": "reject-string"})
            nested_ok = await rt.invoke("f", {"action": "pending"})
            assert thrown.status == "error"
            assert thrown.error is not None
            assert thrown.error["errorType"] == "RangeError"
            assert thrown.error["errorMessage"] == "out of range"
            assert thrown.error["trace"][0] == "RangeError: out of range"
            assert string.error == {
                "errorType": "string", "errorMessage": "just a string", "trace": [],
            }  # fmt: skip
            assert nested_ok.status == "ok"
            assert nested_ok.environment_id == thrown.environment_id
            invoke_error = [
                m for line in logs.for_request(thrown.request_id)
                if (m := LOG_LINE.match(line)) and m["level"] == "ERROR"
            ]  # fmt: skip
            assert invoke_error[0]["message"].startswith('Invoke Error \t{"errorType":"RangeError"')

    run(go())


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: "),
        ("throws.handler", "Error", "init went wrong"),
        ("empty.handler", "Runtime.HandlerNotFound", "empty.handler is undefined or not exported"),
        ("missing.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'missing'"),
        ("nodot", "Runtime.MalformedHandlerName", "Bad handler nodot"),
    ],
)
def test_init_errors_are_classified_as_lambdas_node_runtime_does(
    tmp_path: Path, handler: str, error_type: str, message: str
) -> None:
    async def go() -> Any:
        async with started(_node("broken", handler), state_dir=tmp_path) as (rt, _):
            return await rt.invoke("f", {})

    result = run(go())
    assert result.status == "init_error"
    assert result.error["errorType"] == error_type
    assert result.error["errorMessage"].startswith(message)


def test_a_nested_handler_path_resolves(tmp_path: Path) -> None:
    async def go() -> Any:
        async with started(_node("cjs", "index.nested.deeper.fn"), state_dir=tmp_path) as (rt, _):
            return await rt.invoke("f", {})

    assert run(go()).payload == "nested"


def test_recycle_makes_the_next_invoke_load_the_edited_module(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = code / "index.mjs"
    module.write_text("export const handler = async () => 'first';\n")

    async def go() -> tuple[Any, Any, Any]:
        function = FunctionSpec("f", "index.handler", code, runtime="nodejs20.x", timeout_s=10)
        async with started(function, state_dir=tmp_path / "state") as (rt, _):
            before = await rt.invoke("f", {})
            module.write_text("export const handler = async () => 'second';\n")
            retired = await rt.recycle("f")
            after = await rt.invoke("f", {})
            return before, retired, after

    before, retired, after = run(go())
    assert (before.payload, retired, after.payload) == ("first", 1, "second")
    assert after.cold
