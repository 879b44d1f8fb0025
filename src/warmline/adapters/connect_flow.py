"""The Amazon Connect adapter: the reference agent behind an "Invoke AWS Lambda function" block.

Usage (the function's handler module)::

    from warmline.adapters.connect_flow import connect_handler
    from warmline.agent.app import build_app

    handler = connect_handler(build_app(), budget_s=3.5)

Each invocation carries one customer turn: the flow passes what the customer said as a
parameter (``utterance``; or ``digits`` from "Store customer input") and branches on the
keys of the flat map that comes back (:mod:`warmline.adapters.connect_response`). The
agent itself is :class:`warmline.agent.app.Agent`, unchanged: the adapter hands it a
``prompt`` (or ``dtmf``) exactly as ConversationRelay would, so intents, retrieval, the
answerer, the offer of a person and the history behave the same on both channels.

Why each rule (PROTOCOLS.md §4.5):

- **A hard deadline.** Connect waits at most the block's timeout (1-8 s), the caller
  hears silence meanwhile, and a late or failed response sends the contact down the
  Error branch. So the answer runs in a worker thread and the handler waits for it until
  ``min(budget_s, block timeout - margin, Lambda's remaining time - margin)``; past that
  it returns a short spoken apology with ``next = "fallback"`` instead. The default
  budget (3.5 s) is under half the 8 s ceiling, so a platform retry (a throttle, a
  crashed environment, a cold start that counts against Connect's clock too) still fits.
  A thread, not asyncio: measured on this project's machine (2026-11, Python 3.11,
  bytecode cached, ``-X importtime`` after ``warmline.adapters.aws_lambda``)
  ``import threading`` costs 0.9 ms, ``asyncio`` 30-74 ms and ``concurrent.futures``
  30 ms; starting a thread and waiting on an Event costs ~0.3 ms per turn, and unlike
  ``wait_for`` it also bounds an answerer that blocks without awaiting.
- **Retries are idempotent.** Connect retries throttles and 500s up to 3 times within the
  timeout, and a flow may re-invoke after a fallback. A request is identified by its
  ContactId and parameters; it is *the same request* while the session's turn has not
  moved since it was claimed. Before running, the handler claims the turn with
  compare-and-set (``turn + 1``, ``state: pending``) in the session record; the result
  is stored beside the claim (``state: done``). A repeat then returns the stored result
  without running the agent; a repeat that arrives while the first is still running
  waits for it (polling the store, within its own deadline). Pass ``sessionTurn`` back
  as a parameter (the example flow does) so that a customer who says the same words
  twice in a row starts a new turn.
- **Sessions survive transfers.** The record is keyed by ``InitialContactId`` (else
  ``ContactId``): a transferred contact gets a new ContactId but keeps its history.
- **Warm-up pings never run business logic** (§4.4): they are recognised first
  (:func:`warmline.core.warmup.detect_warmup`), run the agent's pre-warm once per
  environment (index open, rules compiled) and never touch the store.
- **Bad input is a result, not an exception.** A malformed event (no ``Details``, wrong
  types, not an object) or an internal failure returns ``next = "error"`` with an
  ``error`` text; a raised exception would only make Connect retry the same bad input.

After a fallback the worker keeps running. In a warm environment it finishes and stores
its result, so the flow's retry of the same request gets the real answer; if Lambda froze
the environment, the claim expires at the deadline and the next attempt runs again. The
agent's session writes are fenced to the claimed turn, so a late worker never rewrites
a newer turn's history.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from warmline.adapters.connect_response import (
    NEXT_FALLBACK,
    collect_reply,
    error_response,
    fit_response,
    reply_response,
    validate_flat_response,
)
from warmline.core.app import App, Context, Invocation
from warmline.core.events import ContactFlow
from warmline.core.limits import CONNECT_TIMEOUT_S
from warmline.core.session import SessionRecord
from warmline.core.warmup import detect_warmup, warmup_response
from warmline.errors import (
    ConfigurationError,
    InvalidEventError,
    LocalProtocolError,
    StoreError,
    StoreUnavailableError,
    VersionConflictError,
)
from warmline.log import StepLogger

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.agent.app import Agent
    from warmline.types import SessionStore

__all__ = [
    "CONNECT_MIN_TIMEOUT_S",
    "DEFAULT_BUDGET_S",
    "DEFAULT_MARGIN_S",
    "SESSION_DATA_KEY",
    "ConnectHandler",
    "connect_handler",
    "parse_contact_flow",
    "request_fingerprint",
]

#: Shortest timeout the Invoke AWS Lambda function block accepts (integer 1-8 s, §4.5).
CONNECT_MIN_TIMEOUT_S = 1.0
#: warmline's default answer budget (not an AWS limit): under half of the 8 s ceiling so
#: a platform retry still fits in the same block timeout (module docstring).
DEFAULT_BUDGET_S = 3.5
#: Time kept back from every deadline for returning the response and Connect's hop.
DEFAULT_MARGIN_S = 0.5
#: How often a retry that found its request still running re-reads the store.
DEFAULT_POLL_S = 0.05
#: Compare-and-set attempts when claiming a turn.
_CLAIM_ATTEMPTS = 16
#: Where the adapter keeps its claim and cached result in ``SessionRecord.data``.
SESSION_DATA_KEY = "connect"

_FALLBACK_TEXT = "Sorry, that is taking me longer than it should. One moment, please."
_ERROR_TEXT = "Sorry, something went wrong on my side."
_REPROMPT_TEXT = "Sorry, I didn't catch that. How can I help you?"


# --- the event -----------------------------------------------------------------------
def parse_contact_flow(raw: object) -> ContactFlow:
    """Read a ``ContactFlowEvent`` strictly (PROTOCOLS.md §4.5).

    Args:
        raw: the event as Lambda passed it.

    Returns:
        The normalized event; ``initial_contact_id`` falls back to ``contact_id``.

    Raises:
        InvalidEventError: not an object, another ``Name``, no ``Details`` /
            ``Details.ContactData`` object, no ``ContactId`` string, or a parameter,
            ``InitialContactId``, ``Channel`` or ``LanguageCode`` that is not a string
            (a ``null`` parameter counts as absent).
    """
    if not isinstance(raw, Mapping):
        raise InvalidEventError(f"a Connect event must be a JSON object, not {_kind(raw)}")
    name = raw.get("Name")
    if name is not None and name != "ContactFlowEvent":
        raise InvalidEventError(f"Name is {name!r}, not 'ContactFlowEvent'")
    details = raw.get("Details")
    if not isinstance(details, Mapping):
        raise InvalidEventError(f"Details must be an object, not {_kind(details)}")
    data = details.get("ContactData")
    if not isinstance(data, Mapping):
        raise InvalidEventError(f"Details.ContactData must be an object, not {_kind(data)}")
    contact_id = data.get("ContactId")
    if not isinstance(contact_id, str) or not contact_id.strip():
        raise InvalidEventError("Details.ContactData.ContactId must be a non-empty string")
    initial = data.get("InitialContactId")
    if initial is not None and not isinstance(initial, str):
        raise InvalidEventError(f"InitialContactId must be a string, not {_kind(initial)}")
    for field in ("Channel", "LanguageCode"):
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidEventError(f"ContactData.{field} must be a string, not {_kind(value)}")
    params = details.get("Parameters")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidEventError(f"Details.Parameters must be an object, not {_kind(params)}")
    clean: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue  # an attribute that resolved to nothing: the parameter is absent
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidEventError(f"parameter {key!r} must be a string, not {_kind(value)}")
        clean[key] = value
    return ContactFlow(
        contact_id=contact_id,
        initial_contact_id=initial or contact_id,
        parameters=clean,
        contact_data=data,
    )


def request_fingerprint(event: ContactFlow) -> str:
    """What makes two invocations the same request: ContactId and every parameter.

    The canonical JSON itself, not a hash: parameters are short, and ``hashlib`` costs
    ~8 ms to import on a cold start (measured as in the module docstring).
    """
    params = sorted(event.parameters.items())
    return json.dumps([event.contact_id, params], ensure_ascii=False, separators=(",", ":"))


# --- the agent's view of a contact ----------------------------------------------------
class _ConnectContext(Context):
    """A Context whose session is the contact's record, with writes fenced to one turn.

    The agent reads ``ctx.session`` and writes through ``ctx.update_session``; a
    WebSocket Context finds the session by connection, a contact has none.
    """

    __slots__ = ("_port", "_key", "_turn")

    def __init__(
        self,
        app: App,
        event: ContactFlow,
        invocation: Invocation,
        *,
        store: SessionStore,
        record: SessionRecord,
    ) -> None:
        super().__init__(app, event, invocation, "contact_flow")
        self._port = store
        self._key = record.session_id
        self._turn = record.turn
        self._session = record
        self._session_loaded = True

    @property
    def store(self) -> SessionStore:
        """The adapter's session store."""
        return self._port

    @property
    def session(self) -> SessionRecord | None:
        """The contact's record as last read or written by this turn."""
        return self._session

    def update_session(
        self, change: Callable[[SessionRecord], SessionRecord]
    ) -> SessionRecord | None:
        """Apply ``change`` with compare-and-set, only while the turn is still this one."""
        from warmline.stores.base import update

        turn = self._turn

        def fenced(record: SessionRecord) -> SessionRecord:
            return change(record) if record.turn == turn else record

        try:
            stored = update(self._port, self._key, fenced)
        except (VersionConflictError, StoreUnavailableError):
            raise
        except StoreError:
            return None  # the record expired under us: nothing to write to
        if stored.turn == turn:
            self._session = stored
        return stored


class _Job:
    """One agent run in its worker thread; ``ready`` is set when ``response`` is final."""

    __slots__ = ("ready", "response")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.response: dict[str, str] = {}


# --- the handler ---------------------------------------------------------------------
class ConnectHandler:
    """The Lambda handler for an Invoke AWS Lambda function block; see :func:`connect_handler`.

    Attributes:
        agent: the agent that answers.
        stats: counters for this environment: ``runs`` (agent runs started),
            ``replays`` (results served from the store), ``fallbacks``, ``errors``,
            ``warmups``.
    """

    def __init__(
        self,
        agent: Agent,
        app: App | None,
        *,
        store: SessionStore | None,
        budget_s: float,
        block_timeout_s: float,
        margin_s: float,
        poll_s: float,
        utterance_parameter: str,
        digits_parameter: str,
        fallback_text: str,
        error_text: str,
        reprompt_text: str,
        constant_warmup_inputs: Sequence[Mapping[str, Any]],
        schedules_are_warmups: bool,
        log: StepLogger,
    ) -> None:
        self.agent = agent
        self._app = app
        self._store = store
        self.budget_s = budget_s
        self.block_timeout_s = block_timeout_s
        self.margin_s = margin_s
        self.poll_s = poll_s
        self.utterance_parameter = utterance_parameter
        self.digits_parameter = digits_parameter
        self.fallback_text = fallback_text
        self.error_text = error_text
        self.reprompt_text = reprompt_text
        self._constant_inputs = constant_warmup_inputs
        self._schedules_are_warmups = schedules_are_warmups
        self._log = log
        self._cold = True
        self._prewarmed = False
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self.stats = {"runs": 0, "replays": 0, "fallbacks": 0, "errors": 0, "warmups": 0}

    # --- ports ---------------------------------------------------------------------------
    @property
    def store(self) -> SessionStore:
        """The session store: the one given, else the App's, else SQLite (lazily)."""
        if self._store is None:
            if self._app is not None:
                self._store = self._app.store
            else:
                from warmline.stores.sqlite import SQLiteStore

                self._store = SQLiteStore.from_environment()
        return self._store

    @property
    def app(self) -> App:
        """The App the agent's Context needs (a bare one when only an Agent was given)."""
        if self._app is None:
            self._app = App(name="warmline-connect", store=self.store)
        return self._app

    # --- entry point ---------------------------------------------------------------------
    def __call__(self, raw: Any, context: Any = None) -> dict[str, Any]:
        """Handle one invocation; returns a flat map of strings (a dict for warm-ups)."""
        started = time.monotonic()
        cold, self._cold = self._cold, False
        warm = detect_warmup(
            raw,
            client_context_custom=_client_context_custom(context),
            constant_inputs=self._constant_inputs,
            schedules_are_warmups=self._schedules_are_warmups,
        )
        if warm is not None:
            ran = self._prewarm()
            self._count("warmups")
            self._log("warmup", warmup=True, source=warm.source, cold=cold, hooks=ran)
            return warmup_response(warm)
        try:
            event = parse_contact_flow(raw)
        except InvalidEventError as exc:
            self._count("errors")
            self._log("invalid_event", "warning", error=str(exc), cold=cold)
            return self._guard(error_response(str(exc), say=self.error_text))
        deadline = started + self._budget(context)
        fields: dict[str, Any] = {
            "contactId": event.contact_id,
            "sessionId": event.initial_contact_id,
            "channel": event.contact_data.get("Channel"),
            "cold": cold,
            "budgetMs": round((deadline - started) * 1000, 1),
        }
        try:
            response, outcome = self._respond(event, deadline, context, cold)
        except Exception as exc:  # noqa: BLE001 - a flow gets a result, never a Lambda error
            self._count("errors")
            self._log("contact_flow_failed", "error", error=repr(exc), **fields)
            response, outcome = error_response("internal error", say=self.error_text), "error"
        response = self._guard(response)
        self._log(
            "contact_flow",
            outcome=outcome,
            next=response.get("next"),
            intent=response.get("intent"),
            turn=response.get("sessionTurn"),
            durationMs=round((time.monotonic() - started) * 1000, 2),
            **fields,
        )
        return response

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait for agent runs still going after a fallback (tests, graceful shutdown).

        Returns:
            True when none is left.
        """
        end = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            left = None if end is None else max(0.0, end - time.monotonic())
            thread.join(left)
        with self._lock:
            return not self._threads

    # --- internals -----------------------------------------------------------------------
    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def _budget(self, context: Any) -> float:
        """Seconds this invocation may spend before answering (module docstring)."""
        limits = [self.budget_s, self.block_timeout_s - self.margin_s]
        get = getattr(context, "get_remaining_time_in_millis", None)
        if callable(get):
            try:
                limits.append(float(get()) / 1000 - self.margin_s)
            except (TypeError, ValueError):
                pass
        return max(0.0, min(limits))

    def _guard(self, response: Mapping[str, str]) -> dict[str, str]:
        """Fit and validate every response; what cannot be fixed becomes an error result."""
        try:
            return validate_flat_response(fit_response(response))
        except LocalProtocolError as exc:
            self._count("errors")
            self._log("invalid_response", "error", error=str(exc))
            return validate_flat_response(error_response(str(exc), say=self.error_text))

    def _prewarm(self) -> int:
        """Load the answer path once per environment; never touches the store."""
        if self._prewarmed:
            return 0
        self._prewarmed = True
        import warmline.core.relay  # noqa: F401 - the prompt/dtmf messages the agent reads

        hooks = list(self._app.prewarm_hooks) if self._app is not None else []
        if not hooks:
            hooks = [self.agent.prewarm]
        for hook in hooks:
            hook()
        return len(hooks)

    def _respond(
        self, event: ContactFlow, deadline: float, context: Any, cold: bool
    ) -> tuple[dict[str, str], str]:
        request = request_fingerprint(event)
        key = event.initial_contact_id
        outcome, value = self._claim(event, key, request, deadline)
        if outcome == "replay":
            self._count("replays")
            return dict(value), "replay"
        if outcome == "wait":
            waited = self._wait(key, request, int(value), deadline)
            if waited is not None:
                self._count("replays")
                return waited, "waited"
            self._count("fallbacks")
            return self._fallback(int(value)), "fallback"
        record: SessionRecord = value
        job = self._start(event, record, request, deadline, context, cold)
        if job.ready.wait(max(0.0, deadline - time.monotonic())):
            return job.response, "run"
        self._count("fallbacks")
        return self._fallback(record.turn), "fallback"

    def _fallback(self, turn: int) -> dict[str, str]:
        return {
            "answer": self.fallback_text,
            "intent": "none",
            "handoff": "false",
            "next": NEXT_FALLBACK,
            "sessionTurn": str(turn),
        }

    def _claim(
        self, event: ContactFlow, key: str, request: str, deadline: float
    ) -> tuple[str, Any]:
        """Replay a stored result, wait for a running twin, or claim a new turn.

        Returns:
            ``("replay", response)``, ``("wait", turn)`` or ``("run", claimed record)``.
        """
        store = self.store
        now = time.time()
        until = now + max(0.0, deadline - time.monotonic())
        for _ in range(_CLAIM_ATTEMPTS):
            record = store.get(key)
            entry = _entry(record, request)
            if record is not None and entry is not None:
                state = entry.get("state")
                if state == "done" and isinstance(entry.get("response"), dict):
                    return "replay", entry["response"]
                if state == "pending" and now < float(entry.get("until") or 0):
                    return "wait", record.turn
            base = record or SessionRecord(session_id=key)
            turn = base.turn + 1
            contact = {
                "contactId": event.contact_id,
                "initialContactId": event.initial_contact_id,
                "channel": str(event.contact_data.get("Channel") or ""),
            }
            claim = {"request": request, "turn": turn, "state": "pending", "until": until}
            data = {**base.data, SESSION_DATA_KEY: claim, "contact": contact}
            try:
                return "run", store.put(base.evolve(turn=turn, data=data))
            except VersionConflictError:
                continue
        raise VersionConflictError(key, -1)

    def _wait(self, key: str, request: str, turn: int, deadline: float) -> dict[str, str] | None:
        """Poll the store for the result of the same request running elsewhere."""
        store = self.store
        while True:
            record = store.get(key)
            entry = _entry(record, request)
            if record is None or entry is None or record.turn != turn:
                return None
            if entry.get("state") == "done" and isinstance(entry.get("response"), dict):
                return dict(entry["response"])
            if entry.get("state") != "pending":
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(self.poll_s, left))

    def _start(
        self,
        event: ContactFlow,
        record: SessionRecord,
        request: str,
        deadline: float,
        context: Any,
        cold: bool,
    ) -> _Job:
        job = _Job()
        invocation = Invocation(
            cold=cold,
            remaining_ms=lambda: max(0, int((deadline - time.monotonic()) * 1000)),
            clock=time.monotonic,
            log=self._log,
            request_id=str(getattr(context, "aws_request_id", "") or ""),
            function_name=str(getattr(context, "function_name", "") or ""),
        )
        ctx = _ConnectContext(self.app, event, invocation, store=self.store, record=record)
        thread = threading.Thread(
            target=self._work, args=(job, ctx, event, request), name="warmline-connect"
        )
        thread.daemon = True
        with self._lock:
            self._threads.add(thread)
        self._count("runs")
        thread.start()
        return job

    def _work(self, job: _Job, ctx: _ConnectContext, event: ContactFlow, request: str) -> None:
        """The worker thread: run the agent, hand over the response, then store it."""
        state = "failed"
        try:
            try:
                job.response = self._run_agent(ctx, event)
                state = "done"
            except Exception as exc:  # noqa: BLE001 - reported to the flow as an error result
                self._log("agent_failed", "error", error=repr(exc), contactId=event.contact_id)
                job.response = error_response(
                    "internal error", say=self.error_text, sessionTurn=str(ctx._turn)
                )
            job.ready.set()
            self._store_result(ctx, request, state, job.response)
        except Exception as exc:  # noqa: BLE001 - a thread has no caller to raise to
            self._log("store_result_failed", "error", error=repr(exc), contactId=event.contact_id)
        finally:
            job.ready.set()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _store_result(
        self, ctx: _ConnectContext, request: str, state: str, response: dict[str, str]
    ) -> None:
        from warmline.stores.base import update

        turn = ctx._turn

        def done(record: SessionRecord) -> SessionRecord:
            entry = record.data.get(SESSION_DATA_KEY)
            if record.turn != turn or not isinstance(entry, Mapping):
                return record
            if entry.get("request") != request or entry.get("state") != "pending":
                return record
            stored = {**entry, "state": state}
            if state == "done":
                stored["response"] = response
            return record.evolve(data={**record.data, SESSION_DATA_KEY: stored})

        update(self.store, ctx._key, done)

    def _run_agent(self, ctx: _ConnectContext, event: ContactFlow) -> dict[str, str]:
        """Give the agent one turn (prompt, key press, or the start) and flatten its reply."""
        from warmline.core.relay import Dtmf, Prompt

        params = event.parameters
        utterance = params.get(self.utterance_parameter, "").strip()
        digits = params.get(self.digits_parameter, "").strip()
        lang = str(event.contact_data.get("LanguageCode") or "en-US")
        agent = self.agent
        record = ctx.session
        history = record.data.get("history") if record is not None else None
        default_intent = "none"
        result: Any = None
        if utterance:
            ctx.message = Prompt(voice_prompt=utterance, lang=lang, last=True)
            result = agent.on_prompt(ctx)
        elif digits:
            ctx.message = Dtmf(digit=digits)
            result = agent.on_dtmf(ctx)
        elif not history:
            default_intent = "greeting"
            result = agent.on_setup(ctx)
        session = ctx.session
        response = reply_response(
            collect_reply(result),
            turn=ctx._turn,
            fields=ctx.fields,
            default_intent=default_intent,
            topic=session.data.get("topic") if session is not None else None,
        )
        if not response["answer"] and not utterance and not digits:
            response["answer"] = self.reprompt_text
        return validate_flat_response(fit_response(response))


# --- helpers -------------------------------------------------------------------------
def _entry(record: SessionRecord | None, request: str) -> Mapping[str, Any] | None:
    """The stored claim for ``request`` at the record's current turn, if any."""
    if record is None:
        return None
    entry = record.data.get(SESSION_DATA_KEY)
    if not isinstance(entry, Mapping):
        return None
    if entry.get("request") != request or entry.get("turn") != record.turn:
        return None
    return entry


def _client_context_custom(context: Any) -> Mapping[str, Any] | None:
    custom = getattr(getattr(context, "client_context", None), "custom", None)
    return custom if isinstance(custom, Mapping) else None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _resolve(agent: Any) -> tuple[Agent, App | None]:
    """An Agent, or an App built by ``build_app`` (which carries its Agent)."""
    inner = getattr(agent, "agent", None)
    if isinstance(agent, App) and inner is not None and hasattr(inner, "on_prompt"):
        return inner, agent
    if hasattr(agent, "on_prompt") and hasattr(agent, "on_setup"):
        return agent, None
    raise ConfigurationError(
        "connect_handler needs a warmline.agent Agent or an App from build_app(), "
        f"not {type(agent).__name__}"
    )


def connect_handler(
    agent: Agent | App,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    store: SessionStore | None = None,
    utterance_parameter: str = "utterance",
    digits_parameter: str = "digits",
    block_timeout_s: float = CONNECT_TIMEOUT_S,
    margin_s: float = DEFAULT_MARGIN_S,
    poll_s: float = DEFAULT_POLL_S,
    fallback_text: str = _FALLBACK_TEXT,
    error_text: str = _ERROR_TEXT,
    reprompt_text: str = _REPROMPT_TEXT,
    constant_warmup_inputs: Sequence[Mapping[str, Any]] = (),
    schedules_are_warmups: bool = True,
    log: StepLogger | None = None,
) -> ConnectHandler:
    """Make the Lambda handler for a contact flow's Invoke AWS Lambda function block.

    Args:
        agent: the reference agent (an ``Agent``) or the App ``build_app()`` returned.
        budget_s: the most time one invocation spends before answering; past it the
            response is the fallback.
        store: the session store (default: the App's, else SQLite from the environment).
        utterance_parameter: the block parameter holding the customer's words.
        digits_parameter: the block parameter holding keys pressed (DTMF menu).
        block_timeout_s: the block's configured timeout (1-8 s); the deadline keeps
            ``margin_s`` below it.
        margin_s: time kept back from every deadline for the response's way back.
        poll_s: how often a retry re-reads the store while its twin runs.
        fallback_text: said when the answer is not ready in time (``next = fallback``).
        error_text: said on ``next = error`` (malformed events, internal failures).
        reprompt_text: said when an invocation carries no words and no keys mid-call.
        constant_warmup_inputs: JSON inputs of your warm-up rules (PROTOCOLS.md §4.4).
        schedules_are_warmups: treat EventBridge scheduled events as warm-up pings.
        log: the step logger (default: JSON lines on stdout).

    Returns:
        ``handler(event, context)``.

    Raises:
        ConfigurationError: ``agent`` is neither, or a time setting is out of range.
    """
    resolved, app = _resolve(agent)
    if not CONNECT_MIN_TIMEOUT_S <= block_timeout_s <= CONNECT_TIMEOUT_S:
        raise ConfigurationError(
            f"block_timeout_s must be {CONNECT_MIN_TIMEOUT_S:g}-{CONNECT_TIMEOUT_S:g} s "
            f"(PROTOCOLS.md §4.5), not {block_timeout_s!r}"
        )
    if budget_s <= 0 or margin_s < 0 or margin_s >= block_timeout_s or poll_s <= 0:
        raise ConfigurationError(
            "budget_s and poll_s must be > 0 and 0 <= margin_s < block_timeout_s"
        )
    for name, value in (("utterance_parameter", utterance_parameter), ("digits", digits_parameter)):
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{name} must be a non-empty str")
    logger = log or StepLogger(base={"app": app.name if app is not None else "warmline-connect"})
    return ConnectHandler(
        resolved,
        app,
        store=store,
        budget_s=float(budget_s),
        block_timeout_s=float(block_timeout_s),
        margin_s=float(margin_s),
        poll_s=float(poll_s),
        utterance_parameter=utterance_parameter,
        digits_parameter=digits_parameter,
        fallback_text=fallback_text,
        error_text=error_text,
        reprompt_text=reprompt_text,
        constant_warmup_inputs=constant_warmup_inputs,
        schedules_are_warmups=schedules_are_warmups,
        log=logger,
    )
