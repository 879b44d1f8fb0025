"""The WebSocket API's authorizers and route selection expressions in ``warmline.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from warmline.config import AuthorizerConfig, RouteConfig, parse_config
from warmline.config.selection import parse_selection
from warmline.errors import ConfigurationError

TOML = """
[functions.ws]
handler = "app.handler"

[functions.auth]
handler = "auth.handler"

[websocket.routes]
"$connect" = { function = "ws", authorizer = "token" }
"$default" = "ws"

[websocket.authorizers.token]
function = "auth"
identity_sources = ["route.request.querystring.token", "route.request.header.Auth"]
"""


def test_an_authorizer_is_declared_and_attached_to_connect(tmp_path: Path) -> None:
    config = parse_config(tomllib.loads(TOML), base_dir=tmp_path)
    assert config.websocket.routes["$connect"] == RouteConfig(
        "$connect", "ws", False, "CUSTOM", "token"
    )
    assert config.websocket.routes["$default"].authorization == "NONE"
    assert config.websocket.authorizers == {
        "token": AuthorizerConfig(
            "token",
            "auth",
            ("route.request.querystring.token", "route.request.header.Auth"),
        )
    }


def test_aws_iam_on_connect_needs_no_authorizer(tmp_path: Path) -> None:
    data = tomllib.loads(TOML)
    data["websocket"]["routes"]["$connect"] = {"function": "ws", "authorization": "aws_iam"}
    route = parse_config(data, base_dir=tmp_path).websocket.routes["$connect"]
    assert (route.authorization, route.authorizer) == ("AWS_IAM", None)


def _with(route: Any = None, authorizer: Any = None) -> dict[str, Any]:
    data = tomllib.loads(TOML)
    if route is not None:
        data["websocket"]["routes"].update(route)
    if authorizer is not None:
        data["websocket"]["authorizers"]["token"] = authorizer
    return data


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        # AWS authorizes $connect only (docs/protocols.md §2.1, §8.6)
        (_with({"$default": {"function": "ws", "authorizer": "token"}}), "routes.$default", "only"),
        (_with({"x": {"function": "ws", "authorization": "AWS_IAM"}}), "routes.x", "only"),
        (_with({"$connect": {"function": "ws", "authorizer": "nope"}}), "authorizer", "nope"),
        (_with({"$connect": {"function": "ws", "authorization": "JWT"}}), "authorization", "NONE"),
        (
            _with({"$connect": {"function": "ws", "authorization": "CUSTOM"}}),
            "routes.$connect",
            "authorizer",
        ),
        (_with(authorizer={"function": "missing"}), "authorizers.token.function", "missing"),
        (
            _with(authorizer={"function": "auth", "identity_sources": ["stageVariables.x"]}),
            "identity_sources",
            "route.request.header",
        ),
        (_with(authorizer={"function": "auth", "cache": 300}), "authorizers.token.cache", ""),
    ],
)
def test_bad_authorization_names_the_key(
    tmp_path: Path, data: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_config(data, base_dir=tmp_path)
    assert key in str(info.value) and words in str(info.value)


@pytest.mark.parametrize(
    ("expression", "parts"),
    [
        ("$request.body.action", (("action",),)),
        ("${request.body.action}", (("action",),)),
        ("$request.body.meta.kind", (("meta", "kind"),)),
        ("$request.body.items[0].type", (("items", 0, "type"),)),
        (
            "${request.body.service}/${request.body.action}",
            (("service",), "/", ("action",)),
        ),
        ("${request.body.version}-beta", (("version",), "-beta")),
        ("action", ("action",)),
        ("\\$default", ("$default",)),
    ],
)
def test_documented_selection_expressions_parse(expression: str, parts: tuple[Any, ...]) -> None:
    assert parse_selection(expression) == parts


@pytest.mark.parametrize(
    "expression",
    ["", "$request.header.x", "${request.body.action", "${context.routeKey}", "$default", "$"],
)
def test_other_selection_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_selection(expression)


def test_a_template_expression_is_accepted_in_warmline_toml(tmp_path: Path) -> None:
    data = tomllib.loads(TOML)
    data["websocket"]["route_selection_expression"] = "${request.body.a}/${request.body.b}"
    config = parse_config(data, base_dir=tmp_path)
    assert config.websocket.selection == (("a",), "/", ("b",))
    assert config.websocket.selection_path == ()
