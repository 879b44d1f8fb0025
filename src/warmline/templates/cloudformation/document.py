"""Reading CloudFormation/SAM and serverless.yml files: YAML with the short-form tags, or JSON.

CloudFormation's YAML has tags PyYAML does not know (``!Ref``, ``!GetAtt``, ``!Sub``...);
each becomes the long form CloudFormation defines (``!Ref X`` is ``{"Ref": "X"}``, ``!GetAtt
A.B`` is ``{"Fn::GetAtt": ["A", "B"]}``, ``!Condition C`` is ``{"Condition": "C"}``, any
other ``!Name v`` is ``{"Fn::Name": v}``) so one resolver handles both spellings and JSON
templates too (AWS CloudFormation User Guide, "Intrinsic function reference").

Timestamps are read as strings: an unquoted ``AWSTemplateFormatVersion: 2010-09-09`` is
a string to CloudFormation, and a ``datetime.date`` would break ``!Sub`` and JSON dumps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from warmline.templates.report import SourceError

__all__ = ["SHORT_FORM_TAGS", "load_document"]

#: The short-form tags of CloudFormation YAML (``Fn::`` prefix added unless noted).
SHORT_FORM_TAGS = frozenset(
    {
        "Ref",
        "Condition",
        "GetAtt",
        "Sub",
        "Join",
        "If",
        "Select",
        "Split",
        "Equals",
        "Not",
        "And",
        "Or",
        "FindInMap",
        "ImportValue",
        "Base64",
        "GetAZs",
        "Cidr",
        "Transform",
        "Length",
        "ToJsonString",
    }
)


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader + CloudFormation tags, without the YAML 1.1 timestamp resolver."""


_CloudFormationLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if suffix not in SHORT_FORM_TAGS:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"unknown intrinsic function tag !{suffix} "
            f"(known: {', '.join('!' + t for t in sorted(SHORT_FORM_TAGS))})",
            node.start_mark,
        )
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_document(path: Path) -> dict[str, Any]:
    """Read a template (YAML or JSON) into plain dicts with long-form intrinsics.

    Args:
        path: the template or serverless.yml.

    Returns:
        The top-level mapping.

    Raises:
        SourceError: unreadable file, bad YAML/JSON (with the line), an unknown ``!Tag``,
            or a top level that is not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the file: {exc}", source=path) from exc
    data: Any
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SourceError(f"not valid JSON: {exc}", source=path) from exc
    else:
        try:
            data = yaml.load(text, Loader=_CloudFormationLoader)  # SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = exc.problem or exc.context or "malformed YAML"
            raise SourceError(f"not valid YAML: {problem}", where=where, source=path) from exc
        except yaml.YAMLError as exc:
            raise SourceError(f"not valid YAML: {exc}", source=path) from exc
    if not isinstance(data, dict):
        raise SourceError("the top level must be a mapping", source=path)
    return data
