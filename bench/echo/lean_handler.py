"""The echo handler a warmline user writes: no boto3, one keep-alive ``@connections`` client.

Same routes and replies as ``handler_py.py`` (the boto3 baseline) minus its probe features,
but it posts with :class:`warmline.connections.apigw.ApiGatewayConnections` (one keep-alive
HTTP/1.1 socket plus warmline's SigV4 signer, a fraction of boto3's CPU per post) and
imports in a few ms where boto3 takes a few hundred, so each new environment is ready almost
at once (docs/performance.md). The endpoint is ``WS_MGMT_ENDPOINT`` when set (as for the
boto3 handler), else the event's ``https://{domainName}/{stage}``, as on AWS.
"""

from __future__ import annotations

import os
from typing import Any

from warmline.connections.apigw import ApiGatewayConnections

_ENDPOINT = os.environ.get("WS_MGMT_ENDPOINT")
# Built at init, like the boto3 client, so that its cost shows up as Init Duration; warm()
# imports socket and opens the keep-alive socket now rather than on the first post, as a
# function without SnapStart should (ApiGatewayConnections.warm).
_client = ApiGatewayConnections(_ENDPOINT) if _ENDPOINT else None
if _client is not None:
    _client.warm(connect=True)


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    """Echo ``$default`` bodies back through ``@connections``; accept connect/disconnect."""
    rc = event["requestContext"]
    if rc["routeKey"] in ("$connect", "$disconnect"):
        return {"statusCode": 200}
    client = _client or ApiGatewayConnections.for_request(rc["domainName"], rc["stage"])
    client.post(rc["connectionId"], event.get("body") or "")
    return {"statusCode": 200}
