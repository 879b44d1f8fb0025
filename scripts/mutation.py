"""Mutation testing, one module at a time against its own tests (``make mutation``).

mutmut 3 mutates a whole project against one test selection. This script gives each module
listed under ``[[tool.warmline.mutation]]`` in ``pyproject.toml`` a scratch project of its
own in ``.mutation/<module>/``: a copy of ``src/`` and ``tests/`` and a ``pyproject.toml``
whose ``[tool.mutmut]`` mutates only that module (``only_mutate``) and runs only the test
files that mirror it (``pytest_add_cli_args_test_selection``). The shared mutmut settings
come from the real ``[tool.mutmut]``. Modules run one after the other: each run is
CPU-heavy.

After each run the script reads mutmut's verdicts and scores the module::

    score = killed / (mutants - equivalent)

- A mutant listed in the module's ``equivalent`` table (matched by function and by the
  changed lines, so renumbering does not break the list) is left out of the count.
- A ``timeout`` is counted as killed only when it is a real hang: the mutant's tests are
  rerun alone, with a wall-clock limit far above their normal time; a run that finishes is
  scored by its exit code (fail = killed, pass = survived).
- ``no tests`` (no selected test reaches the function) counts as survived.

Usage::

    python scripts/mutation.py                      # every listed module
    python scripts/mutation.py core/routing.py ...  # modules whose path ends like that
    python scripts/mutation.py --show               # also print each survivor's diff
    python scripts/mutation.py --list               # the modules and their tests

Exit status 1 when a module scores under ``fail_under`` (from the config), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
#: A surviving timeout is rerun with this wall-clock limit (seconds) before it counts as a hang.
HANG_LIMIT_S = 120.0

KILLED = {1: "killed", 3: "killed", 37: "killed"}
TIMEOUTS = {-24, 24, 152, 255, 36}


@dataclass
class Equivalent:
    """A mutant that behaves exactly like the original, with the reason why."""

    function: str
    removed: str
    added: str
    why: str

    def matches(self, function: str, removed: str, added: str) -> bool:
        return (self.function, self.removed, self.added) == (function, removed, added)


@dataclass
class Module:
    path: str
    tests: list[str]
    equivalent: list[Equivalent]

    @property
    def slug(self) -> str:
        return self.path.removeprefix("src/warmline/").removesuffix(".py").replace("/", ".")


@dataclass
class Score:
    module: Module
    killed: int = 0
    hangs: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    unused_equivalents: list[Equivalent] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counted(self) -> int:
        return self.killed + len(self.survived)

    @property
    def percent(self) -> float:
        return 100.0 * self.killed / self.counted if self.counted else 100.0


def load_config() -> tuple[dict[str, object], list[Module], float]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    mutmut = dict(data["tool"]["mutmut"])
    table = data["tool"]["warmline"]["mutation"]
    modules = [
        Module(
            path=entry["path"],
            tests=list(entry["tests"]),
            equivalent=[Equivalent(**e) for e in entry.get("equivalent", [])],
        )
        for entry in table["modules"]
    ]
    return mutmut, modules, float(table.get("fail_under", 0.0))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def prepare(module: Module, mutmut: dict[str, object]) -> Path:
    """A fresh scratch project for ``module``; returns its directory."""
    work = WORK / module.slug
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    settings = dict(mutmut)
    settings["only_mutate"] = [module.path]
    settings["pytest_add_cli_args_test_selection"] = module.tests
    lines = ["[tool.mutmut]"] + [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    pytest_section = (ROOT / "pyproject.toml").read_text("utf-8").split("[tool.pytest.ini_options]")
    lines += ["", "[tool.pytest.ini_options]" + pytest_section[1].split("\n[")[0]]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n", "utf-8")
    return work


def mutmut_bin() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def diff_lines(work: Path, name: str) -> tuple[str, str, str]:
    """The function, removed lines and added lines of mutant ``name``, as config spells them."""
    shown = subprocess.run(
        [mutmut_bin(), "show", name], cwd=work, capture_output=True, text=True, check=True
    ).stdout
    removed, added = [], []
    for line in shown.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    mangled = name.rpartition(".")[2].rpartition("__mutmut_")[0]
    function = mangled.removeprefix("x_").replace("xǁ", "", 1).replace("ǁ", ".")
    return function, "\n".join(removed), "\n".join(added)


def hangs(work: Path, module: Module, name: str) -> bool | None:
    """Rerun a timed-out mutant with a generous limit: True hang, False passed, None failed."""
    env = dict(os.environ, MUTANT_UNDER_TEST=name, PYTHONPATH=str(work / "mutants" / "src"))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *module.tests]
    try:
        done = subprocess.run(
            command, cwd=work / "mutants", env=env, capture_output=True, timeout=HANG_LIMIT_S
        )
    except subprocess.TimeoutExpired:
        return True
    return False if done.returncode == 0 else None


def run(module: Module, mutmut: dict[str, object], show: bool) -> Score:
    work = prepare(module, mutmut)
    started = time.monotonic()
    log = work / "mutmut.log"
    with log.open("w") as out:
        code = subprocess.run(
            [mutmut_bin(), "run", "--max-children", "1"], cwd=work, stdout=out, stderr=out
        ).returncode
    score = Score(module, seconds=time.monotonic() - started)
    meta = work / "mutants" / (module.path + ".meta")
    if code != 0 or not meta.exists():
        print(f"mutmut failed for {module.path} (exit {code}); see {log}", file=sys.stderr)
        score.survived.append("<mutmut run failed>")
        return score
    verdicts: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    used: set[int] = set()
    for name, exit_code in sorted(verdicts.items()):
        if exit_code in KILLED:
            score.killed += 1
            continue
        if exit_code in TIMEOUTS:
            verdict = hangs(work, module, name)
            if verdict is None:
                score.killed += 1
                continue
            if verdict:
                score.killed += 1
                score.hangs += 1
                continue
        function, removed, added = diff_lines(work, name)
        match = next(
            (i for i, e in enumerate(module.equivalent) if e.matches(function, removed, added)),
            None,
        )
        if match is not None:
            used.add(match)
            score.equivalent.append(name)
            continue
        score.survived.append(name)
        if show:
            print(f"--- survived: {name} in {function}\n- {removed}\n+ {added}\n")
    score.unused_equivalents = [e for i, e in enumerate(module.equivalent) if i not in used]
    return score


def equivalents_markdown(modules: list[Module]) -> str:
    """One table per module with equivalent mutants: function, change, why."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = []
    for m in modules:
        if not m.equivalent:
            continue
        out.append(f"**`{m.path.removeprefix('src/')}`**\n")
        out.append("| function | change | why it is equivalent |")
        out.append("|---|---|---|")
        for e in m.equivalent:
            change = f"`{cell(e.removed)}` → `{cell(e.added)}`"
            out.append(f"| `{e.function}` | {change} | {cell(e.why)} |")
        out.append("")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="run only modules whose path ends like this")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument(
        "--equivalents",
        action="store_true",
        help="print the equivalent mutants as the Markdown tables of docs/testing.md",
    )
    args = parser.parse_args()
    mutmut, modules, fail_under = load_config()
    if args.modules:
        modules = [m for m in modules if any(m.path.endswith(s) for s in args.modules)]
    if args.list:
        for m in modules:
            print(f"{m.path}: {' '.join(m.tests)}")
        return 0
    if args.equivalents:
        print(equivalents_markdown(modules), end="")
        return 0
    scores = []
    for module in modules:
        print(f"mutating {module.path} against {' '.join(module.tests)} ...", flush=True)
        score = run(module, mutmut, args.show)
        scores.append(score)
        print(f"  {score.percent:5.1f} %  ({score.killed}/{score.counted})", flush=True)
    print()
    print(f"| {'module':<36} | score | killed | survived | equivalent | hangs | time |")
    print(f"|{'-' * 38}|-------|--------|----------|------------|-------|------|")
    for s in scores:
        print(
            f"| {s.module.path.removeprefix('src/'):<36} | {s.percent:4.0f}% | {s.killed:6} "
            f"| {len(s.survived):8} | {len(s.equivalent):10} | {s.hangs:5} | {s.seconds:3.0f}s |"
        )
    for s in scores:
        if s.survived:
            print(f"\n{s.module.path} survivors: {' '.join(s.survived)}")
        for e in s.unused_equivalents:
            print(f"\n{s.module.path}: equivalent entry matched no mutant: {e.function}: {e.why}")
    failed = [s.module.path for s in scores if s.percent < fail_under]
    if failed:
        print(f"\nunder {fail_under:.0f} %: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
