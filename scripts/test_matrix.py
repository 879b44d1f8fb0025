"""Run the test suite on every Python from 3.11 to 3.13 this machine has (``make test-matrix``).

For each minor version the script looks for an interpreter (``python3.X`` on PATH, then
pyenv's ``~/.pyenv/versions/3.X.*``), gives it a virtual environment of its own under
``.venv-matrix/3.X`` with ``warmline[dev,test]`` installed (reused while pyproject.toml is
unchanged), and runs pytest there. A version with no interpreter is reported as skipped,
not failed: CI runs the default Python only (``make test``).

Usage::

    python scripts/test_matrix.py [PYTEST ARGS...]     # default: -q -x -p no:cacheprovider

Exit status 1 when any found version fails (or none is found), else 0.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINORS = (11, 12, 13)
MATRIX = ROOT / ".venv-matrix"


def find_python(minor: int) -> Path | None:
    """An interpreter for 3.<minor>, or None."""
    name = f"python3.{minor}"
    on_path = shutil.which(name)
    if on_path and _is_version(Path(on_path), minor):
        return Path(on_path)
    for candidate in sorted(Path.home().glob(f".pyenv/versions/3.{minor}.*/bin/{name}")):
        if _is_version(candidate, minor):
            return candidate
    return None


def _is_version(python: Path, minor: int) -> bool:
    """The interpreter runs and is 3.<minor> (pyenv shims exist for versions not selected)."""
    done = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version_info[1])"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode == 0 and done.stdout.strip() == str(minor)


def prepare(python: Path, minor: int) -> Path:
    """The version's venv with the project installed; reinstalled when pyproject changes."""
    env = MATRIX / f"3.{minor}"
    stamp = env / ".pyproject-sha256"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    bin_python = env / "bin" / "python"
    if not bin_python.exists() or not stamp.exists() or stamp.read_text() != digest:
        subprocess.run([str(python), "-m", "venv", "--clear", str(env)], check=True)
        subprocess.run(
            [str(bin_python), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev,test]"],
            check=True,
        )
        stamp.write_text(digest)
    return bin_python


def main(argv: list[str]) -> int:
    """Run pytest on each version found; print one line per version."""
    pytest_args = argv or ["-q", "-x", "-p", "no:cacheprovider"]
    results: dict[str, str] = {}
    for minor in MINORS:
        python = find_python(minor)
        if python is None:
            results[f"3.{minor}"] = "skipped (no interpreter on this machine)"
            continue
        print(f"== Python 3.{minor}: {python}", flush=True)
        try:
            venv_python = prepare(python, minor)
        except subprocess.CalledProcessError as exc:
            results[f"3.{minor}"] = f"failed to install ({exc})"
            continue
        done = subprocess.run([str(venv_python), "-m", "pytest", *pytest_args], cwd=ROOT)
        results[f"3.{minor}"] = "passed" if done.returncode == 0 else f"failed ({done.returncode})"
    for version, result in results.items():
        print(f"Python {version}: {result}")
    ran = [r for r in results.values() if not r.startswith("skipped")]
    return 0 if ran and all(r == "passed" for r in ran) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
