"""The ``warmline.toml`` model: one file, read by ``warmline dev`` and ``warmline deploy``.

A project describes its functions, WebSocket routes, schedules, queues and topics once;
the emulator runs that description and the deploy tool renders it for AWS, so what runs
locally is what gets deployed. Modules:

- :mod:`~warmline.config.model`: the dataclasses (:class:`DevConfig` and its parts) and
  the platform defaults they carry;
- :mod:`~warmline.config.load`: :func:`find_config`, :func:`load_config`,
  :func:`parse_config`, every check naming the offending key;
- :mod:`~warmline.config.faults`: the ``[faults]`` table (the emulator fires it);
- :mod:`~warmline.config.schedule`: EventBridge ``rate(...)``/``cron(...)`` expressions;
- :mod:`~warmline.config.deploy`: the ``[deploy]`` table only ``warmline deploy`` reads.

Nothing here imports the emulator (:mod:`warmline.dev`) or a template format. Names are
resolved on first use (PEP 562), so importing the package loads no submodule.
"""

from __future__ import annotations

from warmline._lazy import lazy_names

TYPE_CHECKING = False

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "AuthorizerConfig": "warmline.config.model",
    "DevConfig": "warmline.config.model",
    "FunctionConfig": "warmline.config.model",
    "Limits": "warmline.config.model",
    "RouteConfig": "warmline.config.model",
    "ScheduleConfig": "warmline.config.model",
    "SnsTopicConfig": "warmline.config.model",
    "SqsQueueConfig": "warmline.config.model",
    "WebSocketConfig": "warmline.config.model",
    "find_config": "warmline.config.load",
    "load_config": "warmline.config.load",
    "parse_config": "warmline.config.load",
    "FaultPlan": "warmline.config.faults",
    "Project": "warmline.config.deploy",
    "load_project": "warmline.config.deploy",
}

__all__ = [
    "AuthorizerConfig",
    "DevConfig",
    "FaultPlan",
    "FunctionConfig",
    "Limits",
    "Project",
    "RouteConfig",
    "ScheduleConfig",
    "SnsTopicConfig",
    "SqsQueueConfig",
    "WebSocketConfig",
    "find_config",
    "load_config",
    "load_project",
    "parse_config",
]

if TYPE_CHECKING:
    from warmline.config.deploy import Project, load_project
    from warmline.config.faults import FaultPlan
    from warmline.config.load import find_config, load_config, parse_config
    from warmline.config.model import (
        AuthorizerConfig,
        DevConfig,
        FunctionConfig,
        Limits,
        RouteConfig,
        ScheduleConfig,
        SnsTopicConfig,
        SqsQueueConfig,
        WebSocketConfig,
    )


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
