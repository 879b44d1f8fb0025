"""``warmline coldstart``: what a handler's cold start spends, module by module.

A Lambda cold start runs the handler module's top level in a fresh interpreter; every
import there is paid by the first caller (docs/protocols.md §3.1). This tool measures exactly
that, in fresh interpreters, many times:

- **Total**: wall time of ``python -c "import handler_module"`` minus a bare ``python -c
  pass``, interleaved run by run; the fastest run of each, because machine noise only ever
  adds time (medians moved too much between runs on a busy machine: docs/performance.md).
- **Attribution**: CPython's own ``-X importtime`` (self and cumulative µs per module, as
  a tree), medians per module across runs.
- **Chains**: each import edge that crosses into another top-level package and costs
  more than a threshold, named with the path from the handler, e.g. ``boto3 via
  yourapp.utils -> yourapp`` — the "barrel ``__init__``" that re-exports a slow module is
  the usual culprit — and each module of the user's own code whose top-level code alone
  costs more than the threshold. Each chain carries its fixes
  (:mod:`warmline.tools.importfix`): the import statements to change, with file:line, and
  the lazy-import pattern for each.
- **Flame graph**: an SVG and a speedscope JSON file of the median run.
- **Budget**: ``--budget-ms`` makes the exit code 1 when the total is over, for CI.

``--lambda`` reproduces Lambda's init order: the runtime's bootstrap modules (its own
``json``, ``http.client``, ``socket``, ``decimal``...) are imported first, so the handler is
charged only for what it adds, as ``Init Duration`` would show it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from warmline.tools.importfix import Fix, fixes_for

__all__ = [
    "LAMBDA_BOOTSTRAP_MODULES",
    "Chain",
    "ImportNode",
    "Profile",
    "parse_importtime",
    "profile_handler",
]

#: Standard-library modules the AWS Lambda Python runtime has imported before it imports
#: the handler (its bootstrap is a Python program: an HTTP client to the Runtime API,
#: JSON, decimal for its encoder, socket, logging). Charging them to the handler would
#: overstate its cold start.
LAMBDA_BOOTSTRAP_MODULES = (
    "json",
    "decimal",
    "http.client",
    "socket",
    "logging",
    "traceback",
    "time",
    "uuid",
    "importlib",
    "os",
    "site",
    "warnings",
)

_MARK = "@@warmline-coldstart@@"
_FILES = "@@warmline-files@@"


@dataclass
class ImportNode:
    """One module in the import tree, with median times in microseconds."""

    name: str
    self_us: float
    cumulative_us: float
    children: list[ImportNode] = field(default_factory=list)

    def walk(self, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], ImportNode]]:
        """Every node below and including this one, with the path of names to it."""
        here = (*path, self.name)
        out = [(here, self)]
        for child in self.children:
            out.extend(child.walk(here))
        return out


@dataclass(frozen=True)
class Chain:
    """An expensive import edge into another top-level package, or a slow own module.

    ``cumulative_ms`` is what the chain costs: the imported module with everything it
    imports, or for an ``own`` module its own top-level code (its self time).
    """

    module: str
    via: tuple[str, ...]
    cumulative_ms: float
    own: bool = False
    fixes: tuple[Fix, ...] = ()

    def describe(self) -> str:
        """``boto3 via yourapp.utils -> yourapp`` (nearest importer first)."""
        name = f"{self.module} (own module)" if self.own else self.module
        if not self.via:
            return name
        return f"{name} via {' -> '.join(reversed(self.via))}"

    def to_dict(self) -> dict[str, object]:
        return {
            "module": self.module,
            "via": list(self.via),
            "ms": round(self.cumulative_ms, 2),
            "own": self.own,
            "fixes": [fix.to_dict() for fix in self.fixes],
        }


@dataclass
class Profile:
    """The result of profiling one handler."""

    target: str
    runs: int
    bare_ms: float
    total_ms: float
    roots: list[ImportNode]
    chains: list[Chain]
    #: The handler's own modules (not stdlib, not site-packages) and their files.
    files: dict[str, str] = field(default_factory=dict)

    @property
    def wall_added_ms(self) -> float:
        """Wall time of the fresh interpreter over a bare one, fastest run against fastest
        run (what the machine's noise leaves out)."""
        return max(0.0, self.total_ms - self.bare_ms)

    @property
    def import_ms(self) -> float:
        """What the handler's imports cost, by CPython's own clock (``-X importtime``):
        the cumulative time of the top-level imports the probe made, median per module."""
        return sum(root.cumulative_us for root in self.roots) / 1000

    @property
    def added_ms(self) -> float:
        """The cold-start cost held to the budget: the import time, or the wall-time
        difference when that is larger. Interpreter start-up noise (tens of ms on a busy
        machine) can hide a small import in the wall-time difference, never inflate
        ``import_ms``; a slow module top level shows in both."""
        return max(self.import_ms, self.wall_added_ms)

    def heaviest(self, n: int = 15) -> list[tuple[str, float, float]]:
        """The ``n`` modules with most self time: (name, self ms, cumulative ms)."""
        nodes = [node for root in self.roots for _, node in root.walk()]
        nodes.sort(key=lambda node: node.self_us, reverse=True)
        return [(x.name, x.self_us / 1000, x.cumulative_us / 1000) for x in nodes[:n]]


def parse_importtime(stderr: str) -> list[ImportNode]:
    """Build the import tree from ``-X importtime`` output after the marker line.

    CPython prints a module after its children, indented two spaces per level, so a stack
    of pending children per depth rebuilds the tree.
    """
    lines = stderr.splitlines()
    if _MARK in stderr:
        lines = lines[next(i for i, line in enumerate(lines) if _MARK in line) + 1 :]
    pending: dict[int, list[ImportNode]] = {}
    roots: list[ImportNode] = []
    for line in lines:
        if not line.startswith("import time:") or "imported package" in line:
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3:
            continue
        self_us, cum_us, name_part = fields
        depth = (len(name_part) - len(name_part.lstrip(" ")) - 1) // 2
        node = ImportNode(name_part.strip(), float(self_us), float(cum_us))
        node.children = pending.pop(depth + 1, [])
        if depth == 0:
            roots.append(node)
        else:
            pending.setdefault(depth, []).append(node)
    return roots


def _merge_median(trees: list[list[ImportNode]]) -> list[ImportNode]:
    """Per-module medians across runs, keeping the first run's tree shape."""
    samples: dict[tuple[str, ...], list[tuple[float, float]]] = {}
    for roots in trees:
        for root in roots:
            for path, node in root.walk():
                samples.setdefault(path, []).append((node.self_us, node.cumulative_us))

    def rebuild(node: ImportNode, path: tuple[str, ...]) -> ImportNode:
        here = (*path, node.name)
        values = samples.get(here, [(node.self_us, node.cumulative_us)])
        return ImportNode(
            node.name,
            statistics.median(v[0] for v in values),
            statistics.median(v[1] for v in values),
            [rebuild(child, here) for child in node.children],
        )

    return [rebuild(root, ()) for root in trees[0]] if trees else []


def find_chains(
    roots: list[ImportNode],
    *,
    threshold_ms: float = 5.0,
    own: set[str] | None = None,
) -> list[Chain]:
    """Where the handler's own code imports something costly from elsewhere.

    Args:
        roots: the import tree.
        threshold_ms: the smallest cumulative cost reported.
        own: the handler's own modules (not stdlib, not site-packages). An edge from an
            own module to a foreign one is where the user can act (import lazily, drop a
            barrel re-export), and so is an own module whose self time is over the
            threshold (top-level work). Without it, every edge into another top-level
            package counts.
    """
    chains: list[Chain] = []
    for root in roots:
        for path, node in root.walk():
            if own is not None and node.name in own and node.self_us / 1000 >= threshold_ms:
                chains.append(Chain(node.name, path[:-1], node.self_us / 1000, own=True))
            if len(path) < 2 or node.cumulative_us / 1000 < threshold_ms:
                continue
            parent = path[-2]
            if own is not None:
                crosses = parent in own and node.name not in own
            else:
                crosses = node.name.split(".")[0] != parent.split(".")[0]
            if crosses:
                chains.append(Chain(node.name, path[:-1], node.cumulative_us / 1000))
    chains.sort(key=lambda c: c.cumulative_ms, reverse=True)
    return chains


def _own_modules(stderr: str, roots: Sequence[Path]) -> dict[str, str] | None:
    """The user's modules, with their files: under one of ``roots`` (the code roots) and
    outside the interpreter's stdlib and site-packages. Built-in modules have no file; a
    library installed in editable mode lives outside the roots: neither is the user's."""
    for line in stderr.splitlines():
        if line.startswith(_FILES):
            files: dict[str, str] = json.loads(line[len(_FILES) :])
            return {
                name: path
                for name, path in files.items()
                if path
                and not _is_installed(path)
                and any(Path(path).is_relative_to(root) for root in roots)
            }
    return None


def _is_installed(path: str) -> bool:
    parts = Path(path).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    prefixes = {sys.base_prefix, sys.prefix, sys.exec_prefix}
    return any(path.startswith(os.path.join(p, "lib")) for p in prefixes)


def _probe_code(module: str, attribute: str | None, lambda_mode: bool) -> str:
    pre = f"import {', '.join(LAMBDA_BOOTSTRAP_MODULES)}\n" if lambda_mode else ""
    get = f"getattr(_m, {attribute!r})\n" if attribute else ""
    return (
        f"{pre}import sys, importlib\nsys.stderr.write({_MARK!r} + '\\n')\n"
        f"__import__({module!r})\n_m = sys.modules[{module!r}]\n{get}"
        "import json as _j\n"
        f"sys.stderr.write({_FILES!r} + _j.dumps({{k: getattr(v, '__file__', None) or ''"
        " for k, v in list(sys.modules.items())}) + '\\n')\n"
    )


def split_handler(target: str) -> tuple[str, str | None]:
    """``pkg.mod.func`` -> (``pkg.mod``, ``func``); a path ``dir/app.py:handler`` too."""
    if ":" in target:
        module, attribute = target.rsplit(":", 1)
        return module, attribute or None
    if "." not in target:
        return target, None
    module, attribute = target.rsplit(".", 1)
    return module, attribute


def profile_handler(
    target: str,
    *,
    runs: int = 15,
    lambda_mode: bool = False,
    python: str = sys.executable,
    paths: Sequence[str | Path] = (),
    threshold_ms: float = 5.0,
) -> Profile:
    """Profile the cold start of ``target`` (``module.handler``) in fresh interpreters.

    Args:
        target: the handler as Lambda names it (``module.function``), or a module.
        runs: fresh interpreters per measurement (medians are reported).
        lambda_mode: import Lambda's bootstrap modules first (see module docstring).
        python: the interpreter to measure with.
        paths: directories put first on ``PYTHONPATH`` (the function's code root); the
            modules under them are the user's own (the current directory without them).
        threshold_ms: the smallest cross-package import edge reported as a chain.

    Raises:
        RuntimeError: the handler fails to import (its error output is included).
    """
    module, attribute = split_handler(target)
    code = _probe_code(module, attribute, lambda_mode)
    bare_code = _probe_code("sys", None, lambda_mode)
    env = dict(os.environ)
    extra = os.pathsep.join(str(Path(p).resolve()) for p in paths)
    code_roots = [Path(p).resolve() for p in paths] or [Path.cwd()]
    if extra:
        env["PYTHONPATH"] = extra + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
        )
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def run(source: str, importtime: bool) -> tuple[float, str]:
        argv = [python, *(["-X", "importtime"] if importtime else []), "-c", source]
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        elapsed = (time.perf_counter() - start) * 1000
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise RuntimeError(f"importing {target} failed:\n{tail}")
        return elapsed, done.stderr

    run(code, False)  # warm the file cache and write bytecode, as a deployed zip has it
    bare: list[float] = []
    total: list[float] = []
    trees: list[list[ImportNode]] = []
    own: dict[str, str] | None = None
    for _ in range(max(1, runs)):
        bare.append(run(bare_code, False)[0])
        total.append(run(code, False)[0])
        stderr = run(code, True)[1]
        trees.append(parse_importtime(stderr))
        own = own if own is not None else _own_modules(stderr, code_roots)
    roots = _merge_median(trees)
    files = own or {}
    chains = find_chains(
        roots, threshold_ms=threshold_ms, own=set(own) if own is not None else None
    )
    return Profile(
        target=target,
        runs=runs,
        bare_ms=min(bare),
        total_ms=min(total),
        roots=roots,
        chains=[replace(chain, fixes=tuple(fixes_for(chain, files))) for chain in chains],
        files=files,
    )
