"""Read a function's (or the WebSocket stage's access) log group from CloudWatch Logs.

``warmline report --cloudwatch GROUP --since 1h`` fetches the events with boto3's
``logs`` client (``FilterLogEvents``, paginated, interleaved across streams:
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html)
and hands :func:`warmline.tools.report.parse_lines` the same JSON lines ``warmline dev``
writes (``{"ts", "function", "env", "line"}``), the log stream standing in for the
environment: Lambda writes one stream per execution environment. So a production log and a
local one go through one parser and print the same tables.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["fetch_events", "parse_since", "to_report_lines"]

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> float:
    """Seconds from a ``--since`` value: ``90s``, ``15m``, ``1h``, ``2d``.

    Raises:
        ValueError: any other form.
    """
    match = _SINCE.match(text.strip())
    if match is None:
        raise ValueError(f"--since takes a number and s, m, h or d (like 1h), not {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def fetch_events(
    group: str,
    since_s: float,
    *,
    client: Any = None,
    now: Callable[[], float] = time.time,
) -> list[dict[str, Any]]:
    """The group's events of the last ``since_s`` seconds, oldest first.

    Events with the same millisecond keep the order the service returned them in (a
    stream's own order), so an invocation's START, step lines and REPORT stay in sequence.

    Args:
        group: the log group name.
        since_s: how far back to read.
        client: a boto3 ``logs`` client (default: one from the environment's credentials
            and region; ``warmline[aws]``).
    """
    if client is None:
        import boto3

        client = boto3.client("logs")
    start_ms = int((now() - since_s) * 1000)
    events: list[dict[str, Any]] = []
    paginator = client.get_paginator("filter_log_events")
    for page in paginator.paginate(logGroupName=group, startTime=start_ms):
        events.extend(page.get("events", []))
    events.sort(key=lambda e: int(e.get("timestamp", 0)))
    return events


def to_report_lines(events: list[dict[str, Any]], function: str) -> list[str]:
    """The events as the emulator's JSON lines, for :func:`parse_lines`."""
    return [
        json.dumps(
            {
                "ts": int(e.get("timestamp", 0)) / 1000,
                "function": function,
                "env": str(e.get("logStreamName") or ""),
                "line": str(e.get("message") or "").rstrip("\n"),
            }
        )
        for e in events
    ]
