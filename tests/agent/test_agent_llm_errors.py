"""An answerer that fails mid-answer never leaves the caller in silence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from warmline.adapters.aws_lambda import lambda_handler
from warmline.agent.answerers import AnswerRequest
from warmline.agent.app import AgentConfig, build_app
from warmline.agent.providers.errors import ProviderError
from warmline.connections.local import LocalConnections
from warmline.stores.memory import MemoryStore
from warmline.testing import websocket_event


class BrokenModel:
    """Says one chunk, then the connection to the model drops."""

    async def answer(self, request: AnswerRequest) -> AsyncIterator[str]:
        yield "Our support team "
        raise ProviderError("stream cut", provider="test", kind="stream")


def test_a_provider_error_mid_answer_becomes_a_spoken_apology() -> None:
    conns = LocalConnections()
    cid = conns.open("C1")
    app = build_app(answerer=BrokenModel(), store=MemoryStore(), connections=lambda r: conns)
    handler = lambda_handler(app)
    setup = {"type": "setup", "sessionId": "VX1", "callSid": "CA1", "customParameters": {}}
    ask = {"type": "prompt", "voicePrompt": "What are your support hours?", "last": True}
    for frame in (setup, ask):
        handler(websocket_event("MESSAGE", body=json.dumps(frame), connection_id=cid), None)
    app.close()
    frames = [json.loads(p) for p in conns.sent(cid)]
    greeting_end = next(i for i, f in enumerate(frames) if f.get("last"))
    said = "".join(f.get("token", "") for f in frames[greeting_end + 1 :])
    assert said.startswith("Our support team ")
    assert said == "Our support team " + AgentConfig().dont_know
    assert frames[-1]["last"] is True
