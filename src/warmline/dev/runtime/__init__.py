"""The emulated AWS Lambda runtime of ``warmline dev``.

One OS process per execution environment, forked from a pre-started single-threaded runtime
process (the zygote); user code is imported in each environment, so init is paid and
measured per environment as on AWS. What the gateway, the bus and the Invoke API use::

    runtime = Runtime([FunctionSpec("ws", "app.handler", Path("src"))])
    await runtime.start()
    result = await runtime.invoke("ws", event)
    runtime.invoke_soon("ws", event, on_result)  # the per-message path: no Task when warm
    await runtime.close()

Names resolve on first use (PEP 562): the zygote imports this package and must stay small.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False

__all__ = [
    "EnvironmentInfo",
    "FunctionSpec",
    "InvokeResult",
    "LogRecord",
    "LogSink",
    "Runtime",
]

_LAZY = {
    "EnvironmentInfo": "warmline.dev.runtime.spec",
    "FunctionSpec": "warmline.dev.runtime.spec",
    "InvokeResult": "warmline.dev.runtime.spec",
    "LogRecord": "warmline.dev.runtime.logs",
    "LogSink": "warmline.dev.runtime.logs",
    "Runtime": "warmline.dev.runtime.runtime",
}

if TYPE_CHECKING:
    from warmline.dev.runtime.logs import LogRecord, LogSink
    from warmline.dev.runtime.runtime import Runtime
    from warmline.dev.runtime.spec import EnvironmentInfo, FunctionSpec, InvokeResult


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
