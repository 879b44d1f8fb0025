"""Which runtime runs a function, and how: the built-in Python one or the Runtime API.

A function declares its runtime (``Runtime`` in a template, ``runtime`` in warmline.toml):

* ``python3.X`` runs on the emulator's own Python runtime (:mod:`warmline.dev.runtime.bootstrap`,
  the fast path) unless it opts into AWS's runtime interface client with
  ``runtime_client = "aws"``: then ``python -m awslambdaric`` runs it over the Runtime API;
* ``nodejs18.x`` / ``nodejs20.x`` / ``nodejs22.x`` run warmline's Node bootstrap
  (``node/bootstrap.js`` in this package) on this machine's ``node``, with the AWS SDK for
  JavaScript v3 on ``NODE_PATH`` as Lambda's Node runtimes ship it (:mod:`.node_sdk`);
* ``provided.al2023`` / ``provided.al2`` run the executable ``bootstrap`` at the task root.

Everything but the built-in Python runtime goes through
:mod:`warmline.dev.runtime.runtime_api`. This module decides the command and the variables
Lambda's runtime gives that family (docs/protocols.md §3.10, §3.7).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from warmline.errors import ConfigurationError

__all__ = [
    "AWS_CLIENT",
    "NODE_DIR",
    "Family",
    "family",
    "node_binary",
    "node_version",
    "runtime_api_config",
    "uses_runtime_api",
]

Family = Literal["python", "node", "provided"]

#: ``runtime_client = "aws"``: AWS's runtime interface client from the package index.
AWS_CLIENT = "aws"
#: The pinned awslambdaric a ``runtime_client = "aws"`` function gets.
AWSLAMBDARIC = "awslambdaric==3.1.1"
#: warmline's Node.js runtime: the bootstrap, the ESM resolve hook, the SDK's lock file.
NODE_DIR = Path(__file__).resolve().parent / "node"

_NODE_RE = re.compile(r"^nodejs(\d+)\.x$")
_PROVIDED = ("provided", "provided.al2", "provided.al2023")


def family(runtime: str | None) -> Family:
    """The runtime family of a declared runtime (None: Python, the emulator's own).

    Raises:
        ConfigurationError: a runtime ``warmline dev`` cannot run.
    """
    if runtime is None or re.match(r"^python3\.\d+$", runtime):
        return "python"
    if _NODE_RE.match(runtime):
        return "node"
    if runtime in _PROVIDED:
        return "provided"
    raise ConfigurationError(
        f"runtime {runtime} is not run by warmline dev "
        "(python3.x, nodejs18.x/20.x/22.x, provided.al2023/provided.al2 are)"
    )


def uses_runtime_api(runtime: str | None, runtime_client: str | None) -> bool:
    """Whether the function runs over the Runtime API (not the built-in Python runtime)."""
    return family(runtime) != "python" or runtime_client == AWS_CLIENT


@functools.lru_cache(maxsize=1)
def node_binary() -> str | None:
    """This machine's ``node`` (None: not on PATH)."""
    return shutil.which("node")


@functools.lru_cache(maxsize=1)
def node_version() -> str:
    """``node --version`` without the ``v`` (``"20.20.2"``), or ``""`` without node."""
    node = node_binary()
    if node is None:
        return ""
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().lstrip("v")


def check_available(runtime: str | None) -> None:
    """Refuse to start with a function whose runtime this machine cannot run.

    Raises:
        ConfigurationError: e.g. ``nodejs20.x needs node on PATH``.
    """
    if family(runtime) == "node" and node_binary() is None:
        raise ConfigurationError(
            f"{runtime} needs node on PATH (Node.js 18 or newer; `make node` installs "
            "Debian's package)"
        )


def execution_env(runtime: str | None) -> str | None:
    """``AWS_EXECUTION_ENV`` of a non-Python family (``provided`` sets none, as on AWS)."""
    if runtime is not None and family(runtime) == "node":
        return f"AWS_Lambda_{runtime}"
    return None


def runtime_api_config(
    spec_runtime: str | None,
    runtime_client: str | None,
    *,
    code_dir: str,
    env: Mapping[str, str],
    import_path: list[str] | None,
    python: str | None,
    node_path: list[str],
) -> dict[str, Any] | None:
    """The ``runtime_api`` part of an environment's configuration (None: built-in Python).

    Args:
        spec_runtime: the declared runtime.
        runtime_client: ``"aws"`` for awslambdaric.
        code_dir: the task root.
        env: the environment's variables so far (``AWS_CA_BUNDLE``).
        import_path: the Python import path the emulator built (awslambdaric).
        python: the interpreter for awslambdaric.
        node_path: directories on ``NODE_PATH`` (the SDK, the function's dependencies).

    Returns:
        ``{"command": [...], "env": {...}}``: what the environment starts and what the
        runtime gets besides the function's variables.
    """
    kind = family(spec_runtime)
    extra: dict[str, str] = {}
    if kind == "provided":
        return {"command": [os.path.join(code_dir, "bootstrap")], "env": extra}
    if kind == "node":
        node = node_binary() or "node"
        # Lambda's Node runtimes: NODE_PATH lists the runtime's modules and the task root.
        extra["NODE_PATH"] = ":".join([*node_path, str(NODE_DIR), code_dir])
        ca = env.get("AWS_CA_BUNDLE")
        if ca and "NODE_EXTRA_CA_CERTS" not in env:
            # The emulator's CA (its TLS endpoints, the proxy for AWS host names).
            extra["NODE_EXTRA_CA_CERTS"] = ca
        return {"command": [node, str(NODE_DIR / "bootstrap.js")], "env": extra}
    if runtime_client != AWS_CLIENT:
        return None
    # AWS's base image runs ``python -m awslambdaric <handler>``; -S keeps this machine's
    # site-packages off the path, so the import path is Lambda's (the task root, the
    # function's dependencies with awslambdaric, the runtime's boto3).
    extra["PYTHONPATH"] = ":".join([code_dir, *(import_path or [])])
    command = [python or "python3", "-S", "-m", "awslambdaric", env.get("_HANDLER", "")]
    return {"command": command, "env": extra}
