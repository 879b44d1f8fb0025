"""``ApiGatewayConnections`` against a real HTTP server on 127.0.0.1.

The server is ``http.server`` speaking HTTP/1.1 with keep-alive. Each test scripts its
answers; the server records every request it read, on which TCP connection, and checks the
signature the way AWS would: it rebuilds the canonical request from the headers named in
``SignedHeaders`` with botocore's ``SigV4Auth`` (an independent implementation) and compares.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from warmline.aws.credentials import Credentials
from warmline.connections.apigw import ENDPOINT_ENV, ApiGatewayConnections
from warmline.core.limits import MAX_POST_BYTES
from warmline.errors import (
    ConfigurationError,
    ConnectionGoneError,
    ConnectionsError,
    ForbiddenError,
    LocalProtocolError,
    PayloadTooLargeError,
    ThrottledError,
)
from warmline.log import StepLogger
from warmline.testing import modules_after
from warmline.types import ConnectionClient, ConnectionInfo

AKID = "AKIDEXAMPLE0000WXYZ"
SECRET = "s3cr3t/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN=="
CREDS = Credentials(AKID, SECRET, TOKEN)
CID = "R1kmxc2VNjMCFIA="

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"execute-api/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    close_after: bool = False  # answer, then close the socket without saying so
    drop: bool = False  # close the socket without answering
    error_type: str = ""  # x-amzn-ErrorType, as API Gateway sends it


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    conn: int  # which TCP connection (the server counts accepted sockets)
    signature_ok: bool


def verify_signature(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
    """Recompute the signature with botocore from what arrived, as AWS does."""
    match = _AUTH.match(headers.get("Authorization", ""))
    if match is None or match["akid"] != AKID:
        return False
    signed = match["signed"].split(";")
    if signed not in (["host", "x-amz-date"], ["host", "x-amz-date", "x-amz-security-token"]):
        return False
    lower = {k.lower(): v for k, v in headers.items()}
    token = lower.get("x-amz-security-token")
    request = AWSRequest(
        method=method,
        url=f"http://{lower['host']}{path}",
        data=body,
        headers={name: lower[name] for name in signed},
    )
    request.context["timestamp"] = lower["x-amz-date"]
    auth = SigV4Auth(BotoCredentials(AKID, SECRET, token), "execute-api", match["region"])
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return bool(expected == match["sig"] and match["date"] == lower["x-amz-date"][:8])


class StubServer:
    """An @connections look-alike whose answers each test scripts."""

    def __init__(self, script: Callable[[Seen], Reply] | None = None) -> None:
        self.script = script or (lambda seen: Reply())
        self.seen: list[Seen] = []
        self.accepted = 0
        self.closed = 0
        self._cond = threading.Condition()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes

            def setup(self) -> None:
                super().setup()
                with stub._cond:
                    stub.accepted += 1
                    self.conn_no = stub.accepted
                    stub._cond.notify_all()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                seen = Seen(
                    self.command,
                    self.path,
                    headers,
                    body,
                    self.conn_no,
                    verify_signature(self.command, self.path, headers, body),
                )
                with stub._cond:
                    stub.seen.append(seen)
                reply = stub.script(seen)
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.body:
                    self.send_header("Content-Type", "application/json")
                if reply.error_type:
                    self.send_header("x-amzn-ErrorType", reply.error_type)
                self.end_headers()
                self.wfile.write(reply.body)
                if reply.close_after:
                    self.close_connection = True

            do_POST = do_GET = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def shutdown_request(self, request: Any) -> None:
                super().shutdown_request(request)  # the socket is closed only here
                with stub._cond:
                    stub.closed += 1
                    stub._cond.notify_all()

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/dev"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def wait_closed(self, count: int, timeout: float = 5.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.closed >= count, timeout)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[StubServer, ApiGatewayConnections]]]:
    made: list[tuple[StubServer, ApiGatewayConnections]] = []

    def factory(
        script: Callable[[Seen], Reply] | None = None, **kwargs: Any
    ) -> tuple[StubServer, ApiGatewayConnections]:
        server = StubServer(script)
        kwargs.setdefault("credentials", CREDS)
        kwargs.setdefault("region", "eu-west-1")
        client = ApiGatewayConnections(server.endpoint, **kwargs)
        made.append((server, client))
        return server, client

    yield factory
    for server, client in made:
        client.close()
        server.stop()


def replies(*items: Reply) -> Callable[[Seen], Reply]:
    """Answer with ``items`` in order, then 200s."""
    queue = list(items)
    return lambda seen: queue.pop(0) if queue else Reply()


# --- happy paths ----------------------------------------------------------------------------


def test_post_sends_the_body_to_the_encoded_path_with_a_valid_signature(make: Any) -> None:
    server, client = make()
    client.post("a=b/c d", "héllo")
    [seen] = server.seen
    assert (seen.method, seen.path, seen.body) == (
        "POST",
        "/dev/@connections/a%3Db%2Fc%20d",
        "héllo".encode(),
    )
    assert seen.signature_ok
    assert seen.headers["Host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["X-Amz-Security-Token"] == TOKEN
    assert "X-Amz-Content-SHA256" not in seen.headers


def test_post_without_a_session_token_signs_two_headers(make: Any) -> None:
    server, client = make(credentials=Credentials(AKID, SECRET))
    client.post(CID, b"\x00\x01")
    [seen] = server.seen
    assert seen.signature_ok and "X-Amz-Security-Token" not in seen.headers
    assert "SignedHeaders=host;x-amz-date," in seen.headers["Authorization"]


def test_get_parses_the_connection_document(make: Any) -> None:
    doc = {
        "connectedAt": "2026-01-01T12:00:00.000Z",
        "lastActiveAt": "2026-01-01T12:05:00.000Z",
        "identity": {"sourceIp": "203.0.113.9", "userAgent": "Twilio.TmeWs/1.0"},
    }
    server, client = make(lambda seen: Reply(200, json.dumps(doc).encode()))
    info = client.get(CID)
    assert info == ConnectionInfo(
        "2026-01-01T12:00:00.000Z", "2026-01-01T12:05:00.000Z", "203.0.113.9", "Twilio.TmeWs/1.0"
    )
    [seen] = server.seen
    assert (seen.method, seen.body, seen.signature_ok) == ("GET", b"", True)


def test_get_rejects_an_answer_that_is_not_a_connection_document(make: Any) -> None:
    _, client = make(lambda seen: Reply(200, b'{"connectedAt": 1}'))
    with pytest.raises(ConnectionsError):
        client.get(CID)


def test_delete_accepts_204(make: Any) -> None:
    server, client = make(lambda seen: Reply(204))
    client.delete(CID)
    [seen] = server.seen
    assert (seen.method, seen.path, seen.signature_ok) == (
        "DELETE",
        "/dev/@connections/R1kmxc2VNjMCFIA%3D",
        True,
    )


def test_requests_share_one_keep_alive_connection(make: Any) -> None:
    server, client = make()
    for i in range(5):
        client.post(CID, f"t{i}")
    assert [s.body for s in server.seen] == [b"t0", b"t1", b"t2", b"t3", b"t4"]
    assert {s.conn for s in server.seen} == {1}
    assert server.accepted == 1


def test_it_is_a_connection_client(make: Any) -> None:
    _, client = make()
    assert isinstance(client, ConnectionClient)


def test_posts_from_several_threads_all_arrive(make: Any) -> None:
    server, client = make()
    threads = [
        threading.Thread(target=lambda n=n: [client.post(CID, f"{n}-{i}") for i in range(10)])
        for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(s.body for s in server.seen) == sorted(
        f"{n}-{i}".encode() for n in range(4) for i in range(10)
    )
    assert all(s.signature_ok for s in server.seen)


# --- status mapping ---------------------------------------------------------------------------


def test_410_is_gone_and_not_retried(make: Any) -> None:
    server, client = make(lambda seen: Reply(410, b'{"message": "GoneException"}'))
    with pytest.raises(ConnectionGoneError) as info:
        client.post(CID, "x")
    assert info.value.status == 410
    assert len(server.seen) == 1


def test_errors_name_the_aws_error_type_and_message(make: Any) -> None:
    gone = Reply(410, b'{"message": null}', error_type="GoneException:http://internal.amazon.com/")
    _, client = make(lambda seen: gone)
    with pytest.raises(ConnectionGoneError) as info:
        client.post(CID, "x")
    assert str(info.value) == "@connections POST 'R1kmxc2VNjMCFIA=': 410 GoneException"


def test_413_is_payload_too_large(make: Any) -> None:
    server, client = make(lambda seen: Reply(413))
    with pytest.raises(PayloadTooLargeError) as info:
        client.post(CID, "x")
    assert info.value.status == 413 and len(server.seen) == 1


def test_a_body_over_the_limit_is_refused_before_sending(make: Any) -> None:
    server, client = make()
    client.post(CID, b"x" * MAX_POST_BYTES)
    with pytest.raises(PayloadTooLargeError) as info:
        client.post(CID, b"x" * (MAX_POST_BYTES + 1))
    assert info.value.status is None
    assert len(server.seen) == 1


def test_403_is_forbidden_with_the_aws_message(make: Any) -> None:
    body = b'{"message": "The security token included in the request is invalid"}'
    server, client = make(lambda seen: Reply(403, body))
    with pytest.raises(ForbiddenError, match="security token included"):
        client.delete(CID)
    assert len(server.seen) == 1


def test_other_4xx_is_a_connections_error(make: Any) -> None:
    _, client = make(lambda seen: Reply(400, b'{"message": "Invalid connectionId"}'))
    with pytest.raises(ConnectionsError, match="Invalid connectionId") as info:
        client.post(CID, "x")
    assert type(info.value) is ConnectionsError and info.value.status == 400


@pytest.mark.parametrize("connection_id", ["", ".", ".."])
def test_ids_that_address_another_resource_are_refused(make: Any, connection_id: str) -> None:
    server, client = make()
    with pytest.raises(LocalProtocolError):
        client.post(connection_id, "x")
    assert server.seen == []


# --- retries ----------------------------------------------------------------------------------


def test_429_then_success_is_retried_and_signed_again(make: Any) -> None:
    clock = iter(float(1_767_225_599 + i) for i in range(100))  # 2025-12-31T23:59:59Z onwards
    fake = FakeTime()
    server, client = make(
        replies(Reply(429), Reply(503)),
        clock=lambda: next(clock),
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )
    client.post(CID, "token")
    assert [s.body for s in server.seen] == [b"token"] * 3
    assert all(s.signature_ok for s in server.seen)
    dates = [s.headers["X-Amz-Date"] for s in server.seen]
    assert dates == ["20251231T235959Z", "20260101T000000Z", "20260101T000001Z"]
    assert len(fake.sleeps) == 2


def test_persistent_5xx_ends_in_throttled_within_the_budget(make: Any) -> None:
    fake = FakeTime()
    server, client = make(
        lambda seen: Reply(503, b'{"message": "Service Unavailable"}'),
        retry_budget_s=2.0,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )
    with pytest.raises(ThrottledError) as info:
        client.post(CID, "x")
    assert info.value.status == 503
    assert len(server.seen) == len(fake.sleeps) + 1 >= 3
    assert sum(fake.sleeps) <= 2.0
    # full jitter under an exponential ceiling: 50 ms, 100 ms, 200 ms, ... capped at 1 s
    assert all(s <= min(1.0, 0.05 * 2**n) for n, s in enumerate(fake.sleeps))


def test_retries_are_logged_without_secrets(make: Any) -> None:
    fake = FakeTime()
    log = StepLogger(keep=True, stream=io.StringIO())
    _, client = make(replies(Reply(429)), monotonic=fake.monotonic, sleep=fake.sleep, log=log)
    client.post(CID, "x")
    assert log.records is not None
    assert [(r["step"], r["status"]) for r in log.records] == [("connections.retry", 429)]
    text = json.dumps(log.records)
    assert SECRET not in text and TOKEN not in text


def test_a_zero_budget_does_not_retry(make: Any) -> None:
    server, client = make(lambda seen: Reply(429), retry_budget_s=0.0)
    with pytest.raises(ThrottledError):
        client.post(CID, "x")
    assert len(server.seen) == 1


# --- keep-alive sockets that die ------------------------------------------------------------


def test_a_socket_the_server_closed_between_requests_is_reopened(make: Any) -> None:
    log = StepLogger(keep=True, stream=io.StringIO())
    server, client = make(replies(Reply(close_after=True)), log=log)
    client.post(CID, "one")
    server.wait_closed(1)
    client.post(CID, "two")
    assert [(s.body, s.conn) for s in server.seen] == [(b"one", 1), (b"two", 2)]
    assert log.records == []  # seen closed before sending: nothing went to the dead socket


def test_a_reused_socket_that_dies_mid_request_is_resent_once(make: Any) -> None:
    # The server reads the second request and hangs up without an answer, as a peer does
    # when its idle timer fires while the request is in flight.
    log = StepLogger(keep=True, stream=io.StringIO())
    server, client = make(replies(Reply(), Reply(drop=True)), log=log)
    client.post(CID, "one")
    client.post(CID, "two")
    assert log.records is not None
    [record] = log.records
    assert record["step"] == "connections.reconnect"
    assert record["error"] in ("RemoteDisconnected", "ConnectionResetError", "BrokenPipeError")
    assert [(s.body, s.conn) for s in server.seen] == [(b"one", 1), (b"two", 1), (b"two", 2)]
    assert all(s.signature_ok for s in server.seen)


def test_a_socket_that_keeps_dying_is_retried_within_the_budget_then_fails(make: Any) -> None:
    fake = FakeTime()
    server, client = make(
        lambda seen: Reply() if seen.body == b"one" else Reply(drop=True),
        retry_budget_s=1.0,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
    )
    client.post(CID, "one")
    with pytest.raises(ConnectionsError, match="closed without an answer") as info:
        client.post(CID, "two")
    assert type(info.value) is ConnectionsError  # not ThrottledError: nobody throttled
    assert info.value.status is None
    bodies = [s.body for s in server.seen]
    # the reused socket is resent at once, then fresh sockets with backoff until the budget
    assert bodies[:3] == [b"one", b"two", b"two"] and set(bodies[1:]) == {b"two"}
    assert len(fake.sleeps) == len(bodies) - 3 >= 1 and sum(fake.sleeps) <= 1.0
    before = len(server.seen)
    client.post(CID, "one")  # and the client still works afterwards
    assert len(server.seen) == before + 1


def test_a_fresh_socket_that_dies_is_retried_with_backoff_and_signed_again(make: Any) -> None:
    fake = FakeTime()
    server, client = make(
        replies(Reply(drop=True), Reply(drop=True)), monotonic=fake.monotonic, sleep=fake.sleep
    )
    client.post(CID, "x")
    assert [s.body for s in server.seen] == [b"x"] * 3
    assert [s.conn for s in server.seen] == [1, 2, 3]  # a new connection each time
    assert all(s.signature_ok for s in server.seen)
    assert len(fake.sleeps) == 2


def test_a_zero_budget_does_not_retry_a_dropped_post(make: Any) -> None:
    server, client = make(lambda seen: Reply(drop=True), retry_budget_s=0.0)
    with pytest.raises(ConnectionsError):
        client.post(CID, "x")
    assert len(server.seen) == 1


def test_a_socket_idle_too_long_is_not_trusted(make: Any) -> None:
    fake = FakeTime()
    server, client = make(monotonic=fake.monotonic, max_idle_s=30.0)
    client.post(CID, "one")
    fake.now += 10
    client.post(CID, "two")
    fake.now += 31
    client.post(CID, "three")
    assert [s.conn for s in server.seen] == [1, 1, 2]


def test_warm_with_connect_opens_the_socket_the_first_post_uses(make: Any) -> None:
    server, client = make()
    client.warm(connect=True)
    client.warm(connect=True)  # already open: no second socket
    with server._cond:
        assert server._cond.wait_for(lambda: server.accepted == 1, 5)
    assert server.seen == []  # connected, nothing sent yet
    client.post(CID, "first words")
    client.post(CID, "more")
    assert [(s.body, s.conn) for s in server.seen] == [(b"first words", 1), (b"more", 1)]
    assert server.accepted == 1


def test_a_socket_warmed_too_long_ago_is_replaced_on_first_use(make: Any) -> None:
    fake = FakeTime()
    server, client = make(monotonic=fake.monotonic, max_idle_s=30.0)
    client.warm(connect=True)
    fake.now += 31  # e.g. frozen between init and the first invocation
    client.post(CID, "one")
    assert [s.conn for s in server.seen] == [2]


def test_warm_without_connect_opens_nothing(make: Any) -> None:
    server, client = make()
    client.warm()
    client.post(CID, "x")
    assert [s.conn for s in server.seen] == [1] and server.accepted == 1


def test_warm_with_connect_to_nothing_is_a_connections_error() -> None:
    server = StubServer()
    endpoint = server.endpoint
    server.stop()
    with ApiGatewayConnections(endpoint, credentials=CREDS, region="eu-west-1") as client:
        with pytest.raises(ConnectionsError, match="unreachable"):
            client.warm(connect=True)


def test_a_server_that_does_not_answer_times_out(make: Any) -> None:
    release = threading.Event()

    def stall(seen: Seen) -> Reply:
        release.wait(5)
        return Reply()

    _, client = make(stall, timeout_s=0.2)
    try:
        with pytest.raises(ConnectionsError, match="timed out"):
            client.post(CID, "x")
    finally:
        release.set()


def test_a_refused_connection_is_a_connections_error() -> None:
    server = StubServer()
    endpoint = server.endpoint
    server.stop()
    with ApiGatewayConnections(endpoint, credentials=CREDS, region="eu-west-1") as client:
        with pytest.raises(ConnectionsError):
            client.post(CID, "x")


# --- https ----------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_endpoint_with_aws_ca_bundle(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = StubServer()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.httpd.socket = tls.wrap_socket(server.httpd.socket, server_side=True)
    env = {"AWS_CA_BUNDLE": str(cert), "AWS_REGION": "eu-west-1"}
    endpoint = f"https://localhost:{server.port}/prod"
    try:
        with ApiGatewayConnections(endpoint, credentials=CREDS, environ=env) as client:
            client.post(CID, "one")
            client.post(CID, "two")
        assert [(s.path, s.body, s.conn) for s in server.seen] == [
            ("/prod/@connections/R1kmxc2VNjMCFIA%3D", b"one", 1),
            ("/prod/@connections/R1kmxc2VNjMCFIA%3D", b"two", 1),
        ]
        assert all(s.signature_ok for s in server.seen)
        assert server.seen[0].headers["Host"] == f"localhost:{server.port}"
    finally:
        server.stop()


def test_https_refuses_an_unknown_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = StubServer()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server.httpd.socket = tls.wrap_socket(server.httpd.socket, server_side=True)
    endpoint = f"https://localhost:{server.port}/prod"
    try:
        with ApiGatewayConnections(
            endpoint, credentials=CREDS, region="eu-west-1", environ={}
        ) as client:
            with pytest.raises(ConnectionsError, match="CERTIFICATE_VERIFY_FAILED"):
                client.post(CID, "x")
        assert server.seen == []
    finally:
        server.stop()


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [
        (
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod",
            "https://abc.execute-api.eu-west-1.amazonaws.com/prod",
        ),
        ("https://API.example.com:443/chat/v1/", "https://api.example.com/chat/v1"),
        ("https://api.example.com", "https://api.example.com"),
        ("http://127.0.0.1:3001/dev", "http://127.0.0.1:3001/dev"),
        ("http://[::1]:3001/dev", "http://[::1]:3001/dev"),
        ("HTTP://localhost:80/dev", "http://localhost/dev"),
    ],
)
def test_endpoints_are_normalised(endpoint: str, shown: str) -> None:
    client = ApiGatewayConnections(endpoint, credentials=CREDS, region="us-east-1")
    assert client.endpoint == shown


@pytest.mark.parametrize(
    "endpoint",
    [
        "abc.execute-api.eu-west-1.amazonaws.com/prod",
        "wss://abc.execute-api.eu-west-1.amazonaws.com/prod",
        "https://user:pw@host/prod",
        "https://host/prod?x=1",
        "https://host:http/prod",
        "https://host:70000/prod",
        "https://[::1/prod",
        "https:///prod",
    ],
)
def test_malformed_endpoints_are_configuration_errors(endpoint: str) -> None:
    with pytest.raises(ConfigurationError):
        ApiGatewayConnections(endpoint, credentials=CREDS, region="us-east-1")


def test_region_comes_from_an_execute_api_host_before_the_environment() -> None:
    env = {"AWS_REGION": "us-east-1"}
    api = "https://abc.execute-api.ap-south-1.amazonaws.com/prod"
    assert ApiGatewayConnections(api, credentials=CREDS, environ=env).region == "ap-south-1"
    custom = "https://api.example.com/prod"
    assert ApiGatewayConnections(custom, credentials=CREDS, environ=env).region == "us-east-1"
    assert (
        ApiGatewayConnections(custom, credentials=CREDS, region="eu-west-3", environ=env).region
        == "eu-west-3"
    )
    with pytest.raises(ConfigurationError, match="region"):
        ApiGatewayConnections(custom, credentials=CREDS, environ={})


def test_credentials_default_to_the_environment() -> None:
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "eu-west-1"}
    ApiGatewayConnections("https://api.example.com/prod", environ=env)
    with pytest.raises(ConfigurationError, match="credentials"):
        ApiGatewayConnections("https://api.example.com/prod", environ={"AWS_REGION": "eu-west-1"})


def test_repr_and_errors_carry_no_secrets(make: Any) -> None:
    _, client = make(lambda seen: Reply(403, b'{"message": "Forbidden"}'))
    with pytest.raises(ForbiddenError) as info:
        client.post(CID, "x")
    text = repr(client) + str(client) + str(info.value) + repr(info.value)
    assert SECRET not in text and TOKEN not in text and AKID not in text


# --- for_request ------------------------------------------------------------------------------


@pytest.fixture
def lambda_env() -> Iterator[dict[str, str]]:
    env = {
        "AWS_ACCESS_KEY_ID": AKID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_REGION": "eu-west-1",
    }
    yield env
    ApiGatewayConnections.close_shared()


def test_for_request_builds_the_endpoint_from_the_event(lambda_env: dict[str, str]) -> None:
    client = ApiGatewayConnections.for_request(
        "abc.execute-api.eu-west-1.amazonaws.com", "prod", environ=lambda_env
    )
    assert client.endpoint == "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    assert client.region == "eu-west-1"


def test_for_request_honours_the_endpoint_variable(lambda_env: dict[str, str], make: Any) -> None:
    server, _ = make()
    lambda_env[ENDPOINT_ENV] = server.endpoint
    client = ApiGatewayConnections.for_request(
        "abc.execute-api.eu-west-1.amazonaws.com", "prod", environ=lambda_env
    )
    assert client.endpoint == server.endpoint
    client.post(CID, "via env")
    assert [(s.path, s.signature_ok) for s in server.seen] == [
        ("/dev/@connections/R1kmxc2VNjMCFIA%3D", True)
    ]
    lambda_env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    ignored = ApiGatewayConnections.for_request("x.example.com", "prod", environ=lambda_env)
    assert ignored.endpoint == "https://x.example.com/prod"


def test_for_request_shares_one_client_per_endpoint(lambda_env: dict[str, str]) -> None:
    one = ApiGatewayConnections.for_request("a.example.com", "prod", environ=lambda_env)
    two = ApiGatewayConnections.for_request("a.example.com", "prod", environ=lambda_env)
    other = ApiGatewayConnections.for_request("a.example.com", "dev", environ=lambda_env)
    assert one is two and one is not other
    rotated = dict(lambda_env, AWS_SESSION_TOKEN="new-token")
    assert ApiGatewayConnections.for_request("a.example.com", "prod", environ=rotated) is not one


def test_for_request_needs_a_domain_or_the_variable(lambda_env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        ApiGatewayConnections.for_request("", "prod", environ=lambda_env)


# --- imports --------------------------------------------------------------------------------


def test_importing_the_client_loads_no_sdk_no_ssl_and_no_http_stack() -> None:
    loaded = modules_after(
        "import warmline.connections.apigw as m\n"
        "c = m.ApiGatewayConnections('http://127.0.0.1:9/dev', region='eu-west-1',\n"
        "    credentials=m.Credentials('a', 'b', 'c'))\n"
    )
    assert "warmline.connections.apigw" in loaded
    unwanted = ("boto3", "botocore", "awscrt", "ssl", "http.client", "threading", "urllib")
    assert sorted(m for m in loaded if m.split(".")[0] in unwanted or m in unwanted) == []


def test_importing_the_package_loads_no_backend() -> None:
    loaded = modules_after("import warmline.connections")
    assert not any(m.startswith("warmline.connections.") for m in loaded)


def test_package_names_resolve_lazily() -> None:
    import warmline.connections as package

    for name in package.__all__:
        assert getattr(package, name).__name__ == name
    assert dir(package) == sorted(package.__all__)
    with pytest.raises(AttributeError):
        _ = package.NotAClient


def test_warm_loads_the_http_stack_and_for_https_ssl() -> None:
    make_client = (
        "import warmline.connections.apigw as m\n"
        "c = m.ApiGatewayConnections({url!r}, region='eu-west-1',\n"
        "    credentials=m.Credentials('a', 'b', 'c'))\n"
        "c.warm()\n"
    )
    http_loaded = modules_after(make_client.format(url="http://127.0.0.1:9/dev"))
    assert "warmline.http1" in http_loaded and "socket" in http_loaded
    # http.client (and its email.parser) is not on the post path at all, nor ssl for http
    assert not {"http.client", "email.parser", "ssl"} & http_loaded
    https_loaded = modules_after(
        make_client.format(url="https://abc.execute-api.eu-west-1.amazonaws.com/prod")
    )
    assert "ssl" in https_loaded and "http.client" not in https_loaded
