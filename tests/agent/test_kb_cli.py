"""``warmline kb build`` through its CLI module (``add_parser`` / ``run``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from warmline.agent.kb import Retriever, close_indexes, index_contents
from warmline.cli import kb as kb_cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="warmline")
    kb_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_build_writes_an_index_beside_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "help.jsonl"
    source.write_text(
        json.dumps({"id": "hours", "question": "When are you open?", "answer": "At nine."}) + "\n"
    )
    assert kb_cli.run(parse("kb", "build", "--source", str(source))) == 0
    out = tmp_path / "help.index.sqlite3"
    assert "indexed 1 entries" in capsys.readouterr().out
    assert [row[1] for row in index_contents(out)["docs"]] == ["hours"]
    try:
        assert Retriever(out).search("when do you open")[0].id == "hours"
    finally:
        close_indexes()


def test_build_with_an_explicit_out(tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text(json.dumps({"id": "x", "question": "q", "answer": "a"}) + "\n")
    out = tmp_path / "sub.sqlite3"
    assert kb_cli.run(parse("kb", "build", "--source", str(source), "--out", str(out))) == 0
    assert index_contents(out)["meta"]["entries"] == "1"


def test_a_bad_source_exits_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text("{not json\n")
    assert kb_cli.run(parse("kb", "build", "--source", str(source))) == 1
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert kb_cli.run(parse("kb", "build", "--source", str(tmp_path / "missing.jsonl"))) == 1


def test_no_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert kb_cli.run(parse("kb")) == 2
    assert "warmline kb build" in capsys.readouterr().err
