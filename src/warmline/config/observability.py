"""``[deploy.observability]``: the alarms, dashboard and access logs ``warmline deploy`` renders.

::

    [deploy.observability]
    first_token_p95_ms = 1500      # alarm when a minute's first-token p95 is over this
    cold_connect_alarm = false     # alarm on any cold $connect (teams that pay for warmth)
    cold_connect_window_s = 300    # ... within this window (a multiple of 60)
    async_event_age_ms = 60000     # alarm when an async event waited longer than this
    access_logs = true             # API Gateway access logs for the WebSocket stage
    dashboard = true               # a CloudWatch dashboard of the same metrics

Alarms notify ``[deploy] alarm_topic_arn``, or an SNS topic the template creates when none
is given (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from warmline.config.keys import allowed
from warmline.errors import ConfigurationError

__all__ = ["ObservabilitySettings", "parse_observability"]


@dataclass(frozen=True, slots=True)
class ObservabilitySettings:
    """The ``[deploy.observability]`` table (see the module docstring)."""

    first_token_p95_ms: float = 1500.0
    cold_connect_alarm: bool = False
    cold_connect_window_s: int = 300
    async_event_age_ms: int = 60_000
    access_logs: bool = True
    dashboard: bool = True


def _positive(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"deploy.observability.{key} must be a number > 0")
    return value


def _flag(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"deploy.observability.{key} must be true or false")
    return value


def parse_observability(raw: Any) -> ObservabilitySettings:
    """Read ``[deploy.observability]``.

    Raises:
        ConfigurationError: an unknown key or a bad value, named.
    """
    if not isinstance(raw, dict):
        raise ConfigurationError("deploy.observability must be a table")
    known = allowed("deploy.observability")
    for key in raw:
        if key not in known:
            raise ConfigurationError(f"unknown key 'deploy.observability.{key}'")
    default = ObservabilitySettings()
    window = _positive(raw, "cold_connect_window_s", default.cold_connect_window_s)
    if window % 60:  # a CloudWatch alarm period over 60 s is a multiple of 60
        raise ConfigurationError(
            "deploy.observability.cold_connect_window_s must be a multiple of 60"
        )
    return ObservabilitySettings(
        first_token_p95_ms=float(_positive(raw, "first_token_p95_ms", default.first_token_p95_ms)),
        cold_connect_alarm=_flag(raw, "cold_connect_alarm", default.cold_connect_alarm),
        cold_connect_window_s=int(window),
        async_event_age_ms=int(_positive(raw, "async_event_age_ms", default.async_event_age_ms)),
        access_logs=_flag(raw, "access_logs", default.access_logs),
        dashboard=_flag(raw, "dashboard", default.dashboard),
    )
