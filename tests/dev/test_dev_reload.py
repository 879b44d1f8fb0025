"""Reload on save through a running ``warmline dev`` (:mod:`warmline.dev.reload`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dev_process import APP_V1, DevProcess, ask, echo_config
from websockets.sync.client import connect

from warmline.dev.reload import syntax_problem

pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP_V1)
    (tmp_path / "warmline.toml").write_text(echo_config(code))
    return code


def _edit(code: Path, old: str, new: str) -> None:
    path = code / "app.py"
    path.write_text(path.read_text().replace(old, new))


def test_an_edit_answers_the_next_message_and_a_syntax_error_keeps_the_old_code(
    tmp_path: Path,
) -> None:
    code = _project(tmp_path)
    with DevProcess(tmp_path) as dev, connect(dev.ws_url) as ws:
        assert "Reload:" in dev.banner
        assert ask(ws, "a") == "v1:a"
        _edit(code, '"v1:"', '"v2-longer:"')
        dev.wait_log(lambda log: log.count("reloaded app") == 1)
        assert ask(ws, "b") == "v2-longer:b"

        (code / "app.py").write_text(
            APP_V1.replace("def handler(event, context):", "def handler(:")
        )
        log = dev.wait_log(lambda log: "reload held" in log)
        bad_line = 1 + APP_V1.splitlines().index("def handler(event, context):")
        assert f"{code / 'app.py'}:{bad_line}: SyntaxError" in log
        assert ask(ws, "c") == "v2-longer:c"  # the previous code keeps serving

        (code / "app.py").write_text(APP_V1.replace('"v1:"', '"v3:"'))
        dev.wait_log(lambda log: log.count("reloaded app") == 2)
        assert ask(ws, "d") == "v3:d"
        assert "environment recycled" in dev.log_text()


def test_a_call_in_progress_finishes_on_the_old_code_and_keeps_its_connection(
    tmp_path: Path,
) -> None:
    code = _project(tmp_path)
    with DevProcess(tmp_path) as dev, connect(dev.ws_url) as busy, connect(dev.ws_url) as other:
        assert ask(busy, "warm") == "v1:warm"
        busy.send("slow")  # the handler waits for the gate file
        dev.wait_log(lambda log: log.count("START RequestId") == 2)
        _edit(code, '"v1:"', '"v2:"')
        dev.wait_log(lambda log: "reloaded app" in log)
        # Messages right after the save: none is lost, and the new code answers them.
        for n in range(5):
            other.send(f"m{n}")
        answers = sorted(str(other.recv(timeout=30)) for _ in range(5))
        assert answers == [f"v2:m{n}" for n in range(5)]
        (code / "gate").write_text("")
        assert str(busy.recv(timeout=30)) == "v1:slow"  # not killed mid-call
        assert ask(busy, "after") == "v2:after"  # the same connection, the new code
        assert "environment recycled" in dev.log_text()


def test_no_reload_leaves_warm_environments_on_the_code_they_loaded(tmp_path: Path) -> None:
    code = _project(tmp_path)
    with DevProcess(tmp_path, "--no-reload") as dev, connect(dev.ws_url) as ws:
        assert "Reload:       off" in dev.banner
        assert ask(ws, "a") == "v1:a"
        _edit(code, '"v1:"', '"v2:"')
        assert ask(ws, "b") == "v1:b"
        assert "reloaded" not in dev.log_text()


def test_syntax_problem_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("x = 1\nif True\n    pass\n")
    problem = syntax_problem(path)
    assert problem is not None and problem.startswith(f"{path}:2: SyntaxError")
    path.write_text("x = 1\n")
    assert syntax_problem(path) is None
    assert syntax_problem(tmp_path / "gone.py") is None
