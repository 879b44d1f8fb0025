"""Who may use the emulator's surfaces, through a running DevServer over real sockets.

A client "off loopback" is a socket whose source address is this machine's own non-loopback
address (bound with ``source_address``) connecting to 127.0.0.1: the server sees a
non-loopback peer while no packet leaves the machine.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from warmline.config import parse_config
from warmline.dev.gateway.access import (
    CONTROL_COOKIE,
    AccessPolicy,
    is_control_path,
    is_loopback,
    validate_token,
)
from warmline.dev.gateway.http import Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway_helpers import FIXTURES, base_config
from web_helpers import ThreadedDevServer, agent_config, own_non_loopback_ipv4

TOKEN = "t0ken-for-the-tests_0123456789"


@pytest.fixture(scope="module")
def remote_ip() -> str:
    address = own_non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to send from")
    return address


def _dev(tmp_path: Path, **options: object) -> ThreadedDevServer:
    config = parse_config(base_config(tmp_path), base_dir=FIXTURES)
    return ThreadedDevServer(config, **options).start()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[ThreadedDevServer]:
    server = _dev(tmp_path)
    yield server
    server.close()


@pytest.fixture
def dev_with_token(tmp_path: Path) -> Iterator[ThreadedDevServer]:
    server = _dev(tmp_path, control_token=TOKEN, allowed_hosts=[".tunnel.example"])
    yield server
    server.close()


def _call(
    server: ThreadedDevServer,
    method: str,
    path: str,
    *,
    source: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; a stream's body is not read."""
    conn = http.client.HTTPConnection(
        "127.0.0.1",
        server.server.port,
        timeout=10,
        source_address=(source, 0) if source else None,
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        stream = res.getheader("Content-Type") == "text/event-stream"
        data = res.read1(64) if stream else res.read()
        return res.status, dict(res.getheaders()), data
    finally:
        conn.close()


def _upgrade(server: ThreadedDevServer, host: str) -> int:
    """The status of a WebSocket handshake sent with ``Host: host``."""
    request = (
        f"GET /dev HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


FAULTS = {"connections.throttle": 0.5}


# --- control endpoints ----------------------------------------------------------------------


def test_a_peer_off_loopback_gets_no_control_endpoint_without_a_token(
    dev: ThreadedDevServer, remote_ip: str
) -> None:
    for method, path in (("GET", "/_warmline/events"), ("GET", "/_warmline/faults")):
        status, _, body = _call(dev, method, path, source=remote_ip)
        assert status == 403, (path, body)
        assert b"loopback clients only" in body and b"--control-token" in body
    status, _, _ = _call(
        dev, "PUT", "/_warmline/faults", source=remote_ip, body=json.dumps(FAULTS).encode()
    )
    assert status == 403
    assert dev.server.faults.state()["faults"] == {}, "the refused PUT changed nothing"
    # The pages themselves reveal nothing and stay public (the softphone is a client of the
    # WebSocket API, which anyone reaching the port may use).
    for path in ("/_warmline/", "/_warmline/dashboard", "/_warmline/static/softphone.js"):
        assert _call(dev, "GET", path, source=remote_ip)[0] == 200, path
    status, _, body = _call(dev, "GET", "/_warmline/config.json", source=remote_ip)
    assert status == 200 and json.loads(body)["stage"] == "dev"


def test_loopback_uses_the_control_endpoints_with_no_token(dev: ThreadedDevServer) -> None:
    status, headers, body = _call(dev, "GET", "/_warmline/events")
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert body.startswith(b"retry:")
    status, _, body = _call(dev, "PUT", "/_warmline/faults", body=json.dumps(FAULTS).encode())
    assert status == 200 and "connections.throttle" in json.loads(body)["faults"]


def test_a_loopback_peer_forwarding_for_another_client_is_that_client(
    dev: ThreadedDevServer,
) -> None:
    for header in ("X-Forwarded-For", "Forwarded"):
        status, _, _ = _call(dev, "GET", "/_warmline/faults", headers={header: "203.0.113.9"})
        assert status == 403, header


def test_the_token_opens_the_control_endpoints_off_loopback(
    dev_with_token: ThreadedDevServer, remote_ip: str
) -> None:
    dev = dev_with_token
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = _call(dev, "GET", "/_warmline/events", source=remote_ip, headers=bearer)
    assert status == 200 and body.startswith(b"retry:")
    status, _, body = _call(
        dev,
        "PUT",
        "/_warmline/faults",
        source=remote_ip,
        headers=bearer,
        body=json.dumps(FAULTS).encode(),
    )
    assert status == 200 and "connections.throttle" in json.loads(body)["faults"]
    status, headers, _ = _call(dev, "GET", "/_warmline/events", source=remote_ip)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
    assert _call(dev, "GET", "/_warmline/faults", source=remote_ip, headers=wrong)[0] == 403


def test_the_token_url_sets_a_strict_cookie_that_opens_the_event_stream(
    dev_with_token: ThreadedDevServer, remote_ip: str
) -> None:
    dev = dev_with_token
    status, headers, _ = _call(dev, "GET", f"/_warmline/dashboard?token={TOKEN}", source=remote_ip)
    assert status == 303 and headers["Location"] == "/_warmline/dashboard"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{CONTROL_COOKIE}={TOKEN};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/_warmline"):
        assert attribute in cookie
    sent = {"Cookie": cookie.split(";", 1)[0]}
    status, _, body = _call(dev, "GET", "/_warmline/events", source=remote_ip, headers=sent)
    assert status == 200 and body.startswith(b"retry:")
    assert _call(dev, "GET", "/_warmline/dashboard?token=nope", source=remote_ip)[0] == 403
    stale = {"Cookie": f"{CONTROL_COOKIE}={'y' * len(TOKEN)}"}
    assert _call(dev, "GET", "/_warmline/events", source=remote_ip, headers=stale)[0] == 401


def test_loopback_still_needs_no_token_when_one_is_set(
    dev_with_token: ThreadedDevServer,
) -> None:
    assert _call(dev_with_token, "GET", "/_warmline/faults")[0] == 200


def test_a_control_request_from_another_origin_is_refused_even_on_loopback(
    dev: ThreadedDevServer,
) -> None:
    port = dev.server.port
    body = json.dumps(FAULTS).encode()
    evil = {"Origin": "http://evil.example"}
    assert _call(dev, "PUT", "/_warmline/faults", headers=evil, body=body)[0] == 403
    assert _call(dev, "PUT", "/_warmline/faults", headers={"Origin": "null"}, body=body)[0] == 403
    assert dev.server.faults.state()["faults"] == {}
    same = {"Origin": f"http://127.0.0.1:{port}"}
    assert _call(dev, "PUT", "/_warmline/faults", headers=same, body=body)[0] == 200


# --- the Host header ------------------------------------------------------------------------


def test_a_host_that_is_not_the_emulator_gets_421_on_every_surface(
    dev_with_token: ThreadedDevServer,
) -> None:
    dev = dev_with_token
    evil = {"Host": "evil.example:3001"}
    paths = (
        ("GET", "/_warmline/"),
        ("GET", "/_warmline/events"),
        ("PUT", "/_warmline/faults"),
        ("POST", "/dev/@connections/R1kmxc2VNjMCFIA%3D"),
        ("POST", "/2015-03-31/functions/ws/invocations"),
        ("GET", "/anything"),
    )
    for method, path in paths:
        status, headers, body = _call(dev, method, path, headers=evil, body=b"{}")
        assert status == 421, (path, status)
        assert b"evil.example" in body and headers.get("Connection") == "close"
    # The token does not make a rebinding page's requests the emulator's.
    with_token = {**evil, "Authorization": f"Bearer {TOKEN}"}
    assert _call(dev, "GET", "/_warmline/faults", headers=with_token)[0] == 421
    assert _upgrade(dev, "evil.example") == 421
    assert _upgrade(dev, "tunnel.example.evil.example") == 421


def test_every_name_of_the_emulator_keeps_the_websocket_api_and_pages_working(
    dev_with_token: ThreadedDevServer,
) -> None:
    dev = dev_with_token
    port = dev.server.port
    names = [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"LOCALHOST.:{port}",
        f"app.localhost:{port}",
        f"[::1]:{port}",
        f"0.0.0.0:{port}",
        f"{socket.gethostname()}:{port}",
        f"abc.tunnel.example:{port}",  # --allow-host .tunnel.example
        "tunnel.example",
    ]
    for host in names:
        assert _upgrade(dev, host) == 101, host
        assert _call(dev, "GET", "/_warmline/config.json", headers={"Host": host})[0] == 200
    # No Host header at all is no browser's request (HTTP/1.0 tools): served.
    request = Request("GET", "/_warmline/", "HTTP/1.0", [])
    assert AccessPolicy().check(request, "127.0.0.1") is None


def test_the_function_url_answers_a_name_of_the_emulator_only(tmp_path: Path) -> None:
    dev = ThreadedDevServer(agent_config(tmp_path)).start()
    try:
        port = dev.server.port
        status, _, body = _call(dev, "POST", "/twiml", headers={"Host": f"localhost:{port}"})
        assert status == 200 and b"ConversationRelay" in body
        assert _call(dev, "POST", "/twiml", headers={"Host": "evil.example"})[0] == 421
    finally:
        dev.close()


def test_allow_host_star_turns_the_host_check_off() -> None:
    assert AccessPolicy(allowed_hosts=["*"]).host_allowed("evil.example")
    assert not AccessPolicy().host_allowed("evil.example")
    assert not AccessPolicy(allowed_hosts=[".example.com"]).host_allowed("example.com.evil.net")
    assert AccessPolicy(bind_host="devbox.lan").host_allowed("DevBox.lan:3001")


# --- the warning on a non-loopback bind ------------------------------------------------------


def _started_on(tmp_path: Path, host: str, **options: object) -> None:
    _dev(tmp_path, host=host, **options).close()


def test_binding_every_interface_warns_what_becomes_reachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _started_on(tmp_path, "0.0.0.0")
    err = capsys.readouterr().err
    assert "WARNING: listening on every interface (--host 0.0.0.0), not loopback" in err
    for surface in (
        "the WebSocket API (/dev)",
        "@connections (/dev/@connections/ID)",
        "the Invoke API (/2015-03-31/functions/NAME/invocations)",
        "not the control endpoints (/_warmline/events, /_warmline/faults): loopback only",
    ):
        assert surface in err, surface
    _started_on(tmp_path, "0.0.0.0", control_token=TOKEN)
    err = capsys.readouterr().err
    assert "the control endpoints (/_warmline/events, /_warmline/faults): only with the " in err
    assert "(token-protected)" in err
    assert TOKEN not in err, "the warning never prints the token"


def test_binding_loopback_warns_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _started_on(tmp_path, "127.0.0.1")
    _started_on(tmp_path, "localhost")
    assert "WARNING" not in capsys.readouterr().err


def test_the_function_url_is_named_in_the_warning_when_there_is_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = ThreadedDevServer(agent_config(tmp_path), host="0.0.0.0")
    dev.start().close()
    assert "the function URL (/ -> agent)" in capsys.readouterr().err


# --- the pieces -----------------------------------------------------------------------------


def test_control_paths_are_everything_under_the_prefix_but_the_pages() -> None:
    for path in ("/_warmline/events", "/_warmline/faults", "/_warmline/anything"):
        assert is_control_path(path), path
    for path in (
        "/_warmline",
        "/_warmline/",
        "/_warmline/dashboard",
        "/_warmline/config.json",
        "/_warmline/static/dashboard.js",
        "/_warmlinex",
        "/dev/@connections/x",
    ):
        assert not is_control_path(path), path


def test_loopback_addresses_include_the_ipv4_mapped_form() -> None:
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert is_loopback(address), address
    for address in ("0.0.0.0", "192.0.2.2", "::ffff:192.0.2.2", "::", "localhost", ""):
        assert not is_loopback(address), address


def test_a_short_or_odd_token_is_refused() -> None:
    assert validate_token(TOKEN) == TOKEN
    with pytest.raises(ValueError, match="at least 16"):
        validate_token("short")
    with pytest.raises(ValueError, match="only"):
        validate_token("a" * 16 + ";Path=/")
