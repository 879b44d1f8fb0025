"""``@connections`` faults in ``warmline dev``, seen from the phone: what a caller hears when
posts are throttled, fail, arrive late or are dropped, or when the caller's network vanishes.

Real parts only: :class:`~warmline.dev.server.DevServer` with the reference agent
(``examples/agent``) in process environments, its SQLite session store under ``tmp_path``,
the stdlib ``@connections`` client (:mod:`warmline.connections.apigw`) posting over HTTP,
and :func:`~warmline.tools.call.run_call` as the caller. The handshake is unsigned: without
``TWILIO_AUTH_TOKEN`` the agent checks no signature.

What a caller needs, and what each test shows:

- a retried post is heard once: every answer complete, with the same words as with no
  faults, never a second ``last: true`` and never API Gateway's error frame;
- one dropped post (reset without an answer) is still delivered, exactly once;
- a caller whose TCP connection is reset mid-answer ends the call cleanly: ``$disconnect``
  with 1006, no traceback, the session kept, and the next call answered normally;
- faults are switched at run time over ``/_warmline/faults`` and from ``--fault`` flags.

Decisions come from the emulator's seeded PRNG, and within one call the posts are
sequential, so a seed injects the same faults on every run (``server.faults.injected``
proves each fault fired).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import sqlite3
import time
import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from warmline.cli import main as cli_main
from warmline.cli.dev import add_parser as add_dev_parser
from warmline.cli.dev import with_fault_flags
from warmline.config import DevConfig, parse_config
from warmline.config.faults import FAULTS, FaultPlan, Trigger, parse_fault_flag, parse_faults
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer
from warmline.errors import ConfigurationError
from warmline.tools.call import CallResult, Step, run_call
from warmline.tools.load import run_load

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent"
#: Questions the shipped knowledge base answers in more than one text frame.
QUESTIONS = ("What are your support hours?", "How do I pay my bill?", "How do I reset my router?")
SEED = 20261123
#: A lost turn shows as a timeout; short enough that a failing test fails fast.
TURN_TIMEOUT_S = 10.0


def _agent_config(tmp_path: Path, faults: Mapping[str, Any] | None = None) -> DevConfig:
    """The shipped agent's config: SQLite in ``tmp_path``, no schedules, no auth token."""
    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    env = dict(data["functions"]["agent"].get("environment", {}))
    env.pop("TWILIO_AUTH_TOKEN", None)
    env["WARMLINE_SQLITE_PATH"] = str(tmp_path / "sessions.sqlite3")
    data["functions"]["agent"]["environment"] = env
    data["schedules"] = {}
    if faults is not None:
        data["faults"] = dict(faults)
    return parse_config(data, base_dir=AGENT)


@asynccontextmanager
async def agent_server(
    tmp_path: Path, faults: Mapping[str, Any] | None = None
) -> AsyncIterator[DevServer]:
    """The emulator running the agent; Lambda log lines go to ``tmp_path / "dev.log"``."""
    sink = LogSink(console=None, path=tmp_path / "dev.log")
    server = DevServer(_agent_config(tmp_path, faults), port=0, log_sink=sink)
    try:
        await server.start()
        yield server
    finally:
        await server.close()
        sink.close()


async def call(server: DevServer, questions: tuple[str, ...] = QUESTIONS, **kw: Any) -> CallResult:
    """One unsigned call asking ``questions`` in turn."""
    steps = [Step("say", q) for q in questions]
    return await run_call(server.ws_url, steps, turn_timeout_s=TURN_TIMEOUT_S, **kw)


def assert_answered_once_as(result: CallResult, baseline: CallResult) -> None:
    """Every turn of ``result`` complete, heard once, word for word as in ``baseline``."""
    assert result.rejected is None, "the unsigned handshake was refused (TWILIO_AUTH_TOKEN set?)"
    assert result.closed is None
    # No late text frame (a second answer) and no {"message": "Internal server error"}.
    assert result.other_frames == []
    assert result.greeting == baseline.greeting
    assert [t.prompt for t in result.turns] == [t.prompt for t in baseline.turns]
    for turn, expected in zip(result.turns, baseline.turns, strict=True):
        assert turn.complete, f"no last:true for {turn.prompt!r}: {turn.answer!r}"
        # Frame by frame: a post delivered twice would repeat a token.
        assert turn.tokens == expected.tokens


def assert_sane_baseline(baseline: CallResult) -> None:
    """The fault-free call answered every question with several frames (or the
    comparisons above prove little)."""
    assert baseline.rejected is None and baseline.closed is None
    assert baseline.other_frames == []
    assert "Brightwave" in baseline.greeting
    assert len(baseline.turns) == len(QUESTIONS)
    for turn in baseline.turns:
        assert turn.complete and len(turn.tokens) >= 2, turn


def log_steps(path: Path) -> list[dict[str, Any]]:
    """The app's JSON step lines in the dev log (CloudWatch lines skipped)."""
    steps: list[dict[str, Any]] = []
    for raw in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line still being written
            line = json.loads(raw)["line"]
            if line.startswith("{"):
                steps.append(json.loads(line))
    return steps


def assert_no_failures(path: Path) -> None:
    """No invocation failed: no ``[ERROR]``/traceback lines, no REPORT with a ``Status``
    (error, timeout), no step logged at level error."""
    lines = [json.loads(raw)["line"] for raw in path.read_text().splitlines()]
    failed = [
        line
        for line in lines
        if line.startswith("[ERROR]")
        or "Traceback" in line
        or (line.startswith("REPORT") and "Status:" in line)
    ]
    assert failed == []
    assert [s for s in log_steps(path) if s.get("level") == "error"] == []


async def wait_for_step(path: Path, step: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The first ``step`` line in the dev log, waiting up to ``timeout_s`` for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [s for s in log_steps(path) if s.get("step") == step]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {step!r} step in the dev log after {timeout_s} s")
        await asyncio.sleep(0.02)


# --- 1. each fault, many posts hit --------------------------------------------------------

#: Rates high enough that several of a call's ~9 posts (and their retries) are hit.
CONNECTION_FAULTS: dict[str, dict[str, Any]] = {
    "connections.throttle": {"rate": 0.4},
    "connections.error": {"rate": 0.4},
    "connections.delay": {"rate": 0.5, "ms": 40},
    "connections.drop": {"rate": 0.3},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONNECTION_FAULTS))
def test_every_answer_is_heard_once_and_unchanged_under_a_connections_fault(
    tmp_path: Path, name: str
) -> None:
    async def scenario() -> tuple[CallResult, CallResult, dict[str, int]]:
        async with agent_server(tmp_path) as server:
            baseline = await call(server)
            server.set_faults(parse_faults({"seed": SEED, name: CONNECTION_FAULTS[name]}))
            faulted = await call(server)
            return baseline, faulted, dict(server.faults.injected)

    baseline, faulted, injected = asyncio.run(scenario())
    assert_sane_baseline(baseline)
    assert injected.get(name, 0) > 1, injected  # the fault fired, more than once
    assert set(injected) == {name}
    assert_answered_once_as(faulted, baseline)
    assert_no_failures(tmp_path / "dev.log")  # every post succeeded in the end


# --- 2. exactly one dropped post ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "after",
    [
        0,  # the greeting's first post: a fresh socket reset without an answer
        4,  # a later post, on the kept-alive socket of a warm environment
    ],
)
def test_one_dropped_post_is_still_delivered_exactly_once(
    tmp_path: Path, after: int, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = {"seed": SEED, "connections.drop": {"after": after, "count": 1}}

    async def scenario() -> tuple[CallResult, CallResult, dict[str, int]]:
        async with agent_server(tmp_path, faults) as server:
            faulted = await call(server)
            injected = dict(server.faults.injected)
            server.set_faults(FaultPlan())
            baseline = await call(server)
            assert not server.faults.injected
            return faulted, baseline, injected

    faulted, baseline, injected = asyncio.run(scenario())
    assert injected == {"connections.drop": 1}
    assert capsys.readouterr().err.count("[warmline fault] connections.drop") == 1
    assert_sane_baseline(baseline)
    assert_answered_once_as(faulted, baseline)
    assert_no_failures(tmp_path / "dev.log")


# --- 3. the caller's network vanishes mid-answer ---------------------------------------------


@pytest.mark.slow
def test_a_caller_reset_mid_answer_ends_the_call_cleanly_and_the_next_call_is_answered(
    tmp_path: Path,
) -> None:
    log = tmp_path / "dev.log"
    question = QUESTIONS[0]

    async def scenario() -> tuple[CallResult, dict[str, Any], CallResult, dict[str, int]]:
        async with agent_server(tmp_path) as server:
            # Armed when the first prompt goes out, so the greeting is spared and the
            # first post after it (the answer's first text frame) is the one that aborts.
            def arm(_prompt: str) -> None:
                if not server.faults.plan.triggers:
                    server.set_faults(parse_faults({"client.abort": {"count": 1}}))

            aborted = await call(server, (question, QUESTIONS[1]), on_prompt=arm)
            disconnect = await wait_for_step(log, "disconnect")
            injected = dict(server.faults.injected)
            server.set_faults(FaultPlan())
            after = await call(server, (question,))
            return aborted, disconnect, after, injected

    aborted, disconnect, after, injected = asyncio.run(scenario())
    assert injected == {"client.abort": 1}
    # What the caller saw: the line went dead mid-answer, no close frame.
    assert aborted.rejected is None
    assert aborted.closed == "1006"
    assert len(aborted.turns) == 1  # the second question was never asked
    cut = aborted.turns[0]
    assert not cut.complete
    # The next call is answered normally, and what the first caller heard is its start.
    assert after.closed is None and after.other_frames == []
    (answer,) = after.turns
    assert answer.complete and len(answer.tokens) >= 2
    assert answer.answer.startswith(cut.answer)

    # What the function saw: $disconnect with 1006, and the streaming answer stopped at
    # the 410 instead of failing.
    steps = log_steps(log)
    assert disconnect["statusCode"] == 1006
    connection_id = disconnect["connectionId"]
    assert any(s.get("step") == "gone" and s.get("connectionId") == connection_id for s in steps), (
        "the answer still streaming did not see the caller gone"
    )
    assert_no_failures(log)

    # The session: the App does nothing to it on $disconnect (core/app.py, no handler in
    # the agent), so the call's record stays, readable until its TTL.
    db = sqlite3.connect(tmp_path / "sessions.sqlite3")
    try:
        rows = db.execute(
            "select connection_id, turn, expires_at, data from warmline_sessions"
        ).fetchall()
    finally:
        db.close()
    kept = [r for r in rows if r[0] == connection_id]
    assert len(rows) == 2 and len(kept) == 1
    _, turn, expires_at, data = kept[0]
    assert turn == 1
    assert expires_at > time.time()
    history = json.loads(data)["history"]
    assert {"role": "user", "text": question} in history


# --- 4. the control API --------------------------------------------------------------------


async def faults_api(
    server: DevServer, method: str, body: bytes | None = None
) -> tuple[int, str | None, dict[str, Any]]:
    """``METHOD /_warmline/faults`` over a real HTTP connection: (status, Allow, JSON)."""
    url = urlsplit(server.web_url + "faults")

    def request() -> tuple[int, str | None, dict[str, Any]]:
        conn = http.client.HTTPConnection(url.netloc, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, url.path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader("Allow"), json.loads(response.read())
        finally:
            conn.close()

    return await asyncio.to_thread(request)


@pytest.mark.slow
def test_the_faults_control_api_shows_replaces_and_switches_off_the_plan(tmp_path: Path) -> None:
    initial = {"seed": 3, "connections.throttle": {"rate": 1.0, "count": 2}}

    async def scenario() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with agent_server(tmp_path, initial) as server:
            seen["first"] = await faults_api(server, "GET")
            seen["call1"] = await call(server, QUESTIONS[:1])
            seen["after1"] = await faults_api(server, "GET")
            # The nested TOML shape, as JSON.
            table = {"seed": 5, "connections": {"error": {"count": 1}}}
            seen["put"] = await faults_api(server, "PUT", json.dumps(table).encode())
            seen["call2"] = await call(server, QUESTIONS[:1])
            seen["after2"] = await faults_api(server, "GET")
            seen["bad_json"] = await faults_api(server, "PUT", b"{not json")
            seen["unknown"] = await faults_api(server, "PUT", b'{"connections.explode": 0.5}')
            seen["bad_rate"] = await faults_api(server, "PUT", b'{"connections.drop": 2}')
            seen["post"] = await faults_api(server, "POST", b"{}")
            seen["after_bad"] = await faults_api(server, "GET")
            seen["off"] = await faults_api(server, "PUT", b"{}")
            seen["call3"] = await call(server, QUESTIONS[:1])
            seen["after3"] = await faults_api(server, "GET")
        return seen

    seen = asyncio.run(scenario())
    status, _, state = seen["first"]
    assert status == 200
    assert state["faults"] == {
        "seed": 3,
        "connections.throttle": {"rate": 1.0, "after": 0, "ms": 0.0, "count": 2},
    }
    assert state["injected"] == {}
    assert set(state["known"]) == set(FAULTS)
    for name in ("call1", "call2", "call3"):
        result = seen[name]
        assert result.closed is None and result.other_frames == []
        assert [t.complete for t in result.turns] == [True]
    # The call saw the configured fault: two posts answered 429, then retried.
    assert seen["after1"][2]["injected"] == {"connections.throttle": 2}

    # PUT replaces the plan (counters start over) and answers the new state.
    status, _, state = seen["put"]
    assert status == 200
    assert state["faults"] == {
        "seed": 5,
        "connections.error": {"rate": 1.0, "after": 0, "ms": 0.0, "count": 1},
    }
    assert state["injected"] == {}
    assert seen["after2"][2]["injected"] == {"connections.error": 1}

    # Bad requests are refused with a message naming the problem, and change nothing.
    status, _, body = seen["bad_json"]
    assert status == 400 and body["message"].startswith("not JSON")
    status, _, body = seen["unknown"]
    assert status == 400 and "connections.explode" in body["message"]
    status, _, body = seen["bad_rate"]
    assert status == 400 and "faults.connections.drop.rate" in body["message"]
    status, allow, body = seen["post"]
    assert status == 405 and allow == "GET, PUT"
    assert seen["after_bad"][2]["faults"] == seen["put"][2]["faults"]
    assert seen["after_bad"][2]["injected"] == {"connections.error": 1}

    # PUT {} switches every fault off: the next call injects nothing.
    status, _, state = seen["off"]
    assert status == 200 and state["faults"] == {} and state["injected"] == {}
    assert seen["after3"][2]["injected"] == {}


# --- 5. a small chaos load ------------------------------------------------------------------


@pytest.mark.slow
def test_a_chaos_load_loses_and_doubles_no_turn(tmp_path: Path) -> None:
    calls, turns = 10, 3
    faults = {
        "seed": SEED,
        "connections.throttle": 0.2,
        "connections.drop": 0.05,
        "connections.delay": {"rate": 0.2, "ms": 30},
    }

    async def scenario() -> tuple[Any, dict[str, int]]:
        async with agent_server(tmp_path, faults) as server:
            result = await run_load(
                server.ws_url,
                calls=calls,
                concurrency=5,
                turns=turns,
                rate=20.0,
                questions=QUESTIONS,
                turn_timeout_s=TURN_TIMEOUT_S,
                deadline_s=60.0,
            )
            return result, dict(server.faults.injected)

    result, injected = asyncio.run(scenario())
    assert result.errors == {}, result.summary()
    assert result.lost == 0 and result.doubled == 0, result.summary()
    assert result.turns_sent == result.answered == calls * turns
    assert result.completed == calls
    for name in ("connections.throttle", "connections.drop", "connections.delay"):
        assert injected.get(name, 0) > 0, injected
    assert_no_failures(tmp_path / "dev.log")


# --- 6. warmline dev --fault ----------------------------------------------------------------


def test_fault_flags_add_to_and_override_the_faults_table_and_keep_its_seed(
    tmp_path: Path,
) -> None:
    table = {
        "seed": 7,
        "connections.throttle": 0.1,
        "lambda": {"kill": {"ms": 150, "count": 1}},
    }
    config = _agent_config(tmp_path, table)
    flags = ["connections.throttle=0.5", "client.abort", "connections.delay=ms=25,after=2"]
    changed = with_fault_flags(config, flags, None)
    triggers = changed.faults.triggers
    assert triggers["connections.throttle"] == Trigger(rate=0.5)  # the flag wins
    assert triggers["lambda.kill"] == Trigger(ms=150.0, count=1)  # the table's stays
    assert triggers["client.abort"] == Trigger()  # a bare name fires at every chance
    assert triggers["connections.delay"] == Trigger(after=2, ms=25.0)
    assert changed.faults.seed == 7
    # The config it was given is not changed.
    assert config.faults.triggers["connections.throttle"] == Trigger(rate=0.1)
    assert "client.abort" not in config.faults.triggers


def test_fault_seed_overrides_the_tables_and_no_flags_leave_the_config_alone(
    tmp_path: Path,
) -> None:
    config = _agent_config(tmp_path, {"seed": 7, "connections.drop": 0.2})
    assert with_fault_flags(config, [], None) is config
    reseeded = with_fault_flags(config, [], 42)
    assert reseeded.faults.seed == 42
    assert reseeded.faults.triggers == config.faults.triggers
    plain = _agent_config(tmp_path, None)
    flagged = with_fault_flags(plain, ["lambda.kill=ms=200,count=2,functions=agent"], None)
    assert flagged.faults == FaultPlan(
        {"lambda.kill": Trigger(count=2, ms=200.0, functions=("agent",))}, None
    )


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ("connections.explode", "connections.explode"),
        ("connections.drop=after", "expected key=value"),
        ("connections.drop=rate=1.5", "faults.connections.drop.rate must be in 0..1"),
        ("lambda.kill=ms=soon", "ms is not a number"),
        ("connections.delay", "faults.connections.delay needs ms"),
        ("lambda.kill=functions=nobody", "'nobody'"),
        ("connections.drop=functions=agent", "faults.connections.drop.functions"),
        ("connections.drop=speed=3", "speed"),
    ],
)
def test_a_bad_fault_flag_is_a_configuration_error_naming_it(
    tmp_path: Path, flag: str, named: str
) -> None:
    config = _agent_config(tmp_path, {"seed": 1})
    with pytest.raises(ConfigurationError) as raised:
        with_fault_flags(config, ["client.abort", flag], None)
    assert named in str(raised.value)
    with pytest.raises(ConfigurationError):
        parse_fault_flag(flag, ("agent",))


# A ConfigurationError (a ValueError) from a well-formed NAME=RATE was once swallowed by
# the `except ValueError` meant for float() and reported as "expected key=value".
@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ("connections.drop=1.5", "faults.connections.drop.rate must be in 0..1"),
        ("connections.explode=0.5", "unknown fault 'faults.connections.explode'"),
        ("connections.delay=0.5", "faults.connections.delay needs ms > 0"),
    ],
)
def test_a_bad_fault_flag_given_as_a_rate_names_what_is_wrong_with_it(
    flag: str, named: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_fault_flag(flag, ("agent",))
    assert named in str(raised.value)


def test_dev_parses_repeated_fault_flags_and_a_seed(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="warmline")
    add_dev_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["dev", "--fault", "connections.drop=0.05", "--fault", "client.abort", "--fault-seed", "9"]
    )
    assert args.fault == ["connections.drop=0.05", "client.abort"]
    assert args.fault_seed == 9
    config = with_fault_flags(_agent_config(tmp_path, None), args.fault, args.fault_seed)
    assert config.faults == FaultPlan(
        {"connections.drop": Trigger(rate=0.05), "client.abort": Trigger()}, 9
    )


def test_warmline_dev_refuses_a_bad_fault_flag_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "warmline.toml"
    toml.write_text(
        '[functions.ws]\nhandler = "app.handler"\ncode = "."\n'
        '[websocket]\nstage = "dev"\n[websocket.routes]\n"$default" = "ws"\n'
    )
    status = cli_main(["dev", "--config", str(toml), "--fault", "connections.explode"])
    assert status == 2
    assert "unknown fault 'faults.connections.explode'" in capsys.readouterr().err
