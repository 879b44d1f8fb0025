"""EventBridge schedule expressions: ``rate(...)`` and 6-field ``cron(...)``, pure.

Only what the next fire time needs: parse once, then ``next_after(t)``. Times are UTC
datetimes passed in (no clock reads here), so the matcher is testable without waiting.

AWS's syntax (EventBridge "Schedule expressions for rules"):

- ``rate(1 minute)``, ``rate(5 minutes)``, ``rate(1 hour)``, ``rate(2 days)``; the unit is
  singular exactly when the value is 1. ``rate(N second|seconds)`` is a warmline dev/test
  extension (AWS's minimum is one minute).
- ``cron(minutes hours day-of-month month day-of-week year)``: ``*``, ``,``, ``-``, ``/``,
  names ``JAN``-``DEC`` and ``SUN``-``SAT`` (day-of-week 1-7 = SUN-SAT); one of
  day-of-month / day-of-week must be ``?``. ``L``, ``W`` and ``#`` are not supported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["CronSchedule", "RateSchedule", "Schedule", "parse_expression"]

_RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
_CRON_RE = re.compile(r"^cron\((.*)\)$")
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())
}
_DAYS = {d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
#: How far ahead a cron search looks before giving up (a year field can exclude all).
_SEARCH_DAYS = 366 * 5


@dataclass(frozen=True, slots=True)
class RateSchedule:
    """``rate(N unit)``: fires every ``seconds``, first one period after start."""

    seconds: float

    def next_after(self, t: datetime) -> datetime:
        """The first fire time strictly after ``t`` (one period on)."""
        return t + timedelta(seconds=self.seconds)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """AWS 6-field cron, each field as the set of values it matches (None = any)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None
    months: frozenset[int]
    weekdays: frozenset[int] | None
    years: frozenset[int] | None

    def matches_day(self, day: datetime) -> bool:
        """Whether the date of ``day`` is one this schedule fires on."""
        if self.years is not None and day.year not in self.years:
            return False
        if day.month not in self.months:
            return False
        if self.days is not None and day.day not in self.days:
            return False
        aws_weekday = (day.weekday() + 1) % 7 + 1  # Monday=0 -> 2 (SUN=1)
        return self.weekdays is None or aws_weekday in self.weekdays

    def next_after(self, t: datetime) -> datetime:
        """The first minute strictly after ``t`` that matches.

        Raises:
            ValueError: nothing matches in the next five years.
        """
        start = (t.astimezone(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(_SEARCH_DAYS):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        raise ValueError("cron expression never fires in the next five years")


Schedule = RateSchedule | CronSchedule


def parse_expression(expression: str) -> Schedule:
    """Parse ``rate(...)`` or ``cron(...)``.

    Raises:
        ValueError: with what is wrong.
    """
    text = expression.strip()
    rate = _RATE_RE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        base = unit[:-1] if unit.endswith("s") else unit
        if base not in _UNITS or value < 1:
            raise ValueError(f"bad rate expression {expression!r}")
        if (value == 1) != (unit == base):
            raise ValueError(f"use the singular unit exactly when the value is 1: {expression!r}")
        return RateSchedule(float(value * _UNITS[base]))
    cron = _CRON_RE.match(text)
    if not cron:
        raise ValueError(f"expected rate(...) or cron(...), got {expression!r}")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"cron needs 6 fields (min hour dom month dow year), got {len(fields)}")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    return CronSchedule(
        minutes=_field(minute, 0, 59, {}),
        hours=_field(hour, 0, 23, {}),
        days=None if dom in ("?", "*") else _field(dom, 1, 31, {}),
        months=_field(month, 1, 12, _MONTHS),
        weekdays=None if dow in ("?", "*") else _field(dow, 1, 7, _DAYS),
        years=None if year == "*" else _field(year, 1970, 2199, {}),
    )


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _number(step_text, 1, high, {})
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _number(a, low, high, names), _number(b, low, high, names)
            if first > last:
                raise ValueError(f"bad range {part!r}")
        else:
            first = _number(part, low, high, names)
            last = high if step != 1 else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise ValueError(f"unsupported cron value {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"cron value {value} outside {low}-{high}")
    return value
