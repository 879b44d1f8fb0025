"""Reload on save: a code edit reaches the next invocation, as a deploy would.

``warmline dev`` watches every function's code directory (with ``watchfiles``, the ``dev``
extra). After a change it:

1. compiles each changed ``.py`` file: a syntax error is reported with its file and line,
   and nothing is retired, so the environments that are warm keep serving the previous
   code until the file compiles again;
2. removes the changed files' cached bytecode (``__pycache__``), which Python would trust
   when an edit keeps the file's size and modification second;
3. retires the affected functions' environments (:meth:`Runtime.recycle`): idle ones at
   once, busy ones when their current invocation returns, never mid-call. Their WebSocket
   connections belong to the gateway and stay open, as they do across a deploy on AWS;
4. says so in one line.

A change to ``requirements.txt`` or ``pyproject.toml`` also rebuilds the function's
dependency folder at its next cold start (:mod:`warmline.dev.runtime.deps` keys it by the
declaration's hash). Changes under ``.warmline/`` (the emulator's own state, which may lie
inside a code directory), ``__pycache__``, ``.git`` and editors' swap files are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warmline.dev.runtime import Runtime

__all__ = ["CodeWatcher", "syntax_problem"]

#: Milliseconds watchfiles groups changes over (an editor's save is often several writes);
#: its default (1.6 s) would make the first message after a save wait for the old code.
DEBOUNCE_MS = 60
#: How often the watcher checks for its stop signal and the end of a batch.
STEP_MS = 20
#: Folders whose changes never reload (the emulator's state among them).
IGNORED_DIRS = (".warmline",)


def syntax_problem(path: Path) -> str | None:
    """``"FILE:LINE: message"`` when ``path`` does not compile, else None.

    A file that vanished or cannot be read is no syntax problem (a rename in progress).
    """
    try:
        source = path.read_bytes()
    except OSError:
        return None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else 0
        return f"{path}:{line}: {exc.__class__.__name__}: {exc.msg}"
    except ValueError as exc:  # null bytes
        return f"{path}:0: {exc}"
    return None


def _drop_bytecode(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        os.unlink(importlib.util.cache_from_source(str(path)))


class CodeWatcher:
    """Watches the functions' code and retires their environments after an edit.

    Args:
        runtime: the runtime whose environments are retired.
        code_dirs: each function's code directory, by function name.
        log: one line for the console (the reload, a syntax error).
    """

    def __init__(
        self, runtime: Runtime, code_dirs: Mapping[str, Path], log: Callable[[str], None]
    ) -> None:
        self._runtime = runtime
        self._dirs = {name: Path(d).resolve() for name, d in code_dirs.items()}
        self._log = log
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: changed ``.py`` files that do not compile yet, with their problem.
        self.broken: dict[Path, str] = {}
        #: functions whose code changed while a file was broken (retired once it compiles).
        self._pending: set[str] = set()
        #: how many reloads retired environments (tests and the benchmark wait on it).
        self.reloads = 0
        #: set when the watcher has started watching (changes before it are not seen).
        self.watching = asyncio.Event()

    def start(self) -> None:
        """Start watching (in a task on the running loop).

        Raises:
            MissingExtraError: ``watchfiles`` is not installed.
        """
        try:
            import watchfiles  # noqa: F401
        except ImportError as exc:
            from warmline.errors import MissingExtraError

            raise MissingExtraError("watchfiles", "dev") from exc
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        """Stop watching."""
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        from watchfiles import DefaultFilter, awatch

        roots = sorted({str(d) for d in self._dirs.values() if d.is_dir()})
        if not roots:
            self.watching.set()
            return
        ignore = DefaultFilter(ignore_dirs=(*DefaultFilter.ignore_dirs, *IGNORED_DIRS))
        watch = awatch(
            *roots,
            watch_filter=ignore,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=self._stop,
            yield_on_timeout=True,
            rust_timeout=STEP_MS * 5,
        )
        async for changes in watch:
            self.watching.set()
            if changes:
                await self.apply([Path(path) for _change, path in changes])

    def functions_of(self, paths: Iterable[Path]) -> set[str]:
        """The functions whose code directory holds one of ``paths``."""
        found = set()
        for path in paths:
            for name, root in self._dirs.items():
                if path == root or root in path.parents:
                    found.add(name)
        return found

    async def apply(self, paths: list[Path]) -> int:
        """Act on one batch of changed files; returns how many environments were retired."""
        python = [p for p in paths if p.suffix == ".py"]
        for path in python:
            _drop_bytecode(path)
            self.broken.pop(path, None)
            problem = syntax_problem(path)
            if problem is not None:
                self.broken[path] = problem
        for path in list(self.broken):  # fixed by a change that was not itself seen
            if not path.exists() or syntax_problem(path) is None:
                del self.broken[path]
        self._pending |= self.functions_of(paths)
        if self.broken:
            for problem in self.broken.values():
                self._log(f"reload held: {problem}; the previous code keeps serving")
            return 0
        functions, self._pending = sorted(self._pending), set()
        retired = 0
        for name in functions:
            retired += await self._runtime.recycle(name)
        if functions:
            self.reloads += 1
            shown = ", ".join(_short(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
            self._log(
                f"reloaded {', '.join(functions)} ({shown}): {retired} warm environment(s) "
                "retired once their current invocation ends; the next one runs the new code"
            )
        return retired


def _short(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)
