"""The handler's view: context fields, environment variables, cwd and sys.path."""

from __future__ import annotations

import re

import pytest
from runtime_helpers import CLIENTS, FIXTURES, run, spec, started


@CLIENTS
def test_context_has_every_field_lambda_documents(client: str | None) -> None:
    async def main() -> None:
        fn = spec(
            "probe.handler", name="probe", memory_mb=256, timeout_s=2.0, runtime_client=client
        )
        async with started(fn, region="eu-south-1") as (rt, _logs):
            result = await rt.invoke("probe", {"pause": 0.05})
            ctx = result.payload
            assert result.status == "ok"
            assert ctx["function_name"] == "probe"
            assert ctx["function_version"] == "$LATEST"
            assert ctx["invoked_function_arn"] == (
                "arn:aws:lambda:eu-south-1:123456789012:function:probe"
            )
            assert ctx["memory_limit_in_mb"] == "256"
            assert ctx["aws_request_id"] == result.request_id
            assert ctx["log_group_name"] == "/aws/lambda/probe"
            assert re.fullmatch(
                r"\d{4}/\d\d/\d\d/\[\$LATEST\]" + result.environment_id, ctx["log_stream_name"]
            )
            assert ctx["identity"] == [None, None]
            assert ctx["client_context"] is None
            first, second = ctx["remaining"]
            assert 0 < second < first <= 2000

    run(main())


@CLIENTS
def test_client_context_reaches_the_handler(client: str | None) -> None:
    async def main() -> None:
        client_context = {
            "client": {"installation_id": "inst-1", "app_title": "warmer"},
            "custom": {"source": "serverless-plugin-warmup"},
            "env": {"platform": "test"},
        }
        async with started(spec("probe.handler", runtime_client=client)) as (rt, _logs):
            result = await rt.invoke("f", {"pause": 0}, client_context=client_context)
            assert result.payload["client_context"] == {
                "installation_id": "inst-1",
                "app_title": "warmer",
                "custom": {"source": "serverless-plugin-warmup"},
                "env": {"platform": "test"},
            }

    run(main())


def test_environment_variables_are_lambdas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARMLINE_TEST_HOST_ONLY", "secret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALHOSTKEY")

    async def main() -> None:
        fn = spec("probe.handler", memory_mb=512, environment={"TABLE": "t1"})
        async with started(fn, region="us-west-2") as (rt, _logs):
            result = await rt.invoke("f", {"pause": 0})
            env = result.payload["environ"]
            assert env["AWS_LAMBDA_FUNCTION_NAME"] == "f"
            assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
            assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
            assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/f"
            assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == result.payload["log_stream_name"]
            assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-west-2"
            assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
            assert env["LAMBDA_TASK_ROOT"] == str(FIXTURES.resolve())
            assert env["LAMBDA_RUNTIME_DIR"]
            assert env["_HANDLER"] == "probe.handler"
            assert env["TZ"] == ":UTC"
            assert env["TABLE"] == "t1"
            assert env["AWS_ACCESS_KEY_ID"] != "AKIAREALHOSTKEY"
            assert env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
            assert "WARMLINE_TEST_HOST_ONLY" not in env
            assert result.payload["cwd"] == str(FIXTURES.resolve())

    run(main())


def test_given_credentials_replace_the_dummy_ones() -> None:
    async def main() -> None:
        fn = spec("probe.handler", environment={"AWS_ACCESS_KEY_ID": "AKIAGIVEN"})
        async with started(fn) as (rt, _logs):
            result = await rt.invoke("f", {"pause": 0})
            assert result.payload["environ"]["AWS_ACCESS_KEY_ID"] == "AKIAGIVEN"

    run(main())


def test_handler_module_may_live_in_a_package_with_slashes(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "app.py").write_text("def main(event, context):\n    return event * 2\n")

    async def main() -> None:
        from warmline.dev.runtime.spec import FunctionSpec

        for handler in ("pkg/app.main", "pkg.app.main"):
            async with started(FunctionSpec("f", handler, root)) as (rt, _logs):
                result = await rt.invoke("f", 21)
                assert (result.status, result.payload) == ("ok", 42)

    run(main())


def test_user_code_pays_for_importing_warmline_itself(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "app.py").write_text(
        "import sys\n"
        "BEFORE = sorted(m for m in sys.modules if m.startswith('warmline'))\n"
        "def handler(event, context):\n"
        "    return BEFORE\n"
    )

    async def main() -> None:
        from warmline.dev.runtime.spec import FunctionSpec

        async with started(FunctionSpec("f", "app.handler", root)) as (rt, _logs):
            result = await rt.invoke("f", {})
            assert result.payload == []

    run(main())


def test_each_invocation_gets_its_trace_id_from_the_event_or_a_fresh_one() -> None:
    root = "Root=1-65a1b2c3-0123456789abcdef01234567"

    async def main() -> tuple[str, str, str]:
        async with started(spec("probe.handler")) as (rt, _logs):
            traced = {"pause": 0, "headers": {"X-Amzn-Trace-Id": root}}
            first = await rt.invoke("f", traced)
            second = await rt.invoke("f", {"pause": 0})
            third = await rt.invoke("f", {"pause": 0})
            return tuple(r.payload["environ"]["_X_AMZN_TRACE_ID"] for r in (first, second, third))

    first, second, third = run(main())
    shape = r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0"
    assert all(re.fullmatch(shape, t) for t in (first, second, third))
    assert first.startswith(root + ";Parent=")
    # an event without the header: a fresh root each time, never the previous one's
    assert len({t.split(";")[0] for t in (first, second, third)}) == 3
