"""What an environment is given: its variables, names and ARN (docs/protocols.md §3.7).

The variables are Lambda's documented ones, then the emulator's ``extra_env`` (endpoint
URLs, CA bundle), then the function's own ``environment``, which wins. Of the host's
environment only a few variables are kept (:data:`INHERITED_ENV`): nothing of your shell
exists on Lambda, and real AWS credentials must not leak into code that believes it runs
against local endpoints.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warmline.dev.runtime import runtimes
from warmline.dev.runtime.spec import FunctionSpec

__all__ = ["ACCOUNT_ID", "DUMMY_CREDENTIALS", "INHERITED_ENV", "environment_config"]

#: ``LAMBDA_RUNTIME_DIR``: where the (emulated) runtime's code lives.
_RUNTIME_DIR = str(Path(__file__).resolve().parent)

#: The account id in emulated ARNs (AWS's documentation example account).
ACCOUNT_ID = "123456789012"
#: Host variables an environment keeps; the rest of the emulator's environment (and any
#: real AWS credentials in it) stays out, as nothing of your shell exists on Lambda.
INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "LD_LIBRARY_PATH",
    "SYSTEMROOT",
)
#: Credentials of a runtime run without the emulator's account (the runtime's own tests):
#: SDK clients find keys as on Lambda, and every endpoint of ``warmline dev`` refuses them
#: (``UnrecognizedClientException``). Under ``DevServer`` each function's own keys
#: (``warmline.dev.iam``) replace them through its environment.
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAWARMLINEDEV00000",
    "AWS_SECRET_ACCESS_KEY": "warmline-dev-secret-access-key-not-real",
    "AWS_SESSION_TOKEN": "warmline-dev-session-token",
}


def environment_config(
    spec: FunctionSpec,
    env_id: str,
    *,
    region: str,
    extra_env: Mapping[str, str],
    snapstart: bool,
    isolation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration one new environment receives.

    Args:
        spec: the function.
        env_id: the environment's id (the tail of its log stream name).
        region: the emulated region.
        extra_env: the emulator's variables for every environment.
        snapstart: whether environments are restored from a template.
        isolation: the function's ``sandbox`` policy and ``import_path``
            (:mod:`warmline.dev.runtime.sandbox`), merged into the configuration; None
            runs the environment with the emulator's own view and import path.

    Returns:
        A JSON-able dict: ``env`` (the variables), names, ARN, handler, code directory.
    """
    code_dir = str(Path(spec.code_dir).resolve())
    group = f"/aws/lambda/{spec.name}"
    stream = time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{env_id}"
    major, minor = sys.version_info[:2]
    if isolation is not None and isolation.get("version"):
        major, minor = isolation["version"]
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    env.update(DUMMY_CREDENTIALS)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if snapstart else "on-demand",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{major}.{minor}",
            "LAMBDA_TASK_ROOT": code_dir,
            "LAMBDA_RUNTIME_DIR": _RUNTIME_DIR,
            "_HANDLER": spec.handler,
            "TZ": ":UTC",
        }
    )
    if isolation is not None:
        env.update(isolation.get("env_defaults") or {})
        if isolation.get("runtime_dir"):
            env["LAMBDA_RUNTIME_DIR"] = str(isolation["runtime_dir"])
    execution_env = runtimes.execution_env(spec.runtime)
    if runtimes.family(spec.runtime) != "python":
        env.pop("AWS_EXECUTION_ENV")  # provided sets none, as on AWS
    if execution_env is not None:
        env["AWS_EXECUTION_ENV"] = execution_env
    env.update(extra_env)
    env.update(spec.environment)
    config: dict[str, Any] = {
        "kind": "env",
        "function": spec.name,
        "handler": spec.handler,
        "code_dir": code_dir,
        "memory_mb": spec.memory_mb,
        "env": env,
        "arn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{spec.name}",
        "log_group": group,
        "log_stream": stream,
        "env_id": env_id,
    }
    if spec.debug:
        config["debug"] = dict(spec.debug)
    if isolation is not None:
        config.update(isolation)
        config.pop("version", None)
        config.pop("env_defaults", None)
    if runtimes.uses_runtime_api(spec.runtime, spec.runtime_client):
        built = isolation or {}
        config["runtime_api"] = runtimes.runtime_api_config(
            spec.runtime,
            spec.runtime_client,
            code_dir=code_dir,
            env=env,
            import_path=built.get("import_path") or built.get("client_path"),
            python=built.get("client_python") or sys.executable,
            node_path=built.get("node_path") or [],
        )
    for key in ("node_path", "client_path", "client_python"):
        config.pop(key, None)
    return config
