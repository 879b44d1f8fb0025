"""Asynchronous delivery: Event invocations, SQS queues and SNS topics.

- Event invocations (Invoke API ``Event``, schedules, SNS) are at-least-once with AWS's
  retries on a function error: 2 retries, 60 s then 120 s (docs/protocols.md §3.4; the waits come
  from ``limits.async_retry_delays_s`` so tests can shorten them). A throttled attempt is
  not an error: it is retried with backoff (1 s doubling to 5 min) until the event is
  ``max_event_age_s`` (6 h) old, as Lambda's internal queue does.
- Faults (:mod:`warmline.dev.faults`): ``async.duplicate`` delivers an event or SQS message
  twice, ``async.delay`` holds one back so later ones overtake it.
- SQS queues feed their function through an event source mapping (§4.3): batches of up to
  ``batch_size`` records; an error leaves the whole batch on the queue; with
  ``report_batch_item_failures`` only the ``batchItemFailures`` stay; a record comes back
  after the visibility timeout with ``ApproximateReceiveCount`` one higher.
- SNS topics invoke each subscribed function asynchronously with the §4.2 record.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from warmline.config.model import ASYNC_THROTTLE_BACKOFF_MAX_S
from warmline.dev.gateway.events import iso_time

if TYPE_CHECKING:
    from warmline.config import DevConfig, SqsQueueConfig
    from warmline.dev.faults import FaultInjector
    from warmline.dev.runtime import InvokeResult

__all__ = ["AsyncBus", "Delivery", "SqsQueue"]

Invoke = Callable[[str, Any], Awaitable["InvokeResult"]]


@dataclass(slots=True)
class Delivery:
    """One async invocation's attempts, for tests and the dashboard."""

    function: str
    event: Any
    request_id: str
    attempts: list[str] = field(default_factory=list)  # each attempt's InvokeResult.status
    done: bool = False
    #: a second delivery of the same event (the async.duplicate fault).
    duplicate: bool = False


class AsyncBus:
    """Queues Event invocations and runs them with retries.

    Args:
        invoke: the runtime's ``invoke``.
        config: for retry waits, queues and topics.
        log: receives one line per failed attempt.
    """

    def __init__(self, invoke: Invoke, config: DevConfig, log: Callable[[str], None]) -> None:
        self._invoke = invoke
        self._config = config
        self._log = log
        self._tasks: set[asyncio.Task[Any]] = set()
        self.deliveries: list[Delivery] = []
        self.queues: dict[str, SqsQueue] = {}
        for name, queue in config.sqs.items():
            self.queues[name] = SqsQueue(queue, config, invoke, self._spawn, log)
        self._faults: FaultInjector | None = None

    @property
    def faults(self) -> FaultInjector | None:
        """Injects async.* faults (set by DevServer; None: never)."""
        return self._faults

    @faults.setter
    def faults(self, faults: FaultInjector | None) -> None:
        self._faults = faults
        for queue in self.queues.values():
            queue.faults = faults

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- Event invocations ----------------------------------------------------------------

    def submit(self, function: str, event: Any) -> str:
        """Queue an Event invocation; returns its request id (as the 202 carries)."""
        delivery = Delivery(function, event, str(uuid.uuid4()))
        self.deliveries.append(delivery)
        self._spawn(self._deliver(delivery))
        faults = self._faults
        if faults is not None and faults.any_async:
            if faults.fire("async.duplicate", function, delivery.request_id):
                twin = Delivery(function, event, delivery.request_id, duplicate=True)
                self.deliveries.append(twin)
                self._spawn(self._deliver(twin))
        return delivery.request_id

    async def _deliver(self, delivery: Delivery) -> None:
        faults = self._faults
        if faults is not None and faults.any_async:
            hold = faults.fire("async.delay", delivery.function, delivery.request_id)
            if hold is not None:
                await asyncio.sleep(hold.ms / 1000.0)
        limits = self._config.limits
        delays = limits.async_retry_delays_s
        born = time.monotonic()
        retries = throttles = 0
        while True:
            try:
                result = await self._invoke(delivery.function, delivery.event)
            except RuntimeError:  # runtime closed
                return
            delivery.attempts.append(result.status)
            if result.status == "ok":
                break
            if result.status == "throttled":
                wait = min(
                    limits.async_throttle_backoff_s * 2**throttles, ASYNC_THROTTLE_BACKOFF_MAX_S
                )
                throttles += 1
                if time.monotonic() - born + wait > limits.max_event_age_s:
                    self._log(f"async event for {delivery.function} too old; dropped")
                    break
                self._log(f"async invoke of {delivery.function} throttled; retry in {wait:g} s")
                await asyncio.sleep(wait)
                continue
            if retries >= len(delays):
                # docs/protocols.md §3.4: without an on-failure destination or DLQ, Lambda
                # discards the event after the last retry.
                self._log(
                    f"async invoke of {delivery.function} failed ({result.status}) after "
                    f"{retries} retries; event {delivery.request_id} dropped"
                )
                break
            self._log(
                f"async invoke of {delivery.function} failed ({result.status}); "
                f"retry {retries + 1} in {delays[retries]:g} s"
            )
            await asyncio.sleep(delays[retries])
            retries += 1
        delivery.done = True

    # --- SNS --------------------------------------------------------------------------------

    def publish_sns(self, topic: str, message: str, subject: str | None = None) -> str:
        """Publish to a configured topic; returns the MessageId.

        Raises:
            KeyError: unknown topic.
        """
        config = self._config
        sub = config.sns[topic]
        arn = f"arn:aws:sns:{config.region}:{config.account}:{topic}"
        message_id = str(uuid.uuid4())
        for function in sub.functions:
            record = {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{arn}:{uuid.uuid4()}",
                "EventSource": "aws:sns",
                "Sns": {
                    "SignatureVersion": "1",
                    "Timestamp": iso_time(time.time()),
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.local/SimpleNotificationService.pem",
                    "MessageId": message_id,
                    "Message": message,
                    "MessageAttributes": {},
                    "Type": "Notification",
                    "UnsubscribeUrl": "https://sns.local/?Action=Unsubscribe",
                    "TopicArn": arn,
                    "Subject": subject,
                },
            }
            self.submit(function, {"Records": [record]})
        return message_id

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the SQS pollers."""
        for queue in self.queues.values():
            queue.start()

    async def drain(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [t for t in self._tasks if not t.done()]
            if not busy and all(q.idle for q in self.queues.values()):
                return True
            if busy:
                await asyncio.wait(busy, timeout=max(0.0, deadline - time.monotonic()))
            else:
                await asyncio.sleep(0.01)
        return False

    async def close(self) -> None:
        """Cancel deliveries and pollers."""
        tasks = list(self._tasks)
        for queue in self.queues.values():
            poller = queue.stop()
            if poller is not None:
                tasks.append(poller)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)


@dataclass(slots=True, eq=False)  # by identity: a duplicated message is another object
class _Message:
    message_id: str
    body: str
    attributes: Mapping[str, Any]
    sent_ms: int
    receive_count: int = 0
    first_receive_ms: int | None = None
    visible_at: float = 0.0
    receipt: str = ""


class SqsQueue:
    """One queue and its event source mapping (one poller, as a single Lambda poller)."""

    def __init__(
        self,
        config: SqsQueueConfig,
        dev: DevConfig,
        invoke: Invoke,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        log: Callable[[str], None],
    ) -> None:
        self.config = config
        self.arn = f"arn:aws:sqs:{dev.region}:{dev.account}:{config.name}"
        self._region = dev.region
        self._account = dev.account
        self._invoke = invoke
        self._spawn = spawn
        self._log = log
        self.messages: list[_Message] = []
        self.dead_letters: list[_Message] = []
        #: injects async.duplicate (set through AsyncBus.faults).
        self.faults: FaultInjector | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._in_flight = False

    @property
    def idle(self) -> bool:
        """No message waiting and no batch running."""
        return not self.messages and not self._in_flight

    def send(self, body: str, attributes: Mapping[str, Any] | None = None) -> str:
        """SendMessage; returns the MessageId."""
        message = _Message(str(uuid.uuid4()), body, dict(attributes or {}), int(time.time() * 1000))
        self.messages.append(message)
        faults = self.faults
        if faults is not None and faults.any_async:
            if faults.fire("async.duplicate", self.config.function, message.message_id):
                self.messages.append(
                    _Message(message.message_id, body, message.attributes, message.sent_ms)
                )
        if self._wake is not None:
            self._wake.set()
        return message.message_id

    def start(self) -> None:
        """Start polling."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    def stop(self) -> asyncio.Task[None] | None:
        """Stop polling; returns the poller task to await."""
        if self._task is not None:
            self._task.cancel()
        return self._task

    async def _poll(self) -> None:
        assert self._wake is not None
        while True:
            now = time.monotonic()
            visible = [m for m in self.messages if m.visible_at <= now]
            if not visible:
                self._wake.clear()
                waits = [m.visible_at - now for m in self.messages]
                try:
                    await asyncio.wait_for(self._wake.wait(), min(waits) if waits else None)
                except TimeoutError:
                    pass
                continue
            batch = visible[: self.config.batch_size]
            self._in_flight = True
            try:
                await self._run_batch(batch)
            finally:
                self._in_flight = False

    async def _run_batch(self, batch: list[_Message]) -> None:
        now_ms = int(time.time() * 1000)
        for message in batch:
            message.receive_count += 1
            message.first_receive_ms = message.first_receive_ms or now_ms
            message.receipt = str(uuid.uuid4())
            message.visible_at = time.monotonic() + self.config.visibility_timeout_s
        event = {"Records": [self._record(m) for m in batch]}
        try:
            result = await self._invoke(self.config.function, event)
        except RuntimeError:
            return
        failed: set[str] = {m.message_id for m in batch}
        if result.status == "ok":
            failed = self._failures(result.payload, batch)
        else:
            self._log(f"sqs {self.config.name}: batch of {len(batch)} failed ({result.status})")
        for message in batch:
            if message.message_id not in failed:
                self.messages.remove(message)
            elif (
                self.config.max_receive_count is not None
                and message.receive_count >= self.config.max_receive_count
            ):
                self.messages.remove(message)
                self.dead_letters.append(message)

    def _failures(self, payload: Any, batch: list[_Message]) -> set[str]:
        if not self.config.report_batch_item_failures or not isinstance(payload, dict):
            return set()
        items = payload.get("batchItemFailures")
        if not isinstance(items, list):
            return set()
        ids = {m.message_id for m in batch}
        failed = {item.get("itemIdentifier") for item in items if isinstance(item, dict)} - {None}
        if not failed <= ids:  # an unknown id fails the whole batch, as on AWS
            return ids
        return {str(i) for i in failed}

    def _record(self, message: _Message) -> dict[str, Any]:
        return {
            "messageId": message.message_id,
            "receiptHandle": message.receipt,
            "body": message.body,
            "attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(message.sent_ms),
                "SenderId": self._account,
                "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms),
            },
            "messageAttributes": dict(message.attributes),
            "md5OfBody": hashlib.md5(message.body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self._region,
        }
