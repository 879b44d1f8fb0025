"""``@connections`` id injection: hostile ids never change the request's path, host or headers.

A connection id reaches warmline from the event (``requestContext.connectionId``) or from
the session store, so a forged or corrupted one is attacker-controlled text. The client
percent-encodes it with safe characters ``-._~`` only (docs/protocols.md §6), so ``/``, ``..``,
``%2F``, ``?``, ``#``, CR/LF, spaces and non-ASCII stay one path segment. Checked twice:
against a recording HTTP server (the exact request line and headers on the wire) and
against ``warmline dev`` (no hostile variant of a live id reaches that connection).
"""

from __future__ import annotations

import asyncio
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from warmline.aws.credentials import Credentials
from warmline.config import parse_config
from warmline.connections.apigw import ApiGatewayConnections
from warmline.dev.runtime import LogSink
from warmline.dev.server import DevServer
from warmline.errors import ConnectionGoneError, ConnectionsError, LocalProtocolError

CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
HOSTILE_IDS = [
    "a/b",
    "..",
    "../..",
    "../../admin",
    "abc/../../x",
    "%2F",
    "%2e%2e%2f",
    "a?b=c",
    "a#frag",
    "a\r\nX-Injected: 1",
    "a\nHost: evil.example",
    "a b",
    "a\tb",
    "é",
    "\u2028",
    "\x00",
    "a@b:c",
    "//evil.example/x",
    "http://evil.example/",
    "R1kmxc2VNjMCFIA=",
    "\ud800",
]
#: Every header the signed client sends; anything else would be injected.
ALLOWED_HEADERS = {
    "host",
    "accept-encoding",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "user-agent",
    "x-amz-date",
    "x-amz-security-token",
}
#: The request target: the base path, then exactly one segment of unreserved or %XX.
ONE_SEGMENT = re.compile(r"^/dev/@connections/(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})+$")


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.requestline, list(self.headers.items())))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:  # stdlib name
        return


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[ApiGatewayConnections, list[Any]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    client = ApiGatewayConnections(
        f"http://127.0.0.1:{port}/dev", credentials=CREDS, region="us-east-1"
    )
    try:
        yield client, _Recorder.seen
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _check_wire(client: ApiGatewayConnections, seen: list[Any], cid: str) -> None:
    seen.clear()
    try:
        client.post(cid, b"hi")
    except LocalProtocolError:
        # a dot segment would name another resource; a lone surrogate has no UTF-8 form
        assert cid in (".", "..") or _has_surrogate(cid)
        assert not seen  # refused before anything was sent
        return
    [(line, headers)] = seen
    method, target, version = line.split(" ")
    assert (method, version) == ("POST", "HTTP/1.1")
    assert ONE_SEGMENT.match(target), target
    names = [name.lower() for name, _ in headers]
    assert len(names) == len(set(names)), names  # no header repeated or smuggled
    assert set(names) <= ALLOWED_HEADERS, names
    assert "x-injected" not in names
    assert dict((k.lower(), v) for k, v in headers)["host"].startswith("127.0.0.1:")


@pytest.mark.parametrize("cid", HOSTILE_IDS)
def test_hostile_id_stays_one_path_segment_on_the_wire(recorder: Any, cid: str) -> None:
    client, seen = recorder
    _check_wire(client, seen, cid)


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_id_stays_one_path_segment_on_the_wire(recorder: Any, cid: str) -> None:
    client, seen = recorder
    _check_wire(client, seen, cid)


# --- against warmline dev ---------------------------------------------------------------
HANDLER = """
import json, os
def handler(event, context):
    rc = event["requestContext"]
    if rc["eventType"] == "CONNECT":
        with open(os.environ["ID_FILE"], "w") as fh:
            fh.write(rc["connectionId"])
    return {"statusCode": 200}
"""


def _server(tmp_path: Path) -> DevServer:
    # The code in a folder of its own: the handler writes next to it, and on Lambda (so
    # under warmline dev) the task root is read-only.
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "idapp.py").write_text(HANDLER)
    env = {"ID_FILE": str(tmp_path / "id.txt")}
    table = {
        "functions": {"ws": {"handler": "idapp.handler", "code": "fn", "environment": env}},
        "websocket": {"stage": "dev", "routes": {"$connect": "ws", "$default": "ws"}},
    }
    return DevServer(parse_config(table, base_dir=tmp_path), port=0, log_sink=LogSink(console=None))


def test_hostile_variants_of_a_live_id_never_reach_it_in_the_emulator(tmp_path: Path) -> None:
    async def main() -> None:
        server = _server(tmp_path)
        await server.start()
        client = ApiGatewayConnections(
            server.connections_url, credentials=server.developer_credentials, region="us-east-1"
        )
        try:
            async with connect(server.ws_url) as ws:
                id_file = tmp_path / "id.txt"
                for _ in range(500):
                    if id_file.exists() and id_file.read_text():
                        break
                    await asyncio.sleep(0.01)
                live = id_file.read_text()
                variants = [
                    f"x/../{live}",
                    f"../{live}",
                    f"{live}/",
                    f"{live}/..",
                    f"./{live}",
                    f"{live}?x=1",
                    f"{live}#x",
                    f"{live}\r\nX-Injected: 1",
                    f"{live} ",
                    f"{live.replace('=', '%3D')}",
                    f"%2F{live}",
                    f"{live}\u0000",
                ] + HOSTILE_IDS
                for cid in variants:
                    with pytest.raises((ConnectionsError, LocalProtocolError)) as info:
                        await asyncio.to_thread(client.post, cid, b"forged")
                    error = info.value
                    if isinstance(error, ConnectionsError):
                        status = error.status
                        assert isinstance(error, ConnectionGoneError) or (
                            status is not None and 400 <= status < 500
                        ), (cid, error)
                    else:
                        assert cid in (".", "..") or _has_surrogate(cid)
                await asyncio.to_thread(client.post, live, b"genuine")
                # nothing forged came first
                assert await asyncio.wait_for(ws.recv(), 5) == "genuine"
        finally:
            client.close()
            await server.close()

    asyncio.run(main())
