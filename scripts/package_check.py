"""Build the distributions and install the wheel as a user would (``make package-check``).

Steps, each one a failure of its own:

1. ``python -m build`` writes the sdist and the wheel into a scratch folder (the build
   backend comes from the package index, through pip's cache).
2. ``twine check --strict`` reads both as the package index would render them.
3. The wheel's metadata: the version is ``warmline.__version__`` (its one source), the
   licence is the SPDX ``Apache-2.0`` with the LICENSE file inside, the project URLs and
   classifiers are there, and no extra is empty.
4. A fresh virtual environment gets the wheel with no extra (no dependency to fetch: the
   runtime needs only the standard library), then ``warmline --help``, ``warmline
   --version`` and ``import warmline`` run in it, and ``warmline dev``, whose extra is not
   installed, says which extra to install instead of a traceback.

Usage::

    python scripts/package_check.py [--keep DIR]

Exit status 0 when every step passes, 1 otherwise (the failing step is printed).
"""

from __future__ import annotations

import argparse
import ast
import email
import subprocess
import sys
import tempfile
import venv
import zipfile
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class CheckFailed(Exception):
    """One step failed; the message says which and why."""


def run(*command: str | Path, cwd: Path | None = None) -> str:
    """Run a command; its output, or :class:`CheckFailed` with what it printed."""
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise CheckFailed(f"{' '.join(map(str, command))} exited {done.returncode}:\n"
                          f"{done.stdout}{done.stderr}")  # fmt: skip
    return done.stdout


def source_version() -> str:
    """``warmline.__version__`` as the source tree writes it (read, not imported)."""
    tree = ast.parse((ROOT / "src" / "warmline" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise CheckFailed("src/warmline/__init__.py has no literal __version__")


def build(out: Path) -> tuple[Path, Path]:
    """Build the sdist and the wheel into ``out``."""
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise CheckFailed(f"expected one wheel and one sdist in {out}, got {wheels + sdists}")
    return wheels[0], sdists[0]


def wheel_metadata(wheel: Path) -> tuple[Message, list[str]]:
    """The wheel's METADATA and the names of its files."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(meta)), names


def check_metadata(wheel: Path, version: str) -> None:
    """What the package index shows: version, licence, URLs, classifiers, extras."""
    meta, names = wheel_metadata(wheel)
    problems = []
    if meta["Version"] != version:
        problems.append(f"Version {meta['Version']} is not warmline.__version__ {version}")
    if meta["License-Expression"] != "Apache-2.0":
        problems.append(f"License-Expression is {meta['License-Expression']!r}")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append("the LICENSE file is not in the wheel")
    if "warmline/py.typed" not in names:
        problems.append("py.typed is not in the wheel")
    urls = meta.get_all("Project-URL") or []
    if not any(u.startswith("Source, https://github.com/warmline/warmline") for u in urls):
        problems.append(f"no Source project URL: {urls}")
    classifiers = meta.get_all("Classifier") or []
    for minor in (11, 12, 13):
        if f"Programming Language :: Python :: 3.{minor}" not in classifiers:
            problems.append(f"no classifier for Python 3.{minor}")
    requires = meta.get_all("Requires-Dist") or []
    for extra in meta.get_all("Provides-Extra") or []:
        if not any(f'extra == "{extra}"' in r for r in requires):
            problems.append(f"the extra {extra!r} installs nothing")
    if any("extra ==" not in r for r in requires):
        problems.append(f"a runtime dependency crept in: {requires}")
    if problems:
        raise CheckFailed("wheel metadata: " + "; ".join(problems))


def check_install(wheel: Path, scratch: Path, version: str) -> None:
    """The wheel in a fresh venv without extras: the CLI and the import work."""
    env = scratch / "venv"
    # No pip inside (quicker): this interpreter's pip installs into it (--python).
    venv.EnvBuilder(with_pip=False, clear=True).create(env)
    bindir = env / ("Scripts" if sys.platform == "win32" else "bin")
    python = bindir / "python"
    # --no-index: the wheel has no dependency to fetch; nothing else may come in.
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-index", wheel)
    cli = bindir / "warmline"
    if "deploy" not in run(cli, "--help"):
        raise CheckFailed("warmline --help does not list the commands")
    printed = run(cli, "--version").strip()
    if printed != version:
        raise CheckFailed(f"warmline --version printed {printed!r}, expected {version!r}")
    probe = "import sys, warmline; print(warmline.__version__, 'websockets' in sys.modules)"
    imported = run(python, "-c", probe, cwd=scratch).split()
    if imported != [version, "False"]:
        raise CheckFailed(f"import warmline printed {imported}")
    done = subprocess.run(
        [str(cli), "dev", "--port", "0"], cwd=scratch, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 2 or "pip install 'warmline[dev]'" not in done.stderr:
        raise CheckFailed(
            f"warmline dev without the dev extra exited {done.returncode}: {done.stderr}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every step; print what passed and the first failure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="build here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warmline-package-") as tmp:
        scratch = args.keep.resolve() if args.keep else Path(tmp)
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            version = source_version()
            wheel, sdist = build(scratch / "dist")
            print(f"built {wheel.name} and {sdist.name}")
            run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
            print("twine check --strict: passed")
            check_metadata(wheel, version)
            print("wheel metadata: version, licence, URLs, classifiers, extras")
            check_install(wheel, scratch, version)
            print("fresh venv, no extras: warmline --help, --version, import, dev's hint")
        except CheckFailed as exc:
            print(f"package check failed: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
