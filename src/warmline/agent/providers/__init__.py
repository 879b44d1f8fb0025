"""warmline.agent.providers: streaming LLM answerers and embeddings over HTTP.

- :mod:`.openai`: ``OpenAIChatAnswerer`` (chat completions streamed as Server-Sent
  Events, any OpenAI-compatible base URL) and ``OpenAIEmbeddings`` (``/embeddings``);
- :mod:`.bedrock`: ``BedrockConverseAnswerer`` (ConverseStream, AWS event stream, SigV4
  without botocore) and ``BedrockEmbeddings`` (Titan through InvokeModel);
- :mod:`.fallback`: ``ApologizingAnswerer``, a failure spoken as an apology;
- :mod:`.config`: ``answerer_from_config`` for ``[agent.llm]`` and the environment;
- :mod:`.errors`: ``ProviderError``, the one error all of them raise;
- :mod:`.sse`, :mod:`.eventstream`: sans-I/O decoders of the two wire formats;
- :mod:`.transport`, :mod:`.streaming`: :mod:`warmline.http1` streamed from a thread, budgets.

Only the standard library is used (no extra is needed); nothing is imported here: names
resolve on first use (PEP 562), so ``import warmline.agent.providers`` costs nothing.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False

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


__getattr__, __dir__ = lazy_names(
    __name__, {k: f"warmline.agent.providers.{v}" for k, v in _WHERE.items()}, globals(), __all__
)
