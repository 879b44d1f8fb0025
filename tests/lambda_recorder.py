"""A local stand-in for the Lambda Invoke API, and botocore's signature as the oracle.

Shared by the Lambda client's tests (tests/aws) and the offload dispatcher's (tests/offload).
"""

from __future__ import annotations

import datetime
import http.server
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from warmline.aws.credentials import Credentials

NOW = 1_767_225_599.0  # 2025-12-31T23:59:59Z: the signing date rolls a second later
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok/en+=")


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers with the next queued status; records every request."""

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, Any]] = []
    statuses: list[int] = []

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status = self.statuses.pop(0) if self.statuses else 202
        payload = b"" if status == 202 else b'{"message":"nope"}'
        self.send_response(status)
        self.send_header("x-amzn-RequestId", f"req-{len(self.requests)}")
        if status != 202:
            self.send_header("x-amzn-ErrorType", "TooManyRequestsException:http://internal")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def lambda_api() -> Iterator[str]:
    Recorder.requests = []
    Recorder.statuses = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def botocore_authorization(url: str, headers: dict[str, str], body: bytes, region: str) -> str:
    """What botocore's SigV4Auth signs for the same request at the same instant."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"X-Amz-Invocation-Type": headers["X-Amz-Invocation-Type"]},
    )
    frozen = datetime.datetime.fromtimestamp(NOW, datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        botocore.auth.SigV4Auth(
            BotoCredentials(CREDS.access_key, CREDS.secret_key, CREDS.token), "lambda", region
        ).add_auth(request)
    return str(request.headers["Authorization"])
