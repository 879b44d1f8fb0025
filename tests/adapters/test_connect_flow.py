"""The Amazon Connect adapter: recorded ContactFlowEvents in, flat string maps out."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from warmline.adapters.connect_flow import (
    SESSION_DATA_KEY,
    ConnectHandler,
    connect_handler,
    parse_contact_flow,
    request_fingerprint,
)
from warmline.adapters.connect_response import (
    collect_reply,
    error_response,
    fit_response,
    reply_response,
    response_bytes,
    truncate_at_sentence,
    validate_flat_response,
)
from warmline.agent.answerers import AnswerRequest, ExtractiveAnswerer
from warmline.agent.app import AgentConfig, build_app
from warmline.agent.intents import DEFAULT_MENU
from warmline.core.limits import CONNECT_MAX_RESPONSE_BYTES
from warmline.core.session import SessionRecord
from warmline.errors import ConfigurationError, InvalidEventError, LocalProtocolError
from warmline.log import StepLogger
from warmline.stores.memory import MemoryStore
from warmline.stores.sqlite import SQLiteStore
from warmline.testing import LambdaContext

EVENTS = Path(__file__).parent.parent / "events"
CONNECT = EVENTS / "connect"
MALFORMED = sorted(p.stem for p in CONNECT.glob("malformed_*.json"))
WELL_FORMED = sorted(p.stem for p in CONNECT.glob("*.json") if not p.stem.startswith("malformed"))
#: Bound on every wait in these tests, so a bug fails instead of hanging.
BOUND_S = 10.0


def load(name: str, folder: Path = CONNECT) -> Any:
    return json.loads((folder / f"{name}.json").read_text())


def with_params(event: dict[str, Any], **params: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(event))
    out["Details"]["Parameters"] = {**out["Details"]["Parameters"], **params}
    return out


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """A bounded poll for a condition another thread makes true."""
    end = time.monotonic() + BOUND_S
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


# --- answerers and stores with something to observe --------------------------------------
class CountingAnswerer:
    """The offline answerer, counting its runs."""

    def __init__(self) -> None:
        self.inner = ExtractiveAnswerer()
        self.calls = 0
        self._lock = threading.Lock()

    def answer(self, request: AnswerRequest) -> list[str]:
        with self._lock:
            self.calls += 1
        return self.inner.answer(request)


class GateAnswerer(CountingAnswerer):
    """Blocks until ``gate`` is set (bounded, so a failing test cannot hang)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def answer(self, request: AnswerRequest) -> list[str]:
        self.entered.set()
        self.gate.wait(BOUND_S)
        return super().answer(request)


class LongAnswerer:
    """Says ``text`` (longer than Connect accepts)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def answer(self, request: AnswerRequest) -> list[str]:
        return [self.text]


class FailingAnswerer:
    def answer(self, request: AnswerRequest) -> list[str]:
        raise RuntimeError("the model is down")


class AsyncAnswerer:
    """An async token stream, as an LLM answerer returns."""

    def answer(self, request: AnswerRequest) -> Any:
        async def tokens() -> Any:
            for token in ("Restart ", "the Hub. ", "Then try again."):
                yield token

        return tokens()


class ReadCountingStore(MemoryStore):
    """A real MemoryStore that counts reads (to see a retry polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, session_id: str) -> SessionRecord | None:
        self.reads += 1
        return super().get(session_id)


class UnusableStore:
    """A store that fails the test on any use: proves a path never touches sessions."""

    def __getattr__(self, name: str) -> Any:
        pytest.fail(f"the session store was used ({name})")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite = SQLiteStore(tmp_path / "sessions.sqlite3")
    try:
        yield sqlite
    finally:
        sqlite.close()


def make(
    store: Any = None, answerer: Any = None, logger: StepLogger | None = None, **kwargs: Any
) -> ConnectHandler:
    app = build_app(store=store if store is not None else MemoryStore(), answerer=answerer)
    return connect_handler(app, log=logger or StepLogger(io.StringIO()), **kwargs)


def history(store: Any, key: str) -> list[dict[str, Any]]:
    record = store.get(key)
    assert record is not None
    turns: list[dict[str, Any]] = record.data.get("history", [])
    return turns


def expected_answer(question: str) -> str:
    """What the offline answerer says for ``question``, asked directly (not via Connect)."""
    from warmline.agent.kb import Retriever

    retriever = Retriever()
    hits = retriever.search(question)
    assert retriever.confident(hits)
    return "".join(ExtractiveAnswerer().answer(AnswerRequest(question, hits))).strip()


# --- channels --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["voice_prompt", "chat_prompt"])
def test_a_question_is_answered_from_the_knowledge_base_on_voice_and_chat(
    name: str, store: Any
) -> None:
    event = load(name)
    handler = make(store)

    result = handler(event, LambdaContext())

    utterance = event["Details"]["Parameters"]["utterance"]
    assert result["answer"] == expected_answer(utterance)
    assert result["intent"] == "answer"
    assert result["next"] == "continue"
    assert result["handoff"] == "false"
    assert result["answered"] == "true"
    assert result["sessionTurn"] == "1"
    contact = event["Details"]["ContactData"]
    record = store.get(contact["InitialContactId"])
    assert record is not None
    assert record.data["contact"]["channel"] == contact["Channel"]
    assert [t["role"] for t in record.data["history"]] == ["user", "assistant"]
    assert record.data["history"][0]["text"] == utterance


def test_an_invocation_without_words_greets_a_new_contact() -> None:
    handler = make()

    result = handler(load("voice_start"), LambdaContext())

    assert result["answer"] == AgentConfig().greeting
    assert result["intent"] == "greeting"
    assert result["next"] == "continue"


def test_an_empty_turn_mid_contact_reprompts_without_greeting_again() -> None:
    handler = make(reprompt_text="Say that again?")
    handler(load("voice_prompt"), LambdaContext())

    result = handler(load("voice_start"), LambdaContext())

    assert result["answer"] == "Say that again?"
    assert result["intent"] == "none"


def test_digits_choose_a_menu_option() -> None:
    handler = make()

    result = handler(load("voice_dtmf"), LambdaContext())

    option = DEFAULT_MENU.options["1"]
    assert result["answer"] == option.say
    assert result["intent"] == "action"
    assert result["topic"] == option.name
    assert result["next"] == "continue"


def test_asking_for_a_person_hands_off() -> None:
    event = with_params(load("voice_prompt"), utterance="I want to talk to a human", turn="2")
    handler = make()

    result = handler(event, LambdaContext())

    assert result["next"] == "handoff"
    assert result["handoff"] == "true"
    assert result["intent"] == "handoff"
    assert result["answer"] == AgentConfig().handoff
    assert result["handoffReason"]


def test_a_goodbye_ends_the_contact() -> None:
    event = with_params(load("chat_prompt"), utterance="that's all, goodbye")
    handler = make()

    result = handler(event, LambdaContext())

    assert result["next"] == "end"
    assert result["handoff"] == "false"
    assert result["answer"] == AgentConfig().goodbye


def test_an_unknown_question_offers_a_person_and_yes_accepts() -> None:
    handler = make()
    first = with_params(load("voice_prompt"), utterance="do you sell pizza", turn="1")
    yes = with_params(load("voice_prompt"), utterance="yes please", turn="2")

    offer = handler(first, LambdaContext())
    accepted = handler(yes, LambdaContext())

    assert offer["answered"] == "false"
    assert offer["next"] == "continue"
    assert accepted["next"] == "handoff"


def test_an_async_answerer_is_drained_in_the_worker() -> None:
    handler = make(answerer=AsyncAnswerer())

    result = handler(load("voice_prompt"), LambdaContext())

    assert result["answer"] == "Restart the Hub. Then try again."
    assert result["next"] == "continue"


# --- the contract with the block: flat, strings, < 32 KB ----------------------------------
@pytest.mark.parametrize("name", WELL_FORMED + MALFORMED)
def test_every_response_is_a_flat_string_map_under_32_kb(name: str) -> None:
    handler = make()

    result = handler(load(name), LambdaContext())

    assert isinstance(result, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
    assert len(json.dumps(result).encode()) < CONNECT_MAX_RESPONSE_BYTES
    assert len(json.dumps(result, ensure_ascii=False).encode()) < CONNECT_MAX_RESPONSE_BYTES
    assert validate_flat_response(result) == result
    assert result["next"] in ("continue", "handoff", "end", "fallback", "error")


def test_a_long_answer_is_cut_at_a_sentence_boundary_to_fit() -> None:
    sentence = "Ça coûte très peu, vraiment — c’est promis. "  # non-ASCII: escaped when sized
    text = sentence * 2000
    handler = make(answerer=LongAnswerer(text))

    result = handler(load("voice_prompt"), LambdaContext())

    assert response_bytes(result) < CONNECT_MAX_RESPONSE_BYTES
    assert result["truncated"] == "true"
    assert result["answer"].endswith("promis.")
    assert text.startswith(result["answer"])
    assert len(result["answer"]) > len(sentence) * 10  # cut near the limit, not to nothing


@pytest.mark.parametrize(
    "bad",
    [
        None,
        ["a"],
        "answer",
        {"answer": {"text": "nested"}},
        {"answer": "ok", "turn": 3},
        {"answer": "ok", "handoff": True},
        {"answer": None},
        {"": "empty key"},
        {1: "int key"},
        {"answer": "x" * CONNECT_MAX_RESPONSE_BYTES},
    ],
)
def test_validate_flat_response_rejects_what_the_block_would_not_accept(bad: Any) -> None:
    with pytest.raises(LocalProtocolError):
        validate_flat_response(bad)


def test_validate_flat_response_measures_the_escaped_size() -> None:
    # 8,000 snowmen: 24,000 bytes of UTF-8, 48,000 as JSON with \u escapes.
    snowmen = {"answer": "\u2603" * 8000}
    with pytest.raises(LocalProtocolError):
        validate_flat_response(snowmen)
    assert validate_flat_response({"answer": "\u2603" * 5000})["answer"] == "\u2603" * 5000


def test_the_limit_is_strict() -> None:
    overhead = response_bytes({"a": ""})
    just_under = {"a": "x" * (CONNECT_MAX_RESPONSE_BYTES - overhead - 1)}
    at_limit = {"a": "x" * (CONNECT_MAX_RESPONSE_BYTES - overhead)}
    assert validate_flat_response(just_under) == just_under
    with pytest.raises(LocalProtocolError):
        validate_flat_response(at_limit)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short.", 100, "Short."),
        ("One. Two. Three.", 12, "One. Two."),
        ("One. Two. Three.", 9, "One. Two."),
        ("One. Two. Three.", 8, "One."),
        ("Is it? Yes! Fine.", 12, "Is it? Yes!"),
        ("See 3.5 GHz bands. Done.", 10, "See 3.5."),
        ("no sentence end here at all", 15, "no sentence."),
        ("Supercalifragilistic", 5, "Super"),
        ("Anything", 0, ""),
    ],
)
def test_truncate_at_sentence(text: str, limit: int, expected: str) -> None:
    out = truncate_at_sentence(text, limit)
    assert out == expected
    assert len(out) <= max(limit, 0)


def test_fit_response_leaves_a_fitting_response_alone() -> None:
    response = {"answer": "Fine.", "next": "continue"}
    assert fit_response(response) == response


def test_fit_response_never_touches_other_keys() -> None:
    response = {"answer": "Fine.", "blob": "y" * CONNECT_MAX_RESPONSE_BYTES}
    fitted = fit_response(response)
    assert fitted["blob"] == response["blob"]
    with pytest.raises(LocalProtocolError):
        validate_flat_response(fitted)


def test_an_oversized_extra_becomes_an_error_result_not_an_exception() -> None:
    config = AgentConfig(greeting="Hello. " + "x" * CONNECT_MAX_RESPONSE_BYTES)
    # A single 32 KB "word" cannot be cut at a sentence; the guard still answers.
    app = build_app(store=MemoryStore(), config=config)
    handler = connect_handler(app, log=StepLogger(io.StringIO()))

    result = handler(load("voice_start"), LambdaContext())

    assert response_bytes(result) < CONNECT_MAX_RESPONSE_BYTES
    assert result["answer"] == "Hello."
    assert result["truncated"] == "true"


# --- the deadline ------------------------------------------------------------------------
def test_a_slow_answer_returns_the_fallback_within_budget_and_is_kept_for_the_retry() -> None:
    slow = GateAnswerer()
    logger = StepLogger(io.StringIO(), keep=True)
    handler = make(answerer=slow, logger=logger, budget_s=0.2, fallback_text="One moment.")
    event = load("voice_prompt")
    try:
        result = handler(event, LambdaContext())

        assert slow.entered.wait(BOUND_S)  # the answer really was running
        assert result == {
            "answer": "One moment.",
            "intent": "none",
            "handoff": "false",
            "next": "fallback",
            "sessionTurn": "1",
        }
        assert handler.stats["fallbacks"] == 1
    finally:
        slow.gate.set()
        assert handler.drain(BOUND_S)

    # The flow's fallback branch invokes again with the same request: the answer that
    # finished late is returned, and the agent does not run a second time.
    retried = handler(event, LambdaContext())

    assert retried["next"] == "continue"
    assert retried["answer"] == expected_answer(event["Details"]["Parameters"]["utterance"])
    assert slow.calls == 1
    assert handler.stats["runs"] == 1
    logged = [r["outcome"] for r in logger.records or [] if r.get("step") == "contact_flow"]
    assert logged == ["fallback", "replay"]


def test_the_flows_ask_again_waits_for_the_answer_still_running() -> None:
    """A slow model: the first invocation falls back, the flow's ask-again (the same
    request) arrives while the answer still runs and returns that answer; no second turn
    and no second model call."""
    store = ReadCountingStore()
    slow = GateAnswerer()
    logger = StepLogger(io.StringIO(), keep=True)
    handler = make(store, answerer=slow, logger=logger, budget_s=0.2, poll_s=0.01)
    event = load("voice_prompt")
    key = event["Details"]["ContactData"]["InitialContactId"]
    results: dict[str, dict[str, Any]] = {}
    try:
        results["first"] = handler(json.loads(json.dumps(event)), LambdaContext())
        assert results["first"]["next"] == "fallback"
        assert slow.entered.is_set() and not slow.gate.is_set()  # still answering

        def ask_again() -> None:
            results["again"] = handler(json.loads(json.dumps(event)), LambdaContext())

        retry = threading.Thread(target=ask_again)
        reads = store.reads
        retry.start()
        wait_until(lambda: store.reads >= reads + 3, "the ask-again to wait for the answer")
        assert "again" not in results
        slow.gate.set()
        retry.join(BOUND_S)
    finally:
        slow.gate.set()
        assert handler.drain(BOUND_S)

    again = results["again"]
    assert again["next"] == "continue"
    assert again["answer"] == expected_answer(event["Details"]["Parameters"]["utterance"])
    assert again["sessionTurn"] == results["first"]["sessionTurn"] == "1"
    assert slow.calls == 1
    assert handler.stats["runs"] == 1
    assert [t["role"] for t in history(store, key)] == ["user", "assistant"]
    logged = [r["outcome"] for r in logger.records or [] if r.get("step") == "contact_flow"]
    assert logged == ["fallback", "waited"]


def test_past_the_answer_limit_a_repeat_runs_the_turn_again() -> None:
    slow = GateAnswerer()
    handler = make(answerer=slow, budget_s=0.2, answer_limit_s=0.2)
    event = load("voice_prompt")
    try:
        assert handler(event, LambdaContext())["next"] == "fallback"
        second = threading.Thread(target=handler, args=(event, LambdaContext()))
        second.start()
        wait_until(lambda: handler.stats["runs"] == 2, "the repeat to run the turn again")
        slow.gate.set()
        second.join(BOUND_S)
    finally:
        slow.gate.set()
        assert handler.drain(BOUND_S)
    assert slow.calls == 2


def test_the_deadline_follows_lambdas_remaining_time() -> None:
    slow = GateAnswerer()
    logger = StepLogger(io.StringIO(), keep=True)
    handler = make(answerer=slow, logger=logger, budget_s=5.0, margin_s=0.1)
    try:
        result = handler(load("voice_prompt"), LambdaContext(timeout_s=0.35))
    finally:
        slow.gate.set()
        assert handler.drain(BOUND_S)

    assert result["next"] == "fallback"
    (line,) = [r for r in logger.records or [] if r.get("step") == "contact_flow"]
    assert 0 <= line["budgetMs"] <= 250  # 350 ms left at most, less the 100 ms margin


def test_the_deadline_follows_the_block_timeout() -> None:
    logger = StepLogger(io.StringIO(), keep=True)
    handler = make(logger=logger, budget_s=7.9, block_timeout_s=2, margin_s=0.5)

    handler(load("voice_prompt"), LambdaContext(timeout_s=30))

    (line,) = [r for r in logger.records or [] if r.get("step") == "contact_flow"]
    assert line["budgetMs"] == 1500.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"block_timeout_s": 9},
        {"block_timeout_s": 0.5},
        {"budget_s": 0},
        {"margin_s": 8},
        {"poll_s": 0},
        {"budget_s": 3.5, "answer_limit_s": 1.0},
        {"utterance_parameter": ""},
    ],
)
def test_bad_settings_are_configuration_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        connect_handler(build_app(store=MemoryStore()), **kwargs)


def test_the_agent_must_be_an_agent_or_its_app() -> None:
    with pytest.raises(ConfigurationError):
        connect_handler(object())  # type: ignore[arg-type]


def test_a_bare_agent_works_with_an_explicit_store() -> None:
    store = MemoryStore()
    app = build_app(store=UnusableStore())
    handler = connect_handler(app.agent, store=store, log=StepLogger(io.StringIO()))  # type: ignore[attr-defined]

    result = handler(load("voice_prompt"), LambdaContext())

    assert result["intent"] == "answer"
    assert len(history(store, load("voice_prompt")["Details"]["ContactData"]["ContactId"])) == 2


# --- retries -----------------------------------------------------------------------------
def test_a_retried_request_returns_the_same_result_without_running_again(store: Any) -> None:
    counting = CountingAnswerer()
    handler = make(store, answerer=counting)
    event = load("voice_prompt")
    key = event["Details"]["ContactData"]["InitialContactId"]

    first = handler(event, LambdaContext())
    assert handler.drain(BOUND_S)  # the result is stored just after it is handed over
    before = store.get(key)
    retries = [handler(json.loads(json.dumps(event)), LambdaContext()) for _ in range(3)]

    assert retries == [first] * 3
    assert counting.calls == 1
    assert handler.stats == {"runs": 1, "replays": 3, "fallbacks": 0, "errors": 0, "warmups": 0}
    after = store.get(key)
    assert after is not None and before is not None
    assert (after.turn, after.version, after.data) == (before.turn, before.version, before.data)


def test_a_retry_in_another_environment_gets_the_stored_result(store: Any) -> None:
    counting = CountingAnswerer()
    first_env = make(store, answerer=counting)
    second_env = make(store, answerer=counting)
    event = load("chat_prompt")

    first = first_env(event, LambdaContext())
    second = second_env(event, LambdaContext())

    assert second == first
    assert counting.calls == 1
    assert first_env.stats["runs"] == 1 and second_env.stats["runs"] == 0
    assert second_env.stats["replays"] == 1


def test_a_new_turn_runs_even_with_the_same_words() -> None:
    counting = CountingAnswerer()
    handler = make(answerer=counting)
    event = load("voice_prompt")
    other = with_params(event, utterance="what plans do you have", turn="1")

    a1 = handler(event, LambdaContext())
    handler(other, LambdaContext())
    a2 = handler(event, LambdaContext())  # same request, but the turn moved since
    a3 = handler(with_params(event, turn="4"), LambdaContext())  # sessionTurn passed back

    assert counting.calls == 4
    assert [a1["sessionTurn"], a2["sessionTurn"], a3["sessionTurn"]] == ["1", "3", "4"]
    assert a1["answer"] == a2["answer"] == a3["answer"]


def test_the_fingerprint_is_the_contact_and_every_parameter() -> None:
    event = parse_contact_flow(load("voice_prompt"))
    same = parse_contact_flow(with_params(load("voice_prompt")))
    other_turn = parse_contact_flow(with_params(load("voice_prompt"), turn="9"))
    transferred = parse_contact_flow(load("transfer"))

    assert request_fingerprint(event) == request_fingerprint(same)
    assert request_fingerprint(event) != request_fingerprint(other_turn)
    assert request_fingerprint(event) != request_fingerprint(transferred)


def test_a_retry_that_arrives_while_the_first_runs_waits_for_it() -> None:
    store = ReadCountingStore()
    slow = GateAnswerer()
    handler = make(store, answerer=slow, budget_s=BOUND_S, poll_s=0.01)
    event = load("voice_prompt")
    results: dict[str, dict[str, Any]] = {}

    def invoke(name: str) -> None:
        results[name] = handler(json.loads(json.dumps(event)), LambdaContext())

    first = threading.Thread(target=invoke, args=("first",))
    first.start()
    assert slow.entered.wait(BOUND_S)
    reads = store.reads
    retry = threading.Thread(target=invoke, args=("retry",))
    retry.start()
    wait_until(lambda: store.reads >= reads + 3, "the retry to poll the store")
    slow.gate.set()
    first.join(BOUND_S)
    retry.join(BOUND_S)
    assert handler.drain(BOUND_S)

    assert results["retry"] == results["first"]
    assert results["first"]["next"] == "continue"
    assert slow.calls == 1
    assert handler.stats["runs"] == 1


def test_an_agent_failure_is_an_error_result_and_the_retry_runs_again() -> None:
    store = MemoryStore()
    app = build_app(store=store, answerer=FailingAnswerer())
    handler = connect_handler(app, log=StepLogger(io.StringIO()))
    event = load("voice_prompt")

    failed = handler(event, LambdaContext())
    again = handler(event, LambdaContext())

    assert failed["next"] == "error"
    assert failed["error"] == "internal error"
    assert again["next"] == "error"
    assert handler.stats["runs"] == 2


# --- warm-ups ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["lambda_warmer_first", "plugin_payload", "eventbridge_scheduled", "warmline_prewarm"],
)
def test_warm_up_pings_never_touch_the_store_or_run_the_agent(name: str) -> None:
    counting = CountingAnswerer()
    app = build_app(store=UnusableStore(), answerer=counting)
    prewarms: list[int] = []
    app.prewarm(lambda: prewarms.append(1))
    handler = connect_handler(app, store=UnusableStore(), log=StepLogger(io.StringIO()))

    result = handler(load(name, EVENTS / "warmup"), LambdaContext())
    again = handler(load(name, EVENTS / "warmup"), LambdaContext())

    assert result["warmup"] is True and again["warmup"] is True
    assert prewarms == [1]  # pre-warm hooks once per environment
    assert counting.calls == 0
    assert handler.stats["runs"] == 0 and handler.stats["warmups"] == 2


def test_the_multi_target_rules_constant_input_is_a_ping() -> None:
    rule_input = load("constant_input", EVENTS / "warmup")
    handler = connect_handler(
        build_app(store=UnusableStore()),
        store=UnusableStore(),
        constant_warmup_inputs=[rule_input],
        log=StepLogger(io.StringIO()),
    )

    result = handler(rule_input, LambdaContext())

    assert result["warmup"] is True and result["source"] == "input"


def test_a_contact_that_carries_warmer_parameters_is_still_a_contact() -> None:
    handler = make()

    result = handler(load("connect_event", EVENTS / "warmup"), LambdaContext())

    assert "warmup" not in result
    assert result["intent"] == "greeting"
    assert handler.stats["runs"] == 1


# --- malformed events --------------------------------------------------------------------
@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_event_is_an_error_result_that_never_touches_the_store(name: str) -> None:
    handler = connect_handler(
        build_app(store=UnusableStore()),
        store=UnusableStore(),
        log=StepLogger(io.StringIO()),
        error_text="Let me get you to someone.",
    )

    result = handler(load(name), LambdaContext())

    assert result["next"] == "error"
    assert result["error"]
    assert result["answer"] == "Let me get you to someone."
    assert handler.stats["errors"] == 1


@pytest.mark.parametrize("raw", [None, 42, "ContactFlowEvent", [], {}, {"Name": "Other"}])
def test_events_of_any_type_are_error_results(raw: Any) -> None:
    result = make()(raw, LambdaContext())
    assert result["next"] == "error"
    assert validate_flat_response(result) == result


@pytest.mark.parametrize("name", MALFORMED)
def test_parse_contact_flow_names_the_problem(name: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_contact_flow(load(name))
    assert str(info.value)


def test_error_response_is_short_and_flat() -> None:
    result = error_response("x\n" * 1000, say="Sorry.", sessionTurn="3")
    assert result["next"] == "error" and result["sessionTurn"] == "3"
    assert len(result["error"]) <= 300 and "\n" not in result["error"]
    assert validate_flat_response(result) == result


def test_an_internal_failure_is_an_error_result() -> None:
    class BrokenStore(MemoryStore):
        def get(self, session_id: str) -> SessionRecord | None:
            raise OSError("disk gone")

    handler = make(BrokenStore())

    result = handler(load("voice_prompt"), LambdaContext())

    assert result["next"] == "error" and result["error"] == "internal error"


# --- transfers ---------------------------------------------------------------------------
def test_a_transferred_contact_keeps_its_history(store: Any) -> None:
    handler = make(store)
    first = load("voice_prompt")
    transfer = load("transfer")
    initial = transfer["Details"]["ContactData"]["InitialContactId"]
    assert transfer["Details"]["ContactData"]["ContactId"] != initial

    handler(first, LambdaContext())
    result = handler(transfer, LambdaContext())
    assert handler.drain(BOUND_S)

    assert result["next"] == "handoff"
    assert result["sessionTurn"] == "2"
    turns = history(store, initial)
    users = [t["text"] for t in turns if t["role"] == "user"]
    assert users == [
        first["Details"]["Parameters"]["utterance"],
        transfer["Details"]["Parameters"]["utterance"],
    ]
    assert store.get(transfer["Details"]["ContactData"]["ContactId"]) is None
    record = store.get(initial)
    assert record is not None
    assert record.data["contact"]["contactId"] == transfer["Details"]["ContactData"]["ContactId"]
    assert record.data[SESSION_DATA_KEY]["state"] == "done"


def test_without_initial_contact_id_the_contact_id_is_the_key() -> None:
    event = load("voice_prompt")
    del event["Details"]["ContactData"]["InitialContactId"]
    parsed = parse_contact_flow(event)
    assert parsed.initial_contact_id == parsed.contact_id


# --- the shipped example -------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "connect"


def _targets(action: dict[str, Any]) -> set[str]:
    transitions = action.get("Transitions", {})
    out = {transitions["NextAction"]} if "NextAction" in transitions else set()
    for branch in (*transitions.get("Conditions", []), *transitions.get("Errors", [])):
        out.add(branch["NextAction"])
    return out


def test_the_example_flow_is_connected_and_branches_on_every_next_value() -> None:
    flow = json.loads((EXAMPLE / "contact_flow.json").read_text())
    actions = {a["Identifier"]: a for a in flow["Actions"]}
    assert len(actions) == len(flow["Actions"])

    reachable, todo = set(), [flow["StartAction"]]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        assert name in actions, f"a transition goes to the unknown action {name!r}"
        reachable.add(name)
        todo.extend(_targets(actions[name]))
    assert reachable == set(actions)

    known = {"utterance", "digits", "turn"}
    for action in actions.values():
        if action["Type"] == "InvokeLambdaFunction":
            params = action["Parameters"]
            assert params["ResponseValidation"]["ResponseType"] == "STRING_MAP"
            assert 1 <= int(params["InvocationTimeLimitSeconds"]) <= 8
            assert set(params["LambdaInvocationAttributes"]) <= known
            assert action["Transitions"]["Errors"]  # a failed block must go somewhere
        if action["Type"] == "Compare":
            assert action["Parameters"]["ComparisonValue"] == "$.External.next"
            operands = {c["Condition"]["Operands"][0] for c in action["Transitions"]["Conditions"]}
            assert operands == {"continue", "handoff", "end", "fallback", "error"}


def test_the_example_handler_answers_a_contact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    monkeypatch.setenv("WARMLINE_SQLITE_PATH", str(tmp_path / "sessions.sqlite3"))
    monkeypatch.delenv("WARMLINE_TABLE", raising=False)
    spec = importlib.util.spec_from_file_location("connect_example", EXAMPLE / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: ConnectHandler = module.handler
    try:
        warm = handler(load("lambda_warmer_first", EVENTS / "warmup"), LambdaContext())
        greeting = handler(load("voice_start"), LambdaContext())
        answer = handler(load("voice_prompt"), LambdaContext())
        assert handler.drain(BOUND_S)
    finally:
        handler.store.close()  # type: ignore[attr-defined]

    assert warm["warmup"] is True
    assert greeting["intent"] == "greeting"
    assert answer["intent"] == "answer" and answer["next"] == "continue"
    assert (tmp_path / "sessions.sqlite3").exists()


def test_a_null_parameter_counts_as_absent() -> None:
    event = load("voice_start")
    event["Details"]["Parameters"] = {"utterance": None, "turn": "0"}

    parsed = parse_contact_flow(event)
    result = make()(event, LambdaContext())

    assert parsed.parameters == {"turn": "0"}
    assert result["intent"] == "greeting"


def test_reply_response_reads_text_and_end_frames() -> None:
    from warmline.core.relay import End, Text

    said = [Text(token="Okay, "), "one moment. ", Text(token="Bye!", last=True)]
    ended = reply_response([*said, End()], turn=7, fields={"intent": "end"})
    handed = reply_response(
        [Text(token="Hold on.", last=True), End({"reason": "handoff", "trigger": "key 0"})],
        turn=8,
        fields={"intent": "handoff", "answered": False},
        topic="billing",
    )

    assert ended == {
        "answer": "Okay, one moment. Bye!",
        "intent": "end",
        "handoff": "false",
        "next": "end",
        "sessionTurn": "7",
    }
    assert handed["next"] == "handoff" and handed["handoffReason"] == "key 0"
    assert handed["answered"] == "false" and handed["topic"] == "billing"
    assert collect_reply(None) == [] and collect_reply("hi") == ["hi"]


def test_importing_the_adapter_loads_nothing_costly() -> None:
    from warmline.testing import modules_after

    loaded = modules_after("import warmline.adapters.connect_flow")
    costly = {"asyncio", "typing", "logging", "ssl", "http.client", "hashlib", "sqlite3"}
    heavy = {"boto3", "botocore", "numpy", "twilio", "websockets"}
    assert sorted(costly & loaded) == []
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []
