"""warmline.agent.providers: streaming LLM answerers and embeddings over HTTP.

- :mod:`.openai`: ``OpenAIChatAnswerer`` (chat completions streamed as Server-Sent
  Events, any OpenAI-compatible base URL) and ``OpenAIEmbeddings`` (``/embeddings``);
- :mod:`.bedrock`: ``BedrockConverseAnswerer`` (ConverseStream, AWS event stream, SigV4
  without botocore) and ``BedrockEmbeddings`` (Titan through InvokeModel);
- :mod:`.fallback`: ``ApologizingAnswerer``, a failure spoken as an apology;
- :mod:`.config`: ``answerer_from_config`` for ``[agent.llm]`` and the environment;
- :mod:`.errors`: ``ProviderError``, the one error all of them raise;
- :mod:`.sse`, :mod:`.eventstream`: sans-I/O decoders of the two wire formats;
- :mod:`.transport`, :mod:`.streaming`: ``http.client`` streamed from a thread, budgets.

Only the standard library is used (no extra is needed); nothing is imported here: names
resolve on first use (PEP 562), so ``import warmline.agent.providers`` costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warmline.agent.providers.bedrock import BedrockConverseAnswerer, BedrockEmbeddings
    from warmline.agent.providers.config import answerer_from_config
    from warmline.agent.providers.errors import ProviderError
    from warmline.agent.providers.fallback import ApologizingAnswerer
    from warmline.agent.providers.openai import OpenAIChatAnswerer, OpenAIEmbeddings

__all__ = [
    "ApologizingAnswerer",
    "BedrockConverseAnswerer",
    "BedrockEmbeddings",
    "OpenAIChatAnswerer",
    "OpenAIEmbeddings",
    "ProviderError",
    "answerer_from_config",
]

_WHERE = {
    "ApologizingAnswerer": "fallback",
    "BedrockConverseAnswerer": "bedrock",
    "BedrockEmbeddings": "bedrock",
    "OpenAIChatAnswerer": "openai",
    "OpenAIEmbeddings": "openai",
    "ProviderError": "errors",
    "answerer_from_config": "config",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
