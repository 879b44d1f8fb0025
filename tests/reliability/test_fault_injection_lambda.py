"""Lambda, store and async-delivery faults injected by ``warmline dev``, seen by the caller.

Each test switches on one fault of :mod:`warmline.dev.faults` and drives a real app through
the real emulator (one process per Lambda environment, the ``@connections`` API over HTTP,
SQLite session stores on disk), then checks what a caller needs:

- a killed or throttled invocation costs that one message AWS's ``Internal server error``
  frame, never a partial answer that looks complete, and the call goes on;
- a store outage is an apology the caller hears, and nothing half-written;
- an offloaded answer survives a killed worker, a duplicated delivery and a late one, with
  every token heard exactly once, in order.

Limits are shortened through the config's ``[limits]`` (retry waits, throttle backoff) so the
whole file stays within seconds; fault timing (``ms``) is chosen so that it lands at a known
point of the answer, not by luck (see ``fault_apps/fault_offload_app.py``).
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from warmline.config import parse_config
from warmline.config.faults import parse_faults
from warmline.core.app import STORE_APOLOGY
from warmline.core.session import SessionRecord
from warmline.dev.runtime import LogSink
from warmline.dev.runtime.logs import LogRecord
from warmline.dev.server import DevServer
from warmline.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "examples" / "agent"
FAULT_APPS = Path(__file__).resolve().parent / "fault_apps"
#: AWS's frame when a route's integration fails (docs/protocols.md §2.5).
INTERNAL_ERROR = "Internal server error"
HOURS = "What are your support hours?"
BILL = "How do I pay my bill?"
#: How long any one answer may take here (cold starts on 2 busy cores included).
TURN_TIMEOUT_S = 20.0


# --- the emulator and a caller ----------------------------------------------------------------


@dataclass
class Emulator:
    """A started DevServer and every log line its environments wrote."""

    server: DevServer
    logs: list[LogRecord] = field(default_factory=list)

    def lines(self, function: str) -> list[str]:
        """The log lines of ``function``'s environments, in order."""
        return [r.line for r in self.logs if r.function == function]

    def faults(self, table: Mapping[str, Any]) -> None:
        """Inject ``table`` (a ``[faults]`` table) from now on; counters start over."""
        self.server.set_faults(parse_faults(table, tuple(self.server.config.functions)))

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Wait (bounded) until ``done()``; the test's ordering depends on it."""
        for _ in range(int(TURN_TIMEOUT_S / 0.01)):
            if done():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    def reports(self, function: str) -> int:
        """Invocations of ``function`` finished so far (REPORT lines)."""
        return sum(line.startswith("REPORT") for line in self.lines(function))


@asynccontextmanager
async def emulator(table: dict[str, Any], base_dir: Path) -> AsyncIterator[Emulator]:
    """Run ``table`` (a ``warmline.toml`` as a dict) in a DevServer on a free port."""
    records: list[LogRecord] = []
    sink = LogSink(console=None, on_record=records.append)
    server = DevServer(parse_config(table, base_dir=base_dir), port=0, log_sink=sink)
    await server.start()
    try:
        yield Emulator(server, records)
    finally:
        await server.close()


class Caller:
    """The ConversationRelay side of a call, frame by frame (``run_call`` waits out a
    failed turn's timeout; a test needs the error frame itself)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: Mapping[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def prompt(self, text: str) -> list[dict[str, Any]]:
        """Say ``text``; the frames of the answer (see :meth:`turn`)."""
        await self.send({"type": "prompt", "voicePrompt": text, "lang": "en-US", "last": True})
        return await self.turn()

    async def turn(self) -> list[dict[str, Any]]:
        """Frames until a text frame with ``last: true`` or API Gateway's error frame."""
        frames: list[dict[str, Any]] = []
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), TURN_TIMEOUT_S))
            frames.append(frame)
            if frame.get("last") is True or "message" in frame:
                return frames

    async def rest(self, quiet_s: float = 0.3) -> list[dict[str, Any]]:
        """Whatever still arrives before ``quiet_s`` of silence (late or doubled posts)."""
        frames: list[dict[str, Any]] = []
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), quiet_s)
            except TimeoutError:
                return frames
            frames.append(json.loads(raw))


def text(frames: list[dict[str, Any]]) -> str:
    """What the caller heard: the tokens of the text frames."""
    return "".join(str(f.get("token", "")) for f in frames if f.get("type") == "text")


def complete(frames: list[dict[str, Any]]) -> bool:
    """Exactly one frame ends the answer, the last one, and no error frame came."""
    lasts = [i for i, f in enumerate(frames) if f.get("last") is True]
    return lasts == [len(frames) - 1] and not any("message" in f for f in frames)


def errors(frames: list[dict[str, Any]]) -> list[str]:
    """API Gateway's error frames among ``frames`` (``{"message": ..., "connectionId": ...}``)."""
    return [str(f["message"]) for f in frames if "message" in f]


def stored(path: Path, session_id: str) -> SessionRecord | None:
    """The session record as the SQLite file holds it now."""
    store = SQLiteStore(path)
    try:
        return store.get(session_id)
    finally:
        store.close()


# --- the reference agent, inline --------------------------------------------------------------


def agent_table(tmp_path: Path, *, timeout: float = 30) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((AGENT / "warmline.toml").read_text())
    function = data["functions"]["agent"]
    function["environment"] = {
        **function.get("environment", {}),
        "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
    }
    function["timeout"] = timeout
    data["schedules"] = {}
    data.pop("deploy", None)
    return data


@asynccontextmanager
async def agent_call(emu: Emulator, session_id: str) -> AsyncIterator[Caller]:
    """A connected, set-up call to the agent (its greeting already heard)."""
    async with connect(emu.server.ws_url, compression=None) as ws:
        caller = Caller(ws)
        await caller.send(
            {"type": "setup", "sessionId": session_id, "callSid": "CA" + session_id[2:]}
            | {"from": "+15550100", "to": "+15550101", "customParameters": {}}
        )
        greeting = await caller.turn()
        assert complete(greeting), greeting
        yield caller


# Invocations of "agent" on a call: $connect (1st), setup (2nd), then one per prompt.
FIRST_PROMPT = 2


async def around_a_fault(
    tmp_path: Path,
    table: dict[str, Any],
    plan: dict[str, Any],
    session_id: str,
    second: str = HOURS,
    *,
    rest: bool = False,
) -> tuple[list[Any], list[SessionRecord | None], Emulator]:
    """A call whose first prompt (HOURS) meets ``plan``: the frames of that prompt, of
    ``second`` and (with ``rest``) of whatever came after; the session record before,
    between and after them; and the emulator."""
    sessions = tmp_path / "sessions.sqlite3"
    async with emulator(table, AGENT) as emu:
        emu.faults(plan)
        async with agent_call(emu, session_id) as caller:
            before = stored(sessions, session_id)
            first = await caller.prompt(HOURS)
            middle = stored(sessions, session_id)
            answered = await caller.prompt(second)
            late = await caller.rest() if rest else []
        return [first, answered, late], [before, middle, stored(sessions, session_id)], emu


def test_a_killed_environment_costs_one_turn_and_the_call_goes_on(tmp_path: Path) -> None:
    # The agent answers a prompt in ~15 ms, so a kill timed by the clock alone may land after
    # its last post (seen on a loaded machine: the caller hears the whole answer, then the
    # error frame). A store stall on the same invocation holds the handler at its first
    # store read for 400 ms, and the kill lands inside it: before anything is posted or
    # written, every time.
    fault = {"functions": ["agent"], "after": FIRST_PROMPT, "count": 1}
    plan = {"lambda.kill": {**fault, "ms": 100}, "store.stall": {**fault, "ms": 400}}
    (killed, answered, late), (before, middle, after), emu = asyncio.run(
        around_a_fault(tmp_path, agent_table(tmp_path), plan, "VXkill", BILL, rest=True)
    )
    assert emu.server.faults.injected["lambda.kill"] == 1
    assert len(killed) == 1 and errors(killed) == [INTERNAL_ERROR]  # AWS's frame, no words
    assert complete(answered) and "brightwave" in text(answered).lower()
    assert late == []
    records = [r for r in emu.logs if r.function == "agent"]
    assert sum("Runtime exited with error: signal: killed" in r.line for r in records) == 1
    crash = next(i for i, r in enumerate(records) if "signal: killed" in r.line)
    dead = records[crash].env
    # The environment is gone (never used again); another one answered the next prompt.
    assert not any(r.line.startswith("START") for r in records[crash:] if r.env == dead)
    assert any('"route":"prompt"' in r.line for r in records[crash:] if r.env != dead)
    # The session is intact: the killed turn wrote nothing, the answered one moved it by one.
    assert before is not None and middle == before
    assert after is not None and after.session_id == "VXkill"
    assert after.connection_id == before.connection_id
    assert after.turn == before.turn + 1
    history = json.dumps(after.data)
    assert history.count(BILL) == 1 and HOURS not in history


def test_a_store_outage_is_an_apology_and_nothing_half_written(tmp_path: Path) -> None:
    fail = {"functions": ["agent"], "after": FIRST_PROMPT, "count": 1}
    (apology, answered, _), (before, middle, after), emu = asyncio.run(
        around_a_fault(tmp_path, agent_table(tmp_path), {"store.fail": fail}, "VXfail")
    )
    assert emu.server.faults.injected["store.fail"] == 1
    assert apology == [{"type": "text", "token": STORE_APOLOGY, "last": True}]
    assert before is not None and middle == before  # same record, same version
    assert complete(answered) and "7 in the morning" in text(answered)
    assert after is not None and after.turn == before.turn + 1


def test_a_store_stall_delays_the_answer_but_it_comes_once_and_whole(tmp_path: Path) -> None:
    stall = {"functions": ["agent"], "after": FIRST_PROMPT, "count": 1, "ms": 300}

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Emulator]:
        async with emulator(agent_table(tmp_path), AGENT) as emu:
            emu.faults({"store.stall": stall})
            async with agent_call(emu, "VXstall") as caller:
                answered = await caller.prompt(HOURS)
                late = await caller.rest()
            return answered, late, emu

    answered, late, emu = asyncio.run(scenario())
    assert emu.server.faults.injected["store.stall"] == 1
    assert complete(answered) and "7 in the morning" in text(answered)
    assert late == []  # not a frame twice
    reports = [line for line in emu.lines("agent") if line.startswith("REPORT")]
    durations = [float(line.split("Duration: ")[1].split(" ms")[0]) for line in reports]
    assert max(durations) >= 300  # the stalled invocation really waited


def test_a_store_stall_past_the_function_timeout_kills_the_environment(tmp_path: Path) -> None:
    stall = {"functions": ["agent"], "after": FIRST_PROMPT, "count": 1, "ms": 5000}
    table = agent_table(tmp_path, timeout=2)
    (timed_out, answered, _), (before, middle, after), emu = asyncio.run(
        around_a_fault(tmp_path, table, {"store.stall": stall}, "VXslow")
    )
    assert errors(timed_out) == [INTERNAL_ERROR]
    assert not any(f.get("last") for f in timed_out)
    lines = emu.lines("agent")
    assert sum("Status: timeout" in line for line in lines if line.startswith("REPORT")) == 1
    assert any("Task timed out after 2.00 seconds" in line for line in lines)
    assert before is not None and middle == before  # nothing half-written
    assert complete(answered) and "7 in the morning" in text(answered)
    assert after is not None and after.turn == before.turn + 1


# --- a small inline function: throttles and SQS -----------------------------------------------

RECORDER = """
import json, os

def handler(event, context):
    with open(os.environ["RUNS_PATH"], "a") as fh:
        fh.write(json.dumps({"requestId": context.aws_request_id, "event": event}) + "\\n")
    rc = event.get("requestContext") if isinstance(event, dict) else None
    if rc is not None and rc.get("eventType") != "MESSAGE":
        return {"statusCode": 200}
    if rc is not None:
        return {"statusCode": 200, "body": json.dumps({"echo": json.loads(event["body"])})}
    return {"ok": True}
"""


def recorder_table(tmp_path: Path) -> dict[str, Any]:
    # The code in a folder of its own: the handler records its runs next to it, and on
    # Lambda (so under warmline dev) the task root is read-only.
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "recorder.py").write_text(RECORDER)
    env = {"RUNS_PATH": str(tmp_path / "runs.jsonl")}
    return {
        "functions": {"rec": {"handler": "recorder.handler", "code": "fn", "environment": env}},
        "websocket": {
            "stage": "dev",
            "routes": {"$connect": "rec", "$default": {"function": "rec", "route_response": True}},
        },
        "sqs": {"jobs": {"function": "rec", "batch_size": 1}},
        "limits": {"async_retry_delays_s": [0.05, 0.1], "async_throttle_backoff_s": 0.05},
    }


def runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def lambda_client(server: DevServer) -> Any:
    import boto3
    from botocore.config import Config

    creds = server.developer_credentials
    return boto3.client(
        "lambda",
        endpoint_url=server.lambda_url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_throttles_answer_as_lambda_does_and_async_events_are_retried(tmp_path: Path) -> None:
    runs_path = tmp_path / "runs.jsonl"

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with emulator(recorder_table(tmp_path), tmp_path) as emu:
            server = emu.server
            # A route: $connect is spared, the first message is refused.
            emu.faults({"lambda.throttle": {"after": 1, "count": 1}})
            async with connect(server.ws_url) as ws:
                caller = Caller(ws)
                await caller.send({"n": 1})
                out["refused"] = await caller.turn()
                await caller.send({"n": 2})
                out["answered"] = json.loads(await asyncio.wait_for(ws.recv(), TURN_TIMEOUT_S))
            # The Invoke API, RequestResponse: 429 TooManyRequestsException.
            emu.faults({"lambda.throttle": {"count": 1}})
            client = lambda_client(server)
            try:
                with pytest.raises(client.exceptions.TooManyRequestsException) as refused:
                    await asyncio.to_thread(client.invoke, FunctionName="rec", Payload=b'{"x":1}')
                out["status"] = refused.value.response["ResponseMetadata"]["HTTPStatusCode"]
                out["retry"] = await asyncio.to_thread(
                    client.invoke, FunctionName="rec", Payload=b'{"x":2}'
                )
                out["retry_payload"] = json.loads(out["retry"]["Payload"].read())
                # An Event invoke throttled twice: retried with backoff, run once.
                emu.faults({"lambda.throttle": {"count": 2}})
                accepted = await asyncio.to_thread(
                    client.invoke, FunctionName="rec", InvocationType="Event", Payload=b'{"x":3}'
                )
                out["accepted"] = accepted["StatusCode"]
                # Read the (empty) body: botocore keeps the socket checked out until then,
                # and client.close() would leave it for the garbage collector.
                accepted["Payload"].read()
                assert await server.drain(10)
            finally:
                client.close()
            out["deliveries"] = [(d.function, d.attempts, d.done) for d in server.bus.deliveries]
            out["injected"] = server.faults.injected["lambda.throttle"]
        return out

    out = asyncio.run(scenario())
    assert errors(out["refused"]) == [INTERNAL_ERROR]
    assert out["answered"] == {"echo": {"n": 2}}
    assert out["status"] == 429
    assert out["retry_payload"] == {"ok": True}
    assert out["accepted"] == 202
    assert out["deliveries"] == [("rec", ["throttled", "throttled", "ok"], True)]
    assert out["injected"] == 2
    events = [r["event"] for r in runs(runs_path) if "requestContext" not in r["event"]]
    # x=1 was refused before any environment saw it; x=3 ran exactly once.
    assert events == [{"x": 2}, {"x": 3}]
    messages = [r["event"] for r in runs(runs_path) if "requestContext" in r["event"]]
    bodies = [json.loads(e["body"]) for e in messages if e.get("body")]
    assert bodies == [{"n": 2}]  # the refused message never reached the function


def test_an_sqs_message_duplicated_in_transit_is_delivered_twice(tmp_path: Path) -> None:
    """SQS is at-least-once (docs/protocols.md §4.3): the consumer sees the same messageId twice,
    which is why every async consumer here must be idempotent."""
    runs_path = tmp_path / "runs.jsonl"

    async def scenario() -> tuple[str, Emulator]:
        async with emulator(recorder_table(tmp_path), tmp_path) as emu:
            emu.faults({"async.duplicate": {"count": 1}})
            message_id = emu.server.send_sqs("jobs", '{"job": 1}')
            for _ in range(200):  # bounded poll: both deliveries have run
                if len(runs(runs_path)) >= 2 and await emu.server.drain(0.05):
                    break
                await asyncio.sleep(0.05)
            return message_id, emu

    message_id, emu = asyncio.run(scenario())
    assert emu.server.faults.injected["async.duplicate"] == 1
    records = [rec for run in runs(runs_path) for rec in run["event"]["Records"]]
    assert [r["messageId"] for r in records] == [message_id, message_id]
    assert [r["body"] for r in records] == ['{"job": 1}', '{"job": 1}']
    assert emu.server.bus.queues["jobs"].messages == []  # both deleted after success


# --- offload: router + worker through the Invoke API and the async bus ------------------------


def offload_table(tmp_path: Path, retry_s: list[float], **env: str) -> dict[str, Any]:
    environment = {
        "WARMLINE_OFFLOAD_PROMPT": "offload",
        "WARMLINE_SQLITE_PATH": str(tmp_path / "sessions.sqlite3"),
        "FAULT_RUNS_PATH": str(tmp_path / "runs.jsonl"),
        **env,
    }
    fn = {"handler": "fault_offload_app.handler", "code": ".", "environment": environment}
    # What each role needs, as a deployed stack would grant it: the router invokes the
    # worker, the worker (no route of its own) posts the answer.
    invoke = {"action": "lambda:InvokeFunction", "resource": "arn:aws:lambda:*:*:function:worker"}
    post = {
        "action": "execute-api:ManageConnections",
        "resource": "arn:aws:execute-api:*:*:*/*/POST/@connections/*",
    }
    return {
        "functions": {
            "router": dict(fn, statements=[invoke]),
            "worker": dict(fn, timeout=10, statements=[post]),
        },
        "websocket": {
            "stage": "dev",
            "route_selection_expression": "$request.body.type",
            "routes": {"$connect": "router", "$disconnect": "router", "$default": "router"},
        },
        "limits": {"async_retry_delays_s": retry_s, "async_throttle_backoff_s": 0.05},
    }


def expected(prompt: str, tokens: int) -> str:
    return f"<{prompt}> " + "".join(f"t{i} " for i in range(tokens))


@asynccontextmanager
async def offload_call(emu: Emulator, session_id: str) -> AsyncIterator[Caller]:
    async with connect(emu.server.ws_url, compression=None) as ws:
        caller = Caller(ws)
        done = emu.reports("router")  # $connect
        await caller.send({"type": "setup", "sessionId": session_id, "callSid": "CA1"})
        # The router answers setup with nothing: wait for its invocation to end, so that
        # a prompt cannot overtake it.
        await emu.until(lambda: emu.reports("router") > done, "setup")
        yield caller


def worker_runs(tmp_path: Path) -> list[dict[str, Any]]:
    return runs(tmp_path / "runs.jsonl")


def test_an_offloaded_answer_survives_a_killed_worker(tmp_path: Path) -> None:
    # The first run posts "<prompt> t0 t1 t2 ", pauses 1 s, and is killed 0.5 s in: after a
    # post and its progress write, not between them. Its claim's lease (0.3 s) has expired
    # when the bus retries (0.6 s later), so the retry takes the turn over and resumes.
    table = offload_table(
        tmp_path,
        [0.6, 0.6],
        FAULT_TOKENS="12",
        FAULT_PAUSE_AT="3",
        FAULT_PAUSE_S="1.0",
        FAULT_LEASE_S="0.3",
    )
    kill = {"functions": ["worker"], "count": 1, "ms": 500}

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Emulator]:
        async with emulator(table, FAULT_APPS) as emu:
            emu.faults({"lambda.kill": kill})
            async with offload_call(emu, "VXworker") as caller:
                answer = await caller.prompt("long one")
                assert await emu.server.drain(10)
                late = await caller.rest()
            return answer, late, emu

    answer, late, emu = asyncio.run(scenario())
    assert emu.server.faults.injected["lambda.kill"] == 1
    assert complete(answer) and late == []
    assert text(answer) == expected("long one", 12)  # every token once, in order
    deliveries = [d for d in emu.server.bus.deliveries if d.function == "worker"]
    assert [d.attempts for d in deliveries] == [["crash", "ok"]]
    starts = [r for r in worker_runs(tmp_path) if r["event"] == "start"]
    ends = [r for r in worker_runs(tmp_path) if r["event"] == "end"]
    assert [s["resumedFrom"] > 0 for s in starts] == [False, True]
    assert starts[0]["pid"] != starts[1]["pid"]  # the retry ran in a fresh environment
    assert [e["status"] for e in ends] == ["done"]  # the killed run never finished


def test_a_duplicated_worker_delivery_posts_each_answer_once(tmp_path: Path) -> None:
    table = offload_table(tmp_path, [0.5, 0.5], FAULT_TOKENS="10")

    async def scenario() -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]], Emulator]:
        async with emulator(table, FAULT_APPS) as emu:
            emu.faults({"async.duplicate": {"functions": ["worker"], "rate": 1}})
            answers = []
            async with offload_call(emu, "VXdup") as caller:
                for prompt in ("first", "second"):
                    answers.append(await caller.prompt(prompt))
                assert await emu.server.drain(10)
                late = await caller.rest()
            return answers, late, emu

    answers, late, emu = asyncio.run(scenario())
    assert emu.server.faults.injected["async.duplicate"] == 2
    assert [text(a) for a in answers] == [expected("first", 10), expected("second", 10)]
    assert all(complete(a) for a in answers) and late == []
    deliveries = [d for d in emu.server.bus.deliveries if d.function == "worker"]
    assert sorted(d.duplicate for d in deliveries) == [False, False, True, True]
    assert all(d.done and d.attempts for d in deliveries)  # the duplicates ran too
    by_turn: dict[int, list[str]] = {}
    for run in worker_runs(tmp_path):
        if run["event"] == "end" and "turn" in run:
            by_turn.setdefault(run["turn"], []).append(run["status"])
    # Per turn: one run answered; the other found the turn claimed (or, retried after the
    # next prompt, already past) and posted nothing.
    assert sorted(by_turn) == [1, 2]
    for statuses in by_turn.values():
        assert statuses.count("done") == 1
        assert set(statuses) <= {"done", "duplicate", "stale"}, statuses


def test_a_late_delivery_of_an_older_turn_posts_nothing(tmp_path: Path) -> None:
    table = offload_table(tmp_path, [0.05, 0.1], FAULT_TOKENS="10")
    delay = {"functions": ["worker"], "count": 1, "ms": 800}

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Emulator]:
        async with emulator(table, FAULT_APPS) as emu:
            emu.faults({"async.delay": delay})
            async with offload_call(emu, "VXlate") as caller:
                done = emu.reports("router")
                await caller.send({"type": "prompt", "voicePrompt": "older", "last": True})
                # The older turn is handed over (and held back), and its router invocation
                # over, before the newer is said: the newer one then runs warm and is
                # answered well inside the 800 ms the older delivery waits.
                await emu.until(lambda: len(emu.server.bus.deliveries) == 1, "dispatch")
                await emu.until(lambda: emu.reports("router") > done, "older's route")
                newer = await caller.prompt("newer")
                assert await emu.server.drain(10)
                late = await caller.rest()
            return newer, late, emu

    newer, late, emu = asyncio.run(scenario())
    assert emu.server.faults.injected["async.delay"] == 1
    assert text(newer) == expected("newer", 10) and complete(newer)
    assert late == []  # the older turn, delivered last, said nothing
    ends = [r for r in worker_runs(tmp_path) if r["event"] == "end"]
    assert sorted((e["turn"], e["status"]) for e in ends) == [(1, "stale"), (2, "done")]
    starts = [r for r in worker_runs(tmp_path) if r["event"] == "start"]
    assert [s["turn"] for s in starts] == [2]  # the stale turn never began an answer
