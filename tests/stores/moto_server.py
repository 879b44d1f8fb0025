"""A real moto server (DynamoDB, SNS, SQS...) in its own process, for tests.

moto's own ``ThreadedMotoServer`` answers requests on many threads, and its backends take
no locks, so two conditional writes can both succeed — something DynamoDB never allows.
Serving one request at a time keeps moto's answers faithful to DynamoDB's atomic
conditional writes (docs/protocols.md §7), which is what the race tests check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_SERVER = """
import sys
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
app = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

#: Credentials and region every client of the test server uses.
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Start the server; yields its endpoint URL; stops it on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **ENV},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"moto server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
