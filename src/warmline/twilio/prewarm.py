"""Call-tied pre-warm: when Twilio asks for TwiML, warm the WebSocket function.

The incoming-call webhook runs shortly before Twilio opens the WebSocket: a few hundred
milliseconds to about a second (docs/protocols.md §1.6). Firing asynchronous warm-up
invocations of the WebSocket function at that moment means the connect, ``setup`` and first
``prompt`` land in environments that have already paid their init, so the first caller after
an idle period does not meet a cold start. That works only if each pinged environment is
free again when ``$connect`` arrives: the pings ask for no pre-warm hooks (``"hooks":
false``) and are not held, so an environment is released as soon as its init is done; each
ping is its own invocation (no fan-out), and the ``concurrency`` of them start their inits
side by side. The pings use warmline's own warm-up format, which the App answers before any
routing (``{"warmline": "warmup", ...}``, :mod:`warmline.core.warmup`), so they never
reach business logic, and go through Lambda's async Invoke API
(:class:`warmline.aws.lambda_invoke.LambdaClient`: no boto3, and ``warmline dev`` serves
the same API). A failed ping is logged and never fails the call.

Scheduled pings remain the safety net for environments that are recycled between calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from warmline.core.app import Context

if TYPE_CHECKING:
    from warmline.aws.lambda_invoke import LambdaClient

__all__ = ["prewarm_on_call"]


def prewarm_on_call(
    functions: Sequence[str], *, concurrency: int = 1, region: str | None = None
) -> Callable[[Context, dict[str, str]], None]:
    """An ``on_incoming`` hook for :func:`warmline.twilio.voice.mount_voice`.

    Args:
        functions: the functions to warm (the WebSocket function; a worker too).
        concurrency: environments to warm per function for each call.
        region: default ``AWS_REGION``.
    """
    clients: dict[str, LambdaClient] = {}

    def fire(ctx: Context, form: dict[str, str]) -> None:
        import json

        from warmline.aws.lambda_invoke import LambdaClient
        from warmline.errors import WarmlineError

        call_sid = form.get("CallSid", "")
        sent = 0
        for name in functions:
            client = clients.get(name)
            if client is None:
                client = clients[name] = LambdaClient(name, region=region)
            for _ in range(concurrency):
                # one environment each, released as soon as it is ready (no hooks, no
                # hold): $connect follows within a few hundred milliseconds
                payload = {"warmline": "warmup", "correlationId": call_sid, "hooks": False}
                try:
                    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
                    client.invoke_event(body.encode("utf-8"))
                    sent += 1
                except (WarmlineError, OSError) as exc:
                    ctx.log("prewarm_failed", "warning", function=name, error=str(exc))
        ctx.annotate(prewarmed=sent)

    return fire
