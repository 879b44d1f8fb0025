"""Any value of any shape anywhere in a stack gives a translation or a SourceError.

The fixtures are mutated at one random place (a property replaced by a value of another
shape) and translated: the result is a config or a message naming where, never another
exception, which is what "no traceback" means for ``warmline dev``.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sources_helpers import FIXTURES, LOCAL_STATE

from warmline.templates.cloudformation.document import load_document
from warmline.templates.cloudformation.read import translate_template
from warmline.templates.report import SourceError
from warmline.templates.serverless.read import translate_serverless
from warmline.templates.terraform.read import translate_terraform

Path_ = tuple[Any, ...]

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["", "x", "app.handler", "rate(1 minute)", "$connect", "${self:nope}"]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.dictionaries(
        st.sampled_from(["Ref", "Fn::GetAtt", "Fn::Sub", "Type"]), st.just("x"), max_size=1
    ),
)


def _paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(document: Any, path: Path_, junk: Any) -> Any:
    if not path:
        return junk
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = junk
    return copy


SAM = load_document(FIXTURES / "sam_chat" / "template.yaml")
SLS = load_document(FIXTURES / "sls_relay" / "serverless.yml")


def _check(mutated: Any, write_to: Path, translate: Any) -> None:
    write_to.write_text(json.dumps(mutated))
    try:
        translate(write_to)
    except SourceError as exc:
        assert str(exc)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(list(_paths(SAM))[1:]), junk=JUNK)
def test_a_mutated_sam_template_translates_or_names_the_problem(path: Path_, junk: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sam"
        shutil.copytree(FIXTURES / "sam_chat", root, ignore=LOCAL_STATE)
        _check(_replace(SAM, path, junk), root / "template.json", translate_template)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(list(_paths(SLS))[1:]), junk=JUNK)
def test_a_mutated_serverless_file_translates_or_names_the_problem(path: Path_, junk: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sls"
        shutil.copytree(FIXTURES / "sls_relay", root, ignore=LOCAL_STATE)
        _check(
            _replace(SLS, path, junk),
            root / "serverless.json",
            lambda p: translate_serverless(p, env={}),
        )


TF_MAIN = (FIXTURES / "tf_relay" / "main.tf").read_text()
TF_ASSIGNMENTS = [
    i for i, line in enumerate(TF_MAIN.splitlines()) if re.match(r"^\s*\w+\s*=\s*[^{(\[]+$", line)
]
TF_JUNK = st.sampled_from(
    [
        "1",
        '"x"',
        "null",
        "[1]",
        "{ a = 1 }",
        "var.nope",
        "true",
        '"${var.stage}"',
        "-3",
        "aws_lambda_function.nope.arn",
        '"rate(1 minute)"',
        '"$connect"',
        "local.tags",
    ]
)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.sampled_from(TF_ASSIGNMENTS), junk=TF_JUNK)
def test_a_mutated_terraform_module_translates_or_names_the_problem(line: int, junk: str) -> None:
    lines = TF_MAIN.splitlines()
    name, _, _ = lines[line].partition("=")
    lines[line] = f"{name}= {junk}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tf"
        shutil.copytree(FIXTURES / "tf_relay", root, ignore=LOCAL_STATE)
        (root / "main.tf").write_text("\n".join(lines) + "\n")
        try:
            translate_terraform(root, env={})
        except SourceError as exc:
            assert str(exc)
