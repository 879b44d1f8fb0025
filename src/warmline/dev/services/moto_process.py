"""The moto server process: ``python -m warmline.dev.services.moto_process SPEC.json``.

One per ``warmline dev`` run, started by :class:`~warmline.dev.services.LocalServices`
when the stack declares resources. In order, it:

1. serves moto's every-service WSGI app on a free loopback port, one request at a time
   (moto's backends take no locks, and DynamoDB never lets two conditional writes on one
   item both succeed), over HTTP/1.1 keep-alive connections;
2. creates the stack's resources (``ServiceResources.to_json()`` in ``SPEC.json``): a table
   that exists keeps its items, a parameter takes the template's value, a secret that
   exists keeps its value;
3. replays moto's request recording from the previous runs, when one is named, and
   records every request from then on (moto's own recorder: ``MOTO_RECORDER_FILEPATH``),
   so the data written by handlers survives a restart. Before replaying, it drops the
   recorded reads (:func:`compact`): they change nothing, and without this the recording
   and the time to replay it would grow with every ``Query`` or ``GetObject`` of every run;
4. prints one JSON line (``{"port": N, "replayed": N}``) on stdout, then serves until its
   stdin closes (the emulator went away, however it ended) or it is terminated.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

__all__ = ["compact", "is_read", "main"]

#: Stand-in credentials the creation calls sign with (moto checks no signature).
_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAWARMLINESERVICES",
    "AWS_SECRET_ACCESS_KEY": "warmline-services-not-a-secret",
}
#: Host variables that would send the creation calls elsewhere.
_DROPPED_ENV = (
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
)

_WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _serialized(app: _WsgiApp) -> _WsgiApp:
    """``app`` answering one request at a time (each response read out under the lock)."""
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return serve


def _tolerating(codes: tuple[str, ...], call: Callable[..., Any], **kwargs: Any) -> None:
    """``call(**kwargs)``, ignoring AWS errors with one of ``codes`` (the resource exists)."""
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in codes:
            raise


def _create(spec: dict[str, Any], endpoint: str, region: str) -> None:
    """Create every resource of ``spec`` on the server at ``endpoint``."""
    import boto3

    session = boto3.session.Session(region_name=region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]

    if spec["tables"]:
        dynamodb = client("dynamodb")
        for table in spec["tables"]:
            _tolerating(("ResourceInUseException",), dynamodb.create_table, **table["request"])
            if table["ttl"]:
                _tolerating(
                    ("ValidationException",),
                    dynamodb.update_time_to_live,
                    TableName=table["name"],
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttl"]},
                )
    if spec["queues"]:
        sqs = client("sqs")
        for queue in spec["queues"]:
            attributes = {"FifoQueue": "true"} if queue["fifo"] else {}
            sqs.create_queue(QueueName=queue["name"], Attributes=attributes)
    if spec["topics"]:
        sns = client("sns")
        for topic in spec["topics"]:
            sns.create_topic(Name=topic["name"])
    if spec["buckets"]:
        s3 = client("s3")
        where = {} if region == "us-east-1" else {"LocationConstraint": region}
        for bucket in spec["buckets"]:
            kwargs: dict[str, Any] = {"Bucket": bucket["name"]}
            if where:
                kwargs["CreateBucketConfiguration"] = where
            _tolerating(
                ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"), s3.create_bucket, **kwargs
            )
    if spec["parameters"]:
        ssm = client("ssm")
        for p in spec["parameters"]:
            ssm.put_parameter(Name=p["name"], Value=p["value"], Type=p["type"], Overwrite=True)
    if spec["secrets"]:
        secrets = client("secretsmanager")
        for s in spec["secrets"]:
            kwargs = {"Name": s["name"]}
            if s["value"] is not None:
                kwargs["SecretString"] = s["value"]
            _tolerating(("ResourceExistsException",), secrets.create_secret, **kwargs)


#: Actions that only read, by name: ``Get*``, ``Describe*`` and ``List*`` in every emulated
#: service, and these. ``ReceiveMessage`` is not one: it moves a message's receive count
#: and visibility, which a dead-letter queue's ``maxReceiveCount`` depends on.
_READ_ACTIONS = frozenset({"Query", "Scan", "BatchGetItem", "TransactGetItems"})
_READ_PREFIXES = ("Get", "Describe", "List")


def is_read(entry: dict[str, Any]) -> bool:
    """Whether a recorded request only reads, so replaying it changes nothing.

    The action is the ``X-Amz-Target`` header's (JSON protocols: DynamoDB, SQS, SSM, Secrets
    Manager), else the form body's ``Action=`` (query protocol: SNS); S3's REST requests
    read when their method is ``GET`` or ``HEAD``. A request this cannot name is kept.
    """
    headers = {str(k).lower(): str(v) for k, v in (entry.get("headers") or {}).items()}
    target = headers.get("x-amz-target")
    if target:
        action = target.rpartition(".")[2]
    elif "x-www-form-urlencoded" in headers.get("content-type", ""):
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        action = next(iter(parse_qs(body).get("Action", [])), "")
    else:
        return str(entry.get("method", "")).upper() in ("GET", "HEAD")
    return action in _READ_ACTIONS or action.startswith(_READ_PREFIXES)


def compact(recording: Path) -> tuple[int, int]:
    """Rewrite ``recording`` without its reads (:func:`is_read`); returns (kept, dropped).

    The new file replaces the old one in a single rename, so a crash leaves one or the other.
    """
    kept: list[str] = []
    dropped = 0
    for line in recording.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if is_read(json.loads(line)):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        partial = recording.with_name(recording.name + ".compacting")
        partial.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        os.replace(partial, recording)
    return len(kept), dropped


def _replay(recording: Path, endpoint: str) -> int:
    """Replay the writes recorded by earlier runs; returns how many."""
    from moto.moto_api import recorder

    if not recording.is_file() or recording.stat().st_size == 0:
        return 0
    count, _ = compact(recording)
    recorder.replay_recording(target_host=endpoint)
    return count


def _watch_stdin() -> None:
    """Exit when the emulator's end of stdin closes."""
    sys.stdin.buffer.read()
    os._exit(0)


def main(argv: list[str]) -> int:
    """Run the server (see the module docstring). ``argv``: SPEC.json [RECORDING]."""
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    recording = Path(argv[1]) if len(argv) > 1 else None
    for name in _DROPPED_ENV:
        os.environ.pop(name, None)
    os.environ.update(_CREDENTIALS)
    if recording is not None:
        os.environ["MOTO_RECORDER_FILEPATH"] = str(recording)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", 0, _serialized(app), threaded=True, request_handler=MotoRequestHandler
    )
    port = int(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{port}"
    _create(spec["resources"], endpoint, spec["region"])
    replayed = 0
    if recording is not None:
        from moto.moto_api import recorder

        replayed = _replay(recording, endpoint)
        recorder.start_recording()
    print(json.dumps({"port": port, "replayed": replayed}), flush=True)
    _watch_stdin()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
