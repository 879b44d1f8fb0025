"""What to change for each heavy import chain ``warmline coldstart`` finds.

A chain is a path of imports from the handler to something costly. Cutting any edge of it
that lives in the user's own code removes the cost from the cold start, so each own edge
gets the statement that makes it (file:line and the source line, found with :mod:`ast`) and
the lazy-import pattern that fits it:

- **the edge into the costly module** (``import boto3`` in ``yourapp/utils.py``): import it
  inside the function that uses it, so the first call pays it instead of the cold start
  (or under ``if TYPE_CHECKING:`` when only annotations need it);
- **a barrel** (a package ``__init__`` importing its own submodule to re-export it):
  resolve the names on first use with a module ``__getattr__`` (PEP 562), so importing the
  package no longer imports every submodule;
- **an import of a barrel package** (``import yourapp`` in the handler): import the
  submodule the code uses instead of the package;
- **a slow module of the user's own** (its top-level code, not its imports, costs time):
  run that work on first use (a function cached with ``functools.cache``) and import the
  module where it is used.

Only module-level statements are searched (including those under ``if``/``try``/``with``
and class bodies, which run at import); imports inside functions are already lazy.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warmline.tools.coldstart import Chain

__all__ = ["Fix", "Site", "find_import", "fixes_for", "slow_statement"]


@dataclass(frozen=True)
class Site:
    """A statement in a source file."""

    file: str
    line: int
    code: str

    def where(self, root: str | None = None) -> str:
        """``yourapp/utils.py:3``: relative to ``root`` (else the current directory) if inside."""
        path = self.file
        for base in (root, os.getcwd()):
            if base and Path(path).is_relative_to(base):
                path = os.path.relpath(path, base)
                break
        return f"{path}:{self.line}"


@dataclass(frozen=True)
class Fix:
    """One change that takes (part of) a chain's cost off the cold start."""

    site: Site | None
    advice: str

    def to_dict(self) -> dict[str, object]:
        site = self.site
        return {
            "file": site.file if site else None,
            "line": site.line if site else None,
            "code": site.code if site else None,
            "advice": self.advice,
        }


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported (function bodies do not)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield node
        for name in ("body", "orelse", "finalbody"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                yield from _module_level([n for n in inner if isinstance(n, ast.stmt)])
        for handler in getattr(node, "handlers", []) or []:
            yield from _module_level(handler.body)


def _parse(file: str) -> tuple[ast.Module, list[str]] | None:
    try:
        source = Path(file).read_text()
        return ast.parse(source), source.splitlines()
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _imports_module(node: ast.stmt, importer: str, is_package: bool, imported: str) -> bool:
    def covers(name: str) -> bool:
        return name == imported or name.startswith(imported + ".")

    if isinstance(node, ast.Import):
        return any(covers(alias.name) for alias in node.names)
    if not isinstance(node, ast.ImportFrom):
        return False
    if node.level:
        parts = importer.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        if keep < 0:
            return False
        base = ".".join(parts[:keep])
        full = ".".join(p for p in (base, node.module or "") if p)
    else:
        full = node.module or ""
    if covers(full):
        return True
    return any(f"{full}.{alias.name}" == imported for alias in node.names)


def find_import(file: str, importer: str, imported: str) -> Site | None:
    """The module-level statement in ``file`` (module ``importer``) that imports ``imported``.

    Returns:
        None when no plain import statement does it (``importlib``, ``__import__``, or the
        file cannot be read): the chain is still reported, without a line.
    """
    parsed = _parse(file)
    if parsed is None:
        return None
    tree, lines = parsed
    is_package = Path(file).name == "__init__.py"
    for node in _module_level(tree.body):
        if _imports_module(node, importer, is_package, imported):
            return Site(file, node.lineno, lines[node.lineno - 1].strip())
    return None


#: Expressions that do work when a module-level statement runs.
_WORK = (ast.Call, ast.ListComp, ast.DictComp, ast.SetComp, ast.GeneratorExp)


def slow_statement(file: str) -> Site | None:
    """The first module-level statement that calls something (where top-level work is).

    Imports, definitions and plain assignments of literals cost little; a call at module
    level (``TABLE = build_table()``, ``client = boto3.client(...)``) is where a module
    spends its own time. A static guess: the profile measures the module, not its lines.
    """
    parsed = _parse(file)
    if parsed is None:
        return None
    tree, lines = parsed
    skip = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in tree.body:
        if isinstance(node, skip):
            continue
        if any(isinstance(n, _WORK) for n in ast.walk(node)):
            return Site(file, node.lineno, lines[node.lineno - 1].strip())
    return None


def _is_package(files: Mapping[str, str], module: str) -> bool:
    return Path(files.get(module, "")).name == "__init__.py"


def fixes_for(chain: Chain, files: Mapping[str, str]) -> list[Fix]:
    """The changes that cut ``chain``, nearest to the cost first.

    Args:
        chain: a chain from :func:`warmline.tools.coldstart.find_chains`.
        files: the user's own modules and their files; edges out of other modules
            (site-packages, the standard library) are not the user's to change.
    """
    path = (*chain.via, chain.module)
    fixes: list[Fix] = []
    work = slow_statement(files[chain.module]) if chain.own and chain.module in files else None
    if work is not None:
        fixes.append(
            Fix(
                work,
                f"{chain.module} spends {chain.cumulative_ms:.1f} ms in its own top-level code "
                "(this is its first statement that does work): do that work on first use, in a "
                "function cached with functools.cache, instead of at import",
            )
        )
    for index in range(len(path) - 1, 0, -1):
        importer, imported = path[index - 1], path[index]
        if importer not in files:
            continue
        if _is_package(files, importer) and imported.startswith(importer + "."):
            advice = (
                f"barrel: {importer} imports {imported} to re-export it; resolve the names on "
                f"first use with a module-level __getattr__ (PEP 562) in "
                f"{Path(files[importer]).name} so that importing {importer} stops loading it"
            )
        elif index + 1 < len(path) and _is_package(files, imported):
            advice = (
                f"import the submodule you use (e.g. `from {path[index + 1]} import ...`) "
                f"instead of the barrel package {imported}; once its __init__ is lazy, that "
                "no longer loads the other submodules"
            )
        elif imported == chain.module:
            advice = (
                f"import {imported} inside the function that uses it: the first call pays it, "
                "not the cold start (under `if TYPE_CHECKING:` if only type hints need it)"
            )
        else:
            advice = f"or import {imported} inside the function that uses it"
        fixes.append(Fix(find_import(files[importer], importer, imported), advice))
    return fixes
