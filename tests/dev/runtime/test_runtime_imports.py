"""The package's public names, and the runtime process staying small."""

from __future__ import annotations

import warmline.dev.runtime as runtime_package
from warmline.testing import modules_after


def test_the_contract_names_resolve_from_the_package() -> None:
    from warmline.dev.runtime.logs import LogSink
    from warmline.dev.runtime.runtime import Runtime
    from warmline.dev.runtime.spec import EnvironmentInfo, FunctionSpec, InvokeResult

    assert runtime_package.Runtime is Runtime
    assert runtime_package.LogSink is LogSink
    assert runtime_package.FunctionSpec is FunctionSpec
    assert runtime_package.InvokeResult is InvokeResult
    assert runtime_package.EnvironmentInfo is EnvironmentInfo
    assert sorted(runtime_package.__all__) == runtime_package.__all__
    assert all(hasattr(runtime_package, name) for name in runtime_package.__all__)


def test_the_runtime_process_loads_nothing_asynchronous_through_the_standard_library() -> None:
    """What warmline's own modules import is the ``runtime-process-lean`` import-linter
    contract (pyproject.toml); this checks what the standard library pulls in behind them."""
    loaded = modules_after("import warmline.dev.runtime.zygote, warmline.dev.runtime.snapstart")
    assert sorted(m for m in ("asyncio", "dataclasses", "inspect") if m in loaded) == []
