"""Schedule expressions: rate and AWS 6-field cron, with the time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from warmline.config.schedule import CronSchedule, RateSchedule, parse_expression

T0 = datetime(2024, 1, 20, 11, 54, 57, tzinfo=UTC)  # a Saturday


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("rate(3 days)", 259200),
        ("rate(10 seconds)", 10),
    ],
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    schedule = parse_expression(expression)
    assert schedule == RateSchedule(float(seconds))
    assert schedule.next_after(T0) == T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(5 minute)",
        "rate(1 minutes)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 12 * * *)",
        "cron(0 12 * * * *)",  # both day fields '*'
        "cron(0 12 ? * ? *)",
        "cron(61 * * * ? *)",
        "cron(0 12 L * ? *)",
        "every 5 minutes",
    ],
)
def test_bad_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(ValueError):
        parse_expression(expression)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0/15 * * * ? *)", datetime(2024, 1, 20, 12, 0, tzinfo=UTC)),
        ("cron(0 10 * * ? *)", datetime(2024, 1, 21, 10, 0, tzinfo=UTC)),
        ("cron(15 12 * * ? *)", datetime(2024, 1, 20, 12, 15, tzinfo=UTC)),
        ("cron(0 18 ? * MON-FRI *)", datetime(2024, 1, 22, 18, 0, tzinfo=UTC)),
        ("cron(0 8 1 * ? *)", datetime(2024, 2, 1, 8, 0, tzinfo=UTC)),
        ("cron(0 0 ? * 1 *)", datetime(2024, 1, 21, 0, 0, tzinfo=UTC)),  # 1 = Sunday
        ("cron(30 9 ? * SAT 2025)", datetime(2025, 1, 4, 9, 30, tzinfo=UTC)),
        ("cron(0 12 29 FEB ? *)", datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),
        ("cron(0,30 11,12 * * ? *)", datetime(2024, 1, 20, 12, 0, tzinfo=UTC)),
    ],
)
def test_cron_next_fire_time(expression: str, expected: datetime) -> None:
    schedule = parse_expression(expression)
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_after(T0) == expected


def test_cron_next_is_strictly_after_a_matching_minute() -> None:
    schedule = parse_expression("cron(* * * * ? *)")
    at = datetime(2024, 1, 20, 11, 54, tzinfo=UTC)
    assert schedule.next_after(at) == at + timedelta(minutes=1)


def test_cron_that_never_fires_raises() -> None:
    schedule = parse_expression("cron(0 0 31 FEB ? *)")
    with pytest.raises(ValueError):
        schedule.next_after(T0)
