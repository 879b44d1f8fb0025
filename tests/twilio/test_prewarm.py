"""The call-tied pre-warm fires through the aws Lambda client, without the offload package."""

from __future__ import annotations

from warmline.testing import modules_after

FIRE = """
import os
os.environ.update(AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b", AWS_REGION="eu-west-1",
                  AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:9")
from warmline.twilio.prewarm import prewarm_on_call

class Ctx:
    logged = []
    def log(self, event, level="info", **fields):
        self.logged.append((event, fields["function"]))
    def annotate(self, **fields):
        self.fields = fields

ctx = Ctx()
prewarm_on_call(["ws-fn"], concurrency=2)(ctx, {"CallSid": "CA1"})
assert ctx.logged == [("prewarm_failed", "ws-fn")] * 2, ctx.logged
assert ctx.fields == {"prewarmed": 0}, ctx.fields
"""


def test_prewarm_fires_without_loading_offload() -> None:
    loaded = modules_after(FIRE)
    assert "warmline.aws.lambda_invoke" in loaded
    assert sorted(m for m in loaded if m.startswith("warmline.offload")) == []
