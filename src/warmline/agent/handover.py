"""Long answers: where a model's answer streams from (``[agent] offload``), and its budgets.

The agent's ``prompt`` route calls :func:`answer_turn` with the model's token stream once
it has decided to answer (:mod:`warmline.agent.settings` explains the three modes):

- ``never``: the App streams the answer from the route, cut by :func:`bounded` at the
  earlier of the whole-answer budget and :data:`~.settings.NEVER_SHARE` of the route's
  integration timeout, with an apology;
- ``auto``: :meth:`warmline.offload.TurnWorker.inline` streams it (coalesced, fenced: an
  interrupt stops it within one post) until :data:`~.settings.AUTO_SHARE` of the
  integration timeout; then what was buffered is posted, the talk cycle stays open, and
  a :class:`~warmline.offload.TurnPayload` carrying the text already spoken goes to the
  worker, which asks the model to continue from there (see
  :func:`warmline.agent.answerers.grounded_messages`) and streams the rest;
- ``always``: the turn goes to the worker at once.

The worker is the same App (``@app.worker``, installed by ``build_app``) running in the
function ``[agent] worker`` names: on Lambda (and under ``warmline dev``) the turn is an
asynchronous ``Invoke`` of that function (``WARMLINE_WORKER_FUNCTION``, which ``warmline
deploy render`` sets, overrides the name); in one long-running process (``warmline
serve``) an in-process queue delivers it on a thread. The worker bounds its part by the
rest of the whole-answer budget and records the whole answer in the history.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from warmline.agent.settings import AUTO_SHARE, NEVER_SHARE

if TYPE_CHECKING:
    from warmline.agent.answerers import ToolCall
    from warmline.agent.app import Agent
    from warmline.core.app import App, Context
    from warmline.offload.worker import TurnContext, TurnWorker
    from warmline.types import Dispatcher

__all__ = [
    "WORKER_ENV",
    "Spoken",
    "answer_turn",
    "bounded",
    "install_worker",
    "inline_window_s",
]

#: Names the worker function on AWS (the template sets it); else ``[agent] worker``.
WORKER_ENV = "WARMLINE_WORKER_FUNCTION"
#: What a payload carries beside the prompt: the answer text already spoken.
SPOKEN_FIELD = "spoken"
#: When this turn's answer started, epoch seconds (the whole-answer budget runs from it).
STARTED_FIELD = "answerStartedAt"


class Spoken:
    """An answer's tokens as they pass: the text said, and a tool call that ends it.

    A :class:`~warmline.agent.providers.errors.ProviderError` from the model becomes
    ``apology`` (after what was said), so the caller never waits in silence.

    Args:
        stream: the answerer's chunks (text, and :class:`~.answerers.ToolCall` items).
        apology: said when the model fails.
        on_error: told of the failure (logging).
    """

    def __init__(
        self,
        stream: AsyncIterable[Any],
        apology: str,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._stream = stream
        self._apology = apology
        self._on_error = on_error
        self._parts: list[str] = []
        #: the tool call that ended the answer, if the model made one.
        self.decision: ToolCall | None = None

    @property
    def text(self) -> str:
        """Everything yielded so far."""
        return "".join(self._parts)

    async def tokens(self) -> AsyncIterator[str]:
        """The text chunks; stops at the first tool call."""
        from warmline.agent.answerers import ToolCall
        from warmline.agent.providers.errors import ProviderError

        try:
            async for chunk in self._stream:
                if isinstance(chunk, ToolCall):
                    self.decision = chunk
                    return
                if chunk:
                    self._parts.append(chunk)
                    yield chunk
        except ProviderError as exc:
            if self._on_error is not None:
                self._on_error(exc)
            said = self.text
            line = (" " if said and not said[-1:].isspace() else "") + self._apology
            self._parts.append(line)
            yield line
        finally:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()


def inline_window_s(agent: Agent, ctx: Context) -> float:
    """Seconds the route may stream before it must stop (``never``) or hand over (``auto``).

    API Gateway's clock starts when it receives the message (``requestTimeEpoch``), so a
    cold start and the retrieval before the answer count against the route too.
    """
    config = agent.config
    share = AUTO_SHARE if config.offload == "auto" else NEVER_SHARE
    conn = ctx.connection
    spent = 0.0
    # a message's own receive time (the ASGI adapter keeps the connect time for every
    # message: then nothing is known to have been spent)
    if conn is not None and conn.request_time_ms > conn.connected_at_ms > 0:
        spent = max(0.0, time.time() - conn.request_time_ms / 1000)
    window = min(config.integration_timeout_s * share - spent, config.answer_budget_s())
    return max(0.0, min(window, ctx.remaining_ms() / 1000))


def answer_turn(
    agent: Agent, ctx: Context, turn: int, text: str, lang: str, stream: AsyncIterable[Any]
) -> Any:
    """What the ``prompt`` route returns for a streamed answer, as ``offload`` says."""
    config = agent.config
    # The browser channel's frames are translated on the way out (ctx.send), which a
    # worker's posts do not pass through: there, answers stream from the route as with never.
    inline_only = ctx.connection is None or ctx.session is None or ctx.channel is not None
    if config.offload == "never" or inline_only:
        window = inline_window_s(agent, ctx)
        return agent.relay_async(ctx, turn, bounded(stream, window, config.dont_know))
    if config.offload == "always":  # the stream was never started: nothing to close
        if not dispatch(agent, ctx, text, lang, ""):
            return [_apology(ctx, agent)]
        return None
    return _stream_then_hand_over(agent, ctx, turn, text, lang, stream)


async def _stream_then_hand_over(
    agent: Agent, ctx: Context, turn: int, text: str, lang: str, stream: AsyncIterable[Any]
) -> None:
    from warmline.offload.payload import TurnPayload

    conn, session = ctx.connection, ctx.session
    assert conn is not None and session is not None
    spoken = agent.spoken(stream)
    handed: list[bool] = []

    def handover(sent: int) -> bool:
        handed.append(dispatch(agent, ctx, text, lang, spoken.text[:sent]))
        return handed[-1]

    window_ms = int(inline_window_s(agent, ctx) * 1000)
    payload = TurnPayload(conn.connection_id, session.session_id, turn, text, lang)
    outcome = await agent.turn_worker.inline(
        ctx,
        payload,
        answer=spoken.tokens(),
        remaining_ms=lambda: window_ms,
        handover=handover,
    )
    ctx.annotate(answer=outcome.state, handedOver=bool(handed and handed[-1]) or None)
    if outcome.state != "handover":
        agent.record_reply(ctx.update_session, turn, spoken.text[: outcome.sent])
        agent.act(ctx, spoken.decision)


def dispatch(agent: Agent, ctx: Context, text: str, lang: str, spoken: str) -> bool:
    """Queue the rest of the turn (everything after ``spoken``) for the worker.

    Returns:
        False when it could not be queued (logged; the caller apologises).
    """
    from warmline.errors import WarmlineError
    from warmline.offload.payload import TurnPayload

    conn, session = ctx.connection, ctx.session
    assert conn is not None and session is not None
    extra = {SPOKEN_FIELD: spoken, STARTED_FIELD: agent.started_at(ctx)}
    payload = TurnPayload.for_turn(conn, session, text, lang, time.time(), extra)
    try:
        message_id = agent.dispatcher.dispatch(payload.to_dict())
    except WarmlineError as exc:
        ctx.log("offload.dispatch_failed", "error", error=str(exc))
        return False
    ctx.annotate(offloaded=len(spoken), messageId=message_id)
    return True


def _apology(ctx: Context, agent: Agent) -> Any:
    from warmline.core.relay import Text

    return Text(token=agent.config.dont_know, last=True)


def make_dispatcher(app: App, worker: str | None) -> Dispatcher:
    """The worker's queue: Lambda ``Invoke`` inside a Lambda environment, else in-process."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        from warmline.offload.lambda_invoke import LambdaInvokeDispatcher

        name = os.environ.get(WORKER_ENV) or worker
        assert name  # AgentConfig.check: offload needs a worker
        return LambdaInvokeDispatcher(name)
    from warmline.offload.dispatchers import LocalDispatcher

    return LocalDispatcher(app, threaded=True)


def install_worker(agent: Agent) -> TurnWorker:
    """The TurnWorker answering this agent's offloaded turns (registered as ``@app.worker``)."""
    from warmline.offload.stream import StreamPolicy
    from warmline.offload.worker import TurnWorker

    policy = StreamPolicy(budget_margin_ms=0, apology_text=agent.config.dont_know)
    return TurnWorker(lambda turn: worker_answer(agent, turn), policy=policy)


async def worker_answer(agent: Agent, turn: TurnContext) -> AsyncIterator[str]:
    """The rest of an offloaded answer: the model continues after what was spoken."""
    from warmline.agent.answerers import AnswerRequest
    from warmline.stores.base import update

    payload = turn.payload
    spoken = str(payload.extra.get(SPOKEN_FIELD, ""))
    started = payload.extra.get(STARTED_FIELD)
    budget = agent.config.answer_budget_s()
    if isinstance(started, int | float):
        budget -= time.time() - started
    hits = agent.retriever.search(payload.prompt)
    history = agent.history_before(turn.session, payload.prompt)
    request = AnswerRequest(payload.prompt, hits, history, payload.lang, spoken=spoken)
    stream = agent.answerer.answer(request)
    if not isinstance(stream, AsyncIterable):
        stream = _async(stream)
    said = agent.spoken(bounded(stream, budget, agent.config.dont_know))
    turn.log("agent.continue", spokenBefore=len(spoken), hitCount=len(hits))

    def change(edit: Any) -> Any:
        return update(turn.app.store, payload.session_id, edit)

    joiner = ""  # the space between what was spoken and the first word of the rest
    try:
        async for token in said.tokens():
            if not joiner and spoken and not spoken[-1:].isspace():
                joiner = " " if not token[:1].isspace() else token[:1]
                token = " " + token if joiner == " " else token
            yield token
    finally:
        rest = said.text
        agent.record_reply(
            change, payload.turn, spoken + (" " if rest and joiner == " " else "") + rest
        )
    if said.decision is not None:  # mid-answer, after words were spoken: not acted on
        turn.log("agent.tool_call_ignored", "warning", tool=said.decision.name)


async def _async(chunks: Any) -> AsyncIterator[str]:
    for chunk in chunks:
        yield chunk


async def bounded(
    stream: AsyncIterable[Any],
    seconds: float,
    apology: str,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Any]:
    """``stream`` cut after ``seconds``, with ``apology`` said instead of the rest."""
    import asyncio

    deadline = clock() + seconds
    tokens = stream.__aiter__()
    said = ""
    try:
        while True:
            left = deadline - clock()
            try:
                if left <= 0:
                    raise TimeoutError
                token = await asyncio.wait_for(tokens.__anext__(), left)
            except StopAsyncIteration:
                return
            except TimeoutError:
                gap = " " if said and not said[-1:].isspace() else ""
                yield gap + apology
                return
            if isinstance(token, str):
                said = token or said
            yield token
    finally:
        close = getattr(tokens, "aclose", None)
        if close is not None:
            await close()
