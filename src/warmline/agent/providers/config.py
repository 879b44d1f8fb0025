"""Choose a provider from configuration: a ``[agent.llm]`` table and the environment.

Keys are read from the environment only (named by ``api_key_env``), never from
``warmline.toml``, which is committed. Environment variables override the table so a
deployed stack can switch models without a rebuild::

    [agent.llm]
    provider = "openai"              # or "bedrock", "offline"; WARMLINE_LLM_PROVIDER
    base_url = "http://localhost:11434/v1"   # WARMLINE_LLM_BASE_URL
    model = "llama3.2"               # WARMLINE_LLM_MODEL (Bedrock: the model id)
    api_key_env = "OPENAI_API_KEY"   # where the key is (default WARMLINE_LLM_API_KEY)
    region = "us-east-1"             # Bedrock; default AWS_REGION
    timeout_s = 20
    first_token_timeout_s = 5
    max_tokens = 300
    temperature = 0.2
    system_prompt = "..."            # instructions; {company} is filled in
    answer_timeout_s = 90            # the whole answer's budget (the agent enforces it)
    tools = true                     # handoff / end-call as tool calls the model may make
    apologize = true                 # wrap in ApologizingAnswerer (default)

``provider = "offline"`` (or no provider) keeps the offline extractive answerer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.agent.answerers import Answerer

__all__ = [
    "DEFAULT_ANSWER_TIMEOUT_S",
    "PROVIDERS",
    "SETTINGS",
    "answerer_from_config",
    "check_llm_table",
]

#: Provider names accepted in ``provider``.
PROVIDERS = ("offline", "openai", "bedrock")
#: The whole-answer budget when ``answer_timeout_s`` is not set.
DEFAULT_ANSWER_TIMEOUT_S = 90.0
#: Every ``[agent.llm]`` key: ``(type, default, what it does)``, as
#: :data:`warmline.config.keys.TABLES` lists the other tables (this module runs on Lambda,
#: so the table lives here and the registry includes it).
SETTINGS: Mapping[str, tuple[str, str, str]] = {
    "provider": (
        "string",
        '"offline"',
        '`"offline"`, `"openai"` or `"bedrock"` (WARMLINE_LLM_PROVIDER)',
    ),
    "base_url": ("string", "OpenAI's", "an OpenAI-compatible API (WARMLINE_LLM_BASE_URL)"),
    "model": ("string", "required", "the model name or Bedrock model id (WARMLINE_LLM_MODEL)"),
    "api_key_env": ("string", '"WARMLINE_LLM_API_KEY"', "the variable holding the API key"),
    "region": ("string", "AWS_REGION", "Bedrock's region (WARMLINE_LLM_REGION)"),
    "endpoint_url": ("string", "-", "another Bedrock endpoint (a VPC endpoint, a test server)"),
    "max_tokens": ("integer", "300", "longest answer in tokens"),
    "timeout_s": ("number", "20", "seconds for the whole answer"),
    "first_token_timeout_s": ("number", "5", "seconds to the first token"),
    "temperature": ("number", "0.2", "sampling temperature"),
    "apologize": ("boolean", "true", "say a short apology when the provider fails"),
    "company": ("string", '"Brightwave Internet"', "the company named in the system prompt"),
    "system_prompt": (
        "string",
        "the agent's",
        "the model's instructions; `{company}` is filled in",
    ),
    "answer_timeout_s": ("number", "90", "the whole-answer budget the agent enforces"),
    "tools": ("boolean", "false", "offer handoff and end-call as tool calls the model can make"),
}
_NUMBERS = ("timeout_s", "first_token_timeout_s", "temperature")
_KNOWN = frozenset(SETTINGS)
_ENV = {
    "provider": "WARMLINE_LLM_PROVIDER",
    "base_url": "WARMLINE_LLM_BASE_URL",
    "model": "WARMLINE_LLM_MODEL",
    "region": "WARMLINE_LLM_REGION",
}


def answerer_from_config(
    table: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Answerer | None:
    """The configured LLM answerer, or None when no provider is configured.

    Args:
        table: the ``[agent.llm]`` table (or None).
        environ: default ``os.environ``.

    Raises:
        ConfigurationError: an unknown key or provider, a missing model, a bad value.
    """
    env = os.environ if environ is None else environ
    settings = dict(table or {})
    check_llm_table(settings)
    for key, var in _ENV.items():
        if env.get(var):
            settings[key] = env[var]
    provider = settings.get("provider")
    if not provider or provider == "offline":
        return None
    if provider not in PROVIDERS:
        raise ConfigurationError(f"[agent.llm] provider must be one of {PROVIDERS}: {provider!r}")
    model = settings.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigurationError("[agent.llm] model is required (or WARMLINE_LLM_MODEL)")
    options: dict[str, Any] = {}
    for key in _NUMBERS:
        if key in settings:
            options[key] = _number(key, settings[key])
    if "max_tokens" in settings:
        options["max_tokens"] = int(_number("max_tokens", settings["max_tokens"]))
    for key in ("company", "system_prompt"):
        if key in settings:
            options[key] = str(settings[key])
    if settings.get("tools"):
        options["tools"] = True
    answerer: Answerer
    if provider == "openai":
        from warmline.agent.providers.openai import DEFAULT_BASE_URL, OpenAIChatAnswerer
        from warmline.secrets import secret

        # the key itself, or (deployed) its SSM parameter / secret's name: warmline.secrets
        key_env = str(settings.get("api_key_env") or "WARMLINE_LLM_API_KEY")
        answerer = OpenAIChatAnswerer(
            str(settings.get("base_url") or DEFAULT_BASE_URL),
            secret(key_env, env) or "",
            model,
            **options,
        )
    else:
        from warmline.agent.providers.bedrock import BedrockConverseAnswerer

        answerer = BedrockConverseAnswerer(
            model,
            settings.get("region") or None,
            endpoint_url=settings.get("endpoint_url") or None,
            **options,
        )
    if settings.get("apologize", True):
        from warmline.agent.providers.fallback import ApologizingAnswerer

        return ApologizingAnswerer(answerer)
    return answerer


def check_llm_table(table: Mapping[str, Any]) -> None:
    """Check an ``[agent.llm]`` table without building anything (nothing is imported).

    Raises:
        ConfigurationError: an unknown key or provider, or a value of the wrong type.
    """
    unknown = set(table) - _KNOWN
    if unknown:
        raise ConfigurationError(f"unknown [agent.llm] settings: {', '.join(sorted(unknown))}")
    provider = table.get("provider")
    if provider is not None and provider not in PROVIDERS:
        raise ConfigurationError(f"[agent.llm] provider must be one of {PROVIDERS}: {provider!r}")
    for key in (*_NUMBERS, "max_tokens", "answer_timeout_s"):
        if key in table:
            _number(key, table[key])
    if "answer_timeout_s" in table and _number("answer_timeout_s", table["answer_timeout_s"]) <= 0:
        raise ConfigurationError("[agent.llm] answer_timeout_s must be positive")
    for key in ("tools", "apologize"):
        if key in table and not isinstance(table[key], bool):
            raise ConfigurationError(f"[agent.llm] {key} must be true or false")


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigurationError(f"[agent.llm] {key} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"[agent.llm] {key} must be a number: {value!r}") from exc
    return number
