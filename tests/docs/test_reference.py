"""The generated reference pages list every CLI option and every ``warmline.toml`` key.

The pages are written from the code at build time (``scripts/docs_reference.py``); these
tests read the BUILT site and compare it with parsers built here, independently, from
``warmline.cli.COMMANDS``, and with the key registry the loaders check files against.
"""

from __future__ import annotations

import argparse
import importlib
import re
from dataclasses import fields
from pathlib import Path

import pytest
from html_sections import code_by_section

from conftest import build_site
from warmline.cli import COMMANDS
from warmline.config import keys
from warmline.config.deploy import DeploySettings, parse_deploy
from warmline.config.faults import FAULTS, parse_faults
from warmline.config.load import parse_config
from warmline.config.model import Limits
from warmline.errors import ConfigurationError


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "top-level"


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found += _commands(sub, (*path, name))
    return found


def _every_command() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    root = argparse.ArgumentParser(prog="warmline")
    subparsers = root.add_subparsers()
    for module_name, _help in COMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return _commands(root, ())


def _names_in(codes: list[str]) -> set[str]:
    return {name for code in codes for name in code.split(", ")}


def test_cli_reference_lists_every_command_and_option(site: Path) -> None:
    sections = code_by_section(site / "reference" / "cli" / "index.html")
    found = _every_command()
    assert {path[0] for path, _ in found} == set(COMMANDS)
    for path, parser in found:
        anchor = _slug("warmline " + " ".join(path))
        assert anchor in sections, f"no section for warmline {' '.join(path)}"
        listed = _names_in(sections[anchor])
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            for name in action.option_strings or [str(action.metavar or action.dest)]:
                assert name in listed, f"warmline {' '.join(path)}: {name} is not listed"
    assert "--version" in _names_in(sections["command-line"])


def test_configuration_reference_lists_every_table_and_key(site: Path) -> None:
    sections = code_by_section(site / "reference" / "configuration" / "index.html")
    for path, table in keys.TABLES.items():
        anchor = _slug(path)
        assert anchor in sections, f"no section for [{path}]"
        missing = set(table) - set(sections[anchor])
        assert not missing, f"[{path}]: {sorted(missing)} not listed"
    assert set(FAULTS) <= set(sections["faults"])


def test_the_registry_holds_the_models_fields() -> None:
    from warmline.agent.providers.config import SETTINGS
    from warmline.config.iam import _TOML_KEYS

    assert keys.allowed("limits") == set(Limits.__slots__)
    assert keys.allowed("deploy") == {f.name for f in fields(DeploySettings)}
    assert keys.allowed("functions.<name>.statements[]") == set(_TOML_KEYS.values()) - {
        "condition"  # refused with its own message: not supported in warmline.toml
    }
    assert keys.TABLES["agent.llm"] is SETTINGS


def _config(where: tuple[str, ...] = (), extra: dict[str, object] | None = None) -> dict:
    """A valid config (one function, ``ws``) with ``extra`` set in the table at ``where``."""
    config: dict = {"functions": {"ws": {"handler": "app.handler"}}}
    table = config
    for part in where:
        table = table.setdefault(part, {})
    table.update(extra or {})
    return config


# (registry path, where that table is in a config, the table's required keys)
CASES = [
    ("", (), {}),
    ("functions.<name>", ("functions", "ws"), {}),
    ("http", ("http",), {}),
    ("websocket", ("websocket",), {}),
    ("websocket.routes.<route>", ("websocket", "routes", "$default"), {"function": "ws"}),
    ("websocket.authorizers.<name>", ("websocket", "authorizers", "a"), {"function": "ws"}),
    ("schedules.<name>", ("schedules", "warm"), {"expression": "rate(5 minutes)", "targets": "ws"}),
    ("sqs.<name>", ("sqs", "jobs"), {"function": "ws"}),
    ("sns.<name>", ("sns", "alerts"), {"functions": ["ws"]}),
    ("limits", ("limits",), {}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "where", "required"), CASES, ids=[c[0] or "top" for c in CASES])
def test_the_loader_accepts_exactly_the_registry_keys(
    path: str,
    where: tuple[str, ...],
    required: dict[str, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parse_config(_config(where, required), base_dir=tmp_path)
    novel = _config(where, {**required, "novel": 1})
    with pytest.raises(ConfigurationError, match="unknown key .*novel"):
        parse_config(novel, base_dir=tmp_path)
    monkeypatch.setitem(keys.TABLES, path, {**keys.TABLES[path], "novel": ("", "", "")})
    parse_config(novel, base_dir=tmp_path)


def test_the_deploy_and_fault_loaders_take_their_keys_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(_config(), base_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="unknown key 'deploy.novel'"):
        parse_deploy({"novel": 1}, config)
    with pytest.raises(ConfigurationError, match="unknown key 'deploy.twiml.novel'"):
        parse_deploy({"twiml": {"function": "ws", "novel": 1}}, config)
    with pytest.raises(ConfigurationError, match="unknown key faults.client.abort.'novel'"):
        parse_faults({"client": {"abort": {"novel": 1}}})
    monkeypatch.setitem(keys.TABLES, "deploy", {**keys.TABLES["deploy"], "novel": ("", "", "")})
    parse_deploy({"novel": 1}, config)


def test_a_broken_anchor_fails_the_strict_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e .[docs])")
    project = Path(__file__).resolve().parents[2] / "mkdocs.yml"
    validation = project.read_text().split("validation:", 1)[1].split("\n\n", 1)[0]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[there](other.md#no-such-heading)\n")
    (docs / "other.md").write_text("# Other\n\n## A heading\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\nvalidation:{validation}\n")
    done = build_site(config, tmp_path / "site")
    assert done.returncode != 0
    assert "does not contain an anchor '#no-such-heading'" in done.stdout + done.stderr
    (docs / "index.md").write_text("# Home\n\n[there](other.md#a-heading)\n")
    assert build_site(config, tmp_path / "site").returncode == 0
