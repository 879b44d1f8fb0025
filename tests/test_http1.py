"""The HTTP/1.1 connection under every AWS client, against a raw socket peer
that answers with exact bytes: every way of framing a body, keep-alive and its ends, and
answers that are not HTTP."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from warmline.errors import ConfigurationError
from warmline.http1 import (
    Http1Connection,
    ProtocolError,
    RemoteDisconnected,
    proxy_from_environment,
)

MakePeer = Callable[..., "Peer"]
REQUEST = b"POST /dev/@connections/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"


class Peer:
    """Accepts connections; for each request read, sends ``answers[i]`` (or closes on None)."""

    def __init__(self, answers: list[bytes | None], close_after: bool = False) -> None:
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                while self.answers:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.requests.append(data)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break  # close without answering
                    conn.sendall(answer)
                    if b"Connection: close" in answer or self.close_after:
                        break

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def peer() -> Iterator[Callable[[list[bytes | None]], Peer]]:
    made: list[Peer] = []

    def make(answers: list[bytes | None], close_after: bool = False) -> Peer:
        made.append(Peer(answers, close_after))
        return made[-1]

    yield make
    for p in made:
        p.close()


def connect(peer: Peer) -> Http1Connection:
    return Http1Connection("127.0.0.1", peer.port, timeout_s=5.0)


def test_a_request_is_one_write_and_content_length_frames_the_body(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amzn-ErrorType: A:b\r\n\r\nhello"])
    conn = connect(p)
    response = conn.request(REQUEST)
    assert (response.status, response.body) == (200, b"hello")
    assert response.headers["x-amzn-errortype"] == "A:b"  # names lower-cased
    assert p.requests == [REQUEST]  # arrived in one piece
    assert conn.sock is not None  # kept alive
    conn.close()


def test_keep_alive_reuses_one_socket(peer: MakePeer) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    p = peer([ok, ok, ok])
    conn = connect(p)
    for _ in range(3):
        assert conn.request(REQUEST).status == 200
    assert p.accepted == 1
    conn.close()


def test_chunked_bodies_with_extensions_and_trailers(peer: MakePeer) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: y\r\n\r\n"
    )
    p = peer([answer, b"HTTP/1.1 204 No Content\r\n\r\n"])
    conn = connect(p)
    assert conn.request(REQUEST).body == b"Wikipedia"
    assert conn.request(REQUEST).status == 204  # the same socket, framing intact
    assert p.accepted == 1
    conn.close()


def test_connection_close_and_http_1_0_are_not_reused(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"])
    conn = connect(p)
    assert conn.request(REQUEST).status == 200
    assert conn.sock is None
    q = peer([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    conn = connect(q)
    assert conn.request(REQUEST).body == b"ok"
    assert conn.sock is None


def test_a_body_without_length_is_read_to_the_end(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\n\r\nall of it"], close_after=True)
    conn = connect(p)
    response = conn.request(REQUEST)
    assert response.body == b"all of it"
    assert conn.sock is None


def test_an_interim_100_is_skipped(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    conn = connect(p)
    assert conn.request(REQUEST).body == b"x"
    conn.close()


def test_a_peer_that_closes_without_answering_is_remote_disconnected(peer: MakePeer) -> None:
    p = peer([None])
    conn = connect(p)
    with pytest.raises(RemoteDisconnected):
        conn.request(REQUEST)
    assert conn.sock is None
    assert isinstance(RemoteDisconnected(), ConnectionResetError)  # what callers catch


def test_a_peer_that_closes_mid_body_is_remote_disconnected(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"], close_after=True)
    conn = connect(p)
    with pytest.raises(RemoteDisconnected):
        conn.request(REQUEST)


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"HTTP/1.1 OK 200\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n",
    ],
)
def test_answers_that_are_not_http_are_protocol_errors(peer: MakePeer, answer: bytes) -> None:
    p = peer([answer])
    conn = connect(p)
    with pytest.raises(ProtocolError):
        conn.request(REQUEST)
    assert conn.sock is None


def test_an_endless_head_is_refused(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000])
    conn = connect(p)
    with pytest.raises(ProtocolError, match="too long"):
        conn.request(REQUEST)


def test_a_silent_peer_times_out(peer: MakePeer) -> None:
    p = peer([b"", None])  # reads the request, sends nothing, keeps the socket open
    conn = Http1Connection("127.0.0.1", p.port, timeout_s=0.2)
    with pytest.raises(TimeoutError):
        conn.request(REQUEST)
    assert conn.sock is None


def test_message_frames_a_request_and_refuses_header_injection() -> None:
    from warmline.http1 import message

    assert message("POST", "/p", [("Host", "h")], b"hi") == (
        b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
    )
    assert message("GET", "/p", [("Host", "h")], b"") == b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n"
    for bad in ("v\r\nEvil: 1", "v\nEvil: 1", "v\rx", "v\x00"):
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            message("GET", "/p", [("X-Token", bad)], b"")
    with pytest.raises(ValueError):
        message("GET", "/p HTTP/1.1\r\nHost: evil\r\n", [], b"")


def test_a_chunked_body_is_read_as_it_arrives_and_the_socket_kept(peer: MakePeer) -> None:
    """read_some hands out each chunk as it comes, never waiting for the next one."""
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1;x=y\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    p = peer([answer, b"HTTP/1.1 204 No Content\r\n\r\n"])
    conn = connect(p)
    conn.send(REQUEST)
    assert conn.read_head() == (200, {"transfer-encoding": "chunked"})
    pieces = []
    while piece := conn.read_some(3):
        pieces.append(piece)
        assert not conn.reusable  # not before the body's end
    assert pieces == [b"hel", b"lo", b" ", b"wor", b"ld"]
    assert conn.read_some() == b"" and conn.reusable
    assert conn.request(REQUEST).status == 204 and p.accepted == 1
    conn.close()


def test_a_body_read_to_the_end_of_the_stream_ends_the_connection(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\n\r\nall of it"], close_after=True)
    conn = connect(p)
    conn.send(REQUEST)
    assert conn.read_head()[0] == 200
    body = b""
    while piece := conn.read_some():
        body += piece
    assert body == b"all of it" and not conn.reusable
    conn.close()


def test_a_content_length_body_cut_short_is_remote_disconnected(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"], close_after=True)
    conn = connect(p)
    conn.send(REQUEST)
    assert conn.read_head()[0] == 200
    assert conn.read_some() == b"half"
    with pytest.raises(RemoteDisconnected):
        conn.read_some()
    conn.close()


def test_request_refuses_a_body_over_its_limit(peer: MakePeer) -> None:
    p = peer([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"])
    conn = connect(p)
    with pytest.raises(ProtocolError, match="over 4"):
        conn.request(REQUEST, max_body=4)
    assert conn.sock is None


@pytest.mark.parametrize(
    ("environ", "host", "expected"),
    [
        ({}, "lambda.us-east-1.amazonaws.com", None),
        ({"HTTPS_PROXY": "http://127.0.0.1:8080"}, "a.amazonaws.com", ("127.0.0.1", 8080)),
        ({"https_proxy": "127.0.0.1:81", "HTTPS_PROXY": "http://x:1"}, "a.com", ("127.0.0.1", 81)),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1,localhost"}, "127.0.0.1", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".amazonaws.com"}, "a.amazonaws.com", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "amazonaws.com"}, "a.amazonaws.com", None),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "zonaws.com"}, "a.amazonaws.com", ("p", 1)),
        ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "a.com", None),
        ({"HTTPS_PROXY": "http://p:1", "no_proxy": "", "NO_PROXY": "a.com"}, "a.com", None),
    ],
)
def test_the_proxy_is_chosen_by_botocores_rules(
    environ: dict[str, str], host: str, expected: tuple[str, int] | None
) -> None:
    assert proxy_from_environment("https", host, environ) == expected


def test_plain_http_is_never_proxied_and_a_proxy_with_credentials_is_refused() -> None:
    assert proxy_from_environment("http", "a.com", {"HTTPS_PROXY": "http://p:1"}) is None
    with pytest.raises(ConfigurationError):
        proxy_from_environment("https", "a.com", {"HTTPS_PROXY": "http://u:p@proxy:1"})
