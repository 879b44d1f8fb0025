"""Streaming an answer to the caller: coalescing, fencing, silence filler, time budget.

One engine serves both paths: inline in a route (bounded by API Gateway's 29 s,
docs/protocols.md §2.5, §2.6) and in an offloaded worker (bounded by its Lambda timeout).

Rules, in the order they matter on a call:

1. **The first token goes out at once.** Coalescing starts after it: the caller's time to
   first sound is what a voice team watches, and TTS starts speaking on the first words.
2. **Then tokens are coalesced** into fewer, larger posts: a post goes out when the buffer
   reaches ``max_chars`` or when its oldest token has waited ``max_delay_s``; each post is
   one ``@connections`` request (~0.1-1 ms CPU, and API Gateway bills per message). A post
   never exceeds ``MAX_POST_BYTES`` (128 KB, §2.4): a larger chunk is split.
3. **Fence before every post.** ``fence()`` is called before each post; once it says the
   turn moved on (an ``interrupt`` or a newer prompt bumped it), nothing more is posted.
   So a stream stops within one post of the fence moving.
4. **Silence filler.** If no answer text was posted ``filler_after_s`` after the start, one
   short preemptible ``text`` (``preemptible`` lets the answer cut it, §1.3) is posted,
   once. It does not count as answer text.
5. **Hard budget.** ``budget_margin_ms`` before ``remaining_ms()`` reaches zero the stream
   stops and posts a short apology closing the talk cycle, so an inline route never gets
   API Gateway's ``Endpoint request timed out`` frame (which Twilio counts as malformed,
   §2.6). With a ``handover`` the stream instead posts what it buffered, leaves the talk
   cycle open and calls ``handover(sent)``, which passes the rest of the answer to a
   worker (state ``handover``); if that fails, the apology follows.
6. **410 Gone** (``send`` returns False) ends the stream quietly.

Answers may be async iterators or plain iterators of ``str``. A plain iterator is pulled on
a helper thread so the filler and budget timers can fire while it blocks (an LLM client's
``for chunk in stream`` blocks the thread); it is asked to stop between tokens.

Time comes from an injected ``clock`` (monotonic seconds) and ``timer`` (an awaitable
sleep), so tests drive the filler and the budget without sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from warmline.core.limits import MAX_POST_BYTES
from warmline.errors import LocalProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from typing import Any

__all__ = [
    "Answer",
    "StreamOutcome",
    "StreamPolicy",
    "TurnStream",
]

#: What an answer function may return: tokens, sync or async.
Answer = AsyncIterator[str] | Iterator[str] | Iterable[str]


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    """How an answer is streamed.

    Attributes:
        coalesce: merge tokens after the first into larger posts.
        max_chars: size threshold: post once this many characters are buffered.
        max_delay_s: time threshold: post once the oldest buffered token waited this long.
        filler_after_s: post the filler if no answer text went out by then (None: never).
        filler_text: the filler, spoken once, preemptible.
        budget_margin_ms: stop this long before ``remaining_ms()`` runs out.
        apology_text: said when the budget runs out.
        max_post_bytes: largest frame per post (``MAX_POST_BYTES``, docs/protocols.md §2.4).
    """

    coalesce: bool = True
    max_chars: int = 160
    max_delay_s: float = 0.25
    filler_after_s: float | None = 1.5
    filler_text: str = "One moment."
    budget_margin_ms: int = 2_000
    apology_text: str = "Sorry, that is taking me too long. Could you ask again?"
    max_post_bytes: int = MAX_POST_BYTES


@dataclass(slots=True)
class StreamOutcome:
    """How a stream ended.

    Attributes:
        state: ``done`` (answer complete), ``fenced`` (the turn moved on), ``gone`` (410),
            ``budget`` (time ran out; apology sent), ``handover`` (time ran out; the rest
            went to a worker).
        sent: characters of the answer the caller was sent, counting any skipped prefix.
        posts: posts this run made (answer, filler, apology and closing frames).
        filler: whether this run posted the filler.
        first_post_s: seconds from start to the first answer post, or None.
    """

    state: str = "done"
    sent: int = 0
    posts: int = 0
    filler: bool = False
    first_post_s: float | None = None


class _End:
    """Marks the end of the token stream."""


_END = _End()


class TurnStream:
    """Streams one answer through ``send``.

    Args:
        send: posts one encoded frame; False means the connection is gone (410).
        make: builds the item for a chunk: ``make(token, last, preemptible)``; None skips it
            (the raw protocol has no empty closing frame).
        encode: turns an item into the frame ``send`` posts (``App.encode``).
        policy: thresholds and texts.
        fence: True while the turn is still ours; called before every post.
        on_post: told after every post ``(sent, posts, last, filler)``; may raise to stop
            (a lost claim).
        remaining_ms: milliseconds left for this invocation (None: no budget).
        clock: monotonic seconds.
        timer: awaitable sleep (default ``asyncio.sleep``).
        handover: called with the characters sent when the budget runs out; True when
            another function took the rest of the answer (no apology then).
    """

    def __init__(
        self,
        send: Callable[[bytes | str], bool],
        *,
        make: Callable[[str, bool, bool], Any],
        encode: Callable[[Any], bytes | str],
        policy: StreamPolicy,
        fence: Callable[[], bool] | None = None,
        on_post: Callable[[int, int, bool, bool], None] | None = None,
        remaining_ms: Callable[[], int] | None = None,
        clock: Callable[[], float],
        timer: Callable[[float], Awaitable[None]] | None = None,
        handover: Callable[[int], bool] | None = None,
    ) -> None:
        self._send = send
        self._handover = handover
        self._make = make
        self._encode = encode
        self.policy = policy
        self._fence = fence
        self._on_post = on_post
        self._remaining_ms = remaining_ms
        self._clock = clock
        self._timer = timer
        self.outcome = StreamOutcome()

    async def run(self, answer: Answer, *, skip: int = 0, filler: bool = True) -> StreamOutcome:
        """Stream ``answer``; the first ``skip`` characters were already sent (a resume).

        Args:
            answer: the tokens.
            skip: characters of the answer to drop (already heard before a crash).
            filler: whether the filler may still be sent (not already sent for this turn).

        Returns:
            The outcome (also kept as :attr:`outcome`).
        """
        import asyncio  # ~30 ms: loaded when a stream runs, never by a router that offloads

        policy = self.policy
        out = self.outcome
        out.sent = skip
        start = self._clock()
        budget_at: float | None = None
        if self._remaining_ms is not None:
            budget_at = start + (self._remaining_ms() - policy.budget_margin_ms) / 1000
        filler_at = (
            start + policy.filler_after_s
            if filler and policy.filler_after_s is not None and skip == 0
            else None
        )
        tokens = _aiter(answer)
        pending: asyncio.Future[Any] | None = None
        buffer = ""
        buffered_at = 0.0
        seen = 0  # characters of the answer consumed so far
        answered = False  # this run posted answer text
        try:
            while True:
                deadlines = [d for d in (budget_at, filler_at) if d is not None]
                if buffer:
                    deadlines.append(buffered_at + policy.max_delay_s)
                if pending is None:
                    pending = asyncio.ensure_future(_next(tokens))
                timeout = min(deadlines) - self._clock() if deadlines else None
                if not await self._race(pending, timeout):
                    now = self._clock()
                    if budget_at is not None and now >= budget_at:
                        await self._out_of_time(buffer)
                        return out
                    if filler_at is not None and now >= filler_at:
                        filler_at = None
                        if not await self._post_filler():
                            return out
                    if buffer and now >= buffered_at + policy.max_delay_s:
                        if not self._post(buffer, last=False):
                            return out
                        buffer = ""
                    continue
                token = pending.result()
                pending = None
                if isinstance(token, _End):
                    self._post(buffer, last=True)
                    return out
                if not isinstance(token, str):
                    raise LocalProtocolError(f"an answer yielded a {type(token).__name__}")
                if seen < skip:  # resuming: drop what the caller already heard
                    cut = min(len(token), skip - seen)
                    seen += cut
                    token = token[cut:]
                seen += len(token)
                if not token:
                    continue
                now = self._clock()
                if budget_at is not None and now >= budget_at:
                    await self._out_of_time(buffer + token)
                    return out
                if not answered or not policy.coalesce:
                    if buffer:
                        token, buffer = buffer + token, ""
                    if not self._post(token, last=False):
                        return out
                    if not answered:
                        answered = True
                        filler_at = None
                        out.first_post_s = now - start
                    continue
                if not buffer:
                    buffered_at = now
                buffer += token
                if len(buffer) >= policy.max_chars or now >= buffered_at + policy.max_delay_s:
                    if not self._post(buffer, last=False):
                        return out
                    buffer = ""
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            aclose = getattr(tokens, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _race(self, pending: asyncio.Future[Any], timeout: float | None) -> bool:
        """Wait for ``pending`` up to ``timeout`` seconds; True if it finished."""
        import asyncio

        if pending.done() or timeout is None:
            await pending
            return True
        if timeout <= 0:
            return False
        timer = asyncio.ensure_future((self._timer or asyncio.sleep)(timeout))
        try:
            await asyncio.wait((pending, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not timer.done():
                timer.cancel()
                await asyncio.gather(timer, return_exceptions=True)
        return pending.done()

    async def _post_filler(self) -> bool:
        if not self._post(self.policy.filler_text, last=False, filler=True):
            return False
        self.outcome.filler = True
        return True

    async def _out_of_time(self, buffer: str) -> None:
        """The budget ran out: hand the rest over (after what is buffered), else apologise."""
        if self._handover is not None:
            if buffer and not self._post(buffer, last=False):
                return
            if self._handover(self.outcome.sent):
                self.outcome.state = "handover"
                return
        await self._apologise()

    async def _apologise(self) -> None:
        self.outcome.state = "budget"
        self._post(self.policy.apology_text, last=True, apology=True)

    def _post(self, text: str, *, last: bool, filler: bool = False, apology: bool = False) -> bool:
        """Fence, then post ``text`` (split to fit), then report progress.

        Returns:
            False when the stream must stop (fenced, gone).
        """
        out = self.outcome
        if self._fence is not None and not self._fence():
            out.state = "fenced"
            return False
        frames = self._frames(text, last, preemptible=filler)
        for frame in frames:
            if not self._send(frame):
                out.state = "gone"
                return False
            out.posts += 1
        if not filler and not apology:
            out.sent += len(text)
        if frames and self._on_post is not None:
            self._on_post(out.sent, out.posts, last, filler)
        return True

    def _frames(self, text: str, last: bool, *, preemptible: bool) -> list[bytes | str]:
        """Encoded frames for ``text``, split in halves until each fits one post."""
        try:
            # A relay message refuses, when it is built, a frame over the post limit.
            item = self._make(text, last, preemptible)
            if item is None:
                return []
            frame = self._encode(item)
            size = len(frame.encode("utf-8")) if isinstance(frame, str) else len(frame)
            fits = size <= self.policy.max_post_bytes
        except LocalProtocolError:
            fits, frame = False, b""
        if fits:
            return [frame]
        if len(text) < 2:
            raise LocalProtocolError("a single character does not fit one post")
        half = len(text) // 2
        head = self._frames(text[:half], False, preemptible=preemptible)
        return head + self._frames(text[half:], last, preemptible=preemptible)


async def _next(tokens: AsyncIterator[str]) -> str | _End:
    try:
        return await tokens.__anext__()
    except StopAsyncIteration:
        return _END


def _aiter(answer: Answer) -> AsyncIterator[str]:
    if hasattr(answer, "__anext__"):
        return answer  # type: ignore[return-value]
    if hasattr(answer, "__aiter__"):
        aiter_: AsyncIterator[str] = answer.__aiter__()
        return aiter_
    return _pull_on_thread(iter(answer))


async def _pull_on_thread(iterator: Iterator[str]) -> AsyncIterator[str]:
    """Iterate a blocking iterator on a helper thread, one token per request.

    The thread calls ``next()`` only when the loop asks for a token, so the iterator is
    never run ahead of the stream (a stopped stream stops pulling at once) and its
    ``close()`` runs on the thread that iterated it.
    """
    import asyncio
    import threading

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    want = threading.Semaphore(0)
    stop = threading.Event()

    def hand(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop closed: the stream was abandoned
            pass

    def produce() -> None:
        try:
            while True:
                want.acquire()
                if stop.is_set():
                    return
                try:
                    token = next(iterator)
                except StopIteration:
                    hand("end", None)
                    return
                hand("token", token)
        except Exception as exc:  # re-raised on the loop's side
            hand("error", exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    threading.Thread(target=produce, name="answer-pull", daemon=True).start()
    try:
        while True:
            want.release()
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        want.release()
