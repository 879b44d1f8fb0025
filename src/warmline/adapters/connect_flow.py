"""The Amazon Connect adapter: an App behind an "Invoke AWS Lambda function" block.

Usage (the function's handler module)::

    from warmline.adapters.connect_flow import connect_handler
    from warmline.agent.app import build_app

    handler = connect_handler(build_app(), budget_s=3.5)

Each invocation carries one customer turn: the flow passes what the customer said as a
parameter (``utterance``; or ``digits`` from "Store customer input") and branches on the
keys of the flat map that comes back (:mod:`warmline.adapters.connect_response`). Connect
goes through the App like every other channel: the adapter reads the raw event into a
``ContactFlow`` event (:mod:`warmline.adapters.connect_event`, the turn as a ``prompt`` or
``dtmf`` relay message), calls ``App.handle``, which runs the ``@app.contact_flow``
handler (the reference agent's sends the turn to the same routes ConversationRelay
uses), and turns the handler's frames into the flat map. The adapter owns only what is
Connect's: the deadline, retries (:mod:`warmline.adapters.connect_claims`) and the map.

Why each rule (docs/protocols.md §4.5):

- **A hard deadline.** Connect waits at most the block's timeout (1-8 s), the caller
  hears silence meanwhile, and a late or failed response sends the contact down the
  Error branch. So the answer runs in a worker thread and the handler waits for it until
  ``min(budget_s, block timeout - margin, Lambda's remaining time - margin)``; past that
  it returns a short spoken apology with ``next = "fallback"`` instead. The default
  budget (3.5 s) is under half the 8 s ceiling, so a platform retry (a throttle, a
  crashed environment, a cold start that counts against Connect's clock too) still fits.
  A thread, not asyncio: ``import threading`` costs about a millisecond where
  ``asyncio`` and ``concurrent.futures`` cost tens, starting a thread and waiting on an
  Event costs a fraction of a millisecond per turn, and unlike ``wait_for`` it also
  bounds an answerer that blocks without awaiting.
- **Retries are idempotent.** Connect retries throttles and 500s up to 3 times within the
  timeout, and a flow may re-invoke after a fallback. A request is identified by its
  ContactId and parameters; it is *the same request* while the session's turn has not
  moved since it was claimed. Before running, the handler claims the turn with
  compare-and-set (``turn + 1``, ``state: pending``) in the session record; the result
  is stored beside the claim (``state: done``; :mod:`warmline.adapters.connect_claims`).
  A repeat then returns the stored result without running the handler; a repeat that
  arrives while the first is still running waits for it (polling the store, within its
  own deadline). The claim outlives the first response: an answer that is still running
  when its invocation returned the fallback keeps the turn for ``answer_limit_s`` from
  the start, so the flow's ask-again waits for that answer instead of starting a second
  turn (and a second model call). Pass ``sessionTurn`` back
  as a parameter (the example flow does) so that a customer who says the same words
  twice in a row starts a new turn.
- **Sessions survive transfers.** The record is keyed by ``InitialContactId`` (else
  ``ContactId``): a transferred contact gets a new ContactId but keeps its history.
- **Warm-up pings never run business logic** (§4.4): they are recognised first
  (:func:`warmline.core.warmup.detect_warmup`), run the App's pre-warm hooks once per
  environment (the agent's: index open, rules compiled) and never touch the store.
- **Bad input is a result, not an exception.** A malformed event (no ``Details``, wrong
  types, not an object) or an internal failure returns ``next = "error"`` with an
  ``error`` text; a raised exception would only make Connect retry the same bad input.

After a fallback the worker keeps running. Lambda freezes an environment between
invocations (docs/connect.md), so the worker goes on while this environment serves the
flow's ask-again, which is where an otherwise idle function sends it: the retry waits for
the answer and returns it. If the retry lands in another environment it still waits
(within its own deadline) instead of running the turn twice; only after
``answer_limit_s`` is the claim presumed lost (a crashed or reclaimed environment) and
the next attempt runs the turn again. The
handler's session writes are fenced to the claimed turn (``ContactFlow.turn``), so a
late worker never rewrites a newer turn's history.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from warmline.adapters.aws_lambda import complete_warmup, warmup_inputs_from_environment
from warmline.adapters.compose import compose
from warmline.adapters.connect_claims import SESSION_DATA_KEY, TurnClaims
from warmline.adapters.connect_event import (
    DEFAULT_DIGITS_PARAMETER,
    DEFAULT_UTTERANCE_PARAMETER,
    parse_contact_flow,
    request_fingerprint,
)
from warmline.adapters.connect_response import (
    NEXT_FALLBACK,
    error_response,
    fit_response,
    flow_response,
    validate_flat_response,
)
from warmline.adapters.loops import FreshLoop
from warmline.core.app import App, FlowReply, Invocation
from warmline.core.limits import CONNECT_TIMEOUT_S
from warmline.core.warmup import detect_warmup, warmup_response
from warmline.errors import ConfigurationError, InvalidEventError, LocalProtocolError
from warmline.log import StepLogger

# typing costs ~5 ms to import; annotations are strings, so only the checker needs it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.agent.app import Agent
    from warmline.core.events import ContactFlow
    from warmline.core.ports import SessionStore
    from warmline.core.session import SessionRecord

__all__ = [
    "CONNECT_MIN_TIMEOUT_S",
    "DEFAULT_ANSWER_LIMIT_S",
    "DEFAULT_BUDGET_S",
    "DEFAULT_MARGIN_S",
    "SESSION_DATA_KEY",
    "ConnectHandler",
    "connect_handler",
    "flat_result",
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
#: How long, from its start, a running answer keeps its turn (warmline's choice, not an
#: AWS limit): long enough for the first response's budget, the fallback prompt and the
#: flow's ask-again (an 8 s block); past it the answer is presumed lost and a repeat of
#: the request runs the turn again.
DEFAULT_ANSWER_LIMIT_S = 20.0

_FALLBACK_TEXT = "Sorry, that is taking me longer than it should. One moment, please."
_ERROR_TEXT = "Sorry, something went wrong on my side."
_REPROMPT_TEXT = "Sorry, I didn't catch that. How can I help you?"


def flat_result(
    result: Any, event: ContactFlow, *, reprompt_text: str = "", error_text: str = _ERROR_TEXT
) -> dict[str, str]:
    """The flow's flat map for what ``App.handle`` returned for ``event``.

    A :class:`~warmline.core.app.FlowReply` is flattened, a handler's own dict is checked;
    what cannot be made to fit becomes an error result.
    """
    try:
        if isinstance(result, FlowReply):
            return flow_response(result, event, reprompt_text=reprompt_text)
        return validate_flat_response(fit_response(result))
    except LocalProtocolError as exc:
        return validate_flat_response(error_response(str(exc), say=error_text))


class _Job:
    """One App run in its worker thread; ``ready`` is set when ``response`` is final."""

    __slots__ = ("ready", "response")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.response: dict[str, str] = {}


class _Settings:
    """What :func:`connect_handler` was configured with (validated there)."""

    __slots__ = (
        "budget_s",
        "answer_limit_s",
        "block_timeout_s",
        "margin_s",
        "poll_s",
        "utterance_parameter",
        "digits_parameter",
        "fallback_text",
        "error_text",
        "reprompt_text",
        "constant_inputs",
        "schedules_are_warmups",
    )
    budget_s: float
    answer_limit_s: float
    block_timeout_s: float
    margin_s: float
    poll_s: float
    utterance_parameter: str
    digits_parameter: str
    fallback_text: str
    error_text: str
    reprompt_text: str
    constant_inputs: Sequence[Mapping[str, Any]]
    schedules_are_warmups: bool

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values[name])


# --- the handler ---------------------------------------------------------------------
class ConnectHandler:
    """The Lambda handler for an Invoke AWS Lambda function block; see :func:`connect_handler`.

    Attributes:
        app: the App whose ``@app.contact_flow`` handler answers.
        stats: counters for this environment: ``runs`` (handler runs started),
            ``replays`` (results served from the store), ``fallbacks``, ``errors``,
            ``warmups``.
    """

    def __init__(self, app: App, settings: _Settings, log: StepLogger) -> None:
        self.app = app
        self._settings = settings
        self.budget_s: float = settings.budget_s
        self.answer_limit_s: float = settings.answer_limit_s
        self.block_timeout_s: float = settings.block_timeout_s
        self.margin_s: float = settings.margin_s
        self.poll_s: float = settings.poll_s
        self._log = log
        self._cold = True
        self._prewarmed = False
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self.stats = {"runs": 0, "replays": 0, "fallbacks": 0, "errors": 0, "warmups": 0}

    @property
    def store(self) -> SessionStore:
        """The App's session store (composed from the environment unless given)."""
        return self.app.store

    # --- entry point ---------------------------------------------------------------------
    def __call__(self, raw: Any, context: Any = None) -> dict[str, Any]:
        """Handle one invocation; returns a flat map of strings (a dict for warm-ups)."""
        started = time.monotonic()
        cold, self._cold = self._cold, False
        cfg = self._settings
        warm = detect_warmup(
            raw,
            client_context_custom=_client_context_custom(context),
            constant_inputs=cfg.constant_inputs,
            schedules_are_warmups=cfg.schedules_are_warmups,
        )
        if warm is not None:
            ran = self._prewarm()
            self._count("warmups")
            self._log("warmup", warmup=True, source=warm.source, cold=cold, hooks=ran)
            answer: dict[str, Any] = complete_warmup(
                warm, warmup_response(warm), context, self._remaining_ms(context), self._log
            )
            return answer
        try:
            event = parse_contact_flow(
                raw,
                utterance_parameter=cfg.utterance_parameter,
                digits_parameter=cfg.digits_parameter,
            )
        except InvalidEventError as exc:
            self._count("errors")
            self._log("invalid_event", "warning", error=str(exc), cold=cold)
            return self._guard(error_response(str(exc), say=cfg.error_text))
        return self._answer(event, started, context, cold)

    def _answer(
        self, event: ContactFlow, started: float, context: Any, cold: bool
    ) -> dict[str, Any]:
        deadline = started + self._budget(context)
        fields: dict[str, Any] = {
            "contactId": event.contact_id,
            "sessionId": event.initial_contact_id,
            "channel": event.contact_data.get("Channel"),
            "cold": cold,
            "budgetMs": round((deadline - started) * 1000, 1),
        }
        try:
            response, outcome = self._respond(event, started, deadline, context, cold)
        except Exception as exc:  # a flow gets a result, never a Lambda error
            self._count("errors")
            self._log("contact_flow_failed", "error", error=repr(exc), **fields)
            error = error_response("internal error", say=self._settings.error_text)
            response, outcome = error, "error"
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
        """Wait for handler runs still going after a fallback (tests, graceful shutdown).

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

    @staticmethod
    def _remaining_ms(context: Any) -> Callable[[], int]:
        """Lambda's time left for this invocation (15 min when the context has none)."""
        get = getattr(context, "get_remaining_time_in_millis", None)
        return (lambda: int(get())) if callable(get) else (lambda: 900_000)

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
            error = error_response(str(exc), say=self._settings.error_text)
            return validate_flat_response(error)

    def _prewarm(self) -> int:
        """Run the App's pre-warm hooks once per environment; never touches the store."""
        if self._prewarmed:
            return 0
        self._prewarmed = True
        import warmline.core.relay  # noqa: F401 - the prompt/dtmf messages a turn carries

        hooks = list(self.app.prewarm_hooks)
        for hook in hooks:
            self.app.resolve(hook())
        return len(hooks)

    def _respond(
        self, event: ContactFlow, started: float, deadline: float, context: Any, cold: bool
    ) -> tuple[dict[str, str], str]:
        request = request_fingerprint(event)
        claims = TurnClaims(self.store, self.poll_s)
        lease = max(deadline, started + self.answer_limit_s)
        outcome, value = claims.claim(event, request, lease)
        if outcome == "replay":
            self._count("replays")
            return dict(value), "replay"
        if outcome == "wait":
            waited = claims.wait(event.initial_contact_id, request, int(value), deadline)
            if waited is not None:
                self._count("replays")
                return waited, "waited"
            self._count("fallbacks")
            return self._fallback(int(value)), "fallback"
        record: SessionRecord = value
        claimed = event.replace(turn=record.turn)
        job = self._start(claimed, claims, request, lease, context, cold)
        if job.ready.wait(max(0.0, deadline - time.monotonic())):
            return job.response, "run"
        self._count("fallbacks")
        return self._fallback(record.turn), "fallback"

    def _fallback(self, turn: int) -> dict[str, str]:
        return {
            "answer": self._settings.fallback_text,
            "intent": "none",
            "handoff": "false",
            "next": NEXT_FALLBACK,
            "sessionTurn": str(turn),
        }

    def _start(
        self,
        event: ContactFlow,
        claims: TurnClaims,
        request: str,
        lease: float,
        context: Any,
        cold: bool,
    ) -> _Job:
        job = _Job()
        invocation = Invocation(
            cold=cold,
            # the answer may outlive the response (module docstring): it has the claim's time
            remaining_ms=lambda: max(0, int((lease - time.monotonic()) * 1000)),
            clock=time.monotonic,
            log=self._log,
            request_id=str(getattr(context, "aws_request_id", "") or ""),
            function_name=str(getattr(context, "function_name", "") or ""),
        )
        thread = threading.Thread(
            target=self._work,
            args=(job, event, invocation, claims, request),
            name="warmline-connect",
        )
        thread.daemon = True
        with self._lock:
            self._threads.add(thread)
        self._count("runs")
        thread.start()
        return job

    def _work(
        self,
        job: _Job,
        event: ContactFlow,
        invocation: Invocation,
        claims: TurnClaims,
        request: str,
    ) -> None:
        """The worker thread: run the App, hand over the response, then store it."""
        cfg = self._settings
        state = "failed"
        try:
            try:
                result = self.app.handle(event, invocation)
                job.response = flat_result(
                    result, event, reprompt_text=cfg.reprompt_text, error_text=cfg.error_text
                )
                state = "done"
            except Exception as exc:  # reported to the flow as an error result
                self._log("agent_failed", "error", error=repr(exc), contactId=event.contact_id)
                job.response = error_response(
                    "internal error", say=cfg.error_text, sessionTurn=str(event.turn)
                )
            job.ready.set()
            claims.store_result(event.initial_contact_id, event.turn, request, state, job.response)
        except Exception as exc:  # a thread has no caller to raise to
            self._log("store_result_failed", "error", error=repr(exc), contactId=event.contact_id)
        finally:
            job.ready.set()
            with self._lock:
                self._threads.discard(threading.current_thread())


# --- helpers -------------------------------------------------------------------------
def _client_context_custom(context: Any) -> Mapping[str, Any] | None:
    custom = getattr(getattr(context, "client_context", None), "custom", None)
    return custom if isinstance(custom, Mapping) else None


def _resolve(target: Any, store: SessionStore | None) -> App:
    """The App to serve: one with a ``@app.contact_flow`` handler, or a bare Agent's."""
    if isinstance(target, App):
        if not target.handles("contact_flow"):
            raise ConfigurationError(
                "connect_handler needs an App with a @app.contact_flow handler "
                "(build_app() registers the agent's)"
            )
        return target
    if callable(getattr(target, "on_contact_flow", None)):
        app = App(name="warmline-connect", store=store)
        app.contact_flow(target.on_contact_flow)
        app.prewarm(target.prewarm)
        return app
    raise ConfigurationError(
        "connect_handler needs a warmline.agent Agent or an App with a @app.contact_flow "
        f"handler, not {type(target).__name__}"
    )


def _check_settings(
    budget_s: float,
    answer_limit_s: float,
    block_timeout_s: float,
    margin_s: float,
    poll_s: float,
    parameters: dict[str, str],
) -> None:
    if not CONNECT_MIN_TIMEOUT_S <= block_timeout_s <= CONNECT_TIMEOUT_S:
        raise ConfigurationError(
            f"block_timeout_s must be {CONNECT_MIN_TIMEOUT_S:g}-{CONNECT_TIMEOUT_S:g} s "
            f"(docs/protocols.md §4.5), not {block_timeout_s!r}"
        )
    if budget_s <= 0 or margin_s < 0 or margin_s >= block_timeout_s or poll_s <= 0:
        raise ConfigurationError(
            "budget_s and poll_s must be > 0 and 0 <= margin_s < block_timeout_s"
        )
    if not answer_limit_s >= budget_s:
        raise ConfigurationError(
            f"answer_limit_s ({answer_limit_s!r}) must be at least budget_s ({budget_s!r})"
        )
    for name, value in parameters.items():
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{name} must be a non-empty str")


def connect_handler(
    app: App | Agent,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    answer_limit_s: float = DEFAULT_ANSWER_LIMIT_S,
    store: SessionStore | None = None,
    utterance_parameter: str = DEFAULT_UTTERANCE_PARAMETER,
    digits_parameter: str = DEFAULT_DIGITS_PARAMETER,
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

    This is the Connect function's composition edge: the App's ports that were not given
    explicitly come from the environment (as ``lambda_handler`` composes them), with
    ``store`` as the session store when the App has none.

    Args:
        app: an App with a ``@app.contact_flow`` handler (``build_app()`` registers the
            reference agent's), or a bare reference ``Agent``.
        budget_s: the most time one invocation spends before answering; past it the
            response is the fallback.
        answer_limit_s: how long, from its start, an answer still running after the
            fallback keeps its turn: a repeat of the request (the flow's ask-again) waits
            for it instead of running the turn again.
        store: the session store when the App was given none (default: the
            environment's, ``WARMLINE_STORE``).
        utterance_parameter: the block parameter holding the customer's words.
        digits_parameter: the block parameter holding keys pressed (DTMF menu).
        block_timeout_s: the block's configured timeout (1-8 s); the deadline keeps
            ``margin_s`` below it.
        margin_s: time kept back from every deadline for the response's way back.
        poll_s: how often a retry re-reads the store while its twin runs.
        fallback_text: said when the answer is not ready in time (``next = fallback``).
        error_text: said on ``next = error`` (malformed events, internal failures).
        reprompt_text: said when an invocation carries no words and no keys mid-call.
        constant_warmup_inputs: JSON inputs of your warm-up rules (docs/protocols.md §4.4),
            in addition to those ``warmline.toml`` declares (``WARMLINE_WARMUP_INPUTS``).
        schedules_are_warmups: treat EventBridge scheduled events as warm-up pings.
        log: the step logger (default: JSON lines on stdout).

    Returns:
        ``handler(event, context)``.

    Raises:
        ConfigurationError: ``app`` is neither, or a time setting is out of range.
    """
    served = _resolve(app, store)
    parameters = {"utterance_parameter": utterance_parameter, "digits": digits_parameter}
    _check_settings(budget_s, answer_limit_s, block_timeout_s, margin_s, poll_s, parameters)
    overrides: dict[str, Any] = {"runner": FreshLoop()}
    if store is not None:
        overrides["store"] = store
    compose(served, **overrides)
    settings = _Settings(
        budget_s=float(budget_s),
        answer_limit_s=float(answer_limit_s),
        block_timeout_s=float(block_timeout_s),
        margin_s=float(margin_s),
        poll_s=float(poll_s),
        utterance_parameter=utterance_parameter,
        digits_parameter=digits_parameter,
        fallback_text=fallback_text,
        error_text=error_text,
        reprompt_text=reprompt_text,
        constant_inputs=[*constant_warmup_inputs, *warmup_inputs_from_environment()],
        schedules_are_warmups=schedules_are_warmups,
    )
    return ConnectHandler(served, settings, log or StepLogger(base={"app": served.name}))
