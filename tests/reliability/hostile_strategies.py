"""Hypothesis strategies shared by the hostile-input tests: arbitrary JSON and mutated events.

Why a shared module: every parser is fed the same kinds of garbage (any JSON value, a
well-formed event with one field swapped for a value of the wrong type, deep nesting,
lone surrogates, huge strings), so a bug found for one parser is tried on all of them.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

#: Per-test example budget: the whole folder must stay well under a minute (HELPERS.md).
EXAMPLES = 150

#: Text including lone surrogates: JSON's ``\\ud800`` escapes decode to those, so an API
#: Gateway event read by ``json.loads`` can hold them.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\r\n", "../..", "%2F", "\u202e", "１２３"]),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: 10**400 is valid JSON and overflows float()
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)

#: Any JSON value, a few levels deep.
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(hostile_text, children, max_size=4),
    ),
    max_leaves=12,
)


def deep(levels: int, leaf: Any = 1) -> Any:
    """A value nested ``levels`` deep (alternating lists and objects), built iteratively."""
    value = leaf
    for i in range(levels):
        value = [value] if i % 2 else {"a": value}
    return value


def deep_json(levels: int) -> str:
    """The JSON text of :func:`deep`, built as text (``json.dumps`` would recurse)."""
    return '{"a":[' * (levels // 2) + "1" + "]}" * (levels // 2)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of ``value`` with the item at ``path`` set to ``new``."""
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return out


@st.composite
def mutated(draw: st.DrawFn, template: Any, max_changes: int = 3) -> Any:
    """``template`` with up to ``max_changes`` fields swapped for arbitrary JSON values."""
    value = copy.deepcopy(template)
    for _ in range(draw(st.integers(1, max_changes))):
        choices = paths(value)
        if not choices:
            break
        path = draw(st.sampled_from(choices))
        value = replaced(value, path, draw(json_values))
    return value
