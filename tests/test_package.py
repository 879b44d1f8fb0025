"""The package as the index shows it: metadata, extras, README links, missing-extra messages.

The build itself (sdist + wheel, ``twine check --strict``, a fresh venv without extras) is
``scripts/package_check.py``, run by ``make package-check``; these are the quick checks of
the sources it builds from.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import warmline
from warmline.cli import COMMAND_EXTRAS, COMMANDS, MODULE_EXTRAS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT: dict[str, Any] = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
#: The extras a user installs for a feature; `test` (and the tooling extras) hold them all.
FEATURE_EXTRAS = ("aws", "redis", "report", "asgi")
REPO = "https://github.com/warmline/warmline"


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement (``moto[server]>=5`` -> ``moto``)."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def specifiers(extra: str) -> dict[str, str]:
    """distribution -> the rest of its requirement (version and marker) in ``extra``."""
    out = {}
    for req in EXTRAS[extra]:
        out[distribution(req)] = re.sub(r"^[A-Za-z0-9._-]+(\[[^\]]*\])?", "", req).strip()
    return out


def test_the_version_has_one_source() -> None:
    assert "version" not in PROJECT
    assert "version" in PROJECT["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "warmline.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", warmline.__version__)


def test_the_version_flag_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warmline", "--version"], capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, warmline.__version__)


def test_the_licence_is_apache_2_in_full() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    # The full text, not a notice: all nine sections and the appendix.
    for heading in ("1. Definitions.", "9. Accepting Warranty or Additional Liability."):
        assert heading in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX" in text


def test_the_build_backend_reads_the_spdx_licence() -> None:
    requires = PYPROJECT["build-system"]["requires"]
    setuptools = next(r for r in requires if distribution(r) == "setuptools")
    floor = re.search(r">=\s*([\d.]+)", setuptools)
    assert floor is not None, "the backend needs a lower bound"
    # 77.0.3 is the first setuptools that accepts `license = "<SPDX expression>"`.
    assert tuple(map(int, floor.group(1).split("."))) >= (77, 0, 3)
    assert "<" in setuptools, "and an upper bound (the newest release checked)"


def test_classifiers_name_every_supported_python_and_the_urls_the_repo() -> None:
    classifiers = PROJECT["classifiers"]
    low = re.fullmatch(r">=3\.(\d+)", PROJECT["requires-python"])
    assert low is not None
    minors = [int(c.rsplit(".", 1)[1]) for c in classifiers if re.search(r"Python :: 3\.\d+$", c)]
    assert min(minors) == int(low.group(1)) and minors == sorted(minors)
    assert "Typing :: Typed" in classifiers
    assert len(set(classifiers)) == len(classifiers)
    urls = PROJECT["urls"]
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith(REPO) for url in urls.values())


def test_no_extra_is_empty_and_shared_pins_agree() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for extra, requirements in EXTRAS.items():
        assert requirements, f"the extra {extra!r} installs nothing"
        for dist, spec in specifiers(extra).items():
            if dist in seen:
                other, other_spec = seen[dist]
                assert spec == other_spec, f"{dist}: {extra} says {spec!r}, {other} {other_spec!r}"
            seen[dist] = (extra, spec)


def test_the_test_extra_holds_every_feature_extra() -> None:
    tested = specifiers("test")
    for extra in FEATURE_EXTRAS:
        missing = set(specifiers(extra)) - set(tested)
        assert not missing, f"the test extra lacks {sorted(missing)} of [{extra}]"


def test_every_module_named_in_a_hint_is_in_its_extras() -> None:
    for module, (dist, extras) in MODULE_EXTRAS.items():
        for extra in extras:
            assert distribution(dist) in specifiers(extra), f"{module}: {dist} not in [{extra}]"
    for command, (extra, modules) in COMMAND_EXTRAS.items():
        assert command in COMMANDS
        for module in modules:
            assert extra in MODULE_EXTRAS[module][1], f"{command}: {module} not in [{extra}]"


def test_the_readme_has_no_relative_link_or_image() -> None:
    # The package index renders README.md away from the repository: a relative link there
    # points nowhere. Absolute links go to the repository.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)", text)
    targets += re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.M)
    targets += re.findall(r"""(?:src|href)=["']([^"']+)""", text)
    assert targets
    relative = [t for t in targets if not re.match(r"(https?|mailto):|#", t)]
    assert relative == []


def run_without(modules: list[str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``warmline ARGV`` in a fresh interpreter where ``modules`` cannot be imported.

    ``sys.modules[name] = None`` is how the import system marks a module as absent: ``import``
    raises ModuleNotFoundError and ``importlib.util.find_spec`` answers None, as when the
    distribution is not installed.
    """
    code = (
        "import sys\n"
        f"for name in {modules!r}: sys.modules[name] = None\n"
        "from warmline.cli import main\n"
        f"raise SystemExit(main({list(argv)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


AGENT = ROOT / "examples" / "agent"


@pytest.mark.parametrize(
    ("blocked", "argv", "extra", "module"),
    [
        (["websockets"], ["dev", "--config", str(AGENT / "warmline.toml"), "--port", "0"],
         "dev", "websockets"),
        (["websockets"], ["load", "--ws", "ws://127.0.0.1:9/ws", "--calls", "1"],
         "dev", "websockets"),
        (["websockets"], ["call", "--help"], None, None),
        (["uvicorn"], ["serve", "app:app", "--app-dir", str(AGENT)], "asgi", "uvicorn"),
        (["websockets"], ["serve", "app:app", "--app-dir", str(AGENT)], "asgi", "websockets"),
    ],
)  # fmt: skip
def test_a_missing_extra_is_named_in_one_line(
    blocked: list[str], argv: list[str], extra: str | None, module: str | None, tmp_path: Path
) -> None:
    done = run_without(blocked, *argv, cwd=tmp_path)
    if extra is None:  # --help needs no extra
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"warmline {argv[0]}: needs the '{extra}' extra ({module} is not installed); "
        f"install it with: pip install 'warmline[{extra}]'"
    )


def test_a_module_missing_later_is_named_with_its_extra(tmp_path: Path) -> None:
    # `report --plot` imports matplotlib only when it plots, after the table is printed.
    log = tmp_path / "logs.jsonl"
    log.write_text("")
    done = run_without(["matplotlib"], "report", "--plot", str(tmp_path / "plots"), str(log),
                       cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install 'warmline[report]'" in done.stderr
    assert "'report' extra (matplotlib is not installed)" in done.stderr
