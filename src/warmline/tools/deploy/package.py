"""``warmline deploy package``: one reproducible Lambda zip per function, with bytecode.

What goes in, decided without importing the handler (importing could run its top level,
need its extras, or read secrets):

1. the function's code directory (``code`` in ``[functions.<name>]``), minus what must not
   ship (:mod:`.contents`: ``.env*``, ``.warmline/``, Terraform state, VCS folders,
   caches, virtualenvs, tests, the rendered templates, the output folder itself, and the
   ``exclude`` patterns of ``[deploy]`` and ``[deploy.functions.<name>]``); what is left
   is searched for secret-looking files, which ``--strict`` refuses;
2. warmline itself: ``pip install --no-deps --target`` from the local source tree
   (``[deploy] warmline = "pip"``, the default) or a copy of the importable package
   (``"copy"``: hermetic and offline); the emulator, CLI, tools, config model and
   templates (``warmline.dev``, ``.cli``, ``.tools``, ``.config``, ``.templates``) are
   dropped, nothing at run time imports them;
3. only the extras the config names (``[deploy] extras``, per function in
   ``[deploy.functions.<name>]``) and ``requirements``, installed as wheels for the
   function's architecture and Python (``--platform manylinux2014_aarch64 --only-binary``),
   because a wheel built for this machine may not load on Graviton.

Then every module is compiled to ``.pyc``. Lambda's ``/var/task`` is read-only, so a zip
without bytecode makes every cold start compile every imported module from source and
throw the result away — several times the import cost (see ``warmline.agent.app``).
The bytecode must come from the runtime's Python version (a 3.11 ``.pyc`` is ignored by
3.12), so the compiler is that interpreter, and it writes ``unchecked-hash`` pycs: they
are used without comparing the source's mtime, which zip extraction does not preserve
exactly (zip times have 2-second resolution and no time zone).

The zip is deterministic (sorted entries, fixed timestamps, 0644/0755 modes, no install
paths in the metadata), so the same inputs give the same bytes and ``source_code_hash`` /
``sam deploy`` skip unchanged functions; what ``warmline dev`` writes beside the code
(``.warmline/``) is left out, so a dev run does not change the zip. Heavy dependencies
are reported: boto3/botocore/s3transfer (the runtime already has them; the ``aws`` extra
is skipped for that reason), numpy, pandas... as are the size against ``[deploy]
budget_mb`` and against Lambda's hard limits.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from warmline.config.deploy import Project
from warmline.errors import ConfigurationError, WarmlineError
from warmline.tools.deploy.contents import (
    BUILTIN_EXCLUDES,
    RENDERED_DIRS,
    Excluder,
    secret_findings,
)

__all__ = [
    "HEAVY_PACKAGES",
    "LAMBDA_UNZIPPED_LIMIT_BYTES",
    "LAMBDA_ZIP_LIMIT_BYTES",
    "RUNTIME_PROVIDED",
    "PackageError",
    "PackageReport",
    "build_zip",
    "find_python",
    "package_project",
    "warmline_requirements",
]

#: Lambda quotas for a .zip deployment package (docs/protocols.md §8.7): 50 MB zipped for a
#: direct upload, 250 MB unzipped incl. layers.
LAMBDA_ZIP_LIMIT_BYTES = 50 * 1024 * 1024
LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
#: Distributions the Python managed runtimes include (boto3 and its dependencies): never
#: bundled from an extra; bundling them anyway is reported as heavy.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil")
#: Top-level packages reported when they slip into a zip, with why.
HEAVY_PACKAGES: dict[str, str] = {
    "boto3": "the Lambda runtime provides boto3; bundling it adds ~1 MB and import time",
    "botocore": "the Lambda runtime provides botocore (~10 MB unzipped)",
    "s3transfer": "the Lambda runtime provides s3transfer",
    "numpy": "numpy adds ~30 MB and ~100 ms of import",
    "pandas": "pandas adds ~50 MB and hundreds of ms of import",
    "scipy": "scipy adds ~80 MB",
    "torch": "torch does not fit a zip package",
    "tensorflow": "tensorflow does not fit a zip package",
    "pyarrow": "pyarrow adds ~100 MB",
    "grpc": "grpcio adds ~10 MB of native code",
    "moto": "a test dependency",
    "pytest": "a test dependency",
    "mypy": "a development tool",
}
#: warmline subpackages nothing imports at run time (the emulator, the CLI, the tools, the
#: warmline.toml model, the template readers and writers).
RUNTIME_EXCLUDED = ("dev", "tools", "cli", "config", "templates")
_SKIP_DIRS = {
    "__pycache__", ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".aws-sam", ".terraform", ".idea",
    ".vscode", "build", "dist",
}  # fmt: skip
_SKIP_SUFFIXES = (".pyc", ".pyo", ".zip")
_SOURCE_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_REQ_NAME_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class PackageError(WarmlineError):
    """A package could not be built (pip or the compiler failed, a limit was exceeded)."""


@dataclass
class PackageReport:
    """What one function's zip holds."""

    function: str
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    packages: dict[str, int]  # top-level name -> unzipped bytes
    heavy: list[tuple[str, str]] = field(default_factory=list)
    python: str = ""  # the compiler, "" when no .pyc were written
    notes: list[str] = field(default_factory=list)
    #: what of the code directory was left out (directories end in ``/``)
    excluded: list[str] = field(default_factory=list)
    #: files in the zip that look like credentials: (name in the zip, why)
    secrets: list[tuple[str, str]] = field(default_factory=list)

    @property
    def zipped_mb(self) -> float:
        """The zip's size in MB (2**20 bytes)."""
        return self.zipped_bytes / (1024 * 1024)

    def problems(self, budget_mb: float) -> list[str]:
        """Warnings that ``--strict`` turns into a failure."""
        out = [f"{name}: {why}" for name, why in self.heavy]
        out.extend(
            f"{name} looks like {why}: leave it out with [deploy] exclude"
            for name, why in self.secrets
        )
        if self.zipped_mb > budget_mb:
            out.append(f"zip is {self.zipped_mb:.2f} MB, over the {budget_mb:g} MB budget")
        if not self.python:
            out.append("no .pyc compiled: every cold start compiles from source")
        return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def warmline_requirements(extras: Iterable[str], source: Path | None = None) -> list[str]:
    """The requirements of warmline's extras, from its pyproject (or installed metadata).

    Raises:
        ConfigurationError: an extra warmline does not define.
    """
    wanted = list(extras)
    if not wanted:
        return []
    table: dict[str, list[str]] = {}
    if source is not None and (source / "pyproject.toml").is_file():
        with (source / "pyproject.toml").open("rb") as fh:
            project = tomllib.load(fh).get("project", {})
        table = dict(project.get("optional-dependencies", {}))
    else:
        from importlib.metadata import PackageNotFoundError, requires

        try:
            lines = requires("warmline") or []
        except PackageNotFoundError:
            lines = []
        for line in lines:
            req, _, marker = line.partition(";")
            match = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
            if match:
                table.setdefault(match.group(1), []).append(req.strip())
    out: list[str] = []
    for extra in wanted:
        if extra not in table:
            known = ", ".join(sorted(table))
            raise ConfigurationError(f"deploy.extras: warmline has no extra {extra!r} ({known})")
        out.extend(table[extra])
    return out


def _requirement_name(req: str) -> str:
    match = _REQ_NAME_RE.match(req)
    return _normal(match.group(1)) if match else ""


def _source_tree() -> Path | None:
    """warmline's source checkout (``pyproject.toml`` two levels above the package)."""
    import warmline

    package = Path(warmline.__file__).resolve().parent
    for candidate in (package.parent.parent, package.parent):
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and 'name = "warmline"' in pyproject.read_text(encoding="utf-8"):
            return candidate
    return None


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 2:
        return None
    return int(parts[0]), int(parts[1])


def find_python(version: tuple[int, int], explicit: str = "") -> str | None:
    """An interpreter of ``version`` to compile bytecode with, or None.

    Tries, in order: ``explicit`` (``[deploy] python`` / ``--python``),
    ``$WARMLINE_DEPLOY_PYTHON``, this interpreter, ``python3.X`` on ``PATH``, pyenv's
    versions. Each candidate is run to check its version (a pyenv shim may exist on
    ``PATH`` and still fail).
    """
    major, minor = version
    candidates = [explicit, os.environ.get("WARMLINE_DEPLOY_PYTHON", "")]
    if sys.version_info[:2] == version:
        candidates.append(sys.executable)
    candidates.append(shutil.which(f"python{major}.{minor}") or "")
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates.extend(
        sorted(glob.glob(f"{root}/versions/{major}.{minor}*/bin/python{major}.{minor}"))
    )
    for candidate in candidates:
        if candidate and _python_version(candidate) == version:
            return candidate
    return None


def _copy_tree(src: Path, dst: Path) -> None:
    for root, dirs, files in os.walk(src):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        target = dst / here.relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            if name.endswith(_SKIP_SUFFIXES) or name == ".DS_Store":
                continue
            shutil.copy2(here / name, target / name)


def _copy_code(
    project: Project, name: str, staging: Path, out: Path
) -> tuple[list[str], list[tuple[str, str]]]:
    """Copy the function's code directory into ``staging``, minus what must not ship.

    Returns:
        (what was left out, secret-looking files that went in).
    """
    code_dir = project.config.functions[name].code_dir.resolve()
    rendered = [
        rel
        for target in [out, *(project.base_dir / d for d in RENDERED_DIRS)]
        if (rel := _inside(target.resolve(), code_dir))
    ]
    patterns = [*BUILTIN_EXCLUDES, *project.deploy.exclude_for(name)]
    skipped: list[str] = []
    copied = list(Excluder(patterns, rendered).walk(code_dir, skipped))
    for path, rel in copied:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return skipped, secret_findings(copied)


def _summary(excluded: Sequence[str]) -> str:
    """What was left out, caches and bytecode counted rather than named."""
    noise = ("__pycache__/", ".pyc", ".pyo", ".DS_Store")
    named = [e for e in excluded if not e.endswith(noise)]
    rest = len(excluded) - len(named)
    return ", ".join(named) + (f" (and {rest} caches)" if rest else "")


def _inside(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), or "" when it is not below it."""
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel


def _drop_install_paths(staging: Path) -> None:
    """Remove what records where pip installed from (PEP 610 ``direct_url.json``, a
    temporary folder's path that differs per run) and its line in ``RECORD``."""
    for direct in sorted(staging.glob("*.dist-info/direct_url.json")):
        record = direct.parent / "RECORD"
        direct.unlink()
        if record.is_file():
            drop = f"{direct.parent.name}/direct_url.json,"
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            record.write_text(
                "".join(line for line in lines if not line.startswith(drop)), encoding="utf-8"
            )


def _pip(args: Sequence[str], python: str = sys.executable) -> None:
    cmd = [python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
        raise PackageError(f"pip failed: {' '.join(cmd)}\n" + "\n".join(tail))


def _stage_warmline(staging: Path, mode: str, notes: list[str]) -> None:
    import warmline

    source = _source_tree() if mode == "pip" else None
    if mode == "pip" and source is None:
        notes.append("warmline source tree not found; copied the installed package instead")
    if source is not None:
        # Build from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
        with tempfile.TemporaryDirectory(prefix="warmline-src-") as tmp:
            for item in source.iterdir():
                if item.name == "src":
                    shutil.copytree(item, Path(tmp) / "src", ignore=_SOURCE_IGNORE)
                elif item.is_file() and item.name.startswith(("pyproject", "README", "LICENSE")):
                    shutil.copy2(item, tmp)
            pip_args = ["install", "--no-deps", "--no-compile", "--quiet", "--target"]
            _pip([*pip_args, str(staging), tmp])
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts
    else:
        _copy_tree(Path(warmline.__file__).resolve().parent, staging / "warmline")
    for sub in RUNTIME_EXCLUDED:
        shutil.rmtree(staging / "warmline" / sub, ignore_errors=True)


def _architecture_platform(architecture: str) -> str:
    return "manylinux2014_aarch64" if architecture == "arm64" else "manylinux2014_x86_64"


def _clean_bytecode(staging: Path) -> None:
    for cache in sorted(staging.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
    for pyc in staging.rglob("*.py[co]"):
        pyc.unlink()


def _compile(staging: Path, python: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [
        python, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(staging), "-p", "/var/task",  # tracebacks name /var/task/..., not our disk
        str(staging),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise PackageError(f"compileall failed ({python}):\n{(done.stdout + done.stderr)[-2000:]}")


def _walk_files(staging: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(staging):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def build_zip(staging: Path, dest: Path) -> tuple[int, int]:
    """Zip ``staging`` reproducibly into ``dest``.

    Returns:
        (files, unzipped bytes).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".zip.tmp")
    count = total = 0
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(_walk_files(staging), key=lambda p: p.relative_to(staging).as_posix()):
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), _ZIP_TIME)
            executable = path.stat().st_mode & stat.S_IXUSR
            # World-readable: Lambda runs the code as a user that does not own the files.
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            zf.writestr(info, data, compresslevel=9)
            count += 1
            total += len(data)
    tmp.replace(dest)
    return count, total


def _top_level(staging: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in _walk_files(staging):
        rel = path.relative_to(staging)
        head = rel.parts[0]
        if head.endswith((".dist-info", ".egg-info", ".data")):
            continue
        if head == "__pycache__":  # bytecode of a top-level module: app.cpython-312.pyc
            name = rel.parts[-1].split(".", 1)[0]
        elif len(rel.parts) == 1 and head.endswith(".py"):
            name = head[:-3]
        else:
            name = head
        sizes[name] = sizes.get(name, 0) + path.stat().st_size
    return sizes


def package_project(
    project: Project,
    out_dir: Path | None = None,
    *,
    warmline_from: str | None = None,
    python: str | None = None,
    pip_args: Sequence[str] = (),
    functions: Sequence[str] | None = None,
) -> list[PackageReport]:
    """Build every function's zip into ``out_dir`` (default ``[deploy] artifacts``).

    Functions with the same code directory, extras and requirements share one build (the
    zip is copied), so a one-function-for-everything app builds once.

    Args:
        project: the loaded config.
        out_dir: where ``<function>.zip`` go.
        warmline_from: ``"pip"`` or ``"copy"`` (default: ``[deploy] warmline``).
        python: the bytecode compiler (default: found, see :func:`find_python`).
        pip_args: extra pip arguments for extras (e.g. ``--find-links wheels/``).
        functions: only these functions (default: all).

    Raises:
        PackageError: pip or compileall failed, or a zip is over Lambda's limits.
        ConfigurationError: an unknown extra or function.
    """
    deploy = project.deploy
    out = (out_dir or (project.base_dir / deploy.artifacts)).resolve()
    names = list(functions or project.config.functions)
    for name in names:
        if name not in project.config.functions:
            raise ConfigurationError(f"unknown function {name!r}")
    compiler = find_python(deploy.python_version, python or deploy.python)
    mode = warmline_from or deploy.warmline
    source = _source_tree()
    built: dict[tuple[object, ...], PackageReport] = {}
    reports: list[PackageReport] = []
    for name in names:
        fn = project.config.functions[name]
        extras = deploy.extras_for(name)
        requirements = list(deploy.requirements_for(name))
        key = (fn.code_dir, extras, tuple(requirements), deploy.exclude_for(name))
        dest = out / f"{name}.zip"
        if key in built:
            first = built[key]
            shutil.copyfile(first.path, dest)
            reports.append(
                PackageReport(
                    name, dest, first.zipped_bytes, first.unzipped_bytes, first.files,
                    dict(first.packages), list(first.heavy), first.python,
                    [*first.notes, f"same build as {first.function}"],
                    list(first.excluded), list(first.secrets),
                )
            )  # fmt: skip
            continue
        report = _build_one(
            project, name, extras, requirements, dest, out, mode, compiler, source, pip_args
        )
        built[key] = report
        reports.append(report)
    return reports


def _build_one(
    project: Project,
    name: str,
    extras: Sequence[str],
    requirements: list[str],
    dest: Path,
    out: Path,
    mode: str,
    compiler: str | None,
    source: Path | None,
    pip_args: Sequence[str],
) -> PackageReport:
    deploy = project.deploy
    notes: list[str] = []
    staging = out / ".staging" / name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    excluded, secrets = _copy_code(project, name, staging, out)
    if excluded:
        notes.append(f"left out of the code directory: {_summary(excluded)}")
    _stage_warmline(staging, mode, notes)
    wanted = [*warmline_requirements(extras, source), *requirements]
    provided = {_normal(p) for p in RUNTIME_PROVIDED}
    skipped = [r for r in wanted if _requirement_name(r) in provided]
    if skipped:
        notes.append(f"not bundled (the Lambda runtime provides them): {', '.join(skipped)}")
    install = [r for r in wanted if _requirement_name(r) not in provided]
    if install:
        major, minor = deploy.python_version
        _pip(
            [
                "install", "--quiet", "--no-compile", "--target", str(staging),
                "--platform", _architecture_platform(deploy.architecture),
                "--implementation", "cp", "--python-version", f"{major}.{minor}",
                "--only-binary=:all:", *pip_args, *install,
            ]
        )  # fmt: skip
        shutil.rmtree(staging / "bin", ignore_errors=True)
    _drop_install_paths(staging)
    _clean_bytecode(staging)
    if compiler:
        _compile(staging, compiler)
    else:
        major, minor = deploy.python_version
        notes.append(
            f"python{major}.{minor} not found: set [deploy] python or --python to compile .pyc"
        )
    packages = _top_level(staging)
    heavy = [(p, HEAVY_PACKAGES[p]) for p in sorted(packages) if p in HEAVY_PACKAGES]
    files, unzipped = build_zip(staging, dest)
    shutil.rmtree(staging, ignore_errors=True)
    zipped = dest.stat().st_size
    if zipped > LAMBDA_ZIP_LIMIT_BYTES or unzipped > LAMBDA_UNZIPPED_LIMIT_BYTES:
        raise PackageError(
            f"{name}: {zipped} bytes zipped / {unzipped} unzipped is over Lambda's "
            f"{LAMBDA_ZIP_LIMIT_BYTES} / {LAMBDA_UNZIPPED_LIMIT_BYTES} byte limits"
        )
    return PackageReport(
        name, dest, zipped, unzipped, files, packages, heavy, compiler or "", notes,
        excluded, secrets,
    )  # fmt: skip
