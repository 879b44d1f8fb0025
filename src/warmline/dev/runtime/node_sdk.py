"""What a Node.js environment may ``require``/``import`` besides its code, installed once.

Lambda's Node.js runtimes include the AWS SDK for JavaScript v3 (docs/protocols.md §3.10):
a handler imports ``@aws-sdk/client-dynamodb`` without bundling it. The emulator installs
the clients it ships (``node/package.json``, pinned by ``node/package-lock.json``) once,
with ``npm ci``, into ``~/.cache/warmline/node-sdk/<lock hash>/`` (``XDG_CACHE_HOME``
honoured), and puts its ``node_modules`` on ``NODE_PATH`` as the managed runtime does.

A function's own ``package.json`` dependencies are installed as ``sam build`` would
(``npm install --omit=dev``) into ``.warmline/deps/<function>/node-<hash>/`` when its code
directory has no ``node_modules`` of its own; the hash covers ``package.json`` and a lock
file, so the folder is rebuilt only when they change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from warmline.dev.runtime.runtimes import NODE_DIR

__all__ = ["NodeBuilt", "function_modules", "sdk_modules"]

_COMPLETE = ".complete"
_LOCKS = ("package-lock.json", "npm-shrinkwrap.json")


@dataclass(frozen=True, slots=True)
class NodeBuilt:
    """A ``node_modules`` directory for ``NODE_PATH`` (None: nothing to add), and notes."""

    path: Path | None
    notes: tuple[str, ...] = field(default=())


def cache_root() -> Path:
    """``~/.cache/warmline`` (``$XDG_CACHE_HOME/warmline`` when set)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "warmline"


def _npm(args: list[str], cwd: Path) -> str | None:
    """Run npm; None when it worked, else one line saying what went wrong."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not on PATH"
    try:
        done = subprocess.run(
            [npm, *args, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"npm {args[0]} failed: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"npm {args[0]} failed: {last}"
    return None


def _digest(*files: Path) -> str:
    hasher = hashlib.sha256()
    for path in files:
        if path.is_file():
            hasher.update(path.name.encode() + b"\0" + path.read_bytes())
    return hasher.hexdigest()[:16]


def _install(target: Path, sources: list[Path], args: list[str]) -> str | None:
    """Copy ``sources`` into a fresh ``target``, run npm there, mark it complete."""
    marker = target / _COMPLETE
    if marker.is_file():
        return None
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for source in sources:
        if source.is_file():
            shutil.copyfile(source, target / source.name)
    failed = _npm(args, target)
    if failed is None:
        marker.write_text("", encoding="utf-8")
    return failed


def sdk_modules(root: Path | None = None) -> NodeBuilt:
    """The runtime-provided SDK's ``node_modules``, installed on first use.

    Args:
        root: the cache folder (default :func:`cache_root`).
    """
    manifest, lock = NODE_DIR / "package.json", NODE_DIR / "package-lock.json"
    target = (root or cache_root()) / "node-sdk" / _digest(manifest, lock)
    failed = _install(target, [manifest, lock], ["ci", "--omit=dev"])
    if failed is not None:
        note = f"the AWS SDK for JavaScript v3 is not provided ({failed})"
        return NodeBuilt(None, (note,))
    return NodeBuilt(target / "node_modules")


def function_modules(state_dir: Path, function: str, code_dir: Path) -> NodeBuilt:
    """The function's declared ``dependencies``, installed as ``sam build`` would.

    Nothing is installed when the code directory has no ``package.json``, declares no
    dependencies, or carries its own ``node_modules`` (Node finds that one itself).
    """
    import json

    manifest = code_dir / "package.json"
    if not manifest.is_file() or (code_dir / "node_modules").is_dir():
        return NodeBuilt(None)
    try:
        declared = json.loads(manifest.read_text(encoding="utf-8")).get("dependencies") or {}
    except (OSError, ValueError, AttributeError):
        return NodeBuilt(None, (f"{manifest} is not valid JSON",))
    if not declared:
        return NodeBuilt(None)
    locks = [code_dir / name for name in _LOCKS if (code_dir / name).is_file()]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in function)
    target = state_dir / "deps" / safe / f"node-{_digest(manifest, *locks)}"
    args = ["ci", "--omit=dev"] if locks else ["install", "--omit=dev"]
    failed = _install(target, [manifest, *locks], args)
    if failed is not None:
        return NodeBuilt(None, (f"its package.json dependencies are not installed ({failed})",))
    return NodeBuilt(target / "node_modules")
