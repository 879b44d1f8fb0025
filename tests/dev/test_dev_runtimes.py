"""``warmline dev`` names a runtime this machine lacks instead of failing at the first call."""

from __future__ import annotations

import os
from pathlib import Path

from dev_process import dev_exits

RELAY = Path(__file__).parent / "services" / "fixtures" / "relay-node" / "warmline.toml"


def test_a_nodejs_function_without_node_on_path_is_named_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    done = dev_exits(tmp_path, "--no-log-file", "--config", str(RELAY), env=env)
    assert done.returncode != 0
    assert "nodejs20.x needs node on PATH" in done.stderr + done.stdout
