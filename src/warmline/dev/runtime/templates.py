"""Snapstart mode, emulator side: start, use and close a function's template process.

See :mod:`warmline.dev.runtime.snapstart` for what a template is. The emulator talks to a
template exactly as to the zygote (:class:`~warmline.dev.runtime.procs.ZygoteSpawner`), over
the datagram socket the zygote handed back when it forked the template; the template's
stdout/stderr (its one-time init output) go to the log like an environment's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from warmline.dev.runtime.environment import LinePipe
from warmline.dev.runtime.procs import SpawnError, ZygoteSpawner

__all__ = ["Template", "close_template", "start_template"]


class Template:
    """A live template: its spawner (for restored environments) and its log pipes.

    Args:
        environment_id: its id in the logs.
        spawner: the client of its control socket.
        exited: resolves when the template process is gone.
        pipes: its stdout and stderr readers.
    """

    def __init__(
        self,
        environment_id: str,
        spawner: ZygoteSpawner,
        exited: asyncio.Future[int],
        pipes: tuple[LinePipe, ...],
    ) -> None:
        self.environment_id = environment_id
        self.spawner = spawner
        self.exited = exited
        self.pipes = pipes
        self.init_ms: float | None = None

    @property
    def alive(self) -> bool:
        """Whether it can still fork environments."""
        return self.spawner.alive and not self.exited.done()


async def start_template(
    zygote: ZygoteSpawner,
    config: Mapping[str, Any],
    environment_id: str,
    emit: Callable[[str], None],
    timeout_s: float,
) -> tuple[Template | None, dict[str, Any]]:
    """Fork a template and wait for its init.

    Args:
        zygote: the runtime process.
        config: the function's configuration (``kind`` is set here).
        environment_id: the template's id in the logs.
        emit: where its output lines go.
        timeout_s: the init limit.

    Returns:
        ``(template, ready message)`` or ``(None, failure message)``; a failure message has
        ``t`` = ``"init_error"`` (with ``error``) or ``"timeout"``.
    """
    try:
        spawned = await zygote.spawn({**config, "kind": "template"})
    except SpawnError as exc:
        return None, {
            "t": "init_error",
            "error": {"errorType": "Runtime.Unknown", "errorMessage": str(exc)},
        }
    loop = asyncio.get_running_loop()
    pipes = (LinePipe(spawned.stdout_fd, loop, emit),)
    spawner = ZygoteSpawner(spawned.sock, pid=spawned.pid)
    template = Template(environment_id, spawner, spawned.exited, pipes)
    hello: dict[str, Any]
    try:
        hello = await asyncio.wait_for(asyncio.shield(spawner.hello), timeout_s)
    except TimeoutError:
        hello = {"t": "timeout"}
    except SpawnError:
        hello = {
            "t": "init_error",
            "error": {"errorType": "Runtime.ExitError", "errorMessage": "template exited"},
        }
    except asyncio.CancelledError:  # the caller went away: nobody else holds the template
        zygote.kill(spawned.pid)
        await close_template(template)  # its socket closes before close_template first waits
        raise
    if hello.get("t") == "ready":
        template.init_ms = float(hello.get("init_ms", 0.0))
        return template, hello
    zygote.kill(spawned.pid)
    await close_template(template)
    return None, hello


async def close_template(template: Template, timeout_s: float = 2.0) -> None:
    """Close its control socket (it kills its environments and exits) and its pipes."""
    await template.spawner.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(template.exited), timeout_s)
    for pipe in template.pipes:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pipe.eof.wait(), 0.5)
        pipe.close()
