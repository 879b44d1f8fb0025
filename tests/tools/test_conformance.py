"""``warmline call --check``: the conformance script against servers written here and
against a warmline app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from relay_servers import relay_server

from warmline.tools.call import CallOptions
from warmline.tools.conformance import CheckReport, run_check

DEADLINE_S = 60.0


def check(style: str, **server: Any) -> CheckReport:
    async def scenario() -> CheckReport:
        async with relay_server(style, **server) as running:
            opts = CallOptions(turn_timeout_s=10, greeting_wait_s=10)
            return await asyncio.wait_for(run_check(running.twiml_url, options=opts), DEADLINE_S)

    return asyncio.run(scenario())


def statuses(report: CheckReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_a_tutorial_server_passes_with_dtmf_skipped() -> None:
    report = check("tutorial")
    assert statuses(report) == {
        "twiml": "pass",
        "connect": "pass",
        "greeting": "pass",
        "prompts": "pass",
        "dtmf": "skip",
        "barge-in": "pass",
        "frames": "pass",
        "socket": "pass",
        "end": "pass",
    }
    assert report.passed
    assert "welcomeGreeting" in report.render()


def test_a_server_sending_invalid_frames_fails_the_frames_check_with_the_rules() -> None:
    report = check("sloppy", extra_attributes=' dtmfDetection="true"')
    found = statuses(report)
    assert found["frames"] == "fail" and not report.passed
    assert found["dtmf"] == found["prompts"] == found["greeting"] == "pass"
    (frames,) = [c for c in report.checks if c.name == "frames"]
    assert "64107" in frames.detail and "token" in frames.detail
    assert "FAIL frames" in report.render()


@pytest.mark.slow
def test_the_sample_warmline_agent_passes(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from test_agent_call_e2e import TOKEN, agent_server

    async def scenario() -> CheckReport:
        async with agent_server(tmp_path) as server:
            opts = CallOptions(auth_token=TOKEN, turn_timeout_s=20, greeting_wait_s=20)
            return await asyncio.wait_for(
                run_check(f"{server.lambda_url}/twiml", options=opts), 120
            )

    report = asyncio.run(scenario())
    assert report.passed, report.render()
    found = statuses(report)
    assert found["dtmf"] == found["frames"] == found["greeting"] == "pass"
