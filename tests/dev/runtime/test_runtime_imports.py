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


def test_the_runtime_process_imports_nothing_asynchronous() -> None:
    loaded = modules_after("import warmline.dev.runtime.zygote, warmline.dev.runtime.snapstart")
    assert "asyncio" not in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("websockets", "boto3", "dataclasses")}
    assert "warmline.dev.runtime.runtime" not in loaded
