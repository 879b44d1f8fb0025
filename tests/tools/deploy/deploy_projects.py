"""Shared projects for the deploy tests: a full config (routes, worker, queue, topic,
multi-target schedule, secrets) and the sample agent's own ``warmline.toml``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from warmline.config.deploy import Project, load_project
from warmline.templates.plan import Plan, build_plan

ROOT = Path(__file__).resolve().parents[3]
AGENT_DIR = ROOT / "examples" / "agent"

FULL = """
[functions.agent]
handler = "app.handler"
code = "code"
memory = 512
timeout = 29
environment = { TWILIO_AUTH_TOKEN = "dev-token-do-not-ship", WARMLINE_HANDOFF_NUMBER = "+15550123" }

[functions.worker]
handler = "app.handler"
code = "code"
timeout = 60

[websocket]
stage = "prod"
route_selection_expression = "$request.body.type"

[websocket.routes]
"$connect" = "agent"
"$default" = { function = "agent", route_response = true }
"$disconnect" = "agent"
"prompt" = "agent"

[http]
function = "agent"

[schedules.warm]
expression = "rate(5 minutes)"
targets = ["agent", "worker"]
input = { warmer = true, concurrency = 2 }

[sqs.jobs]
function = "worker"
batch_size = 20
report_batch_item_failures = true
max_receive_count = 3

[sns.alerts]
functions = ["worker"]

[deploy]
stack_name = "calls"
worker = "worker"
log_retention_days = 30
warmline = "copy"
{deploy_extra}

[deploy.secrets.TWILIO_AUTH_TOKEN]
ssm = "/warmline/twilio-auth-token"
functions = ["agent"]

[deploy.secrets.OPENAI_API_KEY]
secretsmanager = "warmline/openai"
kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
functions = ["worker"]

[deploy.functions.worker]
p99_ms = 20000
"""

KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def write_project(directory: Path, deploy_extra: str = "", text: str = FULL) -> Path:
    """A project directory with a code dir and ``warmline.toml``; returns the config path."""
    code = directory / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "app.py").write_text("def handler(event, context):\n    return None\n")
    path = directory / "warmline.toml"
    path.write_text(text.replace("{deploy_extra}", deploy_extra))
    return path


def full_plan(directory: Path, deploy_extra: str = "") -> Plan:
    """The plan of the full project written into ``directory``."""
    return build_plan(load_project(write_project(directory, deploy_extra)))


def agent_project() -> Project:
    """The sample agent's own config (examples/agent/warmline.toml)."""
    return load_project(AGENT_DIR / "warmline.toml")


def cfn_lint_command() -> list[str]:
    """The venv's cfn-lint (skips the test when it is not installed)."""
    pytest.importorskip("cfnlint", reason="cfn-lint is not installed (test extra)")
    script = Path(sys.executable).with_name("cfn-lint")
    found = str(script) if script.is_file() else shutil.which("cfn-lint")
    if not found:
        pytest.skip("cfn-lint script not found")
    return [found]
