"""The reference voice agent: a ConversationRelay App that answers from a knowledge base.

Routes (relay protocol, one message per invocation, nothing kept in memory but caches):

- ``setup``: the App has created the session; the agent says its greeting.
- ``prompt`` (final only): detect the intent. *Answer*: search the index (``hitCount``,
  ``topScore`` logged), and if the top hit is trusted stream the answer as ``text``
  tokens (a model's answer from the route or a worker, as ``[agent] offload`` says:
  :mod:`warmline.agent.handover`), else say it doesn't know and offer a person.
  *Handoff*: a short line, then ``end`` with ``handoffData`` (the ``<Connect action>``
  callback dials a human).
  *End*: goodbye, then ``end``.
- ``dtmf``: the menu (1 billing, 2 technical support, 0 a person by default).
- ``interrupt``: the caller barged in; the last assistant turn in the history is cut to
  what the caller actually heard (``utteranceUntilInterrupt``), so the history, and any
  LLM that reads it, matches the call. What was heard may only shorten what was sent
  (:mod:`warmline.agent.history`).
- ``info`` / ``error``: logged.

The history lives in the session record (``data["history"]``, the last
``history_limit`` turns, each ``{"role": "user"|"assistant", "text": ...}``, bounded in
bytes by :mod:`warmline.agent.history`) because every message may land in a different
environment. A handoff is a compare-and-set on that record: of concurrent prompts that
ask for one (eight "yes please" to one offer), exactly one hands off.

Import cost: this module imports the App and the intent rules only. The index (SQLite),
the retriever and the answerer are created at the first prompt (or on a warm-up ping,
through a pre-warm hook) and cached for the environment's life. Measured on this
project's machine (2026-11, Python 3.11, bytecode cached, best of 11 fresh interpreters):
``import warmline.agent.app`` adds 2.2 ms to ``warmline.core.app`` (the intent rules
0.8 ms); the rest of the agent (kb, speech, answerers) is 8 ms more, paid at the first
prompt, where the first answer takes ~10 ms in all (sqlite3 import, index open, search)
and later ones ~1 ms. With ``PYTHONDONTWRITEBYTECODE`` every module is compiled from
source on every cold start, which costs several times more: ship the ``.pyc`` files.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from warmline.agent.history import (
    HISTORY_LIMIT,
    MAX_TURN_BYTES,
    append_history,
    bounded_handoff,
    cut_text,
    pending_cut,
    truncate_history,
)
from warmline.agent.intents import (
    Intent,
    detect_intent,
    intent_for_digit,
    is_affirmative,
    is_negative,
)
from warmline.agent.settings import AgentConfig, load_agent_config
from warmline.core.app import App, Context

if TYPE_CHECKING:
    from warmline.agent.answerers import Answerer, ToolCall
    from warmline.agent.handover import Spoken
    from warmline.agent.kb import Retriever
    from warmline.core.relay import Dtmf, Prompt
    from warmline.core.session import SessionRecord
    from warmline.offload.worker import TurnWorker
    from warmline.types import Dispatcher

__all__ = [
    "HISTORY_LIMIT",
    "Agent",
    "AgentConfig",
    "append_history",
    "build_app",
    "truncate_history",
]

#: Longest info value copied into a log line (``tokensPlayed`` carries spoken text).
_INFO_VALUE_CHARS = 120


def _handoff_data(record: SessionRecord | None, intent: Intent) -> dict[str, Any]:
    """What the ``end`` frame hands to the ``<Connect action>`` callback, bounded."""
    data = record.data if record is not None else {}
    question = next(
        (t.get("text") for t in reversed(_history(record)) if t.get("role") == "user"), None
    )
    handoff: dict[str, Any] = {"reason": "handoff", "trigger": intent.reason}
    for key, value in (
        ("callSid", record.call_sid if record else None),
        ("topic", data.get("topic")),
        ("lastQuestion", question),
    ):
        if value:
            handoff[key] = value
    return bounded_handoff(handoff)


def _history(record: SessionRecord | None) -> list[dict[str, Any]]:
    if record is None:
        return []
    history = record.data.get("history")
    return list(history) if isinstance(history, list) else []


class Agent:
    """The agent's behaviour; :func:`build_app` registers its methods as routes.

    Args:
        config: what it says and decides.
        retriever: the knowledge-base search (default: the shipped index, lazily).
        answerer: produces answers (default: :class:`ExtractiveAnswerer`).
    """

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        retriever: Retriever | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.config = config or AgentConfig()
        self.config.check()
        self._retriever = retriever
        self._answerer = answerer
        self._worker: TurnWorker | None = None
        self._dispatcher: Dispatcher | None = None
        #: the App this agent's routes are on (set by :func:`build_app`).
        self.app: App | None = None

    @property
    def retriever(self) -> Retriever:
        """The retriever (created on first use: the index opens at its first search)."""
        if self._retriever is None:
            from warmline.agent.kb import DEFAULT_MIN_SCORE, Retriever

            cfg = self.config
            self._retriever = Retriever(
                cfg.index_path,
                min_score=DEFAULT_MIN_SCORE if cfg.min_score is None else cfg.min_score,
                limit=cfg.top_k,
            )
        return self._retriever

    @property
    def answerer(self) -> Answerer:
        """The answerer (the offline extractive one unless another was given)."""
        if self._answerer is None:
            # An LLM when [agent.llm] or the environment (WARMLINE_LLM_PROVIDER, ...) names
            # one, else the offline extractive answerer.
            from warmline.agent.providers.config import answerer_from_config

            configured = answerer_from_config(self.config.llm)
            if configured is None:
                from warmline.agent.answerers import ExtractiveAnswerer

                configured = ExtractiveAnswerer()
            self._answerer = configured
        return self._answerer

    @property
    def turn_worker(self) -> TurnWorker:
        """The worker streaming offloaded turns (created on first use)."""
        if self._worker is None:
            from warmline.agent.handover import install_worker

            self._worker = install_worker(self)
        return self._worker

    @property
    def dispatcher(self) -> Dispatcher:
        """Where offloaded turns go (created on first use, see :mod:`.handover`)."""
        if self._dispatcher is None:
            from warmline.agent.handover import make_dispatcher

            assert self.app is not None
            self._dispatcher = make_dispatcher(self.app, self.config.worker)
        return self._dispatcher

    def close(self) -> None:
        """Stop the offload queue, if one was made (an in-process one finishes its turn)."""
        close = getattr(self._dispatcher, "close", None)
        if close is not None:
            close()

    def prewarm(self) -> None:
        """Open the index and import the answer path (run on warm-up pings)."""
        from warmline.agent.speech import for_speech

        self.retriever.meta()
        prewarm = getattr(self.answerer, "prewarm", None)
        if callable(prewarm):
            prewarm()
        detect_intent("warm up, thanks", menu=self.config.menu)  # compiles the rules
        for_speech("Warm **up**.")

    # --- routes ------------------------------------------------------------------------
    def on_setup(self, ctx: Context) -> Any:
        """Greet the caller (the App already created the session)."""
        return self._say(ctx, None, self.config.greeting)

    def on_prompt(self, ctx: Context) -> Any:
        """A final utterance: hand off, end, or answer from the knowledge base."""
        msg = ctx.message
        if msg is None or not getattr(msg, "last", True):
            return None  # partial prompts: wait for the final one
        text = str(getattr(msg, "voice_prompt", "")).strip()
        if not text:
            return None
        record = ctx.session
        offered = record is not None and record.data.get("offer") == "human"
        if offered and is_affirmative(text):
            ctx.annotate(intent="handoff")
            return self._handoff(
                ctx, text, Intent("handoff", reason="accepted offer"), accepting=True
            )
        elif offered and is_negative(text):
            ctx.annotate(intent="declined")
            return self._say(ctx, text, self.config.declined, offer=None)
        else:
            intent = detect_intent(text, menu=self.config.menu)
        ctx.annotate(intent=intent.kind)
        if intent.kind == "handoff":
            return self._handoff(ctx, text, intent)
        if intent.kind == "end":
            return self._end(ctx, text, intent)
        if intent.kind == "action":
            return self._menu_option(ctx, text, intent)
        return self._answer(ctx, text, str(getattr(msg, "lang", "") or "en-US"))

    def on_dtmf(self, ctx: Context) -> Any:
        """A key press: the menu's option, a handoff, or the menu read again."""
        digit = str(getattr(ctx.message, "digit", ""))
        intent = intent_for_digit(digit, menu=self.config.menu)
        ctx.annotate(intent=intent.kind, digit=digit, action=intent.action)
        if intent.kind == "handoff":
            return self._handoff(ctx, None, intent)
        if intent.kind == "action":
            return self._menu_option(ctx, None, intent)
        line = f"{self.config.unknown_key} {self.config.menu.prompt()}".strip()
        return self._say(ctx, None, line, offer=None)

    def on_contact_flow(self, ctx: Context[Prompt | Dtmf | None]) -> Any:
        """An Amazon Connect turn: words go to :meth:`on_prompt`, keys to :meth:`on_dtmf`;
        a turn with neither greets a new contact (and says nothing mid-contact, where the
        Connect adapter asks again)."""
        from warmline.core.relay import Dtmf, Prompt

        msg = ctx.message
        if isinstance(msg, Prompt):
            return self.on_prompt(ctx)
        if isinstance(msg, Dtmf):
            return self.on_dtmf(ctx)
        if _history(ctx.session):
            return None
        ctx.annotate(intent="greeting")
        return self.on_setup(ctx)

    def on_interrupt(self, ctx: Context) -> None:
        """Barge-in: the history keeps only what the caller heard of what was sent.

        When the answer is not recorded yet (the interrupt overtook the stream's write),
        what was heard waits in ``data["bargeIn"]`` for that answer's turn, and the
        stream's own record applies it (:meth:`record_reply`).
        """
        heard = str(getattr(ctx.message, "utterance_until_interrupt", "") or "")
        ctx.annotate(heardChars=len(heard))

        def change(r: SessionRecord) -> SessionRecord:
            history = _history(r)
            if history and history[-1].get("role") == "assistant":
                return r.evolve(data={**r.data, "history": truncate_history(history, heard)})
            # the interrupt bumped the turn: the answer being cut is the previous turn's
            pending = {"turn": r.turn - 1, "heard": cut_text(heard, MAX_TURN_BYTES)}
            return r.evolve(data={**r.data, "bargeIn": pending})

        ctx.update_session(change)

    def on_info(self, ctx: Context) -> None:
        """Twilio's info events (speaker, tokens played, round-trip delay): logged."""
        msg = ctx.message
        value = str(getattr(msg, "value", ""))
        ctx.annotate(info=getattr(msg, "name", ""), value=value[:_INFO_VALUE_CHARS])

    def on_error(self, ctx: Context) -> None:
        """Twilio reports an error (e.g. 64107 for a frame it dropped): logged."""
        description = str(getattr(ctx.message, "description", ""))
        ctx.log("relay_error", "warning", description=description)
        ctx.annotate(relayError=description[:200])

    def on_worker(self, ctx: Context) -> Any:
        """An offloaded turn (``[agent] offload``): the rest of the answer, streamed."""
        return self.turn_worker.handle(ctx)

    def on_other(self, ctx: Context) -> None:
        """Unknown message types: logged, nothing sent."""
        ctx.annotate(type=getattr(ctx.message, "type", None))

    # --- behaviours --------------------------------------------------------------------
    def _answer(self, ctx: Context, text: str, lang: str) -> Any:
        from warmline.agent.answerers import AnswerRequest

        retriever = self.retriever
        hits = retriever.search(text, ctx=ctx)
        if not retriever.confident(hits):
            ctx.annotate(answered=False)
            return self._say(ctx, text, self.config.dont_know, offer="human")
        ctx.annotate(answered=True, entry=hits[0].id)
        history = _history(ctx.session)
        stream = self.answerer.answer(AnswerRequest(text, hits, history, lang))
        if isinstance(stream, list | tuple):
            return self._say(ctx, text, "".join(stream), chunks=list(stream), offer=None)
        turn = self._record(ctx, [("user", text)], offer=None, answerStartedAt=time.time())
        if isinstance(stream, AsyncIterable):
            if ctx.connection is None:  # Amazon Connect: the reply is collected
                return self.relay_async(ctx, turn, stream)
            from warmline.agent.handover import answer_turn

            return answer_turn(self, ctx, turn, text, lang, stream)
        return self._relay_sync(ctx, turn, stream)

    def started_at(self, ctx: Context) -> float:
        """When this turn's answer started (epoch seconds; the whole-answer budget's start)."""
        record = ctx.session
        value = record.data.get("answerStartedAt") if record is not None else None
        return float(value) if isinstance(value, int | float) else time.time()

    def history_before(self, record: SessionRecord | None, question: str) -> list[dict[str, Any]]:
        """The history as the model saw it when ``question`` was asked (for a worker)."""
        history = _history(record)
        for n in range(len(history) - 1, -1, -1):
            if history[n].get("role") == "user" and history[n].get("text") == question:
                return history[:n]
        return history

    def _menu_option(self, ctx: Context, text: str | None, intent: Intent) -> list[Any]:
        """A menu option chosen by key or by voice: its line, and it becomes the topic."""
        option = next(
            (o for o in self.config.menu.options.values() if o.name == intent.action), None
        )
        if option is None:  # pragma: no cover - intents only name options of the menu
            return self._say(ctx, text, self.config.menu.prompt(), offer=None)
        return self._say(ctx, text, option.say or option.label, topic=option.name, offer=None)

    def _handoff(
        self, ctx: Context, text: str | None, intent: Intent, *, accepting: bool = False
    ) -> list[Any]:
        """Hand the call to a person: one compare-and-set that records the exchange and
        the handoff data, and wins only while no handoff is recorded (and, when
        ``accepting`` an offer, while the offer still stands). A prompt that loses says
        nothing: the winner's ``end`` is already on its way."""
        from warmline.core.relay import End, Text

        line = self.config.handoff
        limit = self.config.history_limit
        won: list[dict[str, Any]] = []

        def change(r: SessionRecord) -> SessionRecord:
            won.clear()
            if "handoff" in r.data or (accepting and r.data.get("offer") != "human"):
                return r
            handoff = _handoff_data(r, intent)
            turns = [("user", text or ""), ("assistant", line)]
            data = {**r.data, "history": append_history(_history(r), *turns, limit=limit)}
            data.pop("offer", None)
            data["handoff"] = handoff
            won.append(handoff)
            return r.evolve(data=data)

        if ctx.session is None:
            won.append(_handoff_data(None, intent))
        else:
            ctx.update_session(change)
        if not won:
            ctx.annotate(handoff="already")
            return []
        return [Text(token=line, last=True), End(handoff_data=won[0])]

    def _end(self, ctx: Context, text: str, intent: Intent) -> list[Any]:
        from warmline.core.relay import End, Text

        line = self.config.goodbye
        self._record(ctx, [("user", text), ("assistant", line)], offer=None)
        return [Text(token=line, last=True), End(handoff_data={"reason": "end"})]

    def _say(
        self,
        ctx: Context,
        user_text: str | None,
        reply: str,
        *,
        chunks: list[str] | None = None,
        **changes: Any,
    ) -> list[Any]:
        """Record the exchange in one write, then return the reply's text frames."""
        from warmline.agent.speech import speech_chunks
        from warmline.core.relay import Text

        self._record(ctx, [("user", user_text or ""), ("assistant", reply)], **changes)
        parts = [c for c in (chunks if chunks is not None else speech_chunks(reply)) if c]
        if not parts:
            return []
        return [Text(token=c, last=n == len(parts) - 1) for n, c in enumerate(parts)]

    def _record(self, ctx: Context, turns: list[tuple[str, str]], **changes: Any) -> int:
        """Append ``turns`` to the history and apply ``changes`` (None deletes a key).

        Returns:
            The session's turn number (0 without a session).
        """
        limit = self.config.history_limit
        if not any(text for _, text in turns) and not changes:
            record = ctx.session
            return record.turn if record is not None else 0  # nothing to write

        def change(r: SessionRecord) -> SessionRecord:
            data = {**r.data, "history": append_history(_history(r), *turns, limit=limit)}
            for key, value in changes.items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            return r.evolve(data=data)

        stored = ctx.update_session(change)
        return stored.turn if stored is not None else 0

    def record_reply(
        self,
        update: Callable[[Callable[[SessionRecord], SessionRecord]], Any] | None,
        turn: int,
        spoken: str,
    ) -> None:
        """Record a streamed reply, unless a barge-in or newer prompt took the turn.

        After a barge-in the reply is recorded cut to what was heard (the interrupt left
        it in ``data["bargeIn"]``); after a newer prompt it is not recorded: writing the
        whole answer now would undo what the newer turn wrote.
        """
        if not spoken:
            return
        limit = self.config.history_limit

        def change(r: SessionRecord) -> SessionRecord:
            if r.turn == turn:
                history = append_history(_history(r), ("assistant", spoken), limit=limit)
                return r.evolve(data={**r.data, "history": history})
            pending = r.data.get("bargeIn")
            if not isinstance(pending, dict) or pending.get("turn") != turn:
                return r
            data = {k: v for k, v in r.data.items() if k != "bargeIn"}
            cut = pending_cut(spoken, str(pending.get("heard", "")))
            if cut is not None:
                history = append_history(_history(r), ("assistant", cut["text"]), limit=limit)
                history[-1]["interrupted"] = True
                data["history"] = history
            return r.evolve(data=data)

        if update is not None:
            update(change)

    def _reply_writer(
        self, ctx: Context
    ) -> Callable[[Callable[[SessionRecord], SessionRecord]], Any] | None:
        return ctx.update_session if ctx.session is not None else None

    def _relay_sync(self, ctx: Context, turn: int, chunks: Iterable[str]) -> Iterator[Any]:
        """Stream chunks as text frames, the last with ``last: true`` (one-chunk lookahead).

        The lookahead costs nothing for an instant answerer and saves the empty closing
        frame; async streams (LLMs) are not held back (see :meth:`relay_async`).
        """
        from warmline.core.relay import Text

        spoken: list[str] = []
        previous: str | None = None
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                if previous is not None:
                    spoken.append(previous)
                    yield Text(token=previous)
                previous = chunk
            if previous is not None:
                spoken.append(previous)
                yield Text(token=previous, last=True)
        finally:
            self.record_reply(self._reply_writer(ctx), turn, "".join(spoken))

    async def relay_async(
        self, ctx: Context, turn: int, chunks: AsyncIterable[Any]
    ) -> AsyncIterator[Any]:
        """Stream chunks as they come; the App closes the talk cycle after the last.

        A model's failure is said as the "don't know" line (never silence); a tool call
        the model makes ends the text and is acted on (:meth:`act`).
        """
        said = self.spoken(chunks, ctx)
        try:
            async for chunk in said.tokens():
                yield chunk
        finally:
            self.record_reply(self._reply_writer(ctx), turn, said.text)
        for item in self.act(ctx, said.decision):
            yield item

    def spoken(self, chunks: AsyncIterable[Any], ctx: Context | None = None) -> Spoken:
        """``chunks`` watched as they pass (:class:`~warmline.agent.handover.Spoken`)."""
        from warmline.agent.handover import Spoken

        def failed(exc: Exception) -> None:
            if ctx is not None:
                kind = getattr(exc, "kind", None)
                ctx.log("llm_error", "warning", error=str(exc), kind=kind)
                ctx.annotate(llmError=kind)

        return Spoken(chunks, self.config.dont_know, failed)

    def act(self, ctx: Context, decision: ToolCall | None) -> list[Any]:
        """The frames for a tool call the model made: a handoff or the end of the call.

        Returns:
            ``text`` + ``end`` frames (sent after the answer), or nothing.
        """
        if decision is None:
            return []
        from warmline.agent.tools import TRANSFER_TOOL

        ctx.annotate(tool=decision.name)
        if decision.name == TRANSFER_TOOL:
            reason = str(decision.arguments.get("reason", "") or "model")
            return self._handoff(ctx, None, Intent("handoff", reason=f"model: {reason}"))
        from warmline.core.relay import End, Text

        line = self.config.goodbye
        self._record(ctx, [("assistant", line)], offer=None)
        return [Text(token=line, last=True), End(handoff_data={"reason": "end"})]


def build_app(
    *,
    config: AgentConfig | None = None,
    config_file: str | os.PathLike[str] | None = None,
    retriever: Retriever | None = None,
    answerer: Answerer | None = None,
    chat: bool = True,
    **kwargs: Any,
) -> App:
    """The reference agent as an App (``protocol="relay"``).

    Its settings come from the ``[agent]`` table of ``warmline.toml`` (found beside the
    module that calls this, or ``config_file``) with keyword arguments of the same names
    on top: ``build_app(offload="auto", worker="worker", llm={...})``
    (:mod:`warmline.agent.settings`).

    Args:
        config: all the settings at once (then the file is not read).
        config_file: the ``warmline.toml`` to read ``[agent]`` (and ``[limits]``) from.
        retriever: knowledge-base search (default: the shipped index, opened lazily).
        answerer: how answers are produced (default: ``[agent.llm]``, else offline
            extractive).
        chat: also serve the browser channel (:mod:`warmline.agent.chat`) on the same
            WebSocket.
        **kwargs: ``[agent]`` settings (``company``, ``top_k``, ``offload``, ``llm``, ...);
            the rest go to :class:`~warmline.core.app.App` (``store``, ``connections``,
            ``twilio_auth_token``, ``public_url``, ...).

    Raises:
        ConfigurationError: a bad setting (the message names it).
    """
    settings = {k: kwargs.pop(k) for k in list(kwargs) if k in AgentConfig._fields}
    timeout = settings.pop("integration_timeout_s", None)  # [limits], not [agent]
    if config is None:
        if config_file is None:
            caller = sys._getframe(1).f_globals.get("__file__")
            if caller:
                config_file = os.path.join(os.path.dirname(caller), "warmline.toml")
        config = (
            load_agent_config(config_file, **settings)
            if config_file is not None
            else AgentConfig.from_mapping(settings)
        )
    elif settings:
        config = config._replace(**settings)
    if timeout is not None:
        config = config._replace(integration_timeout_s=float(timeout))
    kwargs.setdefault("name", "warmline-agent")
    app = App(**kwargs)
    agent = Agent(config, retriever=retriever, answerer=answerer)
    agent.app = app
    app.agent = agent  # type: ignore[attr-defined]
    app.route("setup")(agent.on_setup)
    app.route("prompt")(agent.on_prompt)
    app.route("dtmf")(agent.on_dtmf)
    app.route("interrupt")(agent.on_interrupt)
    app.route("info")(agent.on_info)
    app.route("error")(agent.on_error)
    app.default(agent.on_other)
    app.contact_flow(agent.on_contact_flow)
    app.prewarm(agent.prewarm)
    if config.offload != "never":
        app.worker(agent.on_worker)
    if chat:
        from warmline.agent.chat import ChatChannel

        app.channel(ChatChannel())
    return app
