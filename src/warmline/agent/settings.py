"""The agent's settings: the ``[agent]`` table of ``warmline.toml``, or ``build_app`` keywords.

One set of names, two ways in: every key of the table is also a keyword argument of
:func:`warmline.agent.app.build_app` (``build_app(offload="auto", top_k=4)``), and
:class:`AgentConfig` holds the result::

    [agent]
    company = "Brightwave Internet"   # lines: greeting, dont_know, handoff, goodbye, ...
    top_k = 3                         # knowledge-base passages put into the model's prompt
    offload = "auto"                  # "auto" | "always" | "never" (long answers, below)
    worker = "worker"                 # the [functions] entry that answers offloaded turns

    [agent.llm]                       # the model (agent/providers/config.py)
    provider = "openai"               # "offline" (default), "openai", "bedrock"
    model = "gpt-4o-mini"
    temperature = 0.2
    system_prompt = "..."             # {company} is filled in
    first_token_timeout_s = 5         # the first-token budget
    answer_timeout_s = 90             # the whole-answer budget
    tools = true                      # handoff / end-call as tool calls

``offload`` decides where a model's answer streams from. A WebSocket route's integration
ends at 29 s (docs/protocols.md §2.5) and API Gateway then sends the caller a frame Twilio
counts as malformed (§2.6), so no mode lets a route run that long:

- ``never``: the route streams the answer and stops it with an apology at
  :data:`NEVER_SHARE` of the integration timeout (or the whole-answer budget, if sooner);
- ``auto``: the route streams while the answer fits in :data:`AUTO_SHARE` of the
  integration timeout, then hands the rest to ``worker``, which continues it;
- ``always``: every model answer streams from ``worker``.

The integration timeout is API Gateway's 29 s unless ``[limits] integration_timeout_s``
of the same file shortens it (the emulator's tests do, keeping the ratios).

Where the file is: ``build_app(config_file=...)``, else the ``warmline.toml`` beside the
module that calls ``build_app`` (on Lambda the task root, under ``warmline dev`` the
function's code directory, under ``warmline serve`` the app's folder). The file is parsed
only when it has an ``[agent`` or ``[limits`` table, so an app without one pays a file
read, not the TOML parser; with one, ``tomllib`` adds 4.3 ms to the cold start (best of
11 fresh interpreters after the Lambda adapter's imports, this project's machine,
2026-12), paid once, at init, so a bad setting fails the init with its name rather than a
call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from warmline.agent.history import HISTORY_LIMIT
from warmline.agent.intents import DEFAULT_MENU, Menu, MenuOption
from warmline.core.limits import INTEGRATION_TIMEOUT_S
from warmline.errors import ConfigurationError

__all__ = [
    "AUTO_SHARE",
    "NEVER_SHARE",
    "OFFLOAD_MODES",
    "SETTINGS",
    "AgentConfig",
    "load_agent_config",
    "offload_worker",
]

#: Where a model's answer may stream from (see the module docstring).
OFFLOAD_MODES = ("auto", "always", "never")
#: ``auto`` hands over at this share of the integration timeout (20.3 s of 29 s): the
#: route then has seconds to queue the rest and return, even when the queue retries.
AUTO_SHARE = 0.7
#: ``never`` stops the answer with an apology at this share (26.1 s of 29 s).
NEVER_SHARE = 0.9
#: Every ``[agent]`` key: ``(type, default, what it does)``, listed by the configuration
#: reference (:data:`warmline.config.keys.TABLES` includes it: the agent runs on Lambda and
#: may not import that package). :class:`AgentConfig` has one field per key, plus the
#: integration timeout, which comes from ``[limits]``.
SETTINGS: Mapping[str, tuple[str, str, str]] = {
    "company": ("string", '"Brightwave Internet"', "the company the lines and prompt name"),
    "greeting": ("string", "the sample's", "said when the call starts"),
    "dont_know": ("string", "the sample's", "said when no answer is found; offers a person"),
    "handoff": ("string", "the sample's", "said before the call goes to a person"),
    "goodbye": ("string", "the sample's", "said before the call ends"),
    "declined": ("string", "the sample's", "said when the caller turns down a person"),
    "unknown_key": ("string", "the sample's", "said for a key that is not on the menu"),
    "menu": ("table", "the sample's", "the DTMF menu: digit -> `{name, label, say, handoff}`"),
    "history_limit": ("integer", str(HISTORY_LIMIT), "turns kept in the session"),
    "index_path": ("string", "the shipped sample", "the knowledge-base index"),
    "min_score": ("number", "the retriever's", "the retrieval threshold"),
    "top_k": ("integer", "3", "passages put into the model's prompt, with their ids"),
    "llm": ("table", "-", "the model, `[agent.llm]`; none: the offline answerer"),
    "offload": ("string", '"never"', '`"auto"`, `"always"` or `"never"`: where answers stream'),
    "worker": ("string", "-", "the function answering offloaded turns"),
}
_LINES = ("company", "greeting", "dont_know", "handoff", "goodbye", "declined", "unknown_key")


class AgentConfig(NamedTuple):
    """What the agent says, how it decides, and where its answers come from.

    Attributes:
        company: used in LLM prompts.
        greeting: said on ``setup``; empty when the TwiML ``welcomeGreeting`` says it.
        dont_know: said below the score threshold; it must offer a person (a "yes" to
            it hands off).
        handoff: said before ``end`` when transferring to a person.
        goodbye: said before ``end`` when the caller is done.
        declined: said when the caller turns down the offer of a person.
        unknown_key: said for a key that is not on the menu (the menu follows).
        menu: the DTMF menu.
        history_limit: turns kept in the session.
        index_path: the knowledge-base index (default: the shipped sample).
        min_score: the retrieval threshold (default: the retriever's).
        top_k: passages retrieved and put into the model's prompt, with their ids.
        llm: the ``[agent.llm]`` table (None: the environment's ``WARMLINE_LLM_*``, else
            the offline extractive answerer).
        offload: ``auto``, ``always`` or ``never`` (see the module docstring).
        worker: the function answering offloaded turns (``WARMLINE_WORKER_FUNCTION``,
            set by ``warmline deploy render``, names it on AWS).
        integration_timeout_s: the route's limit (``[limits]``; API Gateway's 29 s).
    """

    company: str = "Brightwave Internet"
    greeting: str = (
        "Hi, thanks for calling Brightwave Internet. I'm the automated assistant. "
        "How can I help you today?"
    )
    dont_know: str = (
        "Sorry, I don't have an answer to that. Would you like me to connect you to a person?"
    )
    handoff: str = "Okay, I'm connecting you to a person now. Please hold."
    goodbye: str = "Thanks for calling Brightwave. Goodbye!"
    declined: str = "Okay. What else can I help you with?"
    unknown_key: str = "Sorry, that key isn't on the menu."
    menu: Menu = DEFAULT_MENU
    history_limit: int = HISTORY_LIMIT
    index_path: str | None = None
    min_score: float | None = None
    top_k: int = 3
    llm: Mapping[str, Any] | None = None
    offload: str = "never"
    worker: str | None = None
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AgentConfig:
        """A config from a ``[agent]`` table (warmline.toml); unset keys keep defaults.

        ``menu`` is a table of digit -> ``{name, label, say, handoff}``.

        Raises:
            ConfigurationError: an unknown key or a value of the wrong type.
        """
        unknown = set(data) - set(SETTINGS)
        if unknown:
            raise ConfigurationError(f"unknown [agent] settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            values[key] = _value(key, value)
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        """Refuse settings that do not fit together.

        Raises:
            ConfigurationError: offload without a worker, or a bad ``[agent.llm]`` table.
        """
        if self.offload not in OFFLOAD_MODES:
            raise ConfigurationError(
                f"[agent] offload must be one of {OFFLOAD_MODES}, not {self.offload!r}"
            )
        if self.offload != "never" and not self.worker:
            raise ConfigurationError(
                f"[agent] offload = {self.offload!r} needs worker = '<function name>'"
            )
        if self.llm is not None:
            from warmline.agent.providers.config import check_llm_table

            check_llm_table(self.llm)

    def answer_budget_s(self) -> float:
        """The whole-answer budget (``[agent.llm] answer_timeout_s``)."""
        from warmline.agent.providers.config import DEFAULT_ANSWER_TIMEOUT_S

        value = (self.llm or {}).get("answer_timeout_s", DEFAULT_ANSWER_TIMEOUT_S)
        return float(value)


def _value(key: str, value: Any) -> Any:
    """One ``[agent]`` value, checked."""
    if key == "menu":
        return _menu_from(value)
    if key in ("history_limit", "top_k"):
        low = 2 if key == "history_limit" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigurationError(f"[agent] {key} must be an integer >= {low}")
        return value
    if key == "min_score":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigurationError("[agent] min_score must be a number")
        return float(value)
    if key == "llm":
        if not isinstance(value, Mapping):
            raise ConfigurationError("[agent.llm] must be a table")
        return dict(value)
    if not isinstance(value, str):
        raise ConfigurationError(f"[agent] {key} must be a string")
    return value


def _menu_from(value: Any) -> Menu:
    if not isinstance(value, Mapping):
        raise ConfigurationError("[agent.menu] must be a table of digit -> option")
    options: dict[str, MenuOption] = {}
    for digit, raw in value.items():
        if digit not in tuple("0123456789*#") or not isinstance(raw, Mapping):
            raise ConfigurationError(f"[agent.menu] {digit!r}: a key 0-9, * or # with a table")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"[agent.menu] {digit!r}: name is required")
        options[digit] = MenuOption(
            name,
            str(raw.get("label", name)),
            str(raw.get("say", "")),
            bool(raw.get("handoff", False)),
        )
    return Menu(options)


def offload_worker(agent: Any) -> str | None:
    """The worker function an ``[agent]`` table sends turns to (None: it offloads nothing).

    ``warmline deploy render`` and the emulator's IAM read it, so the worker is invoked
    with the permission and the name the template gives it.

    Raises:
        ConfigurationError: a bad table.
    """
    if not isinstance(agent, Mapping):
        return None
    config = AgentConfig.from_mapping(agent)
    return config.worker if config.offload != "never" else None


def load_agent_config(path: str | os.PathLike[str], **overrides: Any) -> AgentConfig:
    """The ``[agent]`` table of ``path`` (a ``warmline.toml``), with ``overrides`` on top.

    A missing file, or one without an ``[agent`` table, gives the defaults (plus the
    overrides).

    Raises:
        ConfigurationError: an unreadable file, bad TOML or a bad setting.
    """
    table: dict[str, Any] = {}
    timeout = INTEGRATION_TIMEOUT_S
    try:
        with open(path, encoding="utf-8") as fh:  # no pathlib: this runs at a cold start
            text = fh.read()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    if "[agent" in text or "[limits" in text:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
        raw = data.get("agent", {})
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"{path}: [agent] must be a table")
        table = dict(raw)
        limit = data.get("limits", {}).get("integration_timeout_s", timeout)
        if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
            timeout = float(limit)
    table.update(overrides)
    config = AgentConfig.from_mapping(table)
    return config._replace(integration_timeout_s=timeout)
