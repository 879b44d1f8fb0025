"""What of a function's code directory goes into its Lambda zip, and what must never.

A code directory is usually the project folder itself (``code = "."``), so it holds more
than code: ``.env`` files, ``warmline dev``'s ``.warmline/`` (the session store with callers'
numbers and transcripts, the dev logs), Terraform state (which holds every secret the stack
was given), the rendered templates, tests, virtualenvs, VCS folders and caches. None of it
runs on Lambda, and some of it must not leave the machine. So the packager leaves out:

- :data:`BUILTIN_EXCLUDES` (always), the project's ``[deploy] exclude`` patterns and a
  function's own ``[deploy.functions.<name>] exclude`` (added to the project's);
- every directory holding a ``pyvenv.cfg`` (a virtualenv, whatever its name);
- ``deploy/sam`` and ``deploy/terraform`` beside the config, where ``warmline deploy
  render`` writes by default.

Patterns follow ``.gitignore``'s common forms: ``name`` or ``*.ext`` matches a file or
directory of that name at any depth; a pattern with a ``/`` inside is anchored at the code
directory (``config/local.toml``, ``scripts/*``); a trailing ``/`` matches directories only.
``*`` and ``?`` do not cross ``/``.

What is still in the zip is then looked at (:func:`secret_findings`): names that usually
hold credentials (``*.pem``, ``id_rsa``, ``.env*``, ``credentials``, ``*.tfstate*`` ...) and
a few content patterns (an AWS access key id, an ``aws_secret_access_key`` assignment, a
PEM private key, a ``.env``-style ``TOKEN=value`` line). ``warmline deploy package``
prints each as a warning and ``--strict`` fails on them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

__all__ = [
    "BUILTIN_EXCLUDES",
    "RENDERED_DIRS",
    "Excluder",
    "secret_findings",
]

#: Left out of every zip (patterns as in ``[deploy] exclude``).
BUILTIN_EXCLUDES: tuple[str, ...] = (
    # secrets and local state
    ".env*", ".warmline/", "*.tfstate*", ".terraform/", "*.tfvars", ".aws-sam/",
    # version control
    ".git/", ".hg/", ".svn/", ".bzr/", ".gitignore", ".gitattributes",
    # virtualenvs (a folder with pyvenv.cfg is one whatever its name) and tool caches
    ".venv/", "venv/", ".tox/", ".nox/", "__pycache__/", ".mypy_cache/", ".pytest_cache/",
    ".ruff_cache/", ".hypothesis/", ".coverage", ".coverage.*", "htmlcov/",
    "node_modules/", ".idea/", ".vscode/", ".DS_Store", "*.pyc", "*.pyo", "*.zip",
    # tests and build output
    "tests/", "conftest.py", "build/", "dist/", "*.egg-info/",
)  # fmt: skip
#: Where ``warmline deploy render`` writes by default, relative to the config's folder.
RENDERED_DIRS = ("deploy/sam", "deploy/terraform")
#: Largest file whose content is searched for secrets (bigger ones are data, not config).
SCAN_MAX_BYTES = 2 * 1024 * 1024

#: File names that usually hold credentials (matched case-insensitively).
_SECRET_NAMES: tuple[tuple[str, str], ...] = (
    (".env", "a dotenv file"),
    (".env.*", "a dotenv file"),
    ("*.pem", "a PEM file (keys, certificates)"),
    ("*.key", "a key file"),
    ("*.p12", "a PKCS#12 key store"),
    ("*.pfx", "a PKCS#12 key store"),
    ("*.jks", "a Java key store"),
    ("id_rsa*", "an SSH key"),
    ("id_dsa*", "an SSH key"),
    ("id_ecdsa*", "an SSH key"),
    ("id_ed25519*", "an SSH key"),
    ("credentials", "an AWS (or other) credentials file"),
    ("*.tfstate*", "Terraform state (holds the stack's secrets in clear)"),
    ("*.tfvars", "Terraform variables"),
    (".netrc", "a netrc file (passwords)"),
    (".pypirc", "a PyPI credentials file"),
    (".npmrc", "an npm credentials file"),
)
#: Content that looks like a credential.
_SECRET_CONTENT: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (
        re.compile(rb"(?i)aws_secret_access_key\s*[=:]\s*[\"']?[A-Za-z0-9/+=]{40}\b"),
        "an AWS secret access key",
    ),
    (re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), "a PEM private key"),
    (
        # dotenv style: NAME=value at the start of a line, no spaces around '=' (Python
        # code writes ``TOKEN = os.environ[...]`` with spaces and is not matched).
        re.compile(
            rb"(?m)^(?:export )?[A-Z][A-Z0-9_]*(?:SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|"
            rb"PRIVATE_KEY)[A-Z0-9_]*=[^\s#\"'$]{8,}"
        ),
        "a .env-style secret assignment",
    ),
)
#: Documentation placeholders that are not credentials (AWS's own examples end in EXAMPLE).
_PLACEHOLDER = re.compile(rb"EXAMPLE|XXXXXXXX|example|placeholder|changeme")


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: str
    directory_only: bool
    anchored: bool

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        if self.anchored:
            return _match_path(rel, self.pattern)
        return fnmatchcase(rel.rsplit("/", 1)[-1], self.pattern)


def _match_path(rel: str, pattern: str) -> bool:
    """``fnmatch`` segment by segment, so ``*`` never crosses ``/``."""
    parts, wanted = rel.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(
        fnmatchcase(part, want) for part, want in zip(parts, wanted, strict=True)
    )


class Excluder:
    """Decides, path by path, what of a code directory stays out of the zip.

    Args:
        patterns: the built-in ones plus the project's and the function's.
        rendered: directories (relative to the code directory) to leave out whole.
    """

    def __init__(self, patterns: Iterable[str], rendered: Iterable[str] = ()) -> None:
        self.rules: list[_Rule] = []
        for pattern in [*patterns, *(p.rstrip("/") + "/" for p in rendered)]:
            body = pattern.rstrip("/")
            self.rules.append(_Rule(body, pattern.endswith("/"), "/" in body))

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """True when ``rel`` (posix, relative to the code directory) stays out."""
        return any(rule.matches(rel, is_dir) for rule in self.rules)

    def walk(self, root: Path, skipped: list[str]) -> Iterator[tuple[Path, str]]:
        """Every file of ``root`` that goes in, as (path, relative posix name), sorted;
        what is left out is appended to ``skipped`` (directories with a trailing ``/``)."""
        for here, dirs, files in os.walk(root):
            base = Path(here)
            prefix = base.relative_to(root).as_posix()
            prefix = "" if prefix == "." else prefix + "/"
            kept = []
            for name in sorted(dirs):
                rel = prefix + name
                if self.excluded(rel, True) or (base / name / "pyvenv.cfg").is_file():
                    skipped.append(rel + "/")
                else:
                    kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                rel = prefix + name
                if self.excluded(rel, False):
                    skipped.append(rel)
                else:
                    yield base / name, rel


def secret_findings(files: Sequence[tuple[Path, str]]) -> list[tuple[str, str]]:
    """Files that look like they hold credentials: (relative name, why), sorted.

    Names are checked case-insensitively; contents (the first :data:`SCAN_MAX_BYTES`)
    against a few patterns, skipping documentation placeholders such as AWS's
    ``AKIAIOSFODNN7EXAMPLE``.
    """
    found: list[tuple[str, str]] = []
    for path, rel in files:
        name = rel.rsplit("/", 1)[-1].lower()
        why = next((w for pattern, w in _SECRET_NAMES if fnmatchcase(name, pattern)), None)
        if why is None:
            why = _content_finding(path)
        if why is not None:
            found.append((rel, why))
    return sorted(found)


def _content_finding(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(SCAN_MAX_BYTES)
    except OSError:
        return None
    for pattern, why in _SECRET_CONTENT:
        for match in pattern.finditer(data):
            if not _PLACEHOLDER.search(match.group(0)):
                return why
    return None
