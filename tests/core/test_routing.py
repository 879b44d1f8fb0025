"""Route selection: API Gateway's ``$request.body.<path>`` rule, evaluated in the function."""

from __future__ import annotations

import pytest

from warmline.core.routing import (
    CONNECT,
    DEFAULT,
    DISCONNECT,
    RESERVED_ROUTES,
    RouteSelector,
    check_route_key,
)
from warmline.errors import ConfigurationError

RELAY_ROUTES = {"setup", "prompt", "interrupt", "dtmf"}


def test_the_reserved_route_keys_are_api_gateways() -> None:
    assert (CONNECT, DISCONNECT, DEFAULT) == ("$connect", "$disconnect", "$default")
    assert RESERVED_ROUTES == {"$connect", "$disconnect", "$default"}


@pytest.mark.parametrize(
    "key", ["prompt", "sendmessage", "a$b", "$connect", "$disconnect", "$default"]
)
def test_custom_and_reserved_route_keys_are_accepted_as_they_are(key: str) -> None:
    assert check_route_key(key) == key


@pytest.mark.parametrize("key", ["", None, 5, b"prompt"])
def test_a_route_key_that_is_not_a_non_empty_string_is_refused(key: object) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_route_key(key)  # type: ignore[arg-type]
    assert str(raised.value) == "a route key must be a non-empty string"


@pytest.mark.parametrize("key", ["$custom", "$", "$Default"])
def test_a_custom_route_key_starting_with_dollar_is_refused_naming_the_reserved_ones(
    key: str,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        check_route_key(key)
    assert str(raised.value) == (
        f"route key {key!r}: custom route keys must not start with '$' "
        "(reserved: $connect, $default, $disconnect)"
    )


def test_the_default_expression_is_conversationrelays_type_field() -> None:
    selector = RouteSelector()
    assert selector.expression == "$request.body.type"
    assert selector.select('{"type": "prompt"}', RELAY_ROUTES) == "prompt"


@pytest.mark.parametrize(
    "expression",
    ["$request.header.type", "$request.body.", "request.body.type", "type", "", "$request.body"],
)
def test_an_expression_that_is_not_a_body_path_is_refused(expression: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RouteSelector(expression)
    assert str(raised.value) == (
        f"route selection expression {expression!r} must look like "
        "'$request.body.<field>' (API Gateway's syntax)"
    )


@pytest.mark.parametrize(
    "expression", ["$request.body.a..b", "$request.body.a.", "$request.body..a"]
)
def test_an_expression_with_an_empty_part_is_refused(expression: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        RouteSelector(expression)
    assert str(raised.value) == f"route selection expression {expression!r} has an empty part"


def test_the_selected_value_picks_its_route() -> None:
    selector = RouteSelector("$request.body.type")
    assert selector.select('{"type": "dtmf", "digit": "1"}', RELAY_ROUTES) == "dtmf"
    # Any container of keys will do: a dict of handlers, a frozenset, a list.
    assert selector.select('{"type": "setup"}', {"setup": object()}) == "setup"
    assert selector.select('{"type": "setup"}', ["setup"]) == "setup"


@pytest.mark.parametrize(
    "body",
    [
        '{"type": "info"}',  # a value with no route
        '{"text": "hello"}',  # no such field
        "{}",
        '{"type": null}',
        "not json",
        "",
        None,
    ],
)
def test_anything_without_a_matching_route_falls_back_to_default(body: str | None) -> None:
    assert RouteSelector().select(body, RELAY_ROUTES) == DEFAULT == "$default"


@pytest.mark.parametrize("reserved", ["$connect", "$disconnect", "$default"])
def test_a_message_naming_a_reserved_route_goes_to_default(reserved: str) -> None:
    # $connect/$disconnect are lifecycle events, never selected by a message body.
    routes = RELAY_ROUTES | RESERVED_ROUTES
    assert RouteSelector().select(f'{{"type": "{reserved}"}}', routes) == DEFAULT


def test_a_nested_path_is_followed_field_by_field() -> None:
    selector = RouteSelector("$request.body.meta.action")
    assert selector.expression == "$request.body.meta.action"
    assert selector.evaluate('{"meta": {"action": "sendmessage"}}') == "sendmessage"
    assert selector.select('{"meta": {"action": "sendmessage"}}', {"sendmessage"}) == "sendmessage"
    assert selector.evaluate('{"meta": {"other": 1}}') is None
    assert selector.evaluate('{"action": "sendmessage"}') is None


@pytest.mark.parametrize(
    "body",
    [
        '{"meta": "action"}',  # a string that contains the next part
        '{"meta": ["action"]}',  # a list that contains it
        '{"meta": 7}',
        '{"meta": null}',
    ],
)
def test_a_path_through_a_non_object_finds_nothing(body: str) -> None:
    assert RouteSelector("$request.body.meta.action").evaluate(body) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"type": "prompt"}', "prompt"),
        ('{"type": 1}', "1"),
        ('{"type": 1.5}', "1.5"),
        ('{"type": true}', "true"),
        ('{"type": false}', "false"),
        ('{"type": ""}', ""),
        ('{"type": "caf\\u00e9"}', "café"),
    ],
)
def test_the_value_is_stringified_as_api_gateway_does(body: str, expected: str) -> None:
    assert RouteSelector().evaluate(body) == expected


@pytest.mark.parametrize(
    "body", ['{"type": null}', '{"type": {"a": 1}}', '{"type": []}', '{"type": ["prompt"]}']
)
def test_null_objects_and_arrays_select_nothing(body: str) -> None:
    assert RouteSelector().evaluate(body) is None


@pytest.mark.parametrize("lead", [" ", "\t", "\r", "\n", "\r\n  "])
def test_json_after_leading_whitespace_is_still_evaluated(lead: str) -> None:
    assert RouteSelector().evaluate(lead + '{"type": "prompt"}') == "prompt"


@pytest.mark.parametrize(
    "body",
    [
        "",
        None,
        '["prompt"]',  # JSON, but not an object
        '"prompt"',
        "7",
        "{not json",
        '{"type": "prompt"',  # truncated
        '{"a":' * 100_000 + "1" + "}" * 100_000,  # nested past the parser's recursion limit
    ],
)
def test_a_body_that_is_not_a_json_object_evaluates_to_nothing(body: str | None) -> None:
    assert RouteSelector().evaluate(body) is None
