"""Helpers of the observability tests: EMF validation (AWS's JSON schema, plus the
specification's rules on the root node's target members that a JSON schema cannot say: a
metric's target is a number or a list of at most 100 numbers, a dimension's target a
string) and a small voice app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from warmline import App, Context, Prompt, Setup

SCHEMA = json.loads((Path(__file__).parent / "emf_schema.json").read_text())


def validate_emf(doc: dict[str, Any]) -> None:
    """Raise when ``doc`` is not a valid EMF document."""
    jsonschema.validate(doc, SCHEMA)
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        assert len(directive["Metrics"]) <= 100
        for dimension_set in directive["Dimensions"]:
            for key in dimension_set:
                assert isinstance(doc.get(key), str), f"dimension {key!r} has no string target"
        for metric in directive["Metrics"]:
            value = doc.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            assert len(values) <= 100
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values), (
                f"metric {metric['Name']!r} has no numeric target"
            )


def emf_lines(lines: list[str]) -> list[dict[str, Any]]:
    """The EMF documents among JSON log lines (other lines are skipped)."""
    out = []
    for line in lines:
        text = line.strip()
        if not text.startswith("{"):
            continue
        doc = json.loads(text)
        if isinstance(doc, dict) and "_aws" in doc:
            out.append(doc)
    return out


def voice_app(name: str = "voice") -> App:
    """Greets on setup; answers a prompt in three tokens."""
    app = App(name=name)

    @app.setup
    def greet(ctx: Context[Setup]) -> str:
        return "hello"

    @app.prompt
    def answer(ctx: Context[Prompt]) -> Iterator[str]:
        yield "you "
        yield "said "
        yield ctx.message.voice_prompt

    return app
