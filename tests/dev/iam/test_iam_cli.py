"""``warmline dev`` prints each function's grants and the developer keys; ``--no-iam``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

FIXTURES = Path(__file__).parent / "fixtures"


def test_start_up_lists_grants_and_keys_that_work_and_stay_out_of_the_log(tmp_path: Path) -> None:
    (tmp_path / "warmline.toml").write_text(
        f"""
[functions.target]
handler = "target.handler"
code = "{FIXTURES}"

[functions.ws]
handler = "target.handler"
code = "{FIXTURES}"

[websocket.routes]
"$default" = "ws"
"""
    )
    with subprocess.Popen(
        [sys.executable, "-m", "warmline", "dev", "--port", "0", "--no-iam"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            _check(proc, tmp_path)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _check(proc: subprocess.Popen[str], tmp_path: Path) -> None:

    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("AWS_ACCESS_KEY_ID=" in x for x in lines):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    text = "".join(lines)
    assert "iam ws (role ws-role) may:" in text
    assert "Allow execute-api:ManageConnections on arn:aws:execute-api:" in text
    assert "iam target (role target-role) may:" in text
    assert "--no-iam: policies are not evaluated (signatures still are)" in text
    keys = dict(part.split("=", 1) for part in lines[-1].split())
    port = re.search(r"http://127\.0\.0\.1:(\d+)/", text)
    assert port is not None
    url = f"http://127.0.0.1:{port.group(1)}"
    client = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"max_attempts": 1}),
    )
    response = client.invoke(FunctionName="target", Payload=b'{"a": 1}')
    assert json.loads(response["Payload"].read())["event"] == {"a": 1}
    client.close()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    log = (tmp_path / ".warmline" / "dev-logs.jsonl").read_text()
    assert log  # the invocation was logged
    assert keys["AWS_SECRET_ACCESS_KEY"] not in log
