"""Log hygiene: phone-number masking (``WARMLINE_REDACT_PHONE``) and unencodable text.

The masking is off by default (support teams search by caller number) and on with
``WARMLINE_REDACT_PHONE=1``; it keeps the last 4 digits (2 for short numbers) so a call
can still be found. A lone surrogate from a peer (a ``\\ud800`` escape in JSON) must not
make the log line -- or the request -- fail on Lambda's strict UTF-8 stdout.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmline.adapters.aws_lambda import lambda_handler
from warmline.core.app import App, Context
from warmline.log import REDACT_PHONE_ENV, StepLogger, redact_phone_numbers
from warmline.stores.memory import MemoryStore
from warmline.testing import LambdaContext, websocket_event


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+14155550123", "+*******0123"),
        ("+15550100", "+******00"),
        ("from +442071838750 to +14155550123.", "from +********8750 to +*******0123."),
        ("From=%2B14155550123&To=%2b15550101", "From=%2B*******0123&To=%2b******01"),
        ("+1 and +1234567", "+1 and +1234567"),  # too short for E.164
        ("+1234567890123456", "+1234567890123456"),  # 16 digits: not E.164
        ("order 14155550123", "order 14155550123"),  # no +: not a number we can tell
        ("", ""),
    ],
)
def test_masking(text: str, masked: str) -> None:
    assert redact_phone_numbers(text) == masked


def test_masking_reaches_nested_fields_and_leaves_other_types() -> None:
    value = {"a": ["+14155550123", 5, None], "b": {"c": "+14155550123"}}
    assert redact_phone_numbers(value) == {
        "a": ["+*******0123", 5, None],
        "b": {"c": "+*******0123"},
    }
    assert redact_phone_numbers(3.5) == 3.5


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60), st.from_regex(r"\A\+[0-9]{8,15}\Z"))
def test_no_full_number_survives(prefix: str, number: str) -> None:
    out = redact_phone_numbers(f"{prefix} {number} ")
    assert number not in out
    assert number[-2:] in out


@pytest.mark.parametrize(
    ("env", "masked"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_env_switch(monkeypatch: pytest.MonkeyPatch, env: str, masked: bool) -> None:
    monkeypatch.setenv(REDACT_PHONE_ENV, env)
    out = io.StringIO()
    StepLogger(out)("setup", caller="+14155550123")
    assert ("+14155550123" not in out.getvalue()) is masked


def test_through_the_lambda_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """An app logging the caller: with the switch on, the line has the masked number only."""
    monkeypatch.setenv(REDACT_PHONE_ENV, "1")
    app = App(store=MemoryStore(), allow_unsigned=True)  # unsigned test handshakes

    @app.route("$connect")
    def connect(ctx: Context) -> None:
        ctx.log("caller", number=ctx.event.query.get("from"))  # type: ignore[union-attr]

    out = io.StringIO()
    handler = lambda_handler(app, log=StepLogger(out))
    event = websocket_event("CONNECT", query={"from": "+14155550123"})
    assert handler(event, LambdaContext())["statusCode"] == 200
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(r.get("number") == "+*******0123" for r in records), records
    assert "4155550123" not in out.getvalue()


def test_unencodable_text_is_escaped_not_raised() -> None:
    """Lambda's stdout is strict UTF-8: a lone surrogate used to raise inside the request."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    record: dict[str, Any] = StepLogger(stream)("message", callSid="CA\ud800")
    stream.flush()
    line = raw.getvalue().decode("utf-8")
    assert json.loads(line)["callSid"] == "CA\ud800" == record["callSid"]
    stream.detach()
