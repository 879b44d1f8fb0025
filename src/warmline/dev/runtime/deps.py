"""What a sandboxed environment may import besides its code, built once per change.

On Lambda the import path holds the task root, the layers and the runtime's directory with
its pinned boto3 and botocore (docs/protocols.md §8.1); ``sam build`` puts what
``requirements.txt`` declares into the zip. The emulator builds the same two directories
under ``.warmline/`` (the emulator's state folder):

- ``runtime/pythonX.Y/``: what Lambda's Python runtime ships (boto3, botocore and their
  dependencies: s3transfer, jmespath, python-dateutil, six, urllib3), linked from this
  machine's environment where they are installed (Lambda pins its own versions; these are
  yours). Missing ones are named in one start-up note.
- ``deps/<function>/<hash>/``: the function's declared dependencies, from
  ``requirements.txt`` and ``pyproject.toml``'s ``[project] dependencies`` in its code
  directory, plus warmline itself when the function bundles it (below). The hash covers the
  declaration and the Python version, so the folder is rebuilt only when they change. A
  requirement this machine already satisfies is linked (with its own dependencies), the rest
  is installed with ``pip install --target`` (the network is used only then).

warmline is on a function's path when its package bundles it: every function of a
``warmline.toml`` (``warmline deploy package`` puts warmline into each zip), and a template's
function whose ``requirements.txt`` / ``pyproject.toml`` names ``warmline``; the local
source tree serves it either way. A template's function that imports warmline without
declaring it fails with ``Runtime.ImportModuleError``, as its ``sam build`` zip would on AWS.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = [
    "RUNTIME_PACKAGES",
    "Built",
    "declared_requirements",
    "function_dependencies",
    "link_distributions",
    "runtime_directory",
]

#: What Lambda's Python runtime ships for the code to import (docs/protocols.md §8.1); the
#: rest of its dependency tree (s3transfer, jmespath, python-dateutil, six, urllib3) comes
#: with it.
RUNTIME_PACKAGES = ("boto3",)
_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_COMPLETE = ".complete"


@dataclass(frozen=True, slots=True)
class Built:
    """A directory for the import path and what could not go into it."""

    path: Path
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_requirements(code_dir: Path) -> list[str]:
    """``requirements.txt`` lines and ``[project] dependencies`` of ``code_dir``.

    Comments, blank lines and pip options (``-r``, ``--index-url``...) are skipped.
    """
    out: list[str] = []
    requirements = code_dir / "requirements.txt"
    if requirements.is_file():
        for raw in requirements.read_text(encoding="utf-8").splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith(("#", "-")):
                out.append(line)
    pyproject = code_dir / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project") or {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            project = {}
        deps = project.get("dependencies") or []
        out.extend(str(d) for d in deps if isinstance(d, str))
    return out


def _name(requirement: str) -> str:
    match = _NAME_RE.match(requirement)
    return _normal(match.group(1)) if match else ""


def _satisfied(requirement: str, version: str) -> bool:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # no packaging here: any installed version will do
        return True
    try:
        return Requirement(requirement).specifier.contains(version, prereleases=True)
    except InvalidRequirement:
        return False


def _dependencies(dist: metadata.Distribution, extras: Iterable[str]) -> list[str]:
    """The distributions ``dist`` needs (with ``extras``), markers evaluated for this Python."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return [r for r in dist.requires or [] if "extra ==" not in r]
    out = []
    wanted = set(extras) | {""}
    for raw in dist.requires or []:
        req = Requirement(raw)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted):
            out.append(str(req))
    return out


def _extras(requirement: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", requirement)
    return [e.strip() for e in match.group(1).split(",")] if match else []


def _top_level(dist: metadata.Distribution) -> set[str]:
    """The names a distribution puts on the path: packages, modules, its dist-info."""
    names: set[str] = set()
    for file in dist.files or []:
        parts = file.parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
            continue
        names.add(parts[0])
    return names


def link_distributions(
    requirements: Sequence[str], target: Path, *, pure_only: bool = False
) -> list[str]:
    """Link what this machine has installed of ``requirements`` (and their dependencies).

    Args:
        requirements: PEP 508 strings.
        target: the directory to link into (made if missing).
        pure_only: link only distributions without compiled extensions (for another
            Python version than this one).

    Returns:
        The requirements that could not be linked (not installed, wrong version, or
        compiled for this Python).
    """
    target.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    seen: set[str] = set()
    queue = list(requirements)
    while queue:
        requirement = queue.pop(0)
        name = _name(requirement)
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if not _satisfied(requirement, dist.version):
            missing.append(requirement)
            continue
        entries = _top_level(dist)
        if pure_only and _compiled(dist):
            missing.append(requirement)
            continue
        base = Path(str(dist.locate_file("")))
        for entry in sorted(entries):
            link = target / entry
            if not link.exists() and not link.is_symlink() and (base / entry).exists():
                link.symlink_to(base / entry)
            if entry.endswith(".py"):  # a one-file module: its bytecode lives beside it
                _link_bytecode(base, target, entry[:-3])
        queue.extend(_dependencies(dist, _extras(requirement)))
    return missing


def _link_bytecode(base: Path, target: Path, stem: str) -> None:
    """Link ``stem``'s cached bytecode, so a linked one-file module is not compiled afresh
    at every cold start (packages are linked whole, their ``__pycache__`` with them)."""
    for pyc in (base / "__pycache__").glob(f"{stem}.*.pyc"):
        cache = target / "__pycache__"
        cache.mkdir(exist_ok=True)
        if not (cache / pyc.name).exists():
            (cache / pyc.name).symlink_to(pyc)


def _compiled(dist: metadata.Distribution) -> bool:
    return any(str(f).endswith((".so", ".pyd")) for f in dist.files or [])


def runtime_directory(state_dir: Path, python: str, version: tuple[int, int]) -> Built:
    """``.warmline/runtime/pythonX.Y``: boto3 and botocore, as Lambda's runtime has them."""
    tag = f"python{version[0]}.{version[1]}"
    target = state_dir / "runtime" / tag
    marker = target / _COMPLETE
    if marker.is_file():
        return Built(target, _recorded(marker))
    shutil.rmtree(target, ignore_errors=True)
    same = version == sys.version_info[:2]
    missing = link_distributions(RUNTIME_PACKAGES, target, pure_only=not same)
    marker.write_text("\n".join(missing), encoding="utf-8")
    return Built(target, tuple(missing))


def _recorded(marker: Path) -> tuple[str, ...]:
    """What a finished build could not provide (its marker file lists it)."""
    return tuple(m for m in marker.read_text(encoding="utf-8").split("\n") if m)


def function_dependencies(
    state_dir: Path,
    function: str,
    code_dir: Path,
    *,
    python: str,
    version: tuple[int, int],
    warmline: bool,
    extra: Sequence[str] = (),
) -> Built:
    """``.warmline/deps/<function>/<hash>``: what the function declares, built once.

    Args:
        state_dir: the emulator's state folder.
        function: the function's name.
        code_dir: its code directory (``requirements.txt``, ``pyproject.toml``).
        python: the interpreter environments run on (pip installs for it).
        version: its version.
        warmline: whether the function's package bundles warmline (module docstring).
        extra: further declared requirements.
    """
    declared = [*declared_requirements(code_dir), *extra]
    wants_warmline = warmline or any(_name(r) == "warmline" for r in declared)
    others = [r for r in declared if _name(r) != "warmline"]
    key = "\n".join([f"{version}", str(wants_warmline), *sorted(others)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    target = state_dir / "deps" / _safe(function) / digest
    marker = target / _COMPLETE
    notes: list[str] = []
    if wants_warmline:
        import warmline as package

        source = Path(package.__file__).resolve().parent
        failed = package_bytecode(source)
        if failed:
            notes.append(failed)
    if marker.is_file():
        return Built(target, _recorded(marker), tuple(notes))
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if wants_warmline:
        (target / "warmline").symlink_to(source)
    same = version == sys.version_info[:2]
    provided = _runtime_names()
    wanted = [r for r in others if _name(r) not in provided]
    missing = link_distributions(wanted, target, pure_only=not same) if wanted else []
    if missing:
        failed = _pip_install(python, missing, target)
        if failed:
            notes.append(failed)
        else:
            missing = []
    marker.write_text("\n".join(missing), encoding="utf-8")
    return Built(target, tuple(missing), tuple(notes))


#: Packages whose bytecode this process has brought up to date.
_bytecode_done: set[Path] = set()


def package_bytecode(package: Path) -> str | None:
    """Write the bytecode of ``package``'s modules where it is missing or stale, once per
    process; None when it is all there, else what could not be written.

    ``pip install`` compiles what it installs and ``warmline deploy package`` compiles the
    zip, so on Lambda dependencies arrive with bytecode; an environment cannot write it
    (the import path is read-only, as ``/var/task`` is), so a package linked from a source
    checkout without it would be compiled again by every cold start (what that costs:
    docs/performance.md).
    """
    if package in _bytecode_done:
        return None
    _bytecode_done.add(package)
    import compileall

    if compileall.compile_dir(str(package), quiet=2):
        return None
    return f"bytecode of {package} could not be written: every cold start compiles it"


def _runtime_names() -> set[str]:
    return {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def _pip_install(python: str, requirements: Sequence[str], target: Path) -> str | None:
    """``pip install --target``; None when it worked, else what went wrong (one line)."""
    args = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    args += ["--no-input", "--target", str(target), *requirements]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip could not install {', '.join(requirements)}: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"pip could not install {', '.join(requirements)}: {last}"
    return None
