"""Choose a provider from configuration: a ``[agent.llm]`` table and the environment.

Keys are read from the environment only (named by ``api_key_env``), never from
``warmline.toml``, which is committed. Environment variables override the table so a
deployed stack can switch models without a rebuild::

    [agent.llm]
    provider = "openai"              # or "bedrock"; WARMLINE_LLM_PROVIDER
    base_url = "http://localhost:11434/v1"   # WARMLINE_LLM_BASE_URL
    model = "llama3.2"               # WARMLINE_LLM_MODEL (Bedrock: the model id)
    api_key_env = "OPENAI_API_KEY"   # where the key is (default WARMLINE_LLM_API_KEY)
    region = "us-east-1"             # Bedrock; default AWS_REGION
    timeout_s = 20
    first_token_timeout_s = 5
    max_tokens = 300
    temperature = 0.2
    apologize = true                 # wrap in ApologizingAnswerer (default)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    from warmline.agent.answerers import Answerer

__all__ = ["PROVIDERS", "SETTINGS", "answerer_from_config"]

#: Provider names accepted in ``provider``.
PROVIDERS = ("openai", "bedrock")
#: Every ``[agent.llm]`` key: ``(type, default, what it does)``, as
#: :data:`warmline.config.keys.TABLES` lists the other tables (this module runs on Lambda,
#: so the table lives here and the registry includes it).
SETTINGS: Mapping[str, tuple[str, str, str]] = {
    "provider": ("string", "-", '`"openai"` or `"bedrock"`; none: no LLM (WARMLINE_LLM_PROVIDER)'),
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
    unknown = set(settings) - _KNOWN
    if unknown:
        raise ConfigurationError(f"unknown [agent.llm] settings: {', '.join(sorted(unknown))}")
    for key, var in _ENV.items():
        if env.get(var):
            settings[key] = env[var]
    provider = settings.get("provider")
    if not provider:
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
    if "company" in settings:
        options["company"] = str(settings["company"])
    answerer: Answerer
    if provider == "openai":
        from warmline.agent.providers.openai import DEFAULT_BASE_URL, OpenAIChatAnswerer

        key_env = str(settings.get("api_key_env") or "WARMLINE_LLM_API_KEY")
        answerer = OpenAIChatAnswerer(
            str(settings.get("base_url") or DEFAULT_BASE_URL),
            env.get(key_env, ""),
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


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigurationError(f"[agent.llm] {key} must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"[agent.llm] {key} must be a number: {value!r}") from exc
    return number
