"""The agent's decisions as tools a model can call: transfer to a person, end the call.

With ``[agent.llm] tools = true`` the request offers the model two tools (OpenAI
``tools``, Bedrock ``toolConfig``). A call it makes arrives in the stream, is read here
into a :class:`~warmline.agent.answerers.ToolCall` and checked like any frame from
outside: a known name and a JSON object of the declared arguments, each within its size.
A call that fails the check is a :class:`~warmline.agent.providers.errors.ProviderError`
(``kind="protocol"``): it is logged and the caller hears the agent's "don't know" line
with the offer of a person, never silence; the frames the agent sends are then checked
again as relay frames when they are built (``end``'s ``handoffData`` included). A valid
call ends the answer and the agent acts on it (``text`` + ``end``).

Formats:
- OpenAI chat completions: ``tools=[{"type": "function", "function": {"name",
  "description", "parameters": <JSON schema>}}]``; streamed as ``delta.tool_calls[i]``
  with the ``function.arguments`` JSON text in pieces (https://platform.openai.com/docs/api-reference/chat/create);
- Bedrock ConverseStream: ``toolConfig={"tools": [{"toolSpec": {"name", "description",
  "inputSchema": {"json": <JSON schema>}}}]}``; streamed as ``contentBlockStart.start.toolUse``
  then ``contentBlockDelta.delta.toolUse.input`` pieces
  (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html).
"""

from __future__ import annotations

import json
from typing import Any

from warmline.agent.answerers import ToolCall

__all__ = [
    "END_TOOL",
    "MAX_REASON_CHARS",
    "TOOLS",
    "TRANSFER_TOOL",
    "bedrock_tool_config",
    "openai_tools",
    "read_tool_call",
]

TRANSFER_TOOL = "transfer_to_person"
END_TOOL = "end_call"
#: Longest ``reason`` kept (it travels in ``handoffData``, bounded by the agent too).
MAX_REASON_CHARS = 200
#: Longest arguments text read (a model that streams more is not calling these tools).
MAX_ARGUMENTS_CHARS = 4096

_REASON = {
    "type": "object",
    "properties": {
        "reason": {
            "type": "string",
            "description": "Why, in a few words.",
            "maxLength": MAX_REASON_CHARS,
        }
    },
    "required": [],
}
#: name -> (description, JSON schema of the arguments).
TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    TRANSFER_TOOL: (
        "Transfer the caller to a human agent. Use it when the caller asks for a person, "
        "or accepts your offer of one.",
        _REASON,
    ),
    END_TOOL: (
        "End the call. Use it only when the caller says goodbye or has nothing more to ask.",
        _REASON,
    ),
}


def openai_tools() -> list[dict[str, Any]]:
    """The tools in OpenAI's ``tools`` form."""
    return [
        {"type": "function", "function": {"name": n, "description": d, "parameters": p}}
        for n, (d, p) in TOOLS.items()
    ]


def bedrock_tool_config() -> dict[str, Any]:
    """The tools in Bedrock Converse's ``toolConfig`` form."""
    return {
        "tools": [
            {"toolSpec": {"name": n, "description": d, "inputSchema": {"json": p}}}
            for n, (d, p) in TOOLS.items()
        ]
    }


def read_tool_call(name: str, arguments: str, call_id: str = "") -> ToolCall:
    """A streamed tool call, checked.

    Args:
        name: the tool's name.
        arguments: the arguments' JSON text, as streamed (empty: none).
        call_id: the provider's id for the call.

    Raises:
        ValueError: an unknown tool, arguments that are not a JSON object, or a
            ``reason`` that is not a string.
    """
    if name not in TOOLS:
        raise ValueError(f"unknown tool {name!r}")
    if len(arguments) > MAX_ARGUMENTS_CHARS:
        raise ValueError(f"tool arguments over {MAX_ARGUMENTS_CHARS} characters")
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError as exc:
        raise ValueError(f"tool arguments are not JSON: {arguments[:80]!r}") from exc
    if not isinstance(parsed, dict):
        raise ValueError("tool arguments are not a JSON object")
    reason = parsed.get("reason", "")
    if not isinstance(reason, str):
        raise ValueError("tool argument 'reason' is not a string")
    return ToolCall(name, {"reason": reason[:MAX_REASON_CHARS]}, call_id)
