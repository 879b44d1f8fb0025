"""Test-wide settings.

Hypothesis explores new random examples on every local run (that is how it finds bugs);
in CI (``CI=true``) it runs a fixed, derandomized set, so a green main stays green.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The Lambda Invoke API stand-in, for the Lambda client's and the offload dispatcher's tests.
from aws_stub import lambda_api  # noqa: E402, F401
