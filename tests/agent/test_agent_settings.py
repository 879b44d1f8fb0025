"""The [agent] table: read from warmline.toml or given to build_app, checked at start; the
worker it names reaches the deploy plan; tool calls are checked like frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from warmline.agent.app import build_app
from warmline.agent.settings import AgentConfig, load_agent_config, offload_worker
from warmline.agent.tools import bedrock_tool_config, openai_tools, read_tool_call
from warmline.config.deploy import load_project
from warmline.core.limits import INTEGRATION_TIMEOUT_S
from warmline.errors import ConfigurationError

FUNCTIONS = """
[functions.agent]
handler = "app.handler"
[functions.worker]
handler = "app.handler"
"""


def test_a_file_without_an_agent_table_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "warmline.toml"
    path.write_text(FUNCTIONS)
    assert load_agent_config(path) == AgentConfig()
    assert load_agent_config(tmp_path / "missing.toml", top_k=5).top_k == 5


def test_the_table_the_limits_and_keyword_overrides(tmp_path: Path) -> None:
    path = tmp_path / "warmline.toml"
    path.write_text(
        FUNCTIONS
        + '[agent]\noffload = "always"\nworker = "worker"\ntop_k = 2\n'
        + '[agent.llm]\nprovider = "offline"\nanswer_timeout_s = 40\n'
        + "[limits]\nintegration_timeout_s = 3\n"
    )
    config = load_agent_config(path, top_k=4)
    assert (config.offload, config.worker, config.top_k) == ("always", "worker", 4)
    assert config.integration_timeout_s == 3.0 and config.answer_budget_s() == 40.0
    assert load_agent_config(tmp_path / "none.toml").integration_timeout_s == INTEGRATION_TIMEOUT_S


def test_build_app_reads_the_file_beside_its_caller(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text('[agent]\ncompany = "Acme"\ntop_k = 2\n')
    module = tmp_path / "caller.py"
    module.write_text(
        "from warmline.agent.app import build_app\napp = build_app(top_k=5, name='caller')\n"
    )
    namespace: dict[str, Any] = {"__file__": str(module)}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    app = namespace["app"]
    try:
        assert app.agent.config.company == "Acme" and app.agent.config.top_k == 5
        assert "worker" not in app._special  # offload never: no worker registered
    finally:
        app.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"offload": "auto"}, "needs worker"),
        ({"offload": "later", "worker": "w"}, "offload must be one of"),
        ({"top_k": 0}, "top_k"),
        ({"llm": "gpt"}, r"\[agent.llm\] must be a table"),
        ({"llm": {"provider": "openai", "tools": "yes"}}, "tools"),
        ({"llm": {"answer_timeout_s": 0}}, "answer_timeout_s must be positive"),
        ({"llm": {"modle": "x"}}, "unknown"),
        ({"integration_timeout_s": 3}, "unknown"),
    ],
)
def test_bad_settings_are_refused_with_their_name(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AgentConfig.from_mapping(table)


def test_the_worker_named_by_agent_is_granted_by_deploy(tmp_path: Path) -> None:
    path = tmp_path / "warmline.toml"
    path.write_text(FUNCTIONS + '[agent]\noffload = "auto"\nworker = "worker"\n')
    assert load_project(path).deploy.worker == "worker"
    assert offload_worker({"offload": "never", "worker": "worker"}) is None
    path.write_text(FUNCTIONS + '[agent]\noffload = "auto"\nworker = "nope"\n')
    with pytest.raises(ConfigurationError, match="agent.worker"):
        load_project(path)
    with pytest.raises(ConfigurationError):
        build_app(offload="auto", config_file=str(tmp_path / "none.toml"))


def test_tool_calls_are_checked_like_frames() -> None:
    call = read_tool_call("transfer_to_person", '{"reason": "' + "x" * 500 + '"}', "c1")
    assert call.name == "transfer_to_person" and len(call.arguments["reason"]) == 200
    assert read_tool_call("end_call", "").arguments == {"reason": ""}
    for name, arguments in (
        ("format_disk", "{}"),
        ("end_call", "{"),
        ("end_call", '"bye"'),
        ("end_call", '{"reason": ["a"]}'),
        ("end_call", "{" + " " * 5000 + "}"),
    ):
        with pytest.raises(ValueError):
            read_tool_call(name, arguments)
    names = [t["function"]["name"] for t in openai_tools()]
    assert names == [t["toolSpec"]["name"] for t in bedrock_tool_config()["tools"]]
