"""``warmline serve``'s app loading and argument checks (no server started)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from warmline.cli.serve import load_app, main
from warmline.core.app import App
from warmline.errors import ConfigurationError

APP_SOURCE = """
from warmline import App, lambda_handler

app = App(name="{name}")
handler = lambda_handler(app)
not_an_app = 42
"""


@pytest.fixture
def app_module(tmp_path: Path) -> tuple[Path, str]:
    name = f"serve_app_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(APP_SOURCE.format(name=name))
    return tmp_path, name


@pytest.fixture(autouse=True)
def restore_sys_path() -> object:
    saved = list(sys.path)
    yield None
    sys.path[:] = saved


def test_module_attribute_with_an_app_dir(app_module: tuple[Path, str]) -> None:
    folder, name = app_module
    app = load_app(f"{name}:app", str(folder))
    assert isinstance(app, App) and app.name == name


def test_a_file_path_and_a_lambda_handler_name_the_same_app(app_module: tuple[Path, str]) -> None:
    folder, name = app_module
    by_file = load_app(f"{folder / name}.py:handler")
    assert by_file is load_app(f"{name}:app", str(folder))


@pytest.mark.parametrize("spec", ["no_colon", ":app", "module:"])
def test_malformed_specs_are_configuration_errors(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="module:attribute"):
        load_app(spec)


def test_an_attribute_that_is_not_an_app_is_refused(app_module: tuple[Path, str]) -> None:
    folder, name = app_module
    with pytest.raises(ConfigurationError, match="not a warmline App"):
        load_app(f"{name}:not_an_app", str(folder))


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--workers", "2"], "--workers must be 1"), (["--ws-path", "ws"], "must start with")],
)
def test_bad_arguments_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mod:app", *args]) == 2
    assert message in capsys.readouterr().err
