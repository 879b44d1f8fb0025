"""``warmline serve --config warmline.toml`` runs what ``warmline dev`` runs: the ``$default``
function's handler, with the function's ``environment``, so the sample agent's handoff
dials the same person under both. A variable already set in the environment wins."""

from __future__ import annotations

import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from serve_harness import AGENT, TOKEN, serve_env, serve_process

from warmline.cli.serve import main
from warmline.twilio.signature import compute_signature

pytestmark = pytest.mark.slow

CONFIG = AGENT / "warmline.toml"
HANDOFF = {
    "CallSid": "CAconfig",
    "SessionId": "VXconfig",
    "SessionStatus": "ended",
    "CallStatus": "in-progress",
    "HandoffData": '{"reason":"handoff"}',
}


def dialed(base: str) -> str | None:
    """The number the action callback dials for a handoff (None: it hangs up)."""
    url = f"{base}/cr-action"
    headers = {"X-Twilio-Signature": compute_signature(url, HANDOFF, TOKEN)}
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(HANDOFF).encode(), headers=headers
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        root = ET.fromstring(response.read().decode())
    return root.findtext("Dial")


def test_the_configs_environment_reaches_the_app(tmp_path: Path) -> None:
    env = serve_env(tmp_path)
    del env["WARMLINE_HANDOFF_NUMBER"]
    with serve_process(env, "--config", str(CONFIG), app=None) as (_proc, base):
        number = dialed(base)
    assert number == "+15550123"  # warmline.toml's WARMLINE_HANDOFF_NUMBER, as in dev


def test_the_process_environment_wins_over_the_config(tmp_path: Path) -> None:
    env = serve_env(tmp_path, WARMLINE_HANDOFF_NUMBER="+15550999")
    with serve_process(env, "--config", str(CONFIG), app=None) as (_proc, base):
        number = dialed(base)
    assert number == "+15550999"


def test_a_config_without_a_default_route_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "warmline.toml"
    config.write_text('[functions.f]\nhandler = "app.handler"\ncode = "."\n')
    assert main(["--config", str(config), "--port", "0"]) == 2
    assert "no $default route" in capsys.readouterr().err
    assert main(["--port", "0"]) == 2
    assert "give APP" in capsys.readouterr().err
