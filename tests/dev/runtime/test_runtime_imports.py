"""The package's public names, and the runtime process staying small."""

from __future__ import annotations

import json
import subprocess
import sys

import warmline.dev.runtime as runtime_package


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
    probe = (
        "import json, sys\n"
        "import warmline.dev.runtime.zygote, warmline.dev.runtime.snapstart\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    loaded = set(json.loads(out))
    assert "asyncio" not in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("websockets", "boto3", "dataclasses")}
    assert "warmline.dev.runtime.runtime" not in loaded
