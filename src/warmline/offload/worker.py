"""The worker side of offload: answer a turn exactly once, streamed, fenced, resumable.

:class:`TurnWorker` wraps an answer function ``answer(turn) -> tokens`` and handles
``WorkerTask`` events carrying a :class:`~warmline.offload.payload.TurnPayload`:

1. Validate the payload; a malformed one is logged and dropped (never retried).
2. Fence: read the session (one consistent read). Gone, over, or on a newer turn: drop.
3. Claim ``(session, turn)`` with compare-and-set (:mod:`warmline.offload.claims`): a
   duplicate of a finished turn does nothing; a live claim held elsewhere raises
   :class:`~warmline.offload.claims.TurnBusyError` so the platform delivers it again later;
   an expired or released claim is taken over and the answer resumes after what was sent.
4. Stream (:mod:`warmline.offload.stream`) with a fence check before every post and a
   progress write after it.
5. End: ``done`` / ``fenced`` / ``budget`` mark the claim finished. A 410 marks the claim
   ``gone`` and the session over (``data["over"]``), and returns normally: nothing is
   retried. An exception from the answer releases the claim (a retry may take it at once,
   resuming after the sent text) and propagates, so the platform retries.

**Cost per post** (the fence and the progress write, on top of the post itself): one
consistent read of the session record (DynamoDB ``GetItem`` with ``ConsistentRead``: 1 RCU
for items up to 4 KB, a few ms in-region; SQLite: one indexed ``SELECT``, tens of µs) and one
conditional write of the claim record (1 WCU up to 1 KB). With coalescing a 200-token answer
is ~10 posts, so ~10 reads and ~10 writes per turn.

**Resume** skips the first ``sent`` characters of the regenerated answer, so it is exact
when the answer function is reproducible for a turn (a cache, a deterministic answerer, or
an LLM at temperature 0 with a seed); otherwise the continuation starts at the same offset
of a different text. ``progress_every`` trades store writes against how much a crash may
repeat (see :mod:`warmline.offload.claims`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from warmline.core.events import ConnectionRef, WorkerTask
from warmline.errors import ConfigurationError, ConnectionGoneError, InvalidEventError, StoreError
from warmline.offload.claims import DEFAULT_LEASE_S, ClaimLostError, TurnBusyError, TurnClaims
from warmline.offload.payload import TurnPayload, is_turn_payload
from warmline.offload.stream import Answer, StreamOutcome, StreamPolicy, TurnStream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from warmline.core.app import App, Context
    from warmline.core.session import SessionRecord
    from warmline.offload.claims import Claim

__all__ = ["AnswerFn", "TurnContext", "TurnWorker", "mark_over"]

#: An answer function: gets the turn, returns tokens (or an awaitable of them).
AnswerFn = Callable[["TurnContext"], "Answer | Awaitable[Answer]"]


@dataclass(slots=True)
class TurnContext:
    """What an answer function gets.

    Attributes:
        payload: the turn as dispatched.
        app: the App (its store, its encode).
        session: the session record read for the fence (None inline without a session).
        attempt: the platform's delivery attempt (1 first).
        resumed_from: characters already heard when this run started (0 unless resuming).
        remaining_ms: milliseconds left in this invocation.
        log: structured log line writer, tagged with the turn.
    """

    payload: TurnPayload
    app: App
    session: SessionRecord | None = None
    attempt: int = 1
    resumed_from: int = 0
    remaining_ms: Callable[[], int] = lambda: 900_000
    log: Callable[..., None] = field(default=lambda *a, **k: None)

    @property
    def prompt(self) -> str:
        """What the caller said."""
        return self.payload.prompt

    @property
    def lang(self) -> str:
        """The prompt's language tag."""
        return self.payload.lang

    @property
    def turn(self) -> int:
        """The turn number (the fence)."""
        return self.payload.turn


def mark_over(app: App, session_id: str, reason: str, now: float) -> None:
    """Mark the session over (``data["over"]``) so no later work posts to it."""
    from warmline.stores.base import update

    def change(record: SessionRecord) -> SessionRecord:
        if record.data.get("over"):
            return record
        return record.evolve(data={**record.data, "over": {"reason": reason, "at": now}})

    try:
        update(app.store, session_id, change)
    except StoreError:
        pass  # no session left: nothing to mark


class TurnWorker:
    """Answers turns handed over by :func:`warmline.offload.offload`.

    Args:
        answer: ``answer(turn) -> tokens``; sync or async iterator of ``str`` (or a
            coroutine returning one).
        policy: coalescing thresholds, filler, budget margin.
        lease_s: claim lease; renewed by every progress write.
        progress_every: write progress every N posts (1: a crash repeats at most one post).
        on_busy: ``"retry"`` raises TurnBusyError when another live worker holds the turn
            (correct when that worker may have died); ``"drop"`` ignores the delivery.
        clock: monotonic seconds (thresholds, filler, budget).
        wall: epoch seconds (claim leases, ``createdAt``).
        timer: awaitable sleep, injected by tests.
        owner: claim owner prefix (default: pid plus random bits).
    """

    def __init__(
        self,
        answer: AnswerFn,
        *,
        policy: StreamPolicy | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        progress_every: int = 1,
        on_busy: str = "retry",
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        timer: Callable[[float], Awaitable[None]] | None = None,
        owner: str | None = None,
    ) -> None:
        if on_busy not in ("retry", "drop"):
            raise ConfigurationError(f"on_busy must be 'retry' or 'drop', not {on_busy!r}")
        if progress_every < 1:
            raise ConfigurationError("progress_every must be >= 1")
        self.answer = answer
        self.policy = policy or StreamPolicy()
        self.lease_s = lease_s
        self.progress_every = progress_every
        self.on_busy = on_busy
        self.clock = clock
        self.wall = wall
        self.timer = timer
        self.owner = owner
        self._fallback: Callable[[Context], Any] | None = None

    # --- registration --------------------------------------------------------------------
    def install(self, app: App, *, fallback: Callable[[Context], Any] | None = None) -> TurnWorker:
        """Register as ``@app.worker``; other async work goes to ``fallback``."""
        self._fallback = fallback
        app.worker(self.handle)
        return self

    # --- the worker handler --------------------------------------------------------------
    def handle(self, ctx: Context) -> Any:
        """``@app.worker`` handler: answer the turn in ``ctx.event``.

        Returns:
            ``{"status": ...}``: ``done``, ``fenced``, ``gone``, ``budget``, ``duplicate``,
            ``stale``, ``busy``, ``lost`` or ``invalid``.

        Raises:
            TurnBusyError: another live worker holds the turn (``on_busy="retry"``).
            Exception: whatever the answer raised (the claim is released first).
        """
        import asyncio

        event = ctx.event
        assert isinstance(event, WorkerTask)
        if not is_turn_payload(event.payload):
            if self._fallback is not None:
                return self._fallback(ctx)
            ctx.log("offload.ignored", "warning", delivery=event.delivery)
            return {"status": "ignored"}
        try:
            payload = TurnPayload.from_dict(event.payload)
        except InvalidEventError as exc:
            ctx.log("offload.invalid_payload", "error", error=str(exc))
            return {"status": "invalid", "error": str(exc)}
        return asyncio.run(self._run(ctx, payload, event.attempt))

    async def _run(self, ctx: Context, payload: TurnPayload, attempt: int) -> dict[str, Any]:
        app = ctx.app
        store = app.store
        sid, turn = payload.session_id, payload.turn

        trace, lag_ms = _origin(payload, self.wall())

        def log(step: str, level: str = "info", **fields: Any) -> None:
            ctx.log(step, level, sessionId=sid, turn=turn, **trace, **fields)

        session = store.get(sid)
        if not _current(session, turn):
            log("offload.stale", found=session.turn if session else None)
            return {"status": "stale", "turn": turn}
        claims = TurnClaims(store, owner=self.owner, lease_s=self.lease_s, wall=self.wall)
        try:
            claim = claims.acquire(sid, turn)
        except TurnBusyError:
            log("offload.busy", "warning", onBusy=self.on_busy)
            if self.on_busy == "retry":
                raise
            return {"status": "busy", "turn": turn}
        if claim.status == "duplicate":
            log("offload.duplicate", state=claim.state)
            return {"status": "duplicate", "turn": turn}
        holder = _Holder(claims, claim, self.progress_every)
        client = app.connections_for(
            ConnectionRef(payload.connection_id, payload.domain_name, payload.stage), log
        )

        def send(frame: bytes | str) -> bool:
            try:
                client.post(payload.connection_id, frame)
            except ConnectionGoneError:
                return False
            return True

        def fence() -> bool:
            return _current(store.get(sid), turn)

        stream = TurnStream(
            send,
            make=_maker(app),
            encode=app.encode,
            policy=self.policy,
            fence=fence,
            on_post=holder.on_post,
            remaining_ms=ctx.remaining_ms,
            clock=self.clock,
            timer=self.timer,
        )
        turn_ctx = TurnContext(
            payload=payload,
            app=app,
            session=session,
            attempt=attempt,
            resumed_from=claim.sent,
            remaining_ms=ctx.remaining_ms,
            log=log,
        )
        try:
            answer = await _resolve(self.answer(turn_ctx))
            outcome = await stream.run(answer, skip=claim.sent, filler=not claim.filler_sent)
        except ClaimLostError:
            log("offload.claim_lost", "warning", posts=stream.outcome.posts)
            return {"status": "lost", "turn": turn}
        except BaseException:
            try:
                holder.release()
            except (ClaimLostError, StoreError):
                pass
            log("offload.failed", "error", sent=stream.outcome.sent, posts=stream.outcome.posts)
            raise
        holder.finish(outcome)
        if outcome.state == "gone":
            mark_over(app, sid, "gone", self.wall())
        log(
            "offload.turn",
            state=outcome.state,
            posts=outcome.posts,
            sent=outcome.sent,
            resumedFrom=claim.sent or None,
            filler=outcome.filler or None,
            firstPostMs=_ms(outcome.first_post_s),
            attempt=attempt,
            lagMs=lag_ms,
            durationMs=ctx.elapsed_ms(),
        )
        return {"status": outcome.state, "turn": turn, "posts": outcome.posts, "sent": outcome.sent}

    # --- inline --------------------------------------------------------------------------
    async def inline(
        self,
        ctx: Context,
        payload: TurnPayload,
        *,
        answer: Answer | None = None,
        remaining_ms: Callable[[], int] | None = None,
        handover: Callable[[int], bool] | None = None,
    ) -> StreamOutcome:
        """Answer in the route itself, bounded by ``ctx.remaining_ms()`` (29 s cap).

        Fenced like a worker (an interrupt handled by another invocation stops it), without
        a claim: one invocation is the only one answering.

        Args:
            ctx: the route's context.
            payload: the turn.
            answer: the tokens, when the route already has them (default: the answer
                function's).
            remaining_ms: the budget, when shorter than the invocation's.
            handover: called when the budget runs out (see :class:`TurnStream`).
        """
        app = ctx.app
        store = app.store
        session = store.get(payload.session_id)
        conn = ctx.connection
        if conn is None:
            raise ConfigurationError("an inline turn needs a WebSocket connection")

        def send(frame: bytes | str) -> bool:
            try:
                ctx.connections.post(conn.connection_id, frame)
            except ConnectionGoneError:
                ctx.gone = True
                return False
            ctx.sends += 1
            return True

        def fence() -> bool:
            return _current(store.get(payload.session_id), payload.turn)

        stream = TurnStream(
            send,
            make=_maker(app),
            encode=app.encode,
            policy=self.policy,
            fence=fence if session is not None else None,
            remaining_ms=remaining_ms or ctx.remaining_ms,
            clock=self.clock,
            timer=self.timer,
            handover=handover,
        )
        if answer is None:
            turn_ctx = TurnContext(
                payload=payload,
                app=app,
                session=session,
                remaining_ms=ctx.remaining_ms,
                log=ctx.log,
            )
            answer = await _resolve(self.answer(turn_ctx))
        outcome = await stream.run(answer)
        if outcome.state == "gone" and session is not None:
            mark_over(app, payload.session_id, "gone", self.wall())
        ctx.annotate(turnState=outcome.state, firstPostMs=_ms(outcome.first_post_s))
        return outcome


class _Holder:
    """The claim as the stream advances: writes progress every N posts, and the end."""

    def __init__(self, claims: TurnClaims, claim: Claim, every: int) -> None:
        self.claims = claims
        self.claim = claim
        self.every = every
        self.base_posts = claim.posts
        self.filler = claim.filler_sent
        self.unsaved = 0
        self.sent = claim.sent
        self.posts = claim.posts

    def on_post(self, sent: int, posts: int, last: bool, filler: bool) -> None:
        self.filler = self.filler or filler
        self.sent, self.posts = sent, self.base_posts + posts
        self.unsaved += 1
        if last or filler or self.unsaved >= self.every:
            self.unsaved = 0
            self.claim = self.claims.progress(
                self.claim,
                sent=sent,
                posts=self.base_posts + posts,
                filler=self.filler,
                state="done" if last else "streaming",
            )

    def finish(self, outcome: StreamOutcome) -> None:
        if outcome.state == "done" and self.claim.state == "done":
            return
        try:
            self.claim = self.claims.finish(
                self.claim,
                outcome.state,
                sent=outcome.sent,
                posts=self.base_posts + outcome.posts,
                filler=self.filler,
            )
        except ClaimLostError:
            pass  # taken over after our last post: the new holder finishes the turn

    def release(self) -> None:
        """Give the turn up, recording everything posted (also posts not yet saved with
        ``progress_every > 1``: the answer failed, the process did not die)."""
        if self.unsaved:
            self.claim = self.claims.progress(
                self.claim, sent=self.sent, posts=self.posts, filler=self.filler
            )
            self.unsaved = 0
        self.claim = self.claims.release(self.claim)


def _current(session: SessionRecord | None, turn: int) -> bool:
    """The fence: the session exists, is not over, and is still on ``turn``."""
    return session is not None and session.turn == turn and not session.data.get("over")


def _maker(app: App) -> Callable[[str, bool, bool], Any]:
    if app.protocol == "relay":
        from warmline.core.relay import Text

        def make_text(token: str, last: bool, preemptible: bool) -> Any:
            return Text(token=token, last=last, preemptible=True if preemptible else None)

        return make_text

    def make_raw(token: str, last: bool, preemptible: bool) -> Any:
        return token or None

    return make_raw


async def _resolve(value: Any) -> Any:
    if hasattr(value, "__await__"):
        return await value
    return value


def _origin(payload: TurnPayload, now: float) -> tuple[dict[str, str], float | None]:
    """Where the turn came from: the dispatcher's trace id for every worker log line
    (``dispatchTraceId``, from the payload's ``traceHeader``), and the dispatch-to-start
    lag in ms (``lagMs`` on the final line; None without ``createdAt``)."""
    trace: dict[str, str] = {}
    header = payload.extra.get("traceHeader")
    if isinstance(header, str):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == "Root" and value:
                trace["dispatchTraceId"] = value
    lag = round(max(0.0, now - payload.created_at) * 1000, 2) if payload.created_at > 0 else None
    return trace, lag


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
