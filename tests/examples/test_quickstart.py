"""examples/quickstart: the README's example type-checks under ``mypy --strict`` and runs.

The type check is real: the same file with one misspelt message field must fail it, so a
change that made ``ctx.message`` untyped (``Any``) would fail this test too.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from warmline.testing import RelayCall

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "quickstart" / "app.py"
MYPY = Path(sys.executable).parent / "mypy"


def mypy_strict(path: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MYPY), "--strict", "--cache-dir", str(cache), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_quickstart_passes_mypy_strict_and_a_typo_fails_it(tmp_path: Path) -> None:
    ok = mypy_strict(EXAMPLE, tmp_path / "cache")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    broken = tmp_path / "broken_app.py"
    source = EXAMPLE.read_text()
    assert "ctx.message.voice_prompt" in source
    broken.write_text(source.replace("ctx.message.voice_prompt", "ctx.message.voice_promt"))
    failed = mypy_strict(broken, tmp_path / "cache")
    assert failed.returncode == 1
    assert 'has no attribute "voice_promt"' in failed.stdout


def test_the_quickstart_greets_then_streams_tokens_and_closes_the_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    module = load()
    call = RelayCall(module.app)

    assert call.connect() == {"statusCode": 200}
    greeting = call.setup(**{"from": "+15550100"})
    partial = call.prompt("what are your", last=False)
    answer = call.prompt("what are your hours")

    assert greeting == [
        {"type": "text", "token": "Hello, caller from +15550100! Ask me anything.", "last": True}
    ]
    assert partial == []
    words = ["You ", "asked: ", "what ", "are ", "your ", "hours "]
    assert answer == [
        *({"type": "text", "token": w, "last": False} for w in words),
        {"type": "text", "token": "", "last": True},
    ]
    session = call.store.by_connection(call.connection_id)
    assert session is not None and session.turn == 1


def test_the_quickstart_notes_what_a_barge_in_heard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    call = RelayCall(load().app)
    call.connect()
    call.setup()

    assert call.interrupt("You asked") == []
    records = call.log.records or []
    (line,) = [r for r in records if r.get("step") == "message" and r.get("route") == "interrupt"]
    assert line["heard"] == "You asked"


def test_the_readme_shows_the_quickstart_exactly() -> None:
    """The README's example is this tested file, character for character."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    marker = "<!-- quickstart: examples/quickstart/app.py -->\n```python\n"
    shown = readme[readme.index(marker) + len(marker) :].split("```\n", 1)[0]
    assert shown == (root / "examples" / "quickstart" / "app.py").read_text()
