"""``LocalServices``: the one moto server of a ``warmline dev`` run, and what it holds.

Started when the stack declares resources in services moto serves (DynamoDB, SQS, SNS, S3,
SSM, Secrets Manager; ``DevConfig.services``). The server runs in its own process
(:mod:`warmline.dev.services.moto_process`) so moto's imports and request handling never
share the emulator's event loop or interpreter lock. Functions do not talk to it directly:
the AWS proxy (:mod:`warmline.dev.proxy`) sends ``dynamodb.{region}.amazonaws.com`` and the
other service hosts here, as AWS's own names would reach AWS.

Persistence: with a ``state_dir``, moto's request recorder appends every request to
``state_dir/moto-recording.jsonl`` and the next run drops the recorded reads from it and
replays the rest after creating the template's resources, so items, objects, messages and
parameter values written by handlers are there again. ``reset`` deletes the recording first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path

from warmline.config.services import ServiceResources
from warmline.errors import MissingExtraError

__all__ = ["RECORDING_NAME", "LocalServices", "ServicesError"]

#: The request log replayed at start (under the ``state_dir``).
RECORDING_NAME = "moto-recording.jsonl"
#: moto imports ~1 s of modules and creates the resources before it answers.
_START_TIMEOUT_S = 60.0


class ServicesError(RuntimeError):
    """The moto server did not start (its stderr's last lines are in the message)."""


class LocalServices:
    """One moto server with the stack's resources.

    Args:
        resources: what to create.
        region: the region the resources live in.
        state_dir: where the request recording is kept between runs (None: nothing kept).
        reset: start from the template's resources only (the recording is deleted).
    """

    def __init__(
        self,
        resources: ServiceResources,
        *,
        region: str,
        state_dir: Path | None = None,
        reset: bool = False,
    ) -> None:
        self.resources = resources
        self.region = region
        self.state_dir = state_dir
        self.reset = reset
        #: how many recorded requests were replayed at start.
        self.replayed = 0
        self._port: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def port(self) -> int:
        """The server's loopback port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("LocalServices is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def recording(self) -> Path | None:
        """The request log kept between runs (None without a ``state_dir``)."""
        return None if self.state_dir is None else self.state_dir / RECORDING_NAME

    async def start(self) -> None:
        """Start the server, create the resources, replay the recording.

        Raises:
            MissingExtraError: moto is not installed (the ``dev`` extra).
            ServicesError: the server did not come up.
        """
        try:
            import moto  # noqa: F401
        except ImportError as exc:
            raise MissingExtraError("moto[server]", "dev") from exc
        self._tmp = tempfile.TemporaryDirectory(prefix="warmline-services-")
        tmp = Path(self._tmp.name)
        spec = tmp / "spec.json"
        spec.write_text(
            json.dumps({"resources": self.resources.to_json(), "region": self.region}),
            encoding="utf-8",
        )
        args = [str(spec)]
        recording = self.recording
        if recording is not None:
            recording.parent.mkdir(parents=True, exist_ok=True)
            if self.reset:
                recording.unlink(missing_ok=True)
            args.append(str(recording))
        stderr_path = tmp / "moto.log"
        with stderr_path.open("wb") as stderr:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "warmline.dev.services.moto_process",
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), _START_TIMEOUT_S)
            ready = json.loads(line)
            self._port = int(ready["port"])
            self.replayed = int(ready["replayed"])
        except (TimeoutError, ValueError, KeyError, TypeError) as exc:
            tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            await self.close()
            raise ServicesError(f"the local AWS services (moto) did not start:\n{tail}") from exc

    async def close(self) -> None:
        """Stop the server (the recording stays)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def listing(self) -> list[str]:
        """Start-up lines: what the server holds and where it keeps it."""
        counts = ", ".join(f"{n} {kind}" for kind, n in self.resources.counts().items())
        lines = [f"AWS services: moto at {self.endpoint}: {counts}"]
        names = [
            *(f"table {t.name}" for t in self.resources.tables),
            *(f"queue {q.name}" for q in self.resources.queues),
            *(f"topic {t.name}" for t in self.resources.topics),
            *(f"bucket {b.name}" for b in self.resources.buckets),
            *(f"parameter {p.name}" for p in self.resources.parameters),
            *(f"secret {s.name}" for s in self.resources.secrets),
        ]
        lines.append("  " + ", ".join(names))
        if self.recording is not None:
            lines.append(
                f"  data kept in {self.recording} ({self.replayed} request(s) replayed; "
                "--reset starts clean)"
            )
        return lines
