"""Calls survive a deploy and a crash: two ``warmline serve`` processes, a real redis-server
between them (sessions in RedisStore, sockets claimed through RedisRouter), and a caller
that follows the ``<Connect action>`` answers as Twilio does (:mod:`relay_caller`).

The calls ring instance B's webhook (standing for the load balancer in front of the
webhooks) and are connected to instance A, which the tests then stop; B answers the action
request and the call connects to B again. The app's answers list every prompt of the
call so far (``moving_app``), so an answer shows which instance gave it and whether the
conversation came along.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from relay_caller import RelayCaller
from serve_harness import STOP_TIMEOUT_S, TOKEN, serve_env, serve_process

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stores"))
from redis_server import (  # type: ignore[import-not-found,unused-ignore]
    needs_redis,
    redis_server,
)

pytestmark = needs_redis()

MOVING_APP = Path(__file__).resolve().parent / "moving_app"


@contextmanager
def two_instances(
    tmp_path: Path, redis_url: str, *a_args: str
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """Instance A (``a_args`` added) and instance B, whose TwiML sends calls to A.

    Yields:
        (A's process, A's base URL, B's base URL).
    """
    shared = {"WARMLINE_STORE": "redis", "WARMLINE_REDIS_URL": redis_url}
    with ExitStack() as stack:
        proc_a, base_a = stack.enter_context(
            serve_process(
                serve_env(tmp_path, WARMLINE_INSTANCE="A", **shared),
                "--redis", redis_url, *a_args,
                app_dir=MOVING_APP,
            )
        )  # fmt: skip
        a_ws = base_a.replace("http://", "ws://") + "/ws"
        _proc_b, base_b = stack.enter_context(
            serve_process(
                serve_env(tmp_path, WARMLINE_INSTANCE="B", WARMLINE_RELAY_URL=a_ws, **shared),
                "--redis", redis_url,
                app_dir=MOVING_APP,
            )
        )  # fmt: skip
        yield proc_a, base_a, base_b


def _claims(redis_url: str) -> dict[str, tuple[str, int]]:
    """The socket claims in Redis: connection id -> (instance id, milliseconds left)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return {
            key.decode().rsplit(":", 1)[1]: (client.get(key).decode(), int(client.pttl(key)))
            for key in client.scan_iter("warmline:ws:*")
        }
    finally:
        client.close()


def _session_of(redis_url: str, call_sid: str) -> Any:
    from warmline.stores.redis import RedisStore

    with RedisStore(redis_url) as store:
        return store.by_call_sid(call_sid)


def test_sigterm_moves_the_call_to_the_other_instance_with_its_conversation(
    tmp_path: Path,
) -> None:
    """The acceptance scenario: a long call on A, A gets SIGTERM (a deploy)."""

    async def scenario(proc_a: subprocess.Popen[bytes], base_b: str) -> dict[str, Any]:
        caller = RelayCaller(f"{base_b}/twiml", TOKEN)
        out: dict[str, Any] = {"caller": caller}
        await caller.start()
        out["one"] = await caller.ask("one")
        out["two"] = await caller.ask("two")
        proc_a.send_signal(signal.SIGTERM)
        # The call goes on while A drains (the move comes --handoff-grace before the end).
        out["three"] = await caller.ask("three")
        # A sends `end`; the caller says "four" before it hangs up that session, so A
        # receives it after marking the call: A keeps it for B instead of answering.
        out["four"] = await caller.race_end("four")
        out["five"] = await caller.ask("five")
        out["a_exit"] = await asyncio.to_thread(proc_a.wait, STOP_TIMEOUT_S)
        await caller.hang_up()
        return out

    with (
        redis_server() as url,
        two_instances(tmp_path, url, "--drain-timeout", "6", "--handoff-grace", "3") as (
            proc_a,
            _base_a,
            base_b,
        ),
    ):
        out = asyncio.run(scenario(proc_a, base_b))
        record = _session_of(url, out["caller"].call_sid)
    caller: RelayCaller = out["caller"]
    assert caller.greetings == ["A here.", "B here."]
    assert out["one"] == "A: one" and out["two"] == "A: one | two"
    assert out["three"].endswith(": one | two | three")
    assert out["four"] == "B: one | two | three | four"
    assert out["five"] == "B: one | two | three | four | five"
    # One relay session ended with a reconnect hand-off; the action answer connected again.
    assert [json.loads(h)["reason"] for h in caller.handoffs] == ["reconnect"]
    assert [tag for _sid, tag in caller.sessions] == ["Connect"]
    assert caller.repeated == 0
    assert out["a_exit"] == 0
    # One record for the call, on B's connection now, no longer marked, with every turn.
    assert record is not None and "reconnect" not in record.data
    assert record.data["heard"] == ["one", "two", "three", "four", "five"]
    assert record.data["reconnects"] == 1 and record.turn == 5


def test_after_sigkill_the_claims_expire_and_the_other_instance_takes_the_call(
    tmp_path: Path,
) -> None:
    async def scenario(url: str, proc_a: subprocess.Popen[bytes], base_b: str) -> dict[str, Any]:
        caller = RelayCaller(f"{base_b}/twiml", TOKEN)
        out: dict[str, Any] = {"caller": caller}
        await caller.start()
        out["one"] = await caller.ask("one")
        out["claims_before"] = await asyncio.to_thread(_claims, url)
        proc_a.kill()  # no drain, no $disconnect, no release of its claims
        await asyncio.to_thread(proc_a.wait, STOP_TIMEOUT_S)
        out["two"] = await caller.ask("two")  # Twilio: socket dropped -> action (failed)
        deadline = time.monotonic() + 15
        out["a_claims_left"] = None
        while time.monotonic() < deadline:
            claims = await asyncio.to_thread(_claims, url)
            out["claims_after"] = claims
            if not set(claims) & set(out["claims_before"]):
                out["a_claims_left"] = 0
                break
            await asyncio.sleep(0.1)  # polling a condition with a deadline
        await caller.hang_up()
        return out

    with (
        redis_server() as url,
        two_instances(tmp_path, url, "--claim-lease", "2") as (
            proc_a,
            _base_a,
            base_b,
        ),
    ):
        out = asyncio.run(scenario(url, proc_a, base_b))
    caller: RelayCaller = out["caller"]
    assert out["one"] == "A: one"
    # A's claim on the call's socket: a 2 s lease, not hours.
    [(owner, left_ms)] = out["claims_before"].values()
    assert 0 < left_ms <= 2000
    # The socket dropped: the action request (failed, 64105) connected the call to B, the
    # caller said "two" again there, and B answered with the whole conversation.
    assert caller.handoffs == [] and [tag for _s, tag in caller.sessions] == ["Connect"]
    assert caller.repeated == 1
    assert caller.greetings == ["A here.", "B here."]
    assert out["two"] == "B: one | two"
    # A's claim is gone within its lease; B holds the call's new socket.
    assert out["a_claims_left"] == 0
    assert all(holder != owner for holder, _ in out["claims_after"].values())
