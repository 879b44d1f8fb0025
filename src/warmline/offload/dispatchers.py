"""Dispatchers over SNS and SQS (boto3, lazily) and an in-process bus.

Why boto3 here but not for Lambda invoke: SNS ``Publish`` and SQS ``SendMessage`` use the
query/JSON protocols with more moving parts (FIFO ids, attributes), and a function that
chose them is rarely cold-start bound on dispatch. boto3 is imported on first use, never
at module import, and a missing install raises :class:`MissingExtraError` naming ``aws``.

FIFO queues and topics (names ending in ``.fifo``) get ``MessageGroupId`` = session id and
``MessageDeduplicationId`` = ``session#turn``, so the service itself drops a second dispatch
of the same turn within its 5-minute deduplication window; the worker's claim still makes
the turn exactly-once beyond that window and on standard queues.

:class:`LocalDispatcher` is an at-least-once bus in memory: a failed delivery is retried
(as Lambda retries async invokes, docs/protocols.md §3.4), and for fault tests it can deliver
every message more than once and in shuffled order.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from warmline.errors import MissingExtraError
from warmline.offload.lambda_invoke import DispatchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import random
    import threading
    from typing import Any

    from warmline.core.app import App
    from warmline.core.events import WorkerTask
    from warmline.log import StepLogger

__all__ = ["Delivery", "LocalDispatcher", "SnsDispatcher", "SqsDispatcher"]


def _boto3_client(service: str, region: str | None, endpoint_url: str | None) -> Any:
    try:
        import boto3
    except ImportError as exc:
        raise MissingExtraError("boto3", "aws") from exc
    make: Any = boto3.client  # typed per service literal; the service is a parameter here
    return make(service, region_name=region, endpoint_url=endpoint_url)


def _fifo_ids(payload: Mapping[str, Any]) -> dict[str, str]:
    session = str(payload.get("sessionId") or payload.get("connectionId") or "default")
    return {
        "MessageGroupId": session,
        "MessageDeduplicationId": f"{session}#{payload.get('turn', '')}"[:128],
    }


class SnsDispatcher:
    """Publishes the payload to an SNS topic whose subscriber is the worker (§4.2).

    Args:
        topic_arn: the topic.
        client: a boto3 SNS client (default: made on first dispatch).
        region: for the default client.
        endpoint_url: for the default client (tests, emulators).
    """

    def __init__(
        self,
        topic_arn: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.topic_arn = topic_arn
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    def dispatch(self, payload: Mapping[str, Any]) -> str:
        """Publish; returns SNS's ``MessageId``.

        Raises:
            DispatchError: SNS refused or could not be reached.
            MissingExtraError: boto3 is not installed.
        """
        if self._client is None:
            self._client = _boto3_client("sns", self._region, self._endpoint_url)
        kwargs: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Message": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        }
        if self.topic_arn.endswith(".fifo"):
            kwargs.update(_fifo_ids(payload))
        try:
            answer = self._client.publish(**kwargs)
        except Exception as exc:  # botocore's ClientError / EndpointConnectionError
            raise DispatchError(f"SNS publish to {self.topic_arn} failed: {exc}") from exc
        return str(answer.get("MessageId", ""))

    def close(self) -> None:
        """Close the boto3 client (its connection pool)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


class SqsDispatcher:
    """Sends the payload to an SQS queue feeding the worker (§4.3).

    Args:
        queue_url: the queue.
        client: a boto3 SQS client (default: made on first dispatch).
        region: for the default client.
        endpoint_url: for the default client (tests, emulators).
    """

    def __init__(
        self,
        queue_url: str,
        *,
        client: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.queue_url = queue_url
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    def dispatch(self, payload: Mapping[str, Any]) -> str:
        """Send; returns SQS's ``MessageId``.

        Raises:
            DispatchError: SQS refused or could not be reached.
            MissingExtraError: boto3 is not installed.
        """
        if self._client is None:
            self._client = _boto3_client("sqs", self._region, self._endpoint_url)
        kwargs: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        }
        if self.queue_url.endswith(".fifo"):
            kwargs.update(_fifo_ids(payload))
        try:
            answer = self._client.send_message(**kwargs)
        except Exception as exc:  # botocore's ClientError / EndpointConnectionError
            raise DispatchError(f"SQS send to {self.queue_url} failed: {exc}") from exc
        return str(answer.get("MessageId", ""))

    def close(self) -> None:
        """Close the boto3 client (its connection pool)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


@dataclass(slots=True)
class Delivery:
    """One attempt the local bus made.

    Attributes:
        message_id: the dispatch's id (shared by duplicates).
        attempt: 1 for the first delivery of a copy, then 2, 3... after failures.
        result: what the worker returned, or None.
        error: ``repr`` of what it raised, or ``""``.
    """

    message_id: str
    attempt: int
    result: Any = None
    error: str = ""


class LocalDispatcher:
    """An in-process, at-least-once bus that delivers to an App's ``@app.worker``.

    Deliveries run when :meth:`drain` (or :meth:`deliver_one`) is called, or at once on a
    background thread with ``threaded=True`` (single-process servers, benchmarks).

    Args:
        app: the App whose worker receives ``WorkerTask`` events.
        max_attempts: deliveries of one copy before it goes to :attr:`dead_letters`.
        duplicates: extra copies of every dispatched message (fault tests).
        shuffle: deliver in an order drawn from this RNG instead of FIFO (fault tests).
        threaded: deliver on a background thread as soon as a message is dispatched.
        timeout_s: what the worker's ``remaining_ms`` starts from (a Lambda timeout).
        log: the step logger the worker's invocations write to (default: stdout).
    """

    def __init__(
        self,
        app: App,
        *,
        max_attempts: int = 3,
        duplicates: int = 0,
        shuffle: random.Random | None = None,
        threaded: bool = False,
        timeout_s: float = 900.0,
        log: StepLogger | None = None,
    ) -> None:
        self.app = app
        self.log = log
        self.max_attempts = max_attempts
        self.duplicates = duplicates
        self.shuffle = shuffle
        self.timeout_s = timeout_s
        #: every attempt made, in order.
        self.deliveries: list[Delivery] = []
        #: copies that failed ``max_attempts`` times: (message id, payload).
        self.dead_letters: list[tuple[str, dict[str, Any]]] = []
        self._queue: list[tuple[str, str, int]] = []  # (message id, JSON payload, attempt)
        self._thread: threading.Thread | None = None
        self._wake: threading.Condition | None = None
        self._closed = False
        if threaded:
            import threading

            self._wake = threading.Condition()
            self._thread = threading.Thread(target=self._loop, name="local-dispatch", daemon=True)
            self._thread.start()

    @property
    def pending(self) -> int:
        """Copies waiting for delivery."""
        return len(self._queue)

    def dispatch(self, payload: Mapping[str, Any]) -> str:
        """Queue ``payload`` (as JSON, so the worker shares nothing with the router).

        Returns:
            A new message id.
        """
        message_id = uuid.uuid4().hex
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        copies = [(message_id, text, 1)] * (1 + self.duplicates)
        if self._wake is not None:
            with self._wake:
                self._queue.extend(copies)
                self._wake.notify()
        else:
            self._queue.extend(copies)
        return message_id

    def deliver_one(self) -> bool:
        """Deliver one queued copy (retrying it later if the worker raises).

        Returns:
            False when nothing was queued.
        """
        if not self._queue:
            return False
        index = self.shuffle.randrange(len(self._queue)) if self.shuffle is not None else 0
        message_id, text, attempt = self._queue.pop(index)
        self._run(message_id, text, attempt)
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Deliver until the queue is empty (retries included).

        Returns:
            The number of deliveries made.
        """
        count = 0
        while count < limit and self.deliver_one():
            count += 1
        return count

    def close(self) -> None:
        """Stop the background thread (pending copies stay queued)."""
        self._closed = True
        if self._wake is not None and self._thread is not None:
            with self._wake:
                self._wake.notify_all()
            self._thread.join(timeout=30)

    def _run(self, message_id: str, text: str, attempt: int) -> None:
        from warmline.core.app import Invocation
        from warmline.core.events import WorkerTask

        payload = json.loads(text)
        task: WorkerTask = WorkerTask(
            payload=payload, delivery="local", message_id=message_id, attempt=attempt
        )
        started = time.monotonic()
        budget_ms = self.timeout_s * 1000

        def remaining() -> int:
            return max(0, int(budget_ms - (time.monotonic() - started) * 1000))

        record = Delivery(message_id, attempt)
        self.deliveries.append(record)
        try:
            invocation = Invocation(remaining_ms=remaining, clock=time.monotonic)
            if self.log is not None:
                invocation.log = self.log
            record.result = self.app.handle(task, invocation)
        except Exception as exc:  # a failed delivery is retried, like Lambda
            record.error = repr(exc)
            if attempt < self.max_attempts:
                self._queue.append((message_id, text, attempt + 1))
            else:
                self.dead_letters.append((message_id, payload))

    def _loop(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            with wake:
                while not self._queue and not self._closed:
                    wake.wait()
                if self._closed:
                    return
            self.deliver_one()
