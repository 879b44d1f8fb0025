"""Streaming: coalescing, first token, 128 KB posts, silence filler, hard budget, inline mode.

Time is a fake clock and the timers are awaitables the test controls: nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from offload_helpers import CID, REF, Harness, frame, tokens

from warmline.connections.local import LocalConnections
from warmline.core.app import Invocation
from warmline.core.events import Message
from warmline.core.limits import MAX_POST_BYTES
from warmline.core.relay import Text
from warmline.errors import ConfigurationError
from warmline.offload.route import route_mode
from warmline.offload.stream import StreamPolicy, TurnStream
from warmline.offload.worker import TurnContext
from warmline.stores.memory import MemoryStore

FULL = "".join(tokens(200))


class FakeTime:
    """A monotonic clock the test moves; ``timer`` advances it only for short waits."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.now = 0.0
        self.frozen = frozen  # no time passes while waiting: every timer waits forever
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def timer(self, delay: float) -> None:
        self.waits.append(delay)
        if delay > 5 or self.frozen:  # the far-off budget deadline never fires here
            await asyncio.get_running_loop().create_future()
        self.now += delay


class HookedConnections(LocalConnections):
    """LocalConnections that tells the test about every post."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks: list[Any] = []

    def post(self, connection_id: str, data: bytes | str) -> None:
        super().post(connection_id, data)
        for hook in self.hooks:
            hook(json.loads(data))


def _stream(policy: StreamPolicy, answer: Any, **kwargs: Any) -> tuple[list[Any], Any]:
    frames: list[Any] = []

    def send(data: bytes | str) -> bool:
        frames.append(json.loads(data))
        return True

    stream = TurnStream(
        send,
        make=lambda token, last, pre: Text(token=token, last=last, preemptible=pre or None),
        encode=lambda item: item.to_json(),
        policy=policy,
        clock=kwargs.pop("clock", lambda: 0.0),
        **kwargs,
    )
    outcome = asyncio.run(stream.run(answer))
    return frames, outcome


def test_coalescing_cuts_posts_at_least_five_fold() -> None:
    plain, _ = _stream(StreamPolicy(coalesce=False, filler_after_s=None), iter(tokens(200)))
    merged, outcome = _stream(StreamPolicy(max_chars=160, filler_after_s=None), iter(tokens(200)))
    assert "".join(f["token"] for f in plain) == FULL == "".join(f["token"] for f in merged)
    assert len(plain) == 201  # every token, then the closing frame
    assert len(plain) >= 5 * len(merged)
    assert merged[-1]["last"] is True and outcome.state == "done"
    assert outcome.posts == len(merged) and outcome.sent == len(FULL)


def test_the_first_token_goes_out_before_the_second_is_asked_for() -> None:
    frames: list[Any] = []
    seen_at_second: list[int] = []

    async def answer() -> AsyncIterator[str]:
        yield "Hello"
        seen_at_second.append(len(frames))
        for token in tokens(50):
            yield token

    def send(data: bytes | str) -> bool:
        frames.append(json.loads(data))
        return True

    stream = TurnStream(
        send,
        make=lambda token, last, pre: Text(token=token, last=last),
        encode=lambda item: item.to_json(),
        policy=StreamPolicy(max_chars=10_000, filler_after_s=None),
        clock=lambda: 0.0,
    )
    asyncio.run(stream.run(answer()))
    assert seen_at_second == [1]
    assert frames[0]["token"] == "Hello"
    assert len(frames) == 2  # the other 50 tokens coalesced into the closing post


def test_buffered_tokens_older_than_max_delay_are_posted() -> None:
    fake = FakeTime()

    async def answer() -> AsyncIterator[str]:  # pulled lazily, on the loop
        for token in tokens(12):
            fake.now += 0.1
            yield token

    frames, _ = _stream(
        StreamPolicy(max_chars=10_000, max_delay_s=0.25, filler_after_s=None),
        answer(),
        clock=fake.clock,
    )
    assert "".join(f["token"] for f in frames) == "".join(tokens(12))
    assert 4 <= len(frames) <= 6  # first token alone, then about every third token


def test_a_buffer_is_flushed_when_the_model_stalls() -> None:
    fake = FakeTime()
    frames: list[Any] = []
    resumed: list[int] = []
    gate: list[asyncio.Event] = []

    async def answer() -> AsyncIterator[str]:
        gate.append(asyncio.Event())
        yield "one "  # posted at once
        yield "two "  # buffered...
        await asyncio.wait_for(gate[0].wait(), 10)  # stalls until "two" was posted
        resumed.append(len(frames))
        yield "three"

    def send(data: bytes | str) -> bool:
        frames.append(json.loads(data))
        if frames[-1]["token"] == "two " and gate:
            gate[0].set()
        return True

    stream = TurnStream(
        send,
        make=lambda token, last, pre: Text(token=token, last=last),
        encode=lambda item: item.to_json(),
        policy=StreamPolicy(max_chars=10_000, max_delay_s=0.25, filler_after_s=None),
        clock=fake.clock,
        timer=fake.timer,
    )
    asyncio.run(stream.run(answer()))
    assert [f["token"] for f in frames] == ["one ", "two ", "three"]
    assert resumed == [2] and 0.25 in fake.waits


def test_no_post_exceeds_128_kb() -> None:
    big = 'a"\x01' * 60_000  # JSON escaping makes the frame much larger than the text
    frames, outcome = _stream(StreamPolicy(filler_after_s=None), iter(["hi ", big, " bye"]))
    assert "".join(f["token"] for f in frames) == "hi " + big + " bye"
    sizes = [len(Text(token=f["token"], last=f["last"]).to_json().encode()) for f in frames]
    assert max(sizes) <= MAX_POST_BYTES
    assert len(frames) > 3 and outcome.state == "done"


def test_filler_sent_once_when_the_first_token_is_slow() -> None:
    fake = FakeTime()
    conns = HookedConnections()
    filler_posted: list[asyncio.Event] = []

    async def answer(turn: TurnContext) -> AsyncIterator[str]:
        event = asyncio.Event()
        filler_posted.append(event)
        await event.wait()  # the model is slow: released only once the filler went out
        for token in tokens(20):
            yield token

    def on_post(frame_: dict[str, Any]) -> None:
        if frame_.get("preemptible") and filler_posted:
            filler_posted[0].set()

    conns.hooks.append(on_post)
    policy = StreamPolicy(filler_after_s=1.5, filler_text="One moment.", max_chars=40)
    h = Harness(MemoryStore(), answer, policy=policy, conns=conns, clock=fake.clock)
    h.worker.timer = fake.timer
    try:
        h.setup()
        h.prompt()
        h.bus.drain()
    finally:
        h.close()
    texts = h.frames()
    fillers = [f for f in texts if f.get("preemptible")]
    assert fillers == [{"type": "text", "token": "One moment.", "last": False, "preemptible": True}]
    assert texts[0] == fillers[0]
    assert h.answer_text() == "".join(tokens(20))
    assert 1.5 in fake.waits


def test_no_filler_when_the_first_token_is_quick() -> None:
    fake = FakeTime(frozen=True)
    h = Harness(
        MemoryStore(),
        lambda t: iter(tokens(5)),
        policy=StreamPolicy(filler_after_s=1.5),
        clock=fake.clock,
    )
    h.worker.timer = fake.timer
    try:
        h.setup()
        h.prompt()
        h.bus.drain()
    finally:
        h.close()
    assert not any(f.get("preemptible") for f in h.frames())
    assert h.answer_text() == "".join(tokens(5))
    assert 1.5 in fake.waits  # the filler timer was armed, and lost the race


def test_inline_turn_stops_with_an_apology_before_the_route_timeout() -> None:
    fake = FakeTime()

    def answer(turn: TurnContext) -> Iterator[str]:
        for token in tokens(60):
            fake.now += 1.0  # a slow model: one token a second
            yield token

    policy = StreamPolicy(
        filler_after_s=None, coalesce=False, budget_margin_ms=2_000, apology_text="Sorry."
    )
    h = Harness(MemoryStore(), answer, policy=policy, mode="inline", clock=fake.clock)
    h.worker.timer = fake.timer
    try:
        h.setup()
        body = frame(type="prompt", voicePrompt="tell me everything", lang="en-US", last=True)
        h.app.handle(
            Message(REF, body),
            Invocation(remaining_ms=lambda: int((29 - fake.now) * 1000), log=h.log),
        )
    finally:
        h.close()
    texts = h.frames()
    assert texts[-1] == {"type": "text", "token": "Sorry.", "last": True}
    assert fake.now < 29  # stopped before API Gateway's cut
    heard = "".join(f["token"] for f in texts[:-1])
    assert heard and "".join(tokens(60)).startswith(heard) and len(heard) < len("".join(tokens(60)))
    assert h.bus.pending == 0  # inline: nothing was dispatched


def test_mode_per_route_from_the_environment() -> None:
    env = {"WARMLINE_OFFLOAD_PROMPT": "inline", "WARMLINE_OFFLOAD_MY_ROUTE": "offload"}
    assert route_mode("prompt", default="offload", environ=env) == "inline"
    assert route_mode("my-route", default="inline", environ=env) == "offload"
    assert route_mode("prompt", "offload", default="inline", environ=env) == "offload"
    assert route_mode("dtmf", default="inline", environ=env) == "inline"
    with pytest.raises(ConfigurationError, match="WARMLINE_OFFLOAD_PROMPT"):
        route_mode("prompt", default="offload", environ={"WARMLINE_OFFLOAD_PROMPT": "later"})


def test_inline_and_offload_say_the_same_thing() -> None:
    said = []
    for mode in ("inline", "offload"):
        h = Harness(MemoryStore(), lambda t: iter(tokens(40)), mode=mode)
        try:
            h.setup()
            h.prompt()
            h.bus.drain()
            said.append(h.answer_text())
            assert h.conns.is_open(CID)
        finally:
            h.close()
    assert said == ["".join(tokens(40))] * 2


def test_partial_prompts_start_no_turn() -> None:
    h = Harness(MemoryStore(), lambda t: iter(["x"]))
    try:
        h.setup()
        h.prompt("what are", last=False)
        assert h.bus.pending == 0 and h.session().turn == 0
        h.prompt("what are your hours")
        assert h.bus.pending == 1 and h.session().turn == 1
    finally:
        h.close()


@pytest.mark.parametrize("taken", [True, False])
def test_out_of_time_with_a_handover_posts_the_buffer_and_leaves_the_cycle_open(
    taken: bool,
) -> None:
    fake = FakeTime()

    async def answer() -> AsyncIterator[str]:
        for token in tokens(20):
            fake.now += 0.1  # ten tokens a second against a 1 s budget
            yield token

    handed: list[int] = []

    def handover(sent: int) -> bool:
        handed.append(sent)
        return taken

    policy = StreamPolicy(filler_after_s=None, budget_margin_ms=0, apology_text="Sorry.")
    frames, outcome = _stream(
        policy,
        answer(),
        clock=fake.clock,
        timer=fake.timer,
        remaining_ms=lambda: 1_000,
        handover=handover,
    )
    said = "".join(f["token"] for f in frames if f["token"] != "Sorry.")
    assert handed == [len(said)]  # everything consumed was posted before the hand-over
    assert "".join(tokens(20)).startswith(said) and 0 < len(said) < len("".join(tokens(20)))
    if taken:
        assert outcome.state == "handover"
        assert not any(f["last"] for f in frames)  # the worker closes the talk cycle
    else:
        assert outcome.state == "budget"
        assert frames[-1] == {"type": "text", "token": "Sorry.", "last": True}
