"""A boto3 echo handler, the baseline run on both emulators.

Written the way such a handler usually is, so that the serverless-offline baseline and
``warmline dev`` load the very same module: boto3 plus an
``apigatewaymanagementapi`` client at import (a few hundred ms per environment), then
one ``post_to_connection`` per message. ``WS_MGMT_ENDPOINT`` points it at the emulator's
``@connections`` endpoint. One ``ANCHOR_INIT`` line on stderr per load lets the benchmark
count cold starts on serverless-offline, which prints no Init Duration of its own.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

import boto3

INIT_AT = int(time.time() * 1000)
_invocations = 0
print(f"ANCHOR_INIT python pid={os.getpid()}", file=sys.stderr)  # one line per load

_client = boto3.client(
    "apigatewaymanagementapi",
    endpoint_url=os.environ.get("WS_MGMT_ENDPOINT", "http://localhost:3001"),
    region_name="us-east-1",
    # The execution role's keys, as Lambda (and warmline dev) set them; serverless-offline
    # checks none, so any stand-in does there.
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "offline"),
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "offline"),
    aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
)


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """Echo ``$default`` bodies back through ``@connections``; accept connect/disconnect."""
    global _invocations
    _invocations += 1
    rc = event["requestContext"]
    route, conn = rc["routeKey"], rc["connectionId"]
    if route in ("$connect", "$disconnect"):
        return {"statusCode": 200}
    data = event.get("body") or ""
    if "slow" in data:
        time.sleep(31)
    if data.startswith("probe"):
        data = json.dumps(
            {
                "probe": data,
                "initAt": INIT_AT,
                "invocations": _invocations,
                "threadId": threading.get_ident(),
                "pid": os.getpid(),
            }
        )
    _client.post_to_connection(ConnectionId=conn, Data=data.encode())
    return {"statusCode": 200}
