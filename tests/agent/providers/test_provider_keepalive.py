"""Kept-alive connections: reused across answers, never when the server has closed them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from provider_servers import Handler, scripted_server, sse_answer

from warmline.agent.providers.openai import OpenAIChatAnswerer, OpenAIEmbeddings
from warmline.agent.providers.transport import close_idle_connections

QUESTION = [{"role": "user", "content": "q"}]


@pytest.fixture(autouse=True)
def _close_idle() -> Iterator[None]:
    close_idle_connections()
    yield
    close_idle_connections()  # before the server joins its handler threads


def sse_respond(h: Handler) -> None:
    """The whole chunked body in one write: the end of the body comes with ``[DONE]``."""
    h.head(200, {"Content-Type": "text/event-stream"})
    body = b"".join(
        f"{len(d):x}\r\n".encode() + d + b"\r\n" for d in sse_answer(["Kept ", "alive."])
    )
    h.wfile.write(body + b"0\r\n\r\n")


def collect(stream: AsyncIterator[str]) -> list[str]:
    async def run() -> list[str]:
        return [chunk async for chunk in stream]

    return asyncio.run(run())


def test_answers_and_embeddings_reuse_one_connection() -> None:
    def respond(h: Handler) -> None:
        if h.path.endswith("/embeddings"):
            h.whole(200, json.dumps({"data": [{"index": 0, "embedding": [1.0]}]}).encode())
        else:
            sse_respond(h)

    with scripted_server(respond, keep_alive=True) as server:
        llm = OpenAIChatAnswerer(server.url, "k" * 20, "m")
        assert collect(llm.stream(QUESTION)) == ["Kept ", "alive."]
        assert collect(llm.stream(QUESTION)) == ["Kept ", "alive."]
        assert OpenAIEmbeddings(server.url, "k" * 20, "e").embed(["x"]) == [[1.0]]
        close_idle_connections()
    ports = {r.peer_port for r in server.requests}
    assert len(server.requests) == 3 and len(ports) == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    closed = threading.Event()

    def respond(h: Handler) -> None:
        sse_respond(h)
        if h.served == 1 and not closed.is_set():
            h.close_connection = True  # said keep-alive, closes anyway
            closed.set()

    with scripted_server(respond, keep_alive=True) as server:
        llm = OpenAIChatAnswerer(server.url, "", "m")
        assert collect(llm.stream(QUESTION)) == ["Kept ", "alive."]
        assert closed.wait(5)
        assert collect(llm.stream(QUESTION)) == ["Kept ", "alive."]
        close_idle_connections()
    assert len(server.requests) == 2
    assert server.requests[0].peer_port != server.requests[1].peer_port


def test_a_reused_connection_dropped_without_an_answer_is_retried_once() -> None:
    def respond(h: Handler) -> None:
        if h.served == 2:
            h.close_connection = True  # read the request, then hang up: no answer
            return
        sse_respond(h)

    with scripted_server(respond, keep_alive=True) as server:
        llm = OpenAIChatAnswerer(server.url, "", "m")
        assert collect(llm.stream(QUESTION)) == ["Kept ", "alive."]
        assert collect(llm.stream(QUESTION)) == ["Kept ", "alive."]
        close_idle_connections()
    first, dropped, retried = (r.peer_port for r in server.requests)
    assert first == dropped != retried
