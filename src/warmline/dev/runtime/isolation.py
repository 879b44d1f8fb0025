"""The emulator's side of the sandbox: per function, what its environments see and run on.

For each function it decides (once, and again after :meth:`Isolation.forget` when the code
changed) the interpreter (the declared ``Runtime`` when this machine has it), the import
path (:mod:`warmline.dev.runtime.deps`) and the filesystem policy that
:func:`warmline.dev.runtime.sandbox.enter` applies inside each environment. Everything it
could not do is said once, in :attr:`Isolation.notices`, which ``warmline dev`` prints at
start.

Paths that stay visible inside the sandbox besides the task root: files the emulator names
in the environment's variables (the CA bundle of its TLS endpoint, read-only) and the
emulator's state folder ``.warmline/`` (read-write: it holds the SQLite session store that
stands in for a shared table, ``WARMLINE_SQLITE_PATH``, so every environment of a call sees
the same sessions, as every environment on AWS sees the same DynamoDB table), except the
import path inside it: the function's dependencies and the runtime's packages, with what
they link to on this machine, are read-only, as the zip and the runtime are on Lambda.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warmline.dev.runtime import deps, runtimes
from warmline.dev.runtime.sandbox import STAGE_NAME

if TYPE_CHECKING:
    from warmline.dev.runtime.spec import FunctionSpec

__all__ = ["Isolation", "stage_directory"]

_RUNTIME_RE = re.compile(r"^python(\d+)\.(\d+)$")
#: Where a sandboxed function's SQLite session store lives (in the state folder).
SESSIONS_FILE = "sessions.sqlite3"


def stage_directory() -> str:
    """The host directory each environment mounts its private /tmp on before moving it."""
    path = f"/tmp/{STAGE_NAME}-{os.geteuid()}"
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


class Isolation:
    """What every function's environments get, decided by the emulator.

    Args:
        enabled: isolate environments (the default of ``warmline dev``; ``--no-sandbox``
            turns it off and environments run as host processes).
        state_dir: the emulator's state folder (``.warmline/``): dependency and runtime
            directories, the session store.

    Attributes:
        mounts: None while the mount sandbox works, else why it does not (the import path
            is still restricted).
        notices: start-up lines: what is not isolated, which Python runs what.
    """

    def __init__(self, *, enabled: bool, state_dir: Path) -> None:
        self.enabled = enabled
        self.state_dir = state_dir.resolve()
        self.mounts: str | None = None if enabled else "--no-sandbox"
        self.stage = ""
        self.notices: list[str] = []
        self._pythons: dict[tuple[int, int], str | None] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._runtime_dirs: dict[tuple[int, int], deps.Built] = {}
        self._said: set[str] = set()

    def say(self, line: str) -> None:
        """Add a start-up line once."""
        if line not in self._said:
            self._said.add(line)
            self.notices.append(line)

    def prepare_stage(self) -> str | None:
        """The staging directory for the probe (None: off, or it cannot be made)."""
        if not self.enabled:
            return None
        if not sys.platform.startswith("linux"):
            self.mounts = f"mount namespaces are Linux-only (this is {sys.platform})"
            return None
        try:
            self.stage = stage_directory()
        except OSError as exc:
            self.mounts = f"cannot make the staging directory: {exc}"
            return None
        return self.stage

    def probed(self, reason: str | None) -> None:
        """Record the zygote's answer and say, once, what is not isolated."""
        if not self.enabled:
            self.say(
                "sandbox off (--no-sandbox): environments write to their code and share "
                "/tmp, and import anything installed next to warmline"
            )
            return
        if reason is not None:
            self.mounts = reason
        if self.mounts is not None:
            self.say(
                f"environments are not isolated ({self.mounts}): their task root is "
                "writable and /tmp is shared between them; the import path is Lambda's"
            )

    # --- per function ---------------------------------------------------------------------

    def python_for(self, spec: FunctionSpec) -> tuple[str, tuple[int, int]]:
        """The interpreter of the function's declared runtime, else this one (said once)."""
        here = (sys.version_info[0], sys.version_info[1])
        match = _RUNTIME_RE.match(spec.runtime or "")
        if match is None:
            return sys.executable, here
        wanted = (int(match.group(1)), int(match.group(2)))
        if wanted == here:
            return sys.executable, here
        if wanted not in self._pythons:
            from warmline.tools.deploy.package import find_python

            found = find_python(wanted) if self.enabled else None
            self._pythons[wanted] = found
            name = f"python{wanted[0]}.{wanted[1]}"
            if found is not None:
                self.say(f"{name} functions run on {found}")
            else:
                self.say(
                    f"{name} functions run on this machine's Python {here[0]}.{here[1]} "
                    f"({'--no-sandbox' if not self.enabled else f'no {name} found'})"
                )
        found = self._pythons[wanted]
        return (found, wanted) if found is not None else (sys.executable, here)

    def forget(self, function: str) -> None:
        """Decide the function's import path again at its next environment (code changed)."""
        self._configs.pop(function, None)

    async def config(self, spec: FunctionSpec, extra_env: Mapping[str, str]) -> dict[str, Any]:
        """The isolation part of an environment's configuration (built on first use)."""
        cached = self._configs.get(spec.name)
        if cached is None:
            cached = await asyncio.to_thread(self._build, spec)
            self._configs[spec.name] = cached
        if not self.enabled:
            return cached
        config = dict(cached)
        if self.mounts is None:
            policy = dict(config["sandbox"])
            policy["read_only"] = [*policy["read_only"], *_named_files(extra_env)]
            config["sandbox"] = policy
        else:
            config.pop("sandbox", None)
        return config

    def _build(self, spec: FunctionSpec) -> dict[str, Any]:
        if runtimes.family(spec.runtime) != "python":
            return self._build_other(spec)
        python, version = self.python_for(spec)
        config: dict[str, Any] = {"version": list(version)}
        if python != sys.executable:
            config["python"] = python
        aws_client = spec.runtime_client == runtimes.AWS_CLIENT
        if aws_client:
            config["client_python"] = python
        if not self.enabled and not aws_client:
            return config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        runtime = self._runtime_dirs.get(version)
        if runtime is None:
            runtime = self._runtime_dirs[version] = deps.runtime_directory(
                self.state_dir, python, version
            )
            if runtime.missing:
                self.say(
                    f"not installed here, so not importable as Lambda's runtime would provide "
                    f"them: {', '.join(runtime.missing)}"
                )
        built = deps.function_dependencies(
            self.state_dir,
            spec.name,
            Path(spec.code_dir),
            python=python,
            version=version,
            warmline=spec.bundles_warmline,
            extra=[runtimes.AWSLAMBDARIC] if aws_client else (),
        )
        for note in built.notes:
            self.say(f"function {spec.name}: {note}")
        if not self.enabled:  # awslambdaric's own path only; the relay keeps the emulator's
            config["client_path"] = [str(built.path), str(runtime.path)]
            return config
        config["import_path"] = [str(built.path), str(runtime.path)]
        config["runtime_dir"] = str(runtime.path)
        import_path = config["import_path"]
        config.update(self._policy(spec, [*import_path, *_link_targets(import_path)]))
        return config

    def _policy(self, spec: FunctionSpec, read_only: list[str]) -> dict[str, Any]:
        """The session store's default and the sandbox policy of a function's environments."""
        return {
            "env_defaults": {"WARMLINE_SQLITE_PATH": str(self.state_dir / SESSIONS_FILE)},
            "sandbox": {
                "task_root": str(Path(spec.code_dir).resolve()),
                "tmp_mb": spec.ephemeral_storage_mb,
                "stage": self.stage,
                "writable": [str(self.state_dir)],
                "read_only": [*read_only, *_runtime_files()],
            },
        }

    def _build_other(self, spec: FunctionSpec) -> dict[str, Any]:
        """Node.js and ``provided``: the SDK and dependencies on ``NODE_PATH``, the sandbox."""
        from warmline.dev.runtime import node_sdk

        config: dict[str, Any] = {}
        node_path: list[str] = []
        if runtimes.family(spec.runtime) == "node":
            self.say(f"{spec.runtime} functions run on node {runtimes.node_version()}")
            for built in (
                node_sdk.sdk_modules(),
                node_sdk.function_modules(self.state_dir, spec.name, Path(spec.code_dir)),
            ):
                for note in built.notes:
                    self.say(f"function {spec.name}: {note}")
                if built.path is not None:
                    node_path.append(str(built.path))
        config["node_path"] = node_path
        if not self.enabled:
            return config
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config.update(self._policy(spec, node_path))
        return config


def _runtime_files() -> list[str]:
    """The emulated runtime's own files, as Lambda keeps ``/var/runtime`` outside ``/tmp``:
    the interpreter and its environment (the shebang of a ``provided`` bootstrap written
    for this machine, awslambdaric's ``python``), and the warmline package (the Node.js
    bootstrap, the Runtime API relay). They must stay visible when the private ``/tmp``
    covers them, e.g. for a checkout under /tmp."""
    import warmline

    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.add(os.path.dirname(os.path.realpath(warmline.__file__)))
    return sorted(paths)


def _named_files(env: Mapping[str, str]) -> list[str]:
    """Absolute paths of existing files among ``env``'s values (e.g. ``AWS_CA_BUNDLE``)."""
    out = []
    for value in env.values():
        if value.startswith("/") and os.path.isfile(value):
            out.append(value)
    return out


def _link_targets(import_path: list[str]) -> list[str]:
    """Where the links inside the import path's directories lead (a package linked from
    this machine's virtualenv): read-only in the environment, as the zip's copy is on
    Lambda, and visible when the private /tmp covers them (a checkout under /tmp)."""
    targets: set[str] = set()
    for entry in import_path:
        if not os.path.isdir(entry):
            continue
        for child in os.scandir(entry):
            if child.is_symlink():
                targets.add(os.path.dirname(os.path.realpath(child.path)))
    return sorted(targets)
