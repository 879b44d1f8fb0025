"""Local stand-ins for AWS JSON APIs (Lambda Invoke, SSM) that record every request, and
botocore's signature as the oracle.

Shared by the AWS clients' tests (tests/aws), the offload dispatcher's (tests/offload) and
the secrets' (tests/test_secrets.py): one recording server, each API its own answer.
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
    """Answers with the next queued status (default :attr:`ok`); records every request.

    A subclass says what one API answers: :meth:`answer` gives the body of a success,
    :attr:`error_type` the ``x-amzn-ErrorType`` of a failure. Lambda's Invoke API by default.
    """

    protocol_version = "HTTP/1.1"
    requests: list[dict[str, Any]] = []
    statuses: list[int] = []
    ok = 202
    error_type = "TooManyRequestsException:http://internal"

    def answer(self, body: bytes) -> bytes:
        return b""

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status = self.statuses.pop(0) if self.statuses else self.ok
        payload = self.answer(body) if status == self.ok else b'{"message":"nope"}'
        self.send_response(status)
        self.send_header("x-amzn-RequestId", f"req-{len(self.requests)}")
        if status != self.ok:
            self.send_header("x-amzn-ErrorType", self.error_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def serve(handler: type[Recorder]) -> Iterator[str]:
    """Run ``handler`` on a loopback port until the generator is closed; yields its URL."""
    handler.requests = []
    handler.statuses = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


@pytest.fixture
def lambda_api() -> Iterator[str]:
    yield from serve(Recorder)


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
